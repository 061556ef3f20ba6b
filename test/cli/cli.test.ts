/**
 * The command line as a user runs it: the built `dist/cli.js` in a child process (`npm test` builds first).
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
import { readFixture } from '../support/fixtures.js';
import { exitOf, startUntil } from '../support/process.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const UART_BASIC =
  'DD 03 00 1D 06 18 00 00 01 F2 01 F4 00 00 2C 7C 00 00 00 00 00 00 80 64 03 04 03 0B 8B 0B 8A 0B 84 FA 8D 77';
const UART_CELLS = 'DD 04 00 08 0F 45 0F 3D 0F 37 0F 3D FE C6 77';

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 20_000,
  });
}

/** Start a long-running command; resolves with the process once `ready` matches an output line. */
function start(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<{ child: ChildProcess; out: string[] }> {
  return startUntil(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeoutMs: 15_000 }, ready);
}

describe('batterybank decode', () => {
  test('prints one JSON object per frame with the snapshot field names', () => {
    const r = cli(['decode', 'jbd', ...UART_BASIC.split(' '), UART_CELLS.replace(/ /g, '')]);
    expect(r.status).toBe(0);
    const [basic, cells] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(basic).toMatchObject({
      voltage: 15.6,
      current: 0,
      soc: 100,
      cycles: 0,
      capacityRemaining: 4.98,
      capacityInstalled: 5,
      chargeFet: true,
      dischargeFet: true,
    });
    expect(basic.temperatures.map((t: { celsius: number }) => t.celsius)).toEqual([22.4, 22.3, 21.7]);
    expect(cells.cellVoltages).toEqual([3.909, 3.901, 3.895, 3.901]);
  });

  test.each([
    { case: 'a bad checksum', hex: UART_CELLS.replace('FE C6', 'FE C7'), code: 'bad-checksum' },
    { case: 'a truncated frame', hex: UART_CELLS.slice(0, 20), code: 'truncated' },
    { case: 'a frame not starting with DD', hex: `00 ${UART_CELLS}`, code: 'bad-header' },
    { case: 'something that is not hex', hex: 'DD ZZ', code: 'bad-hex' },
  ])('names the error of $case on stderr and exits 1', ({ hex, code }) => {
    const r = cli(['decode', 'jbd', hex]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(code);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('batterybank decode bluenova (console lines)', () => {
  test('each line: the rule it matches and its value; unknown and malformed lines are named', () => {
    const r = cli(['decode', 'bluenova', 'Vpack: 52920', 'C03) T: 21, V: 3312\nSOC: 87', 'Bogus line', 'SOC: lots']);
    expect(r.status).toBe(0);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { line: 'packVoltage', value: 52.92 },
      { line: 'cell', index: 3, value: { temperature: 21, voltage: 3.312 } },
      { line: 'soc', value: 87 },
      { line: 'unknown', text: 'Bogus line' },
      { line: 'soc', error: 'malformed value in "SOC: lots"' },
    ]);
  });

  test('a capture summarises each console line the same way', async () => {
    const { summarizeFrame } = await import('../../src/capture/capture-tap.js');
    const hex = Buffer.from('Current: -12.5', 'utf8').toString('hex');
    expect(summarizeFrame('bluenova', { hex })).toEqual({ line: 'current', value: -12.5 });
  });
});

describe('batterybank decode for every serial family (real captured frames)', () => {
  const jkSerialReply = (readFixture('jk/JK-B2A24S20P-10.07-UART-TTL.txt').split('\n')[2] ?? '').replace('<<< ', '');
  const pylonReply = (readFixture('seplos-pylon-rs485/python-pylontech-frames.txt').match(/^~[0-9A-F]+/m) ?? [''])[0];
  test.each([
    { family: 'jk-serial', args: [jkSerialReply], want: { voltage: 53.13, soc: 94, cellCount: 13 } },
    {
      family: 'daly',
      args: ['a50190080212000074f5039a58'],
      want: { kind: 'packStatus', value: { voltage: 53, current: -5.9, soc: 92.2 } },
    },
    { family: 'pylontech', args: [pylonReply], want: { address: 2, kind: 'analog' } },
  ])('$family frames decode to JSON', ({ family, args, want }) => {
    const r = cli(['decode', family, ...args]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n')[0] ?? '{}')).toMatchObject(want);
  });

  test('a Daly frame with a wrong checksum is named as such', () => {
    const r = cli(['decode', 'daly', 'a50190080212000074f5039a59']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('bad-checksum');
  });

  test('CAN families take candump notation', () => {
    const r = cli(['decode', 'pylon-can', '351#1C0200000000E801', '355#4C00640000000000']);
    expect(r.status).toBe(0);
    const [limits, soc] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(limits.values.limits).toEqual({
      chargeVoltage: 54,
      chargeCurrent: 0,
      dischargeCurrent: 0,
      dischargeVoltage: 48.8,
    });
    expect(soc.values).toEqual({ soc: 76, soh: 100 });
    const bad = cli(['decode', 'pylon-can', '351#1C02']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('bad-length');
  });

  test('an unknown family is refused with the list of known ones', () => {
    const r = cli(['decode', 'victron', 'DD']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'known: jbd, jk-serial, jk-modbus, daly, pylontech, seplos, pylon-can, deye-can, byd-atto3',
    );
  });
});

describe('batterybank usage and config errors', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('--version prints the package version', () => {
    const r = cli(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  test('an unknown command exits 2 with the usage', () => {
    const r = cli(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command');
    expect(r.stderr).toContain('usage: batterybank');
  });

  test('a config error names file, section, key and value and exits 2', () => {
    const f = join(dir, 'bad.ini');
    writeFileSync(f, '[battery.house]\nprotocol = jbd\nport = /dev/ttyUSB0\nmax_charge_current = fifty\n');
    const r = cli(['run', '--config', f]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${f}: [battery.house] max_charge_current = "fifty": expected a current in A`);
  });

  test('a missing config file is a config error', () => {
    const r = cli(['run', '--config', join(dir, 'nope.ini')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('cannot read config');
  });
});

describe('batterybank simulate + run + status, as separate processes on a private bus', () => {
  let daemon: DbusDaemon;
  let dir: string;
  beforeAll(async () => {
    daemon = await startDbusDaemon();
    dir = mkdtempSync(join(tmpdir(), 'cli-run-'));
  });
  afterAll(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('simulate prints PTY first; run publishes it; status lists it; TERM disconnects cleanly with exit 0', async () => {
    const env = { DBUS_SYSTEM_BUS_ADDRESS: daemon.address };
    const sim = await start(['simulate', 'jbd', '--cells', '4', '--seed', '3'], {}, /^PTY /);
    expect(sim.out[0]).toMatch(/^PTY \/dev\/pts\/\d+$/);
    const ptyPath = (sim.out[0] as string).slice(4);
    const cfg = join(dir, 'config.ini');
    writeFileSync(cfg, `[battery.cli]\nprotocol = jbd\nport = ${ptyPath}\n`);
    const run = await start(['run', '--config', cfg], env, /published com\.victronenergy\.battery\.batterybank_cli/);
    const client = await BusClient.connect(daemon.address);
    const service = 'com.victronenergy.battery.batterybank_cli';
    try {
      await eventually(async () => plain(await client.getValue(service, '/Connected')) === 1, 5000);
      expect(plain(await client.getValue(service, '/System/NrOfCellsPerBattery'))).toBe(4);

      const status = cli(['status'], env);
      expect(status.status).toBe(0);
      expect(status.stdout).toMatch(/^batterybank_cli +JBD BMS +yes +\d+\.\d\d/m);
      expect(status.stdout).toContain('13.80/50/60');

      run.child.kill('SIGTERM');
      expect(await exitOf(run.child)).toBe(0);
      await eventually(async () => (await client.nameOwner(service)) === undefined, 3000);
      expect(run.out.join('\n')).toMatch(/SIGTERM: publishing disconnect/);
    } finally {
      client.close();
      run.child.kill('SIGKILL');
      sim.child.kill('SIGTERM');
      await exitOf(sim.child);
    }
  }, 40_000);

  test('run exits non-zero when the D-Bus daemon dies, so daemontools restarts it', async () => {
    const own = await startDbusDaemon();
    const sim = await start(['simulate', 'jbd', '--cells', '4'], {}, /^PTY /);
    const cfg = join(dir, 'busdeath.ini');
    writeFileSync(cfg, `[battery.busdeath]\nprotocol = jbd\nport = ${(sim.out[0] as string).slice(4)}\n`);
    const run = await start(['run', '--config', cfg], { DBUS_SYSTEM_BUS_ADDRESS: own.address }, /published /);
    try {
      await own.stop();
      expect(await exitOf(run.child)).toBe(1);
      expect(run.out.join('\n')).toMatch(/exiting so the supervisor restarts the driver/);
    } finally {
      run.child.kill('SIGKILL');
      sim.child.kill('SIGTERM');
      await exitOf(sim.child);
    }
  }, 30_000);

  test('the demo (npm start) shows live values read back from D-Bus and stops by itself with --seconds', () => {
    const r = cli(['demo', '--cells', '4', '--seconds', '3'], { DBUS_SYSTEM_BUS_ADDRESS: '' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('started a private dbus-daemon');
    expect(r.stdout).toMatch(/CONNECTED\s+\d+\.\d\d V/);
    expect(r.stdout).toMatch(/limits CVL 13\.80 V {2}CCL 50\.0 A {2}DCL 60\.0 A/);
    expect(r.stdout).toMatch(/C4 +[█·]+ 3\.\d{3} V/);
    expect(r.stdout).toContain('demo stopped');
  }, 30_000);
});
