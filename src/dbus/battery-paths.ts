/**
 * THE path table of a battery service and the pure mapping BatteryState → D-Bus values
 * (victron-dbus.md §3, §5; prior-art.md §3b; style.md §7 item 12).
 *
 * The set of paths is fixed when the service is created (cell paths sized from the cell count): a path that
 * has nothing to show is published invalid, never added later (victron-dbus.md §7).
 */
import { type BatterySnapshot, type Extremes, extremes } from '../domain/battery-snapshot.js';
import { ALARM_NAMES, type BatteryState } from '../domain/battery-state.js';
import type { PathSpec, PathTable } from './busitem-service.js';
import type { DbusValue } from './values.js';

/** Our ProductId (DECISIONS.md D7): outside DVCC's quirk table, not 0, not 0xBA77 or 0xBA44. */
export const DEFAULT_PRODUCT_ID = 0xba6b;

/** TimeToGo ceiling and the value while not discharging (Victron wiki: 864000 s = 10 days). */
export const TIME_TO_GO_MAX_S = 864_000;

/** Largest cell count a path table is built for (sanity bound on configuration). */
export const MAX_CELLS = 256;

/** Module counts for a bank; a single battery derives them from its own health. */
export interface ModuleCounts {
  online: number;
  offline: number;
  blockingCharge: number;
  blockingDischarge: number;
}

/** What the service knows besides the BatteryState. */
export interface BatteryInfo {
  processName: string;
  processVersion: string;
  productId: number;
  deviceInstance: number;
  /** '' = no custom name. */
  customName: string;
  /** Cells in series: fixes the number of /Voltages/Cell<n> and /Balances/Cell<n> paths. */
  cellCount: number;
  /** Default: the snapshot's identity.firmware. */
  firmwareVersion?: string;
  /** Default: the snapshot's identity.hardware. */
  hardwareVersion?: string;
  /** Default: the snapshot's identity.serial. */
  serial?: string;
  /** /Info/ChargeMode text ("Bulk", "Float"); invalid when absent. */
  chargeMode?: string;
  /** /Io/AllowToBalance; invalid when absent. */
  allowToBalance?: boolean;
  /** /System/NrOfModules*; a single battery derives them when absent. */
  modules?: ModuleCounts;
}

const fixed =
  (digits: number, unit: string) =>
  (v: number | string): string =>
    typeof v === 'number' ? `${v.toFixed(digits)}${unit}` : v;

const D = (text?: (v: number | string) => string): PathSpec => (text ? { type: 'd', text } : { type: 'd' });
const I: PathSpec = { type: 'i' };
const S: PathSpec = { type: 's' };

const volts = D(fixed(2, 'V'));
const cellVolts = D(fixed(3, 'V'));
const amps = D(fixed(1, 'A'));
const watts = D(fixed(0, 'W'));
const celsius = D(fixed(1, '°C'));
const percent = D(fixed(0, '%'));
const ampHours = D(fixed(1, 'Ah'));

function durationText(v: number | string): string {
  if (typeof v !== 'number') return v;
  const minutes = Math.round(v / 60);
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

function checkCellCount(cellCount: number): void {
  if (!Number.isInteger(cellCount) || cellCount < 0 || cellCount > MAX_CELLS) {
    throw new RangeError(`cell count must be an integer 0..${MAX_CELLS}, got ${cellCount}`);
  }
}

/** The full path table of a battery service with `cellCount` cells. */
export function batteryPathTable(cellCount: number): PathTable {
  checkCellCount(cellCount);
  const t: Record<string, PathSpec> = {
    // Identity first: /DeviceInstance must exist before the name is claimed (the whole table is exported first).
    '/Mgmt/ProcessName': S,
    '/Mgmt/ProcessVersion': S,
    '/Mgmt/Connection': S,
    '/DeviceInstance': I,
    '/ProductId': I,
    '/ProductName': S,
    '/FirmwareVersion': S,
    '/HardwareVersion': S,
    '/Connected': I,
    '/CustomName': { type: 's', writable: true, validate: (v) => typeof v === 'string' },
    '/Serial': S,
    '/Dc/0/Voltage': volts,
    '/Dc/0/Current': amps,
    '/Dc/0/Power': watts,
    '/Dc/0/Temperature': celsius,
    '/Soc': percent,
    '/SocBms': percent,
    '/Soh': percent,
    '/Capacity': ampHours,
    '/InstalledCapacity': ampHours,
    '/ConsumedAmphours': ampHours,
    '/TimeToGo': D(durationText),
    '/Info/MaxChargeVoltage': volts,
    '/Info/MaxChargeCurrent': amps,
    '/Info/MaxDischargeCurrent': amps,
    '/Info/BatteryLowVoltage': volts,
    '/Info/ChargeMode': S,
    '/Info/MaxChargeCellVoltage': volts,
    '/Info/ChargeRequest': I,
    '/Info/ChargeLimitation': S,
    '/Info/DischargeLimitation': S,
    '/Io/AllowToCharge': I,
    '/Io/AllowToDischarge': I,
    '/Io/AllowToBalance': I,
    '/System/NrOfCellsPerBattery': I,
    '/System/MinCellVoltage': cellVolts,
    '/System/MaxCellVoltage': cellVolts,
    '/System/MinVoltageCellId': S,
    '/System/MaxVoltageCellId': S,
    '/System/MinCellTemperature': celsius,
    '/System/MaxCellTemperature': celsius,
    '/System/MinTemperatureCellId': S,
    '/System/MaxTemperatureCellId': S,
    '/System/NrOfModulesOnline': I,
    '/System/NrOfModulesOffline': I,
    '/System/NrOfModulesBlockingCharge': I,
    '/System/NrOfModulesBlockingDischarge': I,
    '/System/MOSTemperature': celsius,
  };
  for (let n = 1; n <= cellCount; n++) t[`/Voltages/Cell${n}`] = cellVolts;
  t['/Voltages/Sum'] = volts;
  t['/Voltages/Diff'] = cellVolts;
  for (let n = 1; n <= cellCount; n++) t[`/Balances/Cell${n}`] = I;
  t['/Balancing'] = I;
  for (const name of ALARM_NAMES) t[`/Alarms/${name}`] = I;
  t['/History/ChargeCycles'] = I;
  t['/Settings/HasTemperature'] = I;
  return t;
}

/** extremes() over the finite entries only (a NaN reading must not become "C0"). */
function finiteExtremes(values: readonly number[] | undefined): Extremes | undefined {
  const ext = extremes(values);
  return ext && ext.minIndex > 0 && ext.maxIndex > 0 ? ext : undefined;
}

const flag = (b: boolean | undefined): number | undefined => (b === undefined ? undefined : b ? 1 : 0);

/** Mean rounded to 0.01, so sensor averages do not publish float noise (23.333333333333332) every cycle. */
function mean(values: readonly number[]): number | undefined {
  return values.length === 0 ? undefined : Math.round((values.reduce((a, b) => a + b, 0) / values.length) * 100) / 100;
}

/** Remaining Ah, falling back to SoC × installed capacity when the BMS reports only those. */
function remainingAh(s: BatterySnapshot): number | undefined {
  if (s.capacityRemaining !== undefined) return s.capacityRemaining;
  if (s.soc !== undefined && s.capacityInstalled !== undefined) return (s.soc / 100) * s.capacityInstalled;
  return undefined;
}

/**
 * Seconds until empty at the present current; TIME_TO_GO_MAX_S while not discharging (Victron wiki: "max
 * value 864000 when battery is not discharging"); undefined when current or remaining capacity is unknown.
 */
export function timeToGoSeconds(
  currentA: number | undefined,
  remainingAhValue: number | undefined,
): number | undefined {
  if (currentA === undefined || !Number.isFinite(currentA)) return undefined;
  if (currentA >= 0) return TIME_TO_GO_MAX_S;
  if (remainingAhValue === undefined || !Number.isFinite(remainingAhValue)) return undefined;
  // Whole minutes: the GUI shows h:mm, and a value that moves every second with the current would cost a
  // D-Bus signal per poll on a GX CPU for nothing.
  const seconds = (Math.max(0, remainingAhValue) / -currentA) * 3600;
  return Math.min(TIME_TO_GO_MAX_S, Math.round(seconds / 60) * 60);
}

/**
 * Map one BatteryState to a value for EVERY path of `batteryPathTable(info.cellCount)` (undefined = invalid).
 * Pure. Rules:
 * - `offline`: /Connected 0 and every measurement invalid; limits come from state.limits (the policy has
 *   already zeroed CCL/DCL) and alarms from state.alarms (BmsCable);
 * - `stale` / `online`: /Connected 1 and the last snapshot's values;
 * - no number is ever NaN or ±Infinity: those become invalid.
 */
export function toDbusValues(state: BatteryState, info: BatteryInfo): Record<string, DbusValue> {
  checkCellCount(info.cellCount);
  const offline = state.health === 'offline';
  const known = state.snapshot;
  // Measurements are hidden while offline; identity and history stay (they are not stale readings).
  const s = offline ? undefined : known;
  const limits = state.limits;

  const cells = s?.cellVoltages;
  const cellExt = finiteExtremes(cells);
  const temps = s?.temperatures ?? [];
  const tempExt = finiteExtremes(temps.map((t) => t.celsius));
  const balancing = s?.balancing;
  const remaining = s ? remainingAh(s) : undefined;
  const installed = s?.capacityInstalled;
  const power = s
    ? (s.power ?? (s.voltage !== undefined && s.current !== undefined ? s.voltage * s.current : undefined))
    : undefined;
  const consumed = remaining !== undefined && installed !== undefined ? Math.min(0, remaining - installed) : undefined;

  const allowCharge = s?.chargeFet !== false && limits.chargeCurrent > 0;
  const allowDischarge = s?.dischargeFet !== false && limits.dischargeCurrent > 0;
  const modules: Partial<ModuleCounts> = info.modules ?? {
    online: offline ? 0 : 1,
    offline: offline ? 1 : 0,
    blockingCharge: s?.chargeFet === undefined ? undefined : s.chargeFet ? 0 : 1,
    blockingDischarge: s?.dischargeFet === undefined ? undefined : s.dischargeFet ? 0 : 1,
  };

  const out: Record<string, DbusValue> = {
    '/Mgmt/ProcessName': info.processName,
    '/Mgmt/ProcessVersion': info.processVersion,
    '/Mgmt/Connection': state.connection,
    '/DeviceInstance': info.deviceInstance,
    '/ProductId': info.productId,
    '/ProductName': state.productName,
    '/FirmwareVersion': info.firmwareVersion ?? known?.identity.firmware,
    '/HardwareVersion': info.hardwareVersion ?? known?.identity.hardware,
    '/Connected': offline ? 0 : 1,
    '/CustomName': info.customName,
    '/Serial': info.serial ?? known?.identity.serial,
    '/Dc/0/Voltage': s?.voltage,
    '/Dc/0/Current': s?.current,
    '/Dc/0/Power': power,
    '/Dc/0/Temperature': mean(temps.map((t) => t.celsius)),
    '/Soc': s?.soc,
    '/SocBms': state.socBms,
    '/Soh': s?.soh,
    '/Capacity': remaining,
    '/InstalledCapacity': installed,
    '/ConsumedAmphours': consumed,
    '/TimeToGo': s ? timeToGoSeconds(s.current, remaining) : undefined,
    '/Info/MaxChargeVoltage': limits.chargeVoltage,
    '/Info/MaxChargeCurrent': limits.chargeCurrent,
    '/Info/MaxDischargeCurrent': limits.dischargeCurrent,
    '/Info/BatteryLowVoltage': limits.batteryLowVoltage,
    '/Info/ChargeMode': info.chargeMode ?? limits.chargeMode,
    '/Info/MaxChargeCellVoltage': limits.maxChargeCellVoltage,
    '/Info/ChargeRequest': limits.chargeRequest,
    '/Info/ChargeLimitation': limits.chargeReason,
    '/Info/DischargeLimitation': limits.dischargeReason,
    // An unreported FET does not block; a limit of 0 does (display only: systemcalc acts on CCL/DCL).
    '/Io/AllowToCharge': allowCharge ? 1 : 0,
    '/Io/AllowToDischarge': allowDischarge ? 1 : 0,
    '/Io/AllowToBalance': flag(info.allowToBalance),
    '/System/NrOfCellsPerBattery': known?.cellCount ?? (info.cellCount > 0 ? info.cellCount : undefined),
    // Without a cell list a BMS may still report its extremes (BYD): shown, without cell ids.
    '/System/MinCellVoltage': cellExt?.min ?? s?.cellVoltageMin,
    '/System/MaxCellVoltage': cellExt?.max ?? s?.cellVoltageMax,
    '/System/MinVoltageCellId': cellExt ? `C${cellExt.minIndex}` : undefined,
    '/System/MaxVoltageCellId': cellExt ? `C${cellExt.maxIndex}` : undefined,
    '/System/MinCellTemperature': tempExt?.min,
    '/System/MaxCellTemperature': tempExt?.max,
    '/System/MinTemperatureCellId': tempExt ? temps[tempExt.minIndex - 1]?.name : undefined,
    '/System/MaxTemperatureCellId': tempExt ? temps[tempExt.maxIndex - 1]?.name : undefined,
    '/System/NrOfModulesOnline': modules.online,
    '/System/NrOfModulesOffline': modules.offline,
    '/System/NrOfModulesBlockingCharge': modules.blockingCharge,
    '/System/NrOfModulesBlockingDischarge': modules.blockingDischarge,
    '/System/MOSTemperature': s?.mosTemperature,
  };
  for (let n = 1; n <= info.cellCount; n++) out[`/Voltages/Cell${n}`] = cells?.[n - 1];
  out['/Voltages/Sum'] = cells && cells.length > 0 ? cells.reduce((a, b) => a + b, 0) : undefined;
  out['/Voltages/Diff'] = cellExt ? cellExt.max - cellExt.min : undefined;
  for (let n = 1; n <= info.cellCount; n++) out[`/Balances/Cell${n}`] = flag(balancing?.[n - 1]);
  out['/Balancing'] = balancing && balancing.length > 0 ? (balancing.some(Boolean) ? 1 : 0) : undefined;
  for (const name of ALARM_NAMES) out[`/Alarms/${name}`] = state.alarms[name];
  out['/History/ChargeCycles'] = known?.cycles;
  out['/Settings/HasTemperature'] = known ? (known.temperatures && known.temperatures.length > 0 ? 1 : 0) : undefined;

  // Invalid, never NaN or Infinity (pitfall 2): one bad reading must not reach systemcalc's arithmetic.
  for (const [path, value] of Object.entries(out)) {
    if (typeof value === 'number' && !Number.isFinite(value)) out[path] = undefined;
  }
  return out;
}
