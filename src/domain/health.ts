import type { Health } from './battery-state.js';

export interface HealthTiming {
  pollIntervalMs: number;
  /** No valid reply for this long → offline. */
  staleAfterMs: number;
}

/**
 * Time after the last valid reply at which data counts as stale: three missed polls (at least 3 s), and
 * never later than half of `stale_after`, so limits drop to 0 well before the battery is declared offline.
 */
export function staleThresholdMs(t: HealthTiming): number {
  return Math.min(Math.max(3 * t.pollIntervalMs, 3000), t.staleAfterMs / 2);
}

/** online → stale → offline from the age of the last valid reply. Pure. */
export function healthOf(lastValidMs: number | undefined, nowMs: number, t: HealthTiming): Health {
  if (lastValidMs === undefined) return 'offline';
  const age = nowMs - lastValidMs;
  if (age >= t.staleAfterMs) return 'offline';
  if (age > staleThresholdMs(t)) return 'stale';
  return 'online';
}
