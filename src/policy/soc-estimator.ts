/**
 * Driver-side SoC by counting charge, for BMSes whose own SoC is poor (soc_calculation = true). Pure.
 *
 *   start         the BMS's SoC; without one, unknown until the first float
 *   every call    SoC += I × dt / capacity (trapezoid between calls; charge × soc_charge_efficiency), 0–100 %
 *   float entered 100 % (the charge cycle's "full" is the reference point)
 *   low cell      lowest cell ≤ min_cell_voltage while discharging for soc_floor_after → soc_floor
 *
 * A gap longer than `maxGapMs` (lost data, restart) is not integrated: the current during it is unknown, and
 * guessing would drift the SoC for good. The next float corrects whatever drift remains.
 */
import type { BatterySnapshot } from '../domain/battery-snapshot.js';
import type { Health } from '../domain/battery-state.js';
import type { ChargeControlConfig } from './charge-control-config.js';

export interface SocEstimatorConfig {
  /** Share of the charge current that is stored, %. */
  chargeEfficiencyPercent: number;
  /** SoC set on a low cell while discharging, %. */
  floorSoc: number;
  floorAfterSec: number;
  /** Lowest cell at or below this counts as empty, V. */
  lowCellVoltage: number;
  /** Used when the BMS reports no installed capacity, Ah. */
  capacityAh: number | undefined;
  /** Longer steps between calls are not integrated, ms. */
  maxGapMs: number;
}

/** The estimator settings from the charge-control config; `maxGapMs` comes from the poll timing (stale_after). */
export function socEstimatorConfig(cfg: ChargeControlConfig, maxGapMs: number): SocEstimatorConfig {
  return {
    chargeEfficiencyPercent: cfg.socChargeEfficiency,
    floorSoc: cfg.socFloor,
    floorAfterSec: cfg.socFloorAfterSec,
    lowCellVoltage: cfg.minCellVoltage,
    capacityAh: cfg.socCapacity,
    maxGapMs,
  };
}

/** Plain JSON data. */
export interface SocEstimatorState {
  version: 1;
  /** Estimated SoC, %; null = not known yet. */
  soc: number | null;
  /** `nowMs` and current of the previous integrated call; null after a gap. */
  lastMs: number | null;
  lastCurrent: number | null;
  /** Time the low-cell condition has lasted, ms; null = not present. */
  lowCellMs: number | null;
}

export function freshSocEstimatorState(): SocEstimatorState {
  return { version: 1, soc: null, lastMs: null, lastCurrent: null, lowCellMs: null };
}

export interface SocEstimatorInput {
  snapshot: BatterySnapshot | undefined;
  health: Health;
  /** From chargeControl's events on the same tick. */
  enteredFloat: boolean;
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;
const clampSoc = (v: number): number => Math.min(100, Math.max(0, v));

/** One step of the estimator. Returns the SoC to publish (undefined while unknown) and the new state. */
export function estimateSoc(
  input: SocEstimatorInput,
  state: SocEstimatorState,
  cfg: SocEstimatorConfig,
  nowMs: number,
): { soc: number | undefined; state: SocEstimatorState } {
  const s: SocEstimatorState = { ...state };
  const snap = input.snapshot;
  const installed = snap?.capacityInstalled;
  const capacity = installed !== undefined && Number.isFinite(installed) && installed > 0 ? installed : cfg.capacityAh;
  const current = snap?.current !== undefined && Number.isFinite(snap.current) ? snap.current : undefined;
  const usable =
    input.health === 'online' &&
    snap !== undefined &&
    current !== undefined &&
    capacity !== undefined &&
    Number.isFinite(nowMs);

  if (s.soc === null && input.health === 'online' && snap?.soc !== undefined && Number.isFinite(snap.soc)) {
    s.soc = clampSoc(snap.soc);
  }

  if (!usable) {
    s.lastMs = null;
    s.lastCurrent = null;
    s.lowCellMs = null;
  } else {
    const dt = s.lastMs === null ? 0 : nowMs - s.lastMs;
    const counted = dt > 0 && dt <= cfg.maxGapMs ? dt : 0;
    if (counted > 0 && s.soc !== null) {
      const amps = s.lastCurrent === null ? current : (s.lastCurrent + current) / 2;
      let ah = (amps * counted) / 3_600_000;
      if (ah > 0) ah *= cfg.chargeEfficiencyPercent / 100;
      s.soc = clampSoc(s.soc + (ah / capacity) * 100);
    }
    const cells = snap.cellVoltages ?? [];
    const minCell = cells.length > 0 && cells.every(Number.isFinite) ? Math.min(...cells) : undefined;
    if (minCell !== undefined && minCell <= cfg.lowCellVoltage && current < 0) {
      s.lowCellMs = (s.lowCellMs ?? 0) + counted;
      // Empty: the lowest cell decides, or an unbalanced pack would never reach its floor before the BMS cuts.
      if (s.lowCellMs >= cfg.floorAfterSec * 1000 && (s.soc === null || s.soc > cfg.floorSoc)) s.soc = cfg.floorSoc;
    } else {
      s.lowCellMs = null;
    }
    s.lastMs = nowMs;
    s.lastCurrent = current;
  }

  if (input.enteredFloat) {
    s.soc = 100;
    s.lowCellMs = null;
  }
  return { soc: s.soc === null ? undefined : round3(s.soc), state: s };
}

/** The persisted part (the SoC) as JSON text. */
export function serializeSocEstimatorState(state: SocEstimatorState): string {
  return JSON.stringify({ v: 1, soc: state.soc === null ? null : round3(state.soc) });
}

/** The state from `serializeSocEstimatorState` text; anything else gives a fresh state (SoC from the BMS again). */
export function parseSocEstimatorState(text: string | undefined | null): SocEstimatorState {
  const fresh = freshSocEstimatorState();
  if (typeof text !== 'string') return fresh;
  try {
    const raw: unknown = JSON.parse(text);
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return fresh;
    const r = raw as Record<string, unknown>;
    if (r.v !== 1) return fresh;
    if (r.soc === null) return fresh;
    if (typeof r.soc !== 'number' || !Number.isFinite(r.soc) || r.soc < 0 || r.soc > 100) return fresh;
    return { ...fresh, soc: r.soc };
  } catch {
    return fresh;
  }
}
