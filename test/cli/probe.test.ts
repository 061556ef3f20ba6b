/**
 * `batterybank probe PORT [--all-addresses]` as a function: real `serialport` on a real pty with a simulator on the
 * other end; the printed lines are what the user sees.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { probeCommand } from '../../src/cli/probe.js';
import { DalySimulator } from '../../src/sim/daly-simulator.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { JkModbusSimulator } from '../../src/sim/jk-modbus-simulator.js';
import { type AttachableSimulator, runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { PylonRs485Simulator } from '../../src/sim/pylon-rs485-simulator.js';
import { atDeviceBaud } from '../support/baud-link.js';
import { closeAllPairs } from '../support/pty.js';

const running: SimulatorOnPty[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
  await closeAllPairs();
});

async function serve(simulator: AttachableSimulator): Promise<string> {
  const r = await runSimulatorOnPty({ simulator });
  running.push(r);
  return r.path;
}

async function probe(port: string, opts: Parameters<typeof probeCommand>[1] = {}) {
  const lines: string[] = [];
  const code = await probeCommand(port, opts, (l) => lines.push(l));
  return { code, lines, text: lines.join('\n') };
}

/** The config section the probe printed (from `[battery.` to the end). */
function config(lines: string[]): string[] {
  return lines.slice(lines.findIndex((l) => l.startsWith('[battery.')));
}

describe('probeCommand', () => {
  it('prints the attempts, what answered, and the config section (JBD: no address, default rate)', async () => {
    const port = await serve(new JbdSimulator({ seed: 1 }));
    const { code, lines, text } = await probe(port);
    expect(code).toBe(0);
    expect(lines[0]).toBe(`probing ${port}`);
    expect(text).toMatch(/^ {2}jk-serial +115200 Bd +no answer +\d+ ms$/m);
    expect(text).toMatch(/^ {2}jbd +9600 Bd +answered +\d+ ms$/m);
    expect(text).toMatch(/^found jbd at 9600 Bd, model JBD-SP25S003\S*, found after \d+\.\d\d s$/m);
    expect(config(lines)).toEqual(['[battery.jbd]', 'protocol = jbd', `port = ${port}`]);
  });

  it('gives the address of an addressed family', async () => {
    const port = await serve(new JkModbusSimulator({ addresses: [3], seed: 2 }));
    const { code, lines, text } = await probe(port, { addresses: [1, 2, 3] });
    expect(code).toBe(0);
    expect(text).toMatch(
      /^found jk-modbus at 115200 Bd, address 3, model JK_PB2A16S20P, serial SIM03\d{5}, found after/m,
    );
    expect(config(lines)).toEqual(['[battery.jk_modbus]', 'protocol = jk-modbus', `port = ${port}`, 'address = 3']);
  });

  it('--all-addresses: one section per pack', async () => {
    const port = await serve(new JkModbusSimulator({ addresses: [1, 4], seed: 3 }));
    const { code, lines } = await probe(port, { allAddresses: true });
    expect(code).toBe(0);
    expect(lines[0]).toBe(`probing ${port} (all addresses)`);
    expect(config(lines)).toEqual([
      '[battery.jk_modbus_1]',
      'protocol = jk-modbus',
      `port = ${port}`,
      'address = 1',
      '',
      '[battery.jk_modbus_4]',
      'protocol = jk-modbus',
      `port = ${port}`,
      'address = 4',
    ]);
  });

  it('names the baud rate when it is not the family default', async () => {
    // A Pylontech stack set to 9600: the link garbles everything at any other rate, as a UART would.
    const port = await serve(new PylonRs485Simulator({ protocol: 'pylontech', seed: 4 }));
    const openLink = atDeviceBaud(9600);
    const { code, lines } = await probe(port, { openLink });
    expect(code).toBe(0);
    expect(config(lines)).toEqual([
      '[battery.pylontech]',
      'protocol = pylontech',
      `port = ${port}`,
      'baud_rate = 9600',
      'address = 2',
    ]);
  });

  it('exits 1 and says so when nothing answers', async () => {
    const sim = new DalySimulator({ seed: 5 });
    sim.silent = true;
    const port = await serve(sim);
    const { code, text } = await probe(port, { timeBudgetMs: 800 });
    expect(code).toBe(1);
    expect(text).toMatch(/^nothing answered on /m);
    expect(text).not.toMatch(/\[battery\./);
  });

  it('exits 1 when the port cannot be opened', async () => {
    const { code, text } = await probe('/dev/does-not-exist-probe');
    expect(code).toBe(1);
    expect(text).toMatch(/^cannot probe \/dev\/does-not-exist-probe: /m);
  });
});
