/**
 * Charge control, first version (the full bulk/absorption/float algorithm replaces it later).
 * Pure: snapshot + health + config in, limits out. When in doubt it publishes lower limits:
 * CCL = 0 is the only thing that stops charging on Victron, so every hard gate ends there.
 *
 *   CVL = cells × max_cell_voltage          BatteryLowVoltage = cells × min_cell_voltage
 *   CCL = max_charge_current, 0 when: not online · cell data missing · any cell ≥ cell_ovp_voltage ·
 *         charge FET off · any temperature outside [charge_min, charge_max] · BMS charge protection active
 *   DCL = max_discharge_current, 0 when: not online · cell data missing · any cell ≤ cell_uvp_voltage ·
 *         discharge FET off · any temperature outside [discharge_min, discharge_max] · BMS discharge protection
 */

import type { ChargeConfig } from '../config.js';
import type { BatterySnapshot } from '../domain/battery-snapshot.js';
import type { ChargeLimits, Health } from '../domain/battery-state.js';

export interface PolicyInput {
  snapshot: BatterySnapshot | undefined;
  health: Health;
  /** Cell count to base CVL on when the snapshot has none (e.g. offline after a restart). */
  cellCount: number | undefined;
}

function temperaturesOf(s: BatterySnapshot): number[] {
  return (s.temperatures ?? []).map((t) => t.celsius);
}

/** First failing gate's reason, or undefined when the direction is allowed. */
function firstReason(gates: readonly (readonly [boolean, string])[]): string | undefined {
  for (const [closed, reason] of gates) if (closed) return reason;
  return undefined;
}

export function chargePolicy(input: PolicyInput, cfg: ChargeConfig): ChargeLimits {
  const { snapshot: s, health } = input;
  const cellCount = s?.cellVoltages?.length || s?.cellCount || input.cellCount;
  const chargeVoltage = cellCount ? round(cellCount * cfg.maxCellVoltage, 3) : undefined;
  const batteryLowVoltage = cellCount ? round(cellCount * cfg.minCellVoltage, 3) : undefined;

  const cells = s?.cellVoltages ?? [];
  const temps = s ? temperaturesOf(s) : [];
  const p = s?.protection ?? {};
  const notOnline: readonly [boolean, string] = [health !== 'online', health === 'offline' ? 'offline' : 'data stale'];
  const noCells: readonly [boolean, string] = [cells.length === 0, 'no cell voltages'];
  const anyNaN = cells.some((c) => !Number.isFinite(c)) || temps.some((t) => !Number.isFinite(t));

  const chargeBlock = firstReason([
    notOnline,
    noCells,
    [anyNaN, 'invalid measurement'],
    [cells.some((c) => c >= cfg.cellOvpVoltage), 'cell over-voltage'],
    [s?.chargeFet === false, 'charge FET off'],
    [temps.some((t) => t < cfg.chargeMinTemperature), 'temperature below charge minimum'],
    [temps.some((t) => t > cfg.chargeMaxTemperature), 'temperature above charge maximum'],
    [
      p.cellOverVoltage === true ||
        p.packOverVoltage === true ||
        p.chargeOverTemperature === true ||
        p.chargeUnderTemperature === true ||
        p.chargeOverCurrent === true ||
        p.shortCircuit === true,
      'BMS charge protection',
    ],
  ]);
  const dischargeBlock = firstReason([
    notOnline,
    noCells,
    [anyNaN, 'invalid measurement'],
    [cells.some((c) => c <= cfg.cellUvpVoltage), 'cell under-voltage'],
    [s?.dischargeFet === false, 'discharge FET off'],
    [temps.some((t) => t < cfg.dischargeMinTemperature), 'temperature below discharge minimum'],
    [temps.some((t) => t > cfg.dischargeMaxTemperature), 'temperature above discharge maximum'],
    [
      p.cellUnderVoltage === true ||
        p.packUnderVoltage === true ||
        p.dischargeOverTemperature === true ||
        p.dischargeUnderTemperature === true ||
        p.dischargeOverCurrent === true ||
        p.shortCircuit === true,
      'BMS discharge protection',
    ],
  ]);

  return {
    chargeVoltage,
    batteryLowVoltage,
    chargeCurrent: chargeBlock === undefined ? cfg.maxChargeCurrent : 0,
    dischargeCurrent: dischargeBlock === undefined ? cfg.maxDischargeCurrent : 0,
    chargeReason: chargeBlock ?? 'config maximum',
    dischargeReason: dischargeBlock ?? 'config maximum',
  };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
