/**
 * The arithmetic of bank limits (docs/bank.md "Limits"). Pure, and small enough to check by hand:
 *
 *   series string   CCL/DCL = min of its members (they carry the same current)
 *                   CVL     = cells × lowest per-cell CVL of its members, pulled down while a member overshoots
 *                   BLV     = cells × highest per-cell BatteryLowVoltage of its members
 *   parallel        CCL/DCL = largest bank current at which no conducting string exceeds its own limit,
 *                             given the share of the current each string takes: min over strings of limit / share
 *                   CVL     = min over strings;  BLV = max over strings
 */

/** How the bank current divides between parallel strings. */
export type CurrentSharing = 'capacity' | 'count';

/** One parallel string as the sharing model sees it, for one direction (charge or discharge). */
export interface StringCurrent {
  /** The string takes current in this direction (no member offline, no online member's FET open). */
  readonly conducting: boolean;
  /** The lowest own limit of its members, A (sanitised: finite, ≥ 0). */
  readonly limit: number;
  /** Installed capacity, Ah (the smallest member's); undefined when a member does not report it. */
  readonly capacity: number | undefined;
}

/** Result of the sharing model. */
export interface SharedCurrent {
  /** Bank limit, A: finite, ≥ 0, rounded down to 0.01 A. */
  readonly current: number;
  /** Fraction of the bank current each string takes (0 for a string that does not conduct). */
  readonly shares: readonly number[];
  /** Index of the string that sets the limit; undefined when no string conducts. */
  readonly limiting: number | undefined;
  /**
   * True when capacity sharing was asked for but a conducting string's capacity is unknown: then every string
   * is assumed to possibly take the whole current (share 1), the only assumption that is safe without data.
   */
  readonly capacityUnknown: boolean;
}

/** A finite, non-negative number, else 0 (a NaN limit must never grow into a current). */
export function safeLimit(v: number | undefined): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : 0;
}

/**
 * Round down to `digits` decimals, tolerating float noise (3 × 0.1 must stay 0.3, 16 × 3.45 must stay 55.2): the
 * result may exceed `v` by at most 10⁻⁶ of the last digit (1 nV for volts to mV), far below any measurement.
 */
export function floorTo(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.floor(v * f + 1e-6) / f;
}

/** Round up to `digits` decimals, tolerating float noise. */
export function ceilTo(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.ceil(v * f - 1e-6) / f;
}

/**
 * The largest bank current for which no conducting string exceeds its own limit: min over conducting strings
 * of limit / share. Shares are by installed capacity (default) or equal (`count`). A string that does not
 * conduct takes no current and does not constrain; with none conducting the limit is 0.
 */
export function sharedCurrentLimit(strings: readonly StringCurrent[], sharing: CurrentSharing): SharedCurrent {
  const conducting = strings.map((s, i) => ({ s, i })).filter((x) => x.s.conducting);
  if (conducting.length === 0) {
    return { current: 0, shares: strings.map(() => 0), limiting: undefined, capacityUnknown: false };
  }
  let weights: number[];
  let capacityUnknown = false;
  if (sharing === 'count') {
    weights = conducting.map(() => 1);
  } else {
    const caps = conducting.map((x) => x.s.capacity);
    if (caps.every((c): c is number => c !== undefined && Number.isFinite(c) && c > 0)) {
      weights = caps;
    } else {
      capacityUnknown = true;
      weights = [];
    }
  }
  const total = weights.reduce((a, b) => a + b, 0);
  const shares = strings.map(() => 0);
  let best = Number.POSITIVE_INFINITY;
  let limiting: number | undefined;
  conducting.forEach((x, k) => {
    // Without capacities nothing bounds a string's share below 1: assume each could take it all.
    const share = capacityUnknown ? 1 : (weights[k] ?? 0) / total;
    shares[x.i] = share;
    // limit × (total / weight) rather than limit / share: exact when one string takes everything.
    const allowed = capacityUnknown ? safeLimit(x.s.limit) : safeLimit(x.s.limit) * (total / (weights[k] ?? total));
    if (allowed < best) {
      best = allowed;
      limiting = x.i;
    }
  });
  const current = Number.isFinite(best) ? floorTo(Math.max(0, best), 2) : 0;
  return { current, shares, limiting, capacityUnknown };
}

/** What a series string needs to know about each member for its voltages. */
export interface SeriesMemberVoltages {
  /** The member's own CVL, V. */
  readonly chargeVoltage: number | undefined;
  /** The member's own BatteryLowVoltage, V. */
  readonly lowVoltage: number | undefined;
  /** Cells in series in the member. */
  readonly cells: number | undefined;
  /** Measured pack voltage, V (undefined when offline or unknown). */
  readonly voltage: number | undefined;
}

const validCells = (n: number | undefined): n is number => n !== undefined && Number.isInteger(n) && n > 0;
const validVolts = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v) && v >= 0;

/**
 * CVL of a series string: total cells × the lowest per-cell CVL of its members. This equals the sum of the
 * members' CVLs when they use the same per-cell setting, and is lower otherwise: the string voltage spreads
 * over all cells, so the sum would push the stricter member's cells past its own setting.
 *
 * While a member is above its share (cells × lowest per-cell CVL), the string CVL drops to the measured string
 * voltage minus the overshoot, so the charger pulls back until that member is inside its bound.
 *
 * A member whose CVL is unknown does not stop the others from bounding the string (their bound holds whatever
 * it is); every member's cell count must be known, as the bound is per cell. Undefined when a cell count is
 * unknown or no member has a CVL. Never negative.
 */
export function stringChargeVoltage(members: readonly SeriesMemberVoltages[]): number | undefined {
  const cells = totalCells(members);
  const known = members.filter((m) => validVolts(m.chargeVoltage));
  if (cells === undefined || known.length === 0) return undefined;
  // CVL_j × (cells / n_j) rather than (CVL_j / n_j) × cells: exact when one member is the whole string.
  let cvl = Math.min(...known.map((m) => (m.chargeVoltage as number) * (cells / (m.cells as number))));
  const perCell = Math.min(...known.map((m) => (m.chargeVoltage as number) / (m.cells as number)));
  if (members.length > 1 && members.every((m) => validVolts(m.voltage))) {
    let overshoot = 0;
    let measured = 0;
    for (const m of members) {
      const v = m.voltage as number;
      measured += v;
      overshoot += Math.max(0, v - (m.cells as number) * perCell);
    }
    if (overshoot > 0) cvl = Math.min(cvl, Math.max(0, measured - overshoot));
  }
  return Number.isFinite(cvl) ? floorTo(cvl, 3) : undefined;
}

/**
 * BatteryLowVoltage of a series string: total cells × the highest per-cell value of its members (the
 * conservative direction for a floor). Undefined when a cell count is unknown or no member has a value.
 */
export function stringLowVoltage(members: readonly SeriesMemberVoltages[]): number | undefined {
  const cells = totalCells(members);
  const known = members.filter((m) => validVolts(m.lowVoltage));
  if (cells === undefined || known.length === 0) return undefined;
  const blv = Math.max(...known.map((m) => (m.lowVoltage as number) * (cells / (m.cells as number))));
  return Number.isFinite(blv) ? ceilTo(blv, 3) : undefined;
}

/** Cells in series of the string; undefined when a member's count is unknown. */
function totalCells(members: readonly SeriesMemberVoltages[]): number | undefined {
  if (members.length === 0) return undefined;
  let cells = 0;
  for (const m of members) {
    if (!validCells(m.cells)) return undefined;
    cells += m.cells;
  }
  return cells;
}
