/**
 * `capture = true` from the INI to the file: the config keys (global and per battery, errors naming file, section,
 * key and value), and the composition root writing the capture of a JBD simulator on a pty while it publishes the
 * battery on a private D-Bus — a file that replays to the snapshots it recorded.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CAPTURE_FILE_NAME } from '../../src/capture/capture-file.js';
import { readCapture } from '../../src/capture/capture-reader.js';
import { compareSnapshots, replaySnapshots } from '../../src/capture/replay.js';
import { replayCommand } from '../../src/capture/replay-command.js';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startService } from '../../src/main.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { type AttachableSimulator, runSimulatorOnPty } from '../../src/sim/pty.js';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { startDbusDaemon } from '../support/dbus-daemon.js';

const defaults = {
  file: 'config.default.ini',
  text: readFileSync(new URL('../../config.default.ini', import.meta.url), 'utf8'),
};
const user = (text: string) => parseConfig([defaults, { file: '/etc/bb/config.ini', text }]);
const a = '[battery.a]\nprotocol = jbd\nport = /dev/ttyUSB0\n';
const b = '[battery.b]\nprotocol = jbd\nport = /dev/ttyUSB1\n';

describe('capture keys', () => {
  test('off by default: no capture settings and no battery captures', () => {
    const c = user(a + b);
    expect(c.general.capture).toBeUndefined();
    expect(c.batteries.map((x) => x.capture)).toEqual([undefined, undefined]);
  });

  test('[general] capture = true captures every battery; a battery can opt out', () => {
    const c = user(`[general]\ncapture = true\n${a}${b}capture = false\n`);
    expect(c.batteries.map((x) => x.capture)).toEqual([true, undefined]);
    expect(c.general.capture).toEqual({ dir: undefined, maxBytes: 5_000_000, files: 3 });
  });

  test('a battery alone can capture; capture_dir is relative to the file naming it, caps are read', () => {
    const c = user(
      `[general]\ncapture_dir = caps\ncapture_max_bytes = 200000\ncapture_files = 5\n${a}capture = yes\n${b}`,
    );
    expect(c.batteries.map((x) => x.capture)).toEqual([true, undefined]);
    expect(c.general.capture).toEqual({ dir: '/etc/bb/caps', maxBytes: 200_000, files: 5 });
  });

  test.each([
    {
      case: 'not a boolean',
      text: `${a}capture = maybe\n`,
      msg: '[battery.a] capture = "maybe": expected true or false',
    },
    {
      case: 'global not a boolean',
      text: `[general]\ncapture = 2\n${a}`,
      msg: '[general] capture = "2": expected true or false',
    },
    {
      case: 'file size too small',
      text: `[general]\ncapture_max_bytes = 12\n${a}`,
      msg: '[general] capture_max_bytes = "12": expected a file size in bytes',
    },
    {
      case: 'no files kept',
      text: `[general]\ncapture_files = 0\n${a}`,
      msg: '[general] capture_files = "0": expected the number of files kept',
    },
  ])('$case', ({ text, msg }) => {
    expect(() => user(text)).toThrow(`/etc/bb/config.ini: ${msg}`);
  });
});

/** The service on a private bus from an INI text, quiet, failing the test on a fatal error. */
function serviceOptions(file: string, text: string, busAddress: string): Parameters<typeof startService>[0] {
  return {
    config: parseConfig([{ file, text }]),
    logger: createLogger({ level: 'warn', write: () => undefined }),
    version: 'test',
    busAddress,
    onFatal: (e) => {
      throw e;
    },
  };
}

/** Resolves once `path` of `service` reads `want` (10 s at most). */
async function valueIs(client: BusClient, service: string, path: string, want: unknown): Promise<void> {
  await eventually(async () => {
    try {
      return plain(await client.getValue(service, path)) === want;
    } catch {
      return false;
    }
  }, 10_000);
}

describe('composition root', () => {
  const dir = mkdtempSync(join(tmpdir(), 'capture-root-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('capture = true writes the battery’s frames, snapshots and events while the service publishes it', async () => {
    const daemon = await startDbusDaemon();
    const client = await BusClient.connect(daemon.address);
    const sim = new JbdSimulator({ cells: 4, seed: 3 });
    sim.setValues({ soc: 71 });
    const pty = await runSimulatorOnPty({ simulator: sim as AttachableSimulator, link: join(dir, 'bms') });
    const capDir = join(dir, 'captures');
    const text = `[general]\ncapture = true\ncapture_dir = ${capDir}\n[battery.house]\nprotocol = jbd\nport = ${pty.path}\npoll_interval = 0.3\nreply_timeout = 0.2\n`;
    const running = startService(serviceOptions(join(dir, 'config.ini'), text, daemon.address));
    try {
      await valueIs(client, 'com.victronenergy.battery.batterybank_house', '/Soc', 71);
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      await running.stop();
      await pty.close();
      client.close();
      await daemon.stop();
    }
    const file = join(capDir, CAPTURE_FILE_NAME);
    expect(existsSync(file)).toBe(true);
    const session = await readCapture([file]);
    expect(session.badLines).toBe(0);
    expect(session.headers).toHaveLength(1);
    const h = session.headers[0];
    expect(h).toMatchObject({ battery: 'house', family: 'jbd', version: 'test', productId: 0xba6b });
    expect(h?.link).toEqual({ kind: 'serial', description: 'Serial bms' });
    expect(h?.config).toMatchObject({
      id: 'house',
      protocol: 'jbd',
      port: pty.path,
      baudRate: 9600,
      pollIntervalMs: 300,
    });
    expect(session.frames.filter((f) => f.dir === 'tx').length).toBeGreaterThanOrEqual(4);
    // Each reply carries the decoder's summary.
    const raw = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"d":"rx"'))
      .map((l) => JSON.parse(l) as { sum?: Record<string, unknown> });
    expect(raw.some((r) => r.sum?.register === '0x03' && r.sum.soc === 71)).toBe(true);
    expect(raw.some((r) => r.sum?.register === '0x04' && r.sum.cells === 4)).toBe(true);
    expect(session.snapshots.length).toBeGreaterThanOrEqual(2);
    expect(session.snapshots.every((s) => s.snap.soc === 71)).toBe(true);
    // What the service wrote replays to what it recorded.
    const { snapshots } = await replaySnapshots(session, { speed: 3 });
    const cmp = compareSnapshots(session.snapshots, snapshots);
    expect(cmp.replayed).toBe(cmp.recorded);
    expect(cmp.same).toBe(cmp.recorded);
  }, 30_000);

  test('a bank: the headers carry the [bank]; replay --dbus publishes the bank from its replayed members', async () => {
    const daemon = await startDbusDaemon();
    const client = await BusClient.connect(daemon.address);
    const ptys = await Promise.all(
      [61, 62].map(async (soc, i) => {
        const sim = new JbdSimulator({ cells: 4, seed: 20 + i });
        sim.setValues({ soc });
        return runSimulatorOnPty({ simulator: sim as AttachableSimulator, link: join(dir, `bank${i}`) });
      }),
    );
    const capDir = join(dir, 'bank-captures');
    const battery = (id: string, port: string) =>
      `[battery.${id}]\nprotocol = jbd\nport = ${port}\npoll_interval = 0.3\nreply_timeout = 0.2\n`;
    const text =
      `[general]\ncapture = true\ncapture_dir = ${capDir}\n` +
      battery('a', ptys[0]?.path ?? '') +
      battery('b', ptys[1]?.path ?? '') +
      '[bank]\nname = house\nbatteries = a, b\ntopology = 2p\n';
    const bankSvc = 'com.victronenergy.battery.batterybank_house';
    const quiet = createLogger({ level: 'warn', write: () => undefined });
    const running = startService(serviceOptions(join(dir, 'bank.ini'), text, daemon.address));
    try {
      await valueIs(client, bankSvc, '/System/NrOfBatteries', 2);
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      await running.stop();
      for (const p of ptys) await p.close();
    }
    const file = join(capDir, CAPTURE_FILE_NAME);
    const session = await readCapture([file]);
    expect(session.headers.map((h) => [h.battery, h.bank?.id, h.bank?.topology.label])).toEqual([
      ['a', 'house', '1s2p'],
      ['b', 'house', '1s2p'],
    ]);

    const seen: number[] = [];
    const notes: string[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        try {
          seen.push(plain(await client.getValue(bankSvc, '/System/NrOfBatteries')) as number);
        } catch {
          // not (yet) on the bus
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const replay = (battery?: string) =>
      replayCommand({
        files: [file],
        speed: 2,
        battery,
        dbus: true,
        busAddress: daemon.address,
        hold: false,
        version: 'test',
        logger: quiet,
        out: () => undefined,
        err: (l) => notes.push(l),
      });
    try {
      expect(await replay()).toBe(0);
      watching = false;
      await watch;
      // The bank service was back on the bus with both members while the capture played.
      expect(seen).toContain(2);
      expect(notes).toContain('bank house (1s2p) is published from its members');
      // One member alone cannot make the bank: it is said, not published.
      expect(await replay('a')).toBe(0);
      expect(notes).toContain('bank house is not published: not all of its members are replayed');
    } finally {
      watching = false;
      await watch;
      client.close();
      await daemon.stop();
    }
  }, 40_000);
});
