/** Hex helpers. Whitespace, `0x` prefixes, commas and colons between bytes are tolerated on input. */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/0x/gi, '').replace(/[\s,:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) {
    throw new Error(`not a hex byte string: ${text.slice(0, 40)}`);
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Upper-case hex pairs joined by `separator` (one space unless told otherwise), for logs and test names. */
export function toHex(bytes: Uint8Array, separator = ' '): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) {
    if (i > 0) s += separator;
    s += (bytes[i] as number).toString(16).padStart(2, '0').toUpperCase();
  }
  return s;
}
