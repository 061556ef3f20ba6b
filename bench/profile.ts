/**
 * `--profile`: the driver runs under `node --cpu-prof`; afterwards the samples that fall inside the
 * measurement window are attributed to functions and to packages, so a CPU figure comes with where it goes.
 *
 * Window and samples share one clock: V8 stamps samples with CLOCK_MONOTONIC µs, which is what
 * process.hrtime() reads in this process.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Hot {
  name: string;
  ms: number;
  /** Share of the non-idle samples in the window, %. */
  share: number;
}

export interface ProfileSummary {
  file: string;
  /** Non-idle sampled time inside the window, ms. */
  busyMs: number;
  windowMs: number;
  /** Self time per package / src folder. */
  byPackage: Hot[];
  /** Self time per function. */
  byFunction: Hot[];
  /** Inclusive time of the project's own functions (src/): what they cost with everything they call. */
  srcInclusive: Hot[];
}

/** Monotonic clock in µs, the clock of V8's sample timestamps. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Where a frame's code lives: a package, a folder of src/, or a V8 / Node pseudo-frame. */
function packageOf(frame: CallFrame): string {
  const url = frame.url;
  if (url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  const src = /\/src\/(?:([^/]+)\/)?[^/]+\.js$/.exec(url);
  if (src) return src[1] ? `src/${src[1]}` : 'src';
  if (url.startsWith('node:')) return 'node internals';
  return url;
}

function frameName(frame: CallFrame): string {
  const fn = frame.functionName || '(anonymous)';
  if (frame.url === '') return fn;
  const short = frame.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/(src|bench)\//, '$1/');
  return `${fn}  ${short}:${frame.lineNumber + 1}`;
}

function top(map: Map<string, number>, busy: number, n: number): Hot[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, share: busy > 0 ? (100 * us) / busy : 0 }));
}

/** The only .cpuprofile in `dir`. */
export function findProfile(dir: string): string | undefined {
  const f = readdirSync(dir).find((n) => n.endsWith('.cpuprofile'));
  return f === undefined ? undefined : join(dir, f);
}

/** Self time per function and per package of the samples taken in [fromUs, toUs). */
export function summarizeProfile(file: string, fromUs: number, toUs: number, n = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const frames = new Map<number, CallFrame>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    frames.set(node.id, node.callFrame);
    for (const c of node.children ?? []) parent.set(c, node.id);
  }
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    // A sample stands for the time until the next one.
    const weight = profile.timeDeltas[i + 1] ?? 0;
    if (t < fromUs || t >= toUs) continue;
    const frame = frames.get(profile.samples[i] as number);
    if (frame === undefined || frame.functionName === '(idle)') continue;
    busy += weight;
    const pkg = packageOf(frame);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + weight);
    const name = frameName(frame);
    byFunction.set(name, (byFunction.get(name) ?? 0) + weight);
    const seen = new Set<string>();
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const f = frames.get(id);
      if (f === undefined || !/\/src\/.+\.js$/.test(f.url) || f.url.includes('node_modules')) continue;
      const key = frameName(f);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + weight);
    }
  }
  return {
    file,
    busyMs: busy / 1000,
    windowMs: (toUs - fromUs) / 1000,
    byPackage: top(byPackage, busy, n),
    byFunction: top(byFunction, busy, n),
    srcInclusive: top(inclusive, busy, n),
  };
}
