/**
 * `batterybank probe PORT [--all-addresses]`: which BMS answers on a serial port, and the config lines for it.
 *
 * Prints one line per attempt (family, baud rate, address, answered or not, time), then what answered with its model
 * and serial, then a `[battery.<name>]` section to paste into config.ini. Exit status 0 when something answered,
 * 1 when nothing did or the port cannot be opened.
 */
import {
  type AttemptReport,
  type DetectCache,
  type Detection,
  type DetectOptions,
  defaultBaudRate,
  detectOnPort,
} from '../bms/autodetect.js';
import { errorMessage } from '../domain/errors.js';
import type { Link } from '../links/link.js';

/** Options of {@link probeCommand}. */
export interface ProbeOptions {
  /** Keep going after the first answer through every address of the family that answered. */
  allAddresses?: boolean;
  /** Only these families. */
  families?: string[];
  /** Bus addresses to try for the addressed families. */
  addresses?: number[];
  timeBudgetMs?: number;
  /** Not used by the CLI (a probe is a fresh scan); for callers that want the result remembered. */
  cache?: DetectCache;
  openLink?: (path: string, baudRate: number) => Link<Uint8Array>;
}

function where(a: { baudRate: number; address?: number | undefined }): string {
  return `${a.baudRate} Bd${a.address !== undefined ? `, address ${a.address}` : ''}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function attemptLine(r: AttemptReport): string {
  const what = `${r.family.padEnd(10)} ${where(r).padEnd(22)}`;
  return `  ${what} ${r.answered ? 'answered ' : 'no answer'} ${String(r.durationMs).padStart(4)} ms${r.cached ? ' (cached)' : ''}`;
}

function detectionLine(d: Detection): string {
  const parts = [`${d.family} at ${where(d)}`];
  if (d.model !== undefined) parts.push(`model ${d.model}`);
  if (d.serial !== undefined) parts.push(`serial ${d.serial}`);
  parts.push(`found after ${seconds(d.elapsedMs)}`);
  return parts.join(', ');
}

/** `[battery.<name>]` section for one detection; `name` is `[a-z0-9_]+`. */
export function configLines(port: string, d: Detection, name: string): string[] {
  return [
    `[battery.${name}]`,
    `protocol = ${d.family}`,
    `port = ${port}`,
    ...(d.baudRate !== defaultBaudRate(d.family) ? [`baud_rate = ${d.baudRate}`] : []),
    ...(d.address !== undefined ? [`address = ${d.address}`] : []),
  ];
}

function sectionName(d: Detection, several: boolean): string {
  const base = d.family.replace(/[^a-z0-9]+/g, '_');
  return several && d.address !== undefined ? `${base}_${d.address}` : base;
}

/** Run the probe, writing lines to `out`; resolves with the exit status. */
export async function probeCommand(port: string, opts: ProbeOptions, out: (line: string) => void): Promise<number> {
  out(`probing ${port}${opts.allAddresses ? ' (all addresses)' : ''}`);
  const detectOpts: DetectOptions = {
    path: port,
    onAttempt: (r) => out(attemptLine(r)),
    ...(opts.allAddresses !== undefined ? { allAddresses: opts.allAddresses } : {}),
    ...(opts.families !== undefined ? { families: opts.families } : {}),
    ...(opts.addresses !== undefined ? { addresses: opts.addresses } : {}),
    ...(opts.timeBudgetMs !== undefined ? { timeBudgetMs: opts.timeBudgetMs } : {}),
    ...(opts.cache !== undefined ? { cache: opts.cache } : {}),
    ...(opts.openLink !== undefined ? { openLink: opts.openLink } : {}),
  };
  let found: Detection[];
  try {
    found = await detectOnPort(detectOpts);
  } catch (e) {
    out(`cannot probe ${port}: ${errorMessage(e)}`);
    return 1;
  }
  out('');
  if (found.length === 0) {
    out(`nothing answered on ${port}: check the wiring (A/B swapped?), that the BMS is awake, and its baud rate`);
    return 1;
  }
  for (const d of found) out(`found ${detectionLine(d)}`);
  out('');
  out('config lines:');
  const several = found.length > 1;
  found.forEach((d, i) => {
    if (i > 0) out('');
    for (const line of configLines(port, d, sectionName(d, several))) out(line);
  });
  return 0;
}
