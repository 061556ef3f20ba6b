/**
 * The inverter output on real SocketCAN (run inside User-Mode-Linux by test/can/uml.test.ts; vcan1 is up there).
 * A scripted test inverter on vcan1 — candump with kernel timestamps to watch, cansend to talk — checks the Pylon
 * and BYD HVS frame sets, their periods (±10 %), the BYD hello on request and the watchdog, and zero limits within
 * one period of the source going stale. End to end: simulated JBD on pseudo-terminals as a bank → the built
 * driver (`node dist/cli.js run`, D-Bus off, HTTP on) → Pylon frames on vcan1 read by our own PylonCanDriver in
 * this process, equal to the bank's values and limits from the driver's HTTP API.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { PylonCanDriver } from '../../src/bms/pylon-can/driver.js';
import { decodePylonCanFrame } from '../../src/bms/pylon-can/protocol.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { type BatteryState, noAlarms } from '../../src/domain/battery-state.js';
import type { InverterConfig } from '../../src/inverter/inverter-config.js';
import { InverterOutput } from '../../src/inverter/inverter-output.js';
import { CanBus } from '../../src/links/can/can-bus.js';
import { type CanFrame, formatCanFrame, parseCanLine } from '../../src/links/can/can-frame.js';
import { SocketCanLink } from '../../src/links/can/socketcan-link.js';
import { createLogger } from '../../src/log.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { sleep, waitFor } from '../support/pty.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const IFACE = 'vcan1';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The test inverter's ears: candump with kernel timestamps, every frame with its time in ms. */
class Candump {
  readonly frames: { t: number; frame: CanFrame }[] = [];
  private readonly child: ChildProcess;
  private rest = '';

  private constructor() {
    this.child = spawn('candump', ['-L', IFACE], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.child.stdout?.on('data', (d: Buffer) => {
      const text = this.rest + d.toString();
      const lines = text.split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^\((\d+\.\d+)\)/.exec(line.trim());
        const frame = parseCanLine(line);
        if (m && frame) this.frames.push({ t: Number(m[1]) * 1000, frame });
      }
    });
    cleanups.push(() => {
      this.child.kill();
    });
  }

  static async start(): Promise<Candump> {
    const d = new Candump();
    await sleep(300); // candump binds its socket
    return d;
  }

  of(id: number, since = 0): { t: number; frame: CanFrame }[] {
    return this.frames.filter((f) => f.frame.id === id && f.t >= since);
  }

  /** Gaps between consecutive frames of `id`, ms. */
  gaps(id: number, since = 0): number[] {
    const ts = this.of(id, since).map((f) => f.t);
    return ts.slice(1).map((t, i) => t - (ts[i] as number));
  }
}

/** The test inverter's mouth (asynchronous: the output under test runs in this process and must keep its timers). */
function cansend(frame: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('cansend', [IFACE, frame], (err) => (err ? reject(err) : resolve()));
  });
}

/** A 16S bank state as the composition root would hand it over; `fresh` re-stamps it on every read. */
function bankState(over: Partial<BatteryState> = {}): BatteryState {
  const snapshot: BatterySnapshot = {
    timestampMs: Date.now(),
    voltage: 52.8,
    current: -20.5,
    soc: 64,
    soh: 99,
    capacityInstalled: 560,
    cellVoltages: Array(16).fill(3.3),
    temperatures: [{ name: 'T1', celsius: 24.5 }],
    chargeFet: true,
    dischargeFet: true,
    protection: {},
    identity: {},
  };
  return {
    id: 'house',
    health: 'online',
    snapshot,
    limits: {
      chargeVoltage: 55.2,
      chargeCurrent: 140,
      dischargeCurrent: 200,
      batteryLowVoltage: 46.4,
      chargeReason: 'config',
      dischargeReason: 'config',
    },
    alarms: noAlarms(),
    connection: 'Bank 2p (a, b)',
    productName: 'Battery bank',
    lastValidMs: Date.now(),
    ...over,
  };
}

function startOutput(cfg: Partial<InverterConfig>, source: () => BatteryState | undefined): InverterOutput {
  const bus = new CanBus(new SocketCanLink({ iface: IFACE }));
  const out = new InverterOutput({
    config: {
      protocol: 'pylon',
      endpoint: { kind: 'socketcan', iface: IFACE },
      source: { kind: 'bank', id: 'house' },
      manufacturer: 'PYLON',
      victronExtensions: false,
      maxChargeCurrent: undefined,
      maxDischargeCurrent: undefined,
      capacityKwh: undefined,
      watchdogMs: 3000,
      ...cfg,
    },
    bus,
    source,
    staleLimitMs: 3000,
    logger: createLogger({ level: 'warn', write: () => undefined }),
  });
  out.start();
  cleanups.push(() => out.stop());
  return out;
}

const within10 = (gaps: number[], period: number) => gaps.every((g) => g >= period * 0.9 && g <= period * 1.1);

describe('inverter output on vcan1 against a scripted test inverter', () => {
  test('Pylon LV: the six frames every second (±10 %), the documented bytes, 0x305 tracked', async () => {
    const dump = await Candump.start();
    let state = bankState();
    const out = startOutput({}, () => ({ ...state, lastValidMs: Date.now() }));
    await waitFor(() => dump.of(0x35e).length >= 6, 10_000, 'six Pylon sets');
    const start = (dump.of(0x351)[0] as { t: number }).t;
    for (const id of [0x351, 0x355, 0x356, 0x359, 0x35c, 0x35e]) {
      const gaps = dump.gaps(id);
      expect(gaps.length, `0x${id.toString(16)}`).toBeGreaterThanOrEqual(5);
      expect(within10(gaps, 1000), `0x${id.toString(16)} gaps ${gaps.map(Math.round).join(', ')}`).toBe(true);
    }
    console.log(
      `Pylon periods (ms): ${dump
        .gaps(0x351)
        .map((g) => g.toFixed(1))
        .join(', ')}`,
    );
    // Layouts of protocols.md §4.2: CVL 55.2 V = 0x0228, CCL 140.0 A = 0x0578, DCL 200.0 A = 0x07D0, DVL 46.4 V = 0x01D0.
    const last = (id: number) => formatCanFrame((dump.of(id).at(-1) as { frame: CanFrame }).frame);
    expect(last(0x351)).toBe('351#28027805D007D001');
    expect(last(0x355)).toBe('355#40006300'); // 64 %, 99 %
    expect(last(0x356)).toBe('356#A01433FFF500'); // 52.80 V = 0x14A0, −20.5 A = −205 = 0xFF33, 24.5 °C = 0x00F5
    expect(last(0x359)).toBe('359#0000000001504E');
    expect(last(0x35c)).toBe('35C#C000');
    expect(last(0x35e)).toBe('35E#50594C4F4E202020');
    expect(out.status().connected).toBe(false);
    await cansend('305#0000000000000000');
    await waitFor(() => out.status().connected, 2000, 'the keep-alive seen');
    expect(out.status().lastSeenMs).toBeGreaterThan(start);
    // The source goes stale: the very next set carries zero limits and cleared enable bits.
    state = bankState({ health: 'stale' });
    const staleAt = Date.now();
    await waitFor(
      () => dump.of(0x351, staleAt).find((f) => decodePylonCanFrame(f.frame).limits?.chargeCurrent === 0),
      3000,
      'a zero-limit set',
    );
    const zero = dump.of(0x351, staleAt)[0] as { t: number; frame: CanFrame };
    expect(formatCanFrame(zero.frame)).toBe('351#280200000000D001');
    console.log(`stale → zero limits after ${Math.round(zero.t - staleAt)} ms`);
    expect(zero.t - staleAt).toBeLessThanOrEqual(1100);
    await waitFor(() => dump.of(0x35c, zero.t).length > 0, 2000, 'its 0x35C');
    expect(formatCanFrame((dump.of(0x35c, zero.t)[0] as { frame: CanFrame }).frame)).toBe('35C#0000');
  }, 30_000);

  test('BYD HVS: silent until the inverter asks, the hello on 0x151, 0x110 every 2 s (±10 %), the watchdog', async () => {
    const dump = await Candump.start();
    const out = startOutput({ protocol: 'byd-hvs', watchdogMs: 3000, capacityKwh: 28.6 }, () => ({
      ...bankState({ limits: { ...bankState().limits, chargeVoltage: 403.2, batteryLowVoltage: 340.2 } }),
      lastValidMs: Date.now(),
    }));
    await sleep(1500);
    expect(dump.frames.filter((f) => f.frame.id !== 0x151)).toEqual([]);
    const t0 = Date.now();
    await cansend('151#0100000000000000');
    // Keep the inverter alive for ~5 s, then fall silent.
    for (let i = 0; i < 5; i++) {
      await sleep(1000);
      await cansend('0D1#0280000000000000');
    }
    await waitFor(() => dump.of(0x110, t0).length >= 3, 5000, 'three 0x110');
    const ids = dump.frames.filter((f) => f.t >= t0 && f.frame.id !== 0x0d1 && f.frame.id !== 0x151);
    expect(ids.slice(0, 12).map((f) => f.frame.id)).toEqual([
      0x250, 0x290, 0x2d0, 0x3d0, 0x3d0, 0x3d0, 0x3d0, 0x110, 0x150, 0x1d0, 0x210, 0x190,
    ]);
    expect(formatCanFrame((dump.of(0x250)[0] as { frame: CanFrame }).frame)).toBe('250#03290066011E0209');
    // Big-endian, limits 2.0 V inwards: 401.2 V = 0x0FAC, 342.2 V = 0x0D5E, DCL 200.0 A = 0x07D0, CCL 140.0 A = 0x0578.
    expect(formatCanFrame((dump.of(0x110)[0] as { frame: CanFrame }).frame)).toBe('110#0FAC0D5E07D00578');
    const gaps = dump.gaps(0x110, t0);
    console.log(`BYD 0x110 periods (ms): ${gaps.map((g) => g.toFixed(1)).join(', ')}`);
    expect(within10(gaps, 2000), `gaps ${gaps.join(', ')}`).toBe(true);
    expect(dump.of(0x250)).toHaveLength(1);
    expect(out.status()).toMatchObject({ phase: 'running', hellos: 1 });
    // Silent for the watchdog time: no frame any more.
    await waitFor(() => out.status().phase === 'stopped', 6000, 'the watchdog');
    const stoppedAt = Date.now();
    await sleep(2500);
    expect(dump.frames.filter((f) => f.t > stoppedAt + 50)).toEqual([]);
    // The inverter talks again: frames resume without a new hello.
    await cansend('019#0000000000000000');
    await waitFor(() => dump.of(0x110, stoppedAt).length >= 1, 3000, '0x110 again');
    expect(dump.of(0x250)).toHaveLength(1);
  }, 40_000);
});

describe('end to end: JBD bank → driver process → Pylon frames on vcan1 → our PylonCanDriver', () => {
  test('the frames decode to the bank values and limits the driver publishes; unplugged → zero limits', async () => {
    const built = join(ROOT, 'dist/inverter/inverter-output.js');
    expect(existsSync(built), 'dist/ is built (npm run build)').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'inverter-e2e-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const sims: SimulatorOnPty[] = [];
    cleanups.push(async () => {
      for (const s of sims) await s.close();
    });
    let ini = '[general]\ndbus = false\n[bank]\nname = house\nbatteries = a, b\ntopology = 2p\n';
    for (const [i, id] of ['a', 'b'].entries()) {
      const sim = new JbdSimulator({ cells: 16, temperatureSensors: 2, seed: 90 + i });
      sim.setValues({ cells: Array(16).fill(3.31), voltage: 52.96, current: 7.5, soc: 71, capacityNominal: 280 });
      const pty = await runSimulatorOnPty({ simulator: sim, link: join(dir, `tty-${id}`) });
      sims.push(pty);
      ini += `[battery.${id}]\nprotocol = jbd\nport = ${pty.path}\npoll_interval = 0.5\nstale_after = 4\n`;
    }
    const port = 18_000 + (process.pid % 1000);
    ini += `[inverter]\nprotocol = pylon\ncan = ${IFACE}\n[http]\nenabled = true\nlisten = 127.0.0.1:${port}\n`;
    writeFileSync(join(dir, 'config.ini'), ini);
    let log = '';
    const driver = spawn('node', ['dist/cli.js', 'run', '--config', join(dir, 'config.ini')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    driver.stdout?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    driver.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    const exited = new Promise((r) => driver.once('exit', r));
    cleanups.push(async () => {
      driver.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      driver.kill('SIGKILL');
    });

    // Our own Pylon reader, as a GX would read a Pylon battery (it sends the 0x305 keep-alive too).
    const bus = new CanBus(new SocketCanLink({ iface: IFACE }));
    const reader = new PylonCanDriver({ bus });
    const snaps: BatterySnapshot[] = [];
    reader.onSnapshot((s) => snaps.push(s));
    reader.start();
    cleanups.push(() => reader.stop());

    const api = async (path: string): Promise<Record<string, unknown> | undefined> => {
      try {
        const r = await fetch(`http://127.0.0.1:${port}${path}`);
        return r.ok ? ((await r.json()) as Record<string, unknown>) : undefined;
      } catch {
        return undefined;
      }
    };
    const t0 = Date.now();
    await waitFor(
      () => snaps.at(-1)?.bmsLimits?.chargeCurrent === 100 || undefined,
      40_000,
      `Pylon frames with the bank limits from the driver (log: ${log})`,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${log}`);
    });
    console.log(`driver start → first full-limit Pylon set: ${Date.now() - t0} ms`);
    const bank = (await api('/api/bank')) as {
      voltage: number;
      current: number;
      soc: number;
      limits: { chargeVoltage: number; chargeCurrent: number; dischargeCurrent: number; batteryLowVoltage: number };
    };
    expect(bank).toBeDefined();
    const s = snaps.at(-1) as BatterySnapshot;
    expect(bank.limits.chargeCurrent).toBe(100); // two in parallel, 50 A each (the default max_charge_current)
    expect(bank.limits.dischargeCurrent).toBe(120);
    expect(s.bmsLimits?.chargeCurrent).toBe(bank.limits.chargeCurrent);
    expect(s.bmsLimits?.dischargeCurrent).toBe(bank.limits.dischargeCurrent);
    expect(Math.abs((s.bmsLimits?.chargeVoltage as number) - bank.limits.chargeVoltage)).toBeLessThanOrEqual(0.05);
    expect(Math.abs((s.bmsLimits?.dischargeVoltage as number) - bank.limits.batteryLowVoltage)).toBeLessThanOrEqual(
      0.05,
    );
    expect(Math.abs((s.voltage as number) - bank.voltage)).toBeLessThanOrEqual(0.01);
    expect(Math.abs((s.current as number) - bank.current)).toBeLessThanOrEqual(0.1);
    expect(s.soc).toBe(Math.round(bank.soc));
    expect(s.identity.manufacturer).toBe('PYLON');
    expect(s.chargeFet).toBe(true);
    // The reader's 0x305 keep-alives reach the driver: the API says the inverter is connected.
    let inv: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && inv?.connected !== true; i++) {
      await sleep(100);
      inv = await api('/api/inverter');
    }
    expect(inv).toMatchObject({ protocol: 'pylon', source: 'bank house', connected: true });

    // Both members unplugged: zero limits within the stale limit (2 s here: min(3 s, stale_after / 2)) and one period.
    const before = snaps.length;
    const unplugged = Date.now();
    for (const sim of sims) await sim.unplug();
    await waitFor(
      () => snaps.slice(before).find((x) => x.bmsLimits?.chargeCurrent === 0 && x.bmsLimits.dischargeCurrent === 0),
      8000,
      'zero limits',
    );
    const dt = Date.now() - unplugged;
    console.log(`members unplugged → zero limits on vcan1 after ${dt} ms`);
    expect(dt).toBeLessThan(2000 + 1100 + 500);
    // The reader completes a snapshot on 0x356, before that set's 0x35C: the cleared enable bits show in the next.
    await waitFor(
      () => snaps.slice(before).find((x) => x.chargeFet === false && x.dischargeFet === false),
      2500,
      'cleared enable bits',
    );
  }, 90_000);
});
