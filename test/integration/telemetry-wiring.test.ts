/**
 * The telemetry sinks as the composition root wires them: a simulated JBD on a pty → driver → monitor →
 * HTTP API (enabled in the config), read with fetch. The sinks' own behaviour is tested in test/publishers.
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
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';

let daemon: DbusDaemon | undefined;
let pty: SimulatorOnPty | undefined;
let running: Running | undefined;
const dir = mkdtempSync(join(tmpdir(), 'telemetry-'));

afterAll(async () => {
  await running?.stop();
  await pty?.close();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('with [http] enabled the battery appears on /api/batteries with the values the BMS reports', async () => {
  daemon = await startDbusDaemon();
  const sim = new JbdSimulator({ cells: 4, seed: 9 });
  sim.setValues({ soc: 77 });
  pty = await runSimulatorOnPty({ simulator: sim, link: join(dir, 'ttyT') });
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const text = `[battery.tele]\nprotocol = jbd\nport = ${pty.path}\npoll_interval = 0.3\n[http]\nenabled = true\nlisten = 127.0.0.1:${port}\n`;
  running = startService({
    config: parseConfig([{ file: 'tele.ini', text }]),
    logger: createLogger({ level: 'warn', write: () => undefined }),
    version: 'test',
    busAddress: daemon.address,
    onFatal: (e) => {
      throw e;
    },
  });
  let body: unknown;
  await eventually(async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/api/batteries`);
      body = await r.json();
      return JSON.stringify(body).includes('"soc":77');
    } catch {
      return false;
    }
  }, 8000);
  expect(JSON.stringify(body)).toContain('tele');
  // The driver's raw frames reach the API: the last 0x03 reply, as hex, starting DD 03 00.
  const frames = JSON.stringify(await (await fetch(`http://127.0.0.1:${port}/api/batteries/tele/frames`)).json());
  expect(frames).toMatch(/DD 03 00/);
  expect(frames).toMatch(/DD A5 04 00 FF FC 77/);
}, 20_000);
