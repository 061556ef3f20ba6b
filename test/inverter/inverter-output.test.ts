/**
 * The inverter output runner on a CanBus over an in-memory CAN link, with fake timers: the Pylon set every
 * second built from the source's latest state, zero limits in the very next set once the source goes quiet,
 * keep-alive tracking, BYD hello / periods / watchdog, a link that drops and comes back, a failing source,
 * the last set on stop, and the D-Bus / HTTP views of the status.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { decodePylonCanFrame } from '../../src/bms/pylon-can/protocol.js';
import type { BatteryState } from '../../src/domain/battery-state.js';
import { LinkError } from '../../src/domain/errors.js';
import type { InverterConfig } from '../../src/inverter/inverter-config.js';
import { InverterOutput, inverterDbusValues, inverterStatusJson } from '../../src/inverter/inverter-output.js';
import { CanBus } from '../../src/links/can/can-bus.js';
import { type CanFrame, type CanLink, formatCanFrame } from '../../src/links/can/can-frame.js';
import { createLogger } from '../../src/log.js';
import { type BatteryStatePreset, batteryStateBuilders, PACK_12V } from '../support/battery-state.js';

class MemoryCanLink implements CanLink {
  readonly description = 'memory can1';
  isOpen = false;
  openFails = false;
  readonly sent: { t: number; frame: CanFrame }[] = [];
  private dataListener: ((f: CanFrame) => void) | undefined;
  private closeListener: ((e: Error) => void) | undefined;
  async open(): Promise<void> {
    if (this.openFails) throw new LinkError('no such device');
    this.isOpen = true;
  }
  async send(frame: CanFrame): Promise<void> {
    if (!this.isOpen) throw new LinkError('closed');
    this.sent.push({ t: Date.now(), frame });
  }
  async close(): Promise<void> {
    this.isOpen = false;
  }
  onData(l: (f: CanFrame) => void): void {
    this.dataListener = l;
  }
  onClose(l: (e: Error) => void): void {
    this.closeListener = l;
  }
  setFilters(): void {}
  /** A frame from the inverter. */
  inject(frame: CanFrame): void {
    this.dataListener?.(frame);
  }
  /** The adapter vanishes. */
  drop(): void {
    this.isOpen = false;
    this.closeListener?.(new LinkError('unplugged'));
  }
  ofId(id: number): { t: number; frame: CanFrame }[] {
    return this.sent.filter((s) => s.frame.id === id);
  }
}

const T0 = 1_700_000_000_000;
const preset: BatteryStatePreset = { ...PACK_12V, now: () => Date.now() };
const { batteryState } = batteryStateBuilders(preset);

function config(over: Partial<InverterConfig> = {}): InverterConfig {
  return {
    protocol: 'pylon',
    endpoint: { kind: 'socketcan', iface: 'can1' },
    source: { kind: 'battery', id: 'house' },
    manufacturer: 'PYLON',
    victronExtensions: false,
    maxChargeCurrent: undefined,
    maxDischargeCurrent: undefined,
    capacityKwh: undefined,
    watchdogMs: 5000,
    ...over,
  };
}

let link: MemoryCanLink;
let bus: CanBus;
let logs: string[];
let output: InverterOutput | undefined;
/** The source: the test sets it; undefined = not yet known. */
let source: BatteryState | undefined;
/** The source answers every read with fresh data (its BMS replies all the time), unless a test says otherwise. */
let live: boolean;
const read = (): BatteryState | undefined => (live && source ? { ...source, lastValidMs: Date.now() } : source);

function start(cfg: InverterConfig, sourceFn: () => BatteryState | undefined = read): InverterOutput {
  output = new InverterOutput({
    config: cfg,
    bus,
    source: sourceFn,
    staleLimitMs: 3000,
    logger: createLogger({ level: 'debug', write: (l) => logs.push(l) }),
  });
  output.start();
  return output;
}

const pylonCcl = (f: CanFrame) => decodePylonCanFrame(f).limits?.chargeCurrent;
const ids = (xs: { frame: CanFrame }[]) => xs.map((x) => x.frame.id);

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
  link = new MemoryCanLink();
  bus = new CanBus(link, { reconnectMinMs: 200, reconnectMaxMs: 400 });
  logs = [];
  source = batteryState();
  live = true;
});

afterEach(async () => {
  await output?.stop();
  output = undefined;
  vi.useRealTimers();
});

describe('Pylon LV output', () => {
  test('the six frames every second, on a fixed grid, with the source values of that moment', async () => {
    start(config());
    await vi.advanceTimersByTimeAsync(10);
    expect(ids(link.sent)).toEqual([0x351, 0x355, 0x356, 0x359, 0x35c, 0x35e]);
    source = batteryState({ snapshot: { ...batteryState().snapshot!, soc: 42 } });
    await vi.advanceTimersByTimeAsync(5000);
    const sets = link.ofId(0x351).map((s) => s.t - T0);
    expect(sets).toEqual([0, 1000, 2000, 3000, 4000, 5000]);
    expect(decodePylonCanFrame(link.ofId(0x355).at(-1)!.frame).soc).toBe(42);
    expect(pylonCcl(link.ofId(0x351).at(-1)!.frame)).toBe(50);
    expect(formatCanFrame(link.ofId(0x35c).at(-1)!.frame)).toBe('35C#C000');
  });

  test('a source that goes quiet: CCL = DCL = 0 and enables cleared in the first set after the stale limit', async () => {
    // The source keeps its last state, "online", forever (as if its monitor had died): only our clock notices.
    live = false;
    source = batteryState({ lastValidMs: T0 });
    start(config());
    await vi.advanceTimersByTimeAsync(3000);
    expect(pylonCcl(link.ofId(0x351).at(-1)!.frame)).toBe(50); // age 3000 ms = the limit: still fresh
    await vi.advanceTimersByTimeAsync(1000);
    const last = link.ofId(0x351).at(-1)!;
    expect(last.t - T0).toBe(4000);
    expect(decodePylonCanFrame(last.frame).limits).toMatchObject({ chargeCurrent: 0, dischargeCurrent: 0 });
    expect(formatCanFrame(link.ofId(0x35c).at(-1)!.frame)).toBe('35C#0000');
    // 0x359 byte 3 bit 3: internal communication fail.
    expect(link.ofId(0x359).at(-1)!.frame.data[3]).toBe(0x08);
    expect(logs.join('\n')).toMatch(/advertising CCL 0 \(last valid data 4 s old\), DCL 0/);
    expect(output?.status().advertised).toMatchObject({ chargeCurrent: 0, chargeEnable: false });
  });

  test('a health change is in the very next set, not a later one', async () => {
    start(config());
    await vi.advanceTimersByTimeAsync(1500);
    source = batteryState({ health: 'offline' });
    await vi.advanceTimersByTimeAsync(500);
    expect(pylonCcl(link.ofId(0x351).at(-1)!.frame)).toBe(0);
    source = batteryState();
    await vi.advanceTimersByTimeAsync(1000);
    expect(pylonCcl(link.ofId(0x351).at(-1)!.frame)).toBe(50);
    expect(logs.join('\n')).toMatch(/advertising the policy limits again/);
  });

  test('0x305 / 0x307 keep-alives: connected, last seen, brand; lost after the watchdog time', async () => {
    const out = start(config());
    await vi.advanceTimersByTimeAsync(100);
    expect(out.status()).toMatchObject({ connected: false, lastSeenMs: undefined, linkUp: true, phase: 'running' });
    expect(inverterDbusValues(out.status(), Date.now())).toEqual({
      '/Inverter/Protocol': 'pylon',
      '/Inverter/Connected': 0,
      '/Inverter/LastSeen': undefined,
    });
    link.inject({ id: 0x307, ext: false, data: Uint8Array.of(0x12, 0x34, 0x56, 0x78, 0x56, 0x49, 0x43, 0) });
    await vi.advanceTimersByTimeAsync(2000);
    expect(out.status()).toMatchObject({ connected: true, inverterBrand: 'Victron', lastSeenMs: T0 + 100 });
    expect(inverterDbusValues(out.status(), Date.now())).toEqual({
      '/Inverter/Protocol': 'pylon',
      '/Inverter/Connected': 1,
      '/Inverter/LastSeen': 2,
    });
    await vi.advanceTimersByTimeAsync(4000);
    expect(out.status().connected).toBe(false);
    // The battery keeps sending: a Pylon battery does not wait for the inverter.
    expect(link.ofId(0x351).length).toBe(7);
    expect(logs.join('\n')).toMatch(/the inverter is talking on memory can1 \(Victron\)/);
    expect(logs.join('\n')).toMatch(/no inverter frames for 5 s/);
    expect(inverterStatusJson(out.status(), Date.now())).toMatchObject({
      protocol: 'pylon',
      connected: false,
      lastSeen: new Date(T0 + 100).toISOString(),
      inverterBrand: 'Victron',
    });
  });

  test('the link drops: sends fail and are counted, the bus reopens and the sets resume', async () => {
    const out = start(config());
    await vi.advanceTimersByTimeAsync(1100);
    link.openFails = true;
    link.drop();
    await vi.advanceTimersByTimeAsync(2000);
    expect(out.status().linkUp).toBe(false);
    const before = link.sent.length;
    link.openFails = false;
    await vi.advanceTimersByTimeAsync(2000);
    expect(out.status().linkUp).toBe(true);
    expect(link.sent.length).toBeGreaterThan(before);
    expect(logs.join('\n')).toMatch(/memory can1: unplugged; retrying/);
  });

  test('a source that throws is reported once; the timer keeps running', async () => {
    let calls = 0;
    start(config(), () => {
      calls++;
      if (calls < 4) throw new Error('boom');
      return batteryState();
    });
    await vi.advanceTimersByTimeAsync(5000);
    expect(logs.filter((l) => l.includes('boom'))).toHaveLength(1);
    expect(link.ofId(0x351).length).toBeGreaterThanOrEqual(2);
  });

  test('caps lower the advertised limits; the Victron extensions go out when asked for', async () => {
    start(config({ maxChargeCurrent: 20, victronExtensions: true }));
    await vi.advanceTimersByTimeAsync(10);
    expect(pylonCcl(link.ofId(0x351)[0]!.frame)).toBe(20);
    expect(ids(link.sent)).toContain(0x373);
  });

  test('stop() sends a last set with both limits 0', async () => {
    const out = start(config());
    await vi.advanceTimersByTimeAsync(10);
    await out.stop();
    output = undefined;
    expect(pylonCcl(link.ofId(0x351).at(-1)!.frame)).toBe(0);
    expect(formatCanFrame(link.ofId(0x35c).at(-1)!.frame)).toBe('35C#0000');
  });
});

describe('BYD HVS output', () => {
  const hello: CanFrame = { id: 0x151, ext: false, data: Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0) };

  test('silent until asked; the hello and the periodic set at once; periods of 2 and 10 s', async () => {
    const out = start(config({ protocol: 'byd-hvs', watchdogMs: 60_000, capacityKwh: 5 }));
    await vi.advanceTimersByTimeAsync(3000);
    expect(link.sent).toEqual([]);
    expect(out.status().phase).toBe('waiting');
    link.inject(hello);
    await vi.advanceTimersByTimeAsync(20_050);
    expect(ids(link.sent.slice(0, 12))).toEqual([
      0x250, 0x290, 0x2d0, 0x3d0, 0x3d0, 0x3d0, 0x3d0, 0x110, 0x150, 0x1d0, 0x210, 0x190,
    ]);
    expect(link.ofId(0x110).map((s) => s.t - T0 - 3000)).toEqual([
      0, 2000, 4000, 6000, 8000, 10_000, 12_000, 14_000, 16_000, 18_000, 20_000,
    ]);
    expect(link.ofId(0x150).map((s) => s.t - T0 - 3000)).toEqual([0, 10_000, 20_000]);
    expect(link.ofId(0x250)).toHaveLength(1);
    expect(out.status()).toMatchObject({ phase: 'running', connected: true, hellos: 1 });
    expect(logs.join('\n')).toMatch(/asked who we are/);
  });

  test('the watchdog stops every frame after silence and says so; inverter traffic resumes them', async () => {
    const out = start(config({ protocol: 'byd-hvs', watchdogMs: 4000 }));
    link.inject(hello);
    await vi.advanceTimersByTimeAsync(4100);
    expect(out.status()).toMatchObject({ phase: 'stopped', connected: false });
    const n = link.sent.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(link.sent.length).toBe(n);
    expect(logs.join('\n')).toMatch(/no inverter frames for 4 s: stopped sending until the inverter talks again/);
    link.inject({ id: 0x0d1, ext: false, data: Uint8Array.of(0x02, 0x64, 0, 0, 0, 0, 0, 0) });
    await vi.advanceTimersByTimeAsync(100);
    expect(ids(link.sent.slice(n))).toEqual([0x110, 0x150, 0x1d0, 0x210, 0x190]);
    expect(out.status().phase).toBe('running');
  });

  test('0x110 carries zero currents as soon as the source is offline', async () => {
    // An HV pack: CVL 400 V, DVL 300 V (the 12 V preset's window would close with the 2 V offsets).
    source = batteryState({ limits: { ...batteryState().limits, chargeVoltage: 400, batteryLowVoltage: 300 } });
    start(config({ protocol: 'byd-hvs' }));
    link.inject(hello);
    await vi.advanceTimersByTimeAsync(100);
    const first = link.ofId(0x110)[0]!.frame.data;
    expect([first[6], first[7]]).toEqual([0x01, 0xf4]); // 50.0 A
    source = { ...source, health: 'offline' };
    link.inject({ id: 0x111, ext: false, data: new Uint8Array(8) });
    await vi.advanceTimersByTimeAsync(2000);
    const last = link.ofId(0x110).at(-1)!.frame.data;
    expect([...last.slice(4)]).toEqual([0, 0, 0, 0]);
  });
});
