import { describe, expect, test } from 'vitest';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import type { Health } from '../../src/domain/battery-state.js';
import {
  type ChargeControlResult,
  type ChargeState,
  chargeControl,
  freshChargeState,
  MAX_TIME_STEP_MS,
  parseChargeState,
  serializeChargeState,
} from '../../src/policy/charge-control.js';
import { type ChargeControlConfig, DEFAULT_CHARGE_CONTROL_CONFIG } from '../../src/policy/charge-control-config.js';
import { config, T0 } from './policy-fixtures.js';

/** 16 cells at `v`, or the given list. */
function pack(cells: number | number[], over: Partial<BatterySnapshot> = {}): BatterySnapshot {
  return {
    timestampMs: 0,
    soc: 90,
    cellVoltages: typeof cells === 'number' ? Array.from({ length: 16 }, () => cells) : cells,
    temperatures: [{ name: 'T1', celsius: 25 }],
    chargeFet: true,
    dischargeFet: true,
    protection: {},
    identity: {},
    ...over,
  };
}

/** 8 cells at v − d/2 and 8 at v + d/2: sum 16 v, spread d. */
const spread = (v: number, d: number) => Array.from({ length: 16 }, (_, i) => (i < 8 ? v - d / 2 : v + d / 2));

/** A fake clock driving the policy the way the monitor does (one call per second by default). */
class Sim {
  state: ChargeState;
  now = T0;
  last!: ChargeControlResult;
  floats = 0;
  constructor(
    readonly cfg: ChargeControlConfig = DEFAULT_CHARGE_CONTROL_CONFIG,
    state: ChargeState = freshChargeState(),
  ) {
    this.state = state;
  }
  step(snapshot: BatterySnapshot | undefined, ms = 1000, health: Health = 'online'): ChargeControlResult {
    this.now += ms;
    this.last = chargeControl({ snapshot, health, cellCount: 16 }, this.state, this.cfg, this.now);
    this.state = this.last.state;
    if (this.last.events.enteredFloat) this.floats++;
    return this.last;
  }
  /** `seconds` calls, one second apart. */
  run(
    snapshot: BatterySnapshot | undefined,
    seconds: number,
    stepMs = 1000,
    health: Health = 'online',
  ): ChargeControlResult {
    for (let t = 0; t < (seconds * 1000) / stepMs; t++) this.step(snapshot, stepMs, health);
    return this.last;
  }
  get cvl(): number | undefined {
    return this.last.limits.chargeVoltage;
  }
  get mode(): string {
    return this.last.limits.chargeMode;
  }
}

describe('CVL: bulk → absorption → float', () => {
  test('a pack below max voltage is in bulk at cells × max_cell_voltage', () => {
    const sim = new Sim();
    sim.step(pack(3.3));
    expect(sim.last.limits).toMatchObject({
      chargeVoltage: 55.2,
      batteryLowVoltage: 46.4,
      chargeMode: 'Bulk',
      maxChargeCellVoltage: 3.45,
    });
  });

  test('absorption starts at max voltage within 10 mV and switches to float after exactly 15 minutes', () => {
    const sim = new Sim();
    // Half the cells 5 mV above 3.45 V: the over-voltage controller trims CVL by their overshoot meanwhile.
    const full = pack(spread(3.45, 0.01));
    sim.step(full);
    expect(sim.mode).toBe('Absorption 15m (cell OVP)');
    expect(sim.cvl).toBe(55.16);
    sim.run(full, 179);
    expect(sim.mode).toBe('Absorption 13m (cell OVP)');
    sim.run(full, 720);
    expect(sim.mode).toBe('Absorption 1m (cell OVP)');
    expect(sim.floats).toBe(0);
    sim.step(full); // 900 s after the timer started
    expect(sim.mode).toBe('Float transition');
    expect(sim.last.events.enteredFloat).toBe(true);
    expect(sim.cvl).toBe(55.16);
  });

  test('the absorption timer does not start while the spread is above 10 mV', () => {
    const sim = new Sim();
    sim.run(pack(spread(3.45, 0.011)), 3600);
    expect(sim.mode).toBe('Bulk (cell OVP)');
    expect(sim.floats).toBe(0);
  });

  test('a spread above diff + deviation (13 mV) restarts the timer; one between 10 and 13 mV does not', () => {
    const sim = new Sim();
    sim.step(pack(3.45));
    sim.run(pack(3.45), 600);
    expect(sim.mode).toBe('Absorption 5m');
    sim.step(pack(spread(3.45, 0.013))); // not above 13 mV: keeps counting
    expect(sim.mode).toBe('Absorption 5m (cell OVP)');
    sim.step(pack(spread(3.45, 0.0131)));
    expect(sim.mode).toBe('Absorption 15m (cell OVP)');
    sim.run(pack(3.45), 899);
    expect(sim.mode).toBe('Absorption 1m');
    sim.step(pack(3.45));
    expect(sim.mode).toBe('Float transition');
  });

  test('the absorption timer is cancelled when the sum falls 0.5 V below the target, not before', () => {
    const sim = new Sim();
    sim.run(pack(3.45), 300);
    sim.step(pack(55.2 / 16 - 0.49 / 16)); // 0.49 V below
    expect(sim.mode).toMatch(/^Absorption/);
    sim.step(pack(55.2 / 16 - 0.51 / 16));
    expect(sim.mode).toBe('Bulk');
    sim.step(pack(3.45));
    expect(sim.mode).toBe('Absorption 15m');
  });

  test('entering float ramps CVL down at 1 mV/s (pack volts) to cells × float_cell_voltage', () => {
    const sim = new Sim();
    sim.run(pack(3.45), 901);
    expect(sim.mode).toBe('Float transition');
    const start = sim.now;
    for (const [after, cvl] of [
      [1, 55.199],
      [100, 55.1],
      [600, 54.6],
      [1199, 54.001],
    ] as const) {
      sim.run(pack(3.4), after - (sim.now - start) / 1000);
      expect(sim.cvl).toBe(cvl);
      expect(sim.mode).toBe('Float transition');
    }
    sim.step(pack(3.4));
    expect(sim.cvl).toBe(54);
    expect(sim.mode).toBe('Float');
    expect(sim.last.limits.maxChargeCellVoltage).toBe(3.375);
    sim.run(pack(3.4), 3600);
    expect(sim.cvl).toBe(54);
  });

  test.each([
    { case: 'SoC below 80 %', snapshot: pack(3.35, { soc: 79.9 }), bulk: true },
    { case: 'SoC exactly 80 %', snapshot: pack(3.35, { soc: 80 }), bulk: false },
    { case: 'unknown SoC', snapshot: pack(3.35, { soc: undefined }), bulk: false },
    { case: 'a spread of 80 mV', snapshot: pack([3.38, ...Array.from({ length: 15 }, () => 3.3)]), bulk: true },
    { case: 'a spread of 79 mV', snapshot: pack([3.379, ...Array.from({ length: 15 }, () => 3.3)]), bulk: false },
  ])('float goes back to bulk on $case: $bulk', ({ snapshot, bulk }) => {
    const sim = new Sim();
    sim.run(pack(3.45), 901);
    sim.run(pack(3.4), 1300);
    expect(sim.mode).toBe('Float');
    sim.step(snapshot);
    expect(sim.mode).toBe(bulk ? 'Bulk' : 'Float');
    expect(sim.cvl).toBe(bulk ? 55.2 : 54);
  });

  test('with both return conditions off the battery stays in float', () => {
    const sim = new Sim(config({ bulk_soc_threshold: 'off', bulk_cell_diff: 'off' }));
    sim.run(pack(3.45), 901);
    sim.run(pack(3.3, { soc: 5 }), 3000);
    expect(sim.mode).toBe('Float');
  });

  test('float_after = 0 switches to float as soon as the max voltage is reached', () => {
    const sim = new Sim(config({ float_after: '0' }));
    sim.step(pack(3.45));
    expect(sim.mode).toBe('Float transition');
  });

  test('float_transition_rate = 0 drops to the float voltage at once', () => {
    const sim = new Sim(config({ float_transition_rate: '0' }));
    sim.run(pack(3.45), 901);
    expect(sim.mode).toBe('Float');
    expect(sim.cvl).toBe(54);
  });

  test('float_enable = false keeps the max voltage however long the pack is full', () => {
    const sim = new Sim(config({ float_enable: 'false' }));
    sim.run(pack(3.45), 7200, 5000);
    expect(sim.mode).toBe('Bulk (float off)');
    expect(sim.cvl).toBe(55.2);
  });
});

describe('CVL: voltage drop, BMS limit, missing data', () => {
  test('voltage_drop is added to the published CVL but the float switch uses the uncompensated target', () => {
    const sim = new Sim(config({ voltage_drop: '0.3' }));
    sim.step(pack(3.45));
    expect(sim.cvl).toBe(55.5);
    expect(sim.mode).toBe('Absorption 15m');
    sim.run(pack(3.45), 900);
    sim.run(pack(3.4), 1300);
    expect(sim.cvl).toBe(54.3);
  });

  test('the BMS’s own charge voltage wins when it is lower', () => {
    const sim = new Sim();
    sim.step(pack(3.3, { bmsLimits: { chargeVoltage: 54.4 } }));
    expect(sim.cvl).toBe(54.4);
    sim.step(pack(3.3, { bmsLimits: { chargeVoltage: 58 } }));
    expect(sim.cvl).toBe(55.2);
  });

  test.each<{ case: string; snapshot: BatterySnapshot | undefined; health: Health }>([
    { case: 'stale data', snapshot: pack(3.3), health: 'stale' },
    { case: 'offline', snapshot: undefined, health: 'offline' },
    { case: 'a NaN cell', snapshot: pack([Number.NaN, ...Array.from({ length: 15 }, () => 3.3)]), health: 'online' },
    { case: 'no cell voltages', snapshot: pack([], { cellCount: 16 }), health: 'online' },
  ])('without trustworthy data ($case) CVL is capped at float and the cycle is frozen', ({ snapshot, health }) => {
    const sim = new Sim();
    sim.run(pack(3.45), 601);
    expect(sim.mode).toBe('Absorption 5m');
    sim.run(snapshot, 3600, 5000, health);
    expect(sim.cvl).toBe(54);
    expect(sim.mode).toBe('Absorption 5m (no data)');
    expect(sim.last.limits.maxChargeCellVoltage).toBe(3.375);
    expect(sim.last.limits.chargeCurrent).toBe(0);
    sim.step(pack(3.45));
    expect(sim.cvl).toBe(55.2);
    expect(sim.mode).toBe('Absorption 5m');
  });

  test('without a snapshot CVL still comes from the known cell count, at the float voltage', () => {
    const l = chargeControl(
      { snapshot: undefined, health: 'offline', cellCount: 4 },
      freshChargeState(),
      DEFAULT_CHARGE_CONTROL_CONFIG,
      T0,
    );
    expect(l.limits).toMatchObject({
      chargeCurrent: 0,
      dischargeCurrent: 0,
      chargeVoltage: 13.5,
      batteryLowVoltage: 11.6,
    });
  });

  test('with no cell count known at all CVL is undefined, never NaN', () => {
    const l = chargeControl(
      { snapshot: undefined, health: 'offline', cellCount: undefined },
      freshChargeState(),
      DEFAULT_CHARGE_CONTROL_CONFIG,
      T0,
    );
    expect(l.limits.chargeVoltage).toBeUndefined();
    expect(l.limits.batteryLowVoltage).toBeUndefined();
    expect(l.limits.chargeMode).toBe('Bulk (no data)');
  });
});

describe('CVL: cell over-voltage controller', () => {
  const oneHigh = (high: number, rest = 3.4) => pack([high, ...Array.from({ length: 15 }, () => rest)]);

  test.each([
    { case: 'penalty: sum minus every overshoot', mode: 'penalty', cvl: 54.45 },
    { case: 'clipped: sum of cells capped at the target + 10 mV', mode: 'clipped', cvl: 54.46 },
  ])('$case', ({ mode, cvl }) => {
    const sim = new Sim(config({ cvl_controller: mode }));
    sim.step(oneHigh(3.5));
    expect(sim.cvl).toBe(cvl);
    expect(sim.mode).toBe('Bulk (cell OVP)');
  });

  test('penalty: several cells above the target all count', () => {
    const sim = new Sim();
    sim.step(pack([3.5, 3.48, ...Array.from({ length: 14 }, () => 3.4)]));
    // sum 54.58 − (0.05 + 0.03)
    expect(sim.cvl).toBe(54.5);
  });

  test('integral: CVL falls by (max cell − target − 10 mV) × 0.2 V per second', () => {
    const sim = new Sim(config({ cvl_controller: 'integral' }));
    sim.step(oneHigh(3.5));
    sim.run(oneHigh(3.5), 10);
    expect(sim.cvl).toBeCloseTo(55.2 - 0.04 * 0.2 * 10, 3);
    expect(sim.mode).toBe('Bulk (cell OVP)');
  });

  test('off: no reduction for a high cell (the OVP hard stop still applies to CCL)', () => {
    const sim = new Sim(config({ cvl_controller: 'off' }));
    sim.step(oneHigh(3.55));
    expect(sim.cvl).toBe(55.2);
  });

  test('a reduction acts at once; recovery holds 60 s, then ramps at 1 mV/s back to the max voltage', () => {
    const sim = new Sim();
    sim.step(oneHigh(3.5));
    expect(sim.cvl).toBe(54.45);
    sim.step(oneHigh(3.52, 3.398)); // a further reduction is immediate too: 15 × 3.398 + 3.45
    expect(sim.cvl).toBe(54.42);
    sim.run(oneHigh(3.44), 60);
    expect(sim.cvl).toBe(54.42);
    expect(sim.mode).toBe('Bulk (cell OVP*)');
    sim.run(oneHigh(3.44), 100);
    expect(sim.cvl).toBe(54.52);
    sim.run(oneHigh(3.44), 679);
    expect(sim.cvl).toBe(55.199);
    sim.step(oneHigh(3.44));
    expect(sim.cvl).toBe(55.2);
    expect(sim.mode).toBe('Bulk');
  });

  test('a cell rising again during the hold restarts it', () => {
    const sim = new Sim();
    sim.step(oneHigh(3.5));
    sim.run(oneHigh(3.44), 50);
    sim.step(oneHigh(3.5));
    sim.run(oneHigh(3.44), 59);
    expect(sim.cvl).toBe(54.45);
    sim.run(oneHigh(3.44), 11);
    expect(sim.cvl).toBe(54.46);
  });

  test('controller memory at or above the max voltage (from another config) is let go at once', () => {
    const sim = new Sim(DEFAULT_CHARGE_CONTROL_CONFIG, { ...freshChargeState(), controllerVoltage: 58.4 });
    sim.step(pack(3.3));
    expect(sim.cvl).toBe(55.2);
    expect(sim.mode).toBe('Bulk');
    expect(sim.state.controllerVoltage).toBeNull();
  });

  test('CVL is clamped at cells × min_cell_voltage', () => {
    const sim = new Sim(config({ min_cell_voltage: '3.0', cell_uvp_voltage: '2.8' }));
    sim.step(pack([3.59, ...Array.from({ length: 15 }, () => 2.95)]));
    expect(sim.cvl).toBe(48);
  });
});

describe('CVL: SoC reset', () => {
  const resetCfg = config({
    soc_reset_after_days: '2',
    soc_reset_cell_voltage: '3.55',
    ccl_cell_voltages: '3.58, 3.5, 3.45, 3.4, 3.375',
    ccl_cell_voltage_fractions: '0, 0.05, 0.1, 0.25, 1',
  });

  test('a reset is due after N days of operation, raises CVL until float, then records the date', () => {
    const sim = new Sim(resetCfg);
    sim.step(pack(3.3));
    for (let i = 0; i < 2 * 8640 - 1; i++) sim.step(pack(3.3), 10_000);
    expect(sim.cvl).toBe(55.2);
    sim.step(pack(3.3), 10_000);
    expect(sim.cvl).toBe(56.8);
    expect(sim.mode).toBe('Bulk & SoC reset');
    expect(sim.last.limits.maxChargeCellVoltage).toBe(3.55);
    expect(sim.state.socResetDue).toBe(true);

    sim.run(pack(3.45), 1200); // the normal max voltage no longer starts absorption
    expect(sim.mode).toBe('Bulk & SoC reset');
    sim.run(pack(3.55), 900);
    expect(sim.mode).toBe('Absorption 1m & SoC reset');
    sim.step(pack(3.55));
    const reachedAt = sim.now;
    expect(sim.mode).toBe('Float transition');
    expect(sim.state.lastSocResetMs).toBe(reachedAt);
    expect(sim.state.socResetDue).toBe(false);
    // After a reset the ramp starts at the normal max voltage, never above it.
    expect(sim.cvl).toBe(55.2);
    expect(JSON.parse(serializeChargeState(sim.state))).toMatchObject({
      lastSocResetMs: reachedAt,
      socResetDue: false,
    });
  });

  test('a reset falling due while in float sends the battery back to bulk at the reset voltage', () => {
    const sim = new Sim(resetCfg, { ...freshChargeState(), mode: 'float', socResetElapsedMs: 2 * 86_400_000 - 5000 });
    sim.step(pack(3.35));
    expect(sim.mode).toBe('Float');
    sim.run(pack(3.35), 5);
    expect(sim.mode).toBe('Bulk & SoC reset');
    expect(sim.cvl).toBe(56.8);
  });

  test('switching the feature off clears a pending reset', () => {
    const sim = new Sim(DEFAULT_CHARGE_CONTROL_CONFIG, { ...freshChargeState(), socResetDue: true });
    sim.step(pack(3.3));
    expect(sim.mode).toBe('Bulk');
    expect(sim.cvl).toBe(55.2);
  });
});

describe('charge state persistence', () => {
  test('a state saved mid-absorption and restored resumes the timer instead of absorbing from zero', () => {
    const sim = new Sim();
    sim.run(pack(3.45), 601);
    expect(sim.mode).toBe('Absorption 5m');
    const saved = serializeChargeState(sim.state);

    const restarted = new Sim(DEFAULT_CHARGE_CONTROL_CONFIG, parseChargeState(saved));
    restarted.now = sim.now + 3 * 3_600_000; // three hours later: downtime does not count
    restarted.step(pack(3.45));
    expect(restarted.mode).toBe('Absorption 5m');
    restarted.run(pack(3.45), 299);
    expect(restarted.mode).toBe('Absorption 1m');
    restarted.step(pack(3.45));
    expect(restarted.mode).toBe('Float transition');
  });

  test('a state saved mid-transition continues the ramp from where it was', () => {
    const sim = new Sim();
    sim.run(pack(3.45), 901);
    sim.run(pack(3.4), 500);
    expect(sim.cvl).toBe(54.7);
    const restarted = new Sim(DEFAULT_CHARGE_CONTROL_CONFIG, parseChargeState(serializeChargeState(sim.state)));
    restarted.step(pack(3.4));
    expect(restarted.cvl).toBe(54.7);
    expect(restarted.mode).toBe('Float transition');
    restarted.run(pack(3.4), 100);
    expect(restarted.cvl).toBe(54.6);
  });

  test('the saved text is plain JSON with only the cycle, not the current limits', () => {
    const sim = new Sim();
    sim.run(pack(3.45), 10);
    expect(JSON.parse(serializeChargeState(sim.state))).toEqual({
      v: 1,
      mode: 'bulk',
      absorptionMs: 9000,
      transitionVoltage: null,
      socResetDue: false,
      socResetElapsedMs: 0,
      lastSocResetMs: null,
    });
  });

  test.each([
    ['undefined', undefined],
    ['empty text', ''],
    ['not JSON', '{mode: bulk'],
    ['an array', '[1,2]'],
    [
      'a newer version',
      '{"v":2,"mode":"float","absorptionMs":null,"transitionVoltage":null,"socResetDue":false,"socResetElapsedMs":0,"lastSocResetMs":null}',
    ],
    [
      'an unknown mode',
      '{"v":1,"mode":"equalise","absorptionMs":null,"transitionVoltage":null,"socResetDue":false,"socResetElapsedMs":0,"lastSocResetMs":null}',
    ],
    [
      'a negative timer',
      '{"v":1,"mode":"bulk","absorptionMs":-5,"transitionVoltage":null,"socResetDue":false,"socResetElapsedMs":0,"lastSocResetMs":null}',
    ],
    [
      'a NaN written as text',
      '{"v":1,"mode":"bulk","absorptionMs":"NaN","transitionVoltage":null,"socResetDue":false,"socResetElapsedMs":0,"lastSocResetMs":null}',
    ],
    [
      'a transition in bulk',
      '{"v":1,"mode":"bulk","absorptionMs":null,"transitionVoltage":55,"socResetDue":false,"socResetElapsedMs":0,"lastSocResetMs":null}',
    ],
    ['a missing field', '{"v":1,"mode":"float","absorptionMs":null,"transitionVoltage":null,"socResetDue":false}'],
  ])('garbage (%s) gives a fresh, safe state', (_name, text) => {
    expect(parseChargeState(text)).toEqual(freshChargeState());
  });

  test('timers count observed time only: a clock jump forward counts as one maximal step, back as none', () => {
    const sim = new Sim();
    sim.run(pack(3.45), 11);
    sim.step(pack(3.45), 365 * 86_400_000);
    expect(sim.state.absorptionMs).toBe(10_000 + MAX_TIME_STEP_MS);
    sim.step(pack(3.45), -3_600_000);
    expect(sim.state.absorptionMs).toBe(10_000 + MAX_TIME_STEP_MS);
    sim.step(pack(3.45));
    expect(sim.state.absorptionMs).toBe(11_000 + MAX_TIME_STEP_MS);
  });

  test('chargeControl does not modify the state it is given', () => {
    const state = freshChargeState();
    const copy = structuredClone(state);
    chargeControl({ snapshot: pack(3.45), health: 'online', cellCount: 16 }, state, DEFAULT_CHARGE_CONTROL_CONFIG, T0);
    expect(state).toEqual(copy);
  });
});

describe('charge request', () => {
  test.each<{ case: string; soc: number | undefined; health: Health; request: 0 | 1 }>([
    { case: 'SoC below charge_request_soc', soc: 9.9, health: 'online', request: 1 },
    { case: 'SoC at charge_request_soc', soc: 10, health: 'online', request: 0 },
    { case: 'unknown SoC', soc: undefined, health: 'online', request: 0 },
    { case: 'stale data', soc: 5, health: 'stale', request: 0 },
  ])('$case → ChargeRequest $request', ({ soc, health, request }) => {
    const cfg = config({ charge_request_soc: '10' });
    const r = chargeControl({ snapshot: pack(3.2, { soc }), health, cellCount: 16 }, freshChargeState(), cfg, T0);
    expect(r.limits.chargeRequest).toBe(request);
  });

  test('is never requested with the default (off)', () => {
    const r = chargeControl(
      { snapshot: pack(3.0, { soc: 1 }), health: 'online', cellCount: 16 },
      freshChargeState(),
      DEFAULT_CHARGE_CONTROL_CONFIG,
      T0,
    );
    expect(r.limits.chargeRequest).toBe(0);
  });
});
