import { cpSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
import { exitOf, startUntil as start } from '../support/process.js';
import { REPO } from './fake-gx.js';

let daemon: DbusDaemon;
let dir: string;
beforeAll(async () => {
  daemon = await startDbusDaemon();
  dir = mkdtempSync(join(tmpdir(), 'service-run-'));
});
afterAll(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('svc -t reaches the driver through service/run: it publishes, then disconnects cleanly and exits 0', async () => {
  const app = join(dir, 'data/apps/dbus-batterybank');
  mkdirSync(app, { recursive: true });
  cpSync(join(REPO, 'service'), join(app, 'service'), { recursive: true });
  for (const f of ['package.json', 'config.default.ini']) cpSync(join(REPO, f), join(app, f));
  cpSync(join(REPO, 'dist'), join(app, 'dist'), { recursive: true });
  symlinkSync(join(REPO, 'node_modules'), join(app, 'node_modules'));
  mkdirSync(join(dir, 'service'));
  symlinkSync(join(app, 'service'), join(dir, 'service/dbus-batterybank'));

  const env = { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, DBUS_SYSTEM_BUS_ADDRESS: daemon.address };
  const sim = await start(
    process.execPath,
    [join(REPO, 'dist/cli.js'), 'simulate', 'jbd', '--cells', '4'],
    { env },
    /^PTY /,
  );
  writeFileSync(join(app, 'config.ini'), `[battery.svc]\nprotocol = jbd\nport = ${(sim.out[0] as string).slice(4)}\n`);
  const service = 'com.victronenergy.battery.batterybank_svc';
  const run = await start('sh', ['./run'], { cwd: join(dir, 'service/dbus-batterybank'), env }, /published /);
  const client = await BusClient.connect(daemon.address);
  try {
    // The run script exec'd node: the process daemontools supervises is the driver itself.
    expect(readlinkSync(`/proc/${run.child.pid}/exe`)).toBe(process.execPath);
    await eventually(async () => plain(await client.getValue(service, '/Connected')) === 1, 8000);

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
}, 45_000);
