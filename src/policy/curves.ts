/**
 * Piecewise derating curves: input (cell voltage, °C, %) → fraction 0–1 of the configured maximum current.
 * Pure. Points may be given in ascending or descending input order (dbus-serialbattery writes the charge
 * cell-voltage curve high to low); they are stored ascending.
 *
 *   linear: interpolate between neighbouring points, hold the end values beyond the ends.
 *   step:   every point is a threshold: once the input reaches a point, that point's fraction applies until
 *           the next point is reached. Between two points the fraction of the one nearer full current holds,
 *           so step is never below linear and a curve that reaches 0 at X V stops the current at X V in both
 *           modes (the float-reachability check in the config relies on that).
 */

export type CurveMode = 'linear' | 'step';

export const CURVE_MODES: readonly CurveMode[] = ['linear', 'step'];

/** A validated curve: inputs strictly ascending, fractions in [0, 1], at least one fraction of 1. */
export interface Curve {
  readonly x: readonly number[];
  readonly y: readonly number[];
}

/** Why these points do not make a usable curve, or undefined when they do. */
export function curveProblem(x: readonly number[], y: readonly number[]): string | undefined {
  if (x.length !== y.length) return `the lists have different lengths (${x.length} points, ${y.length} fractions)`;
  if (x.length < 2) return 'a curve needs at least 2 points';
  if (![...x, ...y].every(Number.isFinite)) return 'every value must be a number';
  if (y.some((f) => f < 0 || f > 1)) return 'fractions must be between 0 and 1';
  const rising = x.every((v, i) => i === 0 || v > (x[i - 1] as number));
  const falling = x.every((v, i) => i === 0 || v < (x[i - 1] as number));
  if (!rising && !falling) return 'the points must be strictly increasing or strictly decreasing';
  // Without a point at full current the maximum could never be reached: almost certainly a typo.
  if (!y.includes(1)) return 'no point has the fraction 1 (full current)';
  return undefined;
}

/** Builds a curve; throws an Error with `curveProblem`'s text when the points are unusable. */
export function makeCurve(x: readonly number[], y: readonly number[]): Curve {
  const problem = curveProblem(x, y);
  if (problem !== undefined) throw new Error(problem);
  const descending = x.length > 1 && (x[0] as number) > (x[1] as number);
  return descending ? { x: [...x].reverse(), y: [...y].reverse() } : { x: [...x], y: [...y] };
}

/**
 * The fraction at `input`. A non-finite input gives the curve's lowest fraction: when in doubt, lower.
 */
export function evaluateCurve(curve: Curve, input: number, mode: CurveMode): number {
  const { x, y } = curve;
  if (!Number.isFinite(input)) return Math.min(...y);
  const last = x.length - 1;
  if (input <= (x[0] as number)) return y[0] as number;
  if (input >= (x[last] as number)) return y[last] as number;
  let i = 0;
  while (input >= (x[i + 1] as number)) i++;
  // Now x[i] <= input < x[i + 1].
  const x0 = x[i] as number;
  const x1 = x[i + 1] as number;
  const y0 = y[i] as number;
  const y1 = y[i + 1] as number;
  if (input === x0) return y0;
  if (mode === 'step') return Math.max(y0, y1);
  // Rounding can push the interpolation a hair outside its neighbours (even below 0): keep it between them.
  const v = y0 + ((y1 - y0) * (input - x0)) / (x1 - x0);
  return Math.min(Math.max(v, Math.min(y0, y1)), Math.max(y0, y1));
}

/**
 * The lowest input at which the curve gives 0, or undefined when it never does. Used to check that a
 * charge cell-voltage curve still lets current through up to the voltage the pack must reach.
 */
export function firstZeroInput(curve: Curve): number | undefined {
  const i = curve.y.indexOf(0);
  return i < 0 ? undefined : curve.x[i];
}
