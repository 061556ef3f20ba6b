import { describe, expect, test } from 'vitest';
import {
  ceilTo,
  floorTo,
  type SeriesMemberVoltages,
  type StringCurrent,
  sharedCurrentLimit,
  stringChargeVoltage,
  stringLowVoltage,
} from '../../src/bank/bank-limits.js';

const on = (limit: number, capacity?: number): StringCurrent => ({ conducting: true, limit, capacity });
const off = (limit: number, capacity?: number): StringCurrent => ({ conducting: false, limit, capacity });

describe('sharedCurrentLimit', () => {
  test.each<{
    case: string;
    strings: StringCurrent[];
    sharing: 'capacity' | 'count';
    current: number;
    shares: number[];
    limiting?: number;
  }>([
    {
      case: 'two equal strings double the limit',
      strings: [on(50, 100), on(50, 100)],
      sharing: 'capacity',
      current: 100,
      shares: [0.5, 0.5],
      limiting: 0,
    },
    {
      case: 'the small string takes a third and limits the bank at three times its limit',
      strings: [on(50, 100), on(200, 200)],
      sharing: 'capacity',
      current: 150,
      shares: [1 / 3, 2 / 3],
      limiting: 0,
    },
    {
      case: 'the big string with a low limit is the limit',
      strings: [on(50, 100), on(60, 200)],
      sharing: 'capacity',
      current: 90,
      shares: [1 / 3, 2 / 3],
      limiting: 1,
    },
    {
      case: 'count sharing ignores capacity',
      strings: [on(50, 100), on(60, 200)],
      sharing: 'count',
      current: 100,
      shares: [0.5, 0.5],
      limiting: 0,
    },
    {
      case: 'a string that does not conduct takes nothing and does not constrain',
      strings: [on(50, 100), off(0, 100)],
      sharing: 'capacity',
      current: 50,
      shares: [1, 0],
      limiting: 0,
    },
    {
      case: 'no string conducts: 0',
      strings: [off(50, 100), off(50, 100)],
      sharing: 'capacity',
      current: 0,
      shares: [0, 0],
    },
    {
      case: 'a conducting string with limit 0 stops the bank',
      strings: [on(0, 100), on(50, 100)],
      sharing: 'capacity',
      current: 0,
      shares: [0.5, 0.5],
      limiting: 0,
    },
    {
      case: 'an unknown capacity means every string could take it all',
      strings: [on(80, 100), on(50, undefined)],
      sharing: 'capacity',
      current: 50,
      shares: [1, 1],
      limiting: 1,
    },
    {
      case: 'a zero capacity is as unknown',
      strings: [on(80, 0), on(50, 100)],
      sharing: 'capacity',
      current: 50,
      shares: [1, 1],
      limiting: 1,
    },
    {
      case: 'a NaN limit counts as 0',
      strings: [on(Number.NaN, 100), on(50, 100)],
      sharing: 'capacity',
      current: 0,
      shares: [0.5, 0.5],
      limiting: 0,
    },
    {
      case: 'the result is rounded down to 0.01 A',
      strings: [on(50, 100), on(100, 280)],
      sharing: 'capacity',
      current: 135.71,
      shares: [100 / 380, 280 / 380],
      limiting: 1,
    },
  ])('$case', ({ strings, sharing, current, shares, limiting }) => {
    const r = sharedCurrentLimit(strings, sharing);
    expect(r.current).toBe(current);
    expect(r.limiting).toBe(limiting);
    expect(r.shares).toHaveLength(shares.length);
    for (const [i, share] of r.shares.entries()) expect(share).toBeCloseTo(shares[i] ?? Number.NaN, 12);
  });
});

const m = (
  chargeVoltage: number | undefined,
  cells: number | undefined,
  voltage?: number,
  lowVoltage?: number,
): SeriesMemberVoltages => ({
  chargeVoltage,
  cells,
  voltage,
  lowVoltage,
});

describe('stringChargeVoltage and stringLowVoltage', () => {
  test.each<{ case: string; members: SeriesMemberVoltages[]; cvl: number | undefined }>([
    { case: 'one member keeps its own CVL', members: [m(55.2, 16, 53)], cvl: 55.2 },
    { case: 'equal per-cell settings add up', members: [m(27.6, 8, 26.4), m(27.6, 8, 26.4)], cvl: 55.2 },
    { case: 'different cell counts with the same setting add up', members: [m(27.6, 8), m(55.2, 16)], cvl: 82.8 },
    { case: 'the stricter per-cell setting applies to every cell', members: [m(27.6, 8), m(27.2, 8)], cvl: 54.4 },
    {
      case: 'a member above its share pulls CVL to the measured voltage minus the overshoot',
      members: [m(27.6, 8, 28.0), m(27.6, 8, 26.0)],
      cvl: 53.6,
    },
    {
      case: 'no overshoot: the measured voltage does not matter',
      members: [m(27.6, 8, 27.5), m(27.6, 8, 26.0)],
      cvl: 55.2,
    },
    {
      case: 'a member without a CVL is bounded by the per-cell setting of the others',
      members: [m(27.6, 8), m(undefined, 8)],
      cvl: 55.2,
    },
    { case: 'no member with a CVL: unknown', members: [m(undefined, 8), m(undefined, 8)], cvl: undefined },
    {
      case: 'an unknown cell count makes the string CVL unknown',
      members: [m(27.6, 8), m(27.6, undefined)],
      cvl: undefined,
    },
    {
      case: 'a wild voltage reading on one member pulls CVL down to what the others measure plus its bound',
      members: [m(27.6, 8, 500), m(27.6, 8, 26)],
      cvl: 53.6,
    },
    { case: 'no members: unknown', members: [], cvl: undefined },
  ])('$case', ({ members, cvl }) => {
    expect(stringChargeVoltage(members)).toBe(cvl);
  });

  test('BatteryLowVoltage uses the highest per-cell floor for every cell', () => {
    expect(stringLowVoltage([m(27.6, 8, undefined, 23.2), m(27.6, 8, undefined, 24)])).toBe(48);
    expect(stringLowVoltage([m(27.6, 8, undefined, 23.2), m(27.6, 8, undefined, 23.2)])).toBe(46.4);
    expect(stringLowVoltage([m(27.6, 8, undefined, 23.2), m(27.6, 8, undefined, undefined)])).toBe(46.4);
    expect(stringLowVoltage([m(27.6, 8, undefined, 23.2), m(27.6, undefined, undefined, 23.2)])).toBeUndefined();
  });

  test('rounding absorbs float noise but never rounds a real excess the unsafe way', () => {
    expect(floorTo(0.1 * 3, 2)).toBe(0.3);
    expect(floorTo(55.2009, 3)).toBe(55.2);
    expect(ceilTo(46.4001, 3)).toBe(46.401);
    expect(ceilTo(2.9 * 16, 3)).toBe(46.4);
  });
});
