import { describe, expect, test } from 'vitest';
import { BatteryMonitor } from '../../src/battery/battery-monitor.js';
import { DEFAULT_CHARGE } from '../../src/config.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import type { BatteryState } from '../../src/domain/battery-state.js';
import { DEFAULT_CHARGE_CONTROL_CONFIG } from '../../src/policy/charge-control-config.js';

function setup() {
  let now = 1_000_000;
  const m = new BatteryMonitor({
    id: 'house',
    connection: 'Serial ttyUSB0',
    productName: 'JBD BMS',
    timing: { pollIntervalMs: 1000, staleAfterMs: 10_000 },
    charge: DEFAULT_CHARGE,
    control: DEFAULT_CHARGE_CONTROL_CONFIG,
    now: () => now,
  });
  const states: BatteryState[] = [];
  m.onState((s) => states.push(s));
  const snap = (over: Partial<BatterySnapshot> = {}): BatterySnapshot => ({
    timestampMs: now,
    voltage: 13.2,
    current: -2,
    cellVoltages: [3.3, 3.3, 3.3, 3.3],
    temperatures: [{ name: 'T1', celsius: 20 }],
    chargeFet: true,
    dischargeFet: true,
    protection: {},
    identity: {},
    ...over,
  });
  return { m, states, snap, advance: (ms: number) => (now += ms) };
}

describe('BatteryMonitor', () => {
  test('starts offline with zero limits and no CVL until the cell count is known', () => {
    const { m } = setup();
    expect(m.state.health).toBe('offline');
    expect(m.state.limits).toMatchObject({ chargeCurrent: 0, dischargeCurrent: 0, chargeVoltage: undefined });
    expect(m.state.alarms.BmsCable).toBe(2);
  });

  test('a snapshot makes it online at once, with power derived and limits from config', () => {
    const { m, states, snap } = setup();
    m.ingest(snap());
    expect(states).toHaveLength(1);
    expect(m.state.health).toBe('online');
    expect(m.state.snapshot?.power).toBeCloseTo(-26.4);
    expect(m.state.limits).toMatchObject({ chargeVoltage: 13.8, chargeCurrent: 50, dischargeCurrent: 60 });
  });

  test('silence goes stale (limits 0, values kept) and then offline at stale_after; data brings it back', () => {
    const { m, snap, advance } = setup();
    const health: string[] = [];
    m.onHealthChange((h) => health.push(h));
    m.ingest(snap());
    advance(3500);
    m.tick();
    expect(m.state.health).toBe('stale');
    expect(m.state.limits.chargeCurrent).toBe(0);
    expect(m.state.snapshot?.voltage).toBe(13.2);
    advance(6500);
    m.tick();
    expect(m.state.health).toBe('offline');
    // Blind: CVL falls back to cells × float voltage (4 × 3.375), never the full charge voltage.
    expect(m.state.limits).toMatchObject({ chargeCurrent: 0, dischargeCurrent: 0, chargeVoltage: 13.5 });
    m.ingest(snap());
    expect(m.state.health).toBe('online');
    expect(health).toEqual(['online', 'stale', 'offline', 'online']);
  });

  test('a snapshot without cells reuses recent cells but not old ones', () => {
    const { m, snap, advance } = setup();
    m.ingest(snap());
    advance(1000);
    m.ingest(snap({ cellVoltages: undefined }));
    expect(m.state.snapshot?.cellVoltages).toHaveLength(4);
    expect(m.state.limits.chargeCurrent).toBe(50);
    advance(5000);
    m.ingest(snap({ cellVoltages: undefined }));
    advance(1000);
    m.ingest(snap({ cellVoltages: undefined }));
    expect(m.state.snapshot?.cellVoltages).toBeUndefined();
    expect(m.state.limits.chargeCurrent).toBe(0);
  });

  test('the charge cycle state is handed out for persistence and restored on the next start', () => {
    const saved: { charge: string; soc: string }[] = [];
    let now = 0;
    const make = (restore?: { charge: string }) =>
      new BatteryMonitor({
        id: 'p',
        connection: 'x',
        productName: 'y',
        timing: { pollIntervalMs: 1000, staleAfterMs: 10_000 },
        charge: DEFAULT_CHARGE,
        control: DEFAULT_CHARGE_CONTROL_CONFIG,
        now: () => now,
        ...(restore ? { saved: restore } : {}),
        persist: (s) => saved.push(s),
      });
    const m = make();
    expect(saved.length).toBeGreaterThan(0);
    const state = JSON.parse(saved.at(-1)?.charge ?? '{}');
    expect(state.mode).toBe('bulk');
    // A restored float state is kept: a restart does not start absorbing again.
    const floatState = JSON.stringify({ ...state, mode: 'float' });
    now = 1000;
    const m2 = make({ charge: floatState });
    m2.ingest({
      timestampMs: now,
      voltage: 13.3,
      current: 1,
      soc: 95,
      cellVoltages: [3.33, 3.33, 3.33, 3.33],
      temperatures: [{ name: 'T1', celsius: 20 }],
      chargeFet: true,
      dischargeFet: true,
      protection: {},
      identity: {},
    });
    expect(m2.state.limits.chargeMode).toMatch(/Float/);
    expect(m.state.limits.chargeMode).toBeDefined();
  });

  test('a throwing listener does not stop the others', () => {
    const { m, snap } = setup();
    const seen: number[] = [];
    m.onState(() => {
      throw new Error('sink down');
    });
    m.onState(() => seen.push(1));
    m.ingest(snap());
    expect(seen).toEqual([1]);
  });
});

describe('BatteryMonitor timer', () => {
  test('skips the re-evaluation right after a snapshot; once data stops every tick runs and health follows', async () => {
    const m = new BatteryMonitor({
      id: 'house',
      connection: 'Serial ttyUSB0',
      productName: 'JBD BMS',
      timing: { pollIntervalMs: 50, staleAfterMs: 1000 },
      charge: DEFAULT_CHARGE,
      control: DEFAULT_CHARGE_CONTROL_CONFIG,
      now: Date.now,
      tickMs: 100,
    });
    const states: BatteryState[] = [];
    m.onState((s) => states.push(s));
    const snap = (): BatterySnapshot => ({
      timestampMs: Date.now(),
      voltage: 13.2,
      current: -2,
      cellVoltages: [3.3, 3.3, 3.3, 3.3],
      protection: {},
      identity: {},
    });
    m.start();
    try {
      // A snapshot every 40 ms for 1 s: one evaluation per snapshot; of the ~10 ticks none repeats one (a couple
      // may run when the machine delays a snapshot by more than a period).
      let ingests = 0;
      const end = Date.now() + 1000;
      while (Date.now() < end) {
        m.ingest(snap());
        ingests++;
        await new Promise((r) => setTimeout(r, 40));
      }
      expect(states.length).toBeGreaterThanOrEqual(ingests);
      expect(states.length).toBeLessThanOrEqual(ingests + 2);
      // Silence: the ticks run again, and the battery goes stale, then offline at stale_after, on time.
      const silentFrom = Date.now();
      const seen = new Map<string, number>();
      m.onHealthChange((h) => seen.set(h, Date.now() - silentFrom));
      await new Promise((r) => setTimeout(r, 1700));
      expect(states.length).toBeGreaterThanOrEqual(ingests + 10);
      expect(seen.get('stale')).toBeLessThan(1000);
      expect(seen.get('offline')).toBeGreaterThanOrEqual(950);
      expect(seen.get('offline')).toBeLessThan(1600);
      expect(m.state.limits.chargeCurrent).toBe(0);
    } finally {
      m.stop();
    }
  });
});
