/** Sum of bytes [start, end) as an unsigned integer. */
export function byteSum(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let s = 0;
  for (let i = start; i < end; i++) s += bytes[i] as number;
  return s;
}

/** 16-bit two's complement of the byte sum (JBD, Pylontech-style). */
export function sumComplement16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return (0x10000 - (byteSum(bytes, start, end) & 0xffff)) & 0xffff;
}

/** Low 8 bits of the byte sum (Daly, JBD auth). */
export function sum8(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return byteSum(bytes, start, end) & 0xff;
}

/** CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF). */
export function crc16Modbus(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) {
    crc ^= bytes[i] as number;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}
