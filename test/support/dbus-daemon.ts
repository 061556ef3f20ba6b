/**
 * A private dbus-daemon for one test file: its own config (policy like Venus' system bus: anyone may own,
 * send to and eavesdrop on any name) in a temp dir, listening on a unix socket there. The file list is
 * written per daemon because dbus-daemon wants a <listen> element in the config.
 *
 *   const daemon = await startDbusDaemon();   // beforeAll
 *   ... busAddress: daemon.address ...
 *   await daemon.stop();                      // afterAll (idempotent; also after kill())
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DbusDaemon {
  /** `unix:path=…,guid=…` as printed by the daemon. */
  readonly address: string;
  readonly pid: number;
  /** SIGKILL the daemon (the bus dies under its clients) and wait for it to exit. */
  kill(): Promise<void>;
  /** Terminate the daemon and remove its temp dir. Idempotent. */
  stop(): Promise<void>;
}

const config = (socket: string) => `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
  <limit name="max_match_rules_per_connection">1024</limit>
  <limit name="max_replies_per_connection">50000</limit>
</busconfig>
`;

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Start a private bus; resolves once it printed its address (it is then accepting connections). */
export async function startDbusDaemon(): Promise<DbusDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'batterybank-dbus-'));
  const configFile = join(dir, 'bus.conf');
  await writeFile(configFile, config(join(dir, 'bus.sock')));
  const child = spawn('dbus-daemon', [`--config-file=${configFile}`, '--nofork', '--nopidfile', '--print-address=1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`dbus-daemon printed no address in 10 s: ${stderr}`)), 10_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dbus-daemon exited with ${code}: ${stderr}`));
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        clearTimeout(timer);
        resolve(line.trim());
      }
    });
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  if (child.pid === undefined) throw new Error('dbus-daemon has no pid');
  const pid = child.pid;
  let stopped = false;
  return {
    address,
    pid,
    async kill() {
      child.kill('SIGKILL');
      await exited(child);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      child.kill('SIGTERM');
      await exited(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
