/**
 * `batterybank simulate <family> [--cells N] [--addresses 1,2,3] [--link PATH] [--seed N]`: serve a simulated
 * BMS (or a bus of packs) on a pty so the real driver (or any serial tool) can be pointed at it. The first
 * stdout line is `PTY <path>`, the path to open; the simulator then serves until the process is killed.
 */

import { SocketCanLink } from '../links/can/socketcan-link.js';
import { BlueNovaSimulator } from './bluenova-simulator.js';
import { CanSimulator } from './can-simulators.js';
import { DalySimulator } from './daly-simulator.js';
import { JbdSimulator } from './jbd-simulator.js';
import { JkModbusSimulator } from './jk-modbus-simulator.js';
import { JkSerialSimulator } from './jk-serial-simulator.js';
import { type AttachableSimulator, createPtyPair, runSimulatorOnPty } from './pty.js';
import { PylonRs485Simulator } from './pylon-rs485-simulator.js';
import { createRandom } from './random.js';
import { UsbCanADevice } from './usbcan-device.js';

export interface SimulateArgs {
  /** CAN families: a SocketCAN interface to send on (`vcan0`); without it a USB-CAN-A adapter on a pty. */
  can?: string;
  /** BMS family id (see SIMULATED_FAMILIES). */
  family: string;
  /** Cells in series per pack. */
  cells?: number;
  /** Pack addresses on the bus, for the addressed families (jk-modbus, pylontech, seplos). */
  addresses?: number[];
  /** Stable symlink to create for the pty (default: print the /dev/pts path). */
  link?: string;
  /** Seed for reproducible values. */
  seed?: number;
  /** bluenova: `host:port` of the first unit's websocket server (default 127.0.0.1:9000; the next units on
   * the following ports; port 0 = any free ports). */
  listen?: string;
  /** bluenova: units in parallel, each on its own port (default 1). */
  units?: number;
}

interface SimFactory {
  baud: number;
  create(a: SimulateArgs): AttachableSimulator;
  describe(a: SimulateArgs): string;
}

const opt = <K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } =>
  (v === undefined ? {} : { [key]: v }) as { [P in K]?: V };

const FACTORIES: Record<string, SimFactory> = {
  jbd: {
    baud: 9600,
    create: (a) => new JbdSimulator({ ...opt('cells', a.cells), ...opt('seed', a.seed) }),
    describe: (a) => `a JBD BMS, ${a.cells ?? 16} cells`,
  },
  'jk-serial': {
    baud: 115200,
    create: (a) => new JkSerialSimulator({ ...opt('cells', a.cells), ...opt('seed', a.seed) }),
    describe: (a) => `a JK BMS (serial 0x4E57), ${a.cells ?? 16} cells`,
  },
  'jk-modbus': {
    baud: 115200,
    create: (a) =>
      new JkModbusSimulator({ ...opt('addresses', a.addresses), ...opt('cells', a.cells), ...opt('seed', a.seed) }),
    describe: (a) => `JK-PB packs at address ${(a.addresses ?? [1]).join(', ')}`,
  },
  daly: {
    baud: 9600,
    create: (a) => new DalySimulator({ ...opt('cells', a.cells), ...opt('seed', a.seed) }),
    describe: (a) => `a Daly BMS, ${a.cells ?? 16} cells`,
  },
  pylontech: {
    baud: 115200,
    create: (a) =>
      new PylonRs485Simulator({
        protocol: 'pylontech',
        packs: (a.addresses ?? [2]).map((address) => ({ address, ...opt('cells', a.cells) })),
        ...opt('seed', a.seed),
      }),
    describe: (a) => `Pylontech packs at address ${(a.addresses ?? [2]).join(', ')}`,
  },
  seplos: {
    baud: 9600,
    create: (a) =>
      new PylonRs485Simulator({
        protocol: 'seplos',
        packs: (a.addresses ?? [0]).map((address) => ({ address, ...opt('cells', a.cells) })),
        ...opt('seed', a.seed),
      }),
    describe: (a) => `Seplos V2 packs at address ${(a.addresses ?? [0]).join(', ')}`,
  },
};

const CAN_SIM_FAMILIES = ['pylon-can', 'deye-can', 'byd-atto3'] as const;
type CanSimFamily = (typeof CAN_SIM_FAMILIES)[number];

/** Families `simulate` knows. */
export const SIMULATED_FAMILIES = [...Object.keys(FACTORIES), ...CAN_SIM_FAMILIES, 'bluenova'];

/**
 * BlueNova units on local websocket servers (`ws://host:port/ws/`), printing console lines built from the
 * parser's rule table; the first lines are `WS <url>`, one per unit.
 */
async function simulateBlueNova(args: SimulateArgs, out: (line: string) => void): Promise<{ close(): Promise<void> }> {
  const m = /^(.+):(\d+)$/.exec(args.listen ?? '127.0.0.1:9000');
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new Error(`--listen must be host:port, e.g. 127.0.0.1:9000`);
  const host = (m[1] as string).replace(/^\[(.*)\]$/, '$1');
  const n = args.units ?? 1;
  const cells = args.cells ?? 16;
  const sim = new BlueNovaSimulator({
    host,
    ports: Array.from({ length: n }, (_, i) => (port === 0 ? 0 : port + i)),
    units: Array.from({ length: n }, () => ({
      cells: Array.from({ length: cells }, (_, i) => 3.3 + (i % 4) * 0.002),
    })),
    // Live-looking values, as the serial simulators have: a monitor sees them change every cycle.
    wander: createRandom(args.seed),
  });
  const urls = await sim.start();
  for (const url of urls) out(`WS ${url}`);
  out(
    `serving ${n} BlueNova unit${n === 1 ? '' : 's'} (${cells} cells, console lines from the rule table; no real capture exists); ` +
      `config: protocol = bluenova, host = ${host}:${port === 0 ? '<port>' : port}; stop with Ctrl-C`,
  );
  return { close: () => sim.close() };
}

/**
 * A CAN battery: its frames at the real rates, on a SocketCAN interface (`--can vcan0`) or behind a simulated
 * USB-CAN-A adapter on a pty (the driver then uses `can_port = <PTY>`).
 */
async function simulateCan(
  family: CanSimFamily,
  args: SimulateArgs,
  out: (line: string) => void,
): Promise<{ close(): Promise<void> }> {
  if (args.can) {
    const link = new SocketCanLink({ iface: args.can });
    await link.open();
    const sim = new CanSimulator(link, { family });
    sim.start();
    out(`CAN ${args.can}`);
    out(`sending ${family} frames on ${args.can}; stop with Ctrl-C`);
    return {
      close: async () => {
        sim.stop();
        await link.close();
      },
    };
  }
  const pair = await createPtyPair(opt('link', args.link));
  const device = new UsbCanADevice(pair.device);
  const sim = new CanSimulator(device, { family });
  sim.start();
  out(`PTY ${pair.driverPath}`);
  out(
    `serving ${family} frames behind a simulated USB-CAN-A adapter (config: can_port = ${pair.driverPath}); stop with Ctrl-C`,
  );
  return {
    close: async () => {
      sim.stop();
      await pair.close();
    },
  };
}

/**
 * Start the simulator; `out` receives whole lines (no newline), `PTY <path>` first. Rejects for an unknown
 * family or bad arguments, and when no pty helper (socat, python3, script) is available.
 */
export async function simulateCommand(
  args: SimulateArgs,
  out: (line: string) => void,
): Promise<{ close(): Promise<void> }> {
  if (args.family === 'bluenova') return simulateBlueNova(args, out);
  if ((CAN_SIM_FAMILIES as readonly string[]).includes(args.family)) {
    return simulateCan(args.family as CanSimFamily, args, out);
  }
  const factory = FACTORIES[args.family];
  if (!factory) {
    throw new Error(`cannot simulate "${args.family}": known families are ${SIMULATED_FAMILIES.join(', ')}`);
  }
  const simulator = factory.create(args);
  const running = await runSimulatorOnPty({ simulator, ...opt('link', args.link) });
  out(`PTY ${running.path}`);
  out(`serving ${factory.describe(args)}, ${factory.baud} baud (a pty ignores the rate); stop with Ctrl-C`);
  return { close: () => running.close() };
}
