/**
 * BatteryState builders shared by the D-Bus and telemetry tests. Each suite picks a preset (a pack and a clock);
 * every call returns fresh objects, and overrides replace whole fields.
 */
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { type BatteryState, type ChargeLimits, noAlarms } from '../../src/domain/battery-state.js';

/** What a preset fixes: the pack's readings and limits, and the clock for `timestampMs` / `lastValidMs`. */
export interface BatteryStatePreset {
  snapshot: Omit<BatterySnapshot, 'timestampMs'>;
  limits: ChargeLimits;
  now: () => number;
}

export interface BatteryStateBuilders {
  snapshot(overrides?: Partial<BatterySnapshot>): BatterySnapshot;
  limits(overrides?: Partial<ChargeLimits>): ChargeLimits;
  batteryState(overrides?: Partial<BatteryState>): BatteryState;
}

/** A 12 V, 4-cell pack at a fixed time (the D-Bus tests). */
export const PACK_12V: BatteryStatePreset = {
  snapshot: {
    voltage: 13.3,
    current: -10,
    power: -133,
    soc: 87.5,
    soh: 98,
    capacityRemaining: 87.5,
    capacityInstalled: 100,
    cycles: 42,
    cellVoltages: [3.325, 3.33, 3.31, 3.335],
    balancing: [false, false, false, true],
    cellCount: 4,
    temperatures: [
      { name: 'T1', celsius: 21 },
      { name: 'T2', celsius: 23 },
    ],
    mosTemperature: 30,
    chargeFet: true,
    dischargeFet: true,
    protection: {},
    identity: { serial: 'SN123', firmware: '1.2', hardware: 'HW-A' },
  },
  limits: {
    chargeVoltage: 14.2,
    chargeCurrent: 50,
    dischargeCurrent: 100,
    batteryLowVoltage: 12,
    chargeReason: 'config',
    dischargeReason: 'config',
  },
  now: () => 1_700_000_000_000,
};

/** A 24 V, 8-cell pack on the wall clock (the telemetry tests). */
export const PACK_24V: BatteryStatePreset = {
  snapshot: {
    ...PACK_12V.snapshot,
    voltage: 26.4,
    current: -12.5,
    power: -330,
    soc: 61,
    soh: 97,
    capacityRemaining: 61.2,
    cellVoltages: [3.301, 3.302, 3.299, 3.304, 3.298, 3.3, 3.297, 3.299],
    balancing: [false, false, false, true, false, false, false, false],
    cellCount: 8,
    temperatures: [
      { name: 'T1', celsius: 21.5 },
      { name: 'T2', celsius: 23.1 },
    ],
    identity: { model: 'JBD-SP04S034', serial: 'SN123', firmware: '1.2' },
  },
  limits: { ...PACK_12V.limits, chargeVoltage: 27.6, dischargeCurrent: 60, batteryLowVoltage: 23.2 },
  now: () => Date.now(),
};

/** snapshot(), limits() and batteryState() for one preset. */
export function batteryStateBuilders(preset: BatteryStatePreset): BatteryStateBuilders {
  const snapshot = (overrides: Partial<BatterySnapshot> = {}): BatterySnapshot => ({
    timestampMs: preset.now(),
    ...structuredClone(preset.snapshot),
    ...overrides,
  });
  const limits = (overrides: Partial<ChargeLimits> = {}): ChargeLimits => ({ ...preset.limits, ...overrides });
  const batteryState = (overrides: Partial<BatteryState> = {}): BatteryState => ({
    id: 'house',
    health: 'online',
    snapshot: snapshot(),
    limits: limits(),
    alarms: noAlarms(),
    connection: 'Serial ttyUSB0',
    productName: 'JBD BMS',
    lastValidMs: preset.now(),
    ...overrides,
  });
  return { snapshot, limits, batteryState };
}
