/**
 * `batterybank simulate <family> [--cells N] [--addresses 1,2,3] [--link PATH] [--seed N]`: serve a simulated
 * BMS (or a bus of packs) on a pty so the real driver (or any serial tool) can be pointed at it. The first
 * stdout line is `PTY <path>`, the path to open; the simulator then serves until the process is killed.
 */
import { DalySimulator } from './daly-simulator.js';
import { JbdSimulator } from './jbd-simulator.js';
import { JkModbusSimulator } from './jk-modbus-simulator.js';
import { JkSerialSimulator } from './jk-serial-simulator.js';
import { type AttachableSimulator, runSimulatorOnPty } from './pty.js';
import { PylonRs485Simulator } from './pylon-rs485-simulator.js';

export interface SimulateArgs {
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

/** Families `simulate` knows. */
export const SIMULATED_FAMILIES = Object.keys(FACTORIES);

/**
 * Start the simulator; `out` receives whole lines (no newline), `PTY <path>` first. Rejects for an unknown
 * family or bad arguments, and when no pty helper (socat, python3, script) is available.
 */
export async function simulateCommand(
  args: SimulateArgs,
  out: (line: string) => void,
): Promise<{ close(): Promise<void> }> {
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
