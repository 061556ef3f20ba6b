/**
 * Charge control: what the inverters and chargers are told (CVL, CCL, DCL, BatteryLowVoltage) and why.
 * Pure: snapshot + health + previous state + config + clock in, limits + new state out. It replaces the first
 * policy and keeps every one of its hard gates (test/policy/charge-control-currents.test.ts repeats its table).
 *
 *   snapshot, health ──► measurements ──► hard gates ─────────────────────────┐
 *                                    ├──► CVL: bulk/absorption/float, SoC reset, cell OVP controller (voltage.ts)
 *                                    └──► CCL/DCL: derating curves → anti-flap → ceiling (currents.ts)
 *
 * Safety rules (victron-dbus.md §6): CCL = 0 is the only thing that stops charging on Victron, so every doubt
 * ends in 0 (not online, missing or invalid cells, OVP, FET off, temperature window, BMS protection); hard gates
 * bypass anti-flap; outputs are always finite numbers; without trustworthy data CVL is capped at float.
 *
 * The caller threads `state` from one call to the next and calls at least every few seconds (the monitor calls
 * on each snapshot and every second): timers count observed time, at most MAX_TIME_STEP_MS per call.
 */
import type { BatterySnapshot } from '../domain/battery-snapshot.js';
import type { ChargeLimits, Health } from '../domain/battery-state.js';
import {
  bmsLimitOf,
  bmsManaged,
  deratedTarget,
  hardGates,
  limitStep,
  measurementsOf,
} from './charge-control/currents.js';
import type { ChargeState } from './charge-control/state.js';
import { chargeVoltageStep } from './charge-control/voltage.js';
import type { ChargeControlConfig } from './charge-control-config.js';

export type { ChargeState, CurrentLimitState } from './charge-control/state.js';
export { freshChargeState, parseChargeState, serializeChargeState } from './charge-control/state.js';

/** The longest step between two calls that timers count; a longer gap (restart, clock jump) counts as this. */
export const MAX_TIME_STEP_MS = 10_000;

export interface ChargeControlInput {
  snapshot: BatterySnapshot | undefined;
  health: Health;
  /** Cell count to base CVL on when the snapshot has none (e.g. offline after a restart). */
  cellCount: number | undefined;
}

/** The limits plus the texts and extras published under /Info. */
export interface ChargeControlLimits extends ChargeLimits {
  /** /Info/ChargeMode: "Bulk", "Absorption 12m", "Float transition", "Float", with "(cell OVP)", "& SoC reset"… */
  chargeMode: string;
  /** /Info/MaxChargeCellVoltage: the per-cell target in force, V. */
  maxChargeCellVoltage: number;
  /** /Info/ChargeRequest: 1 while the SoC is below charge_request_soc. */
  chargeRequest: 0 | 1;
}

/** Things that happened on this call, for the SoC estimator and history. */
export interface ChargeEvents {
  /** The battery switched to float (counts as full: SoC 100 %). */
  enteredFloat: boolean;
}

export interface ChargeControlResult {
  limits: ChargeControlLimits;
  state: ChargeState;
  events: ChargeEvents;
}

function timeStep(lastMs: number | null, nowMs: number): number {
  if (lastMs === null || !Number.isFinite(nowMs)) return 0;
  const dt = nowMs - lastMs;
  // A clock that went back counts as no time; a long gap counts as one maximal step.
  return dt > 0 ? Math.min(dt, MAX_TIME_STEP_MS) : 0;
}

/** One evaluation of the charge-control policy. Does not modify `state`. */
export function chargeControl(
  input: ChargeControlInput,
  state: ChargeState,
  cfg: ChargeControlConfig,
  nowMs: number,
): ChargeControlResult {
  const dtMs = timeStep(state.lastCallMs, nowMs);
  const s: ChargeState = {
    ...state,
    ccl: { ...state.ccl },
    dcl: { ...state.dcl },
    lastCallMs: Number.isFinite(nowMs) ? nowMs : state.lastCallMs,
  };
  const snap = input.snapshot;
  const m = measurementsOf(snap);
  const gates = hardGates(snap, input.health, m, cfg);
  const usable = input.health === 'online' && snap !== undefined && m.valid;
  const cellCount = m.cells.length || snap?.cellCount || input.cellCount || undefined;

  const v = chargeVoltageStep(
    {
      // A BMS-managed battery has no cells: the cycle and the cell controller have nothing to act on.
      cells:
        usable && m.cells.length > 0 ? { list: m.cells, sum: m.cellSum, min: m.cellMin, max: m.cellMax } : undefined,
      cellCount,
      soc: usable ? m.soc : undefined,
      bmsChargeVoltage: snap?.bmsLimits?.chargeVoltage,
    },
    s,
    cfg,
    dtMs,
    nowMs,
  );

  const current = (dir: 'charge' | 'discharge') => {
    const max = dir === 'charge' ? cfg.maxChargeCurrent : cfg.maxDischargeCurrent;
    const bms = bmsLimitOf(snap, dir);
    const ceiling =
      bms !== undefined && bms < max ? { value: bms, reason: 'BMS limit' } : { value: max, reason: 'config maximum' };
    const gate = dir === 'charge' ? gates.charge : gates.discharge;
    return limitStep(
      dir === 'charge' ? s.ccl : s.dcl,
      {
        target: gate === undefined ? deratedTarget(dir, snap, m, cfg) : ceiling,
        gate,
        ceiling,
        max,
        dir: dir === 'charge' ? cfg.charge : cfg.discharge,
        dtMs,
      },
      cfg,
    );
  };
  const ccl = current('charge');
  const dcl = current('discharge');
  s.ccl = ccl.state;
  s.dcl = dcl.state;

  const chargeRequest =
    cfg.chargeRequestSoc !== undefined && usable && m.soc !== undefined && m.soc < cfg.chargeRequestSoc ? 1 : 0;

  // A BMS-managed battery (no cells, its own limits): CVL is the BMS's own, never above it nor above
  // cells × max_cell_voltage when the cell count is known; BatteryLowVoltage never above CVL.
  const managed = bmsManaged(snap) && usable;
  let chargeVoltage = v.chargeVoltage;
  let lowVoltage = v.batteryLowVoltage;
  const bmsCvl = snap?.bmsLimits?.chargeVoltage;
  if (managed && bmsCvl !== undefined) {
    const cap = cellCount ? cellCount * cfg.maxCellVoltage + cfg.voltageDrop : Number.POSITIVE_INFINITY;
    chargeVoltage = Math.min(bmsCvl + cfg.voltageDrop, cap);
    const low = snap?.bmsLimits?.dischargeVoltage ?? v.batteryLowVoltage;
    lowVoltage = low === undefined ? undefined : Math.min(low, chargeVoltage);
  }
  return {
    limits: {
      chargeVoltage: finiteOrUndefined(chargeVoltage),
      batteryLowVoltage: finiteOrUndefined(lowVoltage),
      chargeCurrent: finiteOrZero(ccl.value),
      dischargeCurrent: finiteOrZero(dcl.value),
      chargeReason: ccl.reason,
      dischargeReason: dcl.reason,
      chargeMode: managed ? 'BMS managed' : v.chargeMode,
      maxChargeCellVoltage: v.maxChargeCellVoltage,
      chargeRequest,
    },
    state: s,
    events: { enteredFloat: v.enteredFloat },
  };
}

// Last line of defence: with a validated config every value is already finite; never publish NaN regardless.
const finiteOrZero = (v: number): number => (Number.isFinite(v) && v > 0 ? v : 0);
const finiteOrUndefined = (v: number | undefined): number | undefined =>
  v !== undefined && Number.isFinite(v) ? v : undefined;
