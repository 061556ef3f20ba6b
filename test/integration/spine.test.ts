/**
 * The spine end to end, with real parts only: a simulated JBD BMS on a pseudo-terminal pair → our serial
 * link and JBD driver → battery monitor and policy → our D-Bus service on a private dbus-daemon, read back by
 * a separate D-Bus connection that knows nothing of our code.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as dbus from 'dbus-next';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { type Running, startService } from '../../src/main.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { BUSITEM, BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';

const SERVICE = 'com.victronenergy.battery.batterybank_itest';
const STALE_AFTER_S = 2;

const HELD = {
  voltage: 26.4,
  current: -12.5,
  capacityRemaining: 61.2,
  capacityNominal: 100,
  soc: 61,
  cycles: 42,
  cells: [3.301, 3.302, 3.299, 3.304, 3.298, 3.3, 3.297, 3.299],
  temperatures: [21.5, 23.1],
  balanceBits: 0b1000,
  protectionBits: 0,
  chargeFet: true,
  dischargeFet: true,
};

let daemon: DbusDaemon;
let client: BusClient;
let dir: string;
let sim: JbdSimulator;
let pty: SimulatorOnPty;
let running: Running;
let itemsChanged: dbus.Message[];
const logLines: string[] = [];

async function items(): Promise<Record<string, unknown>> {
  const raw = await client.getItems(SERVICE);
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plain(v.Value)]));
}

beforeAll(async () => {
  daemon = await startDbusDaemon();
  client = await BusClient.connect(daemon.address);
  await client.addMatch(`type='signal',interface='${BUSITEM}',member='ItemsChanged',path='/'`);
  itemsChanged = client.record((m) => m.member === 'ItemsChanged');
  dir = mkdtempSync(join(tmpdir(), 'spine-'));
  sim = new JbdSimulator({ cells: 8, temperatureSensors: 2, seed: 7 });
  sim.setValues(HELD);
  pty = await runSimulatorOnPty({ simulator: sim, link: join(dir, 'ttyBMS') });
  const config = parseConfig([
    {
      file: 'itest.ini',
      text:
        `[battery.itest]\nprotocol = jbd\nport = ${pty.path}\npoll_interval = 0.2\nreply_timeout = 0.15\nstale_after = ${STALE_AFTER_S}\n` +
        // Recovery after a 0 is held 30 s and ramped by default (unit-tested); here 1 s and at once, to stay fast.
        'ccl_recovery_hold = 1\nccl_recovery_rate = 0\ndcl_recovery_hold = 1\ndcl_recovery_rate = 0\n',
    },
  ]);
  running = startService({
    config,
    logger: createLogger({ level: 'debug', write: (l) => logLines.push(l) }),
    version: 'test',
    busAddress: daemon.address,
    stateFile: join(dir, 'state.json'),
    onFatal: (e) => {
      throw e;
    },
  });
  await eventually(async () => (await client.nameOwner(SERVICE)) !== undefined, 5000);
});

afterAll(async () => {
  await running?.stop();
  await pty?.close();
  client?.close();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('simulated JBD on a pty → driver → D-Bus', () => {
  test('GetItems shows exactly the values the simulated BMS reports', async () => {
    await eventually(async () => (await items())['/Connected'] === 1, 5000);
    const v = await items();
    expect(v['/Dc/0/Voltage']).toBe(26.4);
    expect(v['/Dc/0/Current']).toBe(-12.5);
    expect(v['/Dc/0/Power']).toBeCloseTo(-330, 5);
    expect(v['/Soc']).toBe(61);
    expect(v['/Capacity']).toBe(61.2);
    expect(v['/InstalledCapacity']).toBe(100);
    expect(v['/ConsumedAmphours']).toBeCloseTo(-38.8, 5);
    expect(v['/History/ChargeCycles']).toBe(42);
    expect(v['/System/NrOfCellsPerBattery']).toBe(8);
    for (const [i, c] of HELD.cells.entries()) expect(v[`/Voltages/Cell${i + 1}`]).toBe(c);
    expect(v['/System/MinCellVoltage']).toBe(3.297);
    expect(v['/System/MaxCellVoltage']).toBe(3.304);
    expect(v['/System/MinVoltageCellId']).toBe('C7');
    expect(v['/System/MaxVoltageCellId']).toBe('C4');
    expect(v['/Voltages/Diff']).toBeCloseTo(0.007, 6);
    expect(v['/Balances/Cell4']).toBe(1);
    expect(v['/Balances/Cell1']).toBe(0);
    expect(v['/Balancing']).toBe(1);
    expect(v['/Info/MaxChargeVoltage']).toBeCloseTo(27.6, 6);
    expect(v['/Info/BatteryLowVoltage']).toBeCloseTo(23.2, 6);
    expect(v['/Info/MaxChargeCurrent']).toBe(50);
    expect(v['/Info/MaxDischargeCurrent']).toBe(60);
    expect(v['/Alarms/BmsCable']).toBe(0);
    expect(v['/ProductId']).toBe(0xba6b);
    expect(v['/ProductName']).toBe('JBD BMS');
    expect(v['/Mgmt/Connection']).toBe('Serial ttyBMS');
    expect(v['/HardwareVersion']).toBe(sim.values().model);
    expect(typeof v['/DeviceInstance']).toBe('number');
  });

  test('ItemsChanged on / carries a changed value within a poll or two', async () => {
    const before = itemsChanged.length;
    sim.setValues({ soc: 58, current: -20 });
    await eventually(async () => (await items())['/Soc'] === 58, 3000);
    await client.syncWith(SERVICE);
    const after = itemsChanged.slice(before);
    const changed = after.flatMap((m) => Object.keys(m.body[0] as object));
    expect(changed).toContain('/Soc');
    expect(changed).toContain('/Dc/0/Current');
    // Only changed paths travel: unchanged identity never reappears.
    expect(changed).not.toContain('/ProductName');
  });

  test('a cell reaching cell_ovp_voltage sets CCL to 0 on the bus and names the reason', async () => {
    sim.setValues({ cells: [...HELD.cells.slice(0, 7), 3.61] });
    await eventually(async () => (await items())['/Info/MaxChargeCurrent'] === 0, 3000);
    const v = await items();
    expect(v['/Info/MaxDischargeCurrent']).toBe(60);
    expect(v['/Info/ChargeLimitation']).toMatch(/cell over-voltage/);
    expect(v['/Alarms/HighCellVoltage']).toBe(2);
    sim.setValues({ cells: HELD.cells });
    await eventually(async () => (await items())['/Info/MaxChargeCurrent'] === 50, 3000);
  });

  test('a silent BMS goes offline with zero limits within stale_after + 2 s and comes back by itself', async () => {
    sim.silent = true;
    const t0 = Date.now();
    await eventually(async () => (await items())['/Connected'] === 0, (STALE_AFTER_S + 2) * 1000);
    const v = await items();
    expect(Date.now() - t0).toBeLessThanOrEqual((STALE_AFTER_S + 2) * 1000);
    expect(v['/Info/MaxChargeCurrent']).toBe(0);
    expect(v['/Info/MaxDischargeCurrent']).toBe(0);
    expect(v['/Alarms/BmsCable']).toBe(2);
    expect(v['/Dc/0/Voltage']).toBeUndefined();
    expect(v['/Soc']).toBeUndefined();
    sim.silent = false;
    await eventually(async () => (await items())['/Connected'] === 1, 8000);
    // Limits come back only after the recovery hold: never straight from a dead link to full current.
    await eventually(async () => (await items())['/Info/MaxChargeCurrent'] === 50, 5000);
  });

  test('unplugging the adapter (pty destroyed) goes offline; plugging it back brings the battery online', async () => {
    await pty.unplug();
    const t0 = Date.now();
    await eventually(async () => (await items())['/Connected'] === 0, (STALE_AFTER_S + 2) * 1000);
    expect(Date.now() - t0).toBeLessThanOrEqual((STALE_AFTER_S + 2) * 1000);
    const v = await items();
    expect(v['/Info/MaxChargeCurrent']).toBe(0);
    expect(v['/Info/MaxDischargeCurrent']).toBe(0);
    expect(v['/Alarms/BmsCable']).toBe(2);
    await pty.replug();
    await eventually(async () => (await items())['/Connected'] === 1, 15_000);
    expect((await items())['/Dc/0/Voltage']).toBe(26.4);
  }, 30_000);

  test('no value on the bus is ever NaN', async () => {
    const raw = await client.getItems(SERVICE);
    for (const [path, item] of Object.entries(raw)) {
      const v = item.Value.value as unknown;
      if (typeof v === 'number') expect(Number.isFinite(v), path).toBe(true);
    }
  });

  test('the log tells the story in one line per event', () => {
    const text = logLines.join('\n');
    expect(text).toMatch(/battery is online/);
    expect(text).toMatch(/battery is offline/);
    expect(text).toMatch(/published com\.victronenergy\.battery\.batterybank_itest/);
  });
});

describe('the state file', () => {
  test('remembers the cell count for the next start', async () => {
    const { readFileSync } = await import('node:fs');
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'))).toMatchObject({ 'itest.cellCount': 8 });
  });
});

describe('config file written by a user', () => {
  test('is accepted from disk by loadConfig', async () => {
    const { loadConfig } = await import('../../src/config.js');
    const f = join(dir, 'user.ini');
    writeFileSync(f, `[battery.itest]\nprotocol = jbd\nport = ${pty.path}\n`);
    expect(loadConfig(f).batteries[0]?.port).toBe(pty.path);
  });
});
