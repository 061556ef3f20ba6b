/**
 * Charge-control settings: the key table (INI name, default, parser, expected text, comment), aliases for
 * dbus-serialbattery's key names, validation into one typed object, and the commented defaults block for
 * config.default.ini. Pure: values come in through a `get(key)` function, nothing is read from disk here.
 *
 * Defaults are dbus-serialbattery's (docs: prior-art.md §3c/§3d); the ten keys the first policy already had
 * (max_cell_voltage … discharge_max_temperature) keep their names and defaults.
 */
import { type Curve, type CurveMode, curveProblem, firstZeroInput, makeCurve } from './curves.js';

/** How the per-cell over-voltage controller lowers CVL (prior-art §3c). */
export type CvlControllerMode = 'penalty' | 'integral' | 'clipped' | 'off';

/** Derating of one direction (charge or discharge). A curve is undefined when switched off. */
export interface DirectionConfig {
  /** Driven by the highest cell (charge) or the lowest cell (discharge), V → fraction. */
  cellVoltageCurve: Curve | undefined;
  /** Evaluated at the coldest and the warmest sensor; the lower fraction wins. °C → fraction. */
  temperatureCurve: Curve | undefined;
  /** MOSFET temperature, °C → fraction. */
  mosTemperatureCurve: Curve | undefined;
  /** SoC, % → fraction. */
  socCurve: Curve | undefined;
  /** After the limit reached 0 it rises again only once the computed value exceeds this % of the maximum. */
  recoveryThresholdPercent: number;
  /** An increase waits this long before it is applied, s. */
  recoveryHoldSec: number;
  /** Then it ramps at this rate, A/s; 0 = at once. */
  recoveryRate: number;
}

/** Everything the charge-control policy and the SoC estimator need. Voltages V, currents A, °C, s, %. */
export interface ChargeControlConfig {
  maxCellVoltage: number;
  minCellVoltage: number;
  cellOvpVoltage: number;
  cellUvpVoltage: number;
  maxChargeCurrent: number;
  maxDischargeCurrent: number;
  chargeMinTemperature: number;
  chargeMaxTemperature: number;
  dischargeMinTemperature: number;
  dischargeMaxTemperature: number;
  floatCellVoltage: number;
  /** Added to the published CVL (cable drop between charger and battery), V. */
  voltageDrop: number;
  /** Bulk → absorption → float cycle; false keeps CVL at the max voltage. */
  floatEnable: boolean;
  floatAfterSec: number;
  /** Cell spread allowed while the absorption timer runs, V; undefined = no balance requirement. */
  floatSwitchCellDiff: number | undefined;
  floatSwitchCellDeviation: number;
  /** Pack volts per second of the float-transition ramp; 0 = at once. */
  floatTransitionRate: number;
  /** Back to bulk below this SoC, %; undefined = off. */
  bulkSocThreshold: number | undefined;
  /** Back to bulk at this cell spread, V; undefined = off. */
  bulkCellDiff: number | undefined;
  /** SoC reset (top balancing) every this many days of operation; undefined = off. */
  socResetAfterDays: number | undefined;
  socResetCellVoltage: number;
  cvlController: CvlControllerMode;
  /** I controller gain, V per V·s. */
  cvlIntegralFactor: number;
  cvlRecoveryHoldSec: number;
  /** V/s; 0 = at once after the hold. */
  cvlRecoveryRate: number;
  deratingMode: CurveMode;
  /** Small current decreases are applied at most this often, s. */
  currentDecreaseIntervalSec: number;
  /** A decrease of at least this % of the published value is applied at once. */
  currentImmediateDecreasePercent: number;
  charge: DirectionConfig;
  discharge: DirectionConfig;
  /** /Info/ChargeRequest = 1 below this SoC, %; undefined = off. */
  chargeRequestSoc: number | undefined;
  /** Compute SoC in the driver (coulomb counting, soc-estimator.ts) instead of trusting the BMS. */
  socCalculation: boolean;
  /** Share of the charge that ends up stored, %. */
  socChargeEfficiency: number;
  /** SoC set when the lowest cell is at min_cell_voltage while discharging, %. */
  socFloor: number;
  socFloorAfterSec: number;
  /** Capacity for SoC calculation when the BMS reports none, Ah; undefined = only the BMS's. */
  socCapacity: number | undefined;
}

/** A contradictory or invalid setting; `keys` are the INI keys involved. */
export class ChargeControlConfigError extends Error {
  override readonly name = 'ChargeControlConfigError';
  constructor(
    message: string,
    readonly keys: readonly string[],
  ) {
    super(message);
  }
}

/** A parsed value. `null` = switched off (`off` or empty), for keys that allow it. */
type Value = number | boolean | string | readonly number[] | null;

/** A dbus-serialbattery key that means the same as ours, with a conversion where its unit differs. */
export interface ChargeControlAlias {
  readonly name: string;
  readonly convert?: (text: string) => string;
}

/** One INI key of the charge-control settings. */
export interface ChargeControlKey {
  /** Our INI key (lower case). */
  readonly key: string;
  /** Default as INI text. */
  readonly default: string;
  /** Parser; undefined = invalid text. */
  readonly parse: (text: string) => Value | undefined;
  /** What a valid value looks like, for error messages. */
  readonly expected: string;
  /** Comment for config.default.ini (one paragraph; rendering wraps it). */
  readonly comment: string;
  /** Section heading in config.default.ini. */
  readonly group: string;
  readonly aliases: readonly ChargeControlAlias[];
}

// ---- parsers -------------------------------------------------------------------------------------------

const NUMBER_RE = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

function parseNumber(text: string, min: number, max: number): number | undefined {
  const s = text.trim();
  if (!NUMBER_RE.test(s)) return undefined;
  const n = Number(s);
  return Number.isFinite(n) && n >= min && n <= max ? n : undefined;
}

const num =
  (min: number, max: number) =>
  (text: string): Value | undefined =>
    parseNumber(text, min, max);

/** A number, or `off` / empty for "switched off". */
const numOrOff =
  (min: number, max: number) =>
  (text: string): Value | undefined => {
    const s = text.trim().toLowerCase();
    return s === '' || s === 'off' ? null : parseNumber(s, min, max);
  };

function bool(text: string): Value | undefined {
  const s = text.trim().toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(s)) return true;
  if (['false', 'no', 'off', '0'].includes(s)) return false;
  return undefined;
}

const oneOf =
  (...options: string[]) =>
  (text: string): Value | undefined => {
    const s = text.trim().toLowerCase();
    return options.includes(s) ? s : undefined;
  };

const list =
  (min: number, max: number) =>
  (text: string): Value | undefined => {
    const parts = text.split(',').map((p) => p.trim());
    const values = parts.map((p) => parseNumber(p, min, max));
    return values.every((v) => v !== undefined) ? (values as number[]) : undefined;
  };

// ---- alias conversions (dbus-serialbattery units → ours) -------------------------------------------------

/** Their recovery thresholds are fractions despite the _PERCENT name (0.015 = 1.5 %). */
const fractionToPercent = (text: string): string => {
  const n = parseNumber(text, -Infinity, Infinity);
  return n === undefined ? text : String(Math.round(n * 100 * 1e9) / 1e9);
};
const chargeModeName = (text: string): string => ({ '1': 'linear', '2': 'step' })[text.trim()] ?? text;
const controllerName = (text: string): string =>
  ({ '0': 'off', '1': 'penalty', '2': 'integral', '3': 'clipped' })[text.trim()] ?? text;
/** "Set to 10 to disable" for their cell-difference switches. */
const tenIsOff = (text: string): string => (parseNumber(text, 10, Infinity) !== undefined ? 'off' : text);
/** "Set to 0 to disable" for their SoC threshold. */
const zeroIsOff = (text: string): string => (parseNumber(text, 0, 0) !== undefined ? 'off' : text);
const emptyIsZero = (text: string): string => (text.trim() === '' ? '0' : text);

const alias = (name: string, convert?: (text: string) => string): ChargeControlAlias =>
  convert ? { name, convert } : { name };

// ---- the key table --------------------------------------------------------------------------------------

const G_LIMITS = 'Limits and hard stops';
const G_CVL = 'Charge voltage (CVL): bulk → absorption → float';
const G_RESET = 'SoC reset (periodic top balancing)';
const G_OVP = 'Cell over-voltage controller (lowers CVL when one cell runs ahead)';
const G_CURRENT = 'Current limits (CCL/DCL): derating curves and anti-flap';
const G_SOC = 'Driver-side SoC and charge request';

const CELL_V = 'a cell voltage in V (2–4.5)';
const LOW_CELL_V = 'a cell voltage in V (1.5–4)';
const AMPS = 'a current in A (0–10000)';
const SECONDS = 'seconds (0–86400)';

/** Builds the four keys of one derating curve for one direction. */
function curveKeys(
  dir: 'ccl' | 'dcl',
  what: 'cell_voltage' | 'temperature' | 'mos_temperature' | 'soc',
  spec: {
    enable: boolean;
    points: string;
    fractions: string;
    min: number;
    max: number;
    unit: string;
    comment: string;
    enableAlias: string;
    pointsAlias: string;
    fractionsAlias: string;
  },
): ChargeControlKey[] {
  const base = `${dir}_${what}`;
  const plural = what === 'soc' ? 'socs' : `${what}s`;
  return [
    {
      key: `${base}_enable`,
      default: spec.enable ? 'true' : 'false',
      parse: bool,
      expected: 'true or false',
      comment: spec.comment,
      group: G_CURRENT,
      aliases: [alias(spec.enableAlias)],
    },
    {
      key: `${dir}_${plural}`,
      default: spec.points,
      parse: list(spec.min, spec.max),
      expected: `a comma-separated list of ${spec.unit} (${spec.min}–${spec.max}), strictly increasing or decreasing`,
      comment: `Curve points (${spec.unit}).`,
      group: G_CURRENT,
      aliases: [alias(spec.pointsAlias)],
    },
    {
      key: `${base}_fractions`,
      default: spec.fractions,
      parse: list(0, 1),
      expected: 'a comma-separated list of fractions 0–1, one per point, at least one of them 1',
      comment: `Fraction of max_${dir === 'ccl' ? 'charge' : 'discharge'}_current at each point.`,
      group: G_CURRENT,
      aliases: [alias(spec.fractionsAlias)],
    },
  ];
}

/** Every charge-control INI key, in config.default.ini order. */
export const CHARGE_CONTROL_KEYS: readonly ChargeControlKey[] = [
  // Limits and hard stops (names and defaults as in the first policy).
  {
    key: 'max_cell_voltage',
    default: '3.45',
    parse: num(2, 4.5),
    expected: CELL_V,
    comment: 'Bulk/absorption target per cell: CVL = cells × max_cell_voltage.',
    group: G_LIMITS,
    aliases: [alias('MAX_CELL_VOLTAGE')],
  },
  {
    key: 'min_cell_voltage',
    default: '2.90',
    parse: num(1.5, 4),
    expected: LOW_CELL_V,
    comment:
      'BatteryLowVoltage = cells × min_cell_voltage; also the lowest CVL the over-voltage controller may set and the ' +
      'low-cell level of the driver-side SoC.',
    group: G_LIMITS,
    aliases: [alias('MIN_CELL_VOLTAGE')],
  },
  {
    key: 'cell_ovp_voltage',
    default: '3.60',
    parse: num(2, 4.5),
    expected: CELL_V,
    comment:
      'Any cell at or above this stops charging at once (CCL = 0). Keep it below the BMS over-voltage protection.',
    group: G_LIMITS,
    aliases: [],
  },
  {
    key: 'cell_uvp_voltage',
    default: '2.80',
    parse: num(1.5, 4),
    expected: LOW_CELL_V,
    comment: 'Any cell at or below this stops discharging at once (DCL = 0).',
    group: G_LIMITS,
    aliases: [],
  },
  {
    key: 'max_charge_current',
    default: '50',
    parse: num(0, 10000),
    expected: AMPS,
    comment: 'CCL when nothing limits it, A.',
    group: G_LIMITS,
    aliases: [alias('MAX_BATTERY_CHARGE_CURRENT')],
  },
  {
    key: 'max_discharge_current',
    default: '60',
    parse: num(0, 10000),
    expected: AMPS,
    comment: 'DCL when nothing limits it, A.',
    group: G_LIMITS,
    aliases: [alias('MAX_BATTERY_DISCHARGE_CURRENT')],
  },
  {
    key: 'charge_min_temperature',
    default: '0',
    parse: num(-40, 80),
    expected: '°C (−40–80)',
    comment: 'Charging is allowed only while every sensor is within charge_min_temperature … charge_max_temperature.',
    group: G_LIMITS,
    aliases: [],
  },
  {
    key: 'charge_max_temperature',
    default: '55',
    parse: num(-40, 80),
    expected: '°C (−40–80)',
    comment: 'Upper end of the charge window, °C.',
    group: G_LIMITS,
    aliases: [],
  },
  {
    key: 'discharge_min_temperature',
    default: '-20',
    parse: num(-40, 80),
    expected: '°C (−40–80)',
    comment:
      'Discharging is allowed only while every sensor is within discharge_min_temperature … discharge_max_temperature.',
    group: G_LIMITS,
    aliases: [],
  },
  {
    key: 'discharge_max_temperature',
    default: '60',
    parse: num(-40, 100),
    expected: '°C (−40–100)',
    comment: 'Upper end of the discharge window, °C.',
    group: G_LIMITS,
    aliases: [],
  },
  // CVL state machine.
  {
    key: 'float_enable',
    default: 'true',
    parse: bool,
    expected: 'true or false',
    comment:
      'true: bulk → absorption → float → back to bulk when needed. false: CVL stays at cells × max_cell_voltage ' +
      '(the over-voltage controller still acts).',
    group: G_CVL,
    aliases: [alias('CVCM_ENABLE')],
  },
  {
    key: 'float_cell_voltage',
    default: '3.375',
    parse: num(2, 4.5),
    expected: CELL_V,
    comment: 'Float target per cell: CVL = cells × float_cell_voltage.',
    group: G_CVL,
    aliases: [alias('FLOAT_CELL_VOLTAGE')],
  },
  {
    key: 'float_after',
    default: '900',
    parse: num(0, 86400),
    expected: SECONDS,
    comment:
      'Absorption time: seconds at max voltage with balanced cells before float. The timer starts when the sum of the ' +
      'cells reaches cells × max_cell_voltage and the cell spread is at most float_switch_cell_diff. 0 = float as soon ' +
      'as the max voltage is reached.',
    group: G_CVL,
    aliases: [alias('SWITCH_TO_FLOAT_WAIT_FOR_SEC', emptyIsZero)],
  },
  {
    key: 'float_switch_cell_diff',
    default: '0.010',
    parse: numOrOff(0, 1),
    expected: 'a voltage difference in V (0–1) or off',
    comment: 'Largest cell spread (max − min) at which the absorption timer starts, V. off = no balance requirement.',
    group: G_CVL,
    aliases: [alias('SWITCH_TO_FLOAT_CELL_VOLTAGE_DIFF', tenIsOff)],
  },
  {
    key: 'float_switch_cell_deviation',
    default: '0.003',
    parse: num(0, 1),
    expected: 'a voltage difference in V (0–1)',
    comment:
      'The absorption timer starts again from zero when the spread exceeds float_switch_cell_diff + this, V. ' +
      'It is cancelled when the sum of the cells falls 0.5 V below the target.',
    group: G_CVL,
    aliases: [alias('SWITCH_TO_FLOAT_CELL_VOLTAGE_DEVIATION')],
  },
  {
    key: 'float_transition_rate',
    default: '0.001',
    parse: num(0, 1),
    expected: 'volts per second (0–1)',
    comment: 'On entering float CVL ramps down at this rate (pack volts per second) to the float voltage. 0 = at once.',
    group: G_CVL,
    aliases: [],
  },
  {
    key: 'bulk_soc_threshold',
    default: '80',
    parse: numOrOff(0, 100),
    expected: 'a SoC in % (0–100) or off',
    comment: 'Back from float to bulk when the SoC falls below this, %. off = never for this reason.',
    group: G_CVL,
    aliases: [alias('SWITCH_TO_BULK_SOC_THRESHOLD', zeroIsOff)],
  },
  {
    key: 'bulk_cell_diff',
    default: '0.080',
    parse: numOrOff(0, 2),
    expected: 'a voltage difference in V (0–2) or off',
    comment:
      'Back from float to bulk when the cell spread reaches this, V. off = never for this reason (with ' +
      'bulk_soc_threshold off too, the battery stays in float until a SoC reset is due).',
    group: G_CVL,
    aliases: [alias('SWITCH_TO_BULK_CELL_VOLTAGE_DIFF', tenIsOff)],
  },
  {
    key: 'voltage_drop',
    default: '0.00',
    parse: num(0, 2),
    expected: 'a voltage in V (0–2)',
    comment:
      'Added to the published CVL to make up for the cable drop between charger and battery, V. The float switch ' +
      'compares the cells measured by the BMS against the uncompensated target.',
    group: G_CVL,
    aliases: [alias('VOLTAGE_DROP')],
  },
  // SoC reset.
  {
    key: 'soc_reset_after_days',
    default: 'off',
    parse: numOrOff(0.001, 365),
    expected: 'days (0.001–365) or off',
    comment:
      'Every this many days of operation, charge to cells × soc_reset_cell_voltage until float is reached again ' +
      '(top balancing, lets the BMS resynchronise its SoC). The count starts when the driver first runs. off = never.',
    group: G_RESET,
    aliases: [alias('SOC_RESET_AFTER_DAYS')],
  },
  {
    key: 'soc_reset_cell_voltage',
    default: '3.650',
    parse: num(2, 4.5),
    expected: CELL_V,
    comment:
      'Per-cell target during a SoC reset, V. Must be above max_cell_voltage and, when the reset is on, below ' +
      'cell_ovp_voltage; the charge cell-voltage curve must still allow current up to it.',
    group: G_RESET,
    aliases: [alias('SOC_RESET_CELL_VOLTAGE')],
  },
  // Over-voltage controller.
  {
    key: 'cvl_controller',
    default: 'penalty',
    parse: oneOf('penalty', 'integral', 'clipped', 'off'),
    expected: 'penalty, integral, clipped or off',
    comment:
      'In bulk/absorption, when a cell exceeds the per-cell target: penalty = CVL is the sum of the cells minus every ' +
      'overshoot; integral = CVL falls by (max cell − target − float_switch_cell_diff) × cvl_integral_factor per ' +
      'second; clipped = CVL is the sum of the cells each capped at the target, + 10 mV; off = no controller.',
    group: G_OVP,
    aliases: [alias('CVL_CONTROLLER_MODE', controllerName)],
  },
  {
    key: 'cvl_integral_factor',
    default: '0.2',
    parse: num(0.001, 10),
    expected: 'a gain in V per V·s (0.001–10)',
    comment: 'Gain of the integral controller.',
    group: G_OVP,
    aliases: [alias('CVL_ICONTROLLER_FACTOR')],
  },
  {
    key: 'cvl_recovery_hold',
    default: '60',
    parse: num(0, 3600),
    expected: 'seconds (0–3600)',
    comment: 'Reductions act at once; a recovery first holds the lowered CVL this long, s …',
    group: G_OVP,
    aliases: [alias('CVL_RECOVERY_HOLD_SEC')],
  },
  {
    key: 'cvl_recovery_rate',
    default: '0.001',
    parse: num(0, 1),
    expected: 'volts per second (0–1)',
    comment: '… then ramps up at this rate, pack V/s. 0 = at once after the hold.',
    group: G_OVP,
    aliases: [alias('CVL_RECOVERY_RATE_V_PER_SEC')],
  },
  // Current limits.
  {
    key: 'derating_mode',
    default: 'linear',
    parse: oneOf('linear', 'step'),
    expected: 'linear or step',
    comment:
      'linear: interpolate between curve points. step: each point is a threshold whose fraction applies from that ' +
      'point on (never below linear).',
    group: G_CURRENT,
    aliases: [alias('CHARGE_MODE', chargeModeName)],
  },
  {
    key: 'current_decrease_interval',
    default: '60',
    parse: num(0, 3600),
    expected: 'seconds (0–3600)',
    comment:
      'Anti-flap: a small decrease of CCL/DCL is applied at most this often, s. Decreases to 0, decreases of at ' +
      'least current_immediate_decrease_percent, every hard stop and the BMS own limits act at once.',
    group: G_CURRENT,
    aliases: [alias('CVL_RECALCULATION_EVERY')],
  },
  {
    key: 'current_immediate_decrease_percent',
    default: '33',
    parse: num(0, 100),
    expected: 'a percentage (0–100)',
    comment: 'A decrease of at least this share of the published value is applied at once, %.',
    group: G_CURRENT,
    aliases: [alias('CVL_RECALCULATION_ON_MAX_PERCENTAGE_CHANGE')],
  },
  {
    key: 'ccl_recovery_threshold_percent',
    default: '1.5',
    parse: num(0, 100),
    expected: 'a percentage (0–100)',
    comment: 'After CCL reached 0 it rises again only once the computed value exceeds this % of max_charge_current.',
    group: G_CURRENT,
    aliases: [alias('CHARGE_CURRENT_RECOVERY_THRESHOLD_PERCENT', fractionToPercent)],
  },
  {
    key: 'ccl_recovery_hold',
    default: '30',
    parse: num(0, 3600),
    expected: 'seconds (0–3600)',
    comment: 'An increase of CCL waits this long, s …',
    group: G_CURRENT,
    aliases: [alias('CCL_RECOVERY_HOLD_SEC')],
  },
  {
    key: 'ccl_recovery_rate',
    default: '5',
    parse: num(0, 10000),
    expected: 'amperes per second (0–10000)',
    comment: '… then ramps at this rate, A/s. 0 = at once after the hold.',
    group: G_CURRENT,
    aliases: [alias('CCL_RECOVERY_RATE_A_PER_SEC')],
  },
  {
    key: 'dcl_recovery_threshold_percent',
    default: '1.5',
    parse: num(0, 100),
    expected: 'a percentage (0–100)',
    comment: 'After DCL reached 0 it rises again only once the computed value exceeds this % of max_discharge_current.',
    group: G_CURRENT,
    aliases: [alias('DISCHARGE_CURRENT_RECOVERY_THRESHOLD_PERCENT', fractionToPercent)],
  },
  {
    key: 'dcl_recovery_hold',
    default: '30',
    parse: num(0, 3600),
    expected: 'seconds (0–3600)',
    comment: 'An increase of DCL waits this long, s …',
    group: G_CURRENT,
    aliases: [alias('DCL_RECOVERY_HOLD_SEC')],
  },
  {
    key: 'dcl_recovery_rate',
    default: '5',
    parse: num(0, 10000),
    expected: 'amperes per second (0–10000)',
    comment: '… then ramps at this rate, A/s. 0 = at once after the hold.',
    group: G_CURRENT,
    aliases: [alias('DCL_RECOVERY_RATE_A_PER_SEC')],
  },
  ...curveKeys('ccl', 'cell_voltage', {
    enable: true,
    points: '3.500, 3.450, 3.425, 3.400, 3.375',
    fractions: '0.000, 0.005, 0.050, 0.250, 1.000',
    min: 2,
    max: 4.5,
    unit: 'V',
    comment:
      'Derate CCL by the highest cell voltage. The first point with fraction 0 must lie above max_cell_voltage, or ' +
      'the pack could never reach float.',
    enableAlias: 'CCCM_CV_ENABLE',
    pointsAlias: 'CELL_VOLTAGES_WHILE_CHARGING',
    fractionsAlias: 'MAX_CHARGE_CURRENT_CV_FRACTION',
  }),
  ...curveKeys('dcl', 'cell_voltage', {
    enable: true,
    points: '2.800, 2.900, 3.000, 3.100, 3.190',
    fractions: '0.000, 0.005, 0.050, 0.250, 1.000',
    min: 1.5,
    max: 4.5,
    unit: 'V',
    comment: 'Derate DCL by the lowest cell voltage.',
    enableAlias: 'DCCM_CV_ENABLE',
    pointsAlias: 'CELL_VOLTAGES_WHILE_DISCHARGING',
    fractionsAlias: 'MAX_DISCHARGE_CURRENT_CV_FRACTION',
  }),
  ...curveKeys('ccl', 'temperature', {
    enable: true,
    points: '0, 2, 5, 10, 40, 45, 50, 55',
    fractions: '0.00, 0.25, 0.50, 1.00, 1.00, 0.50, 0.25, 0.00',
    min: -40,
    max: 100,
    unit: '°C',
    comment: 'Derate CCL by temperature, evaluated at the coldest and at the warmest sensor (the lower fraction wins).',
    enableAlias: 'CCCM_T_ENABLE',
    pointsAlias: 'TEMPERATURES_WHILE_CHARGING',
    fractionsAlias: 'MAX_CHARGE_CURRENT_T_FRACTION',
  }),
  ...curveKeys('dcl', 'temperature', {
    enable: true,
    points: '-10, 0, 5, 10, 40, 45, 50, 55',
    fractions: '0.00, 0.25, 0.50, 1.00, 1.00, 0.50, 0.25, 0.00',
    min: -40,
    max: 100,
    unit: '°C',
    comment: 'Derate DCL by temperature, evaluated at the coldest and at the warmest sensor (the lower fraction wins).',
    enableAlias: 'DCCM_T_ENABLE',
    pointsAlias: 'TEMPERATURES_WHILE_DISCHARGING',
    fractionsAlias: 'MAX_DISCHARGE_CURRENT_T_FRACTION',
  }),
  ...curveKeys('ccl', 'mos_temperature', {
    enable: true,
    points: '70, 80, 90',
    fractions: '1.00, 0.25, 0.00',
    min: -40,
    max: 150,
    unit: '°C',
    comment: 'Derate CCL by the MOSFET temperature.',
    enableAlias: 'CCCM_T_MOSFET_ENABLE',
    pointsAlias: 'MOSFET_TEMPERATURES_WHILE_CHARGING',
    fractionsAlias: 'MAX_CHARGE_CURRENT_T_MOSFET_FRACTION',
  }),
  ...curveKeys('dcl', 'mos_temperature', {
    enable: true,
    points: '70, 80, 90',
    fractions: '1.00, 0.25, 0.00',
    min: -40,
    max: 150,
    unit: '°C',
    comment: 'Derate DCL by the MOSFET temperature.',
    enableAlias: 'DCCM_T_MOSFET_ENABLE',
    pointsAlias: 'MOSFET_TEMPERATURES_WHILE_DISCHARGING',
    fractionsAlias: 'MAX_DISCHARGE_CURRENT_T_MOSFET_FRACTION',
  }),
  ...curveKeys('ccl', 'soc', {
    enable: false,
    points: '98, 95, 90, 85',
    fractions: '0.10, 0.20, 0.50, 1.00',
    min: 0,
    max: 100,
    unit: '%',
    comment: 'Derate CCL by SoC (off by default: BMS SoC is often wrong near full).',
    enableAlias: 'CCCM_SOC_ENABLE',
    pointsAlias: 'SOC_WHILE_CHARGING',
    fractionsAlias: 'MAX_CHARGE_CURRENT_SOC_FRACTION',
  }),
  ...curveKeys('dcl', 'soc', {
    enable: false,
    points: '5, 10, 15, 20',
    fractions: '0.10, 0.20, 0.50, 1.00',
    min: 0,
    max: 100,
    unit: '%',
    comment: 'Derate DCL by SoC (off by default).',
    enableAlias: 'DCCM_SOC_ENABLE',
    pointsAlias: 'SOC_WHILE_DISCHARGING',
    fractionsAlias: 'MAX_DISCHARGE_CURRENT_SOC_FRACTION',
  }),
  // Driver-side SoC and charge request.
  {
    key: 'charge_request_soc',
    default: 'off',
    parse: numOrOff(0, 100),
    expected: 'a SoC in % (0–100) or off',
    comment: '/Info/ChargeRequest = 1 (ESS shows "Recharge") while the SoC is below this, %. off = never.',
    group: G_SOC,
    aliases: [],
  },
  {
    key: 'soc_calculation',
    default: 'false',
    parse: bool,
    expected: 'true or false',
    comment:
      'Compute SoC in the driver by counting charge (for BMSes with a poor SoC): starts from the BMS SoC, 100 % on ' +
      'entering float, soc_floor when the lowest cell is at min_cell_voltage while discharging.',
    group: G_SOC,
    aliases: [alias('SOC_CALCULATION')],
  },
  {
    key: 'soc_charge_efficiency',
    default: '99',
    parse: num(50, 100),
    expected: 'a percentage (50–100)',
    comment: 'Share of the charge current that is stored, % (LiFePO4: about 99).',
    group: G_SOC,
    aliases: [],
  },
  {
    key: 'soc_floor',
    default: '0',
    parse: num(0, 100),
    expected: 'a SoC in % (0–100)',
    comment: 'SoC set when the lowest cell is at or below min_cell_voltage while discharging for soc_floor_after, %.',
    group: G_SOC,
    aliases: [],
  },
  {
    key: 'soc_floor_after',
    default: '60',
    parse: num(0, 3600),
    expected: 'seconds (0–3600)',
    comment: 'How long the low cell must persist while discharging before the SoC is set to soc_floor, s.',
    group: G_SOC,
    aliases: [],
  },
  {
    key: 'soc_capacity',
    default: 'off',
    parse: numOrOff(1, 100000),
    expected: 'a capacity in Ah (1–100000) or off',
    comment: 'Capacity for the SoC calculation when the BMS reports none, Ah. off = use the BMS capacity only.',
    group: G_SOC,
    aliases: [alias('BATTERY_CAPACITY')],
  },
];

const KEY_BY_NAME = new Map(CHARGE_CONTROL_KEYS.map((k) => [k.key, k]));

/** dbus-serialbattery key name (upper case) → our key, for every alias. */
export const CHARGE_CONTROL_ALIASES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(CHARGE_CONTROL_KEYS.flatMap((k) => k.aliases.map((a) => [a.name, k.key]))),
);

const ALIAS_BY_LOWER = new Map(Object.entries(CHARGE_CONTROL_ALIASES).map(([a, k]) => [a.toLowerCase(), k]));

/** Our key for an INI key name (ours or a dbus-serialbattery alias, any case), or undefined. */
export function canonicalChargeControlKey(name: string): string | undefined {
  const lower = name.trim().toLowerCase();
  return KEY_BY_NAME.has(lower) ? lower : ALIAS_BY_LOWER.get(lower);
}

/** True for every name `parseChargeControlConfig` reads (for the unknown-key check of the config loader). */
export function isChargeControlKey(name: string): boolean {
  return canonicalChargeControlKey(name) !== undefined;
}

// ---- parsing ---------------------------------------------------------------------------------------------

/** The text for one key: ours or one alias (converted), never two that disagree. */
function lookup(
  def: ChargeControlKey,
  get: (key: string) => string | undefined,
  where: (key: string) => string,
): { text: string; name: string } | undefined {
  const found: { text: string; name: string }[] = [];
  const names: { name: string; convert?: (t: string) => string }[] = [{ name: def.key }];
  for (const a of def.aliases) if (a.name.toLowerCase() !== def.key) names.push(a);
  for (const { name, convert } of names) {
    // Ask for both spellings (ours are lower case, dbus-serialbattery's upper case); a case-insensitive getter
    // answers twice with the same text, which counts once.
    const spellings = name === def.key ? [name, name.toUpperCase()] : [name, name.toLowerCase()];
    for (const spelled of spellings) {
      const text = get(spelled);
      if (text === undefined) continue;
      found.push({ text: convert ? convert(text) : text, name: spelled });
      break;
    }
  }
  if (new Set(found.map((f) => f.text.trim())).size > 1) {
    throw new ChargeControlConfigError(
      `${where(def.key)}: ${found.map((f) => `${f.name} = ${JSON.stringify(f.text)}`).join(', ')}: ` +
        `these name the same setting with different values; keep only ${def.key}`,
      [def.key],
    );
  }
  return found[0];
}

function keyLabel(name: string, key: string): string {
  return name.toLowerCase() === key ? key : `${name} (= ${key})`;
}

/**
 * Reads and validates every charge-control key. `get(key)` returns the INI text for a key or undefined when it
 * is not set (it should look keys up case-insensitively; both spellings are asked for); `where(key)` names the
 * place for messages ("config.ini [battery.house]"). Throws ChargeControlConfigError naming the keys.
 */
export function parseChargeControlConfig(
  get: (key: string) => string | undefined,
  where: (key: string) => string,
): ChargeControlConfig {
  const values = new Map<string, Value>();
  for (const def of CHARGE_CONTROL_KEYS) {
    const found = lookup(def, get, where);
    const v = def.parse(found?.text ?? def.default);
    if (v === undefined) {
      const name = found ? keyLabel(found.name, def.key) : def.key;
      throw new ChargeControlConfigError(
        `${where(def.key)}: ${name} = ${JSON.stringify(found?.text ?? def.default)}: expected ${def.expected}`,
        [def.key],
      );
    }
    values.set(def.key, v);
  }
  const problems: { message: string; keys: string[] }[] = [];
  const cfg = assemble(values, problems);
  if (cfg !== undefined) checkConsistency(cfg, problems);
  if (problems.length > 0) {
    const first = problems[0] as { keys: string[] };
    throw new ChargeControlConfigError(
      `${where(first.keys[0] as string)}: ${problems.map((p) => p.message).join('; ')}`,
      [...new Set(problems.flatMap((p) => p.keys))],
    );
  }
  return cfg as ChargeControlConfig;
}

function assemble(
  values: Map<string, Value>,
  problems: { message: string; keys: string[] }[],
): ChargeControlConfig | undefined {
  const n = (k: string): number => values.get(k) as number;
  const opt = (k: string): number | undefined => (values.get(k) === null ? undefined : (values.get(k) as number));
  const b = (k: string): boolean => values.get(k) as boolean;
  const curve = (enableKey: string, pointsKey: string, fractionsKey: string): Curve | undefined => {
    const x = values.get(pointsKey) as number[];
    const y = values.get(fractionsKey) as number[];
    const problem = curveProblem(x, y);
    if (problem !== undefined) {
      // Checked even when switched off, so switching it on later cannot surprise.
      problems.push({ message: `${pointsKey} / ${fractionsKey}: ${problem}`, keys: [pointsKey, fractionsKey] });
      return undefined;
    }
    return b(enableKey) ? makeCurve(x, y) : undefined;
  };
  const direction = (d: 'ccl' | 'dcl'): DirectionConfig => ({
    cellVoltageCurve: curve(`${d}_cell_voltage_enable`, `${d}_cell_voltages`, `${d}_cell_voltage_fractions`),
    temperatureCurve: curve(`${d}_temperature_enable`, `${d}_temperatures`, `${d}_temperature_fractions`),
    mosTemperatureCurve: curve(
      `${d}_mos_temperature_enable`,
      `${d}_mos_temperatures`,
      `${d}_mos_temperature_fractions`,
    ),
    socCurve: curve(`${d}_soc_enable`, `${d}_socs`, `${d}_soc_fractions`),
    recoveryThresholdPercent: n(`${d}_recovery_threshold_percent`),
    recoveryHoldSec: n(`${d}_recovery_hold`),
    recoveryRate: n(`${d}_recovery_rate`),
  });
  const charge = direction('ccl');
  const discharge = direction('dcl');
  if (problems.length > 0) return undefined;
  return {
    maxCellVoltage: n('max_cell_voltage'),
    minCellVoltage: n('min_cell_voltage'),
    cellOvpVoltage: n('cell_ovp_voltage'),
    cellUvpVoltage: n('cell_uvp_voltage'),
    maxChargeCurrent: n('max_charge_current'),
    maxDischargeCurrent: n('max_discharge_current'),
    chargeMinTemperature: n('charge_min_temperature'),
    chargeMaxTemperature: n('charge_max_temperature'),
    dischargeMinTemperature: n('discharge_min_temperature'),
    dischargeMaxTemperature: n('discharge_max_temperature'),
    floatCellVoltage: n('float_cell_voltage'),
    voltageDrop: n('voltage_drop'),
    floatEnable: b('float_enable'),
    floatAfterSec: n('float_after'),
    floatSwitchCellDiff: opt('float_switch_cell_diff'),
    floatSwitchCellDeviation: n('float_switch_cell_deviation'),
    floatTransitionRate: n('float_transition_rate'),
    bulkSocThreshold: opt('bulk_soc_threshold'),
    bulkCellDiff: opt('bulk_cell_diff'),
    socResetAfterDays: opt('soc_reset_after_days'),
    socResetCellVoltage: n('soc_reset_cell_voltage'),
    cvlController: values.get('cvl_controller') as CvlControllerMode,
    cvlIntegralFactor: n('cvl_integral_factor'),
    cvlRecoveryHoldSec: n('cvl_recovery_hold'),
    cvlRecoveryRate: n('cvl_recovery_rate'),
    deratingMode: values.get('derating_mode') as CurveMode,
    currentDecreaseIntervalSec: n('current_decrease_interval'),
    currentImmediateDecreasePercent: n('current_immediate_decrease_percent'),
    charge,
    discharge,
    chargeRequestSoc: opt('charge_request_soc'),
    socCalculation: b('soc_calculation'),
    socChargeEfficiency: n('soc_charge_efficiency'),
    socFloor: n('soc_floor'),
    socFloorAfterSec: n('soc_floor_after'),
    socCapacity: opt('soc_capacity'),
  };
}

/** Settings that parse one by one but contradict each other. */
function checkConsistency(c: ChargeControlConfig, problems: { message: string; keys: string[] }[]): void {
  const rule = (ok: boolean, keys: string[], message: string): void => {
    if (!ok) problems.push({ message, keys });
  };
  rule(
    c.minCellVoltage < c.maxCellVoltage,
    ['min_cell_voltage', 'max_cell_voltage'],
    `min_cell_voltage (${c.minCellVoltage}) must be below max_cell_voltage (${c.maxCellVoltage})`,
  );
  rule(
    c.maxCellVoltage < c.cellOvpVoltage,
    ['max_cell_voltage', 'cell_ovp_voltage'],
    `max_cell_voltage (${c.maxCellVoltage}) must be below cell_ovp_voltage (${c.cellOvpVoltage})`,
  );
  rule(
    c.cellUvpVoltage < c.minCellVoltage,
    ['cell_uvp_voltage', 'min_cell_voltage'],
    `cell_uvp_voltage (${c.cellUvpVoltage}) must be below min_cell_voltage (${c.minCellVoltage})`,
  );
  rule(
    c.chargeMinTemperature < c.chargeMaxTemperature,
    ['charge_min_temperature', 'charge_max_temperature'],
    'charge_min_temperature must be below charge_max_temperature',
  );
  rule(
    c.dischargeMinTemperature < c.dischargeMaxTemperature,
    ['discharge_min_temperature', 'discharge_max_temperature'],
    'discharge_min_temperature must be below discharge_max_temperature',
  );
  rule(
    c.floatCellVoltage <= c.maxCellVoltage,
    ['float_cell_voltage', 'max_cell_voltage'],
    `float_cell_voltage (${c.floatCellVoltage}) must not be above max_cell_voltage (${c.maxCellVoltage})`,
  );
  rule(
    c.floatCellVoltage > c.minCellVoltage,
    ['float_cell_voltage', 'min_cell_voltage'],
    `float_cell_voltage (${c.floatCellVoltage}) must be above min_cell_voltage (${c.minCellVoltage})`,
  );
  rule(
    c.socResetCellVoltage > c.maxCellVoltage,
    ['soc_reset_cell_voltage', 'max_cell_voltage'],
    `soc_reset_cell_voltage (${c.socResetCellVoltage}) must be above max_cell_voltage (${c.maxCellVoltage})`,
  );
  const zeroAt = c.charge.cellVoltageCurve ? firstZeroInput(c.charge.cellVoltageCurve) : undefined;
  rule(
    zeroAt === undefined || zeroAt > c.maxCellVoltage,
    ['ccl_cell_voltages', 'ccl_cell_voltage_fractions', 'max_cell_voltage'],
    `the charge cell-voltage curve stops charging at ${zeroAt} V, not above max_cell_voltage (${c.maxCellVoltage}): ` +
      'the pack could never reach float',
  );
  if (c.socResetAfterDays !== undefined) {
    rule(
      c.socResetCellVoltage < c.cellOvpVoltage,
      ['soc_reset_cell_voltage', 'cell_ovp_voltage', 'soc_reset_after_days'],
      `soc_reset_cell_voltage (${c.socResetCellVoltage}) must be below cell_ovp_voltage (${c.cellOvpVoltage}) ` +
        'while soc_reset_after_days is on, or every reset ends in a hard stop',
    );
    rule(
      zeroAt === undefined || zeroAt > c.socResetCellVoltage,
      ['ccl_cell_voltages', 'ccl_cell_voltage_fractions', 'soc_reset_cell_voltage', 'soc_reset_after_days'],
      `the charge cell-voltage curve stops charging at ${zeroAt} V, not above soc_reset_cell_voltage ` +
        `(${c.socResetCellVoltage}): a SoC reset could never complete`,
    );
    rule(
      c.floatEnable,
      ['soc_reset_after_days', 'float_enable'],
      'soc_reset_after_days needs float_enable = true (a reset ends when float is reached)',
    );
  }
}

/** The built-in defaults (every key at its default). */
export const DEFAULT_CHARGE_CONTROL_CONFIG: ChargeControlConfig = parseChargeControlConfig(
  () => undefined,
  () => 'built-in defaults',
);

// ---- config.default.ini -----------------------------------------------------------------------------------

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/**
 * The commented charge-control block for the [charge] section of config.default.ini: every key at its default,
 * grouped, with its comment and the dbus-serialbattery name it replaces.
 */
export function renderChargeControlDefaults(): string {
  const out: string[] = [];
  let group = '';
  for (const def of CHARGE_CONTROL_KEYS) {
    if (def.group !== group) {
      if (out.length > 0) out.push('');
      out.push(`; ---- ${def.group} ----`);
      group = def.group;
    }
    for (const l of wrap(def.comment, 110)) out.push(`; ${l}`);
    const theirs = def.aliases.map((a) => a.name).filter((a) => a.toLowerCase() !== def.key);
    if (theirs.length > 0) out.push(`; (dbus-serialbattery: ${theirs.join(', ')})`);
    out.push(`${def.key} = ${def.default}`);
  }
  return `${out.join('\n')}\n`;
}
