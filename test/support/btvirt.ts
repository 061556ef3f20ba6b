/**
 * A virtual Bluetooth LE radio on the host, no kernel Bluetooth (test-lab.md §4): BlueZ's controller emulator
 * `btvirt -s` (bluez-test-tools) with an LD_PRELOAD AF_ALG shim built here with gcc, and one socat pty per
 * controller on /tmp/bt-server-le. All controllers of one btvirt share one radio. noble and bleno drive them
 * through their UART HCI driver.
 *
 * btvirt's socket paths are fixed: one lab per machine. A lock directory serialises users across processes.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOCKET = '/tmp/bt-server-le';
const LOCK = '/tmp/dbus-batterybank-btvirt.lock';
const here = dirname(fileURLToPath(import.meta.url));

/** Are btvirt, socat and gcc installed? */
export function btvirtAvailable(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v btvirt && command -v socat && command -v gcc'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface Controller {
  /** The pty noble / bleno open. */
  port: string;
  /** Kill this controller's socat: the controller vanishes from the radio without a word. */
  kill(): void;
}

export class BtvirtLab {
  private readonly procs: ChildProcess[] = [];
  private count = 0;

  private constructor(private readonly dir: string) {}

  static async start(): Promise<BtvirtLab> {
    await acquireLock();
    const dir = mkdtempSync(join(tmpdir(), 'btvirt-'));
    const lab = new BtvirtLab(dir);
    try {
      const shim = join(dir, 'afalg_shim.so');
      execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', shim, join(here, 'afalg_shim.c'), '-ldl']);
      rmSync(SOCKET, { force: true });
      const btvirt = spawn('btvirt', ['-s'], { env: { ...process.env, LD_PRELOAD: shim }, stdio: 'ignore' });
      lab.procs.push(btvirt);
      await waitFor(() => existsSync(SOCKET), 5000, 'btvirt socket');
      return lab;
    } catch (e) {
      await lab.stop();
      throw e;
    }
  }

  /** A new LE controller on the shared radio. */
  async controller(): Promise<Controller> {
    const port = join(this.dir, `hci${this.count++}`);
    const socat = spawn('socat', [`UNIX-CONNECT:${SOCKET}`, `PTY,raw,echo=0,link=${port}`], { stdio: 'ignore' });
    this.procs.push(socat);
    await waitFor(() => existsSync(port), 5000, `pty ${port}`);
    return {
      port,
      kill: () => {
        socat.kill('SIGKILL');
      },
    };
  }

  async stop(): Promise<void> {
    for (const p of this.procs.reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 1000))]);
      }
    }
    this.procs.length = 0;
    rmSync(SOCKET, { force: true });
    rmSync(this.dir, { recursive: true, force: true });
    releaseLock();
  }
}

async function waitFor(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function acquireLock(): Promise<void> {
  const end = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      return;
    } catch {
      // a lock older than 5 minutes is a leftover of a killed run
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 300_000) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // raced with its owner
      }
      if (Date.now() > end) throw new Error(`btvirt lab busy (${LOCK})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function releaseLock(): void {
  rmSync(LOCK, { recursive: true, force: true });
}
