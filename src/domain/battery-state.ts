import type { BatterySnapshot } from './battery-snapshot.js';

/**
 * Connection health of one battery (or bank):
 * - `online`: a valid reply arrived recently;
 * - `stale`: no valid reply for a few poll periods, but not yet `stale_after`: values are still shown,
 *   but charge/discharge limits are already 0 (never publish a stale limit);
 * - `offline`: no valid reply for `stale_after` seconds: /Connected = 0, measurements invalid, limits 0.
 */
export type Health = 'online' | 'stale' | 'offline';

/** Victron alarm levels: 0 ok, 1 warning, 2 alarm. */
export type AlarmLevel = 0 | 1 | 2;

export const ALARM_NAMES = [
  'LowVoltage',
  'HighVoltage',
  'LowCellVoltage',
  'HighCellVoltage',
  'LowSoc',
  'HighChargeCurrent',
  'HighDischargeCurrent',
  'HighCurrent',
  'CellImbalance',
  'InternalFailure',
  'HighChargeTemperature',
  'LowChargeTemperature',
  'HighTemperature',
  'LowTemperature',
  'HighInternalTemperature',
  'BmsCable',
] as const;
export type AlarmName = (typeof ALARM_NAMES)[number];
export type Alarms = Record<AlarmName, AlarmLevel>;

/** The output of the charge policy: what the inverters and chargers are told. */
export interface ChargeLimits {
  /** CVL, V. Undefined only when the cell count is unknown (nothing to base it on). */
  chargeVoltage: number | undefined;
  /** CCL, A, ≥ 0. 0 stops charging. */
  chargeCurrent: number;
  /** DCL, A, ≥ 0. 0 stops discharging. */
  dischargeCurrent: number;
  /** BatteryLowVoltage, V. */
  batteryLowVoltage: number | undefined;
  /** Why CCL is what it is ("config", "cell over-voltage", "charge FET off", …). */
  chargeReason: string;
  /** Why DCL is what it is. */
  dischargeReason: string;
  /** /Info/ChargeMode text ("Bulk", "Absorption 12m", "Float", …), where the policy has one. */
  chargeMode?: string;
  /** /Info/MaxChargeCellVoltage: the per-cell target in force, V. */
  maxChargeCellVoltage?: number;
  /** /Info/ChargeRequest: 1 asks the system to charge (SoC below charge_request_soc). */
  chargeRequest?: 0 | 1;
}

/** Everything a publisher needs to show one battery (or bank). */
export interface BatteryState {
  /** Config id (`house` for `[battery.house]`), `[a-z0-9_]`. */
  readonly id: string;
  health: Health;
  /** Last valid snapshot; in `offline` publishers show measurements as invalid. */
  snapshot: BatterySnapshot | undefined;
  limits: ChargeLimits;
  alarms: Alarms;
  /** Human link description, for /Mgmt/Connection ("Serial ttyUSB0"). */
  connection: string;
  /** Product name for /ProductName ("JBD BMS"). */
  productName: string;
  /** ms since epoch of the last valid reply. */
  lastValidMs: number | undefined;
  /** The BMS's own SoC, % — set only when the driver computes the published SoC itself (soc_calculation). */
  socBms?: number | undefined;
}

export function noAlarms(): Alarms {
  return Object.fromEntries(ALARM_NAMES.map((n) => [n, 0])) as Alarms;
}
