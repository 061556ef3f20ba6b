/**
 * `[general] dbus = false`: a gateway without Venus. No bus is reachable at all here (the address points
 * nowhere), yet the driver runs: the battery is polled, no service is attempted, nothing is fatal.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { type Running, startService } from '../../src/main.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { eventually } from '../support/bus-client.js';

let running: Running | undefined;
let pty: SimulatorOnPty | undefined;
const dir = mkdtempSync(join(tmpdir(), 'no-dbus-'));

afterAll(async () => {
  await running?.stop();
  await pty?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('dbus = false: no service, no bus connection, no fatal error; the battery is polled', async () => {
  const sim = new JbdSimulator({ cells: 4, temperatureSensors: 1, seed: 5 });
  sim.setValues({ cells: [3.3, 3.3, 3.3, 3.3], voltage: 13.2, current: 1, soc: 55, capacityNominal: 100 });
  pty = await runSimulatorOnPty({ simulator: sim, link: join(dir, 'tty') });
  const fatal: Error[] = [];
  const logs: string[] = [];
  running = startService({
    config: parseConfig([
      {
        file: 'gw.ini',
        text: `[general]\ndbus = false\n[battery.house]\nprotocol = jbd\nport = ${pty.path}\npoll_interval = 0.3\n`,
      },
    ]),
    logger: createLogger({ level: 'info', write: (l) => logs.push(l) }),
    version: 'test',
    busAddress: `unix:path=${join(dir, 'no-such-bus')}`,
    onFatal: (e) => fatal.push(e),
  });
  const house = running.batteries[0];
  await eventually(() => house?.monitor.state.health === 'online', 5000);
  // Past FIRST_DATA_WAIT_MS, when a service would have been created (offline or not).
  await new Promise((r) => setTimeout(r, 1800));
  expect(fatal).toEqual([]);
  expect(house?.service).toBeUndefined();
  expect(logs.join('\n')).not.toMatch(/publishing it as offline|cannot publish/);
  expect(house?.monitor.state.snapshot?.soc).toBe(55);
});
