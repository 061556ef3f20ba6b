/**
 * Time for the simulated packs: their values drift with the wall clock (or a test's clock), integrated in
 * short steps so a long gap does not become one huge jump.
 */

/** Longest single integration step, s. */
export const MAX_STEP_S = 5;
/** Longest wall-clock gap taken into account, s: a simulator left idle for a day does not run a day of steps. */
export const MAX_GAP_S = 3600;

/** Run `step(dt)` over `seconds` in steps of at most {@link MAX_STEP_S}. */
export function stepThrough(seconds: number, step: (dt: number) => void): void {
  let left = Math.max(0, seconds);
  while (left > 0) {
    const dt = Math.min(MAX_STEP_S, left);
    step(dt);
    left -= dt;
  }
}

/** Seconds of clock time since the previous reading (at most {@link MAX_GAP_S}). */
export class DriftClock {
  private lastMs: number;

  constructor(private readonly now: () => number) {
    this.lastMs = now();
  }

  elapsedS(): number {
    const t = this.now();
    const gapS = Math.min(MAX_GAP_S, Math.max(0, (t - this.lastMs) / 1000));
    this.lastMs = t;
    return gapS;
  }
}
