/**
 * `npm run bench`: what one JBD frame costs to decode, how long a reply takes to reach D-Bus, and what the
 * driver process costs in CPU and memory for one battery and for the target load (four batteries).
 *
 *   1  decode / framer rates            in this process, pure functions
 *   2  reply → ItemsChanged latency      ┐ driver = separate `cli.js run` process, one battery at 1 Hz,
 *   3  CPU s/h, RSS, first values        ┘ simulated JBD on a pty pair, private dbus-daemon
 *   4  target load                       same, four batteries in one driver process
 *
 * Figures are printed and written to bench/results/latest.json; nothing here fails on a missed target.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Baseline, bareNode } from './baseline.js';
import { Cleanup } from './cleanup.js';
import { benchDecode, type RateResult } from './decode.js';
import { type LiveResult, runLive } from './live.js';
import { machineInfo } from './machine.js';
import { type BenchOptions, parseOptions, USAGE, UsageError } from './options.js';
import { DRIVER_NODE_FLAGS } from './rig.js';
import { fixed, grouped, r } from './stats.js';
import { type Row, renderTable } from './table.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** dist-bench/bench/run.js → the repository root. */
const ROOT = resolve(HERE, '..', '..');

/** Targets of the project (four batteries in one process at 1 s poll). */
const TARGET = { cpuSecondsPerHour: 7.5, rssMB: 65, latencyP99Ms: 20, firstValuesMs: 2000 };

const progress = (line: string) => process.stderr.write(`  · ${line}\n`);

/** kB (KiB, as /proc reports) → MB of 10^6 bytes, the unit of the target. */
function toMB(kb: number): number {
  return (kb * 1024) / 1e6;
}

function mb(kb: number): string {
  return `${fixed(toMB(kb), 1)} MB`;
}

function mib(kb: number): string {
  return `${fixed(kb / 1024, 1)} MiB`;
}

function decodeRows(results: readonly RateResult[]): Row[] {
  const label: Record<string, string> = {
    '0x03 decode': 'JBD 0x03 decode: decodeFrame + decodeBasicInfo + toSnapshot',
  };
  return results.map((d) => ({
    section: '1',
    measure: label[d.name] ?? `JbdFramer.push, 0x03 + 0x04 stream in ${d.name.replace('framer ', '')}`,
    value: `${grouped(d.framesPerSecond)} frames/s  (${fixed(d.nsPerFrame, 0)} ns/frame)`,
  }));
}

function liveRows(sections: { latency: string; cost: string }, res: LiveResult, targets: boolean): Row[] {
  const n = res.batteries;
  const who = n === 1 ? '1 battery' : `${n} batteries`;
  const lat = res.latencyMs;
  const first = Math.max(...res.firstValuesMs);
  return [
    {
      section: sections.latency,
      measure: `reply → ItemsChanged p50, ${who} @ 1 Hz`,
      value: `${fixed(lat.p50, 2)} ms`,
    },
    {
      section: sections.latency,
      measure: `reply → ItemsChanged p99, ${who} @ 1 Hz`,
      value: `${fixed(lat.p99, 2)} ms  (max ${fixed(lat.max, 2)}, n = ${lat.count}, ${res.latencyUnmatched} lost)`,
      target: `≤ ${TARGET.latencyP99Ms} ms`,
      met: lat.count > 0 && lat.p99 <= TARGET.latencyP99Ms,
    },
    {
      section: sections.cost,
      measure: `first values (/Connected = 1) after spawn, ${who}${n > 1 ? ', slowest' : ''}`,
      value: `${fixed(first, 0)} ms`,
      target: `≤ ${TARGET.firstValuesMs} ms`,
      met: first <= TARGET.firstValuesMs,
    },
    {
      section: sections.cost,
      measure: `driver CPU, ${who}, ${fixed(res.windowSeconds, 0)} s window after ${fixed(res.warmupSeconds, 0)} s`,
      value: `${fixed(res.driverCpuSecondsPerHour, 2)} CPU s/h  (${fixed(res.driverCpuSeconds, 2)} s measured)`,
      ...(targets
        ? { target: `≤ ${TARGET.cpuSecondsPerHour} s/h`, met: res.driverCpuSecondsPerHour <= TARGET.cpuSecondsPerHour }
        : {}),
    },
    {
      section: sections.cost,
      measure: `driver RSS ${fixed(res.rssAtSeconds, 0)} s after spawn, ${who}`,
      value: `${mb(res.driverRssKb)}  (${mib(res.driverRssKb)}; peak ${mb(res.driverPeakRssKb)})`,
      ...(targets ? { target: `≤ ${TARGET.rssMB} MB`, met: toMB(res.driverRssKb) <= TARGET.rssMB } : {}),
    },
    {
      section: 'i',
      measure: `D-Bus signals from the driver, ${who}`,
      value: `${fixed(res.itemsChangedPerSecond, 2)} ItemsChanged/s × ${fixed(res.pathsPerItemsChanged, 1)} paths (no per-path PropertiesChanged by default)`,
    },
    {
      section: 'i',
      measure: `dbus-daemon CPU in the same window, ${who} (not the driver's)`,
      value: `${fixed(res.busCpuSecondsPerHour, 2)} CPU s/h`,
    },
  ];
}

function profileText(res: LiveResult): string {
  const p = res.profile;
  if (!p) return '';
  const who = res.batteries === 1 ? '1 battery' : `${res.batteries} batteries`;
  const list = (title: string, hot: readonly { name: string; ms: number; share: number }[]) => [
    title,
    ...hot.map((h) => `  ${fixed(h.share, 1).padStart(5)} %  ${fixed(h.ms, 0).padStart(6)} ms  ${h.name}`),
  ];
  return [
    `driver CPU profile, ${who}: ${fixed(p.busyMs, 0)} ms sampled busy in the ${fixed(p.windowMs / 1000, 0)} s window (${relative(process.cwd(), p.file)})`,
    ...list('self time by package:', p.byPackage),
    ...list('self time by function:', p.byFunction),
    ...list('inclusive time of src/ functions:', p.srcInclusive),
  ].join('\n');
}

/**
 * JSON.stringify with 2-space indent, arrays of plain values on one line when they fit in 120 columns: the
 * layout Biome's formatter gives, so the results file does not trip `biome check`.
 */
function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /^( *)("[^"\n]*": )?\[\n((?: *(?:-?[\d.e+-]+|"[^"\n]*"|true|false|null),?\n)+) *\]/gm,
    (whole, indent: string, key: string | undefined, body: string) => {
      const items = body
        .split('\n')
        .map((l) => l.trim().replace(/,$/, ''))
        .filter((l) => l !== '');
      const line = `${indent}${key ?? ''}[${items.join(', ')}]`;
      return line.length <= 120 ? line : whole;
    },
  );
}

function liveJson(res: LiveResult) {
  return {
    ...res,
    firstValuesMs: res.firstValuesMs.map((v) => r(v, 1)),
    latencyMs: Object.fromEntries(Object.entries(res.latencyMs).map(([k, v]) => [k, r(v, 3)])),
    warmupSeconds: r(res.warmupSeconds, 3),
    windowSeconds: r(res.windowSeconds, 3),
    driverCpuSeconds: r(res.driverCpuSeconds, 3),
    driverCpuSecondsPerHour: r(res.driverCpuSecondsPerHour, 3),
    driverRssMB: r(toMB(res.driverRssKb), 2),
    driverPeakRssMB: r(toMB(res.driverPeakRssKb), 2),
    rssAtSeconds: r(res.rssAtSeconds, 1),
    busCpuSecondsPerHour: r(res.busCpuSecondsPerHour, 3),
    itemsChangedPerSecond: r(res.itemsChangedPerSecond, 3),
    pathsPerItemsChanged: r(res.pathsPerItemsChanged, 2),
  };
}

async function bench(opts: BenchOptions): Promise<void> {
  const started = new Date();
  const loadAtStart = os.loadavg();
  const machine = machineInfo();
  const cliPath = resolve(opts.driver ?? join(HERE, '..', 'src', 'cli.js'));
  const out = resolve(opts.out ?? join(ROOT, 'bench', 'results', 'latest.json'));
  const resultsDir = dirname(out);
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers((l) => process.stderr.write(`${l}\n`));

  const header = [
    `dbus-batterybank bench · ${started.toISOString()}`,
    `machine  ${machine.cpuModel} · ${machine.logicalCores} logical cores${machine.cpuMHz ? ` @ ${machine.cpuMHz} MHz` : ''} · ${fixed(machine.memoryMB / 1024, 1)} GiB · ${machine.os} ${machine.arch}`,
    `load     ${loadAtStart.map((l) => fixed(l, 2)).join(' ')} (1/5/15 min) at start${(loadAtStart[0] ?? 0) > machine.logicalCores / 2 ? ': the machine is busy, expect skewed figures' : ''}`,
    `runtime  node ${machine.nodeVersion} (V8 ${machine.v8}) · dbus-daemon ${machine.dbusDaemon} · pty helper ${machine.ptyBackend}`,
    `run      ${opts.quick ? 'quick' : 'full'} · ${grouped(opts.iterations)} decode iterations · driver warm-up ${opts.warmupSeconds} s, window ${opts.seconds} s · ≥ ${opts.samples} latency samples · ${opts.cells} cells per battery`,
  ].join('\n');
  process.stdout.write(`${header}\n\n`);

  const rows: Row[] = [];
  let decode: RateResult[] | undefined;
  let one: LiveResult | undefined;
  let bank: LiveResult | undefined;
  let baseline: Baseline | undefined;

  if (opts.only.has('one') || opts.only.has('bank')) {
    if (!existsSync(cliPath)) throw new Error(`driver entry point ${cliPath} not found (npm run bench builds it)`);
  }
  if (opts.only.has('decode')) {
    progress(`decode: ${grouped(opts.iterations)} iterations per case`);
    decode = benchDecode(opts.iterations);
    rows.push(...decodeRows(decode));
  }
  if (opts.only.has('one')) {
    one = await runLive({
      label: 'one battery',
      batteries: 1,
      cells: opts.cells,
      warmupSeconds: opts.warmupSeconds,
      windowSeconds: opts.seconds,
      minSamples: opts.samples,
      cliPath,
      driverFlags: opts.driverFlags,
      profileTo: opts.profile ? join(resultsDir, 'driver-1.cpuprofile') : undefined,
      cleanup,
      progress,
    });
    rows.push(...liveRows({ latency: '2', cost: '3' }, one, false));
  }
  if (opts.only.has('bank')) {
    bank = await runLive({
      label: `${opts.batteries} batteries`,
      batteries: opts.batteries,
      cells: opts.cells,
      warmupSeconds: opts.warmupSeconds,
      windowSeconds: opts.seconds,
      minSamples: 0,
      cliPath,
      driverFlags: opts.driverFlags,
      profileTo: opts.profile ? join(resultsDir, `driver-${opts.batteries}.cpuprofile`) : undefined,
      cleanup,
      progress,
    });
    rows.push(...liveRows({ latency: '4', cost: '4' }, bank, opts.batteries === 4));
  }
  if (opts.only.has('one') || opts.only.has('bank')) {
    progress('bare node process for comparison');
    baseline = await bareNode(cleanup);
    rows.push({
      section: 'i',
      measure: `bare node process (same flags, 1 s interval only) RSS after ${baseline.afterSeconds} s`,
      value: `${mb(baseline.rssKb)}  (${mib(baseline.rssKb)})`,
    });
  }
  // By section (stable), information rows ('i') last.
  const order = (row: Row) => (row.section === 'i' ? 99 : Number(row.section));
  rows.sort((a, b) => order(a) - order(b));

  process.stdout.write(`${renderTable(rows)}\n\n`);
  const notes = [
    'latency: simulator reply (its last byte handed to the pty) → a separate D-Bus client receives the',
    "  ItemsChanged carrying that reply's value; both times from the bench process clock. The pty has no",
    '  baud rate: on a real 9600 Bd line add ~1 ms per byte of the last reply.',
    'CPU: utime + stime of the driver process (all threads) from /proc/<pid>/stat over the window, × 3600 / window.',
    'RSS: VmRSS (peak: VmHWM) from /proc/<pid>/status at the end of the window; MB = 10^6 bytes, MiB = 2^20.',
    `driver: node ${[...DRIVER_NODE_FLAGS, ...opts.driverFlags].join(' ')} ${relative(process.cwd(), cliPath) || cliPath} run --config … (${opts.driverFlags.length ? 'service/run flags + --driver-flags' : 'flags as service/run'}).`,
    'first values: spawn of the driver → /Connected = 1 seen on the bus (no localsettings on the private bus).',
  ];
  if (opts.profile) notes.push('--profile: the driver ran under --cpu-prof, so its CPU figures include the profiler.');
  for (const res of [one, bank]) {
    if (res && res.driverExit !== 'exit 0') notes.push(`driver (${res.label}) ended with ${res.driverExit} on SIGTERM`);
  }
  const warnings = [...(one?.driverWarnings ?? []), ...(bank?.driverWarnings ?? [])];
  if (warnings.length > 0) notes.push('driver warnings:', ...warnings.map((w) => `  ${w}`));
  process.stdout.write(`${notes.join('\n')}\n`);

  for (const res of [one, bank]) if (res?.profile) process.stdout.write(`\n${profileText(res)}\n`);

  mkdirSync(dirname(out), { recursive: true });
  const json = {
    bench: 'dbus-batterybank',
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    loadAverage: { atStart: loadAtStart, atEnd: os.loadavg() },
    machine,
    options: { ...opts, only: [...opts.only] },
    targets: TARGET,
    decode: decode?.map((d) => ({
      ...d,
      seconds: r(d.seconds, 4),
      framesPerSecond: Math.round(d.framesPerSecond),
      nsPerFrame: r(d.nsPerFrame, 1),
    })),
    oneBattery: one ? liveJson(one) : undefined,
    targetLoad: bank ? liveJson(bank) : undefined,
    bareNode: baseline,
    table: rows.map((row) => ({ ...row, met: row.met ?? null })),
  };
  writeFileSync(out, `${toJson(json)}\n`);
  process.stdout.write(`\nJSON: ${relative(process.cwd(), out) || out}\n`);
}

async function main(): Promise<number> {
  let opts: BenchOptions | undefined;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bench: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (opts === undefined) {
    process.stdout.write(USAGE);
    return 0;
  }
  await bench(opts);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
