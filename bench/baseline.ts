/**
 * Calibration: what a bare Node process costs on this machine (same flags as the driver, a 1 s interval
 * and nothing else), so the driver's RSS can be read against the part Node itself takes.
 */
import { spawn } from 'node:child_process';
import type { Cleanup } from './cleanup.js';
import { memory } from './proc.js';
import { DRIVER_NODE_FLAGS } from './rig.js';

export interface Baseline {
  rssKb: number;
  afterSeconds: number;
}

export async function bareNode(cleanup: Cleanup, seconds = 3): Promise<Baseline> {
  const child = spawn(process.execPath, [...DRIVER_NODE_FLAGS, '-e', 'setInterval(() => {}, 1000)'], {
    stdio: 'ignore',
  });
  cleanup.child(child);
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const stop = cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  try {
    const pid = child.pid;
    if (pid === undefined) throw new Error('cannot spawn node');
    await new Promise((r) => setTimeout(r, seconds * 1000));
    return { rssKb: memory(pid).vmRssKb, afterSeconds: seconds };
  } finally {
    await stop();
  }
}
