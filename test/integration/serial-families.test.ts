/**
 * Every serial family end to end with real parts: its simulator on a pseudo-terminal pair → the composition
 * root (bus pool, family driver, monitor, policy) → our D-Bus services on a private dbus-daemon, read back by a
 * separate D-Bus client. Also: three packs on one RS485 port with one silenced, and `protocol = auto`.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { type Running, startService } from '../../src/main.js';
import { DalySimulator } from '../../src/sim/daly-simulator.js';
import { JkModbusSimulator } from '../../src/sim/jk-modbus-simulator.js';
import { JkSerialSimulator } from '../../src/sim/jk-serial-simulator.js';
import { type AttachableSimulator, runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { PylonRs485Simulator } from '../../src/sim/pylon-rs485-simulator.js';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';

let daemon: DbusDaemon;
let client: BusClient;
let dir: string;
const ptys: SimulatorOnPty[] = [];
const services: Running[] = [];
const logs: string[] = [];

beforeAll(async () => {
  daemon = await startDbusDaemon();
  client = await BusClient.connect(daemon.address);
  dir = mkdtempSync(join(tmpdir(), 'families-'));
});

afterAll(async () => {
  for (const r of services) await r.stop();
  for (const p of ptys) await p.close();
  client?.close();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(name: string, simulator: AttachableSimulator): Promise<SimulatorOnPty> {
  const pty = await runSimulatorOnPty({ simulator, link: join(dir, name) });
  ptys.push(pty);
  return pty;
}

function run(text: string, extra: { detectCacheFile?: string } = {}): Running {
  const running = startService({
    config: parseConfig([{ file: 'families.ini', text }]),
    logger: createLogger({ level: 'debug', write: (l) => logs.push(l) }),
    version: 'test',
    busAddress: daemon.address,
    ...extra,
    onFatal: (e) => {
      throw e;
    },
  });
  services.push(running);
  return running;
}

async function items(id: string): Promise<Record<string, unknown>> {
  const raw = await client.getItems(`com.victronenergy.battery.batterybank_${id}`);
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plain(v.Value)]));
}

async function online(id: string, timeoutMs = 8000): Promise<Record<string, unknown>> {
  await eventually(async () => {
    try {
      return (await items(id))['/Connected'] === 1;
    } catch {
      return false;
    }
  }, timeoutMs);
  return items(id);
}

const FAST = 'poll_interval = 0.3\nreply_timeout = 0.2\nstale_after = 2\n';

describe('each serial family publishes its simulator’s values on D-Bus', () => {
  test.each([
    {
      family: 'jk-serial',
      make: () => new JkSerialSimulator({ cells: 13, seed: 11 }),
      cells: 13,
      product: 'JK BMS',
    },
    { family: 'daly', make: () => new DalySimulator({ cells: 8, seed: 12 }), cells: 8, product: 'Daly BMS' },
    {
      family: 'seplos',
      make: () => new PylonRs485Simulator({ protocol: 'seplos', packs: [{ address: 0, cells: 16 }], seed: 13 }),
      cells: 16,
      product: 'Seplos BMS',
    },
  ])(
    '$family',
    async ({ family, make, cells, product }) => {
      const sim = make();
      const pty = await serve(`tty-${family}`, sim);
      const id = family.replace('-', '_');
      run(`[battery.${id}]\nprotocol = ${family}\nport = ${pty.path}\n${FAST}`);
      const v = await online(id);
      expect(v['/System/NrOfCellsPerBattery']).toBe(cells);
      expect(v['/ProductName']).toBe(product);
      const simV =
        sim instanceof PylonRs485Simulator
          ? sim.pack(0).values().voltage
          : (sim as unknown as { values(): { voltage: number } }).values().voltage;
      expect(Math.abs((v['/Dc/0/Voltage'] as number) - simV)).toBeLessThan(0.5);
      expect(typeof v['/Soc']).toBe('number');
      expect(v['/Info/MaxChargeCurrent']).toBeGreaterThanOrEqual(0);
      for (let i = 1; i <= cells; i++) expect(typeof v[`/Voltages/Cell${i}`]).toBe('number');
    },
    20_000,
  );
});

describe('three packs on one RS485 port', () => {
  test('JK-PB packs 1, 2, 3 each get a service; silencing pack 2 takes only pack 2 offline', async () => {
    const sim = new JkModbusSimulator({ addresses: [1, 2, 3], cells: 16, seed: 21 });
    const pty = await serve('tty-jkpb', sim);
    const sections = [1, 2, 3]
      .map((a) => `[battery.jkpb${a}]\nprotocol = jk-modbus\nport = ${pty.path}\naddress = ${a}\n${FAST}`)
      .join('');
    run(sections);
    for (const a of [1, 2, 3]) {
      const v = await online(`jkpb${a}`, 10_000);
      expect(v['/Mgmt/Connection']).toBe(`Serial tty-jkpb address ${a}`);
    }
    sim.pack(2).silent = true;
    await eventually(async () => (await items('jkpb2'))['/Connected'] === 0, 6000);
    const [one, two, three] = [await items('jkpb1'), await items('jkpb2'), await items('jkpb3')];
    expect(two['/Info/MaxChargeCurrent']).toBe(0);
    expect(one['/Connected']).toBe(1);
    expect(three['/Connected']).toBe(1);
    // The others keep being polled: their data stays fresh (online, not stale) while pack 2 is silent.
    const health = services.at(-1)?.batteries.map((b) => [b.id, b.monitor.state.health]);
    expect(health).toEqual([
      ['jkpb1', 'online'],
      ['jkpb2', 'offline'],
      ['jkpb3', 'online'],
    ]);
    sim.pack(2).silent = false;
    await online('jkpb2', 10_000);
  }, 40_000);

  test('Pylontech packs at addresses 2, 3, 4 share one port', async () => {
    const sim = new PylonRs485Simulator({
      protocol: 'pylontech',
      packs: [{ address: 2 }, { address: 3 }, { address: 4 }],
      seed: 22,
    });
    const pty = await serve('tty-pylon', sim);
    run(
      [2, 3, 4]
        .map((a) => `[battery.pylon${a}]\nprotocol = pylontech\nport = ${pty.path}\naddress = ${a}\n${FAST}`)
        .join(''),
    );
    for (const a of [2, 3, 4]) {
      const v = await online(`pylon${a}`, 10_000);
      expect(v['/System/NrOfCellsPerBattery']).toBe(15);
      // Pylontech reports its own charge limits (0x92); ours never exceed them.
      expect(v['/Info/MaxChargeCurrent']).toBeLessThanOrEqual(50);
    }
  }, 40_000);
});

describe('protocol = auto', () => {
  test('finds a Daly BMS, publishes it, and writes the port to the detection cache', async () => {
    const sim = new DalySimulator({ cells: 4, seed: 31 });
    const pty = await serve('tty-auto', sim);
    const cacheFile = join(dir, 'autodetect-cache.json');
    run(`[battery.auto]\nprotocol = auto\nport = ${pty.path}\n${FAST}`, { detectCacheFile: cacheFile });
    const v = await online('auto', 12_000);
    expect(v['/ProductName']).toBe('Daly BMS');
    expect(v['/System/NrOfCellsPerBattery']).toBe(4);
    expect(logs.join('\n')).toMatch(/autodetect: daly at 9600 Bd/);
    await eventually(() => existsSync(cacheFile), 3000);
  }, 30_000);
});
