/**
 * What the inverter is told: the policy's limits when the source is fresh and healthy, CCL = DCL = 0 with the
 * enable bits cleared on any doubt, caps that only lower, and never a NaN.
 */
import { describe, expect, test } from 'vitest';
import { aggregateBank } from '../../src/bank/aggregate.js';
import { parseTopology } from '../../src/bank/topology.js';
import type { BatteryState } from '../../src/domain/battery-state.js';
import { inverterView } from '../../src/inverter/inverter-view.js';
import { batteryStateBuilders, PACK_12V } from '../support/battery-state.js';

const NOW = PACK_12V.now();
const { batteryState, snapshot, limits } = batteryStateBuilders(PACK_12V);
const opts = { staleLimitMs: 3000 };

const allNumbersFinite = (o: unknown): boolean => {
  if (typeof o === 'number') return Number.isFinite(o);
  if (o && typeof o === 'object') return Object.values(o).every(allNumbersFinite);
  return true;
};

describe('inverterView', () => {
  test('a healthy, fresh battery: the policy limits and the measurements, both directions enabled', () => {
    const v = inverterView(batteryState(), NOW + 500, opts);
    expect(v).toMatchObject({
      usable: true,
      chargeBlocked: '',
      dischargeBlocked: '',
      chargeVoltage: 14.2,
      dischargeVoltage: 12,
      chargeCurrent: 50,
      dischargeCurrent: 100,
      chargeEnable: true,
      dischargeEnable: true,
      soc: 87.5,
      soh: 98,
      voltage: 13.3,
      current: -10,
      temperature: 22,
      minTemperature: 21,
      maxTemperature: 23,
      minCellVoltage: 3.31,
      maxCellVoltage: 3.335,
      capacityInstalled: 100,
      cellsInSeries: 4,
      modules: { online: 1, offline: 0, blockingCharge: 0, blockingDischarge: 0 },
    });
    expect(v.alarms.communication).toBe(0);
  });

  test.each([
    { case: 'no state at all', state: undefined, why: 'no source state' },
    { case: 'offline', state: batteryState({ health: 'offline' }), why: 'source offline' },
    { case: 'stale', state: batteryState({ health: 'stale' }), why: 'source data stale' },
    { case: 'no snapshot yet', state: batteryState({ snapshot: undefined }), why: 'no data yet' },
    {
      case: 'online by its own account but its data older than the stale limit',
      state: batteryState({ lastValidMs: NOW - 3001 }),
      why: 'last valid data 3 s old',
    },
    { case: 'never a valid reply', state: batteryState({ lastValidMs: undefined }), why: 'last valid data never old' },
    {
      case: 'no pack voltage',
      state: batteryState({ snapshot: snapshot({ voltage: undefined }) }),
      why: 'no pack voltage',
    },
    {
      case: 'NaN voltage',
      state: batteryState({ snapshot: snapshot({ voltage: Number.NaN }) }),
      why: 'no pack voltage',
    },
    { case: 'no SoC', state: batteryState({ snapshot: snapshot({ soc: undefined }) }), why: 'no SoC' },
  ])('$case → CCL = DCL = 0, enables cleared, communication alarm', ({ state, why }) => {
    const v = inverterView(state as BatteryState | undefined, NOW, opts);
    expect(v.usable).toBe(false);
    expect(v.chargeBlocked).toBe(why);
    expect(v.dischargeBlocked).toBe(why);
    expect([v.chargeCurrent, v.dischargeCurrent, v.chargeEnable, v.dischargeEnable, v.forceCharge]).toEqual([
      0,
      0,
      false,
      false,
      false,
    ]);
    expect(v.alarms.communication).toBe(2);
    expect(allNumbersFinite(v)).toBe(true);
  });

  test.each([
    {
      case: 'charge FET off',
      state: batteryState({ snapshot: snapshot({ chargeFet: false }) }),
      charge: 'charge FET off',
      discharge: '',
    },
    {
      case: 'discharge FET off',
      state: batteryState({ snapshot: snapshot({ dischargeFet: false }) }),
      charge: '',
      discharge: 'discharge FET off',
    },
    {
      case: 'BMS cell over-voltage protection',
      state: batteryState({ snapshot: snapshot({ protection: { cellOverVoltage: true } }) }),
      charge: 'over-voltage alarm',
      discharge: '',
    },
    {
      case: 'low cell voltage alarm',
      state: batteryState({ alarms: { ...batteryState().alarms, LowCellVoltage: 2 } }),
      charge: '',
      discharge: 'under-voltage alarm',
    },
    {
      case: 'short circuit',
      state: batteryState({ snapshot: snapshot({ protection: { shortCircuit: true } }) }),
      charge: 'current alarm',
      discharge: 'current alarm',
    },
    {
      case: 'charge temperature alarm',
      state: batteryState({ alarms: { ...batteryState().alarms, LowChargeTemperature: 2 } }),
      charge: 'temperature alarm',
      discharge: '',
    },
    {
      case: 'internal failure',
      state: batteryState({ alarms: { ...batteryState().alarms, InternalFailure: 2 } }),
      charge: 'internal failure',
      discharge: 'internal failure',
    },
    {
      case: 'policy gate: CCL 0 for cell over-voltage',
      state: batteryState({ limits: limits({ chargeCurrent: 0, chargeReason: 'cell over-voltage' }) }),
      charge: 'cell over-voltage',
      discharge: '',
    },
    {
      case: 'unknown CVL',
      state: batteryState({ limits: limits({ chargeVoltage: undefined }) }),
      charge: 'no charge voltage limit',
      discharge: '',
    },
    {
      case: 'unknown BatteryLowVoltage',
      state: batteryState({ limits: limits({ batteryLowVoltage: undefined }) }),
      charge: '',
      discharge: 'no discharge voltage limit',
    },
    {
      case: 'NaN CCL from a broken policy',
      state: batteryState({ limits: limits({ chargeCurrent: Number.NaN, chargeReason: '' }) }),
      charge: 'policy limit 0',
      discharge: '',
    },
  ])('a closed gate ($case) zeroes its direction only', ({ state, charge, discharge }) => {
    const v = inverterView(state, NOW, opts);
    expect(v.chargeBlocked).toBe(charge);
    expect(v.dischargeBlocked).toBe(discharge);
    expect(v.chargeCurrent === 0).toBe(charge !== '');
    expect(v.chargeEnable).toBe(charge === '');
    expect(v.dischargeCurrent === 0).toBe(discharge !== '');
    expect(v.dischargeEnable).toBe(discharge === '');
    expect(allNumbersFinite(v)).toBe(true);
  });

  test('caps only lower: below the policy they apply, above it the policy wins', () => {
    expect(inverterView(batteryState(), NOW, { ...opts, maxChargeCurrent: 20, maxDischargeCurrent: 30 })).toMatchObject(
      { chargeCurrent: 20, dischargeCurrent: 30 },
    );
    expect(
      inverterView(batteryState(), NOW, { ...opts, maxChargeCurrent: 500, maxDischargeCurrent: 500 }),
    ).toMatchObject({ chargeCurrent: 50, dischargeCurrent: 100 });
    // A cap of 0 blocks that direction and says why.
    const zero = inverterView(batteryState(), NOW, { ...opts, maxChargeCurrent: 0 });
    expect(zero.chargeEnable).toBe(false);
    expect(zero.chargeBlocked).toBe('config');
  });

  test('the policy charge request becomes a force-charge request only while charging is allowed', () => {
    const asking = batteryState({ limits: limits({ chargeRequest: 1 }) });
    expect(inverterView(asking, NOW, opts).forceCharge).toBe(true);
    expect(inverterView({ ...asking, health: 'stale' }, NOW, opts).forceCharge).toBe(false);
  });

  test('unknown measurements become neutral, finite values', () => {
    const bare = batteryState({
      snapshot: { timestampMs: NOW, voltage: 13, soc: 50, protection: {}, identity: {} },
    });
    const v = inverterView(bare, NOW, opts);
    expect(v).toMatchObject({
      usable: true,
      soh: 100,
      current: 0,
      temperature: 0,
      minCellVoltage: 0,
      capacityInstalled: 0,
      cellsInSeries: 0,
    });
    expect(allNumbersFinite(v)).toBe(true);
  });

  test('a SoC out of range is clamped', () => {
    expect(inverterView(batteryState({ snapshot: snapshot({ soc: 104 }) }), NOW, opts).soc).toBe(100);
  });

  test('a bank: its module counts and limits; a stale member blocks it', () => {
    const topology = parseTopology({ batteries: ['a', 'b'], topology: '2p' }, ['a', 'b']);
    const a = batteryState({ id: 'a' });
    const b = batteryState({ id: 'b' });
    const bank = aggregateBank([a, b], topology, { id: 'bank' });
    const v = inverterView(bank, NOW, opts);
    expect(v.usable).toBe(true);
    expect(v.modules).toEqual({ online: 2, offline: 0, blockingCharge: 0, blockingDischarge: 0 });
    expect(v.chargeCurrent).toBe(bank.limits.chargeCurrent);
    expect(v.chargeCurrent).toBeGreaterThan(50);
    const stale = aggregateBank([a, { ...b, health: 'stale' }], topology, { id: 'bank' });
    expect(inverterView(stale, NOW, opts)).toMatchObject({ chargeCurrent: 0, dischargeCurrent: 0, usable: false });
  });
});
