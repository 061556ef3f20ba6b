/**
 * Property tests of the bank. Runs per property: PROPERTY_RUNS (default 10 000); seed: PROPERTY_SEED.
 *   PROPERTY_RUNS=1000000 npx vitest run test/bank/aggregate.property.test.ts
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { aggregateBank, type BankOptions, type BankState } from '../../src/bank/aggregate.js';
import { parseTopology, type Topology } from '../../src/bank/topology.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { type BatteryState, type Health, noAlarms } from '../../src/domain/battery-state.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 10_000);
const SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);
// Generous: some runs build banks of 12 members (about 1 ms per run on a slow core).
const TIMEOUT = Math.max(30_000, RUNS * 5);
const CHUNK = 5_000;

/**
 * fc.assert in chunks, yielding to the event loop between them: a long synchronous run starves the vitest
 * worker's RPC and fails the file with "Timeout calling onTaskUpdate" although every property held.
 */
async function holds<T>(arb: fc.Arbitrary<T>, predicate: (value: T) => void): Promise<void> {
  for (let done = 0, chunk = 0; done < RUNS; done += CHUNK, chunk++) {
    const numRuns = Math.min(CHUNK, RUNS - done);
    fc.assert(fc.property(arb, predicate), { numRuns, ...(SEED === undefined ? {} : { seed: SEED + chunk }) });
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A number as a BMS might report it, including the occasional garbage. */
const reading = (min: number, max: number) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.double({ min, max, noNaN: true }) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY) },
  );

const limitValue = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: 0, max: 300, noNaN: true }) },
  { weight: 2, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, -5, Number.POSITIVE_INFINITY) },
);

const health = fc.constantFrom<Health | 'missing'>('online', 'online', 'online', 'stale', 'offline', 'missing');

interface Gen {
  topology: Topology;
  states: BatteryState[];
  sharing: 'capacity' | 'count';
}

/** The raw draw of one member; `build` turns it into a BatteryState. */
function rawMember(cells: number, hostile: boolean) {
  const num = (min: number, max: number) => (hostile ? reading(min, max) : fc.double({ min, max, noNaN: true }));
  return fc.record({
    health: hostile ? health : fc.constant<Health | 'missing'>('online'),
    voltage: num(0, 80),
    current: num(-300, 300),
    soc: num(0, 100),
    // A healthy member reports a real capacity; 0 Ah is garbage.
    capacity: hostile ? reading(0, 600) : fc.double({ min: 5, max: 600, noNaN: true }),
    cellValues: fc.array(hostile ? reading(2.5, 3.8) : fc.double({ min: 2.8, max: 3.65, noNaN: true }), {
      minLength: cells,
      maxLength: cells,
    }),
    temps: fc.array(num(-20, 70), { maxLength: 3 }),
    chargeFet: hostile ? fc.option(fc.boolean(), { nil: undefined }) : fc.constantFrom(true, undefined),
    dischargeFet: hostile ? fc.option(fc.boolean(), { nil: undefined }) : fc.constantFrom(true, undefined),
    ccl: hostile ? limitValue : fc.double({ min: 0.5, max: 300, noNaN: true }),
    dcl: hostile ? limitValue : fc.double({ min: 0.5, max: 300, noNaN: true }),
    cvlPerCell: hostile
      ? fc.option(fc.double({ min: 3.3, max: 3.65, noNaN: true }), { nil: undefined, freq: 8 })
      : fc.double({ min: 3.3, max: 3.65, noNaN: true }),
    blvPerCell: hostile
      ? fc.option(fc.double({ min: 2.5, max: 3.1, noNaN: true }), { nil: undefined, freq: 8 })
      : fc.double({ min: 2.5, max: 3.1, noNaN: true }),
    hasSnapshot: fc.boolean(),
    alarmLevel: fc.constantFrom(0, 1, 2),
  });
}

type RawMember = fc.Arbitrary<ReturnType<typeof rawMember> extends fc.Arbitrary<infer T> ? T : never>;

/**
 * One member: mostly healthy (so that several strings conduct with real limits and the sharing rules are
 * exercised), with `faults` weight of a member drawn from everything a BMS can report, garbage included.
 */
function memberArb(id: string, cells: number, faults: number) {
  const healthy = rawMember(cells, false);
  const raw: RawMember =
    faults === 0
      ? healthy
      : fc.oneof({ weight: 10, arbitrary: healthy }, { weight: faults, arbitrary: rawMember(cells, true) });
  return raw.map((g): BatteryState | undefined => {
    if (g.health === 'missing') return undefined;
    const snapshot: BatterySnapshot | undefined =
      g.health === 'offline' && !g.hasSnapshot
        ? undefined
        : {
            timestampMs: 1000,
            voltage: g.voltage,
            current: g.current,
            soc: g.soc,
            capacityInstalled: g.capacity,
            cellVoltages: g.cellValues.map((v) => v ?? Number.NaN),
            cellCount: cells,
            temperatures: g.temps.map((t, i) => ({ name: `T${i + 1}`, celsius: t ?? Number.NaN })),
            chargeFet: g.chargeFet,
            dischargeFet: g.dischargeFet,
            protection: {},
            identity: { serial: 'SAME' },
          };
    const alarms = noAlarms();
    alarms.HighCellVoltage = g.alarmLevel as 0 | 1 | 2;
    return {
      id,
      health: g.health,
      snapshot,
      limits: {
        chargeVoltage: g.cvlPerCell === undefined ? undefined : g.cvlPerCell * cells,
        batteryLowVoltage: g.blvPerCell === undefined ? undefined : g.blvPerCell * cells,
        chargeCurrent: g.ccl,
        dischargeCurrent: g.dcl,
        chargeReason: 'test',
        dischargeReason: 'test',
      },
      alarms,
      connection: id,
      productName: 'test',
      lastValidMs: 1000,
    };
  });
}

const bankArb: fc.Arbitrary<Gen> = fc
  .record({
    series: fc.integer({ min: 1, max: 3 }),
    parallel: fc.integer({ min: 1, max: 4 }),
    cells: fc.constantFrom(4, 8, 16),
    mismatch: fc.constantFrom(false, false, false, true),
    faults: fc.constantFrom(0, 1, 3, 10),
    sharing: fc.constantFrom<'capacity' | 'count'>('capacity', 'count'),
  })
  .chain(({ series, parallel, cells, mismatch, faults, sharing }) => {
    const ids = Array.from({ length: series * parallel }, (_, i) => `m${i}`);
    const topology = parseTopology({ batteries: ids, topology: `${series}s${parallel}p` }, ids);
    // Usually a valid bank (every member the same cell count); sometimes the last member differs.
    const cellsOf = (i: number) => (mismatch && faults > 0 && i === ids.length - 1 ? cells + 1 : cells);
    return fc.tuple(...ids.map((id, i) => memberArb(id, cellsOf(i), faults))).map((ms) => ({
      topology,
      states: ms.filter((m): m is BatteryState => m !== undefined),
      sharing,
    }));
  });

const EPS = 1e-6;

/** A plain check: vitest's expect() is too slow for the inner loops of 10⁶ runs. */
function check(ok: boolean, message: () => string): void {
  if (!ok) throw new Error(message());
}

function run(g: Gen, extra: BankOptions = {}): BankState {
  return aggregateBank(g.states, g.topology, { sharing: g.sharing, ...extra });
}

const finiteOr0 = (v: number) => (Number.isFinite(v) && v > 0 ? v : 0);

function numbersIn(v: unknown, path = ''): [string, number][] {
  if (typeof v === 'number') return [[path, v]];
  if (Array.isArray(v)) return v.flatMap((x, i) => numbersIn(x, `${path}[${i}]`));
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => numbersIn(x, `${path}.${k}`));
  return [];
}

/**
 * The sharing model, written out from the rules (docs/bank.md) independently of the implementation: which strings
 * take current in a direction, and the fraction each takes.
 */
function oracleShares(g: Gen, dir: 'charge' | 'discharge'): { members: BatteryState[]; share: number }[] {
  const byId = new Map(g.states.map((s) => [s.id, s]));
  const strings = g.topology.strings.map((ids) => ids.map((id) => byId.get(id)));
  const conducting = strings.filter((ms): ms is BatteryState[] =>
    ms.every(
      (m) =>
        m !== undefined &&
        m.health !== 'offline' &&
        !(m.health === 'online' && (dir === 'charge' ? m.snapshot?.chargeFet : m.snapshot?.dischargeFet) === false),
    ),
  );
  const caps = conducting.map((ms) => Math.min(...ms.map((m) => m.snapshot?.capacityInstalled ?? Number.NaN)));
  const capsKnown = caps.every((c) => Number.isFinite(c) && c > 0);
  const total = caps.reduce((a, b) => a + b, 0);
  return conducting.map((ms, i) => ({
    members: ms,
    share: g.sharing === 'count' ? 1 / conducting.length : capsKnown ? (caps[i] ?? 0) / total : 1,
  }));
}

describe('aggregateBank properties', () => {
  test(
    'no member ever exceeds its own CCL or DCL under the sharing model',
    async () => {
      await holds(bankArb, (g) => {
        const b = run(g);
        for (const dir of ['charge', 'discharge'] as const) {
          const bankLimit = dir === 'charge' ? b.limits.chargeCurrent : b.limits.dischargeCurrent;
          for (const { members, share } of oracleShares(g, dir)) {
            for (const m of members) {
              const own = finiteOr0(dir === 'charge' ? m.limits.chargeCurrent : m.limits.dischargeCurrent);
              check(
                bankLimit * share <= own + EPS,
                () => `${m.id}: ${bankLimit} A × ${share} > own ${dir} limit ${own} A`,
              );
            }
          }
          // And nothing flows when no string can take it.
          if (oracleShares(g, dir).length === 0)
            check(bankLimit === 0, () => `${dir} ${bankLimit} A with nothing conducting`);
        }
      });
    },
    TIMEOUT,
  );

  test(
    "the bank's max and min cell are the true extremes over every cell of every connected member",
    async () => {
      await holds(bankArb, (g) => {
        const b = run(g);
        const cells = g.states
          .filter((s) => s.health !== 'offline')
          .flatMap((s) => (s.snapshot?.cellVoltages ?? []).map((v, i) => ({ v, id: `${s.id}:C${i + 1}` })))
          .filter((c) => Number.isFinite(c.v));
        if (cells.length === 0) {
          expect(b.maxCell).toBeUndefined();
          expect(b.minCell).toBeUndefined();
          return;
        }
        const max = Math.max(...cells.map((c) => c.v));
        const min = Math.min(...cells.map((c) => c.v));
        expect(b.maxCell?.value).toBe(max);
        expect(b.minCell?.value).toBe(min);
        // The id names a cell that really has that value.
        expect(cells.find((c) => c.id === b.maxCell?.id)?.v).toBe(max);
        expect(cells.find((c) => c.id === b.minCell?.id)?.v).toBe(min);
      });
    },
    TIMEOUT,
  );

  test(
    'limits are finite and never negative, and every number in the result is finite',
    async () => {
      await holds(bankArb, (g) => {
        const b = run(g);
        for (const v of [b.limits.chargeCurrent, b.limits.dischargeCurrent]) {
          check(Number.isFinite(v) && v >= 0, () => `current limit ${v}`);
        }
        for (const v of [b.limits.chargeVoltage, b.limits.batteryLowVoltage]) {
          if (v !== undefined) check(Number.isFinite(v) && v >= 0, () => `voltage limit ${v}`);
        }
        // Charging is never allowed without a charge voltage.
        if (b.limits.chargeCurrent > 0) check(b.limits.chargeVoltage !== undefined, () => 'CCL > 0 without CVL');
        for (const [path, n] of numbersIn(b)) check(Number.isFinite(n), () => `${path} = ${n}`);
      });
    },
    TIMEOUT,
  );

  test(
    "an offline member's readings, current limits and alarms never change the bank",
    async () => {
      const variant = fc.record({
        voltage: reading(0, 80),
        current: reading(-300, 300),
        soc: reading(0, 100),
        capacity: reading(0, 600),
        cellV: reading(2.5, 3.8),
        temp: reading(-20, 70),
        fet: fc.option(fc.boolean(), { nil: undefined }),
        ccl: limitValue,
        dcl: limitValue,
        alarm: fc.constantFrom(0, 1, 2),
      });
      await holds(fc.tuple(bankArb, fc.nat(), variant), ([drawn, pick, v]) => {
        // Take one member offline when the draw has none (cheaper than discarding the run).
        const victim = drawn.states[pick % Math.max(1, drawn.states.length)];
        const g: Gen =
          drawn.states.some((s) => s.health === 'offline') || victim === undefined
            ? drawn
            : { ...drawn, states: drawn.states.map((s) => (s === victim ? { ...s, health: 'offline' } : s)) };
        fc.pre(g.states.some((s) => s.health === 'offline'));
        const changed: Gen = {
          ...g,
          states: g.states.map((s) => {
            if (s.health !== 'offline') return s;
            const alarms = noAlarms();
            alarms.HighTemperature = v.alarm as 0 | 1 | 2;
            alarms.BmsCable = s.alarms.BmsCable;
            return {
              ...s,
              alarms,
              // CVL and the cell count are structure (config), not readings: they stay.
              limits: { ...s.limits, chargeCurrent: v.ccl, dischargeCurrent: v.dcl },
              snapshot:
                s.snapshot === undefined
                  ? undefined
                  : {
                      ...s.snapshot,
                      voltage: v.voltage,
                      current: v.current,
                      soc: v.soc,
                      capacityInstalled: v.capacity,
                      cellVoltages: s.snapshot.cellVoltages?.map(() => v.cellV ?? Number.NaN),
                      temperatures: [{ name: 'X', celsius: v.temp ?? Number.NaN }],
                      chargeFet: v.fet,
                      dischargeFet: v.fet,
                    },
            };
          }),
        };
        const a = run(g);
        const b = run(changed);
        const { members: _ma, ...restA } = a;
        const { members: _mb, ...restB } = b;
        expect(restB).toEqual(restA);
      });
    },
    TIMEOUT,
  );

  test(
    'CVL never exceeds the most restrictive member-derived bound',
    async () => {
      await holds(bankArb, (g) => {
        const b = run(g);
        const cvl = b.limits.chargeVoltage;
        if (cvl === undefined) return;
        const byId = new Map(g.states.map((s) => [s.id, s]));
        const cellsOf = (id: string) => byId.get(id)?.snapshot?.cellVoltages?.length;
        let bounded = false;
        for (const ids of g.topology.strings) {
          const counts = ids.map(cellsOf);
          if (counts.some((n) => n === undefined)) continue;
          const stringCells = (counts as number[]).reduce((x, y) => x + y, 0);
          for (const id of ids) {
            const own = byId.get(id)?.limits.chargeVoltage;
            const n = cellsOf(id);
            if (own === undefined || n === undefined) continue;
            // This member's per-cell CVL over every cell of its string.
            const bound = (own / n) * stringCells;
            check(cvl <= bound + EPS, () => `CVL ${cvl} V above ${id}'s bound ${bound} V`);
            bounded = true;
          }
        }
        // A published CVL always comes from some member.
        check(bounded, () => `CVL ${cvl} V bounded by no member`);
      });
    },
    TIMEOUT,
  );
});
