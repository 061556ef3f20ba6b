/** Small seedable PRNG for simulators: deterministic runs in tests, varied ones otherwise. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  range(min: number, max: number): number;
  /** Integer in [min, max] (both inclusive). */
  int(min: number, max: number): number;
  /** Approximately standard normal (sum of uniforms; cheap and bounded, which suits a simulator). */
  gaussian(): number;
}

/** mulberry32: 32-bit state, good enough statistical quality for fake sensor noise. */
export function createRandom(seed: number = Math.floor(Math.random() * 0x1_0000_0000)): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
  return {
    next,
    range: (min, max) => min + (max - min) * next(),
    int: (min, max) => min + Math.floor((max - min + 1) * next()),
    gaussian: () => {
      // Irwin–Hall with 6 terms, rescaled to unit variance: bounded to ±~4.2, so no absurd outliers.
      let s = 0;
      for (let i = 0; i < 6; i++) s += next();
      return (s - 3) * Math.SQRT2;
    },
  };
}
