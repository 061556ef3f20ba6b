/**
 * The set-up every serial driver test repeats: a simulator on a real pty pair at a fresh symlink, a SerialLink to
 * it, the family's driver, and everything it emits collected. Stops the driver and the pty in `cleanup()`.
 */
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import type { BmsDriver, DriverEvent } from '../../src/bms/driver.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { type AttachableSimulator, runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { closeAllPairs, removeDir, tempLinkDir } from './pty.js';

export interface DriverRig<D extends BmsDriver> {
  path: string;
  running: SimulatorOnPty;
  link: SerialLink;
  driver: D;
  snapshots: BatterySnapshot[];
  events: DriverEvent[];
  cleanup(): Promise<void>;
}

let counter = 0;

/**
 * The scaffolding of a pty-based driver test file: a fresh symlink directory (removed after the file), cleanups
 * run in reverse after each test, then every pty pair closed. Call once at the top level of the file.
 */
export function driverTestScope(): {
  dir: string;
  cleanups: (() => Promise<void>)[];
  linkPath(prefix: string): string;
} {
  const dir = tempLinkDir();
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await closeAllPairs();
  });
  afterAll(() => removeDir(dir));
  return { dir, cleanups, linkPath: (prefix) => join(dir, `${prefix}-${counter++}`) };
}

export async function driverRig<D extends BmsDriver>(opts: {
  dir: string;
  simulator: AttachableSimulator;
  baudRate?: number;
  makeDriver: (link: SerialLink) => D;
}): Promise<DriverRig<D>> {
  const path = join(opts.dir, `bms-${counter++}`);
  const running = await runSimulatorOnPty({ simulator: opts.simulator, link: path });
  const link = new SerialLink({ path, ...(opts.baudRate !== undefined ? { baudRate: opts.baudRate } : {}) });
  const driver = opts.makeDriver(link);
  const snapshots: BatterySnapshot[] = [];
  const events: DriverEvent[] = [];
  driver.onSnapshot((s) => snapshots.push(s));
  driver.onEvent((e) => events.push(e));
  return {
    path,
    running,
    link,
    driver,
    snapshots,
    events,
    cleanup: async () => {
      await driver.stop();
      await running.close();
    },
  };
}
