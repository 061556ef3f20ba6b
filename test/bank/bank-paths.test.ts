import { describe, expect, test } from 'vitest';
import { aggregateBank } from '../../src/bank/aggregate.js';
import { bankCellCount, bankLayout, bankPathTypes, bankPathValues } from '../../src/bank/bank-paths.js';
import { parseTopology } from '../../src/bank/topology.js';
import { member } from './bank-fixtures.js';

const IDS = ['a', 'b', 'c', 'd'];
const t2s2p = parseTopology({ series: ['a+b', 'c+d'] }, IDS);
const layout = bankLayout(t2s2p, { a: 4, b: 4, c: 4, d: 4 });
const cells = (first: number) => [first, first + 0.001, first + 0.002, first + 0.003];

function bank2s2p(dOnline = true) {
  return aggregateBank(
    [
      member('a', { cellVoltages: cells(3.3), current: 5, snapshot: { balancing: [false, true, false, false] } }),
      member('b', { cellVoltages: cells(3.31), current: 5 }),
      member('c', { cellVoltages: cells(3.32), current: 6 }),
      member('d', { cellVoltages: cells(3.4), current: 6, health: dOnline ? 'online' : 'offline' }),
    ],
    t2s2p,
  );
}

describe('bankLayout and bankPathTypes', () => {
  test('the layout lists members in topology order and counts every cell', () => {
    expect(layout.members).toEqual([
      { id: 'a', cells: 4 },
      { id: 'b', cells: 4 },
      { id: 'c', cells: 4 },
      { id: 'd', cells: 4 },
    ]);
    expect(bankCellCount(layout)).toBe(16);
  });

  test('a member with an unknown cell count gets no cell paths', () => {
    const l = bankLayout(t2s2p, { a: 4, b: 4, c: 4 });
    expect(l.members[3]).toEqual({ id: 'd', cells: 0 });
    expect(bankCellCount(l)).toBe(12);
    expect(Object.keys(bankPathTypes(l)).some((p) => p.startsWith('/Voltages/d/'))).toBe(false);
  });

  test('bankPathTypes lists exactly the paths bankPathValues fills', () => {
    expect(Object.keys(bankPathValues(bank2s2p(), layout)).sort()).toEqual(Object.keys(bankPathTypes(layout)).sort());
  });

  test('the types match the values: doubles and ints are numbers, strings are strings', () => {
    const types = bankPathTypes(layout);
    for (const [path, value] of Object.entries(bankPathValues(bank2s2p(), layout))) {
      if (value === undefined) continue;
      if (types[path] === 's') expect(typeof value, path).toBe('string');
      else expect(typeof value, path).toBe('number');
      if (types[path] === 'i') expect(Number.isInteger(value), path).toBe(true);
    }
  });
});

describe('bankPathValues', () => {
  test('2s2p: system counts, extremes named by member and cell, cells across the bank and per member', () => {
    const v = bankPathValues(bank2s2p(), layout);
    expect(v).toMatchObject({
      '/System/NrOfBatteries': 4,
      '/System/BatteriesSeries': 2,
      '/System/BatteriesParallel': 2,
      '/System/NrOfModulesOnline': 4,
      '/System/NrOfModulesOffline': 0,
      '/System/NrOfModulesBlockingCharge': 0,
      '/System/NrOfModulesBlockingDischarge': 0,
      '/System/NrOfCellsPerBattery': 4,
      '/System/MinCellVoltage': 3.3,
      '/System/MinVoltageCellId': 'a:C1',
      '/System/MaxCellVoltage': 3.403,
      '/System/MaxVoltageCellId': 'd:C4',
      '/System/MaxTemperatureCellId': 'a:T1',
      '/Voltages/Cell1': 3.3,
      '/Voltages/Cell5': 3.31,
      '/Voltages/Cell16': 3.403,
      '/Voltages/b/Cell1': 3.31,
      '/Voltages/d/Cell4': 3.403,
      '/Balances/Cell2': 1,
      '/Balances/Cell1': 0,
      '/Balancing': 1,
      '/Batteries/c/Connected': 1,
      '/Batteries/c/Health': 'online',
      '/Batteries/c/String': 2,
      '/Batteries/c/Position': 1,
      '/Batteries/c/Current': 6,
      '/Batteries/c/Soc': 50,
      '/Batteries/c/NrOfCells': 4,
      '/Batteries/c/MaxVoltageCellId': 'C4',
      '/Batteries/c/AllowToCharge': 1,
      '/Batteries/c/MaxChargeCurrent': 50,
      '/Batteries/c/ChargeShare': 50,
      '/Batteries/a/Serial': 'SN-a',
    });
    expect(v['/Voltages/Diff']).toBeCloseTo(0.103, 9);
    // Each string's cells add to about its voltage; the bank shows their mean.
    expect(v['/Voltages/Sum']).toBeCloseTo((4 * 3.3 + 4 * 3.31 + 4 * 3.32 + 4 * 3.4 + 4 * 0.006) / 2, 9);
  });

  test('an offline member leaves its cell positions invalid instead of shifting later cells', () => {
    const v = bankPathValues(bank2s2p(false), layout);
    for (let n = 13; n <= 16; n++) expect(v[`/Voltages/Cell${n}`]).toBeUndefined();
    expect(v['/Voltages/Cell9']).toBe(3.32);
    expect(v['/Voltages/d/Cell1']).toBeUndefined();
    expect(v['/Batteries/d/Connected']).toBe(0);
    expect(v['/Batteries/d/Health']).toBe('offline');
    expect(v['/Batteries/d/Voltage']).toBeUndefined();
    expect(v['/Batteries/d/AllowToCharge']).toBeUndefined();
    // Only the complete string makes a sum.
    expect(v['/Voltages/Sum']).toBeCloseTo(4 * 3.3 + 4 * 3.31 + 0.012, 9);
    expect(v['/System/NrOfModulesOffline']).toBe(1);
    expect(v['/System/MaxVoltageCellId']).toBe('c:C4');
  });

  test('a member reporting more cells than the layout shows only the layout positions', () => {
    const t = parseTopology({ batteries: ['a'] }, IDS);
    const b = aggregateBank([member('a', { cellVoltages: [3.3, 3.31, 3.32] })], t);
    const v = bankPathValues(b, bankLayout(t, { a: 2 }));
    expect(v['/Voltages/Cell2']).toBe(3.31);
    expect(v['/Voltages/Cell3']).toBeUndefined();
    expect(Object.hasOwn(v, '/Voltages/Cell3')).toBe(false);
  });

  test('a member with a charge FET off shows AllowToCharge 0 and no charge share', () => {
    const t = parseTopology({ batteries: ['a', 'b'], topology: '2p' }, IDS);
    const b = aggregateBank([member('a', { chargeFet: false }), member('b')], t);
    const v = bankPathValues(b, bankLayout(t, { a: 8, b: 8 }));
    expect(v['/Batteries/a/AllowToCharge']).toBe(0);
    expect(v['/Batteries/a/ChargeShare']).toBe(0);
    expect(v['/Batteries/b/ChargeShare']).toBe(100);
    expect(v['/System/NrOfModulesBlockingCharge']).toBe(1);
  });

  test('members with different cell counts have no common /System/NrOfCellsPerBattery', () => {
    const t = parseTopology({ series: ['a+b'] }, IDS);
    const b = aggregateBank([member('a', { cells: 8 }), member('b', { cells: 16 })], t);
    const v = bankPathValues(b, bankLayout(t, { a: 8, b: 16 }));
    expect(v['/System/NrOfCellsPerBattery']).toBeUndefined();
    expect(v['/Voltages/Cell24']).toBe(3.3);
  });

  test('no value is NaN or Infinity', () => {
    const t = parseTopology({ batteries: ['a', 'b'], topology: '2p' }, IDS);
    const b = aggregateBank(
      [
        member('a', {
          cellVoltages: [Number.NaN, 3.3, 3.3, 3.3],
          snapshot: { voltage: Number.NaN, current: Number.NaN },
        }),
        member('b', { cells: 4 }),
      ],
      t,
    );
    const v = bankPathValues(b, bankLayout(t, { a: 4, b: 4 }));
    expect(v['/Voltages/Cell1']).toBeUndefined();
    for (const [path, value] of Object.entries(v)) {
      if (typeof value === 'number') expect(Number.isFinite(value), path).toBe(true);
    }
  });
});
