/**
 * The set-up every serial driver test repeats: a simulator on a real pty pair at a fresh symlink, a SerialLink to
 * it, the family's driver, and everything it emits collected. Stops the driver and the pty in `cleanup()`.
 */
import { join } from 'node:path';
import type { BmsDriver, DriverEvent } from '../../src/bms/driver.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { type AttachableSimulator, runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';

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
