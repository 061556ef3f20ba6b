import { describe, expect, it } from 'vitest';
import { DalyDriver, type DalyDriverOptions } from '../../src/bms/daly/driver.js';
import { DalyFramer } from '../../src/bms/daly/protocol.js';
import type { DriverEvent } from '../../src/bms/driver.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { DalySimulator, type DalySimValues } from '../../src/sim/daly-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { driverTestScope } from '../support/driver-rig.js';
import { waitFor } from '../support/pty.js';

const POLL_MS = 300;
const TIMEOUT_MS = 150;
const { cleanups, linkPath } = driverTestScope();

/** Values the tests force, so that snapshots can be compared exactly (at Daly's wire resolution). */
const FORCED: Partial<DalySimValues> = {
  cells: [3.301, 3.302, 3.305, 3.299, 3.31, 3.312, 3.308, 3.3, 3.297, 3.303, 3.306, 3.304, 3.309, 3.311, 3.298, 3.302],
  current: -4.3,
  soc: 63.4,
  capacityRemaining: 63.4,
  temperatures: [21, 24],
  cycles: 17,
  balancing: [
    false,
    false,
    false,
    false,
    false,
    true,
    false,
    false,
    false,
    false,
    false,
    false,
    false,
    false,
    false,
    false,
  ],
};

interface Rig {
  sim: DalySimulator;
  running: SimulatorOnPty;
  driver: DalyDriver;
  snapshots: BatterySnapshot[];
  events: DriverEvent[];
  /** Data ids the device side received, in order. */
  requests: number[];
}

async function rig(
  driverOpts: Partial<DalyDriverOptions> = {},
  simOpts: { allCellFrames?: boolean } = {},
): Promise<Rig> {
  const path = linkPath('daly');
  const sim = new DalySimulator({ seed: 3, ...simOpts });
  sim.setValues(FORCED);
  const running = await runSimulatorOnPty({ simulator: sim, link: path });
  const requests: number[] = [];
  const tap = new DalyFramer();
  running.pair?.device.onData((chunk) => {
    for (const f of tap.push(chunk)) requests.push(f[2] as number);
  });
  const driver = new DalyDriver({
    link: new SerialLink({ path }),
    pollIntervalMs: POLL_MS,
    replyTimeoutMs: TIMEOUT_MS,
    ...driverOpts,
  });
  const snapshots: BatterySnapshot[] = [];
  const events: DriverEvent[] = [];
  driver.onSnapshot((s) => snapshots.push(s));
  driver.onEvent((e) => events.push(e));
  cleanups.push(async () => {
    await driver.stop();
    await running.close();
  });
  return { sim, running, driver, snapshots, events, requests };
}

function expectSimulatorValues(s: BatterySnapshot, v: DalySimValues): void {
  expect(s.voltage).toBe(v.voltage);
  expect(s.current).toBe(v.current);
  expect(s.soc).toBe(v.soc);
  expect(s.capacityRemaining).toBe(v.capacityRemaining);
  expect(s.cycles).toBe(v.cycles);
  expect(s.cellCount).toBe(v.cells.length);
  expect(s.cellVoltages).toEqual(v.cells);
  expect(s.temperatures?.map((t) => t.celsius)).toEqual(v.temperatures);
  expect(s.balancing).toEqual(v.balancing);
  expect(s.chargeFet).toBe(v.chargeFet);
  expect(s.dischargeFet).toBe(v.dischargeFet);
}

describe('DalyDriver against the simulator on a pty', () => {
  it('emits snapshots carrying exactly the values the simulator was set to', async () => {
    const r = await rig();
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 2, 5000, 'two snapshots');
    const v = r.sim.values();
    expect(v.voltage).toBe(52.9);
    for (const s of r.snapshots) expectSimulatorValues(s, v);
    expect(r.snapshots[0]?.protection.cellOverVoltage).toBe(false);
    expect(r.snapshots[0]?.identity).toEqual({ manufacturer: 'Daly' });
    expect(r.events.some((e) => e.level === 'info' && e.message.includes('open'))).toBe(true);
  });

  it('polls 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98 in that order every cycle, on host address 0x40', async () => {
    const r = await rig();
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 3, 5000, 'three snapshots');
    await r.driver.stop();
    const cycle = [0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98];
    expect(r.requests.slice(0, 3 * cycle.length)).toEqual([...cycle, ...cycle, ...cycle]);
    expect(r.driver.hostAddress).toBe(0x40);
  });

  it('reads a board that always sends 16 cell frames, learning to wait for all of them, through garbage and split replies', async () => {
    // 16 frames written in 1–6 byte chunks with pauses take ~200 ms, like 208 bytes at 9600 Bd: allow for it.
    const r = await rig({ pollIntervalMs: 700, replyTimeoutMs: 500 }, { allCellFrames: true });
    r.sim.garbage = true;
    r.sim.split = true;
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 4, 10_000, 'four snapshots');
    // Every snapshot has the cells. The first cycle's 0x96 may queue behind the surplus cell frames and time out;
    // from then on the driver waits for all 16 frames, so later cycles are complete.
    const v = r.sim.values();
    for (const s of r.snapshots) expect(s.cellVoltages).toEqual(v.cells);
    for (const s of r.snapshots.slice(-2)) expectSimulatorValues(s, v);
  });

  it('a protection in 0x98 reaches the snapshot', async () => {
    const r = await rig();
    r.sim.setValues({ failureBits: [0, 0, 0x02, 0, 0, 0, 0] });
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 1, 5000, 'a snapshot');
    expect(r.snapshots[0]?.protection).toMatchObject({ chargeOverCurrent: true, dischargeOverCurrent: false });
  });

  it('a silent BMS costs timeouts and no snapshots; when it answers again, snapshots resume', async () => {
    const r = await rig({ maxSilentCycles: 100 });
    r.sim.silent = true;
    r.driver.start();
    await waitFor(() => r.events.some((e) => e.message.includes('no reply')), 5000, 'a timeout event');
    expect(r.snapshots).toHaveLength(0);
    r.sim.silent = false;
    await waitFor(() => r.snapshots.length >= 1, 5000, 'a snapshot after the BMS woke up');
    expect(r.events.some((e) => e.message.includes('answering again'))).toBe(true);
  });

  it('survives an unplug and delivers again after the re-plug', async () => {
    const r = await rig({ reconnectMinMs: 100, reconnectMaxMs: 400 });
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 1, 5000, 'a first snapshot');
    await r.running.unplug();
    await waitFor(() => r.events.some((e) => /lost|reopening|no reply/.test(e.message)), 5000, 'the loss noticed');
    const before = r.snapshots.length;
    await r.running.replug();
    await waitFor(() => r.snapshots.length > before, 8000, 'a snapshot after the re-plug');
    expectSimulatorValues(r.snapshots.at(-1) as BatterySnapshot, r.sim.values());
  });
});
