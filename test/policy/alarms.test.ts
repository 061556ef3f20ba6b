import { describe, expect, test } from 'vitest';
import { DEFAULT_CHARGE } from '../../src/config.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import type { AlarmName } from '../../src/domain/battery-state.js';
import { computeAlarms } from '../../src/policy/alarms.js';

function pack(over: Partial<BatterySnapshot> = {}): BatterySnapshot {
  return {
    timestampMs: 0,
    soc: 60,
    cellVoltages: [3.3, 3.31, 3.32, 3.3],
    temperatures: [{ name: 'T1', celsius: 25 }],
    mosTemperature: 30,
    protection: {},
    identity: {},
    ...over,
  };
}

describe('computeAlarms', () => {
  test('a healthy pack raises no alarm', () => {
    expect(Object.values(computeAlarms(pack(), 'online', DEFAULT_CHARGE)).every((v) => v === 0)).toBe(true);
  });

  test.each<{ case: string; over: Partial<BatterySnapshot>; name: AlarmName; level: 0 | 1 | 2 }>([
    {
      case: 'BMS cell OV protection is an alarm',
      over: { protection: { cellOverVoltage: true } },
      name: 'HighCellVoltage',
      level: 2,
    },
    {
      case: 'a cell 40 mV under OVP is a warning',
      over: { cellVoltages: [3.3, 3.56] },
      name: 'HighCellVoltage',
      level: 1,
    },
    { case: 'a cell at OVP is an alarm', over: { cellVoltages: [3.3, 3.6] }, name: 'HighCellVoltage', level: 2 },
    {
      case: 'a cell at min_cell_voltage is a warning',
      over: { cellVoltages: [2.9, 3.2] },
      name: 'LowCellVoltage',
      level: 1,
    },
    { case: 'a cell at UVP is an alarm', over: { cellVoltages: [2.8, 3.2] }, name: 'LowCellVoltage', level: 2 },
    { case: 'SoC 20 % is a low-SoC warning', over: { soc: 20 }, name: 'LowSoc', level: 1 },
    { case: 'SoC 10 % is a low-SoC alarm', over: { soc: 10 }, name: 'LowSoc', level: 2 },
    {
      case: '80 mV spread is an imbalance warning',
      over: { cellVoltages: [3.3, 3.38] },
      name: 'CellImbalance',
      level: 1,
    },
    {
      case: '150 mV spread is an imbalance alarm',
      over: { cellVoltages: [3.2, 3.35] },
      name: 'CellImbalance',
      level: 2,
    },
    { case: 'pack OV protection', over: { protection: { packOverVoltage: true } }, name: 'HighVoltage', level: 2 },
    { case: 'pack UV protection', over: { protection: { packUnderVoltage: true } }, name: 'LowVoltage', level: 2 },
    {
      case: 'charge over-current',
      over: { protection: { chargeOverCurrent: true } },
      name: 'HighChargeCurrent',
      level: 2,
    },
    {
      case: 'discharge over-current',
      over: { protection: { dischargeOverCurrent: true } },
      name: 'HighDischargeCurrent',
      level: 2,
    },
    { case: 'short circuit', over: { protection: { shortCircuit: true } }, name: 'HighCurrent', level: 2 },
    { case: 'front-end failure', over: { protection: { frontEndError: true } }, name: 'InternalFailure', level: 2 },
    {
      case: 'FET software lock is a warning',
      over: { protection: { fetSoftwareLock: true } },
      name: 'InternalFailure',
      level: 1,
    },
    {
      case: 'charge over-temperature protection',
      over: { protection: { chargeOverTemperature: true } },
      name: 'HighChargeTemperature',
      level: 2,
    },
    {
      case: 'below 0 °C warns about charging',
      over: { temperatures: [{ name: 'T1', celsius: -1 }] },
      name: 'LowChargeTemperature',
      level: 1,
    },
    {
      case: 'discharge under-temperature protection',
      over: { protection: { dischargeUnderTemperature: true } },
      name: 'LowTemperature',
      level: 2,
    },
    {
      case: 'above 60 °C warns',
      over: { temperatures: [{ name: 'T1', celsius: 61 }] },
      name: 'HighTemperature',
      level: 1,
    },
    { case: 'MOSFET at 85 °C warns', over: { mosTemperature: 85 }, name: 'HighInternalTemperature', level: 1 },
    { case: 'MOSFET at 90 °C alarms', over: { mosTemperature: 90 }, name: 'HighInternalTemperature', level: 2 },
  ])('$case', ({ over, name, level }) => {
    expect(computeAlarms(pack(over), 'online', DEFAULT_CHARGE)[name]).toBe(level);
  });

  test('stale data is a BMS cable warning and offline an alarm, with measurement alarms cleared', () => {
    expect(computeAlarms(pack(), 'stale', DEFAULT_CHARGE).BmsCable).toBe(1);
    const off = computeAlarms(pack({ soc: 5 }), 'offline', DEFAULT_CHARGE);
    expect(off.BmsCable).toBe(2);
    expect(off.LowSoc).toBe(0);
  });
});
