import { describe, expect, test } from 'vitest';
import { DEFAULT_CHARGE } from '../../src/config.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import type { Health } from '../../src/domain/battery-state.js';
import { chargePolicy } from '../../src/policy/charge-policy.js';

const cfg = DEFAULT_CHARGE;

function pack(over: Partial<BatterySnapshot> = {}): BatterySnapshot {
  return {
    timestampMs: 0,
    voltage: 53.2,
    current: 5,
    soc: 60,
    cellVoltages: Array.from({ length: 16 }, () => 3.325),
    temperatures: [
      { name: 'T1', celsius: 25 },
      { name: 'T2', celsius: 26 },
    ],
    chargeFet: true,
    dischargeFet: true,
    protection: {},
    identity: {},
    ...over,
  };
}

const cells = (v: number, at = 5) => Array.from({ length: 16 }, (_, i) => (i === at ? v : 3.3));
const temps = (...t: number[]) => t.map((celsius, i) => ({ name: `T${i + 1}`, celsius }));

describe('chargePolicy (first version)', () => {
  test('a healthy 16-cell pack gets CVL 55.2 V, BatteryLowVoltage 46.4 V and the configured currents', () => {
    const l = chargePolicy({ snapshot: pack(), health: 'online', cellCount: 16 }, cfg);
    expect(l).toEqual({
      chargeVoltage: 55.2,
      batteryLowVoltage: 46.4,
      chargeCurrent: 50,
      dischargeCurrent: 60,
      chargeReason: 'config maximum',
      dischargeReason: 'config maximum',
    });
  });

  test.each<{ case: string; over: Partial<BatterySnapshot>; health?: Health; ccl: number; dcl: number; why: string }>([
    {
      case: 'a cell at cell_ovp_voltage (3.60 V) stops charging',
      over: { cellVoltages: cells(3.6) },
      ccl: 0,
      dcl: 60,
      why: 'cell over-voltage',
    },
    {
      case: 'a cell just below OVP keeps charging',
      over: { cellVoltages: cells(3.599) },
      ccl: 50,
      dcl: 60,
      why: 'config maximum',
    },
    {
      case: 'a cell at cell_uvp_voltage (2.80 V) stops discharging',
      over: { cellVoltages: cells(2.8) },
      ccl: 50,
      dcl: 0,
      why: 'config maximum',
    },
    { case: 'the charge FET off stops charging', over: { chargeFet: false }, ccl: 0, dcl: 60, why: 'charge FET off' },
    {
      case: 'the discharge FET off stops discharging',
      over: { dischargeFet: false },
      ccl: 50,
      dcl: 0,
      why: 'config maximum',
    },
    {
      case: 'a sensor below 0 °C stops charging only',
      over: { temperatures: temps(25, -0.1) },
      ccl: 0,
      dcl: 60,
      why: 'temperature below charge minimum',
    },
    {
      case: 'a sensor above 55 °C stops charging only',
      over: { temperatures: temps(55.1) },
      ccl: 0,
      dcl: 60,
      why: 'temperature above charge maximum',
    },
    { case: 'exactly 55 °C still charges', over: { temperatures: temps(55) }, ccl: 50, dcl: 60, why: 'config maximum' },
    {
      case: 'a sensor below −20 °C stops both',
      over: { temperatures: temps(-20.5) },
      ccl: 0,
      dcl: 0,
      why: 'temperature below charge minimum',
    },
    {
      case: 'a sensor above 60 °C stops both',
      over: { temperatures: temps(61) },
      ccl: 0,
      dcl: 0,
      why: 'temperature above charge maximum',
    },
    { case: 'stale data stops both', over: {}, health: 'stale', ccl: 0, dcl: 0, why: 'data stale' },
    { case: 'offline stops both', over: {}, health: 'offline', ccl: 0, dcl: 0, why: 'offline' },
    {
      case: 'missing cell voltages stop both',
      over: { cellVoltages: undefined },
      ccl: 0,
      dcl: 0,
      why: 'no cell voltages',
    },
    {
      case: 'a NaN cell voltage stops both',
      over: { cellVoltages: cells(Number.NaN) },
      ccl: 0,
      dcl: 0,
      why: 'invalid measurement',
    },
    {
      case: 'BMS cell over-voltage protection stops charging',
      over: { protection: { cellOverVoltage: true } },
      ccl: 0,
      dcl: 60,
      why: 'BMS charge protection',
    },
    {
      case: 'BMS cell under-voltage protection stops discharging',
      over: { protection: { cellUnderVoltage: true } },
      ccl: 50,
      dcl: 0,
      why: 'config maximum',
    },
    {
      case: 'a short circuit stops both',
      over: { protection: { shortCircuit: true } },
      ccl: 0,
      dcl: 0,
      why: 'BMS charge protection',
    },
  ])('$case', ({ over, health, ccl, dcl, why }) => {
    const l = chargePolicy({ snapshot: pack(over), health: health ?? 'online', cellCount: 16 }, cfg);
    expect(l.chargeCurrent).toBe(ccl);
    expect(l.dischargeCurrent).toBe(dcl);
    expect(l.chargeReason).toBe(why);
    expect(Number.isFinite(l.chargeVoltage)).toBe(true);
  });

  test('the discharge reason names the gate that closed it', () => {
    expect(
      chargePolicy({ snapshot: pack({ cellVoltages: cells(2.7) }), health: 'online', cellCount: 16 }, cfg)
        .dischargeReason,
    ).toBe('cell under-voltage');
  });

  test('without a snapshot the limits are 0 and CVL still comes from the known cell count', () => {
    const l = chargePolicy({ snapshot: undefined, health: 'offline', cellCount: 4 }, cfg);
    expect(l).toMatchObject({ chargeCurrent: 0, dischargeCurrent: 0, chargeVoltage: 13.8, batteryLowVoltage: 11.6 });
  });

  test('with no cell count known at all CVL is undefined, never NaN', () => {
    const l = chargePolicy({ snapshot: undefined, health: 'offline', cellCount: undefined }, cfg);
    expect(l.chargeVoltage).toBeUndefined();
    expect(l.batteryLowVoltage).toBeUndefined();
  });

  test('per-battery configured values are used', () => {
    const l = chargePolicy(
      { snapshot: pack({ cellVoltages: cells(3.3).slice(0, 4) }), health: 'online', cellCount: 4 },
      { ...cfg, maxCellVoltage: 3.5, maxChargeCurrent: 100, maxDischargeCurrent: 120 },
    );
    expect(l).toMatchObject({ chargeVoltage: 14, chargeCurrent: 100, dischargeCurrent: 120 });
  });
});
