/**
 * BlueNova driver against the simulator, over real websockets on localhost: the snapshot carries the simulated
 * values, the extra record the rest; current_sign; unknown lines logged once each; dropped connections and a
 * restarted server are recovered; N_UNITS checked against the configured units; every line is an rx frame;
 * several instances reach several units. Also: the simulator prints only lines the rule table knows, and
 * `batterybank simulate bluenova`.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { BlueNovaDriver } from '../../src/bms/bluenova/driver.js';
import { parseLine } from '../../src/bms/bluenova/protocol.js';
import type { DriverEvent, WireFrame } from '../../src/bms/driver.js';
import { findNetworkFamily, parseEndpoint } from '../../src/bms/network-registry.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { WebSocketLink } from '../../src/links/websocket-link.js';
import { BlueNovaSimulator } from '../../src/sim/bluenova-simulator.js';
import { createRandom } from '../../src/sim/random.js';
import { simulateCommand } from '../../src/sim/simulate-command.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(fn: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function simulator(opts: ConstructorParameters<typeof BlueNovaSimulator>[0] = {}): Promise<BlueNovaSimulator> {
  const sim = new BlueNovaSimulator({ cycleMs: 50, ...opts });
  await sim.start();
  cleanups.push(() => sim.close());
  return sim;
}

interface Rig {
  driver: BlueNovaDriver;
  snapshots: BatterySnapshot[];
  events: DriverEvent[];
  frames: WireFrame[];
  log(): string;
}

function drive(url: string, opts: { currentSign?: 1 | -1; configuredUnits?: number } = {}): Rig {
  const link = new WebSocketLink({ url, backoffMs: [50, 100], noDataTimeoutMs: 1000 });
  const driver = new BlueNovaDriver({ link, ...opts });
  const rig: Rig = {
    driver,
    snapshots: [],
    events: [],
    frames: [],
    log: () => rig.events.map((e) => `${e.level} ${e.message}`).join('\n'),
  };
  driver.onSnapshot((s) => rig.snapshots.push(s));
  driver.onEvent((e) => rig.events.push(e));
  driver.onFrame((f) => rig.frames.push(f));
  driver.start();
  cleanups.push(() => driver.stop());
  return rig;
}

describe('BlueNova simulator', () => {
  test('prints only lines of the rule table, every rule shape at least once over an identity+energy cycle', () => {
    const sim = new BlueNovaSimulator({ identityEvery: 1, energyEvery: 1 });
    const lines = sim.cycleLines(0);
    const keys = new Set<string>();
    for (const l of lines) {
      const p = parseLine(l);
      expect(p, l).toBeDefined();
      expect(p?.value, l).toBeDefined();
      keys.add(p?.key as string);
    }
    // Counters are events the simulator sends only when told (inject); everything else is in a cycle.
    for (const k of ['mcuId', 'units', 'rank', 'cellCount', 'cell', 'packVoltage', 'current', 'temperature']) {
      expect(keys.has(k), k).toBe(true);
    }
    for (const k of ['cellVoltageMax', 'cellVoltageMin', 'soc', 'soh', 'errors', 'systemState', 'breaker']) {
      expect(keys.has(k), k).toBe(true);
    }
    for (const k of ['chargeState', 'adcVp', 'adc', 'energyMarker', 'energy']) expect(keys.has(k), k).toBe(true);
    expect(lines.filter((l) => l.startsWith('C') && l.includes(') T: '))).toHaveLength(16);
  });

  test("wander: live-looking values change from cycle to cycle, within a LiFePO4 pack's range; without it they stay", async () => {
    const lineValues = (sim: BlueNovaSimulator) => {
      const out: Record<string, number[]> = { current: [], cell: [], soc: [] };
      return {
        take: () => {
          for (const l of sim.cycleLines(0)) {
            const p = parseLine(l);
            if (p && (p.key === 'current' || p.key === 'soc')) out[p.key]?.push(p.value as number);
            if (p?.key === 'cell' && p.index === 1) out.cell?.push((p.value as { voltage: number }).voltage);
          }
        },
        out,
      };
    };
    const live = new BlueNovaSimulator({ cycleMs: 20, wander: createRandom(4) });
    const still = new BlueNovaSimulator({ cycleMs: 20 });
    await live.start();
    await still.start();
    try {
      const a = lineValues(live);
      const b = lineValues(still);
      for (let i = 0; i < 12; i++) {
        a.take();
        b.take();
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(new Set(a.out.current).size).toBeGreaterThan(3);
      expect(new Set(a.out.cell).size).toBeGreaterThan(1);
      for (const v of a.out.current ?? []) expect(Math.abs(v)).toBeLessThanOrEqual(40);
      for (const v of a.out.cell ?? []) expect(v >= 3.0 && v <= 3.55).toBe(true);
      expect(new Set(b.out.current).size).toBe(1);
      expect(new Set(b.out.cell).size).toBe(1);
    } finally {
      await live.close();
      await still.close();
    }
  });
});

describe('BlueNova driver on the simulator', () => {
  test('the snapshot and the extra record carry the simulated values', async () => {
    const cells = [3.31, 3.32, 3.305, 3.299, 3.3, 3.301, 3.302, 3.303];
    const sim = await simulator({
      units: [
        {
          mcuId: 0xabcdef01,
          cells,
          cellTemperatures: [21, 22, 23, 24, 25, 26, 27, 28],
          current: -8.25,
          soc: 73,
          soh: 96.5,
          temperature: 27,
          errors: 'None',
          breaker: 'CLOSED',
          systemState: 'DISCHARGING',
          chargeState: 'Idle',
          energyIn: 321.5,
          energyOut: 123.25,
          adcVp: 26.4,
          adc: [1.1, 1.2, 1.3, 1.4, 1.5],
        },
      ],
      energyEvery: 2,
    });
    const rig = drive(sim.url());
    await until(() => rig.snapshots.length >= 3 && rig.driver.extra.energyIn !== undefined, 5000, 'snapshots');
    const s = rig.snapshots.at(-1) as BatterySnapshot;
    expect(s.cellVoltages).toEqual(cells);
    expect(s.voltage).toBeCloseTo(
      cells.reduce((a, b) => a + b, 0),
      3,
    );
    expect(s.current).toBe(-8.25);
    expect(s.soc).toBe(73);
    expect(s.soh).toBe(96.5);
    expect(s.cellVoltageMax).toBe(3.32);
    expect(s.cellVoltageMin).toBe(3.299);
    expect(s.temperatures?.map((t) => t.celsius)).toEqual([21, 22, 23, 24, 25, 26, 27, 28, 27]);
    expect(s.chargeFet).toBe(true);
    expect(s.protection).toEqual({ internalFailure: false });
    expect(s.identity.serial).toBe('ABCDEF01');
    expect(rig.driver.extra).toMatchObject({
      mcuId: 0xabcdef01,
      units: 1,
      rank: 1,
      errors: 'None',
      systemState: 'DISCHARGING',
      breaker: 'CLOSED',
      chargeState: 'Idle',
      energyIn: 321.5,
      energyOut: 123.25,
      adcVp: 26.4,
      temperature: 27,
    });
    expect(rig.driver.extra.adc).toEqual([1.1, 1.2, 1.3, 1.4, 1.5]);
    expect(rig.driver.dbusValues()).toMatchObject({
      '/BlueNova/McuId': 'ABCDEF01',
      '/BlueNova/Units': 1,
      '/BlueNova/Rank': 1,
      '/BlueNova/Breaker': 'CLOSED',
      '/BlueNova/EnergyIn': 321.5,
      '/BlueNova/UnknownLines': 0,
    });
    expect(rig.driver.telemetryExtras()).toMatchObject({
      bluenova: {
        mcuId: 0xabcdef01,
        adc: [1.1, 1.2, 1.3, 1.4, 1.5],
        counters: { badCrc: 0, parseFail: 0, badVcell: 0 },
      },
    });
    expect(rig.log()).toMatch(/info connected to Websocket ws:\/\/127\.0\.0\.1:\d+\/ws\//);
    expect(rig.log()).toMatch(/BlueNova MCU ID ABCDEF01, 1 unit in parallel, rank 1/);
  });

  test('new values reach the next snapshots; current_sign = -1 flips the current', async () => {
    const sim = await simulator({ units: [{ current: 10, soc: 50 }] });
    const rig = drive(sim.url(), { currentSign: -1 });
    await until(() => rig.snapshots.length >= 1, 3000, 'a snapshot');
    expect(rig.snapshots.at(-1)?.current).toBe(-10);
    sim.setValues(0, { soc: 51, current: -3.5, errors: 'Short circuit', breaker: 'TRIPPED' });
    const s = await until(() => rig.snapshots.find((x) => x.soc === 51), 3000, 'the new SoC');
    expect(s.current).toBe(3.5);
    expect(s.protection.shortCircuit).toBe(true);
    expect(s.chargeFet).toBe(false);
  });

  test('unknown console lines are logged once per shape with the line itself; counters counted', async () => {
    const sim = await simulator();
    const rig = drive(sim.url());
    await until(() => rig.snapshots.length >= 1, 3000, 'a snapshot');
    sim.inject(0, 'WIFI: RSSI -67', 'WIFI: RSSI -70', 'INFO: BAD CRC', 'DEBUG: REJECT BAD VCELL 7', 'Balancer: C03 on');
    await until(() => rig.driver.extra.counters.badCrc === 1, 3000, 'the counter');
    sim.inject(0, 'WIFI: RSSI -71', 'Balancer: C05 on');
    await until(() => rig.snapshots.length >= 6, 3000, 'more cycles');
    const unknown = rig.events.filter((e) => e.message.startsWith('unknown BlueNova console line'));
    expect(unknown.map((e) => e.message)).toEqual([
      'unknown BlueNova console line (shown once per shape; please report it): "WIFI: RSSI -67"',
      'unknown BlueNova console line (shown once per shape; please report it): "Balancer: C03 on"',
    ]);
    expect(unknown.every((e) => e.level === 'info')).toBe(true);
    expect(rig.driver.extra.counters).toEqual({ badCrc: 1, parseFail: 0, badVcell: 1 });
    expect(rig.driver.dbusValues()['/BlueNova/UnknownLines']).toBe(2);
  });

  test('every console line is an rx frame of its UTF-8 bytes', async () => {
    const sim = await simulator();
    const rig = drive(sim.url());
    await until(() => rig.snapshots.length >= 1, 3000, 'a snapshot');
    const text = rig.frames.map((f) => new TextDecoder().decode(f.bytes));
    expect(rig.frames.every((f) => f.direction === 'rx' && f.request === undefined)).toBe(true);
    expect(text).toContain('CellCount: 16');
    expect(text).toContain('MCU ID: 1A2B3C4D');
    expect(text.every((l) => parseLine(l) !== undefined)).toBe(true);
  });

  test('dropped connections and a restarted server: the driver reconnects and snapshots resume', async () => {
    const sim = await simulator();
    const rig = drive(sim.url());
    await until(() => rig.snapshots.length >= 1, 3000, 'a snapshot');
    sim.dropConnections();
    await until(() => rig.events.some((e) => e.message.startsWith('lost the console')), 3000, 'the loss');
    await until(() => rig.events.some((e) => e.message.startsWith('connected again')), 3000, 'reconnected');
    const n = rig.snapshots.length;
    await until(() => rig.snapshots.length > n + 1, 3000, 'snapshots after the drop');
    const mark = rig.events.length;
    await sim.stopServer(0);
    await until(
      () => rig.events.slice(mark).filter((e) => e.message.startsWith('cannot reach')).length >= 3,
      3000,
      'failed retries',
    );
    // One warning per outage (the loss); the retries of that outage are debug, so a dead battery does not flood.
    const outage = rig.events.slice(mark);
    expect(outage.filter((e) => e.level === 'warn').map((e) => e.message)).toEqual([
      expect.stringMatching(
        /^lost the console: Websocket ws:\/\/127\.0\.0\.1:\d+\/ws\/: closed by the server \(1006\)/,
      ),
    ]);
    expect(outage.filter((e) => e.message.startsWith('cannot reach')).every((e) => e.level === 'debug')).toBe(true);
    await sim.restartServer(0);
    const m = rig.snapshots.length;
    await until(() => rig.snapshots.length > m + 1, 5000, 'snapshots after the restart');
  });

  test('a unit that reports more units than are configured in its bank gets a clear hint, once', async () => {
    const sim = await simulator({ units: [{}, {}, {}] });
    const alone = drive(sim.url(1), { configuredUnits: 1 });
    const banked = drive(sim.url(2), { configuredUnits: 3 });
    await until(() => alone.snapshots.length >= 2 && banked.snapshots.length >= 2, 3000, 'snapshots');
    sim.dropConnections(1); // the identity lines come again on the new connection
    await until(() => alone.events.filter((e) => e.message.startsWith('connected')).length >= 2, 3000, 'reconnect');
    await sleep(200);
    const hints = alone.events.filter((e) => e.message.includes('reports 3 units in parallel'));
    expect(hints).toHaveLength(1);
    expect(hints[0]?.level).toBe('warn');
    expect(hints[0]?.message).toMatch(/but 1 BlueNova battery is configured in its bank/);
    expect(banked.events.some((e) => e.message.includes('units in parallel, but'))).toBe(false);
    expect(alone.driver.extra).toMatchObject({ units: 3, rank: 2 });
    expect(banked.driver.extra).toMatchObject({ units: 3, rank: 3 });
  });

  test('several instances reach several batteries, each with its own values', async () => {
    const sim = await simulator({ units: [{ soc: 11 }, { soc: 22 }] });
    const a = drive(sim.url(0));
    const b = drive(sim.url(1));
    await until(() => a.snapshots.length > 0 && b.snapshots.length > 0, 3000, 'both');
    expect(a.snapshots.at(-1)?.soc).toBe(11);
    expect(b.snapshots.at(-1)?.soc).toBe(22);
    expect(a.driver.extra.mcuId).not.toBe(b.driver.extra.mcuId);
    expect(sim.connections(0)).toBe(1);
    expect(sim.connections(1)).toBe(1);
  });

  test('the network registry builds a working driver from a host entry', async () => {
    const sim = await simulator();
    const family = findNetworkFamily('bluenova');
    expect(family).toBeDefined();
    const port = Number(new URL(sim.url()).port);
    const endpoint = parseEndpoint(`127.0.0.1:${port}`, family!);
    expect(endpoint?.url).toBe(`ws://127.0.0.1:${port}/ws/`);
    const driver = family!.createDriver(endpoint!, { now: () => 42, staleAfterMs: 5000 });
    const got: BatterySnapshot[] = [];
    driver.onSnapshot((s) => got.push(s));
    driver.start();
    cleanups.push(() => driver.stop());
    await until(() => got.length > 0, 3000, 'a snapshot');
    expect(got[0]?.timestampMs).toBe(42);
  });
});

describe('a battery that is not there', () => {
  test('the first failed attempt is a warning naming the address, the following ones debug', async () => {
    const sim = await simulator();
    const url = sim.url();
    await sim.stopServer(0);
    const rig = drive(url);
    await until(() => rig.events.filter((e) => e.message.startsWith('cannot reach')).length >= 3, 3000, 'retries');
    const tries = rig.events.filter((e) => e.message.startsWith('cannot reach'));
    expect(tries[0]?.level).toBe('warn');
    expect(tries[0]?.message).toMatch(
      /^cannot reach Websocket ws:\/\/127\.0\.0\.1:\d+\/ws\/: cannot connect .*; retrying in 0\.05 s$/,
    );
    expect(tries.slice(1).every((e) => e.level === 'debug')).toBe(true);
    expect(rig.snapshots).toEqual([]);
  });
});

describe('parseEndpoint', () => {
  const family = findNetworkFamily('bluenova')!;
  test.each([
    ['10.0.0.2', 'ws://10.0.0.2:9000/ws/'],
    ['10.0.0.2:9001', 'ws://10.0.0.2:9001/ws/'],
    ['battery.local', 'ws://battery.local:9000/ws/'],
    ['[fe80::1]:9000', 'ws://[fe80::1]:9000/ws/'],
    ['ws://10.0.0.3:9000/ws/', 'ws://10.0.0.3:9000/ws/'],
    ['ws://10.0.0.3/console', 'ws://10.0.0.3:9000/console'],
  ])('%s → %s', (text, url) => {
    expect(parseEndpoint(text, family)?.url).toBe(url);
  });
  test.each(['', 'http://10.0.0.2/', '10.0.0.2:99999', 'a b', 'user:pw@10.0.0.2'])('%j is refused', (text) => {
    expect(parseEndpoint(text, family)).toBeUndefined();
  });
});

describe('batterybank simulate bluenova', () => {
  test('the built CLI (npm test builds first): prints WS lines, serves until SIGTERM', async () => {
    const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
    const child = spawn(process.execPath, [cli, 'simulate', 'bluenova', '--listen', '127.0.0.1:0', '--units', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    await until(() => lines.length >= 3, 10_000, 'the CLI output');
    const urls = lines.filter((l) => l.startsWith('WS ')).map((l) => l.slice(3));
    expect(urls).toHaveLength(2);
    const rig = drive(urls[0] as string);
    await until(() => rig.snapshots.length > 0, 5000, 'a snapshot from the CLI');
    expect(rig.snapshots[0]?.cellVoltages).toHaveLength(16);
    await rig.driver.stop();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 20_000);

  test('--units 2 --listen 127.0.0.1:0: two WS lines, each a unit printing console lines', async () => {
    const out: string[] = [];
    const sim = await simulateCommand({ family: 'bluenova', units: 2, listen: '127.0.0.1:0', cells: 4 }, (l) =>
      out.push(l),
    );
    cleanups.push(() => sim.close());
    const urls = out.filter((l) => l.startsWith('WS ')).map((l) => l.slice(3));
    expect(urls).toHaveLength(2);
    expect(out.at(-1)).toMatch(
      /serving 2 BlueNova units \(4 cells, console lines from the rule table; no real capture/,
    );
    const rig = drive(urls[1] as string);
    await until(() => rig.snapshots.length > 0, 5000, 'a snapshot from the CLI simulator');
    expect(rig.snapshots[0]?.cellVoltages).toHaveLength(4);
    expect(rig.driver.extra.rank).toBe(2);
    await expect(simulateCommand({ family: 'bluenova', listen: 'nonsense' }, () => undefined)).rejects.toThrow(
      /--listen must be host:port/,
    );
  }, 15_000);
});
