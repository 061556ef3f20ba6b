/**
 * The virtual bank on the real chain: four simulated JBD on four pseudo-terminals as 2s2p → four member
 * services (their /Info/* invalid) and one bank service on a private dbus-daemon. Unplugging one member
 * shrinks the bank's limits to the other string within stale_after + 2 s and keeps the bank up; plugging it
 * back restores them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { type Running, startService } from '../../src/main.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';

const STALE_AFTER_S = 2;
const BANK = 'com.victronenergy.battery.batterybank_house';
const member = (id: string) => `com.victronenergy.battery.batterybank_${id}`;

let daemon: DbusDaemon;
let client: BusClient;
let dir: string;
const ptys = new Map<string, SimulatorOnPty>();
let running: Running;
const logs: string[] = [];

async function items(service: string): Promise<Record<string, unknown>> {
  const raw = await client.getItems(service);
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plain(v.Value)]));
}

async function value(service: string, path: string): Promise<unknown> {
  try {
    return (await items(service))[path];
  } catch {
    return undefined;
  }
}

beforeAll(async () => {
  daemon = await startDbusDaemon();
  client = await BusClient.connect(daemon.address);
  dir = mkdtempSync(join(tmpdir(), 'bank-'));
  let sections = '';
  for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) {
    const sim = new JbdSimulator({ cells: 4, temperatureSensors: 1, seed: 40 + i });
    sim.setValues({ cells: [3.3, 3.3, 3.3, 3.3], voltage: 13.2, current: 2, soc: 60, capacityNominal: 100 });
    const pty = await runSimulatorOnPty({ simulator: sim, link: join(dir, `tty-${id}`) });
    ptys.set(id, pty);
    sections +=
      `[battery.${id}]\nprotocol = jbd\nport = ${pty.path}\npoll_interval = 0.3\nreply_timeout = 0.2\n` +
      `stale_after = ${STALE_AFTER_S}\nccl_recovery_hold = 1\nccl_recovery_rate = 0\ndcl_recovery_hold = 1\ndcl_recovery_rate = 0\n`;
  }
  running = startService({
    config: parseConfig([
      { file: 'bank.ini', text: `[bank]\nname = house\nbatteries = a, b, c, d\ntopology = 2s2p\n${sections}` },
    ]),
    logger: createLogger({ level: 'info', write: (l) => logs.push(l) }),
    version: 'test',
    busAddress: daemon.address,
    onFatal: (e) => {
      throw e;
    },
  });
  await eventually(async () => (await value(BANK, '/Info/MaxChargeCurrent')) === 100, 10_000);
}, 30_000);

afterAll(async () => {
  await running?.stop();
  for (const p of ptys.values()) await p.close();
  client?.close();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('2s2p bank of four JBD', () => {
  test('the bank is one battery: voltage of a string, current and capacity of both, cells of all four', async () => {
    const v = await items(BANK);
    expect(v['/Connected']).toBe(1);
    expect(v['/Dc/0/Voltage']).toBeCloseTo(26.4, 2);
    expect(v['/Dc/0/Current']).toBeCloseTo(4, 3);
    expect(v['/InstalledCapacity']).toBe(200);
    expect(v['/Info/MaxChargeVoltage']).toBeCloseTo(27.6, 3);
    expect(v['/Info/MaxChargeCurrent']).toBe(100);
    expect(v['/Info/MaxDischargeCurrent']).toBe(120);
    expect(v['/System/NrOfBatteries']).toBe(4);
    expect(v['/System/BatteriesSeries']).toBe(2);
    expect(v['/System/BatteriesParallel']).toBe(2);
    expect(v['/System/NrOfModulesOnline']).toBe(4);
    for (let i = 1; i <= 16; i++) expect(v[`/Voltages/Cell${i}`]).toBe(3.3);
    expect(v['/Voltages/c/Cell2']).toBe(3.3);
    expect(v['/Batteries/b/Connected']).toBe(1);
  });

  test('members are published too, with /Info/* invalid so DVCC takes the bank as its BMS', async () => {
    const a = await items(member('a'));
    expect(a['/Connected']).toBe(1);
    expect(a['/Dc/0/Voltage']).toBe(13.2);
    expect(a['/Info/MaxChargeVoltage']).toBeUndefined();
    expect(a['/Info/MaxChargeCurrent']).toBeUndefined();
  });

  test('one member unplugged: the bank stays, its limits shrink to one string within stale_after + 2 s', async () => {
    const t0 = Date.now();
    await ptys.get('c')?.unplug();
    await eventually(
      async () => (await value(BANK, '/Info/MaxChargeCurrent')) === 50,
      (STALE_AFTER_S + 2) * 1000 + 1500,
    );
    expect(Date.now() - t0).toBeLessThanOrEqual((STALE_AFTER_S + 2) * 1000 + 1500);
    const v = await items(BANK);
    expect(v['/Connected']).toBe(1);
    expect(v['/Info/MaxDischargeCurrent']).toBe(60);
    expect(v['/Alarms/BmsCable']).toBe(1);
    expect(v['/System/NrOfModulesOffline']).toBe(1);
    expect(v['/Batteries/c/Connected']).toBe(0);
    expect(await value(member('c'), '/Connected')).toBe(0);
  }, 20_000);

  test('plugged back in: the bank limits recover by themselves', async () => {
    await ptys.get('c')?.replug();
    await eventually(async () => (await value(BANK, '/Info/MaxChargeCurrent')) === 100, 15_000);
    expect(await value(BANK, '/System/NrOfModulesOnline')).toBe(4);
    expect(logs.join('\n')).toMatch(/published bank com\.victronenergy\.battery\.batterybank_house \(2s2p/);
  }, 20_000);
});
