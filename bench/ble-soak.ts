/**
 * BLE soak on the real stacks: BlueZ's controller emulator (`btvirt -s`, two LE controllers on one virtual radio,
 * each behind a socat pty), noble over UART HCI as the central with our JbdBleDriver in keep-connected mode, and a
 * bleno peripheral serving our JbdSimulator. Every `--drop-every` seconds the peripheral drops the connection
 * (peripheral-side disconnect); the driver must notice, reconnect and resume polling.
 *
 *   node dist-bench/bench/ble-soak.js [--minutes 30] [--drop-every 120] [--poll-ms 1000] [--no-data-ms 10000]
 *                                     [--cells 16] [--seed 1] [--out bench/results/ble-soak.json]
 *
 * Records: connect time per (re)connection, disconnects seen and reconnects made, the longest gap without a
 * snapshot after each drop, notification → snapshot latency, watchdog trips, the driver's events by kind, and
 * CPU time / RSS of this process (central + peripheral + driver) and of btvirt and the socats, at the start and
 * the end. Prints a table and writes it as JSON. Everything started here is released on the way out, Ctrl-C
 * included. Uses the btvirt lock of the test lab, so it never runs beside the BLE tests.
 *
 * Under plain Node (not vitest) the ESM namespace of the CommonJS package @stoprocent/bleno has only `default`
 * and `withBindings`, so src/sim/ble-peripheral.ts finds no `Characteristic` / `PrimaryService` on it. When
 * that is so, a module resolve hook (blenoInterop) hands ble-peripheral.js a namespace that re-exports them from
 * the bleno instance; nothing else is changed, and the hook stays out of the way once src copes itself.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { JBD_BLE_PROFILE, JbdBleDriver } from '../src/bms/jbd/ble-driver.js';
import type { BatterySnapshot } from '../src/domain/battery-snapshot.js';
import type { BleAdvertisement, BleCharacteristicInfo, BleEvent, BleLink, BlePeer } from '../src/links/ble/ble-link.js';
import { NobleBleLink } from '../src/links/ble/noble-link.js';
import { BlePeripheral, type BleSimDevice, type BleSimTransport } from '../src/sim/ble-peripheral.js';
import { JbdSimulator } from '../src/sim/jbd-simulator.js';
import { Cleanup } from './cleanup.js';
import { clockTicksPerSecond, cpuTicks, memory } from './proc.js';
import { fixed, r, summarize } from './stats.js';
import { type Row, renderTable } from './table.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BT_SOCKETS = ['le', 'bredrle', 'bredr', 'amp', 'mon'].map((s) => `/tmp/bt-server-${s}`);
const LE_SOCKET = '/tmp/bt-server-le';
/** The test lab's lock (test/support/btvirt.ts): btvirt's socket paths are fixed, one lab per machine. */
const LOCK = '/tmp/dbus-batterybank-btvirt.lock';

const log = (line: string) => process.stderr.write(`  · ${line}\n`);

// ---- options ------------------------------------------------------------------------------------------------

interface SoakOptions {
  minutes: number;
  dropEverySeconds: number;
  pollMs: number;
  noDataMs: number;
  cells: number;
  seed: number;
  out: string | undefined;
}

const USAGE = `usage: node dist-bench/bench/ble-soak.js [options]

  --minutes N       soak duration, minutes (default 30; fractions allowed)
  --drop-every S    peripheral-side disconnect every S seconds (default 120; 0 = never)
  --poll-ms N       JBD poll interval, ms (default 1000, the config default poll_interval)
  --no-data-ms N    no-data watchdog, ms (default 10000: what the config defaults give, stale_after 10 s)
  --cells N         simulated cells (default 16)
  --seed N          simulator seed (default 1)
  --out FILE        JSON results (default bench/results/ble-soak.json)
`;

class UsageError extends Error {}

function parseOptions(argv: readonly string[]): SoakOptions | undefined {
  const o: SoakOptions = {
    minutes: 30,
    dropEverySeconds: 120,
    pollMs: 1000,
    noDataMs: 10_000,
    cells: 16,
    seed: 1,
    out: undefined,
  };
  const num = (name: string, v: string | undefined, min: number, max: number, whole: boolean): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
      throw new UsageError(`--${name} must be a ${whole ? 'whole ' : ''}number ${min}–${max}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') return undefined;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? (eq > 0 ? a.slice(2, eq) : a.slice(2)) : '';
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    switch (name) {
      case 'minutes':
        o.minutes = num(name, value, 0.1, 24 * 60, false);
        break;
      case 'drop-every':
        o.dropEverySeconds = num(name, value, 0, 86_400, false);
        break;
      case 'poll-ms':
        o.pollMs = num(name, value, 100, 60_000, true);
        break;
      case 'no-data-ms':
        o.noDataMs = num(name, value, 0, 600_000, true);
        break;
      case 'cells':
        o.cells = num(name, value, 1, 32, true);
        break;
      case 'seed':
        o.seed = num(name, value, 0, 2 ** 31, true);
        break;
      case 'out':
        if (value === undefined) throw new UsageError('--out needs a value');
        o.out = value;
        break;
      default:
        throw new UsageError(`unknown argument "${a}"`);
    }
  }
  return o;
}

// ---- the lab: btvirt + socat ptys -----------------------------------------------------------------------------

/** The repository root: the nearest parent holding package.json and the AF_ALG shim source. */
function repoRoot(): string {
  let dir = HERE;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test', 'support', 'afalg_shim.c'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the repository root above ${HERE}`);
    dir = up;
  }
}

async function waitFor(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

let lockHeld = false;

async function acquireLock(): Promise<void> {
  const end = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      lockHeld = true;
      return;
    } catch {
      try {
        // a lock older than 5 minutes is a leftover of a killed run (the test lab's rule too)
        if (Date.now() - statSync(LOCK).mtimeMs > 300_000) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // raced with its owner
      }
      if (Date.now() > end) throw new Error(`btvirt lab busy (${LOCK})`);
      await sleep(200);
    }
  }
}

/** Sync, so that the 'exit' hook can run it too. */
function releaseLab(): void {
  if (!lockHeld) return;
  for (const s of BT_SOCKETS) rmSync(s, { force: true });
  rmSync(LOCK, { recursive: true, force: true });
  lockHeld = false;
}

/** Stop a child: SIGTERM, then SIGKILL after 1 s; resolves when it has exited (or 2 s at most). */
async function stopChild(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 1000);
  await Promise.race([gone, sleep(2000)]);
  clearTimeout(t);
}

interface Lab {
  btvirt: ChildProcess;
  central: { port: string; socat: ChildProcess };
  peripheral: { port: string; socat: ChildProcess };
}

async function startLab(cleanup: Cleanup, root: string): Promise<Lab> {
  await acquireLock();
  cleanup.add(async () => releaseLab());
  const dir = mkdtempSync(join(tmpdir(), 'ble-soak-'));
  cleanup.dir(dir);
  const shim = join(dir, 'afalg_shim.so');
  execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', shim, join(root, 'test', 'support', 'afalg_shim.c'), '-ldl']);
  for (const s of BT_SOCKETS) rmSync(s, { force: true });
  const btvirt = spawn('btvirt', ['-s'], { env: { ...process.env, LD_PRELOAD: shim }, stdio: 'ignore' });
  cleanup.child(btvirt);
  cleanup.add(() => stopChild(btvirt));
  await waitFor(() => existsSync(LE_SOCKET), 5000, 'btvirt socket');
  const controller = async (name: string) => {
    const port = join(dir, name);
    const socat = spawn('socat', [`UNIX-CONNECT:${LE_SOCKET}`, `PTY,raw,echo=0,link=${port}`], { stdio: 'ignore' });
    cleanup.child(socat);
    cleanup.add(() => stopChild(socat));
    await waitFor(() => existsSync(port), 5000, `pty ${port}`);
    return { port, socat };
  };
  const central = await controller('hci-central');
  const peripheral = await controller('hci-peripheral');
  return { btvirt, central, peripheral };
}

// ---- bleno interop under plain Node --------------------------------------------------------------------------

/** See the header: true when the hook had to be installed. */
async function blenoInterop(): Promise<boolean> {
  const ns = (await import('@stoprocent/bleno')) as unknown as Record<string, unknown>;
  if (typeof ns['Characteristic'] === 'function' && typeof ns['PrimaryService'] === 'function') return false;
  const real = import.meta.resolve('@stoprocent/bleno');
  const shim = [
    `import b from ${JSON.stringify(real)};`,
    'export default b;',
    'export const withBindings = b.withBindings;',
    'export const Characteristic = b.Characteristic;',
    'export const PrimaryService = b.PrimaryService;',
    'export const Descriptor = b.Descriptor;',
  ].join('\n');
  const hooks = [
    `const shim = ${JSON.stringify(`data:text/javascript,${encodeURIComponent(shim)}`)};`,
    'export async function resolve(specifier, context, next) {',
    "  if (specifier === '@stoprocent/bleno' && String(context.parentURL).endsWith('/sim/ble-peripheral.js')) {",
    '    return { url: shim, shortCircuit: true };',
    '  }',
    '  return next(specifier, context);',
    '}',
  ].join('\n');
  register(`data:text/javascript,${encodeURIComponent(hooks)}`, import.meta.url);
  return true;
}

// ---- instrumentation ------------------------------------------------------------------------------------------

/** A BleLink that time-stamps every notification the central receives (performance.now()). */
class TimedBleLink implements BleLink {
  readonly description: string;
  notifications = 0;
  lastNotificationAt = Number.NaN;

  constructor(private readonly inner: BleLink) {
    this.description = inner.description;
  }

  powerOn(timeoutMs?: number): Promise<void> {
    return this.inner.powerOn(timeoutMs);
  }

  scan(
    opts: { durationMs: number; serviceUuids?: readonly string[] | undefined },
    onDevice?: (adv: BleAdvertisement) => void,
  ): Promise<BleAdvertisement[]> {
    return this.inner.scan(opts, onDevice);
  }

  async connect(address: string, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<BlePeer> {
    const peer = await this.inner.connect(address, opts);
    const stamp = () => {
      this.notifications++;
      this.lastNotificationAt = performance.now();
    };
    const timed: BlePeer = {
      address: peer.address,
      discover: (service: string, chars: readonly string[]): Promise<BleCharacteristicInfo[]> =>
        peer.discover(service, chars),
      subscribe: (characteristic, listener) =>
        peer.subscribe(characteristic, (value) => {
          stamp();
          listener(value);
        }),
      write: (characteristic, data, withoutResponse) => peer.write(characteristic, data, withoutResponse),
      disconnect: () => peer.disconnect(),
      onDisconnect: (listener) => peer.onDisconnect(listener),
    };
    return timed;
  }

  onEvent(listener: (event: BleEvent) => void): void {
    this.inner.onEvent(listener);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The simulator behind a transport that time-stamps each reply handed to bleno. */
class TimedDevice implements BleSimDevice {
  lastReplyAt = Number.NaN;
  replies = 0;

  constructor(private readonly sim: JbdSimulator) {}

  attach(transport: BleSimTransport): void {
    this.sim.attach({
      send: (bytes) => {
        this.replies++;
        this.lastReplyAt = performance.now();
        return transport.send(bytes);
      },
      onData: (listener) => transport.onData(listener),
    });
  }

  detach(): void {
    this.sim.detach();
  }
}

/** A driver event's kind: level + message with the address and the numbers taken out. */
function eventKind(level: string, message: string): string {
  const text = message
    .replace(/([0-9a-f]{2}:){5}[0-9a-f]{2}:?\s*/gi, '')
    .replace(/\/[^\s)]+/g, '<path>')
    .replace(/\b0x[0-9a-f]+\b|\d+(\.\d+)?/gi, (m) => (m.toLowerCase().startsWith('0x') ? '0xN' : 'N'));
  return `${level}: ${text}`;
}

interface CpuMem {
  at: string;
  cpuUserS: number;
  cpuSystemS: number;
  rssMB: number;
  heapUsedMB: number;
  /** btvirt + both socats: utime + stime, s, and summed RSS, MB. */
  labCpuS: number | null;
  labRssMB: number | null;
}

function sampleCpuMem(lab: Lab | undefined, hz: number): CpuMem {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  let labCpuS: number | null = null;
  let labRssMB: number | null = null;
  if (lab) {
    try {
      const pids = [lab.btvirt.pid, lab.central.socat.pid, lab.peripheral.socat.pid].filter(
        (p): p is number => p !== undefined,
      );
      labCpuS = pids.reduce((s, p) => s + cpuTicks(p), 0) / hz;
      labRssMB = pids.reduce((s, p) => s + memory(p).vmRssKb, 0) / 1024;
    } catch {
      // a lab process is gone: reported as null
    }
  }
  return {
    at: new Date().toISOString(),
    cpuUserS: cpu.user / 1e6,
    cpuSystemS: cpu.system / 1e6,
    rssMB: mem.rss / 1024 / 1024,
    heapUsedMB: mem.heapUsed / 1024 / 1024,
    labCpuS,
    labRssMB,
  };
}

// ---- the soak -------------------------------------------------------------------------------------------------

interface Drop {
  /** ms since the soak start. */
  at: number;
  /** Was the central connected when the peripheral dropped it? */
  wasConnected: boolean;
  /** Drop → the link saw the loss / reconnected / first snapshot, ms (null: not within this drop's window). */
  lossSeenMs: number | null;
  reconnectMs: number | null;
  firstSnapshotMs: number | null;
  /** Longest gap between snapshots from the last one before the drop to the next drop (or the end), ms. */
  longestGapMs: number | null;
  /** No snapshot at all after the drop within its window (the gap is then counted up to the window end). */
  noSnapshotAfter: boolean;
}

async function main(): Promise<number> {
  let opts: SoakOptions | undefined;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (!opts) {
    process.stdout.write(USAGE);
    return 0;
  }
  const root = repoRoot();
  const outFile = resolve(root, opts.out ?? join('bench', 'results', 'ble-soak.json'));
  const hz = clockTicksPerSecond();
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers(log);
  process.on('exit', releaseLab);

  const odd: string[] = [];
  const noteOdd = (what: string) => {
    odd.push(`${new Date().toISOString()} ${what}`);
    log(`odd: ${what}`);
  };
  process.on('uncaughtException', (e) => noteOdd(`uncaught exception: ${e instanceof Error ? e.stack : String(e)}`));
  process.on('unhandledRejection', (e) => noteOdd(`unhandled rejection: ${e instanceof Error ? e.stack : String(e)}`));

  const atLaunch = sampleCpuMem(undefined, hz);
  log(
    `BLE soak: ${opts.minutes} min, peripheral drops every ${opts.dropEverySeconds} s, poll ${opts.pollMs} ms, watchdog ${opts.noDataMs} ms`,
  );
  let result = 1;
  try {
    const lab = await startLab(cleanup, root);
    log(`btvirt pid ${lab.btvirt.pid}, central ${lab.central.port}, peripheral ${lab.peripheral.port}`);

    if (await blenoInterop()) {
      noteOdd(
        'src/sim/ble-peripheral.ts cannot start under plain Node (the bleno ESM namespace lacks Characteristic / PrimaryService): bench resolve hook used',
      );
    }
    const sim = new JbdSimulator({ cells: opts.cells, temperatureSensors: 3, seed: opts.seed });
    const device = new TimedDevice(sim);
    const p = await BlePeripheral.start(
      { name: 'xiaoxiang BMS', profile: JBD_BLE_PROFILE, uartPort: lab.peripheral.port },
      device,
    );
    cleanup.add(() => p.stop());
    log(`peripheral advertising as ${p.address}`);

    const noble = new NobleBleLink({ uartPort: lab.central.port });
    const adapterEvents = new Map<string, number>();
    noble.onEvent((e) => {
      const k = eventKind(e.level, e.message);
      adapterEvents.set(k, (adapterEvents.get(k) ?? 0) + 1);
    });
    cleanup.add(() => noble.close());
    const ble = new TimedBleLink(noble);
    await ble.powerOn(10_000);

    const driver = new JbdBleDriver({
      ble,
      address: p.address,
      mode: 'keep-connected',
      pollIntervalMs: opts.pollMs,
      noDataTimeoutMs: opts.noDataMs,
    });
    cleanup.add(() => driver.stop());

    let t0 = performance.now();
    const since = () => performance.now() - t0;
    const snapshots: number[] = [];
    const notifyToSnapshot: number[] = [];
    const replyToSnapshot: number[] = [];
    const connectMs: number[] = [];
    const connectedAt: number[] = [];
    const lostAt: { at: number; why: string }[] = [];
    const eventCounts = new Map<string, number>();
    const eventLog: { at: number; level: string; message: string }[] = [];
    let lastNotifyUsed = Number.NaN;
    let lastReplyUsed = Number.NaN;
    let badSnapshots = 0;
    /** reply → snapshot samples over 50 ms, with their time. */
    const slowReplies: { at: number; ms: number }[] = [];

    driver.onSnapshot((s: BatterySnapshot) => {
      const now = performance.now();
      snapshots.push(now - t0);
      // Only a snapshot completed by a fresh notification / reply gives a sample.
      if (Number.isFinite(ble.lastNotificationAt) && ble.lastNotificationAt !== lastNotifyUsed) {
        notifyToSnapshot.push(now - ble.lastNotificationAt);
        lastNotifyUsed = ble.lastNotificationAt;
      }
      if (Number.isFinite(device.lastReplyAt) && device.lastReplyAt !== lastReplyUsed) {
        replyToSnapshot.push(now - device.lastReplyAt);
        if (now - device.lastReplyAt > 50) {
          slowReplies.push({ at: r(now - t0, 0) ?? 0, ms: r(now - device.lastReplyAt, 1) ?? 0 });
        }
        lastReplyUsed = device.lastReplyAt;
      }
      if (s.cellVoltages?.length !== opts.cells) badSnapshots++;
    });
    driver.onEvent((e) => {
      const k = eventKind(e.level, e.message);
      eventCounts.set(k, (eventCounts.get(k) ?? 0) + 1);
      const at = since();
      if (e.level !== 'debug') eventLog.push({ at: r(at, 0) ?? 0, level: e.level, message: e.message });
      if (/: connected in \d+ ms$/.test(e.message)) {
        connectMs.push(driver.link.stats.lastConnectMs ?? Number.NaN);
        connectedAt.push(at);
      } else if (e.level === 'warn' && / after \d+(\.\d+)? s$/.test(e.message)) {
        // the link's own loss report (the bus repeats it as "BLE lost: …")
        lostAt.push({ at, why: e.message });
      }
      if (e.level === 'error') noteOdd(`driver error event: ${e.message}`);
    });

    // First connection: not part of the soak window (it includes the first scan for the address).
    t0 = performance.now();
    driver.start();
    await waitFor(() => snapshots.length > 0, 60_000, 'the first snapshot');
    const firstSnapshotMs = snapshots[0] as number;
    log(
      `first snapshot ${fixed(firstSnapshotMs, 0)} ms after start (connect ${fixed(connectMs[0] ?? Number.NaN, 0)} ms)`,
    );

    const atStart = sampleCpuMem(lab, hz);
    const soakStart = since();
    const soakMs = opts.minutes * 60_000;
    const drops: Drop[] = [];
    const dropTimer =
      opts.dropEverySeconds > 0
        ? setInterval(() => {
            const wasConnected = driver.link.isConnected;
            drops.push({
              at: since(),
              wasConnected,
              lossSeenMs: null,
              reconnectMs: null,
              firstSnapshotMs: null,
              longestGapMs: null,
              noSnapshotAfter: false,
            });
            if (!wasConnected) noteOdd(`drop #${drops.length}: the central was not connected at the drop`);
            p.disconnect();
          }, opts.dropEverySeconds * 1000)
        : undefined;
    const progressTimer = setInterval(() => {
      const st = driver.link.stats;
      const mb = process.memoryUsage().rss / 1024 / 1024;
      log(
        `${fixed((since() - soakStart) / 60_000, 1)} min: ${snapshots.length} snapshots, ${st.connects} connects, ${st.lost} lost, ${st.failedConnects} failed, ${st.watchdogTrips} watchdog, ${drops.length} drops, RSS ${fixed(mb, 1)} MB`,
      );
    }, 60_000);
    cleanup.add(async () => {
      clearInterval(dropTimer);
      clearInterval(progressTimer);
    });
    await sleep(soakMs);
    clearInterval(dropTimer);
    clearInterval(progressTimer);
    const soakEnd = since();
    const atEnd = sampleCpuMem(lab, hz);
    const stats = { ...driver.link.stats };
    const peripheralCounts = { accepted: p.accepted, disconnected: p.disconnected };
    const simStats = sim.stats;

    // ---- per-drop figures ----
    for (let i = 0; i < drops.length; i++) {
      const d = drops[i] as Drop;
      const end = drops[i + 1]?.at ?? soakEnd;
      const lost = lostAt.find((l) => l.at >= d.at && l.at < end);
      const conn = connectedAt.find((c) => c >= d.at && c < end);
      const after = snapshots.filter((s) => s > d.at && s <= end);
      const before = snapshots.filter((s) => s <= d.at);
      d.lossSeenMs = lost ? r(lost.at - d.at, 1) : null;
      d.reconnectMs = conn !== undefined ? r(conn - d.at, 1) : null;
      d.firstSnapshotMs = after[0] !== undefined ? r(after[0] - d.at, 1) : null;
      const times = [...(before.length > 0 ? [before[before.length - 1] as number] : [d.at]), ...after];
      if (after.length === 0) times.push(end);
      d.noSnapshotAfter = after.length === 0;
      let gap = 0;
      for (let j = 1; j < times.length; j++) gap = Math.max(gap, (times[j] as number) - (times[j - 1] as number));
      d.longestGapMs = r(gap, 1);
      if (d.noSnapshotAfter) noteOdd(`drop #${i + 1}: no snapshot after it within its window`);
    }
    // steady-state gaps (between drops): the longest inter-snapshot gap overall
    const soakSnaps = snapshots.filter((s) => s >= soakStart);
    let longestGapOverall = 0;
    for (let j = 1; j < soakSnaps.length; j++) {
      longestGapOverall = Math.max(longestGapOverall, (soakSnaps[j] as number) - (soakSnaps[j - 1] as number));
    }

    const reconnects = connectMs.slice(1);
    const cAll = summarize(connectMs.filter(Number.isFinite));
    const cRe = summarize(reconnects.filter(Number.isFinite));
    const gaps = summarize(drops.map((d) => d.longestGapMs ?? Number.NaN).filter(Number.isFinite));
    const toFirst = summarize(drops.map((d) => d.firstSnapshotMs ?? Number.NaN).filter(Number.isFinite));
    const lossSeen = summarize(drops.map((d) => d.lossSeenMs ?? Number.NaN).filter(Number.isFinite));
    const n2s = summarize(notifyToSnapshot);
    const r2s = summarize(replyToSnapshot);
    const soakMinutes = (soakEnd - soakStart) / 60_000;
    const cpuDelta = atEnd.cpuUserS + atEnd.cpuSystemS - (atStart.cpuUserS + atStart.cpuSystemS);
    const labDelta = atEnd.labCpuS !== null && atStart.labCpuS !== null ? atEnd.labCpuS - atStart.labCpuS : Number.NaN;
    const disconnectEvents = lostAt.filter((l) => /disconnected by the peer/.test(l.why)).length;
    const sortedEvents = [...eventCounts.entries()].sort((a, b) => b[1] - a[1]);
    const sortedAdapter = [...adapterEvents.entries()].sort((a, b) => b[1] - a[1]);

    const ms = (v: number, d = 0) => `${fixed(v, d)} ms`;
    const rows: Row[] = [
      { section: 'run', measure: 'soak duration', value: `${fixed(soakMinutes, 2)} min` },
      {
        section: 'run',
        measure: 'settings',
        value: `drop every ${opts.dropEverySeconds} s, poll ${opts.pollMs} ms, watchdog ${opts.noDataMs} ms, ${opts.cells} cells`,
      },
      { section: 'run', measure: 'first snapshot after driver start', value: ms(firstSnapshotMs) },
      {
        section: 'run',
        measure: 'snapshots in the soak window',
        value: `${soakSnaps.length}  (${fixed(soakSnaps.length / ((soakEnd - soakStart) / 1000), 3)} /s)`,
      },
      {
        section: 'conn',
        measure: 'connect time, all connections (min / median / max)',
        value: `${fixed(cAll.min, 0)} / ${fixed(cAll.p50, 0)} / ${fixed(cAll.max, 0)} ms  (n = ${cAll.count})`,
      },
      {
        section: 'conn',
        measure: 'connect time, reconnections only (min / median / max)',
        value: `${fixed(cRe.min, 0)} / ${fixed(cRe.p50, 0)} / ${fixed(cRe.max, 0)} ms  (n = ${cRe.count})`,
      },
      {
        section: 'conn',
        measure: 'drops issued (central connected at the drop)',
        value: `${drops.length}  (${drops.filter((d) => d.wasConnected).length})`,
      },
      {
        section: 'conn',
        measure: 'disconnects seen by the link (peer / watchdog / other)',
        value: `${stats.lost}  (${disconnectEvents} / ${stats.watchdogTrips} / ${stats.lost - disconnectEvents - stats.watchdogTrips})`,
      },
      {
        section: 'conn',
        measure: 'reconnects made / failed connect attempts',
        value: `${Math.max(0, stats.connects - 1)} / ${stats.failedConnects}`,
      },
      {
        section: 'conn',
        measure: 'peripheral: connections accepted / ended',
        value: `${peripheralCounts.accepted} / ${peripheralCounts.disconnected}`,
      },
      { section: 'conn', measure: 'watchdog trips', value: `${stats.watchdogTrips}` },
      {
        section: 'drop',
        measure: 'drop → loss seen by the link (median / max)',
        value: `${ms(lossSeen.p50, 1)} / ${ms(lossSeen.max, 1)}  (n = ${lossSeen.count})`,
      },
      {
        section: 'drop',
        measure: 'drop → first snapshot (median / max)',
        value: `${ms(toFirst.p50)} / ${ms(toFirst.max)}  (n = ${toFirst.count})`,
      },
      {
        section: 'drop',
        measure: 'longest gap without a snapshot per drop (median / max)',
        value: `${ms(gaps.p50)} / ${ms(gaps.max)}  (n = ${gaps.count})`,
      },
      {
        section: 'drop',
        measure: 'longest snapshot gap in the whole soak',
        value: ms(longestGapOverall),
      },
      {
        section: 'lat',
        measure: 'last notification (central rx) → snapshot (median / p99 / max)',
        value: `${ms(n2s.p50, 2)} / ${ms(n2s.p99, 2)} / ${ms(n2s.max, 2)}  (n = ${n2s.count})`,
      },
      {
        section: 'lat',
        measure: 'reply handed to bleno → snapshot (median / p99 / max)',
        value: `${ms(r2s.p50, 2)} / ${ms(r2s.p99, 2)} / ${ms(r2s.max, 2)}  (n = ${r2s.count})`,
      },
      {
        section: 'cpu',
        measure: 'this process CPU user+sys at start → end',
        value: `${fixed(atStart.cpuUserS + atStart.cpuSystemS, 2)} → ${fixed(atEnd.cpuUserS + atEnd.cpuSystemS, 2)} s  (${fixed((cpuDelta / soakMinutes) * 60, 1)} s/h)`,
      },
      {
        section: 'cpu',
        measure: 'this process RSS at launch / start → end',
        value: `${fixed(atLaunch.rssMB, 1)} / ${fixed(atStart.rssMB, 1)} → ${fixed(atEnd.rssMB, 1)} MiB  (heap ${fixed(atStart.heapUsedMB, 1)} → ${fixed(atEnd.heapUsedMB, 1)} MiB)`,
      },
      {
        section: 'cpu',
        measure: 'btvirt + 2 socat: CPU start → end, RSS end',
        value: `${fixed(atStart.labCpuS ?? Number.NaN, 2)} → ${fixed(atEnd.labCpuS ?? Number.NaN, 2)} s  (${fixed((labDelta / soakMinutes) * 60, 1)} s/h), ${fixed(atEnd.labRssMB ?? Number.NaN, 1)} MiB`,
      },
      { section: 'sim', measure: 'simulator replies / bad snapshots', value: `${simStats.replies} / ${badSnapshots}` },
      ...sortedEvents.map(([k, n]) => ({ section: 'events', measure: k, value: String(n) })),
      ...sortedAdapter.map(([k, n]) => ({ section: 'adapter', measure: k, value: String(n) })),
    ];
    process.stdout.write(`\nBLE soak (btvirt, noble central + JbdBleDriver, bleno peripheral + JbdSimulator)\n\n`);
    process.stdout.write(`${renderTable(rows)}\n`);
    if (odd.length > 0) process.stdout.write(`\nodd:\n  ${odd.join('\n  ')}\n`);

    const sum = (s: ReturnType<typeof summarize>, d = 1) => ({
      count: s.count,
      min: r(s.min, d),
      median: r(s.p50, d),
      p99: r(s.p99, d),
      max: r(s.max, d),
    });
    const json = {
      bench: 'ble-soak',
      finishedAt: new Date().toISOString(),
      options: opts,
      soakMinutes: r(soakMinutes, 3),
      firstSnapshotMs: r(firstSnapshotMs, 1),
      snapshots: soakSnaps.length,
      connectMs: { all: sum(cAll), reconnects: sum(cRe), each: connectMs.map((v) => r(v, 1)) },
      link: stats,
      disconnectsByPeer: disconnectEvents,
      reconnects: Math.max(0, stats.connects - 1),
      peripheral: peripheralCounts,
      drops: {
        issued: drops.length,
        whileConnected: drops.filter((d) => d.wasConnected).length,
        lossSeenMs: sum(lossSeen),
        firstSnapshotMs: sum(toFirst),
        longestGapMs: sum(gaps),
        each: drops.map((d) => ({ ...d, at: r(d.at, 0) })),
      },
      longestGapOverallMs: r(longestGapOverall, 1),
      latencyMs: { notificationToSnapshot: sum(n2s, 3), replyToSnapshot: sum(r2s, 3), slowReplies },
      watchdogTrips: stats.watchdogTrips,
      events: Object.fromEntries(sortedEvents),
      adapterEvents: Object.fromEntries(sortedAdapter),
      eventLog,
      simulator: simStats,
      badSnapshots,
      cpuMem: {
        launch: atLaunch,
        start: atStart,
        end: atEnd,
        cpuSecondsPerHour: r((cpuDelta / soakMinutes) * 60, 2),
        labCpuSecondsPerHour: r((labDelta / soakMinutes) * 60, 2),
      },
      odd,
      table: renderTable(rows),
    };
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`\nwritten to ${relative(process.cwd(), outFile) || outFile}\n`);
    result = 0;
  } catch (e) {
    process.stderr.write(`ble-soak failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    result = 1;
  } finally {
    log('cleaning up');
    await cleanup.runAll();
    releaseLab();
  }
  return result;
}

// noble and bleno keep handles open after close(): leave explicitly.
main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
