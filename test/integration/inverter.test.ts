/**
 * The inverter output on the real chain, on the host: two simulated JBD on pseudo-terminals as a 2p bank →
 * composition root → Pylon LV frames through a simulated USB-CAN-A adapter on a pty, decoded by our own Pylon
 * reader; the bank's values and limits on a private dbus-daemon; /Inverter/* on the bank service; the status
 * in the HTTP API. (The same over real SocketCAN, with the driver as a separate process: test/can/inverter.guest.ts.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { applyPylonCan, decodePylonCanFrame, type PylonCanState } from '../../src/bms/pylon-can/protocol.js';
import { parseConfig } from '../../src/config.js';
import type { CanFrame } from '../../src/links/can/can-frame.js';
import { createLogger } from '../../src/log.js';
import { type Running, startService } from '../../src/main.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { UsbCanADevice } from '../../src/sim/usbcan-device.js';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
import { freePort } from '../support/net.js';
import { closeAllPairs, openPair } from '../support/pty.js';

const BANK = 'com.victronenergy.battery.batterybank_house';
const STALE_AFTER_S = 2;

let daemon: DbusDaemon;
let client: BusClient;
let dir: string;
let running: Running | undefined;
let adapter: UsbCanADevice;
let httpPort: number;
const sims: SimulatorOnPty[] = [];
const logs: string[] = [];

async function items(): Promise<Record<string, unknown>> {
  try {
    const raw = await client.getItems(BANK);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plain(v.Value)]));
  } catch {
    return {};
  }
}

/** What our Pylon reader makes of the frames received since `from` (index into the adapter's list). */
function decoded(from = 0): PylonCanState {
  const state: PylonCanState = {};
  for (const f of adapter.received.slice(from)) {
    if (f.id >= 0x351 && f.id <= 0x35e) applyPylonCan(state, decodePylonCanFrame(f));
  }
  return state;
}

const lastOf = (id: number): CanFrame | undefined => adapter.received.filter((f) => f.id === id).at(-1);

beforeAll(async () => {
  daemon = await startDbusDaemon();
  client = await BusClient.connect(daemon.address);
  dir = mkdtempSync(join(tmpdir(), 'inverter-'));
  httpPort = await freePort();
  let sections = '';
  for (const [i, id] of ['a', 'b'].entries()) {
    const sim = new JbdSimulator({ cells: 16, temperatureSensors: 1, seed: 70 + i });
    sim.setValues({ cells: Array(16).fill(3.3), voltage: 52.8, current: 4, soc: 60, capacityNominal: 100 });
    const pty = await runSimulatorOnPty({ simulator: sim, link: join(dir, `tty-${id}`) });
    sims.push(pty);
    sections +=
      `[battery.${id}]\nprotocol = jbd\nport = ${pty.path}\npoll_interval = 0.3\nreply_timeout = 0.2\n` +
      `stale_after = ${STALE_AFTER_S}\n`;
  }
  const pair = await openPair();
  adapter = new UsbCanADevice(pair.device);
  running = startService({
    config: parseConfig([
      {
        file: 'inverter.ini',
        text:
          `[bank]\nname = house\nbatteries = a, b\ntopology = 2p\n${sections}` +
          `[inverter]\nprotocol = pylon\ncan_port = ${pair.driverPath}\nmax_discharge_current = 90\nwatchdog = 3\n` +
          `[http]\nenabled = true\nlisten = 127.0.0.1:${httpPort}\n`,
      },
    ]),
    logger: createLogger({ level: 'info', write: (l) => logs.push(l) }),
    version: 'test',
    busAddress: daemon.address,
    onFatal: (e) => {
      throw e;
    },
  });
  await eventually(async () => (await items())['/Info/MaxChargeCurrent'] === 100, 15_000);
}, 30_000);

afterAll(async () => {
  await running?.stop();
  for (const s of sims) await s.close();
  await closeAllPairs();
  client?.close();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('[inverter] protocol = pylon over a USB-CAN-A adapter', () => {
  test('the frames carry the bank: the same voltage, SoC and limits as its D-Bus service, DCL capped', async () => {
    const from = adapter.received.length;
    await eventually(() => adapter.received.slice(from).some((f) => f.id === 0x35e), 3000);
    const v = await items();
    const got = decoded(from);
    expect(got.limits?.chargeVoltage).toBeCloseTo(v['/Info/MaxChargeVoltage'] as number, 1);
    expect(got.limits?.chargeCurrent).toBe(v['/Info/MaxChargeCurrent']);
    expect(got.limits?.chargeCurrent).toBe(100);
    expect(v['/Info/MaxDischargeCurrent']).toBe(120);
    expect(got.limits?.dischargeCurrent).toBe(90); // [inverter] max_discharge_current = 90 only lowers
    expect(got.limits?.dischargeVoltage).toBeCloseTo(v['/Info/BatteryLowVoltage'] as number, 1);
    expect(got.soc).toBe(Math.round(v['/Soc'] as number));
    expect(Math.abs((got.voltage as number) - (v['/Dc/0/Voltage'] as number))).toBeLessThan(0.05);
    expect(Math.abs((got.current as number) - (v['/Dc/0/Current'] as number))).toBeLessThan(0.15);
    expect(got.modules).toBe(2);
    expect(got.manufacturer).toBe('PYLON');
    expect(got.requests).toMatchObject({ chargeEnable: true, dischargeEnable: true });
    expect(adapter.speedCode).toBe(0x03); // 500 kbit/s
  });

  test('the bank service shows the inverter; 0x305 from the inverter makes it connected', async () => {
    let v = await items();
    expect(v['/Inverter/Protocol']).toBe('pylon');
    expect(v['/Inverter/Connected']).toBe(0);
    expect(v['/Inverter/LastSeen']).toBeUndefined();
    await adapter.send({ id: 0x305, ext: false, data: new Uint8Array(8) });
    await eventually(async () => (await items())['/Inverter/Connected'] === 1, 3000);
    v = await items();
    expect(v['/Inverter/LastSeen']).toBeGreaterThanOrEqual(0);
    expect(v['/Inverter/LastSeen']).toBeLessThanOrEqual(2);
    const api = (await (await fetch(`http://127.0.0.1:${httpPort}/api/inverter`)).json()) as Record<string, unknown>;
    expect(api).toMatchObject({ protocol: 'pylon', connected: true, source: 'bank house', linkUp: true });
    expect(api.advertised).toMatchObject({ chargeCurrent: 100, dischargeCurrent: 90, chargeEnable: true });
    const health = (await (await fetch(`http://127.0.0.1:${httpPort}/api/health`)).json()) as Record<string, unknown>;
    expect(health.inverter).toMatchObject({ protocol: 'pylon' });
    // Without further keep-alives the inverter counts as gone after the watchdog time (3 s).
    await eventually(async () => (await items())['/Inverter/Connected'] === 0, 6000);
  }, 15_000);

  test('every member unplugged: CCL = DCL = 0 and enables cleared within the stale limit + one period', async () => {
    const t0 = Date.now();
    for (const s of sims) await s.unplug();
    await eventually(() => {
      const l = lastOf(0x351);
      return l !== undefined && decodePylonCanFrame(l).limits?.chargeCurrent === 0;
    }, 8000);
    const elapsed = Date.now() - t0;
    // The rest of that set (frames arrive one by one over the adapter).
    const at = adapter.received.lastIndexOf(lastOf(0x351) as CanFrame);
    await eventually(() => adapter.received.slice(at).some((f) => f.id === 0x35e), 2000);
    // The bank goes stale after max(3 polls, 3 s) capped at stale_after / 2 = 1 s; then at most one 1 s period.
    expect(elapsed).toBeLessThan(1000 + 1000 + 700);
    const last = decodePylonCanFrame(lastOf(0x351) as CanFrame);
    expect(last.limits).toMatchObject({ chargeCurrent: 0, dischargeCurrent: 0 });
    expect(decodePylonCanFrame(lastOf(0x35c) as CanFrame).requests).toMatchObject({
      chargeEnable: false,
      dischargeEnable: false,
    });
    // Whichever notices first: the members' monitors (stale) or the output's own clock (data too old).
    expect(logs.join('\n')).toMatch(/inverter: advertising CCL 0 \((source data stale|last valid data \d+ s old)\)/);
  }, 15_000);
});
