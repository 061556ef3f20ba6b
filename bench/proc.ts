/** Linux /proc readers for a child process: CPU ticks (all threads) and resident memory. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of utime/stime (USER_HZ); 100 on every Linux we run on, asked anyway. */
export function clockTicksPerSecond(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(n) && n > 0) return n;
  } catch {
    // getconf missing: fall through
  }
  return 100;
}

/** utime + stime of the whole process (every thread), in ticks; /proc/<pid>/stat fields 14 and 15. */
export function cpuTicks(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot parse /proc/${pid}/stat`);
  return utime + stime;
}

export interface Memory {
  /** Resident set now, kB. */
  vmRssKb: number;
  /** Peak resident set, kB. */
  vmHwmKb: number;
}

/** VmRSS and VmHWM from /proc/<pid>/status. */
export function memory(pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { vmRssKb: field('VmRSS'), vmHwmKb: field('VmHWM') };
}
