import { describe, expect, test } from 'vitest';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { chargeControl, freshChargeState } from '../../src/policy/charge-control.js';
import { DEFAULT_CHARGE_CONTROL_CONFIG as cfg } from '../../src/policy/charge-control-config.js';

/** A Pylon-type CAN battery: no cell voltages, its own CVL/CCL/DCL (0x351). */
const managed = (over: Partial<BatterySnapshot> = {}): BatterySnapshot => ({
  timestampMs: 0,
  voltage: 52.2,
  current: -10,
  soc: 76,
  temperatures: [{ name: 'T', celsius: 23 }],
  protection: {},
  identity: {},
  bmsLimits: { chargeVoltage: 53.2, chargeCurrent: 74, dischargeCurrent: 100, dischargeVoltage: 46 },
  ...over,
});

const run = (s: BatterySnapshot | undefined, health: 'online' | 'stale' = 'online', cellCount?: number) =>
  chargeControl({ snapshot: s, health, cellCount }, freshChargeState(), cfg, 0).limits;

describe('a BMS-managed battery (no cells, its own limits)', () => {
  test('uses the BMS CVL and BLV and the lower of its currents and the configured maximum', () => {
    expect(run(managed())).toMatchObject({
      chargeVoltage: 53.2,
      batteryLowVoltage: 46,
      chargeCurrent: 50,
      dischargeCurrent: 60,
      chargeMode: 'BMS managed',
    });
  });

  test('a BMS current below the configured maximum wins', () => {
    const l = run(managed({ bmsLimits: { chargeVoltage: 53.2, chargeCurrent: 20, dischargeCurrent: 30 } }));
    expect([l.chargeCurrent, l.dischargeCurrent]).toEqual([20, 30]);
  });

  test('its CVL is capped by cells × max_cell_voltage when the cell count is known', () => {
    expect(run(managed(), 'online', 15).chargeVoltage).toBeCloseTo(51.75, 6);
  });

  test('stale data still stops both directions', () => {
    expect(run(managed(), 'stale')).toMatchObject({ chargeCurrent: 0, dischargeCurrent: 0 });
  });

  test('temperature and FET gates still apply', () => {
    expect(run(managed({ temperatures: [{ name: 'T', celsius: -5 }] })).chargeCurrent).toBe(0);
    expect(run(managed({ dischargeFet: false })).dischargeCurrent).toBe(0);
  });

  test('without all three BMS limits a battery without cells is not managed: limits 0', () => {
    const l = run(managed({ bmsLimits: { chargeVoltage: 53.2, chargeCurrent: 74 } }));
    expect([l.chargeCurrent, l.dischargeCurrent, l.chargeReason]).toEqual([0, 0, 'no cell voltages']);
  });
});
