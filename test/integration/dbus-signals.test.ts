/**
 * Which change signals the service sends, through the composition root: a simulated JBD on a pty, a private
 * dbus-daemon, a separate client recording the battery service's BusItem signals for two seconds. By default one
 * ItemsChanged per update and no per-path PropertiesChanged; `[general] dbus_properties_changed = true` adds them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startService } from '../../src/main.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { type AttachableSimulator, runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { BUSITEM, BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'dbus-signals-'));
let daemon: DbusDaemon;
let client: BusClient;
let pty: SimulatorOnPty;

beforeAll(async () => {
  daemon = await startDbusDaemon();
  client = await BusClient.connect(daemon.address);
  pty = await runSimulatorOnPty({
    simulator: new JbdSimulator({ cells: 4, seed: 5 }) as AttachableSimulator,
    link: join(dir, 'bms'),
  });
});

afterAll(async () => {
  await pty?.close();
  client?.close();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function signalsOf(general: string, id: string): Promise<{ items: number; perPath: number }> {
  const text = `[general]\n${general}\n[battery.${id}]\nprotocol = jbd\nport = ${pty.path}\npoll_interval = 0.25\n`;
  const name = `com.victronenergy.battery.batterybank_${id}`;
  const running = startService({
    config: parseConfig([{ file: join(dir, `${id}.ini`), text }]),
    logger: createLogger({ level: 'warn', write: () => undefined }),
    version: 'test',
    busAddress: daemon.address,
    onFatal: (e) => {
      throw e;
    },
  });
  try {
    await eventually(async () => {
      try {
        return plain(await client.getValue(name, '/Connected')) === 1;
      } catch {
        return false;
      }
    }, 10_000);
    await client.addMatch(`type='signal',sender='${name}',interface='${BUSITEM}'`);
    const owner = await client.nameOwner(name);
    const seen = client.record((m) => m.sender === owner && m.interface === BUSITEM);
    await new Promise((r) => setTimeout(r, 2000));
    await client.syncWith(name);
    return {
      items: seen.filter((m) => m.member === 'ItemsChanged').length,
      perPath: seen.filter((m) => m.member === 'PropertiesChanged').length,
    };
  } finally {
    await running.stop();
  }
}

describe('change signals of a running service', () => {
  test('default: ItemsChanged for every update, no PropertiesChanged', async () => {
    const { items, perPath } = await signalsOf('', 'quiet');
    expect(items).toBeGreaterThanOrEqual(4);
    expect(perPath).toBe(0);
  }, 30_000);

  test('dbus_properties_changed = true: PropertiesChanged on the changed leaves too', async () => {
    const { items, perPath } = await signalsOf('dbus_properties_changed = true', 'chatty');
    expect(items).toBeGreaterThanOrEqual(4);
    expect(perPath).toBeGreaterThan(items);
  }, 30_000);
});
