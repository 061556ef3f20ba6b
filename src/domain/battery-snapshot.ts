/**
 * The one model every BMS family decodes into and every later stage (bank, policy, publishers) reads.
 *
 * Units and signs (DECISIONS.md D8): SI everywhere — V, A, Ah, W, °C, seconds. Percentages are named
 * so (`socPercent` style fields are not used: `soc` and `soh` are 0–100 %, as on Victron's bus).
 * Current and power are POSITIVE WHEN CHARGING. Unknown is `undefined`, never 0 or NaN.
 */

/** One named temperature sensor, in °C. */
export interface TemperatureReading {
  readonly name: string;
  readonly celsius: number;
}

/**
 * Protection / fault flags reported by the BMS itself. `true` = the BMS says this protection is active now.
 * A flag the family cannot report is `undefined`.
 */
export interface ProtectionFlags {
  cellOverVoltage?: boolean;
  cellUnderVoltage?: boolean;
  packOverVoltage?: boolean;
  packUnderVoltage?: boolean;
  chargeOverTemperature?: boolean;
  chargeUnderTemperature?: boolean;
  dischargeOverTemperature?: boolean;
  dischargeUnderTemperature?: boolean;
  chargeOverCurrent?: boolean;
  dischargeOverCurrent?: boolean;
  shortCircuit?: boolean;
  /** Analog front-end (AFE) / measurement IC failure. */
  frontEndError?: boolean;
  /** FETs locked off by software command (JBD 0xE1). */
  fetSoftwareLock?: boolean;
  /** Any other internal failure the family reports. */
  internalFailure?: boolean;
}

export const PROTECTION_FLAG_NAMES = [
  'cellOverVoltage',
  'cellUnderVoltage',
  'packOverVoltage',
  'packUnderVoltage',
  'chargeOverTemperature',
  'chargeUnderTemperature',
  'dischargeOverTemperature',
  'dischargeUnderTemperature',
  'chargeOverCurrent',
  'dischargeOverCurrent',
  'shortCircuit',
  'frontEndError',
  'fetSoftwareLock',
  'internalFailure',
] as const satisfies readonly (keyof ProtectionFlags)[];

/** What the BMS says it is. Strings are trimmed; unknown fields are undefined. */
export interface BatteryIdentity {
  manufacturer?: string;
  model?: string;
  serial?: string;
  firmware?: string;
  hardware?: string;
  /** Production date as reported, ISO `YYYY-MM-DD`. */
  productionDate?: string;
}

/** Limits the BMS itself asks for (CAN / Pylon families); respected by the charge policy. */
export interface BmsRequestedLimits {
  /** Max charge voltage, V. */
  chargeVoltage?: number;
  /** Max charge current, A. */
  chargeCurrent?: number;
  /** Max discharge current, A. */
  dischargeCurrent?: number;
  /** Discharge voltage floor, V. */
  dischargeVoltage?: number;
}

export interface BatterySnapshot {
  /** When the data was received (ms since epoch, from the injected clock). */
  readonly timestampMs: number;
  /** Pack voltage, V. */
  voltage?: number;
  /** Pack current, A, + = charging. */
  current?: number;
  /** Pack power, W, + = charging. Derived from V × I when the BMS does not report it. */
  power?: number;
  /** State of charge, % (0–100). */
  soc?: number;
  /** State of health, % (0–100). */
  soh?: number;
  /** Remaining capacity, Ah. */
  capacityRemaining?: number;
  /** Installed (full / nominal) capacity, Ah. */
  capacityInstalled?: number;
  /** Charge cycles. */
  cycles?: number;
  /** Cell voltages, V, in cell order (cell 1 first). */
  cellVoltages?: number[];
  /** Balancing flag per cell (same order as `cellVoltages`). */
  balancing?: boolean[];
  /** Number of cells in series as the BMS reports it (may be known before the cell voltages are). */
  cellCount?: number;
  /** Lowest / highest cell voltage, V, for a BMS that reports only these (BYD Atto 3); ignored when
   * `cellVoltages` is present (the extremes are computed from the list). */
  cellVoltageMin?: number;
  cellVoltageMax?: number;
  /** Battery temperature sensors, °C. */
  temperatures?: TemperatureReading[];
  /** MOSFET / power stage temperature, °C. */
  mosTemperature?: number;
  /** Charge FET is conducting. */
  chargeFet?: boolean;
  /** Discharge FET is conducting. */
  dischargeFet?: boolean;
  /** Protection flags (always present; individual flags may be undefined). */
  protection: ProtectionFlags;
  identity: BatteryIdentity;
  /** Limits the BMS asks for, where the family reports them. */
  bmsLimits?: BmsRequestedLimits;
}

/** Fill derived values (power, cell count) where the BMS did not report them. Pure; returns a new object. */
export function deriveSnapshot(s: BatterySnapshot): BatterySnapshot {
  const out: BatterySnapshot = { ...s };
  if (out.power === undefined && out.voltage !== undefined && out.current !== undefined) {
    out.power = out.voltage * out.current;
  }
  if (out.cellCount === undefined && out.cellVoltages !== undefined && out.cellVoltages.length > 0) {
    out.cellCount = out.cellVoltages.length;
  }
  return out;
}

/** Min / max over a list, with 1-based indexes; undefined for an empty list. */
export interface Extremes {
  min: number;
  minIndex: number;
  max: number;
  maxIndex: number;
}

export function extremes(values: readonly number[] | undefined): Extremes | undefined {
  if (values === undefined || values.length === 0) return undefined;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let minIndex = 0;
  let maxIndex = 0;
  values.forEach((v, i) => {
    if (v < min) {
      min = v;
      minIndex = i + 1;
    }
    if (v > max) {
      max = v;
      maxIndex = i + 1;
    }
  });
  return { min, minIndex, max, maxIndex };
}
