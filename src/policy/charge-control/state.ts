/**
 * The charge-control state carried from one call to the next, and its persisted form.
 *
 * Every timer is an accumulator of observed time (sum of the clamped steps between calls), not a wall-clock
 * start time: a clock that jumps (NTP after boot) or a restart cannot make a hold expire or an absorption
 * finish early, and a restored state resumes where it stopped instead of counting the downtime.
 *
 * Only the charge-voltage cycle is persisted (mode, absorption time, float-transition voltage, SoC-reset
 * bookkeeping). Current limits and the over-voltage controller start afresh after a restart on purpose:
 * a limit from before the restart would be a stale limit.
 */

/** Anti-flap memory of one current limit (CCL or DCL). */
export interface CurrentLimitState {
  /** Last published value, A; null before the first real computation (start-up publishes at once). */
  published: number | null;
  /** Rule that set the published value (without the hold marker). */
  reason: string;
  /** Observed time since the last applied decrease, ms; null = none yet. */
  sinceDecreaseMs: number | null;
  /** Observed time the computed value has been above the published one, ms; null = not rising. */
  risingMs: number | null;
}

/** Plain JSON data; treat as immutable (chargeControl returns a new object). */
export interface ChargeState {
  version: 1;
  /** 'bulk' covers bulk and absorption (timer running); 'float' covers the float transition and float. */
  mode: 'bulk' | 'float';
  /** Absorption timer: observed time at max voltage with balanced cells, ms; null = not running. */
  absorptionMs: number | null;
  /** Float transition: CVL (pack V, without voltage_drop) ramping down; null = not in a transition. */
  transitionVoltage: number | null;
  /** A SoC reset is due and runs until float is reached. */
  socResetDue: boolean;
  /** Observed operating time since the last SoC reset completed (or since the first start), ms. */
  socResetElapsedMs: number;
  /** Wall-clock time (ms since epoch) at which the last SoC reset reached float; null = never. */
  lastSocResetMs: number | null;
  /** Over-voltage controller output while it limits (pack V); null = not limiting. */
  controllerVoltage: number | null;
  /** Observed time since the controller last lowered CVL, ms. */
  controllerHoldMs: number;
  ccl: CurrentLimitState;
  dcl: CurrentLimitState;
  /** `nowMs` of the previous call; null before the first. */
  lastCallMs: number | null;
}

function freshLimit(): CurrentLimitState {
  return { published: null, reason: 'config maximum', sinceDecreaseMs: null, risingMs: null };
}

/** The state of a battery never seen before: bulk, no timers, no SoC reset due. */
export function freshChargeState(): ChargeState {
  return {
    version: 1,
    mode: 'bulk',
    absorptionMs: null,
    transitionVoltage: null,
    socResetDue: false,
    socResetElapsedMs: 0,
    lastSocResetMs: null,
    controllerVoltage: null,
    controllerHoldMs: 0,
    ccl: freshLimit(),
    dcl: freshLimit(),
    lastCallMs: null,
  };
}

/** The persisted part, as it is written. */
interface PersistedChargeState {
  v: 1;
  mode: 'bulk' | 'float';
  absorptionMs: number | null;
  transitionVoltage: number | null;
  socResetDue: boolean;
  socResetElapsedMs: number;
  lastSocResetMs: number | null;
}

/**
 * The persisted part of the state as JSON text (the lead stores it, e.g. in localsettings). Values are rounded
 * to whole milliseconds and millivolts so the text only changes when something meaningful did.
 */
export function serializeChargeState(state: ChargeState): string {
  const ms = (v: number | null): number | null => (v === null ? null : Math.round(v));
  const p: PersistedChargeState = {
    v: 1,
    mode: state.mode,
    absorptionMs: ms(state.absorptionMs),
    transitionVoltage: state.transitionVoltage === null ? null : Math.round(state.transitionVoltage * 1000) / 1000,
    socResetDue: state.socResetDue,
    socResetElapsedMs: Math.round(state.socResetElapsedMs),
    lastSocResetMs: ms(state.lastSocResetMs),
  };
  return JSON.stringify(p);
}

const DAY_MS = 86_400_000;

const isMs = (v: unknown, max: number): v is number =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= max;

/**
 * The state from `serializeChargeState` text. Anything that is not exactly what it wrote (garbage, a newer
 * version, out-of-range numbers) gives a fresh state: bulk, no timers, SoC-reset count from zero. That is safe:
 * at worst the battery absorbs once more, and a SoC reset comes later, never earlier.
 */
export function parseChargeState(text: string | undefined | null): ChargeState {
  const fresh = freshChargeState();
  if (typeof text !== 'string') return fresh;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fresh;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return fresh;
  const r = raw as Record<string, unknown>;
  const ok =
    r.v === 1 &&
    (r.mode === 'bulk' || r.mode === 'float') &&
    (r.absorptionMs === null || isMs(r.absorptionMs, DAY_MS)) &&
    (r.transitionVoltage === null || (isMs(r.transitionVoltage, 1000) && r.transitionVoltage > 0)) &&
    typeof r.socResetDue === 'boolean' &&
    isMs(r.socResetElapsedMs, 3650 * DAY_MS) &&
    (r.lastSocResetMs === null || isMs(r.lastSocResetMs, Number.MAX_SAFE_INTEGER)) &&
    // A transition or an absorption timer only exists in its own mode.
    !(r.mode === 'bulk' && r.transitionVoltage !== null) &&
    !(r.mode === 'float' && r.absorptionMs !== null);
  if (!ok) return fresh;
  return {
    ...fresh,
    mode: r.mode as 'bulk' | 'float',
    absorptionMs: r.absorptionMs as number | null,
    transitionVoltage: r.transitionVoltage as number | null,
    socResetDue: r.socResetDue as boolean,
    socResetElapsedMs: r.socResetElapsedMs as number,
    lastSocResetMs: r.lastSocResetMs as number | null,
  };
}
