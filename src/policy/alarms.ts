/**
 * Victron alarm levels (0 ok, 1 warning, 2 alarm) from what the BMS reports and our own thresholds. Pure.
 * BMS protection bits are alarms (the BMS has acted); our thresholds give warnings before it does.
 */

import type { ChargeConfig } from '../config.js';
import { type BatterySnapshot, extremes } from '../domain/battery-snapshot.js';
import { type AlarmLevel, type Alarms, type Health, noAlarms } from '../domain/battery-state.js';

const worst = (...levels: AlarmLevel[]): AlarmLevel => Math.max(0, ...levels) as AlarmLevel;
const on = (flag: boolean | undefined, level: AlarmLevel): AlarmLevel => (flag === true ? level : 0);

export function computeAlarms(s: BatterySnapshot | undefined, health: Health, cfg: ChargeConfig): Alarms {
  const a = noAlarms();
  a.BmsCable = health === 'offline' ? 2 : health === 'stale' ? 1 : 0;
  if (s === undefined || health === 'offline') return a;
  const p = s.protection;
  const cells = extremes(s.cellVoltages);
  const temps = extremes(s.temperatures?.map((t) => t.celsius));

  a.HighVoltage = on(p.packOverVoltage, 2);
  a.LowVoltage = on(p.packUnderVoltage, 2);
  a.HighCellVoltage = worst(
    on(p.cellOverVoltage, 2),
    cells && cells.max >= cfg.cellOvpVoltage ? 2 : 0,
    cells && cells.max >= cfg.cellOvpVoltage - 0.05 ? 1 : 0,
  );
  a.LowCellVoltage = worst(
    on(p.cellUnderVoltage, 2),
    cells && cells.min <= cfg.cellUvpVoltage ? 2 : 0,
    cells && cells.min <= cfg.minCellVoltage ? 1 : 0,
  );
  if (s.soc !== undefined) a.LowSoc = s.soc <= cfg.socLowAlarm ? 2 : s.soc <= cfg.socLowWarning ? 1 : 0;
  a.HighChargeCurrent = on(p.chargeOverCurrent, 2);
  a.HighDischargeCurrent = on(p.dischargeOverCurrent, 2);
  a.HighCurrent = on(p.shortCircuit, 2);
  if (cells) {
    // Rounded to 0.1 mV so float noise (3.35 − 3.2 = 0.1499…) never hides a threshold.
    const diff = Math.round((cells.max - cells.min) * 10_000) / 10_000;
    a.CellImbalance = diff >= cfg.cellImbalanceAlarm ? 2 : diff >= cfg.cellImbalanceWarning ? 1 : 0;
  }
  a.InternalFailure = worst(on(p.frontEndError, 2), on(p.internalFailure, 2), on(p.fetSoftwareLock, 1));
  a.HighChargeTemperature = worst(
    on(p.chargeOverTemperature, 2),
    temps && temps.max > cfg.chargeMaxTemperature ? 1 : 0,
  );
  a.LowChargeTemperature = worst(
    on(p.chargeUnderTemperature, 2),
    temps && temps.min < cfg.chargeMinTemperature ? 1 : 0,
  );
  a.HighTemperature = worst(
    on(p.dischargeOverTemperature, 2),
    temps && temps.max > cfg.dischargeMaxTemperature ? 1 : 0,
  );
  a.LowTemperature = worst(
    on(p.dischargeUnderTemperature, 2),
    temps && temps.min < cfg.dischargeMinTemperature ? 1 : 0,
  );
  if (s.mosTemperature !== undefined) {
    a.HighInternalTemperature =
      s.mosTemperature >= cfg.mosTemperatureAlarm ? 2 : s.mosTemperature >= cfg.mosTemperatureWarning ? 1 : 0;
  }
  return a;
}
