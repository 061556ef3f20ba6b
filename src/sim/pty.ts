/**
 * Pseudo-terminals for simulators and tests, without native code.
 *
 * Node cannot allocate a pty itself (no openpty/grantpt), so a small helper process owns the master side and
 * relays it over its stdin/stdout; the slave (`/dev/pts/N`) is a real tty that the driver opens with the real
 * `serialport`, exactly as it would open `/dev/ttyUSB0`. Helpers, in order of preference:
 * - `socat -d -d pty,raw,echo=0,link=L STDIO` (CI installs socat);
 * - python3 with a ten-line `pty.openpty()` relay (written here, below);
 * - util-linux `script`, which is always present: the slave path is what `tty` prints inside it.
 *
 * Closing a pair kills the helper, so the master disappears under the driver's feet: that is a USB unplug.
 * Creating a pair again at the same `link` path is the re-plug.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { lstat, mkdir, readlink, symlink, unlink } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';

export type PtyBackend = 'socat' | 'python' | 'script';

/** The device (master) side of a pair, as a byte stream. Structurally usable as a simulator transport. */
export interface PtyDevice {
  /** Write bytes towards the driver. Never rejects: after close the bytes are dropped, as on a dead wire. */
  send(bytes: Uint8Array): Promise<void>;
  /** Receive what the driver writes. */
  onData(listener: (chunk: Uint8Array) => void): void;
}

export interface PtyPair {
  readonly backend: PtyBackend;
  /** What the driver opens: the `link` symlink when one was asked for, else the slave tty itself. */
  readonly driverPath: string;
  /** The slave tty, `/dev/pts/N`. */
  readonly ttyPath: string;
  readonly device: PtyDevice;
  /** True once the helper has exited (closed by us or killed from outside). */
  readonly isClosed: boolean;
  /** Resolves when the helper has exited. */
  readonly exited: Promise<void>;
  /** Kill the helper and remove the link (the "unplug"). Idempotent; never rejects. */
  close(): Promise<void>;
}

export interface PtyOptions {
  /** Symlink to create to the slave (a stable path across re-plugs). Its directory is created if needed. */
  link?: string;
  /**
   * Force one helper; default: `$BATTERYBANK_PTY_BACKEND` when set (to run a test suite on each helper), else
   * the first available of socat, python, script.
   */
  backend?: PtyBackend;
  /** Give up when the helper has not reported its pty after this long, ms (default 5000). */
  readyTimeoutMs?: number;
}

/** Is `command` an executable on PATH? */
export function onPath(command: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, command), fsConstants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

const BACKEND_COMMAND: Record<PtyBackend, string> = { socat: 'socat', python: 'python3', script: 'script' };

function backendFromEnv(): PtyBackend | undefined {
  const v = process.env['BATTERYBANK_PTY_BACKEND'];
  if (v === undefined || v === '') return undefined;
  if (v === 'socat' || v === 'python' || v === 'script') return v;
  throw new Error(`BATTERYBANK_PTY_BACKEND must be socat, python or script, not "${v}"`);
}

/** The helpers usable on this machine, best first. */
export function availablePtyBackends(): PtyBackend[] {
  return (['socat', 'python', 'script'] as const).filter((b) => onPath(BACKEND_COMMAND[b]));
}

/**
 * Python relay: raw slave held open by the helper (otherwise the master reads EIO whenever the driver has
 * the port closed, which would end the relay), header line with the slave path, then bytes both ways until
 * stdin closes (our process died) or SIGTERM.
 */
const PYTHON_RELAY = `
import os, pty, select, signal, sys, termios, tty
m, s = pty.openpty()
tty.setraw(s, termios.TCSANOW)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
os.write(1, ("PTY " + os.ttyname(s) + "\\n").encode())
def put(fd, data):
    while data:
        data = data[os.write(fd, data):]
while True:
    ready, _, _ = select.select([m, 0], [], [])
    if m in ready:
        try:
            data = os.read(m, 4096)
        except OSError:
            data = b""
        if data:
            put(1, data)
    if 0 in ready:
        data = os.read(0, 4096)
        if not data:
            os._exit(0)
        put(m, data)
`;

const SCRIPT_READY = 'PTY-READY';

/** Helpers still running, killed synchronously if our process exits without closing them. */
const liveHelpers = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  liveHelpers.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of liveHelpers) {
        try {
          c.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
}

/** Create a pseudo-terminal whose slave the driver opens and whose master is {@link PtyPair.device}. */
export async function createPtyPair(opts: PtyOptions = {}): Promise<PtyPair> {
  const backend = opts.backend ?? backendFromEnv() ?? availablePtyBackends()[0];
  if (backend === undefined) throw new Error('no pty helper found: install socat, or make python3 or script available');
  if (opts.link !== undefined) await prepareLink(opts.link);
  const timeoutMs = opts.readyTimeoutMs ?? 5000;

  let child: ChildProcess;
  let header: HeaderMatcher;
  switch (backend) {
    case 'socat':
      child = spawn('socat', ['-d', '-d', `pty,raw,echo=0${opts.link ? `,link=${opts.link}` : ''}`, 'STDIO'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      // socat reports on stderr; stdout carries only data. "starting data transfer loop" comes after the link.
      header = { stream: 'stderr', pattern: /PTY is (\/dev\/pts\/\d+)[\s\S]*starting data transfer loop[^\n]*\n/ };
      break;
    case 'python':
      child = spawn('python3', ['-u', '-c', PYTHON_RELAY], { stdio: ['pipe', 'pipe', 'pipe'] });
      header = { stream: 'stdout', pattern: /PTY (\/dev\/pts\/\d+)\n/ };
      break;
    case 'script': {
      // `tty` prints the slave path (in cooked mode, hence \r\n); then the slave goes raw and the marker tells
      // us that it has. The loop instead of a plain `sleep` ends the helper within a second if our process
      // dies without closing it (script itself would keep running).
      const inner = `tty; stty raw -echo; printf '${SCRIPT_READY}\\n'; while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`;
      child = spawn('script', ['-qfec', inner, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      header = { stream: 'stdout', pattern: new RegExp(`(/dev/pts/\\d+)\\r?\\n[\\s\\S]*?${SCRIPT_READY}\\n`) };
      break;
    }
  }
  track(child);
  return await startPair(child, backend, header, opts.link, timeoutMs);
}

interface HeaderMatcher {
  stream: 'stdout' | 'stderr';
  /** Group 1 is the slave path; everything after the match on stdout is data. */
  pattern: RegExp;
}

async function prepareLink(link: string): Promise<void> {
  await mkdir(dirname(link), { recursive: true });
  try {
    const st = await lstat(link);
    // A symlink left behind by a helper that was killed hard: replace it. Anything else is not ours.
    if (!st.isSymbolicLink()) throw new Error(`${link} exists and is not a symlink`);
    await unlink(link);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function startPair(
  child: ChildProcess,
  backend: PtyBackend,
  header: HeaderMatcher,
  link: string | undefined,
  timeoutMs: number,
): Promise<PtyPair> {
  const stdout = child.stdout;
  const stderr = child.stderr;
  const stdin = child.stdin;
  if (stdout === null || stderr === null || stdin === null) throw new Error('pty helper has no stdio pipes');
  // EPIPE when the helper dies before a write: expected on unplug, never fatal.
  stdin.on('error', () => undefined);

  const listeners: ((chunk: Uint8Array) => void)[] = [];
  let closed = false;
  let ready = false;
  let headerText = '';
  let stderrText = '';
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      closed = true;
      liveHelpers.delete(child);
      resolve();
    });
    child.once('error', () => {
      closed = true;
      liveHelpers.delete(child);
      resolve();
    });
  });

  // 'close' comes after 'exit' once the stdio pipes are closed too: only then are all of the helper's handles gone.
  const released = new Promise<void>((resolve) => child.once('close', () => resolve()));

  const emit = (chunk: Uint8Array) => {
    if (chunk.length === 0) return;
    for (const l of listeners) {
      try {
        l(chunk);
      } catch {
        // a simulator bug must not break the relay
      }
    }
  };

  return new Promise<PtyPair>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(
        new Error(`pty helper ${backend} failed: ${why}${stderrText ? ` (${stderrText.trim().slice(-300)})` : ''}`),
      );
    };
    const timer = setTimeout(() => fail(`no pty after ${timeoutMs} ms`), timeoutMs);
    child.once('error', (e) => fail(e.message));
    child.once('exit', (code, signal) => {
      if (!ready) fail(`exited early (${signal ?? code})`);
    });

    const onHeaderText = (text: string): number | undefined => {
      headerText += text;
      const m = header.pattern.exec(headerText);
      if (m === null) return undefined;
      ready = true;
      clearTimeout(timer);
      const ttyPath = m[1] as string;
      void finishSetup(ttyPath).then(resolve, (e: unknown) => {
        child.kill('SIGKILL');
        reject(e);
      });
      return (m.index ?? 0) + m[0].length;
    };

    stdout.on('data', (chunk: Buffer) => {
      if (ready || header.stream === 'stderr') {
        emit(new Uint8Array(chunk));
        return;
      }
      // latin1 keeps one char per byte, so the match end is a byte offset into what we have buffered.
      const before = headerText.length;
      const end = onHeaderText(chunk.toString('latin1'));
      if (end !== undefined) emit(new Uint8Array(chunk.subarray(end - before)));
    });
    stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      stderrText = (stderrText + text).slice(-2000);
      if (!ready && header.stream === 'stderr') onHeaderText(text);
    });

    const finishSetup = async (ttyPath: string): Promise<PtyPair> => {
      if (link !== undefined) {
        if (backend === 'socat') await waitForLink(link, 2000);
        else await symlink(ttyPath, link);
      }
      let closing: Promise<void> | undefined;
      const pair: PtyPair = {
        backend,
        driverPath: link ?? ttyPath,
        ttyPath,
        device: {
          send: (bytes) =>
            new Promise<void>((res) => {
              if (closed || stdin.destroyed) {
                res();
                return;
              }
              stdin.write(Buffer.from(bytes), () => res());
            }),
          onData: (listener) => {
            listeners.push(listener);
          },
        },
        get isClosed() {
          return closed;
        },
        exited,
        close: () => {
          closing ??= closeHelper(child, backend, exited, released, link, ttyPath);
          return closing;
        },
      };
      return pair;
    };
  });
}

async function closeHelper(
  child: ChildProcess,
  backend: PtyBackend,
  exited: Promise<void>,
  released: Promise<void>,
  link: string | undefined,
  ttyPath: string,
): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    // script takes two seconds to end on SIGTERM (it waits for its child); killing it drops the master at
    // once and the kernel hangs up the slave's session. socat removes its own link on SIGTERM.
    child.kill(backend === 'script' ? 'SIGKILL' : 'SIGTERM');
    const guard = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(guard);
  }
  child.stdin?.destroy();
  child.stdout?.destroy();
  child.stderr?.destroy();
  await released;
  if (link !== undefined) await removeLinkIfOurs(link, ttyPath);
}

/** Remove `link` only while it still points at our tty: a newer pair may already own the path. */
async function removeLinkIfOurs(link: string, ttyPath: string): Promise<void> {
  try {
    if ((await readlink(link)) === ttyPath) await unlink(link);
  } catch {
    // already gone
  }
}

async function waitForLink(link: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await lstat(link);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${link} did not appear`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** Anything that serves a device protocol over a byte transport (e.g. JbdSimulator). */
export interface AttachableSimulator {
  attach(transport: PtyDevice): void;
  detach(): void;
}

export interface SimulatorOnPtyOptions {
  simulator: AttachableSimulator;
  /** Stable symlink for the driver; required for replug(). */
  link?: string;
  backend?: PtyBackend;
}

/** A simulator serving on a pty, with the unplug / re-plug a USB adapter goes through. */
export interface SimulatorOnPty {
  /** The path the driver should open (constant across re-plugs when a link was given). */
  readonly path: string;
  /** The current pair; undefined while unplugged. */
  readonly pair: PtyPair | undefined;
  /** Destroy the pty (the driver's open port goes dead). */
  unplug(): Promise<void>;
  /** Create the pty again at the same link and serve on it. */
  replug(): Promise<void>;
  /** Unplug and stop serving. Idempotent. */
  close(): Promise<void>;
}

/** Create a pty and attach `simulator` to its device side. */
export async function runSimulatorOnPty(opts: SimulatorOnPtyOptions): Promise<SimulatorOnPty> {
  const make = async (): Promise<PtyPair> => {
    const p = await createPtyPair({
      ...(opts.link !== undefined ? { link: opts.link } : {}),
      ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
    });
    opts.simulator.attach(p.device);
    return p;
  };
  let pair: PtyPair | undefined = await make();
  const path = pair.driverPath;
  const unplug = async () => {
    const p = pair;
    pair = undefined;
    opts.simulator.detach();
    if (p !== undefined) await p.close();
  };
  return {
    path,
    get pair() {
      return pair;
    },
    unplug,
    replug: async () => {
      if (opts.link === undefined) throw new Error('replug needs a link path');
      await unplug();
      pair = await make();
    },
    close: unplug,
  };
}
