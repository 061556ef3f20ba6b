import { describe, expect, test } from 'vitest';
import {
  bankOfOne,
  parseTopology,
  TopologyError,
  type TopologySpec,
  validateMembers,
} from '../../src/bank/topology.js';

const KNOWN = ['a', 'b', 'c', 'd', 'e', 'f'];

describe('parseTopology', () => {
  test.each<{
    case: string;
    spec: TopologySpec;
    known?: string[];
    strings: string[][];
    label: string;
    s: number;
    p: number;
  }>([
    {
      case: 'one battery with no [bank] keys is a bank of one',
      spec: {},
      known: ['house'],
      strings: [['house']],
      label: '1s1p',
      s: 1,
      p: 1,
    },
    {
      case: 'batteries listing one battery is a bank of one',
      spec: { batteries: ['c'] },
      strings: [['c']],
      label: '1s1p',
      s: 1,
      p: 1,
    },
    {
      case: '2s2p groups consecutive batteries into strings',
      spec: { batteries: ['a', 'b', 'c', 'd'], topology: '2s2p' },
      strings: [
        ['a', 'b'],
        ['c', 'd'],
      ],
      label: '2s2p',
      s: 2,
      p: 2,
    },
    {
      case: 'the batteries order decides the strings',
      spec: { batteries: ['a', 'c', 'b', 'd'], topology: '2s2p' },
      strings: [
        ['a', 'c'],
        ['b', 'd'],
      ],
      label: '2s2p',
      s: 2,
      p: 2,
    },
    {
      case: 'a comma list that was not split yet is split',
      spec: { batteries: ['a, b ,c'], topology: '3s' },
      strings: [['a', 'b', 'c']],
      label: '3s1p',
      s: 3,
      p: 1,
    },
    {
      case: '2s alone means one string of two',
      spec: { batteries: ['a', 'b'], topology: '2s' },
      strings: [['a', 'b']],
      label: '2s1p',
      s: 2,
      p: 1,
    },
    {
      case: '3p alone means three in parallel',
      spec: { batteries: ['a', 'b', 'c'], topology: '3p' },
      strings: [['a'], ['b'], ['c']],
      label: '1s3p',
      s: 1,
      p: 3,
    },
    {
      case: 'upper case and spaces in the topology are accepted',
      spec: { batteries: ['a', 'b', 'c', 'd'], topology: ' 2S 2P ' },
      strings: [
        ['a', 'b'],
        ['c', 'd'],
      ],
      label: '2s2p',
      s: 2,
      p: 2,
    },
    {
      case: '"series" puts every battery in one string',
      spec: { batteries: ['a', 'b', 'c'], topology: 'series' },
      strings: [['a', 'b', 'c']],
      label: '3s1p',
      s: 3,
      p: 1,
    },
    {
      case: '"parallel" puts every battery in its own string',
      spec: { batteries: ['b', 'a'], topology: 'parallel' },
      strings: [['b'], ['a']],
      label: '1s2p',
      s: 1,
      p: 2,
    },
    {
      case: 'a pure parallel topology without batteries uses the configured batteries',
      spec: { topology: '3p' },
      known: ['x', 'y', 'z'],
      strings: [['x'], ['y'], ['z']],
      label: '1s3p',
      s: 1,
      p: 3,
    },
    {
      case: 'explicit series strings are parallel strings of series members',
      spec: { series: ['a+b', 'c+d'] },
      strings: [
        ['a', 'b'],
        ['c', 'd'],
      ],
      label: '2s2p',
      s: 2,
      p: 2,
    },
    {
      case: 'explicit series strings in one unsplit value',
      spec: { series: ['a + b, c + d'] },
      strings: [
        ['a', 'b'],
        ['c', 'd'],
      ],
      label: '2s2p',
      s: 2,
      p: 2,
    },
    {
      case: 'explicit series strings may differ in length',
      spec: { series: ['a+b', 'c'] },
      strings: [['a', 'b'], ['c']],
      label: 'a+b, c',
      s: 2,
      p: 2,
    },
    {
      case: 'series with a matching topology and batteries is accepted',
      spec: { series: ['d+c', 'b+a'], topology: '2s2p', batteries: ['a', 'b', 'c', 'd'] },
      strings: [
        ['d', 'c'],
        ['b', 'a'],
      ],
      label: '2s2p',
      s: 2,
      p: 2,
    },
    {
      case: 'series of single batteries is a parallel bank',
      spec: { series: ['a', 'b'] },
      strings: [['a'], ['b']],
      label: '1s2p',
      s: 1,
      p: 2,
    },
  ])('$case', ({ spec, known, strings, label, s, p }) => {
    const t = parseTopology(spec, known ?? KNOWN);
    expect(t.strings).toEqual(strings);
    expect(t.members).toEqual(strings.flat());
    expect(t.label).toBe(label);
    expect(t.seriesCount).toBe(s);
    expect(t.parallelCount).toBe(p);
  });

  test.each<{ case: string; spec: TopologySpec; known?: string[]; message: RegExp }>([
    {
      case: 'an unknown member names itself and the configured ones',
      spec: { batteries: ['a', 'zz'], topology: '2p' },
      message: /batteries: "zz" is not a configured battery \(configured: a, b, c, d, e, f\)/,
    },
    {
      case: 'an unknown member in series',
      spec: { series: ['a+q'] },
      message: /series: "q" is not a configured battery/,
    },
    {
      case: 'a member used twice',
      spec: { batteries: ['a', 'b', 'a', 'c'], topology: '2s2p' },
      message: /battery "a" is listed twice/,
    },
    {
      case: 'a member used twice across series strings',
      spec: { series: ['a+b', 'b+c'] },
      message: /series: battery "b" is listed twice/,
    },
    {
      case: '2s2p with 3 batteries',
      spec: { batteries: ['a', 'b', 'c'], topology: '2s2p' },
      message: /topology = "2s2p" needs 4 batteries \(2 in series × 2 in parallel\); batteries lists 3: a, b, c/,
    },
    { case: '3s with 2 batteries', spec: { batteries: ['a', 'b'], topology: '3s' }, message: /needs 3 batteries/ },
    {
      case: 'an unreadable topology',
      spec: { batteries: ['a', 'b'], topology: '2x1' },
      message: /topology = "2x1": expected <n>s<m>p such as 2s2p/,
    },
    {
      case: 'the parallel count written first gets a hint',
      spec: { batteries: ['a', 'b', 'c', 'd'], topology: '2p2s' },
      message: /write the series count first/,
    },
    {
      case: 'zero batteries in series',
      spec: { batteries: ['a', 'b'], topology: '0s2p' },
      message: /batteries in series must be 1–64, got 0/,
    },
    {
      case: 'an empty topology word is not a shape',
      spec: { batteries: ['a'], topology: 'sp' },
      message: /expected <n>s<m>p/,
    },
    {
      case: 'several batteries without topology or series',
      spec: { batteries: ['a', 'b'] },
      message: /2 batteries \(a, b\) but no topology/,
    },
    {
      case: 'several configured batteries and no [bank] keys',
      spec: {},
      known: ['a', 'b', 'c'],
      message: /3 batteries \(a, b, c\) but no topology/,
    },
    { case: 'no battery at all', spec: {}, known: [], message: /no battery configured/ },
    {
      case: '2s2p without a batteries list is ambiguous',
      spec: { topology: '2s2p' },
      known: ['a', 'b', 'c', 'd'],
      message: /needs batteries = … listing the batteries string by string/,
    },
    {
      case: 'an empty name in batteries',
      spec: { batteries: ['a, , b'], topology: '2p' },
      message: /empty battery name/,
    },
    {
      case: 'an empty name in a series string',
      spec: { series: ['a++b'] },
      message: /series: "a\+\+b" has an empty battery name/,
    },
    {
      case: 'series and batteries naming different batteries',
      spec: { series: ['a+b'], batteries: ['a', 'c'] },
      message: /batteries and series disagree \(in batteries but not in series: c; in series but not in batteries: b\)/,
    },
    {
      case: 'series and a topology of another shape',
      spec: { series: ['a+b', 'c+d'], topology: '4s' },
      message: /topology = "4s" does not match series = a\+b, c\+d/,
    },
    {
      case: 'unequal series strings and a regular topology',
      spec: { series: ['a+b', 'c'], topology: '2s2p' },
      message: /does not match/,
    },
  ])('$case is rejected with a clear message', ({ spec, known, message }) => {
    expect(() => parseTopology(spec, known ?? KNOWN)).toThrow(message);
    expect(() => parseTopology(spec, known ?? KNOWN)).toThrow(TopologyError);
  });

  test('every message starts with the section name so the user knows where to look', () => {
    try {
      parseTopology({ batteries: ['a', 'b', 'c'], topology: '2s2p' }, KNOWN);
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message.startsWith('[bank] ')).toBe(true);
    }
  });

  test('a member id that is also an Object.prototype name is an ordinary id', () => {
    const t = parseTopology({ batteries: ['constructor', 'toString'], topology: '2p' }, ['constructor', 'toString']);
    expect(t.members).toEqual(['constructor', 'toString']);
    expect(() => parseTopology({ batteries: ['constructor'] }, ['a'])).toThrow(
      /"constructor" is not a configured battery/,
    );
  });

  test('bankOfOne is the same as parsing a single battery', () => {
    expect(bankOfOne('house')).toEqual(parseTopology({}, ['house']));
  });
});

describe('validateMembers', () => {
  const t2s2p = parseTopology({ series: ['a+b', 'c+d'] }, KNOWN);

  test('series members may have different cell counts and are reported per member', () => {
    const t = parseTopology({ series: ['a+b'] }, KNOWN);
    const v = validateMembers(t, { a: 8, b: 16 });
    expect(v.ok).toBe(true);
    expect(v.members).toEqual([
      { id: 'a', cells: 8 },
      { id: 'b', cells: 16 },
    ]);
    expect(v.stringCells).toEqual([24]);
  });

  test('parallel strings with equal total cells are fine even when their members differ', () => {
    const t = parseTopology({ series: ['a+b', 'c'] }, KNOWN);
    const v = validateMembers(t, { a: 8, b: 8, c: 16 });
    expect(v.ok).toBe(true);
    expect(v.stringCells).toEqual([16, 16]);
  });

  test('parallel strings with different total cells are an error naming both strings', () => {
    const v = validateMembers(t2s2p, { a: 8, b: 8, c: 8, d: 7 });
    expect(v.ok).toBe(false);
    expect(v.errors).toEqual([
      'strings in parallel must have the same number of cells in series: string 1 (a+b) has 16, string 2 (c+d) has 15',
    ]);
  });

  test('unknown cell counts are pending, not errors', () => {
    const v = validateMembers(t2s2p, { a: 8, b: 8, c: 8 });
    expect(v.ok).toBe(true);
    expect(v.unknown).toEqual(['d']);
    expect(v.stringCells).toEqual([16, undefined]);
  });

  test('a cell count that is not a whole number is an error', () => {
    const v = validateMembers(t2s2p, { a: 8, b: 8.5, c: 8, d: 8 });
    expect(v.ok).toBe(false);
    expect(v.errors[0]).toMatch(/battery b: cell count 8.5/);
  });

  test('mixed chemistries are an error, the same chemistry in other case is not', () => {
    const cells = { a: 8, b: 8, c: 8, d: 8 };
    expect(validateMembers(t2s2p, cells, { a: 'LFP', b: 'lfp', c: 'LFP' }).ok).toBe(true);
    const v = validateMembers(t2s2p, cells, { a: 'LFP', b: 'NMC' });
    expect(v.ok).toBe(false);
    expect(v.errors[0]).toMatch(/members mix chemistries \(a LFP, b NMC\)/);
  });

  test('a prototype name in the counts table is not mistaken for a cell count', () => {
    const t = parseTopology({ batteries: ['constructor'] }, ['constructor']);
    expect(validateMembers(t, {}).unknown).toEqual(['constructor']);
  });
});
