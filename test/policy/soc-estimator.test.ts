import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import type { Health } from '../../src/domain/battery-state.js';
import { DEFAULT_CHARGE_CONTROL_CONFIG } from '../../src/policy/charge-control-config.js';
import {
  estimateSoc,
  freshSocEstimatorState,
  parseSocEstimatorState,
  type SocEstimatorConfig,
  type SocEstimatorState,
  serializeSocEstimatorState,
  socEstimatorConfig,
} from '../../src/policy/soc-estimator.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 10_000);
// A 10^6 run by hand (PROPERTY_RUNS=1000000) needs more than the default 30 s.
const TIMEOUT = Math.max(30_000, RUNS * 5);
const CFG: SocEstimatorConfig = socEstimatorConfig(DEFAULT_CHARGE_CONTROL_CONFIG, 10_000);

function pack(current: number, over: Partial<BatterySnapshot> = {}): BatterySnapshot {
  return {
    timestampMs: 0,
    current,
    soc: 50,
    capacityInstalled: 100,
    cellVoltages: [3.3, 3.3, 3.3, 3.3],
    protection: {},
    identity: {},
    ...over,
  };
}

class Sim {
  state: SocEstimatorState = freshSocEstimatorState();
  now = 1_700_000_000_000;
  soc: number | undefined;
  constructor(readonly cfg: SocEstimatorConfig = CFG) {}
  step(snapshot: BatterySnapshot | undefined, ms = 1000, health: Health = 'online', enteredFloat = false) {
    this.now += ms;
    const r = estimateSoc({ snapshot, health, enteredFloat }, this.state, this.cfg, this.now);
    this.state = r.state;
    this.soc = r.soc;
    return r.soc;
  }
  run(snapshot: BatterySnapshot, seconds: number) {
    for (let i = 0; i < seconds; i++) this.step(snapshot);
    return this.soc;
  }
}

describe('estimateSoc', () => {
  test('starts from the BMS SoC', () => {
    expect(new Sim().step(pack(0))).toBe(50);
  });

  test('1 Ah of discharge on 100 Ah is 1 %', () => {
    const sim = new Sim();
    sim.step(pack(-10));
    expect(sim.run(pack(-10), 360)).toBe(49);
  });

  test('charge counts with the efficiency (99 %)', () => {
    const sim = new Sim();
    sim.step(pack(10));
    expect(sim.run(pack(10), 360)).toBe(50.99);
  });

  test('the current between two calls is averaged (trapezoid)', () => {
    const sim = new Sim({ ...CFG, chargeEfficiencyPercent: 100 });
    sim.step(pack(0));
    sim.step(pack(-20), 3_600); // (0 + −20)/2 A for 3.6 s = −0.01 Ah
    expect(sim.soc).toBe(49.99);
  });

  test('the BMS SoC is used only to start; later BMS values do not pull the estimate', () => {
    const sim = new Sim();
    sim.step(pack(0, { soc: 50 }));
    sim.run(pack(0, { soc: 80 }), 10);
    expect(sim.soc).toBe(50);
  });

  test('stays within 0–100 %', () => {
    const sim = new Sim();
    sim.step(pack(100, { soc: 99.9 }));
    expect(sim.run(pack(100), 60)).toBe(100);
    const low = new Sim();
    low.step(pack(-100, { soc: 0.1 }));
    expect(low.run(pack(-100), 60)).toBe(0);
  });

  test('entering float sets 100 %', () => {
    const sim = new Sim();
    sim.step(pack(5, { soc: 70 }));
    expect(sim.step(pack(5), 1000, 'online', true)).toBe(100);
  });

  test('without a BMS SoC the estimate is unknown until the first float', () => {
    const sim = new Sim();
    expect(sim.step(pack(5, { soc: undefined }))).toBeUndefined();
    sim.run(pack(5, { soc: undefined }), 100);
    expect(sim.soc).toBeUndefined();
    sim.step(pack(5, { soc: undefined }), 1000, 'online', true);
    expect(sim.soc).toBe(100);
    sim.step(pack(-36, { soc: undefined }), 1000); // (5 − 36)/2 A for 1 s
    sim.step(pack(-36, { soc: undefined }), 1000); // −36 A for 1 s = −0.01 %
    expect(sim.soc).toBe(99.986);
  });

  test.each([
    { case: 'after 60 s the SoC drops to the floor', floor: 0, seconds: 60, soc: 0 },
    { case: 'a configured floor of 10 % is used', floor: 10, seconds: 60, soc: 10 },
    { case: 'before 60 s nothing happens', floor: 0, seconds: 59, soc: 49.84 },
  ])('a lowest cell at min_cell_voltage while discharging: $case', ({ floor, seconds, soc }) => {
    const sim = new Sim({ ...CFG, floorSoc: floor });
    const low = pack(-10, { cellVoltages: [3.2, 2.9, 3.2, 3.2] });
    sim.step(low);
    sim.run(low, seconds);
    expect(sim.soc).toBeCloseTo(soc, 2);
  });

  test('a low cell while charging or idle does not set the floor', () => {
    const sim = new Sim();
    sim.step(pack(0, { cellVoltages: [2.85, 3.2, 3.2, 3.2] }));
    sim.run(pack(0, { cellVoltages: [2.85, 3.2, 3.2, 3.2] }), 120);
    expect(sim.soc).toBe(50);
  });

  test('the low-cell timer restarts when the cell recovers', () => {
    const sim = new Sim({ ...CFG, chargeEfficiencyPercent: 100 });
    const low = pack(-1, { cellVoltages: [2.9, 3.2] });
    sim.step(low);
    sim.run(low, 50);
    sim.step(pack(-1, { cellVoltages: [3.0, 3.2] }));
    sim.run(low, 50);
    expect(sim.soc).toBeGreaterThan(49);
  });

  test('gaps longer than maxGapMs and time offline are not integrated', () => {
    const sim = new Sim();
    sim.step(pack(-50));
    sim.step(pack(-50), 60_000); // gap: not counted
    expect(sim.soc).toBe(50);
    sim.step(pack(-50), 1000, 'stale');
    sim.step(pack(-50), 1000, 'offline');
    sim.step(undefined, 5000, 'offline');
    sim.step(pack(-50), 1000); // first call after the gap: no integration yet
    expect(sim.soc).toBe(50);
    sim.step(pack(-50), 3600);
    expect(sim.soc).toBe(49.95);
  });

  test('a clock that goes back integrates nothing', () => {
    const sim = new Sim();
    sim.step(pack(-50));
    sim.step(pack(-50), -60_000);
    expect(sim.soc).toBe(50);
  });

  test('uses the configured capacity when the BMS reports none, and counts nothing without any', () => {
    const withCap = new Sim({ ...CFG, capacityAh: 200 });
    withCap.step(pack(-20, { capacityInstalled: undefined }));
    withCap.run(pack(-20, { capacityInstalled: undefined }), 360);
    expect(withCap.soc).toBe(49);
    const none = new Sim();
    none.step(pack(-20, { capacityInstalled: undefined }));
    none.run(pack(-20, { capacityInstalled: undefined }), 360);
    expect(none.soc).toBe(50);
  });

  test(
    'for any sequence the SoC is unknown or a finite number in 0–100 %',
    () => {
      const step = fc.record({
        dt: fc.integer({ min: -5000, max: 20_000 }),
        health: fc.constantFrom<Health>('online', 'online', 'stale', 'offline'),
        current: fc.oneof(fc.double({ min: -500, max: 500 }), fc.constant(Number.NaN)),
        soc: fc.option(fc.double({ min: -10, max: 110 }), { nil: undefined }),
        capacity: fc.option(fc.double({ min: -10, max: 1000 }), { nil: undefined }),
        minCell: fc.double({ min: 2.5, max: 3.6, noNaN: true }),
        float: fc.boolean(),
      });
      fc.assert(
        fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
          let state = freshSocEstimatorState();
          let now = 0;
          for (const s of steps) {
            now += s.dt;
            const r = estimateSoc(
              {
                snapshot: pack(s.current, {
                  soc: s.soc,
                  capacityInstalled: s.capacity,
                  cellVoltages: [s.minCell, 3.3],
                }),
                health: s.health,
                enteredFloat: s.float,
              },
              state,
              CFG,
              now,
            );
            state = r.state;
            if (r.soc !== undefined && !(Number.isFinite(r.soc) && r.soc >= 0 && r.soc <= 100)) return false;
            if (s.float && r.soc !== 100) return false;
          }
          return true;
        }),
        { numRuns: RUNS },
      );
    },
    TIMEOUT,
  );
});

describe('SoC estimator persistence', () => {
  test('the SoC survives serialise → parse; the integration restarts after it', () => {
    const sim = new Sim();
    sim.step(pack(-10));
    sim.run(pack(-10), 360);
    const restored = parseSocEstimatorState(serializeSocEstimatorState(sim.state));
    expect(restored).toEqual({ ...freshSocEstimatorState(), soc: 49 });
    const r = estimateSoc(
      { snapshot: pack(-10, { soc: 80 }), health: 'online', enteredFloat: false },
      restored,
      CFG,
      0,
    );
    expect(r.soc).toBe(49);
  });

  test.each([
    ['undefined', undefined],
    ['garbage', 'x'],
    ['out of range', '{"v":1,"soc":101}'],
    ['wrong version', '{"v":2,"soc":50}'],
    ['unknown', '{"v":1,"soc":null}'],
  ])('%s gives a fresh state that starts from the BMS again', (_name, text) => {
    expect(parseSocEstimatorState(text)).toEqual(freshSocEstimatorState());
  });
});
