/** `v` rounded to `digits` decimals (a decoded reading to its wire resolution). */
export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
