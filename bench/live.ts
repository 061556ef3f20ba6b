/**
 * Sections 2–4: the driver as its own process on a private dbus-daemon, reading simulated JBD batteries on
 * real pty pairs, observed by a separate D-Bus client in this process.
 *
 *   spawn ── first /Connected = 1 per battery ── warm-up ends: window starts ── window ends ── (more samples)
 *            (first-values time)                  CPU ticks, latency on          CPU ticks, VmRSS / VmHWM
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type BenchBus, Observer, startBenchBus } from './bus.js';
import type { Cleanup } from './cleanup.js';
import { clockTicksPerSecond, cpuTicks, memory } from './proc.js';
import { findProfile, monotonicUs, type ProfileSummary, summarizeProfile } from './profile.js';
import { type DriverProcess, spawnDriver, TaggedBattery } from './rig.js';
import { type Summary, summarize } from './stats.js';

export interface LiveOptions {
  label: string;
  batteries: number;
  cells: number;
  warmupSeconds: number;
  windowSeconds: number;
  /** Keep sampling latency after the window until this many samples (one-battery run). */
  minSamples: number;
  cliPath: string;
  /** Extra node flags for the driver. */
  driverFlags: readonly string[];
  /** Profile the driver (--cpu-prof) and copy the profile here. */
  profileTo: string | undefined;
  cleanup: Cleanup;
  progress: (line: string) => void;
}

export interface LiveResult {
  label: string;
  batteries: number;
  cells: number;
  pollIntervalS: number;
  /** Per battery: spawn → first ItemsChanged / GetItems with /Connected = 1, ms. */
  firstValuesMs: number[];
  latencyMs: Summary;
  latencyUnmatched: number;
  warmupSeconds: number;
  windowSeconds: number;
  driverCpuSeconds: number;
  driverCpuSecondsPerHour: number;
  /** VmRSS at the end of the window, kB (KiB). */
  driverRssKb: number;
  /** VmHWM at the end of the window, kB (KiB). */
  driverPeakRssKb: number;
  /** Seconds after spawn at which VmRSS was read. */
  rssAtSeconds: number;
  /** The private dbus-daemon's CPU over the same window (routing our signals), for information. */
  busCpuSecondsPerHour: number;
  /** ItemsChanged signals per second from all of the driver's services, in the window. */
  itemsChangedPerSecond: number;
  /** Mean number of paths per ItemsChanged (per-path PropertiesChanged only with dbus_properties_changed). */
  pathsPerItemsChanged: number;
  driverExit: string;
  /** Warnings and errors the driver logged. */
  driverWarnings: string[];
  /** With --profile: where the driver's CPU went inside the window. */
  profile?: ProfileSummary;
}

const CONNECT_TIMEOUT_MS = 15_000;
const SERVICE_PREFIX = 'com.victronenergy.battery.batterybank_b';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

/** Wait for `until()` (checked every 25 ms), failing early if the driver dies. */
async function waitFor(until: () => boolean, timeoutMs: number, driver: DriverProcess, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!until()) {
    if (driver.hasExited) throw new Error(`the driver exited while waiting for ${what}`);
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

async function sleepUntil(t: number, driver: DriverProcess, what: string): Promise<void> {
  while (performance.now() < t) {
    if (driver.hasExited) throw new Error(`the driver exited during ${what}`);
    await sleep(Math.min(250, t - performance.now()));
  }
}

export async function runLive(opts: LiveOptions): Promise<LiveResult> {
  const { cleanup, progress } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'batterybank-bench-'));
  cleanup.dir(dir);
  let bus: BenchBus | undefined;
  let driver: DriverProcess | undefined;
  const batteries: TaggedBattery[] = [];
  try {
    bus = await startBenchBus(dir, (c) => cleanup.child(c));
    const theBus = bus;
    cleanup.add(() => theBus.stop());
    const observer = await Observer.connect(bus.address, () => performance.now());
    cleanup.add(async () => observer.close());
    cleanup.add(async () => {
      await Promise.all(batteries.map((b) => b.close()));
    });
    for (let i = 0; i < opts.batteries; i++) batteries.push(await TaggedBattery.create(i, opts.cells));

    const sections = batteries.map(
      (b) => `[battery.b${b.index}]\nprotocol = jbd\nport = ${b.path}\npoll_interval = 1\n`,
    );
    const configPath = join(dir, 'config.ini');
    writeFileSync(configPath, `[general]\nlog_level = info\n\n${sections.join('\n')}`);

    // Who is who on the bus, and when each battery first shows /Connected = 1.
    const owners = new Map<string, number>();
    const firstConnected: (number | undefined)[] = batteries.map(() => undefined);
    let spawnedAt = 0;
    const connectedAt = (index: number, t: number) => {
      if (firstConnected[index] === undefined) firstConnected[index] = t - spawnedAt;
    };
    const obs = observer;
    obs.onNameOwnerChanged((name, owner) => {
      if (!name.startsWith(SERVICE_PREFIX) || owner === '') return;
      const index = Number(name.slice(SERVICE_PREFIX.length));
      owners.set(owner, index);
      // A service that registers with /Connected already 1 sends no ItemsChanged for it: ask once.
      obs.getItems(name).then(
        (items) => {
          if (items.get('/Connected') === 1) connectedAt(index, performance.now());
        },
        () => undefined,
      );
    });
    const signals = { counting: false, itemsChanged: 0, paths: 0 };
    obs.onItemsChanged((sender, items, t) => {
      const index = owners.get(sender);
      if (index !== undefined && items.get('/Connected') === 1) connectedAt(index, t);
      if (index !== undefined && signals.counting) {
        signals.itemsChanged++;
        signals.paths += items.size;
      }
      const current = items.get('/Dc/0/Current');
      if (typeof current !== 'number') return;
      for (const b of batteries) if (b.owns(current)) b.onPublished(current, t);
    });

    progress(`${opts.label}: driver process on ${opts.batteries} pty pair(s), private dbus-daemon`);
    const profDir = join(dir, 'prof');
    const profFlags = opts.profileTo ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
    driver = spawnDriver(opts.cliPath, configPath, bus.address, (c) => cleanup.child(c), [
      ...opts.driverFlags,
      ...profFlags,
    ]);
    spawnedAt = driver.spawnedAt;
    const theDriver = driver;
    const stopDriver = cleanup.add(async () => {
      await theDriver.stop();
    });

    await waitFor(
      () => firstConnected.every((t) => t !== undefined),
      CONNECT_TIMEOUT_MS,
      driver,
      '/Connected = 1 on every battery service',
    );
    progress(
      `${opts.label}: first values after ${firstConnected.map((t) => `${Math.round(t ?? 0)} ms`).join(', ')}; warm-up`,
    );

    const hz = clockTicksPerSecond();
    await sleepUntil(spawnedAt + opts.warmupSeconds * 1000, driver, 'the warm-up');
    const t0 = performance.now();
    const mono0 = monotonicUs();
    const cpu0 = cpuTicks(driver.pid);
    const bus0 = cpuTicks(bus.pid);
    for (const b of batteries) b.startRecording();
    signals.counting = true;
    progress(`${opts.label}: measuring for ${opts.windowSeconds} s`);
    await sleepUntil(t0 + opts.windowSeconds * 1000, driver, 'the window');
    const cpu1 = cpuTicks(driver.pid);
    const bus1 = cpuTicks(bus.pid);
    const mem = memory(driver.pid);
    const t1 = performance.now();
    signals.counting = false;
    const mono1 = monotonicUs();

    const sampleCount = () => batteries.reduce((n, b) => n + b.samples.length, 0);
    if (sampleCount() < opts.minSamples) {
      progress(`${opts.label}: ${sampleCount()} latency samples, sampling on to ${opts.minSamples}`);
      const need = opts.minSamples - sampleCount();
      await waitFor(() => sampleCount() >= opts.minSamples, need * 2000 + 10_000, driver, 'latency samples');
    }
    for (const b of batteries) b.stopRecording();

    const windowS = (t1 - t0) / 1000;
    const cpuS = (cpu1 - cpu0) / hz;
    const result: LiveResult = {
      label: opts.label,
      batteries: opts.batteries,
      cells: opts.cells,
      pollIntervalS: 1,
      firstValuesMs: firstConnected.map((t) => t ?? Number.NaN),
      latencyMs: summarize(batteries.flatMap((b) => b.samples)),
      latencyUnmatched: batteries.reduce((n, b) => n + b.unmatched, 0),
      warmupSeconds: (t0 - spawnedAt) / 1000,
      windowSeconds: windowS,
      driverCpuSeconds: cpuS,
      driverCpuSecondsPerHour: (cpuS / windowS) * 3600,
      driverRssKb: mem.vmRssKb,
      driverPeakRssKb: mem.vmHwmKb,
      rssAtSeconds: (t1 - spawnedAt) / 1000,
      busCpuSecondsPerHour: ((bus1 - bus0) / hz / windowS) * 3600,
      itemsChangedPerSecond: signals.itemsChanged / windowS,
      pathsPerItemsChanged: signals.itemsChanged > 0 ? signals.paths / signals.itemsChanged : 0,
      driverExit: '',
      driverWarnings: [],
    };

    await stopDriver();
    const exit = await driver.exited;
    result.driverExit = exit.signal ? `signal ${exit.signal}` : `exit ${exit.code}`;
    result.driverWarnings = driver.logTail().filter((l) => /^(WARN|ERROR)\b/.test(l));
    if (opts.profileTo) {
      const file = findProfile(profDir);
      if (file === undefined) throw new Error('the driver wrote no CPU profile');
      mkdirSync(dirname(opts.profileTo), { recursive: true });
      copyFileSync(file, opts.profileTo);
      result.profile = { ...summarizeProfile(file, mono0, mono1), file: opts.profileTo };
    }
    return result;
  } catch (e) {
    const tail = driver?.logTail() ?? [];
    if (tail.length > 0) {
      (e as Error).message += `\n  driver log (last lines):\n${tail.map((l) => `    ${l}`).join('\n')}`;
    }
    throw e;
  } finally {
    // Driver first (it publishes its disconnect), then the ptys, our client, the daemon, the temp dir.
    await cleanup.runAll();
  }
}
