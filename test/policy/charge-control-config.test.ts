import { readFileSync } from 'node:fs';
import { parse } from 'ini';
import { describe, expect, test } from 'vitest';
import { DEFAULT_CHARGE } from '../../src/config.js';
import {
  CHARGE_CONTROL_ALIASES,
  CHARGE_CONTROL_KEYS,
  ChargeControlConfigError,
  canonicalChargeControlKey,
  DEFAULT_CHARGE_CONTROL_CONFIG,
  isChargeControlKey,
  parseChargeControlConfig,
  renderChargeControlDefaults,
} from '../../src/policy/charge-control-config.js';
import { evaluateCurve } from '../../src/policy/curves.js';

/** A case-insensitive getter, as the config loader is asked to provide. */
function getter(values: Record<string, string>): (key: string) => string | undefined {
  const m = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v]));
  return (k) => m.get(k.toLowerCase());
}
const where = () => 'config.ini [battery.house]';
const parseWith = (values: Record<string, string>) => parseChargeControlConfig(getter(values), where);

function errorOf(values: Record<string, string>): ChargeControlConfigError {
  try {
    parseWith(values);
  } catch (e) {
    if (e instanceof ChargeControlConfigError) return e;
    throw e;
  }
  throw new Error('expected a ChargeControlConfigError');
}

describe('charge-control defaults', () => {
  const d = DEFAULT_CHARGE_CONTROL_CONFIG;

  test('the ten keys of the first policy keep their defaults', () => {
    expect(d).toMatchObject({
      maxCellVoltage: DEFAULT_CHARGE.maxCellVoltage,
      minCellVoltage: DEFAULT_CHARGE.minCellVoltage,
      cellOvpVoltage: DEFAULT_CHARGE.cellOvpVoltage,
      cellUvpVoltage: DEFAULT_CHARGE.cellUvpVoltage,
      maxChargeCurrent: DEFAULT_CHARGE.maxChargeCurrent,
      maxDischargeCurrent: DEFAULT_CHARGE.maxDischargeCurrent,
      chargeMinTemperature: DEFAULT_CHARGE.chargeMinTemperature,
      chargeMaxTemperature: DEFAULT_CHARGE.chargeMaxTemperature,
      dischargeMinTemperature: DEFAULT_CHARGE.dischargeMinTemperature,
      dischargeMaxTemperature: DEFAULT_CHARGE.dischargeMaxTemperature,
    });
  });

  test('the cycle, controller and anti-flap defaults are dbus-serialbattery’s', () => {
    expect(d).toMatchObject({
      floatCellVoltage: 3.375,
      voltageDrop: 0,
      floatEnable: true,
      floatAfterSec: 900,
      floatSwitchCellDiff: 0.01,
      floatSwitchCellDeviation: 0.003,
      floatTransitionRate: 0.001,
      bulkSocThreshold: 80,
      bulkCellDiff: 0.08,
      socResetAfterDays: undefined,
      socResetCellVoltage: 3.65,
      cvlController: 'penalty',
      cvlIntegralFactor: 0.2,
      cvlRecoveryHoldSec: 60,
      cvlRecoveryRate: 0.001,
      deratingMode: 'linear',
      currentDecreaseIntervalSec: 60,
      currentImmediateDecreasePercent: 33,
      chargeRequestSoc: undefined,
      socCalculation: false,
    });
    for (const dir of [d.charge, d.discharge]) {
      expect(dir).toMatchObject({ recoveryThresholdPercent: 1.5, recoveryHoldSec: 30, recoveryRate: 5 });
    }
  });

  test.each([
    {
      case: 'charge cell voltage',
      curve: d.charge.cellVoltageCurve,
      x: [3.375, 3.4, 3.425, 3.45, 3.5],
      y: [1, 0.25, 0.05, 0.005, 0],
    },
    {
      case: 'discharge cell voltage',
      curve: d.discharge.cellVoltageCurve,
      x: [2.8, 2.9, 3, 3.1, 3.19],
      y: [0, 0.005, 0.05, 0.25, 1],
    },
    {
      case: 'charge temperature',
      curve: d.charge.temperatureCurve,
      x: [0, 2, 5, 10, 40, 45, 50, 55],
      y: [0, 0.25, 0.5, 1, 1, 0.5, 0.25, 0],
    },
    {
      case: 'discharge temperature',
      curve: d.discharge.temperatureCurve,
      x: [-10, 0, 5, 10, 40, 45, 50, 55],
      y: [0, 0.25, 0.5, 1, 1, 0.5, 0.25, 0],
    },
    { case: 'charge MOSFET temperature', curve: d.charge.mosTemperatureCurve, x: [70, 80, 90], y: [1, 0.25, 0] },
    { case: 'discharge MOSFET temperature', curve: d.discharge.mosTemperatureCurve, x: [70, 80, 90], y: [1, 0.25, 0] },
  ])('the default $case curve has the prior-art points', ({ curve, x, y }) => {
    expect(curve).toEqual({ x, y });
  });

  test('the SoC curves are off by default but their points are there to switch on', () => {
    expect(d.charge.socCurve).toBeUndefined();
    expect(d.discharge.socCurve).toBeUndefined();
    const on = parseWith({ ccl_soc_enable: 'true', dcl_soc_enable: 'yes' });
    expect(on.charge.socCurve).toEqual({ x: [85, 90, 95, 98], y: [1, 0.5, 0.2, 0.1] });
    expect(on.discharge.socCurve).toEqual({ x: [5, 10, 15, 20], y: [0.1, 0.2, 0.5, 1] });
  });

  test('every key has a default that parses, a comment and an expected text', () => {
    for (const k of CHARGE_CONTROL_KEYS) {
      expect(k.parse(k.default), k.key).not.toBeUndefined();
      expect(k.comment.length, k.key).toBeGreaterThan(5);
      expect(k.expected.length, k.key).toBeGreaterThan(3);
      expect(k.key).toMatch(/^[a-z][a-z0-9_]*$/);
    }
    expect(new Set(CHARGE_CONTROL_KEYS.map((k) => k.key)).size).toBe(CHARGE_CONTROL_KEYS.length);
  });
});

describe('dbus-serialbattery aliases', () => {
  test.each([
    ['MAX_CELL_VOLTAGE', 'max_cell_voltage'],
    ['max_battery_charge_current', 'max_charge_current'],
    ['Cell_Voltages_While_Charging', 'ccl_cell_voltages'],
    ['MAX_CHARGE_CURRENT_CV_FRACTION', 'ccl_cell_voltage_fractions'],
    ['SWITCH_TO_FLOAT_WAIT_FOR_SEC', 'float_after'],
    ['SWITCH_TO_FLOAT_CELL_VOLTAGE_DIFF', 'float_switch_cell_diff'],
    ['SWITCH_TO_BULK_SOC_THRESHOLD', 'bulk_soc_threshold'],
    ['CVL_CONTROLLER_MODE', 'cvl_controller'],
    ['CCCM_T_MOSFET_ENABLE', 'ccl_mos_temperature_enable'],
    ['DCL_RECOVERY_RATE_A_PER_SEC', 'dcl_recovery_rate'],
    ['float_after', 'float_after'],
    ['FLOAT_AFTER', 'float_after'],
  ])('%s means %s, in any case', (name, key) => {
    expect(canonicalChargeControlKey(name)).toBe(key);
    expect(isChargeControlKey(name)).toBe(true);
  });

  test('unknown names are not charge-control keys', () => {
    expect(canonicalChargeControlKey('LOGGING')).toBeUndefined();
    expect(isChargeControlKey('soc_low_warning')).toBe(false);
  });

  test('every alias points at an existing key', () => {
    const keys = new Set(CHARGE_CONTROL_KEYS.map((k) => k.key));
    for (const [name, key] of Object.entries(CHARGE_CONTROL_ALIASES)) {
      expect(keys.has(key), name).toBe(true);
      expect(name).toBe(name.toUpperCase());
    }
    expect(Object.keys(CHARGE_CONTROL_ALIASES).length).toBeGreaterThanOrEqual(40);
  });

  test('a dbus-serialbattery config.ini fragment is read with its units converted', () => {
    const c = parseWith({
      MAX_CELL_VOLTAGE: '3.500',
      CVCM_ENABLE: 'False',
      SWITCH_TO_FLOAT_WAIT_FOR_SEC: '',
      SWITCH_TO_FLOAT_CELL_VOLTAGE_DIFF: '10',
      SWITCH_TO_BULK_SOC_THRESHOLD: '0',
      SWITCH_TO_BULK_CELL_VOLTAGE_DIFF: '10',
      CHARGE_MODE: '2',
      CVL_CONTROLLER_MODE: '2',
      CHARGE_CURRENT_RECOVERY_THRESHOLD_PERCENT: '0.02',
      DISCHARGE_CURRENT_RECOVERY_THRESHOLD_PERCENT: '0.015',
      CELL_VOLTAGES_WHILE_CHARGING: '3.550, 3.500, 3.425, 3.400, 3.375',
      MAX_CHARGE_CURRENT_CV_FRACTION: '0.000, 0.005, 0.050, 0.250, 1.000',
      SOC_RESET_AFTER_DAYS: '',
      MAX_BATTERY_CHARGE_CURRENT: '100.0',
    });
    expect(c).toMatchObject({
      maxCellVoltage: 3.5,
      floatEnable: false,
      floatAfterSec: 0,
      floatSwitchCellDiff: undefined,
      bulkSocThreshold: undefined,
      bulkCellDiff: undefined,
      deratingMode: 'step',
      cvlController: 'integral',
      socResetAfterDays: undefined,
      maxChargeCurrent: 100,
    });
    expect(c.charge.recoveryThresholdPercent).toBe(2);
    expect(c.discharge.recoveryThresholdPercent).toBe(1.5);
    expect(c.charge.cellVoltageCurve?.x).toEqual([3.375, 3.4, 3.425, 3.5, 3.55]);
  });

  test('our key and its alias with the same value are fine, with different values an error', () => {
    expect(parseWith({ float_after: '600', SWITCH_TO_FLOAT_WAIT_FOR_SEC: '600' }).floatAfterSec).toBe(600);
    const e = errorOf({ float_after: '600', SWITCH_TO_FLOAT_WAIT_FOR_SEC: '900' });
    expect(e.keys).toContain('float_after');
    expect(e.message).toMatch(/float_after = "600".*SWITCH_TO_FLOAT_WAIT_FOR_SEC = "900"/);
  });

  test('a getter that only knows the exact upper-case spelling still finds the alias', () => {
    const get = (k: string) => (k === 'SWITCH_TO_FLOAT_WAIT_FOR_SEC' ? '120' : undefined);
    expect(parseChargeControlConfig(get, where).floatAfterSec).toBe(120);
  });
});

describe('parseChargeControlConfig errors', () => {
  test('an unreadable value names the place, the key, the value and what was expected', () => {
    const e = errorOf({ float_after: 'soon' });
    expect(e.message).toBe('config.ini [battery.house]: float_after = "soon": expected seconds (0–86400)');
    expect(e.keys).toEqual(['float_after']);
  });

  test('an unreadable alias value names the alias and our key', () => {
    expect(errorOf({ CVL_CONTROLLER_MODE: '7' }).message).toMatch(/CVL_CONTROLLER_MODE \(= cvl_controller\) = "7"/);
  });

  test.each<{ case: string; values: Record<string, string>; keys: string[]; message: RegExp }>([
    {
      case: 'a float voltage above the max cell voltage',
      values: { float_cell_voltage: '3.5' },
      keys: ['float_cell_voltage', 'max_cell_voltage'],
      message: /float_cell_voltage \(3.5\) must not be above max_cell_voltage \(3.45\)/,
    },
    {
      case: 'a SoC reset voltage not above the max cell voltage',
      values: { soc_reset_cell_voltage: '3.45' },
      keys: ['soc_reset_cell_voltage', 'max_cell_voltage'],
      message: /soc_reset_cell_voltage \(3.45\) must be above max_cell_voltage/,
    },
    {
      case: 'a charge cell-voltage curve that stops charging below max_cell_voltage (float never reached)',
      values: { max_cell_voltage: '3.55', cell_ovp_voltage: '3.65' },
      keys: ['ccl_cell_voltages', 'max_cell_voltage'],
      message: /stops charging at 3.5 V, not above max_cell_voltage \(3.55\).*never reach float/,
    },
    {
      case: 'a charge cell-voltage curve whose zero point equals max_cell_voltage',
      values: { ccl_cell_voltages: '3.45, 3.425, 3.4, 3.375', ccl_cell_voltage_fractions: '0, 0.05, 0.25, 1' },
      keys: ['ccl_cell_voltage_fractions', 'max_cell_voltage'],
      message: /stops charging at 3.45 V/,
    },
    {
      case: 'a curve without a point at full current',
      values: { ccl_temperature_fractions: '0, 0.25, 0.5, 0.9, 0.9, 0.5, 0.25, 0' },
      keys: ['ccl_temperatures', 'ccl_temperature_fractions'],
      message: /no point has the fraction 1/,
    },
    {
      case: 'curve points that are not monotonic',
      values: { dcl_cell_voltages: '2.8, 3.0, 2.9, 3.1, 3.19' },
      keys: ['dcl_cell_voltages', 'dcl_cell_voltage_fractions'],
      message: /strictly increasing or strictly decreasing/,
    },
    {
      case: 'curve lists of different lengths',
      values: { ccl_mos_temperatures: '70, 80, 90, 100' },
      keys: ['ccl_mos_temperatures', 'ccl_mos_temperature_fractions'],
      message: /different lengths \(4 points, 3 fractions\)/,
    },
    {
      case: 'a broken curve even while it is switched off',
      values: { dcl_soc_enable: 'false', dcl_socs: '5, 10' },
      keys: ['dcl_socs', 'dcl_soc_fractions'],
      message: /different lengths/,
    },
    {
      case: 'a SoC reset at or above the driver’s own cell OVP',
      values: {
        soc_reset_after_days: '14',
        ccl_cell_voltages: '3.7, 3.45, 3.4, 3.375',
        ccl_cell_voltage_fractions: '0, 0.05, 0.25, 1',
      },
      keys: ['soc_reset_cell_voltage', 'cell_ovp_voltage'],
      message: /soc_reset_cell_voltage \(3.65\) must be below cell_ovp_voltage \(3.6\)/,
    },
    {
      case: 'a SoC reset the charge curve stops before it completes',
      values: { soc_reset_after_days: '14', soc_reset_cell_voltage: '3.55' },
      keys: ['ccl_cell_voltages', 'soc_reset_cell_voltage'],
      message: /a SoC reset could never complete/,
    },
    {
      case: 'a SoC reset without the float cycle',
      values: {
        soc_reset_after_days: '14',
        float_enable: 'false',
        soc_reset_cell_voltage: '3.55',
        ccl_cell_voltages: '3.6, 3.45, 3.4, 3.375',
        ccl_cell_voltage_fractions: '0, 0.05, 0.25, 1',
      },
      keys: ['soc_reset_after_days', 'float_enable'],
      message: /needs float_enable = true/,
    },
    {
      case: 'min_cell_voltage at or above max_cell_voltage',
      values: { min_cell_voltage: '3.45' },
      keys: ['min_cell_voltage', 'max_cell_voltage'],
      message: /min_cell_voltage \(3.45\) must be below max_cell_voltage/,
    },
    {
      case: 'a charge temperature window upside down',
      values: { charge_min_temperature: '20', charge_max_temperature: '10' },
      keys: ['charge_min_temperature', 'charge_max_temperature'],
      message: /charge_min_temperature must be below charge_max_temperature/,
    },
  ])('contradictory config is refused: $case', ({ values, keys, message }) => {
    const e = errorOf(values);
    expect(e.message).toMatch(message);
    expect(e.message.startsWith('config.ini [battery.house]: ')).toBe(true);
    for (const k of keys) expect(e.keys).toContain(k);
  });

  test('every problem is reported at once', () => {
    const e = errorOf({ float_cell_voltage: '3.5', min_cell_voltage: '3.46' });
    expect(e.message).toMatch(/min_cell_voltage \(3.46\) must be below max_cell_voltage.*; /);
    expect(e.message).toMatch(/; float_cell_voltage \(3.5\) must not be above max_cell_voltage/);
  });

  test('a consistent SoC-reset setup is accepted', () => {
    const c = parseWith({
      soc_reset_after_days: '30',
      soc_reset_cell_voltage: '3.55',
      ccl_cell_voltages: '3.6, 3.5, 3.45, 3.4, 3.375',
      ccl_cell_voltage_fractions: '0, 0.05, 0.1, 0.25, 1',
    });
    expect(c.socResetAfterDays).toBe(30);
    expect(c.charge.cellVoltageCurve && evaluateCurve(c.charge.cellVoltageCurve, 3.55, 'linear')).toBeGreaterThan(0);
  });
});

describe('renderChargeControlDefaults', () => {
  const text = renderChargeControlDefaults();

  test('the rendered block parses back to the built-in defaults', () => {
    // The config loader turns every INI value into text (ini reads `true` as a boolean).
    const section = parse(`[charge]\n${text}`).charge as Record<string, unknown>;
    const texts = Object.fromEntries(Object.entries(section).map(([k, v]) => [k, String(v)]));
    expect(Object.keys(texts)).toHaveLength(CHARGE_CONTROL_KEYS.length);
    expect(parseWith(texts)).toEqual(DEFAULT_CHARGE_CONTROL_CONFIG);
  });

  test('every key appears once, uncommented, after its comment', () => {
    const lines = text.split('\n');
    for (const k of CHARGE_CONTROL_KEYS) {
      const at = lines.findIndex((l) => l.startsWith(`${k.key} = `));
      expect(at, k.key).toBeGreaterThan(0);
      expect(lines.filter((l) => l.startsWith(`${k.key} = `))).toHaveLength(1);
      expect(lines[at - 1]?.startsWith(';'), k.key).toBe(true);
    }
  });

  test('comments name the dbus-serialbattery key a setting replaces and stay within 112 columns', () => {
    expect(text).toMatch(/; \(dbus-serialbattery: SWITCH_TO_FLOAT_WAIT_FOR_SEC\)\nfloat_after = 900\n/);
    for (const l of text.split('\n')) expect(l.length).toBeLessThanOrEqual(112);
  });
});

describe('docs/charge-control.md', () => {
  const doc = readFileSync(new URL('../../docs/charge-control.md', import.meta.url), 'utf8');

  test('documents every key and names every dbus-serialbattery alias it accepts', () => {
    for (const k of CHARGE_CONTROL_KEYS) expect(doc, k.key).toContain(`\`${k.key}\``);
    for (const a of Object.keys(CHARGE_CONTROL_ALIASES)) expect(doc, a).toContain(a);
  });
});
