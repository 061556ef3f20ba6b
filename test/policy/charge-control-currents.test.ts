import { describe, expect, test } from 'vitest';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import type { Health } from '../../src/domain/battery-state.js';
import {
  type ChargeControlResult,
  type ChargeState,
  chargeControl,
  freshChargeState,
} from '../../src/policy/charge-control.js';
import { type ChargeControlConfig, DEFAULT_CHARGE_CONTROL_CONFIG } from '../../src/policy/charge-control-config.js';
import { config, T0 } from './policy-fixtures.js';

/** Every derating curve off: only the hard gates and the configured maxima remain, as in the first policy. */
const GATES_ONLY = config({
  ccl_cell_voltage_enable: 'false',
  dcl_cell_voltage_enable: 'false',
  ccl_temperature_enable: 'false',
  dcl_temperature_enable: 'false',
  ccl_mos_temperature_enable: 'false',
  dcl_mos_temperature_enable: 'false',
});

// The first policy's test fixture: 16 cells at 3.325 V, sensors at 25 and 26 °C.
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

function once(snapshot: BatterySnapshot | undefined, cfg: ChargeControlConfig, health: Health = 'online') {
  return chargeControl({ snapshot, health, cellCount: 16 }, freshChargeState(), cfg, T0).limits;
}

class Sim {
  state: ChargeState = freshChargeState();
  now = T0;
  last!: ChargeControlResult;
  constructor(readonly cfg: ChargeControlConfig = DEFAULT_CHARGE_CONTROL_CONFIG) {}
  step(snapshot: BatterySnapshot | undefined, ms = 1000, health: Health = 'online'): ChargeControlResult {
    this.now += ms;
    this.last = chargeControl({ snapshot, health, cellCount: 16 }, this.state, this.cfg, this.now);
    this.state = this.last.state;
    return this.last;
  }
  run(snapshot: BatterySnapshot, seconds: number): ChargeControlResult {
    for (let t = 0; t < seconds; t++) this.step(snapshot);
    return this.last;
  }
  get ccl(): number {
    return this.last.limits.chargeCurrent;
  }
  get dcl(): number {
    return this.last.limits.dischargeCurrent;
  }
  get why(): string {
    return this.last.limits.chargeReason;
  }
}

describe('hard gates of the first policy (derating curves off)', () => {
  test('a healthy 16-cell pack gets CVL 55.2 V, BatteryLowVoltage 46.4 V and the configured currents', () => {
    expect(once(pack(), GATES_ONLY)).toMatchObject({
      chargeVoltage: 55.2,
      batteryLowVoltage: 46.4,
      chargeCurrent: 50,
      dischargeCurrent: 60,
      chargeReason: 'config maximum',
      dischargeReason: 'config maximum',
    });
  });

  test.each<{
    case: string;
    over: Partial<BatterySnapshot>;
    health?: Health;
    ccl: number;
    dcl: number;
    why: string;
    whyD?: string;
  }>([
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
      whyD: 'cell under-voltage',
    },
    { case: 'the charge FET off stops charging', over: { chargeFet: false }, ccl: 0, dcl: 60, why: 'charge FET off' },
    {
      case: 'the discharge FET off stops discharging',
      over: { dischargeFet: false },
      ccl: 50,
      dcl: 0,
      why: 'config maximum',
      whyD: 'discharge FET off',
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
      whyD: 'temperature below discharge minimum',
    },
    {
      case: 'a sensor above 60 °C stops both',
      over: { temperatures: temps(61) },
      ccl: 0,
      dcl: 0,
      why: 'temperature above charge maximum',
      whyD: 'temperature above discharge maximum',
    },
    { case: 'stale data stops both', over: {}, health: 'stale', ccl: 0, dcl: 0, why: 'data stale', whyD: 'data stale' },
    { case: 'offline stops both', over: {}, health: 'offline', ccl: 0, dcl: 0, why: 'offline', whyD: 'offline' },
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
      case: 'a cell reading 0 V (open sense wire) stops both',
      over: { cellVoltages: cells(0) },
      ccl: 0,
      dcl: 0,
      why: 'invalid measurement',
    },
    {
      case: 'a NaN temperature stops both',
      over: { temperatures: temps(Number.NaN) },
      ccl: 0,
      dcl: 0,
      why: 'invalid measurement',
    },
    {
      case: 'a NaN MOSFET temperature stops both',
      over: { mosTemperature: Number.NaN },
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
      whyD: 'BMS discharge protection',
    },
    {
      case: 'a short circuit stops both',
      over: { protection: { shortCircuit: true } },
      ccl: 0,
      dcl: 0,
      why: 'BMS charge protection',
      whyD: 'BMS discharge protection',
    },
  ])('$case', ({ over, health, ccl, dcl, why, whyD }) => {
    const l = once(pack(over), GATES_ONLY, health);
    expect(l.chargeCurrent).toBe(ccl);
    expect(l.dischargeCurrent).toBe(dcl);
    expect(l.chargeReason).toBe(why);
    if (whyD !== undefined) expect(l.dischargeReason).toBe(whyD);
    expect(Number.isFinite(l.chargeVoltage)).toBe(true);
  });

  test('the same gates close with the default curves on', () => {
    for (const over of [
      { cellVoltages: cells(3.6) },
      { chargeFet: false },
      { temperatures: temps(-1) },
      { protection: { packOverVoltage: true } },
    ]) {
      expect(once(pack(over), DEFAULT_CHARGE_CONTROL_CONFIG).chargeCurrent).toBe(0);
    }
    expect(once(pack(), DEFAULT_CHARGE_CONTROL_CONFIG, 'stale').chargeCurrent).toBe(0);
  });

  test('per-battery configured values are used', () => {
    const cfg = config({
      max_cell_voltage: '3.5',
      cell_ovp_voltage: '3.65',
      max_charge_current: '100',
      max_discharge_current: '120',
      ccl_cell_voltages: '3.55, 3.5, 3.4',
      ccl_cell_voltage_fractions: '0, 0.1, 1',
    });
    const l = chargeControl(
      { snapshot: pack({ cellVoltages: cells(3.3).slice(0, 4) }), health: 'online', cellCount: 4 },
      freshChargeState(),
      cfg,
      T0,
    ).limits;
    expect(l).toMatchObject({ chargeVoltage: 14, chargeCurrent: 100, dischargeCurrent: 120 });
  });
});

describe('derating curves', () => {
  const STEP = { derating_mode: 'step' };
  const SOC_ON = { ccl_soc_enable: 'true', dcl_soc_enable: 'true' };
  test.each<{
    case: string;
    values?: Record<string, string>;
    over: Partial<BatterySnapshot>;
    ccl: number;
    dcl: number;
    why: string;
    whyD: string;
  }>([
    {
      case: 'charge by the highest cell, linear: 3.4125 V → 0.15',
      over: { cellVoltages: cells(3.4125) },
      ccl: 7.5,
      dcl: 60,
      why: 'cell voltage',
      whyD: 'config maximum',
    },
    {
      case: 'charge by the highest cell, step: 3.4125 V → 0.25',
      values: STEP,
      over: { cellVoltages: cells(3.4125) },
      ccl: 12.5,
      dcl: 60,
      why: 'cell voltage',
      whyD: 'config maximum',
    },
    {
      case: 'charge by the highest cell at 3.375 V is full current',
      over: { cellVoltages: cells(3.375) },
      ccl: 50,
      dcl: 60,
      why: 'config maximum',
      whyD: 'config maximum',
    },
    {
      case: 'charge by the highest cell at 3.5 V stops charging',
      over: { cellVoltages: cells(3.5) },
      ccl: 0,
      dcl: 60,
      why: 'cell voltage',
      whyD: 'config maximum',
    },
    {
      case: 'discharge by the lowest cell, linear: 2.95 V → 0.0275',
      over: { cellVoltages: cells(2.95) },
      ccl: 50,
      dcl: 1.65,
      why: 'config maximum',
      whyD: 'cell voltage',
    },
    {
      case: 'discharge by the lowest cell, step: 2.95 V → 0.05',
      values: STEP,
      over: { cellVoltages: cells(2.95) },
      ccl: 50,
      dcl: 3,
      why: 'config maximum',
      whyD: 'cell voltage',
    },
    {
      case: 'cold end, linear: 1 °C → 0.125 for charge, 0.3 for discharge',
      over: { temperatures: temps(1, 25) },
      ccl: 6.25,
      dcl: 18,
      why: 'temperature',
      whyD: 'temperature',
    },
    {
      case: 'cold end, step: 1 °C → 0.25 for charge, 0.5 for discharge',
      values: STEP,
      over: { temperatures: temps(1, 25) },
      ccl: 12.5,
      dcl: 30,
      why: 'temperature',
      whyD: 'temperature',
    },
    {
      case: 'hot end, linear: 47.5 °C → 0.375',
      over: { temperatures: temps(25, 47.5) },
      ccl: 18.75,
      dcl: 22.5,
      why: 'temperature',
      whyD: 'temperature',
    },
    {
      case: 'hot end, step: 47.5 °C → 0.5',
      values: STEP,
      over: { temperatures: temps(25, 47.5) },
      ccl: 25,
      dcl: 30,
      why: 'temperature',
      whyD: 'temperature',
    },
    {
      case: 'the worse of the coldest and the warmest sensor wins',
      over: { temperatures: temps(1, 47.5) },
      ccl: 6.25,
      dcl: 18,
      why: 'temperature',
      whyD: 'temperature',
    },
    {
      case: 'discharge cold end, linear: −5 °C → 0.125',
      over: { temperatures: temps(-5) },
      ccl: 0,
      dcl: 7.5,
      why: 'temperature below charge minimum',
      whyD: 'temperature',
    },
    {
      case: 'discharge cold end, step: −5 °C → 0.25',
      values: STEP,
      over: { temperatures: temps(-5) },
      ccl: 0,
      dcl: 15,
      why: 'temperature below charge minimum',
      whyD: 'temperature',
    },
    {
      case: 'MOSFET, linear: 85 °C → 0.125',
      over: { mosTemperature: 85 },
      ccl: 6.25,
      dcl: 7.5,
      why: 'MOSFET temperature',
      whyD: 'MOSFET temperature',
    },
    {
      case: 'MOSFET, step: 85 °C → 0.25',
      values: STEP,
      over: { mosTemperature: 85 },
      ccl: 12.5,
      dcl: 15,
      why: 'MOSFET temperature',
      whyD: 'MOSFET temperature',
    },
    {
      case: 'MOSFET at 90 °C stops both',
      over: { mosTemperature: 90 },
      ccl: 0,
      dcl: 0,
      why: 'MOSFET temperature',
      whyD: 'MOSFET temperature',
    },
    {
      case: 'SoC curves are off by default',
      over: { soc: 99 },
      ccl: 50,
      dcl: 60,
      why: 'config maximum',
      whyD: 'config maximum',
    },
    {
      case: 'SoC, linear: 96.5 % → 0.15 for charge',
      values: SOC_ON,
      over: { soc: 96.5 },
      ccl: 7.5,
      dcl: 60,
      why: 'SoC',
      whyD: 'config maximum',
    },
    {
      case: 'SoC, step: 96.5 % → 0.2 for charge',
      values: { ...SOC_ON, ...STEP },
      over: { soc: 96.5 },
      ccl: 10,
      dcl: 60,
      why: 'SoC',
      whyD: 'config maximum',
    },
    {
      case: 'SoC, linear: 12.5 % → 0.35 for discharge',
      values: SOC_ON,
      over: { soc: 12.5 },
      ccl: 50,
      dcl: 21,
      why: 'config maximum',
      whyD: 'SoC',
    },
    {
      case: 'SoC, step: 12.5 % → 0.5 for discharge',
      values: { ...SOC_ON, ...STEP },
      over: { soc: 12.5 },
      ccl: 50,
      dcl: 30,
      why: 'config maximum',
      whyD: 'SoC',
    },
    {
      case: 'the BMS’s own limits win where lower',
      over: { bmsLimits: { chargeCurrent: 20, dischargeCurrent: 100 } },
      ccl: 20,
      dcl: 60,
      why: 'BMS limit',
      whyD: 'config maximum',
    },
    {
      case: 'a BMS limit of NaN counts as 0',
      over: { bmsLimits: { chargeCurrent: Number.NaN } },
      ccl: 0,
      dcl: 60,
      why: 'BMS limit',
      whyD: 'config maximum',
    },
    {
      case: 'the lowest of several rules wins',
      over: { cellVoltages: cells(3.4), temperatures: temps(3), mosTemperature: 75 },
      ccl: 12.5,
      dcl: 24,
      why: 'cell voltage',
      whyD: 'temperature',
    },
  ])('$case', ({ values, over, ccl, dcl, why, whyD }) => {
    const l = once(pack(over), config(values));
    expect(l.chargeCurrent).toBeCloseTo(ccl, 9);
    expect(l.dischargeCurrent).toBeCloseTo(dcl, 9);
    expect(l.chargeReason).toBe(why);
    expect(l.dischargeReason).toBe(whyD);
  });
});

describe('anti-flap', () => {
  // MOSFET temperature is the knob: 70 °C → 1, 80 °C → 0.25, 90 °C → 0 (linear).
  const mos = (celsius: number) => pack({ mosTemperature: celsius });

  test('the first real value after start-up is published at once, without a recovery hold', () => {
    const sim = new Sim();
    sim.step(undefined, 1000, 'offline');
    expect(sim.ccl).toBe(0);
    sim.step(mos(60));
    expect(sim.ccl).toBe(50);
    expect(sim.dcl).toBe(60);
  });

  test('small decreases apply at most every 60 s; the first one at once', () => {
    const sim = new Sim();
    sim.step(mos(60));
    sim.step(mos(72)); // 42.5 A, −15 %
    expect(sim.ccl).toBe(42.5);
    sim.run(mos(73), 10); // 38.75 A, −9 %: waits
    expect(sim.ccl).toBe(42.5);
    expect(sim.why).toBe('MOSFET temperature *');
    sim.run(mos(73), 49);
    expect(sim.ccl).toBe(42.5);
    sim.step(mos(73)); // 60 s after the last decrease
    expect(sim.ccl).toBe(38.75);
    expect(sim.why).toBe('MOSFET temperature');
  });

  test('a decrease of 33 % or more applies at once, even right after another decrease', () => {
    const sim = new Sim();
    sim.step(mos(60));
    sim.step(mos(72));
    sim.step(mos(78)); // 20 A: −53 %
    expect(sim.ccl).toBe(20);
  });

  test('a decrease to 0 applies at once', () => {
    const sim = new Sim();
    sim.step(mos(60));
    sim.step(mos(72));
    sim.step(mos(90));
    expect(sim.ccl).toBe(0);
    expect(sim.why).toBe('MOSFET temperature');
  });

  test('an increase holds 30 s, then ramps at 5 A/s', () => {
    const sim = new Sim();
    sim.step(mos(60));
    sim.step(mos(78)); // 20 A
    const seen: number[] = [];
    for (let t = 0; t <= 37; t++) seen.push(sim.step(mos(60)).limits.chargeCurrent);
    // t = 0 … 30: held at 20 A; then +5 A per second up to 50 A at t = 36.
    expect(seen.slice(0, 31)).toEqual(Array.from({ length: 31 }, () => 20));
    expect(seen.slice(31)).toEqual([25, 30, 35, 40, 45, 50, 50]);
    expect(sim.why).toBe('config maximum');
  });

  test('while an increase is held the reason keeps the rule that lowered it, with a star', () => {
    const sim = new Sim();
    sim.step(mos(60));
    sim.step(mos(78));
    sim.step(mos(60));
    expect(sim.why).toBe('MOSFET temperature *');
  });

  test('a new dip during the hold restarts it', () => {
    const sim = new Sim();
    sim.step(mos(60));
    sim.step(mos(78));
    sim.run(mos(60), 20);
    sim.step(mos(79)); // 16.25 A, −19 % but the last decrease was 21 s ago: held at 20
    expect(sim.ccl).toBe(20);
    sim.run(mos(60), 30);
    expect(sim.ccl).toBe(20);
    sim.run(mos(60), 2);
    expect(sim.ccl).toBe(25);
  });

  test('from 0 the limit rises only once the computed value exceeds 1.5 % of the maximum', () => {
    const sim = new Sim();
    sim.step(mos(60));
    sim.step(mos(90));
    sim.run(mos(89.9), 300); // 0.125 A ≤ 0.75 A
    expect(sim.ccl).toBe(0);
    expect(sim.why).toBe('MOSFET temperature *');
    sim.run(mos(89.7), 300); // 0.375 A
    expect(sim.ccl).toBe(0);
    sim.run(mos(89), 30); // 1.25 A > 0.75 A: hold starts
    expect(sim.ccl).toBe(0);
    sim.run(mos(89), 1);
    expect(sim.ccl).toBe(0);
    sim.step(mos(89));
    expect(sim.ccl).toBe(1.25);
  });

  test('DCL follows the same rules with its own threshold, hold and rate', () => {
    const sim = new Sim(
      config({ dcl_recovery_hold: '10', dcl_recovery_rate: '20', dcl_recovery_threshold_percent: '5' }),
    );
    sim.step(pack({ cellVoltages: cells(3.3, 0) }));
    sim.step(pack({ cellVoltages: cells(2.8, 0) }));
    expect(sim.dcl).toBe(0);
    expect(sim.last.limits.dischargeReason).toBe('cell under-voltage');
    sim.run(pack({ cellVoltages: cells(2.9, 0) }), 60); // 0.3 A ≤ 3 A (5 %)
    expect(sim.dcl).toBe(0);
    expect(sim.last.limits.dischargeReason).toBe('cell under-voltage *');
    sim.run(pack({ cellVoltages: cells(3.3, 0) }), 11);
    expect(sim.dcl).toBe(0);
    sim.step(pack({ cellVoltages: cells(3.3, 0) }));
    expect(sim.dcl).toBe(20);
    sim.run(pack({ cellVoltages: cells(3.3, 0) }), 2);
    expect(sim.dcl).toBe(60);
  });

  test('a hard gate acts at once, bypassing the decrease interval, and recovery from it is held', () => {
    const sim = new Sim();
    sim.step(mos(60));
    sim.step(mos(72));
    sim.step(pack({ mosTemperature: 72, chargeFet: false }));
    expect(sim.ccl).toBe(0);
    expect(sim.why).toBe('charge FET off');
    sim.run(mos(72), 31); // held from the first open call through 30 s later
    expect(sim.ccl).toBe(0);
    expect(sim.why).toBe('charge FET off *');
    sim.step(mos(72));
    expect(sim.ccl).toBe(5);
  });

  test('stale data mid-run drops to 0 and the recovery after it is held', () => {
    const sim = new Sim();
    sim.step(mos(60));
    sim.step(mos(60), 1000, 'stale');
    expect(sim.ccl).toBe(0);
    expect(sim.why).toBe('data stale');
    sim.run(mos(60), 31);
    expect(sim.why).toBe('data stale *');
    expect(sim.ccl).toBe(0);
    sim.step(mos(60));
    expect(sim.ccl).toBe(5);
  });

  test('a lower BMS limit applies at once even when the decrease is small', () => {
    const sim = new Sim();
    sim.step(mos(60));
    sim.step(mos(72)); // small decrease, starts the 60 s interval
    sim.step(pack({ mosTemperature: 72, bmsLimits: { chargeCurrent: 40 } }));
    expect(sim.ccl).toBe(40);
    expect(sim.why).toBe('BMS limit');
  });

  test('a raised BMS limit is followed with the normal hold and ramp', () => {
    const sim = new Sim();
    sim.step(pack({ bmsLimits: { chargeCurrent: 10 } }));
    expect(sim.ccl).toBe(10);
    sim.run(pack({ bmsLimits: { chargeCurrent: 30 } }), 31);
    expect(sim.ccl).toBe(10);
    expect(sim.why).toBe('BMS limit *');
    sim.step(pack({ bmsLimits: { chargeCurrent: 30 } }));
    expect(sim.ccl).toBe(15);
  });
});
