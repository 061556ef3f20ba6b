/**
 * `batterybank capture` and `batterybank replay` as a user runs them: the built `dist/cli.js` in child processes
 * (`npm test` builds first), against a JBD simulator on a pty, and `replay --dbus` on a private dbus-daemon read
 * back by a separate D-Bus client.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CaptureSession, readCapture } from '../../src/capture/capture-reader.js';
import { BlueNovaSimulator } from '../../src/sim/bluenova-simulator.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { type AttachableSimulator, runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { BusClient, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI without blocking this process (the simulator answering it lives here). */
function cli(args: string[], onStdoutLine?: (line: string) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) onStdoutLine?.(l);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** GetItems of `svc` every 100 ms until stop(): every answer, as plain values by path. */
function watchService(client: BusClient, svc: string): { stop(): Promise<Record<string, unknown>[]> } {
  const seen: Record<string, unknown>[] = [];
  let polling = true;
  const poll = (async () => {
    while (polling) {
      try {
        const raw = await client.getItems(svc);
        seen.push(Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plain(v.Value)])));
      } catch {
        // not on the bus (yet, or any more)
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      polling = false;
      await poll;
      return seen;
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'capture-cli-'));
const file = join(dir, 'bug-report.jsonl');
let pty: SimulatorOnPty;
let session: CaptureSession;
const SOC = 57;

beforeAll(async () => {
  const sim = new JbdSimulator({ cells: 4, seed: 9 });
  sim.setValues({ soc: SOC });
  pty = await runSimulatorOnPty({ simulator: sim as AttachableSimulator, link: join(dir, 'ttyUSB0') });
});

afterAll(async () => {
  await pty?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('batterybank capture', () => {
  test('runs the real driver for the given seconds and writes a replayable file', async () => {
    const r = await cli([
      'capture',
      '--port',
      pty.path,
      '--protocol',
      'jbd',
      '--seconds',
      '3',
      '--poll-interval',
      '0.3',
      '--out',
      file,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`capturing jbd on ${pty.path} for 3 s to ${file}`);
    const m = /captured (\d+) frames \((\d+) sent, (\d+) received\), (\d+) snapshots, 0 warnings/.exec(r.stdout);
    expect(m).not.toBeNull();
    session = await readCapture([file]);
    expect(Number(m?.[4])).toBe(session.snapshots.length);
    expect(session.snapshots.length).toBeGreaterThanOrEqual(5);
    expect(Number(m?.[1])).toBe(session.frames.length);
    expect(session.snapshots.every((s) => s.snap.soc === SOC)).toBe(true);
  }, 30_000);

  test('a port where nothing answers: exit status 1 and the warnings', async () => {
    const r = await cli([
      'capture',
      '--port',
      join(dir, 'nothing'),
      '--protocol',
      'jbd',
      '--seconds',
      '1',
      '--out',
      join(dir, 'x.jsonl'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/warn: cannot open/);
    expect(r.stdout).toMatch(/captured 0 frames/);
  }, 20_000);

  test('usage errors name what is missing', async () => {
    const r = await cli(['capture', '--protocol', 'jbd']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('capture needs exactly one of --port, --can-port, --can, --mac or --host');
  });
});

describe('batterybank replay', () => {
  test('prints one JSON line per snapshot, the same as recorded', async () => {
    const r = await cli(['replay', file, '--speed', '4']);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { battery: string; time: string; snapshot: { soc: number; cellVoltages: number[] } },
      );
    expect(lines).toHaveLength(session.snapshots.length);
    expect(lines.every((l) => l.battery === 'capture' && l.snapshot.soc === SOC)).toBe(true);
    expect(lines.map((l) => l.snapshot.cellVoltages)).toEqual(session.snapshots.map((s) => s.snap.cellVoltages));
    expect(r.stderr).toContain(`(${session.snapshots.length} recorded, ${session.snapshots.length} the same)`);
  }, 30_000);

  test('unreadable lines are reported and skipped; the rest replays', async () => {
    const damaged = join(dir, 'damaged.jsonl');
    copyFileSync(file, damaged);
    appendFileSync(damaged, 'garbage line\n{"k":"f","t":1,"b":"capture","d":"rx","hex":"dd0');
    const r = await cli(['replay', damaged, '--speed', '4']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('2 unreadable line(s) skipped:');
    expect(r.stderr).toMatch(/damaged\.jsonl:\d+: not a JSON record/);
    expect(r.stdout.trim().split('\n')).toHaveLength(session.snapshots.length);
  }, 30_000);

  test('a missing file or battery fails with a message', async () => {
    const missing = await cli(['replay', join(dir, 'none.jsonl')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ENOENT/);
    const other = await cli(['replay', file, '--battery', 'house']);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('no battery "house" in the capture (it has capture)');
    const usage = await cli(['replay']);
    expect(usage.code).toBe(2);
  }, 20_000);

  describe('--dbus', () => {
    let daemon: DbusDaemon;
    let client: BusClient;
    beforeAll(async () => {
      daemon = await startDbusDaemon();
      client = await BusClient.connect(daemon.address);
    });
    afterAll(async () => {
      client?.close();
      await daemon?.stop();
    });

    test('publishes the capture as the live service: the recorded values on D-Bus while it plays', async () => {
      const svc = 'com.victronenergy.battery.batterybank_capture';
      const watch = watchService(client, svc);
      const printed: string[] = [];
      const r = await cli(['replay', file, '--dbus', '--bus', daemon.address, '--speed', '1'], (l) => printed.push(l));
      const seen = await watch.stop();
      expect(r.code, r.stderr).toBe(0);
      const connected = seen.filter((v) => v['/Connected'] === 1);
      expect(connected.length).toBeGreaterThanOrEqual(3);
      const last = session.snapshots.at(-1)?.snap;
      expect(connected.every((v) => v['/Soc'] === SOC)).toBe(true);
      expect(connected.at(-1)?.['/System/NrOfCellsPerBattery']).toBe(4);
      const volts = session.snapshots.map((s) => s.snap.voltage as number);
      for (const v of connected) {
        const published = v['/Dc/0/Voltage'] as number;
        expect(volts.some((x) => Math.abs(x - published) < 0.011)).toBe(true);
      }
      expect(last).toBeDefined();
      // The charge control ran on the replayed data: DVCC limits are published.
      expect(connected.at(-1)?.['/Info/MaxChargeVoltage']).toBeGreaterThan(0);
      expect(printed.length).toBeGreaterThanOrEqual(session.snapshots.length - 1);
      expect(JSON.parse(printed[0] as string)).toMatchObject({ battery: 'capture', health: 'online' });
      // After the replay the service is gone (a clean disconnect).
      await expect(client.getItems(svc)).rejects.toThrow();
      expect(readFileSync(file, 'utf8')).toContain('"k":"h"');
    }, 40_000);
  });
});

describe('a BlueNova console (websocket)', () => {
  let daemon: DbusDaemon;
  let client: BusClient;
  const sim = new BlueNovaSimulator({ cycleMs: 200, units: [{ soc: 63, mcuId: 0xbeef01 }] });
  beforeAll(async () => {
    await sim.start();
    daemon = await startDbusDaemon();
    client = await BusClient.connect(daemon.address);
  });
  afterAll(async () => {
    client?.close();
    await daemon?.stop();
    await sim.close();
  });

  test('capture --host records the console lines; replay --dbus publishes them as the live service', async () => {
    const out = join(dir, 'bluenova.jsonl');
    const cap = await cli(['capture', '--host', sim.url(0), '--protocol', 'bluenova', '--seconds', '2', '--out', out]);
    expect(cap.stderr).toBe('');
    expect(cap.code).toBe(0);
    const recorded = await readCapture([out]);
    expect(recorded.headers[0]?.link.kind).toBe('ws');
    expect(recorded.snapshots.length).toBeGreaterThanOrEqual(4);
    expect(recorded.snapshots.every((s) => s.snap.soc === 63)).toBe(true);

    const svc = 'com.victronenergy.battery.batterybank_capture';
    const watch = watchService(client, svc);
    const r = await cli(['replay', out, '--dbus', '--bus', daemon.address, '--speed', '1']);
    const seen = await watch.stop();
    expect(r.code, r.stderr).toBe(0);
    const connected = seen.filter((v) => v['/Connected'] === 1);
    expect(connected.length).toBeGreaterThanOrEqual(2);
    expect(connected.every((v) => v['/Soc'] === 63)).toBe(true);
    // The family's own paths come from the replayed console lines too.
    expect(connected.at(-1)?.['/BlueNova/McuId']).toMatch(/beef01/i);
  }, 40_000);
});
