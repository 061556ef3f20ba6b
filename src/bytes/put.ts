/** Writing integer fields into frames being built (the encoders of simulators and the inverter output). */

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
