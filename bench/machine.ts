/** What the figures were measured on. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { availablePtyBackends } from '../src/sim/pty.js';

export interface MachineInfo {
  cpuModel: string;
  logicalCores: number;
  cpuMHz: number | undefined;
  nodeVersion: string;
  v8: string;
  os: string;
  arch: string;
  memoryMB: number;
  ptyBackend: string;
  dbusDaemon: string;
}

function cpuModel(): string {
  const fromNode = os.cpus()[0]?.model?.trim();
  if (fromNode) return fromNode;
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) return m[1].trim();
  } catch {
    // not Linux
  }
  return 'unknown CPU';
}

function dbusDaemonVersion(): string {
  try {
    const first = execFileSync('dbus-daemon', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
    const m = /(\d+\.\d+\.\d+)/.exec(first);
    return m?.[1] ?? first.trim();
  } catch {
    return 'not found';
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  const mhz = cpus[0]?.speed;
  return {
    cpuModel: cpuModel(),
    logicalCores: os.availableParallelism?.() ?? cpus.length,
    cpuMHz: mhz && mhz > 0 ? mhz : undefined,
    nodeVersion: process.version,
    v8: process.versions.v8,
    os: `${os.type()} ${os.release()}`,
    arch: process.arch,
    memoryMB: Math.round(os.totalmem() / 2 ** 20),
    ptyBackend: process.env['BATTERYBANK_PTY_BACKEND'] || availablePtyBackends()[0] || 'none',
    dbusDaemon: dbusDaemonVersion(),
  };
}
