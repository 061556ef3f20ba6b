/**
 * The charge-control policy on the real chain: a simulated JBD on a pty driven through a charge cycle, read
 * back from D-Bus. One cell running high pulls CVL down (over-voltage controller) and derates CCL; balanced
 * cells at max voltage start the absorption timer, then float is reached and CVL ramps down to float voltage.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { type Running, startService } from '../../src/main.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';

const SERVICE = 'com.victronenergy.battery.batterybank_cycle';
let daemon: DbusDaemon;
let client: BusClient;
let dir: string;
let sim: JbdSimulator;
let pty: SimulatorOnPty;
let running: Running;

async function items(): Promise<Record<string, unknown>> {
  const raw = await client.getItems(SERVICE);
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plain(v.Value)]));
}

const cells = (...v: number[]) => ({ cells: v, voltage: Math.round(v.reduce((a, b) => a + b, 0) * 100) / 100 });

beforeAll(async () => {
  daemon = await startDbusDaemon();
  client = await BusClient.connect(daemon.address);
  dir = mkdtempSync(join(tmpdir(), 'cycle-'));
  sim = new JbdSimulator({ cells: 4, temperatureSensors: 1, seed: 5 });
  sim.setValues({ ...cells(3.35, 3.35, 3.35, 3.35), current: 20, soc: 90, temperatures: [25], chargeFet: true });
  pty = await runSimulatorOnPty({ simulator: sim, link: join(dir, 'ttyCycle') });
  const text =
    `[battery.cycle]\nprotocol = jbd\nport = ${pty.path}\npoll_interval = 0.2\nreply_timeout = 0.15\nstale_after = 3\n` +
    'float_after = 2\nfloat_transition_rate = 0.5\ncvl_recovery_hold = 600\n';
  running = startService({
    config: parseConfig([{ file: 'cycle.ini', text }]),
    logger: createLogger({ level: 'warn', write: () => undefined }),
    version: 'test',
    busAddress: daemon.address,
    onFatal: (e) => {
      throw e;
    },
  });
  await eventually(async () => {
    try {
      return (await items())['/Connected'] === 1;
    } catch {
      return false;
    }
  }, 8000);
});

afterAll(async () => {
  await running?.stop();
  await pty?.close();
  client?.close();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('bulk: full CVL (4 × 3.45 V) and full CCL while the cells are low', async () => {
  const v = await items();
  expect(v['/Info/MaxChargeVoltage']).toBeCloseTo(13.8, 3);
  expect(v['/Info/MaxChargeCurrent']).toBe(50);
  expect(v['/Info/ChargeMode']).toMatch(/^Bulk/);
  expect(v['/Info/MaxChargeCellVoltage']).toBeCloseTo(3.45, 3);
});

test('one cell running high pulls CVL down and derates CCL, and says why', async () => {
  sim.setValues(cells(3.41, 3.41, 3.41, 3.48));
  await eventually(async () => ((await items())['/Info/MaxChargeVoltage'] as number) < 13.8 - 0.005, 4000);
  await eventually(async () => ((await items())['/Info/MaxChargeCurrent'] as number) < 50, 4000);
  const v = await items();
  // Penalty sum: Σcells − overshoot of the high cell = 13.71 − 0.03.
  expect(v['/Info/MaxChargeVoltage']).toBeCloseTo(13.68, 2);
  expect(v['/Info/ChargeLimitation']).toMatch(/Cell Voltage|cell voltage/i);
  expect(v['/Info/ChargeMode']).toMatch(/cell OVP/i);
});

test('balanced cells at max voltage absorb, then float is reached and CVL ramps to 4 × 3.375 V', async () => {
  sim.setValues({ ...cells(3.45, 3.451, 3.452, 3.452), current: 2 });
  await eventually(async () => /Absorption|Float/.test(String((await items())['/Info/ChargeMode'])), 6000);
  await eventually(async () => /^Float/.test(String((await items())['/Info/ChargeMode'])), 8000);
  await eventually(async () => Math.abs(((await items())['/Info/MaxChargeVoltage'] as number) - 13.5) < 0.005, 8000);
  expect((await items())['/Info/ChargeMode']).toBe('Float');
}, 30_000);
