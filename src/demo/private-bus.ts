/**
 * A private dbus-daemon for the demo and for development machines without Venus: the same open policy
 * as Venus's system bus (anyone may own and send). Spawned as a child and stopped with it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CONFIG = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`;

export interface PrivateBus {
  address: string;
  stop(): void;
}

/** Start `dbus-daemon` on a socket in a fresh temp dir; resolves with its address once it listens. */
export async function startPrivateBus(timeoutMs = 5000): Promise<PrivateBus> {
  const dir = mkdtempSync(join(tmpdir(), 'batterybank-bus-'));
  const socket = join(dir, 'bus.sock');
  const conf = join(dir, 'bus.conf');
  writeFileSync(conf, CONFIG.replace('SOCKET', socket));
  let child: ChildProcess;
  try {
    child = spawn('dbus-daemon', ['--config-file', conf, '--nofork', '--nopidfile', '--print-address=1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`dbus-daemon did not start in ${timeoutMs} ms: ${err}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        clearTimeout(timer);
        resolve(line.trim());
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start dbus-daemon (install the dbus-daemon package): ${e.message}`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dbus-daemon exited with ${code}: ${err}`));
    });
  });
  return {
    address,
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
