/**
 * Command line of `npm run bench` (arguments after `--`). Defaults are the full run; `--quick` shortens every
 * window for a smoke run; any explicit option overrides both.
 */

export type Section = 'decode' | 'one' | 'bank';
export const SECTIONS: readonly Section[] = ['decode', 'one', 'bank'];

export interface BenchOptions {
  quick: boolean;
  /** Timed iterations of each decode / framer micro-benchmark. */
  iterations: number;
  /** Latency samples wanted from the one-battery run (it runs longer than its window if needed). */
  samples: number;
  /** CPU / RSS measurement window, s. */
  seconds: number;
  /** Time between spawning the driver and the start of the window, s. */
  warmupSeconds: number;
  /** Batteries of the target-load run. */
  batteries: number;
  /** Cells per simulated battery. */
  cells: number;
  only: ReadonlySet<Section>;
  /** JSON copy of the results; default bench/results/latest.json. */
  out: string | undefined;
  /** Driver entry point; default the cli.js compiled next to the bench (dist-bench/src/cli.js). */
  driver: string | undefined;
  /** Run the driver under --cpu-prof and report where its CPU time goes in the window. */
  profile: boolean;
  /** Extra node flags for the driver, after those of service/run (experiments: --max-semi-space-size=1 …). */
  driverFlags: string[];
}

export const USAGE = `usage: npm run bench -- [options]

  --quick             short windows (smoke run, ~40 s)
  --iterations N      decode / framer iterations (default 300000, quick 30000)
  --samples N         reply → ItemsChanged samples, one battery at 1 Hz (default 60, quick 10)
  --seconds N         CPU / RSS window per driver run, s (default 60, quick 10)
  --warmup N          driver start → window start, s (default 10, quick 3)
  --batteries N       batteries in the target-load run (default 4)
  --cells N           cells per simulated battery (default 16)
  --only LIST         comma list of: ${SECTIONS.join(', ')} (default all)
  --out FILE          JSON results (default bench/results/latest.json)
  --driver FILE       driver cli.js to spawn (default dist-bench/src/cli.js)
  --driver-flags "F"  extra node flags for the driver, e.g. "--max-semi-space-size=1" (space-separated)
  --profile           run the driver under --cpu-prof: top functions / packages in the window, and
                      bench/results/driver-*.cpuprofile (CPU figures then include profiler overhead)
`;

export class UsageError extends Error {}

const VALUED = [
  'iterations',
  'samples',
  'seconds',
  'warmup',
  'batteries',
  'cells',
  'only',
  'out',
  'driver',
  'driver-flags',
];

function whole(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be a whole number ${min}–${max}`);
  return n;
}

/** Parse argv (without node and script). Throws UsageError; returns undefined for --help. */
export function parseOptions(argv: readonly string[]): BenchOptions | undefined {
  const given = new Map<string, string>();
  let quick = false;
  let profile = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') return undefined;
    if (a === '--quick') {
      quick = true;
      continue;
    }
    if (a === '--profile') {
      profile = true;
      continue;
    }
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!VALUED.includes(name)) throw new UsageError(`unknown option --${name}`);
    let value: string | undefined;
    if (eq > 0) value = a.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    given.set(name, value);
  }
  const num = (name: string, full: number, short: number, min: number, max: number): number => {
    const v = given.get(name);
    return v === undefined ? (quick ? short : full) : whole(name, v, min, max);
  };
  let only: Set<Section> = new Set(SECTIONS);
  const onlyText = given.get('only');
  if (onlyText !== undefined) {
    only = new Set();
    for (const s of onlyText.split(',')) {
      const t = s.trim();
      if (!(SECTIONS as readonly string[]).includes(t)) {
        throw new UsageError(`--only: "${t}" is not one of ${SECTIONS.join(', ')}`);
      }
      only.add(t as Section);
    }
  }
  return {
    quick,
    iterations: num('iterations', 300_000, 30_000, 1000, 100_000_000),
    samples: num('samples', 60, 10, 1, 100_000),
    seconds: num('seconds', 60, 10, 1, 86_400),
    warmupSeconds: num('warmup', 10, 3, 0, 3600),
    batteries: num('batteries', 4, 4, 1, 16),
    cells: num('cells', 16, 16, 1, 32),
    only,
    out: given.get('out'),
    driver: given.get('driver'),
    profile,
    driverFlags: (given.get('driver-flags') ?? '').split(/\s+/).filter((f) => f !== ''),
  };
}
