/**
 * CVL: the bulk → absorption → float cycle, the SoC reset, and the per-cell over-voltage controller.
 *
 *   bulk ──sum ≥ target, spread ≤ float_switch_cell_diff──► absorption (timer)
 *   absorption ──timer ≥ float_after──► float transition (ramp down float_transition_rate V/s) ──► float
 *   absorption: spread > diff + deviation → timer from zero; sum < target − 0.5 V → back to plain bulk
 *   float ──SoC < bulk_soc_threshold │ spread ≥ bulk_cell_diff │ SoC reset due──► bulk
 *
 * "target" is cells × max_cell_voltage, or cells × soc_reset_cell_voltage while a SoC reset is due. All
 * comparisons use the uncompensated target; voltage_drop is added only to the published value.
 */
import type { ChargeControlConfig } from '../charge-control-config.js';
import type { ChargeState } from './state.js';

/** Sums of float cell voltages are compared with this slack (16 × 3.45 is 55.199999… in binary). */
const EPS = 1e-6;
/** The absorption timer is cancelled when the sum falls this far below the target (pack volts, prior-art §3c). */
const ABSORPTION_CANCEL_DROP_V = 0.5;
/** The clipped-sum controller leaves this much above the clipped sum so balancing current keeps flowing. */
const CLIPPED_MARGIN_V = 0.01;
const DAY_MS = 86_400_000;

export interface VoltageInput {
  /** Cell voltages with their sum and extremes when they can be trusted (online, all valid); undefined otherwise. */
  cells: { readonly list: readonly number[]; sum: number; min: number; max: number } | undefined;
  cellCount: number | undefined;
  /** SoC, %, when known. */
  soc: number | undefined;
  /** Charge voltage the BMS itself asks for, V, when it reports one. */
  bmsChargeVoltage: number | undefined;
}

export interface VoltageResult {
  state: ChargeState;
  /** Published CVL (with voltage_drop), V; undefined only when the cell count is unknown. */
  chargeVoltage: number | undefined;
  batteryLowVoltage: number | undefined;
  chargeMode: string;
  maxChargeCellVoltage: number;
  /** True on the call that switched to float (SoC estimator: 100 %). */
  enteredFloat: boolean;
}

type Ovp = 'none' | 'limiting' | 'recovering';

const round3 = (v: number): number => Math.round(v * 1000) / 1000;
/** Cell spreads are compared at 0.1 mV, so 3.38 − 3.30 counts as the 0.080 V it is. */
const round4 = (v: number): number => Math.round(v * 10_000) / 10_000;
const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);

/** One step of the charge-voltage logic. `s` is a copy owned by the caller and is updated in place. */
export function chargeVoltageStep(
  input: VoltageInput,
  s: ChargeState,
  cfg: ChargeControlConfig,
  dtMs: number,
  nowMs: number,
): VoltageResult {
  updateSocReset(s, cfg, dtMs);
  if (!cfg.floatEnable) {
    s.mode = 'bulk';
    s.absorptionMs = null;
    s.transitionVoltage = null;
  }
  const limitCell = s.socResetDue ? cfg.socResetCellVoltage : cfg.maxCellVoltage;
  const n = input.cellCount;
  if (!n) {
    return {
      state: s,
      chargeVoltage: undefined,
      batteryLowVoltage: undefined,
      chargeMode: modeText(s, cfg, 'none', input.cells === undefined),
      maxChargeCellVoltage: s.mode === 'float' ? cfg.floatCellVoltage : limitCell,
      enteredFloat: false,
    };
  }

  const maxPack = n * limitCell;
  const normalMaxPack = n * cfg.maxCellVoltage;
  const floatPack = n * cfg.floatCellVoltage;
  const minPack = n * cfg.minCellVoltage;
  // A restored state may come from another config or cell count: keep its voltages inside this one's range.
  if (s.transitionVoltage !== null) {
    s.transitionVoltage = s.transitionVoltage > floatPack + EPS ? Math.min(s.transitionVoltage, normalMaxPack) : null;
  }
  if (s.controllerVoltage !== null) s.controllerVoltage = clamp(s.controllerVoltage, minPack, maxPack);

  let cvl: number;
  let ovp: Ovp = 'none';
  let enteredFloat = false;
  const cells = input.cells;
  if (cells === undefined) {
    // Blind: freeze the cycle and never ask for more than float. With DC-coupled PV feed-in the chargers ignore
    // CCL, so CVL is the only lever left.
    const inForce = s.mode === 'float' ? (s.transitionVoltage ?? floatPack) : (s.controllerVoltage ?? maxPack);
    cvl = Math.min(inForce, floatPack);
  } else {
    const { sum, max: maxCell } = cells;
    const spread = round4(cells.max - cells.min);
    if (cfg.floatEnable) {
      enteredFloat = cycleStep(s, cfg, { sum, spread, soc: input.soc, maxPack, normalMaxPack, floatPack, dtMs, nowMs });
    }
    if (s.mode === 'bulk') {
      const c = overVoltageController(s, cfg, { cells: cells.list, sum, maxCell, limitCell, maxPack, minPack, dtMs });
      cvl = c.cvl;
      ovp = c.ovp;
    } else {
      cvl = s.transitionVoltage ?? floatPack;
    }
  }

  const bms = input.bmsChargeVoltage;
  if (bms !== undefined && Number.isFinite(bms) && bms > 0) cvl = Math.min(cvl, bms);
  cvl = Math.max(cvl, minPack);
  let cellTarget = s.mode === 'float' ? (s.transitionVoltage ?? floatPack) / n : limitCell;
  if (cells === undefined) cellTarget = Math.min(cellTarget, cfg.floatCellVoltage);
  return {
    state: s,
    chargeVoltage: round3(cvl + cfg.voltageDrop),
    batteryLowVoltage: round3(minPack),
    chargeMode: modeText(s, cfg, ovp, cells === undefined),
    maxChargeCellVoltage: round3(cellTarget),
    enteredFloat,
  };
}

/** SoC-reset countdown in observed operating time; due until float is reached. */
function updateSocReset(s: ChargeState, cfg: ChargeControlConfig, dtMs: number): void {
  if (cfg.socResetAfterDays === undefined) {
    s.socResetDue = false;
    return;
  }
  if (s.socResetDue) return;
  s.socResetElapsedMs += dtMs;
  if (s.socResetElapsedMs >= cfg.socResetAfterDays * DAY_MS) s.socResetDue = true;
}

interface CycleInput {
  sum: number;
  spread: number;
  soc: number | undefined;
  maxPack: number;
  normalMaxPack: number;
  floatPack: number;
  dtMs: number;
  nowMs: number;
}

/** Bulk/absorption/float transitions. Returns true when float was entered on this call. */
function cycleStep(s: ChargeState, cfg: ChargeControlConfig, c: CycleInput): boolean {
  if (s.mode === 'bulk') {
    const balanced = cfg.floatSwitchCellDiff === undefined || c.spread <= round4(cfg.floatSwitchCellDiff);
    if (s.absorptionMs === null) {
      if (c.sum >= c.maxPack - EPS && balanced) s.absorptionMs = 0;
    } else if (
      cfg.floatSwitchCellDiff !== undefined &&
      c.spread > round4(cfg.floatSwitchCellDiff + cfg.floatSwitchCellDeviation)
    ) {
      s.absorptionMs = 0;
    } else {
      s.absorptionMs += c.dtMs;
    }
    if (s.absorptionMs !== null) {
      if (s.absorptionMs >= cfg.floatAfterSec * 1000) {
        enterFloat(s, cfg, c);
        return true;
      }
      if (c.sum < c.maxPack - ABSORPTION_CANCEL_DROP_V) s.absorptionMs = null;
    }
    return false;
  }
  const backToBulk =
    s.socResetDue ||
    (cfg.bulkSocThreshold !== undefined && c.soc !== undefined && c.soc < cfg.bulkSocThreshold) ||
    (cfg.bulkCellDiff !== undefined && c.spread >= round4(cfg.bulkCellDiff));
  if (backToBulk) {
    s.mode = 'bulk';
    s.absorptionMs = null;
    s.transitionVoltage = null;
    s.controllerVoltage = null;
    s.controllerHoldMs = 0;
  } else if (s.transitionVoltage !== null) {
    const next = s.transitionVoltage - (cfg.floatTransitionRate * c.dtMs) / 1000;
    s.transitionVoltage = next > c.floatPack + EPS ? next : null;
  }
  return false;
}

function enterFloat(s: ChargeState, cfg: ChargeControlConfig, c: CycleInput): void {
  // The ramp starts from the CVL in force, but never above the normal max voltage: after a SoC reset the
  // pack drops straight back to cells × max_cell_voltage and ramps from there.
  const from = Math.min(s.controllerVoltage ?? c.maxPack, c.normalMaxPack);
  s.mode = 'float';
  s.absorptionMs = null;
  s.controllerVoltage = null;
  s.controllerHoldMs = 0;
  s.transitionVoltage = cfg.floatTransitionRate > 0 && from > c.floatPack + EPS ? from : null;
  if (s.socResetDue) {
    s.socResetDue = false;
    s.socResetElapsedMs = 0;
    s.lastSocResetMs = c.nowMs;
  }
}

interface ControllerInput {
  cells: readonly number[];
  sum: number;
  maxCell: number;
  limitCell: number;
  maxPack: number;
  minPack: number;
  dtMs: number;
}

/**
 * Lowers CVL while a cell is above the per-cell target (prior-art §3c). Reductions act at once; a recovery
 * holds cvl_recovery_hold, then ramps at cvl_recovery_rate. With MPPTs and DC-coupled feed-in Victron ignores
 * CCL, so this is what protects a cell that runs ahead.
 */
function overVoltageController(
  s: ChargeState,
  cfg: ChargeControlConfig,
  c: ControllerInput,
): { cvl: number; ovp: Ovp } {
  let raw = c.maxPack;
  const over = c.maxCell > c.limitCell;
  switch (cfg.cvlController) {
    case 'penalty':
      if (over) raw = c.sum - c.cells.reduce((acc, v) => acc + Math.max(0, v - c.limitCell), 0);
      break;
    case 'clipped':
      if (over) raw = c.cells.reduce((acc, v) => acc + Math.min(v, c.limitCell), 0) + CLIPPED_MARGIN_V;
      break;
    case 'integral': {
      // Steers the highest cell to target + float_switch_cell_diff; gain in V per V·s.
      const setpoint = c.limitCell + (cfg.floatSwitchCellDiff ?? 0);
      const base = s.controllerVoltage ?? c.maxPack;
      raw = base - (c.maxCell - setpoint) * cfg.cvlIntegralFactor * (c.dtMs / 1000);
      break;
    }
    case 'off':
      break;
  }
  raw = clamp(raw, c.minPack, c.maxPack);

  const held = s.controllerVoltage;
  if (held === null || raw <= held) {
    // Nothing to hold (or a reduction, which acts at once). At the max voltage the controller lets go.
    if (raw >= c.maxPack - EPS) {
      s.controllerVoltage = null;
      s.controllerHoldMs = 0;
      return { cvl: c.maxPack, ovp: 'none' };
    }
    s.controllerVoltage = raw;
    s.controllerHoldMs = 0;
    return { cvl: raw, ovp: 'limiting' };
  }
  s.controllerHoldMs += c.dtMs;
  const holdMs = cfg.cvlRecoveryHoldSec * 1000;
  let out = held;
  if (s.controllerHoldMs >= holdMs) {
    out =
      cfg.cvlRecoveryRate > 0
        ? Math.min(raw, held + (cfg.cvlRecoveryRate * Math.min(c.dtMs, s.controllerHoldMs - holdMs)) / 1000)
        : raw;
  }
  if (out >= c.maxPack - EPS) {
    s.controllerVoltage = null;
    s.controllerHoldMs = 0;
    return { cvl: c.maxPack, ovp: 'none' };
  }
  s.controllerVoltage = out;
  return { cvl: out, ovp: 'recovering' };
}

/** /Info/ChargeMode text. */
function modeText(s: ChargeState, cfg: ChargeControlConfig, ovp: Ovp, noData: boolean): string {
  let t: string;
  if (!cfg.floatEnable) t = 'Bulk (float off)';
  else if (s.mode === 'float') t = s.transitionVoltage !== null ? 'Float transition' : 'Float';
  else if (s.absorptionMs !== null) {
    const leftMin = Math.max(1, Math.ceil((cfg.floatAfterSec * 1000 - s.absorptionMs) / 60_000));
    t = `Absorption ${leftMin}m`;
  } else t = 'Bulk';
  if (ovp === 'limiting') t += ' (cell OVP)';
  else if (ovp === 'recovering') t += ' (cell OVP*)';
  if (s.socResetDue) t += ' & SoC reset';
  if (noData) t += ' (no data)';
  return t;
}
