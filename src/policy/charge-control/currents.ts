/**
 * CCL / DCL: hard gates, derating curves and anti-flap.
 *
 *   gate closed ───────────────────────────────────────────────────────────────► 0 at once
 *   target = min(config max, BMS limit, cell-voltage, temperature, MOSFET, SoC curve × max)
 *   published ← anti-flap(target): decreases at once when ≥ current_immediate_decrease_percent or to 0,
 *                otherwise at most every current_decrease_interval; increases hold, then ramp;
 *                from 0 only once target > recovery threshold
 *   published ≤ min(config max, BMS limit) always (the ceiling bypasses anti-flap)
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import type { Health } from '../../domain/battery-state.js';
import type { ChargeControlConfig, DirectionConfig } from '../charge-control-config.js';
import { evaluateCurve } from '../curves.js';
import type { CurrentLimitState } from './state.js';

export type Direction = 'charge' | 'discharge';

/** What the limits are computed from, scanned once per call. */
export interface Measurements {
  cells: readonly number[];
  /** Sum, lowest and highest cell, V (meaningful only when `valid`). */
  cellSum: number;
  cellMin: number;
  cellMax: number;
  /** Coldest and warmest sensor, °C; undefined without sensors. */
  tempMin: number | undefined;
  tempMax: number | undefined;
  mosTemperature: number | undefined;
  soc: number | undefined;
  /** Cells present (or a BMS-managed battery), every cell a positive finite number, every temperature finite. */
  valid: boolean;
}

export function measurementsOf(s: BatterySnapshot | undefined): Measurements {
  const cells = s?.cellVoltages ?? [];
  let valid = cells.length > 0 || bmsManaged(s);
  let cellSum = 0;
  let cellMin = Number.POSITIVE_INFINITY;
  let cellMax = Number.NEGATIVE_INFINITY;
  for (const c of cells) {
    // A cell at 0 V or below is an open sense wire, not a measurement.
    if (!(Number.isFinite(c) && c > 0)) valid = false;
    cellSum += c;
    if (c < cellMin) cellMin = c;
    if (c > cellMax) cellMax = c;
  }
  let tempMin: number | undefined;
  let tempMax: number | undefined;
  for (const t of s?.temperatures ?? []) {
    const c = t.celsius;
    if (!Number.isFinite(c)) valid = false;
    if (tempMin === undefined || c < tempMin) tempMin = c;
    if (tempMax === undefined || c > tempMax) tempMax = c;
  }
  const mosTemperature = s?.mosTemperature;
  if (mosTemperature !== undefined && !Number.isFinite(mosTemperature)) valid = false;
  const soc = s?.soc !== undefined && Number.isFinite(s.soc) ? s.soc : undefined;
  return { cells, cellSum, cellMin, cellMax, tempMin, tempMax, mosTemperature, soc, valid };
}

/** Gates that only say "no data yet": before anything was ever published they do not start a recovery hold. */
const NO_DATA_GATES = new Set(['offline', 'data stale', 'no cell voltages']);

/**
 * The first closed hard gate per direction (the first policy's gates, same texts and order), or undefined when
 * open. A closed gate means 0 at once.
 */
export function hardGates(
  s: BatterySnapshot | undefined,
  health: Health,
  m: Measurements,
  cfg: ChargeControlConfig,
): { charge: string | undefined; discharge: string | undefined } {
  let common: string | undefined;
  if (health !== 'online' || s === undefined)
    common = health === 'offline' || s === undefined ? 'offline' : 'data stale';
  else if (m.cells.length === 0 && !bmsManaged(s)) common = 'no cell voltages';
  else if (!m.valid) common = 'invalid measurement';
  if (common !== undefined || s === undefined) return { charge: common, discharge: common };
  const p = s.protection ?? {};
  const tMin = m.tempMin ?? Number.NaN;
  const tMax = m.tempMax ?? Number.NaN;

  let charge: string | undefined;
  if (m.cellMax >= cfg.cellOvpVoltage) charge = 'cell over-voltage';
  else if (s.chargeFet === false) charge = 'charge FET off';
  else if (tMin < cfg.chargeMinTemperature) charge = 'temperature below charge minimum';
  else if (tMax > cfg.chargeMaxTemperature) charge = 'temperature above charge maximum';
  else if (
    p.cellOverVoltage === true ||
    p.packOverVoltage === true ||
    p.chargeOverTemperature === true ||
    p.chargeUnderTemperature === true ||
    p.chargeOverCurrent === true ||
    p.shortCircuit === true
  ) {
    charge = 'BMS charge protection';
  }

  let discharge: string | undefined;
  if (m.cellMin <= cfg.cellUvpVoltage) discharge = 'cell under-voltage';
  else if (s.dischargeFet === false) discharge = 'discharge FET off';
  else if (tMin < cfg.dischargeMinTemperature) discharge = 'temperature below discharge minimum';
  else if (tMax > cfg.dischargeMaxTemperature) discharge = 'temperature above discharge maximum';
  else if (
    p.cellUnderVoltage === true ||
    p.packUnderVoltage === true ||
    p.dischargeOverTemperature === true ||
    p.dischargeUnderTemperature === true ||
    p.dischargeOverCurrent === true ||
    p.shortCircuit === true
  ) {
    discharge = 'BMS discharge protection';
  }
  return { charge, discharge };
}

/**
 * A battery that reports no cell voltages but its own charge voltage and both current limits (Pylon-type CAN
 * batteries): its BMS manages the cells, so the cell gates cannot apply and its own limits are the ceiling.
 */
export function bmsManaged(s: BatterySnapshot | undefined): boolean {
  const l = s?.bmsLimits;
  return (
    (s?.cellVoltages?.length ?? 0) === 0 &&
    l !== undefined &&
    Number.isFinite(l.chargeVoltage) &&
    Number.isFinite(l.chargeCurrent) &&
    Number.isFinite(l.dischargeCurrent)
  );
}

/** A candidate limit and the rule that produced it. */
export interface Candidate {
  value: number;
  reason: string;
}

/** The BMS's own limit for this direction; a non-finite or negative value counts as 0 (when in doubt, lower). */
export function bmsLimitOf(s: BatterySnapshot | undefined, dir: Direction): number | undefined {
  const v = dir === 'charge' ? s?.bmsLimits?.chargeCurrent : s?.bmsLimits?.dischargeCurrent;
  if (v === undefined) return undefined;
  return Number.isFinite(v) && v > 0 ? v : 0;
}

/**
 * The computed limit before anti-flap: the lowest of the configured maximum, the BMS's own limit and every
 * enabled curve × maximum. On a tie the earlier rule names the reason (config maximum first).
 */
export function deratedTarget(
  dir: Direction,
  s: BatterySnapshot | undefined,
  m: Measurements,
  cfg: ChargeControlConfig,
): Candidate {
  const d: DirectionConfig = dir === 'charge' ? cfg.charge : cfg.discharge;
  const max = dir === 'charge' ? cfg.maxChargeCurrent : cfg.maxDischargeCurrent;
  const f = (curve: NonNullable<DirectionConfig['socCurve']>, x: number): number =>
    evaluateCurve(curve, x, cfg.deratingMode);
  let best: Candidate = { value: max, reason: 'config maximum' };
  // Strictly lower replaces: on a tie the earlier rule keeps the reason.
  const consider = (value: number, reason: string): void => {
    if (value < best.value) best = { value, reason };
  };
  const bms = bmsLimitOf(s, dir);
  if (bms !== undefined) consider(bms, 'BMS limit');
  if (d.cellVoltageCurve && m.cells.length > 0) {
    consider(max * f(d.cellVoltageCurve, dir === 'charge' ? m.cellMax : m.cellMin), 'cell voltage');
  }
  if (d.temperatureCurve && m.tempMin !== undefined && m.tempMax !== undefined) {
    consider(max * Math.min(f(d.temperatureCurve, m.tempMin), f(d.temperatureCurve, m.tempMax)), 'temperature');
  }
  if (d.mosTemperatureCurve && m.mosTemperature !== undefined) {
    consider(max * f(d.mosTemperatureCurve, m.mosTemperature), 'MOSFET temperature');
  }
  if (d.socCurve && m.soc !== undefined) consider(max * f(d.socCurve, m.soc), 'SoC');
  return best;
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;

export interface LimitStepInput {
  target: Candidate;
  /** Closed hard gate, or undefined. */
  gate: string | undefined;
  /** Hard ceiling applied after anti-flap: min(config max, BMS limit). */
  ceiling: Candidate;
  /** Configured maximum of this direction (for the recovery threshold). */
  max: number;
  dir: DirectionConfig;
  dtMs: number;
}

/** Anti-flap for one limit. Returns the published value, its explanation and the new memory. */
export function limitStep(
  st: CurrentLimitState,
  x: LimitStepInput,
  cfg: ChargeControlConfig,
): { value: number; reason: string; state: CurrentLimitState } {
  const sinceDecreaseMs = st.sinceDecreaseMs === null ? null : st.sinceDecreaseMs + x.dtMs;
  if (x.gate !== undefined) {
    // Hard gates act at once. Before the first real value, "no data yet" leaves the memory empty so the first
    // valid data is published without a recovery hold (nothing to flap against at start-up).
    if (st.published === null && NO_DATA_GATES.has(x.gate)) {
      return { value: 0, reason: x.gate, state: { ...st, sinceDecreaseMs, risingMs: null } };
    }
    return { value: 0, reason: x.gate, state: { published: 0, reason: x.gate, sinceDecreaseMs, risingMs: null } };
  }

  const target = round3(x.target.value);
  const held = st.published;
  let out: number;
  let base: string;
  let reason: string;
  let risingMs: number | null = null;
  let sinceDecrease = sinceDecreaseMs;
  if (held === null || target === held) {
    out = target;
    base = reason = x.target.reason;
  } else if (target < held) {
    const large = target === 0 || held - target >= (held * cfg.currentImmediateDecreasePercent) / 100;
    const due = sinceDecrease === null || sinceDecrease >= cfg.currentDecreaseIntervalSec * 1000;
    if (large || due) {
      out = target;
      base = reason = x.target.reason;
      sinceDecrease = 0;
    } else {
      out = held;
      base = st.reason;
      reason = `${x.target.reason} *`;
    }
  } else if (held === 0 && target <= (x.max * x.dir.recoveryThresholdPercent) / 100) {
    // From 0 only once the computed value is clearly above 0, or a limit hovering near 0 would toggle.
    out = 0;
    base = st.reason;
    reason = `${st.reason} *`;
  } else {
    risingMs = st.risingMs === null ? 0 : st.risingMs + x.dtMs;
    const holdMs = x.dir.recoveryHoldSec * 1000;
    if (risingMs < holdMs) out = held;
    else if (x.dir.recoveryRate <= 0) out = target;
    else out = Math.min(target, round3(held + (x.dir.recoveryRate * Math.min(x.dtMs, risingMs - holdMs)) / 1000));
    if (out >= target) {
      out = target;
      base = reason = x.target.reason;
      risingMs = null;
    } else {
      base = st.reason;
      reason = `${st.reason} *`;
    }
  }
  if (out > x.ceiling.value) {
    out = x.ceiling.value;
    base = reason = x.ceiling.reason;
  }
  return { value: out, reason, state: { published: out, reason: base, sinceDecreaseMs: sinceDecrease, risingMs } };
}
