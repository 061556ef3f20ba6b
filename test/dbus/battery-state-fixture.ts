/** BatteryState builders shared by the D-Bus tests. */
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { type BatteryState, type ChargeLimits, noAlarms } from '../../src/domain/battery-state.js';

export function snapshot(overrides: Partial<BatterySnapshot> = {}): BatterySnapshot {
  return {
    timestampMs: 1_700_000_000_000,
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
    ...overrides,
  };
}

export function limits(overrides: Partial<ChargeLimits> = {}): ChargeLimits {
  return {
    chargeVoltage: 14.2,
    chargeCurrent: 50,
    dischargeCurrent: 100,
    batteryLowVoltage: 12,
    chargeReason: 'config',
    dischargeReason: 'config',
    ...overrides,
  };
}

export function batteryState(overrides: Partial<BatteryState> = {}): BatteryState {
  return {
    id: 'house',
    health: 'online',
    snapshot: snapshot(),
    limits: limits(),
    alarms: noAlarms(),
    connection: 'Serial ttyUSB0',
    productName: 'JBD BMS',
    lastValidMs: 1_700_000_000_000,
    ...overrides,
  };
}
