/**
 * `batterybank simulate <family> [--cells N] [--link PATH] [--seed N]`: serve a simulated BMS on a pty so the
 * real driver (or any serial tool) can be pointed at it. The first stdout line is `PTY <path>`, the path to
 * open; the simulator then serves until the process is killed.
 */
import { JbdSimulator } from './jbd-simulator.js';
import { runSimulatorOnPty } from './pty.js';

export interface SimulateArgs {
  /** BMS family id; only `jbd` so far. */
  family: string;
  /** Cells in series (JBD: 1–32, default 16). */
  cells?: number;
  /** Stable symlink to create for the pty (default: print the /dev/pts path). */
  link?: string;
  /** Seed for reproducible values. */
  seed?: number;
}

/** Families `simulate` knows. */
export const SIMULATED_FAMILIES = ['jbd'] as const;

/**
 * Start the simulator; `out` receives whole lines (no newline), `PTY <path>` first. Rejects for an unknown
 * family or bad arguments, and when no pty helper (socat, python3, script) is available.
 */
export async function simulateCommand(
  args: SimulateArgs,
  out: (line: string) => void,
): Promise<{ close(): Promise<void> }> {
  if (args.family !== 'jbd') {
    throw new Error(`cannot simulate "${args.family}": known families are ${SIMULATED_FAMILIES.join(', ')}`);
  }
  const simulator = new JbdSimulator({
    ...(args.cells !== undefined ? { cells: args.cells } : {}),
    ...(args.seed !== undefined ? { seed: args.seed } : {}),
  });
  const running = await runSimulatorOnPty({
    simulator,
    ...(args.link !== undefined ? { link: args.link } : {}),
  });
  out(`PTY ${running.path}`);
  const v = simulator.values();
  out(
    `serving a simulated JBD BMS: ${v.cells.length} cells, ${v.voltage.toFixed(2)} V, SoC ${v.soc} %, ` +
      `model ${v.model}, 9600 baud (pty: any rate); stop with Ctrl-C`,
  );
  return { close: () => running.close() };
}
