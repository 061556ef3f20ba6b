/**
 * Integer and text fields of short frames (CAN data above all): readers that tolerate a short frame (undefined past
 * the end) and the 16-bit writer of the encoders (simulators, the inverter output).
 */

/**
 * `value` rounded into a 16-bit field at `at`: clamped to the signed (−32768…32767) or unsigned (0…65535)
 * range, a non-finite value written as 0. Little-endian unless `bigEndian`.
 */
export function put16(out: Uint8Array, at: number, value: number, signed: boolean, bigEndian = false): void {
  const lo = signed ? -0x8000 : 0;
  const hi = signed ? 0x7fff : 0xffff;
  const x = (Number.isFinite(value) ? Math.min(hi, Math.max(lo, Math.round(value))) : 0) & 0xffff;
  out[at + (bigEndian ? 1 : 0)] = x & 0xff;
  out[at + (bigEndian ? 0 : 1)] = x >> 8;
}

/** Little-endian readers that tolerate short frames: undefined past the end. */
export function u8(data: Uint8Array, at: number): number | undefined {
  return data[at];
}

export function u16le(data: Uint8Array, at: number): number | undefined {
  const lo = data[at];
  const hi = data[at + 1];
  return lo === undefined || hi === undefined ? undefined : lo | (hi << 8);
}

export function s16le(data: Uint8Array, at: number): number | undefined {
  const v = u16le(data, at);
  return v === undefined ? undefined : (v << 16) >> 16;
}

export function s32le(data: Uint8Array, at: number): number | undefined {
  if (at + 4 > data.length) return undefined;
  return (
    ((data[at] as number) | ((data[at + 1] as number) << 8) | ((data[at + 2] as number) << 16)) +
    ((data[at + 3] as number) << 24)
  );
}

/** ASCII text of `data`, NULs and trailing spaces dropped; undefined when empty or not printable. */
export function asciiOf(data: Uint8Array): string | undefined {
  let s = '';
  for (const b of data) {
    if (b === 0) continue;
    if (b < 0x20 || b > 0x7e) return undefined;
    s += String.fromCharCode(b);
  }
  const t = s.trim();
  return t === '' ? undefined : t;
}

/** Big-endian u16, undefined past the end. */
export function u16be(data: Uint8Array, at: number): number | undefined {
  const hi = data[at];
  const lo = data[at + 1];
  return hi === undefined || lo === undefined ? undefined : (hi << 8) | lo;
}
