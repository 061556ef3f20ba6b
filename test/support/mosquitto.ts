/**
 * A private mosquitto broker for one test file: its own config in a temp dir, loopback only, a free port,
 * no persistence (a restart loses retained messages, like a broker that was replaced).
 *
 *   const broker = await startMosquitto();     // beforeAll
 *   ... host 127.0.0.1, port broker.port ...
 *   await broker.stop(); await broker.start(); // restart on the same port
 *   await broker.close();                      // afterAll (idempotent)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

export interface Mosquitto {
  readonly host: string;
  readonly port: number;
  /** `mqtt://127.0.0.1:<port>` */
  readonly url: string;
  readonly running: boolean;
  /** Start again (same port) after stop(). */
  start(): Promise<void>;
  /** Terminate the broker (SIGTERM) and wait for it to exit. */
  stop(): Promise<void>;
  /** Stop and remove the temp dir. Idempotent. */
  close(): Promise<void>;
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

const BINARIES = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'];

/** Start a broker; `port` to choose one (default: a free port). */
export async function startMosquitto(opts: { port?: number } = {}): Promise<Mosquitto> {
  const bin = BINARIES.find((b) => existsSync(b)) ?? 'mosquitto';
  const dir = await mkdtemp(join(tmpdir(), 'batterybank-mqtt-'));
  const port = opts.port ?? (await freePort());
  const host = '127.0.0.1';
  const conf = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} ${host}`,
    'allow_anonymous true',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
  ];
  // Run as root only where we are root (mosquitto would otherwise switch to its own user).
  if (process.getuid?.() === 0) lines.push('user root');
  await writeFile(conf, `${lines.join('\n')}\n`);
  let child: ChildProcess | undefined;
  let stderr = '';
  let closed = false;

  const start = async () => {
    if (child && child.exitCode === null && child.signalCode === null) return;
    stderr = '';
    const c = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child = c;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null) throw new Error(`mosquitto exited with ${c.exitCode}: ${stderr}`);
      if (await canConnect(host, port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    c.kill('SIGKILL');
    throw new Error(`mosquitto did not listen on ${host}:${port} within 10 s: ${stderr}`);
  };
  const stop = async () => {
    const c = child;
    if (!c) return;
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited(c);
    clearTimeout(t);
  };
  await start();
  return {
    host,
    port,
    url: `mqtt://${host}:${port}`,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    start,
    stop,
    close: async () => {
      if (closed) return;
      closed = true;
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
