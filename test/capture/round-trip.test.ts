/**
 * Capture → replay round trips through real parts: a family simulator on a real pty (serial), a Pylon CAN battery
 * behind the simulated USB-CAN-A adapter on a pty (CAN through a real serialport link). The live driver runs with
 * the capture tap; the file is read back and replayed through the same family drivers on replay links; the
 * replayed snapshots must equal the live ones, in order, timestamps aside.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { BlueNovaSimulator } from '../../src/sim/bluenova-simulator.js';
import { CanSimulator } from '../../src/sim/can-simulators.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { JkModbusSimulator } from '../../src/sim/jk-modbus-simulator.js';
import { type AttachableSimulator, runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { UsbCanADevice } from '../../src/sim/usbcan-device.js';
import { closeAllPairs, openPair, waitFor } from '../support/pty.js';
import { captureLive, expectSameOnReplay, norm } from './capture-rig.js';

const dir = mkdtempSync(join(tmpdir(), 'round-trip-'));
const ptys: SimulatorOnPty[] = [];
afterEach(async () => {
  for (const p of ptys.splice(0)) await p.close();
  await closeAllPairs();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('serial', () => {
  test('JBD on a pty: capture → replay gives the same snapshots, every request answered from the file', async () => {
    const sim = new JbdSimulator({ cells: 8, temperatureSensors: 2, seed: 11 });
    const pty = await runSimulatorOnPty({ simulator: sim as AttachableSimulator, link: join(dir, 'jbd') });
    ptys.push(pty);
    const text = `[battery.house]\nprotocol = jbd\nport = ${pty.path}\npoll_interval = 0.25\nreply_timeout = 0.2\n`;
    const { live, session } = await captureLive(dir, 'jbd', text, 6);
    expect(session.headers).toMatchObject([{ battery: 'house', family: 'jbd', link: { kind: 'serial' } }]);
    // Frames: requests and replies, each reply keyed by its request and summarised by the decoder.
    const rx = session.frames.filter((f) => f.dir === 'rx');
    expect(rx.length).toBeGreaterThanOrEqual(12);
    expect(rx.every((f) => f.req !== undefined)).toBe(true);
    const { stats, realMs, recordedMs } = await expectSameOnReplay(live, session, 4);
    expect(stats.matched).toBe(session.frames.filter((f) => f.dir === 'tx').length);
    // At speed 4 the replay takes a fraction of the recording.
    expect(realMs).toBeLessThan(recordedMs);
  }, 40_000);

  test('two JK-PB packs on one RS485 port: both replay from one shared port, each to its own snapshots', async () => {
    const sim = new JkModbusSimulator({ addresses: [1, 2], cells: 16, seed: 5 });
    const pty = await runSimulatorOnPty({ simulator: sim as AttachableSimulator, link: join(dir, 'jkpb') });
    ptys.push(pty);
    const text =
      `[battery.p1]\nprotocol = jk-modbus\nport = ${pty.path}\naddress = 1\npoll_interval = 0.4\nreply_timeout = 0.3\n` +
      `[battery.p2]\nprotocol = jk-modbus\nport = ${pty.path}\naddress = 2\npoll_interval = 0.4\nreply_timeout = 0.3\n`;
    const { live, session } = await captureLive(dir, 'jkpb', text, 4);
    expect(session.headers.map((h) => [h.battery, h.config.address])).toEqual([
      ['p1', 1],
      ['p2', 2],
    ]);
    expect(norm(live.get('p1') ?? [])).not.toEqual(norm(live.get('p2') ?? []));
    await expectSameOnReplay(live, session, 2);
  }, 40_000);
});

describe('CAN', () => {
  test('a Pylon CAN battery behind a USB-CAN-A adapter on a pty: the bus traffic replays to the same snapshots', async () => {
    const pair = await openPair();
    const device = new UsbCanADevice(pair.device);
    const sim = new CanSimulator(device, { family: 'pylon-can', periodMs: 150 });
    const text = `[battery.rack]\nprotocol = pylon-can\ncan_port = ${pair.driverPath}\n`;
    try {
      // Long enough for the driver's keep-alive (every second) to be captured too.
      const { live, session } = await captureLive(dir, 'pylon', text, 10, () => {
        void waitFor(() => device.speedCode !== undefined, 5000, 'adapter set-up').then(() => sim.start());
      });
      const rx = session.frames.filter((f) => f.dir === 'rx');
      const tx = session.frames.filter((f) => f.dir === 'tx');
      expect(rx.every((f) => f.can !== undefined && !f.can.ext)).toBe(true);
      expect(new Set(rx.map((f) => f.can?.id))).toContain(0x356);
      // The inverter keep-alive 0x305 the driver sent is in the capture too.
      expect(tx.some((f) => f.can?.id === 0x305)).toBe(true);
      const { stats } = await expectSameOnReplay(live, session, 3);
      expect(stats.delivered).toBe(rx.length);
    } finally {
      sim.stop();
    }
  }, 40_000);
});

describe('websocket', () => {
  test('a BlueNova console over a real websocket: the recorded lines replay to the same snapshots', async () => {
    const sim = new BlueNovaSimulator({ cycleMs: 150 });
    const [url] = await sim.start();
    try {
      const text = `[battery.nova]\nprotocol = bluenova\nhost = ${url}\n`;
      const { live, session } = await captureLive(dir, 'bluenova', text, 5);
      expect(session.headers).toMatchObject([{ battery: 'nova', family: 'bluenova', link: { kind: 'ws' } }]);
      const rx = session.frames.filter((f) => f.dir === 'rx');
      // Console lines, one frame per websocket message: every cycle has a pack voltage line.
      const lines = rx.map((f) => new TextDecoder().decode(f.bytes));
      expect(lines.filter((l) => l.startsWith('Vpack: ')).length).toBeGreaterThanOrEqual(5);
      const { stats } = await expectSameOnReplay(live, session, 2);
      expect(stats.delivered).toBe(rx.length);
    } finally {
      await sim.close();
    }
  }, 40_000);
});
