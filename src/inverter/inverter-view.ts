/**
 * What the inverter is told, from the bank's (or one battery's) state. Pure: state + clock in, values out.
 *
 *   BatteryState / BankState ──► freshness and safety gates ──► caps ──► InverterValues ──► pylon-lv / byd-hvs
 *
 * The limits are the charge policy's own (src/policy) and never more: the configured caps can only lower
 * them. Any doubt ends in CCL = DCL = 0 with both enable bits cleared: the source not online, its last valid
 * data older than the stale limit (evaluated here, so a silent bank is caught even when nothing calls back),
 * a BMS protection flag, an open FET, an alarm, a missing voltage, SoC or voltage limit. Every number out is
 * finite: an unknown measurement is sent as a neutral value (documented per field), never NaN.
 */
import { type BatterySnapshot, extremes } from '../domain/battery-snapshot.js';
import type { AlarmLevel, Alarms, BatteryState } from '../domain/battery-state.js';

/** Module counts as 0x372 / the bank publishes them. */
export interface InverterModules {
  online: number;
  offline: number;
  blockingCharge: number;
  blockingDischarge: number;
}

/**
 * Alarm conditions in the order of the SMA/Victron 0x35A pairs (protocols.md §4.2), each 0 ok, 1 warning,
 * 2 alarm (protection active). Pylon's 0x359 bits are derived from the same levels.
 */
export interface InverterAlarms {
  highVoltage: AlarmLevel;
  lowVoltage: AlarmLevel;
  highTemperature: AlarmLevel;
  lowTemperature: AlarmLevel;
  highChargeTemperature: AlarmLevel;
  lowChargeTemperature: AlarmLevel;
  highDischargeCurrent: AlarmLevel;
  highChargeCurrent: AlarmLevel;
  shortCircuit: AlarmLevel;
  internalFailure: AlarmLevel;
  cellImbalance: AlarmLevel;
  /** No (fresh) data from the BMS: Pylon "internal communication fail". */
  communication: AlarmLevel;
}

export interface InverterValues {
  /** Limits are the policy's: online, fresh, voltage and SoC known. False: CCL = DCL = 0, enables cleared. */
  usable: boolean;
  /** Why CCL is 0 (or '' when it is not). */
  chargeBlocked: string;
  /** Why DCL is 0 (or '' when it is not). */
  dischargeBlocked: string;
  /** CVL, V (0 while unknown; CCL is 0 then). */
  chargeVoltage: number;
  /** DVL / BatteryLowVoltage, V (0 while unknown; DCL is 0 then). */
  dischargeVoltage: number;
  /** CCL, A, ≥ 0. */
  chargeCurrent: number;
  /** DCL, A, ≥ 0. */
  dischargeCurrent: number;
  chargeEnable: boolean;
  dischargeEnable: boolean;
  /** The policy asks for charge (SoC below charge_request_soc): Pylon "request force charge I". */
  forceCharge: boolean;
  /** SoC, % 0–100 (0 while unknown; limits are 0 then). */
  soc: number;
  /** SoH, % 0–100; 100 while unknown (inverters read a low SoH as a fault). */
  soh: number;
  /** Pack voltage, V (0 while unknown; limits are 0 then). */
  voltage: number;
  /** Current, A, + = charging; 0 while unknown. */
  current: number;
  /** Mean / lowest / highest temperature, °C; 0 while unknown. */
  temperature: number;
  minTemperature: number;
  maxTemperature: number;
  /** Lowest / highest cell voltage, V; 0 while unknown. */
  minCellVoltage: number;
  maxCellVoltage: number;
  /** Installed and remaining capacity, Ah; 0 while unknown. */
  capacityInstalled: number;
  capacityRemaining: number;
  /** Cells in series, 0 while unknown. */
  cellsInSeries: number;
  modules: InverterModules;
  alarms: InverterAlarms;
}

export interface InverterViewOptions {
  /** Last valid data older than this (ms) counts as stale: limits 0. */
  staleLimitMs: number;
  /** Optional caps that may only lower the policy's limits, A. */
  maxChargeCurrent?: number | undefined;
  maxDischargeCurrent?: number | undefined;
}

const fin = (v: number | undefined): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

const lvl = (v: unknown): AlarmLevel => (v === 2 ? 2 : v === 1 ? 1 : 0);

const max = (...xs: AlarmLevel[]): AlarmLevel => Math.max(0, ...xs) as AlarmLevel;

const flag = (v: boolean | undefined): AlarmLevel => (v === true ? 2 : 0);

function alarmsOf(state: BatteryState | undefined, snap: BatterySnapshot | undefined, fresh: boolean): InverterAlarms {
  const a: Partial<Alarms> = state?.alarms ?? {};
  const p = snap?.protection ?? {};
  return {
    highVoltage: max(lvl(a.HighVoltage), lvl(a.HighCellVoltage), flag(p.cellOverVoltage), flag(p.packOverVoltage)),
    lowVoltage: max(lvl(a.LowVoltage), lvl(a.LowCellVoltage), flag(p.cellUnderVoltage), flag(p.packUnderVoltage)),
    highTemperature: max(lvl(a.HighTemperature), lvl(a.HighInternalTemperature), flag(p.dischargeOverTemperature)),
    lowTemperature: max(lvl(a.LowTemperature), flag(p.dischargeUnderTemperature)),
    highChargeTemperature: max(lvl(a.HighChargeTemperature), flag(p.chargeOverTemperature)),
    lowChargeTemperature: max(lvl(a.LowChargeTemperature), flag(p.chargeUnderTemperature)),
    highDischargeCurrent: max(lvl(a.HighDischargeCurrent), lvl(a.HighCurrent), flag(p.dischargeOverCurrent)),
    highChargeCurrent: max(lvl(a.HighChargeCurrent), flag(p.chargeOverCurrent)),
    shortCircuit: flag(p.shortCircuit),
    internalFailure: max(lvl(a.InternalFailure), flag(p.internalFailure), flag(p.frontEndError)),
    cellImbalance: lvl(a.CellImbalance),
    communication: fresh ? lvl(a.BmsCable) : 2,
  };
}

function modulesOf(state: BatteryState | undefined, ccl: number, dcl: number): InverterModules {
  const counts = (state as { counts?: { modules?: Partial<InverterModules> } } | undefined)?.counts?.modules;
  if (counts) {
    const n = (v: number | undefined) => (fin(v) !== undefined && (v as number) >= 0 ? Math.round(v as number) : 0);
    return {
      online: n(counts.online),
      offline: n(counts.offline),
      blockingCharge: n(counts.blockingCharge),
      blockingDischarge: n(counts.blockingDischarge),
    };
  }
  const online = state !== undefined && state.health !== 'offline' ? 1 : 0;
  return {
    online,
    offline: 1 - online,
    blockingCharge: online && ccl <= 0 ? 1 : 0,
    blockingDischarge: online && dcl <= 0 ? 1 : 0,
  };
}

/** A limit in A: the policy's value (finite, ≥ 0) lowered to the cap. */
function capped(policy: number | undefined, cap: number | undefined): number {
  const p = fin(policy);
  if (p === undefined || p <= 0) return 0;
  const c = fin(cap);
  return c === undefined ? p : Math.max(0, Math.min(p, c));
}

/** The values to advertise now. Never throws; every number is finite. */
export function inverterView(
  state: BatteryState | undefined,
  nowMs: number,
  opts: InverterViewOptions,
): InverterValues {
  const snap = state?.snapshot;
  const lastValid = fin(state?.lastValidMs);
  const age = lastValid === undefined || !Number.isFinite(nowMs) ? Number.POSITIVE_INFINITY : nowMs - lastValid;

  const voltage = fin(snap?.voltage);
  const socRaw = fin(snap?.soc);
  const soc = socRaw === undefined ? undefined : Math.min(100, Math.max(0, socRaw));
  const cvl = fin(state?.limits.chargeVoltage);
  const dvl = fin(state?.limits.batteryLowVoltage);

  // Reasons common to both directions, in order of importance.
  let common = '';
  if (state === undefined) common = 'no source state';
  else if (state.health === 'offline') common = 'source offline';
  else if (state.health === 'stale') common = 'source data stale';
  else if (snap === undefined) common = 'no data yet';
  else if (age > opts.staleLimitMs)
    common = `last valid data ${Number.isFinite(age) ? `${Math.round(age / 1000)} s` : 'never'} old`;
  else if (voltage === undefined || voltage <= 0) common = 'no pack voltage';
  else if (soc === undefined) common = 'no SoC';
  const usable = common === '';

  const alarms = alarmsOf(state, snap, usable);
  let chargeBlocked = common;
  if (!chargeBlocked) {
    if (cvl === undefined || cvl <= 0) chargeBlocked = 'no charge voltage limit';
    else if (snap?.chargeFet === false) chargeBlocked = 'charge FET off';
    else if (alarms.highVoltage === 2) chargeBlocked = 'over-voltage alarm';
    else if (alarms.highChargeTemperature === 2 || alarms.highTemperature === 2) chargeBlocked = 'temperature alarm';
    else if (alarms.lowChargeTemperature === 2 || alarms.lowTemperature === 2) chargeBlocked = 'temperature alarm';
    else if (alarms.highChargeCurrent === 2 || alarms.shortCircuit === 2) chargeBlocked = 'current alarm';
    else if (alarms.internalFailure === 2) chargeBlocked = 'internal failure';
  }
  let dischargeBlocked = common;
  if (!dischargeBlocked) {
    if (dvl === undefined || dvl <= 0) dischargeBlocked = 'no discharge voltage limit';
    else if (snap?.dischargeFet === false) dischargeBlocked = 'discharge FET off';
    else if (alarms.lowVoltage === 2) dischargeBlocked = 'under-voltage alarm';
    else if (alarms.highTemperature === 2 || alarms.lowTemperature === 2) dischargeBlocked = 'temperature alarm';
    else if (alarms.highDischargeCurrent === 2 || alarms.shortCircuit === 2) dischargeBlocked = 'current alarm';
    else if (alarms.internalFailure === 2) dischargeBlocked = 'internal failure';
  }

  let chargeCurrent = chargeBlocked ? 0 : capped(state?.limits.chargeCurrent, opts.maxChargeCurrent);
  let dischargeCurrent = dischargeBlocked ? 0 : capped(state?.limits.dischargeCurrent, opts.maxDischargeCurrent);
  if (!chargeBlocked && chargeCurrent <= 0) chargeBlocked = state?.limits.chargeReason || 'policy limit 0';
  if (!dischargeBlocked && dischargeCurrent <= 0) dischargeBlocked = state?.limits.dischargeReason || 'policy limit 0';
  chargeCurrent = chargeBlocked ? 0 : chargeCurrent;
  dischargeCurrent = dischargeBlocked ? 0 : dischargeCurrent;

  const temps = (snap?.temperatures ?? []).map((t) => fin(t.celsius)).filter((t): t is number => t !== undefined);
  const cells = extremes(snap?.cellVoltages?.filter((v) => fin(v) !== undefined));
  const installed = fin(snap?.capacityInstalled);
  const remaining = fin(snap?.capacityRemaining);
  const soh = fin(snap?.soh);
  const cellsInSeries =
    fin((state as { cellsInSeries?: number } | undefined)?.cellsInSeries) ??
    fin(snap?.cellCount) ??
    (snap?.cellVoltages?.length || undefined);

  return {
    usable,
    chargeBlocked,
    dischargeBlocked,
    chargeVoltage: cvl !== undefined && cvl > 0 ? cvl : 0,
    dischargeVoltage: dvl !== undefined && dvl > 0 ? dvl : 0,
    chargeCurrent,
    dischargeCurrent,
    chargeEnable: chargeCurrent > 0,
    dischargeEnable: dischargeCurrent > 0,
    forceCharge: usable && chargeCurrent > 0 && state?.limits.chargeRequest === 1,
    soc: soc ?? 0,
    soh: soh === undefined ? 100 : Math.min(100, Math.max(0, soh)),
    voltage: voltage !== undefined && voltage > 0 ? voltage : 0,
    current: fin(snap?.current) ?? 0,
    temperature: temps.length > 0 ? temps.reduce((a, b) => a + b, 0) / temps.length : 0,
    minTemperature: temps.length > 0 ? Math.min(...temps) : 0,
    maxTemperature: temps.length > 0 ? Math.max(...temps) : 0,
    minCellVoltage: cells?.min ?? fin(snap?.cellVoltageMin) ?? 0,
    maxCellVoltage: cells?.max ?? fin(snap?.cellVoltageMax) ?? 0,
    capacityInstalled: installed !== undefined && installed > 0 ? installed : 0,
    capacityRemaining: remaining !== undefined && remaining > 0 ? remaining : 0,
    cellsInSeries: cellsInSeries !== undefined && cellsInSeries > 0 ? Math.round(cellsInSeries) : 0,
    modules: modulesOf(state, chargeCurrent, dischargeCurrent),
    alarms,
  };
}
