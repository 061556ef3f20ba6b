/**
 * service/run as daemontools starts it: through the /service symlink, with the service directory as working
 * directory. The real driver (this checkout's dist/) reads a simulated JBD on a pseudo-terminal and publishes
 * on a private dbus-daemon; TERM (what `svc -t` / `svc -d` send) reaches node itself, which disconnects cleanly
 * and exits 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
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

/** Start a process and resolve once a stdout line matches `ready`. */
function start(cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv }, ready: RegExp) {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  return new Promise<{ child: ChildProcess; out: string[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${ready} in: ${out.join('\n')}`)), 20_000);
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        out.push(l);
        if (ready.test(l)) {
          clearTimeout(timer);
          resolve({ child, out });
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited ${code} before ready: ${out.join('\n')}`)));
  });
}

const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
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
