import { describe, expect, test } from 'vitest';
import { aggregateBank, type BankOptions, type BankState } from '../../src/bank/aggregate.js';
import { parseTopology, type TopologySpec } from '../../src/bank/topology.js';
import type { BatteryState } from '../../src/domain/battery-state.js';
import { member } from './bank-fixtures.js';

const IDS = ['a', 'b', 'c', 'd'];

function bank(spec: TopologySpec, members: BatteryState[], options?: BankOptions): BankState {
  return aggregateBank(members, parseTopology(spec, IDS), options);
}

/** Every number anywhere in the result is finite (NaN and ±Infinity never leave the bank). */
function numbersIn(v: unknown, path = ''): [string, number][] {
  if (typeof v === 'number') return [[path, v]];
  if (Array.isArray(v)) return v.flatMap((x, i) => numbersIn(x, `${path}[${i}]`));
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => numbersIn(x, `${path}.${k}`));
  return [];
}

describe('aggregateBank: named cases', () => {
  test('two in series: voltages add, current is the mean, capacity and SoC are the weakest, cells concatenate', () => {
    const b = bank({ series: ['a+b'] }, [
      member('a', { cellV: 3.3, current: 10, soc: 60, capacity: 100 }),
      member('b', { cellV: 3.32, current: 10.4, soc: 55, capacity: 90, ccl: 40 }),
    ]);
    expect(b.health).toBe('online');
    expect(b.snapshot?.voltage).toBeCloseTo(52.96, 6);
    expect(b.snapshot?.current).toBeCloseTo(10.2, 9);
    expect(b.snapshot?.soc).toBe(55);
    expect(b.snapshot?.capacityInstalled).toBe(90);
    expect(b.snapshot?.capacityRemaining).toBeCloseTo(49.5, 9);
    expect(b.snapshot?.cellVoltages).toEqual([...Array(8).fill(3.3), ...Array(8).fill(3.32)]);
    expect(b.snapshot?.cellCount).toBe(16);
    expect(b.cellsInSeries).toBe(16);
    expect(b.limits).toEqual({
      chargeVoltage: 55.2,
      batteryLowVoltage: 46.4,
      chargeCurrent: 40,
      dischargeCurrent: 60,
      chargeReason: 'b: config maximum',
      dischargeReason: 'a: config maximum',
    });
    expect(b.minCell).toMatchObject({ id: 'a:C1', value: 3.3 });
    expect(b.maxCell).toMatchObject({ id: 'b:C1', value: 3.32 });
    expect(b.counts).toEqual({
      batteries: 2,
      series: 2,
      parallel: 1,
      modules: { online: 2, offline: 0, blockingCharge: 0, blockingDischarge: 0 },
    });
    expect(b.alarms.BmsCable).toBe(0);
    expect(b.problems).toEqual([]);
  });

  test('2s2p: strings in parallel share current by capacity, voltages average, currents add', () => {
    const b = bank({ batteries: ['a', 'b', 'c', 'd'], topology: '2s2p' }, [
      member('a', { cellV: 3.3, current: 10 }),
      member('b', { cellV: 3.3, current: 10 }),
      member('c', { cellV: 3.31, current: 12 }),
      member('d', { cellV: 3.31, current: 12 }),
    ]);
    expect(b.snapshot?.voltage).toBeCloseTo((52.8 + 52.96) / 2, 6);
    expect(b.snapshot?.current).toBe(22);
    expect(b.snapshot?.capacityInstalled).toBe(200);
    expect(b.snapshot?.soc).toBe(50);
    expect(b.limits.chargeVoltage).toBe(55.2);
    expect(b.limits.chargeCurrent).toBe(100);
    expect(b.limits.dischargeCurrent).toBe(120);
    expect(b.limits.chargeReason).toBe('a: config maximum (2/2 strings)');
    expect(b.counts).toMatchObject({ batteries: 4, series: 2, parallel: 2 });
    expect(b.snapshot?.cellVoltages).toHaveLength(32);
    expect(b.members.map((m) => m.chargeShare)).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(b.strings.map((s) => s.voltage)).toEqual([52.8, 52.96]);
  });

  test('one parallel member offline: it leaves the sums and the limits at once, BmsCable warns, the bank stays up', () => {
    const b = bank({ batteries: ['a', 'b', 'c'], topology: '3p' }, [
      member('a', { current: -20 }),
      member('b', { current: -22 }),
      member('c', { current: -99, health: 'offline', cellV: 3.6 }),
    ]);
    expect(b.health).toBe('online');
    expect(b.alarms.BmsCable).toBe(1);
    expect(b.snapshot?.current).toBe(-42);
    expect(b.snapshot?.capacityInstalled).toBe(200);
    expect(b.limits.chargeCurrent).toBe(100);
    expect(b.limits.dischargeCurrent).toBe(120);
    expect(b.limits.chargeReason).toBe('a: config maximum (2/3 strings)');
    expect(b.maxCell?.member).not.toBe('c');
    expect(b.counts.modules).toEqual({ online: 2, offline: 1, blockingCharge: 0, blockingDischarge: 0 });
    expect(b.members.find((m) => m.id === 'c')).toMatchObject({ connected: false, voltage: undefined, chargeShare: 0 });
  });

  test('one series member offline in a single string: the string and so the bank can do nothing', () => {
    const b = bank({ series: ['a+b'] }, [member('a'), member('b', { health: 'offline' })]);
    expect(b.health).toBe('offline');
    expect(b.alarms.BmsCable).toBe(2);
    expect(b.limits.chargeCurrent).toBe(0);
    expect(b.limits.dischargeCurrent).toBe(0);
    expect(b.limits.chargeReason).toBe('b: offline');
    expect(b.snapshot?.voltage).toBeUndefined();
    // Its CVL is still known (from its cell count), and only ever lowers the bank's.
    expect(b.limits.chargeVoltage).toBe(55.2);
  });

  test('one series member offline in 2s2p: its string drops out, the other string carries on alone', () => {
    const b = bank({ series: ['a+b', 'c+d'] }, [
      member('a', { current: 5 }),
      member('b', { current: 5 }),
      member('c', { current: 6 }),
      member('d', { health: 'offline' }),
    ]);
    expect(b.health).toBe('online');
    expect(b.alarms.BmsCable).toBe(1);
    expect(b.limits.chargeCurrent).toBe(50);
    expect(b.limits.dischargeCurrent).toBe(60);
    expect(b.snapshot?.current).toBe(5);
    expect(b.snapshot?.voltage).toBeCloseTo(52.8, 6);
    expect(b.strings.map((s) => s.present)).toEqual([true, false]);
    // c is still connected: its cells are real and count for the extremes.
    expect(b.counts.modules).toMatchObject({ online: 3, offline: 1 });
  });

  test('a member with its charge FET off: the bank charges through the others only and reports the FET as off', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [member('a', { chargeFet: false }), member('b')]);
    expect(b.limits.chargeCurrent).toBe(50);
    expect(b.limits.chargeReason).toBe('b: config maximum (1/2 strings)');
    expect(b.limits.dischargeCurrent).toBe(120);
    expect(b.snapshot?.chargeFet).toBe(false);
    expect(b.snapshot?.dischargeFet).toBe(true);
    expect(b.counts.modules.blockingCharge).toBe(1);
    expect(b.members.map((m) => [m.id, m.chargeShare, m.dischargeShare])).toEqual([
      ['a', 0, 0.5],
      ['b', 1, 0.5],
    ]);
  });

  test('a series member with its charge FET off stops its whole string charging', () => {
    const b = bank({ series: ['a+b', 'c+d'] }, [
      member('a'),
      member('b', { chargeFet: false }),
      member('c'),
      member('d'),
    ]);
    expect(b.limits.chargeCurrent).toBe(50);
    expect(b.limits.dischargeCurrent).toBe(120);
    expect(b.strings.map((s) => s.chargeConducting)).toEqual([false, true]);
  });

  test('every member with its charge FET off: nothing can charge', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [
      member('a', { chargeFet: false }),
      member('b', { chargeFet: false }),
    ]);
    expect(b.limits.chargeCurrent).toBe(0);
    expect(b.limits.chargeReason).toBe('no string can charge: a: charge FET off; b: charge FET off');
  });

  test('a member whose own policy stops charging while its FET still conducts stops the whole bank', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [
      member('a', { ccl: 0, limits: { chargeReason: 'cell over-voltage' } }),
      member('b'),
    ]);
    expect(b.limits.chargeCurrent).toBe(0);
    expect(b.limits.chargeReason).toBe('a: cell over-voltage (2/2 strings)');
    expect(b.limits.dischargeCurrent).toBe(120);
  });

  test('identical serial numbers: no crash, members stay distinct by config id', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [
      member('a', { serial: 'SAME', cellVoltages: [3.3, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3, 3.31] }),
      member('b', { serial: 'SAME', cellVoltages: [3.3, 3.3, 3.3, 3.29, 3.3, 3.3, 3.3, 3.3] }),
    ]);
    expect(b.members.map((m) => [m.id, m.serial])).toEqual([
      ['a', 'SAME'],
      ['b', 'SAME'],
    ]);
    expect(b.maxCell?.id).toBe('a:C8');
    expect(b.minCell?.id).toBe('b:C4');
    expect(b.limits.chargeCurrent).toBe(100);
  });

  test.each<{ case: string; options: BankOptions; ccl: number; dcl: number }>([
    { case: 'mixed capacities share by capacity: the small pack limits the bank', options: {}, ccl: 135.71, dcl: 190 },
    { case: 'mixed capacities with count sharing: each takes half', options: { sharing: 'count' }, ccl: 100, dcl: 100 },
  ])('$case', ({ options, ccl, dcl }) => {
    const b = bank(
      { batteries: ['a', 'b'], topology: '2p' },
      [
        member('a', { capacity: 100, soc: 20, ccl: 50, dcl: 50 }),
        member('b', { capacity: 280, soc: 80, ccl: 100, dcl: 200 }),
      ],
      options,
    );
    expect(b.limits.chargeCurrent).toBe(ccl);
    expect(b.limits.dischargeCurrent).toBe(dcl);
    expect(b.snapshot?.soc).toBeCloseTo((20 * 100 + 80 * 280) / 380, 9);
    expect(b.snapshot?.capacityInstalled).toBe(380);
  });

  test('a parallel member whose capacity is unknown: each string is assumed to possibly take it all', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [
      member('a', { ccl: 80 }),
      member('b', { ccl: 50, snapshot: { capacityInstalled: undefined } }),
    ]);
    expect(b.limits.chargeCurrent).toBe(50);
    expect(b.limits.chargeReason).toBe('b: config maximum (2/2 strings, capacity unknown)');
  });

  test('a stale parallel member blocks the bank: it may still be connected and its own limit is 0', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [member('a'), member('b', { health: 'stale' })]);
    expect(b.health).toBe('stale');
    expect(b.limits.chargeCurrent).toBe(0);
    expect(b.limits.dischargeCurrent).toBe(0);
    expect(b.limits.chargeReason).toBe('b: data stale (2/2 strings)');
    expect(b.alarms.BmsCable).toBe(1);
    expect(b.counts.modules).toMatchObject({ online: 2, offline: 0, blockingCharge: 1, blockingDischarge: 1 });
  });

  test('a stale member whose last report said FET off still blocks (a stale report is not trusted)', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [
      member('a'),
      member('b', { health: 'stale', chargeFet: false }),
    ]);
    expect(b.limits.chargeCurrent).toBe(0);
  });

  test('a stale series member in 2s2p blocks the whole bank', () => {
    const b = bank({ series: ['a+b', 'c+d'] }, [
      member('a'),
      member('b'),
      member('c', { health: 'stale' }),
      member('d'),
    ]);
    expect(b.limits.chargeCurrent).toBe(0);
    expect(b.limits.dischargeCurrent).toBe(0);
  });

  test('a bank of one publishes its member unchanged', () => {
    const m = member('a', { current: -3, soc: 70 });
    const b = aggregateBank([m], parseTopology({}, ['a']));
    expect(b.limits).toEqual({
      ...m.limits,
      chargeReason: 'a: config maximum',
      dischargeReason: 'a: config maximum',
    });
    expect(b.snapshot).toMatchObject({ voltage: m.snapshot?.voltage, current: -3, soc: 70, capacityInstalled: 100 });
    expect(b.counts).toMatchObject({ batteries: 1, series: 1, parallel: 1 });
  });

  test('series members with different per-cell settings: CVL uses the stricter one for every cell', () => {
    const b = bank({ series: ['a+b'] }, [member('a', { cvlPerCell: 3.45 }), member('b', { cvlPerCell: 3.4 })]);
    // The sum of the members' CVLs would be 27.6 + 27.2 = 54.8 V: 3.425 V per cell, above b's 3.40.
    expect(b.limits.chargeVoltage).toBe(54.4);
  });

  test('parallel members with different per-cell settings: CVL is the lowest', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [
      member('a', { cvlPerCell: 3.45 }),
      member('b', { cvlPerCell: 3.4 }),
    ]);
    expect(b.limits.chargeVoltage).toBe(27.2);
  });

  test('a series member above its share pulls the string CVL down by its overshoot', () => {
    const b = bank({ series: ['a+b'] }, [member('a', { cellV: 3.5 }), member('b', { cellV: 3.25 })]);
    // 28.0 + 26.0 = 54.0 V measured; a is 0.4 V above 8 × 3.45 = 27.6 V.
    expect(b.limits.chargeVoltage).toBe(53.6);
  });

  test('parallel strings with different cell counts: the bank is misconfigured and stops both directions', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [member('a', { cells: 8 }), member('b', { cells: 7 })]);
    expect(b.limits.chargeCurrent).toBe(0);
    expect(b.limits.dischargeCurrent).toBe(0);
    expect(b.limits.chargeReason).toMatch(
      /^bank misconfigured: strings in parallel must have the same number of cells/,
    );
    expect(b.alarms.InternalFailure).toBe(2);
    expect(b.cellsInSeries).toBeUndefined();
  });

  test('mixed chemistries from the options make the bank unusable', () => {
    const b = bank({ series: ['a+b'] }, [member('a'), member('b')], { chemistries: { a: 'LFP', b: 'NMC' } });
    expect(b.limits.chargeCurrent).toBe(0);
    expect(b.problems[0]).toMatch(/mix chemistries/);
  });

  test.each<{ case: string; currents: [number, number]; level: number }>([
    { case: 'series members disagreeing by 10 A raise an InternalFailure warning', currents: [10, 20], level: 1 },
    { case: 'series members disagreeing by 1 A are within sensor tolerance', currents: [10, 11], level: 0 },
    { case: 'a 20 % disagreement at high current is tolerated', currents: [100, 118], level: 0 },
  ])('$case', ({ currents, level }) => {
    const b = bank({ series: ['a+b'] }, [member('a', { current: currents[0] }), member('b', { current: currents[1] })]);
    expect(b.alarms.InternalFailure).toBe(level);
    expect(b.problems.length > 0).toBe(level > 0);
    if (level > 0) expect(b.problems[0]).toMatch(/series members disagree on current \(a 10.0 A, b 20.0 A\)/);
  });

  test('parallel strings whose voltages spread more than 0.05 V per cell raise a warning', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [
      member('a', { cellV: 3.3 }),
      member('b', { cellV: 3.36 }),
    ]);
    expect(b.alarms.InternalFailure).toBe(1);
    expect(b.problems[0]).toMatch(/parallel strings disagree on voltage by 0.48 V/);
    const close = bank({ batteries: ['a', 'b'], topology: '2p' }, [
      member('a', { cellV: 3.3 }),
      member('b', { cellV: 3.34 }),
    ]);
    expect(close.alarms.InternalFailure).toBe(0);
  });

  test('alarms are the worst connected member; an offline member adds only BmsCable', () => {
    const a = member('a');
    a.alarms.HighCellVoltage = 1;
    const b = member('b');
    b.alarms.HighCellVoltage = 2;
    b.alarms.LowSoc = 1;
    const c = member('c', { health: 'offline' });
    c.alarms.HighTemperature = 2;
    const out = bank({ batteries: ['a', 'b', 'c'], topology: '3p' }, [a, b, c]);
    expect(out.alarms).toMatchObject({ HighCellVoltage: 2, LowSoc: 1, HighTemperature: 0, BmsCable: 1 });
  });

  test('temperatures of every member are named by member and sensor', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [
      member('a', { temps: [20, 22] }),
      member('b', { temps: [19, 31] }),
    ]);
    expect(b.maxTemperature).toMatchObject({ id: 'b:T2', value: 31 });
    expect(b.minTemperature).toMatchObject({ id: 'b:T1', value: 19 });
    expect(b.snapshot?.temperatures?.map((t) => t.name)).toEqual(['a:T1', 'a:T2', 'b:T1', 'b:T2']);
  });

  test('every member offline: bank offline, limits 0, no snapshot, CVL still known', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [
      member('a', { health: 'offline' }),
      member('b', { health: 'offline' }),
    ]);
    expect(b.health).toBe('offline');
    expect(b.snapshot).toBeUndefined();
    expect(b.limits).toMatchObject({ chargeCurrent: 0, dischargeCurrent: 0, chargeVoltage: 27.6 });
    expect(b.alarms.BmsCable).toBe(2);
  });

  test('a member missing from the input counts as offline', () => {
    const b = bank({ batteries: ['a', 'b'], topology: '2p' }, [member('a')]);
    expect(b.counts.modules).toMatchObject({ online: 1, offline: 1 });
    expect(b.limits.chargeCurrent).toBe(50);
  });

  test('a Map of members works the same as a list', () => {
    const list = [member('a'), member('b')];
    const t = parseTopology({ batteries: ['a', 'b'], topology: '2p' }, IDS);
    expect(aggregateBank(new Map(list.map((m) => [m.id, m])), t)).toEqual(aggregateBank(list, t));
  });

  test('no CVL known while charging is otherwise allowed: CCL is forced to 0', () => {
    const b = bank({ batteries: ['a'] }, [member('a', { limits: { chargeVoltage: undefined } })]);
    expect(b.limits.chargeVoltage).toBeUndefined();
    expect(b.limits.chargeCurrent).toBe(0);
    expect(b.limits.chargeReason).toBe('charge voltage unknown');
  });

  test('NaN and Infinity from a member never reach the bank', () => {
    const b = bank({ series: ['a+b'] }, [
      member('a', {
        snapshot: { voltage: Number.NaN, current: Number.POSITIVE_INFINITY, soc: Number.NaN, power: Number.NaN },
        cellVoltages: [3.3, Number.NaN, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3],
        limits: { chargeCurrent: Number.NaN, dischargeCurrent: Number.POSITIVE_INFINITY, chargeVoltage: Number.NaN },
      }),
      member('b'),
    ]);
    for (const [path, n] of numbersIn(b)) expect(Number.isFinite(n), path).toBe(true);
    expect(b.limits.chargeCurrent).toBe(0);
    expect(b.limits.dischargeCurrent).toBe(0);
    expect(b.members[0]?.cellVoltages[1]).toBeUndefined();
  });
});
