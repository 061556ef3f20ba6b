import { describe, expect, it } from 'vitest';
import type { DriverEvent } from '../../src/bms/driver.js';
import { JK_SERIAL_BAUD_RATE, JkSerialDriver, type JkSerialDriverOptions } from '../../src/bms/jk-serial/driver.js';
import { encodeReadAllReply } from '../../src/bms/jk-serial/protocol.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { JkSerialSimulator, type JkSerialSimValues } from '../../src/sim/jk-serial-simulator.js';
import type { SimulatorOnPty } from '../../src/sim/pty.js';
import { driverRig, driverTestScope } from '../support/driver-rig.js';
import { openPair, sleep, waitFor } from '../support/pty.js';

const POLL_MS = 200;
const TIMEOUT_MS = 150;
const { dir, cleanups } = driverTestScope();

/** Values a test forces, so that snapshots can be compared exactly. */
const FORCED: Partial<JkSerialSimValues> = {
  cells: [3.301, 3.302, 3.305, 3.299, 3.31, 3.312, 3.308, 3.3, 3.297, 3.303, 3.306, 3.304, 3.309, 3.311, 3.298, 3.302],
  current: -4.25,
  soc: 63,
  temperatures: [21, 23],
  mosTemperature: 27,
  cycles: 17,
  manufacturerId: 'JKSIM-TEST-0001',
};

interface Rig {
  sim: JkSerialSimulator;
  running: SimulatorOnPty;
  link: SerialLink;
  driver: JkSerialDriver;
  snapshots: BatterySnapshot[];
  events: DriverEvent[];
}

async function rig(driverOpts: Partial<JkSerialDriverOptions> = {}, seed = 1): Promise<Rig> {
  const sim = new JkSerialSimulator({ seed });
  sim.setValues(FORCED);
  const r = await driverRig({
    dir,
    simulator: sim,
    baudRate: JK_SERIAL_BAUD_RATE,
    makeDriver: (link) =>
      new JkSerialDriver({ link, pollIntervalMs: POLL_MS, replyTimeoutMs: TIMEOUT_MS, ...driverOpts }),
  });
  cleanups.push(r.cleanup);
  return { ...r, sim };
}

function expectForcedValues(s: BatterySnapshot): void {
  const cells = FORCED.cells as number[];
  expect(s.cellVoltages).toEqual(cells);
  expect(s.voltage).toBe(Math.round(cells.reduce((a, b) => a + b, 0) * 100) / 100);
  expect(s.current).toBe(-4.25);
  expect(s.power).toBe(Math.round((s.voltage as number) * -4.25 * 100) / 100);
  expect(s.soc).toBe(63);
  expect(s.capacityInstalled).toBe(100);
  expect(s.cycles).toBe(17);
  expect(s.cellCount).toBe(16);
  expect(s.temperatures).toEqual([
    { name: 'T1', celsius: 21 },
    { name: 'T2', celsius: 23 },
  ]);
  expect(s.mosTemperature).toBe(27);
  expect(s.chargeFet).toBe(true);
  expect(s.dischargeFet).toBe(true);
  expect(s.protection.cellOverVoltage).toBe(false);
  expect(s.identity).toEqual({ manufacturer: 'JK', serial: 'JKSIM-TEST-0001', hardware: '10.XW', firmware: '10.07' });
}

const messages = (events: DriverEvent[]) => events.map((e) => e.message).join('\n');

describe('JkSerialDriver against the simulator on a pty', () => {
  it('emits snapshots carrying exactly the values the simulator was set to', async () => {
    let t = 1_000_000;
    const r = await rig({ now: () => (t += 1000) });
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 3, 5000, 'three snapshots');
    for (const s of r.snapshots) expectForcedValues(s);
    expect(r.snapshots.every((s) => s.timestampMs > 1_000_000 && s.timestampMs % 1000 === 0)).toBe(true);
    expect(r.events.some((e) => e.level === 'info' && e.message.includes('open'))).toBe(true);
    // One read-all per cycle, one snapshot per reply.
    await r.driver.stop();
    expect(r.sim.stats.requests[6]).toBe(r.snapshots.length);
  });

  it('still produces correct snapshots when replies come split into small chunks with garbage before them', async () => {
    const r = await rig({ pollIntervalMs: 400, replyTimeoutMs: 350 });
    r.sim.garbage = true;
    r.sim.split = true;
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 3, 8000, 'three snapshots');
    for (const s of r.snapshots) expectForcedValues(s);
  });

  it('follows values the simulator changes while running (cell over-voltage warning, charge FET off, frost)', async () => {
    const r = await rig();
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 1, 5000, 'a snapshot');
    const cells = [...(FORCED.cells as number[])];
    cells[3] = 3.651;
    r.sim.setValues({ cells, chargeFet: false, alarms: 1 << 10, temperatures: [-5, 2] });
    const s = await waitFor(
      () => r.snapshots.find((x) => x.protection.cellOverVoltage === true),
      5000,
      'a snapshot with cell over-voltage',
    );
    expect(s.cellVoltages?.[3]).toBe(3.651);
    expect(s.chargeFet).toBe(false);
    expect(s.temperatures?.map((x) => x.celsius)).toEqual([-5, 2]);
  });

  it('reports timeouts and emits nothing while the BMS is silent, reopens the port, then resumes by itself', async () => {
    const r = await rig();
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 2, 5000, 'first snapshots');
    r.sim.silent = true;
    await waitFor(() => r.events.some((e) => e.message.includes('no reply from the BMS')), 3000, 'a timeout event');
    const countAtSilence = r.snapshots.length;
    await waitFor(() => r.events.some((e) => e.message.includes('requests in a row')), 5000, 'the watchdog');
    expect(r.snapshots.length).toBe(countAtSilence);
    expect(r.events.find((e) => e.message.includes('no reply from the BMS'))?.level).toBe('warn');
    r.sim.silent = false;
    await waitFor(() => r.snapshots.length >= countAtSilence + 2, 5000, 'snapshots after the silence');
    expectForcedValues(r.snapshots.at(-1) as BatterySnapshot);
    expect(messages(r.events)).toContain('answering again');
  });

  it('keeps running when the pty is destroyed (unplug) and resumes when it is recreated at the same path', async () => {
    const r = await rig({ reconnectMinMs: 100, reconnectMaxMs: 400 });
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 2, 5000, 'snapshots before the unplug');
    await r.running.unplug();
    const before = r.snapshots.length;
    await waitFor(() => /lost|cannot open|in a row/.test(messages(r.events)), 5000, 'the loss');
    await waitFor(() => messages(r.events).includes('cannot open'), 5000, 'a failed reopen');
    await sleep(300);
    expect(r.snapshots.length).toBe(before);
    expect(r.link.isOpen).toBe(false);
    await r.running.replug();
    await waitFor(() => r.snapshots.length >= before + 2, 5000, 'snapshots after the re-plug');
    expectForcedValues(r.snapshots.at(-1) as BatterySnapshot);
  });

  it('stop() ends polling and closes the port; start() again resumes', async () => {
    const r = await rig();
    r.driver.start();
    r.driver.start(); // idempotent
    await waitFor(() => r.snapshots.length >= 2, 5000, 'snapshots');
    await r.driver.stop();
    await r.driver.stop(); // idempotent
    expect(r.link.isOpen).toBe(false);
    const count = r.snapshots.length;
    const requests = r.sim.stats.requests[6];
    await sleep(3 * POLL_MS);
    expect(r.snapshots.length).toBe(count);
    expect(r.sim.stats.requests[6]).toBe(requests);
    r.driver.start();
    await waitFor(() => r.snapshots.length >= count + 2, 5000, 'snapshots after the restart');
  });

  it('refuses a reply timeout that does not fit in the poll interval', () => {
    const link = new SerialLink({ path: '/nonexistent' });
    expect(() => new JkSerialDriver({ link, pollIntervalMs: 200, replyTimeoutMs: 200 })).toThrow(RangeError);
    expect(() => new JkSerialDriver({ link, pollIntervalMs: 0 })).toThrow(RangeError);
  });
});

describe('JkSerialDriver against a misbehaving device', () => {
  it('reports an undecodable reply as an event, emits no snapshot for it, ignores its own echo, and carries on', async () => {
    const pair = await openPair();
    const good = encodeReadAllReply({
      cellVoltages: [3.3, 3.31, 3.32, 3.33],
      mosTemperature: 30,
      temperatures: [20, 21],
      voltage: 13.26,
      current: 1.5,
      soc: 50,
      cycles: 3,
      totalCycleCapacity: 300,
      warnings: 0,
      status: 3,
      capacity: 100,
      chargeSwitch: true,
      dischargeSwitch: true,
      deviceId: 'HAND',
      productionDate: '2401',
      runtimeMinutes: 5,
      softwareVersion: '11.XW_S11.48',
      manufacturerId: 'HAND-MADE',
    });
    // The same reply with the 0x85 (SoC) id replaced by an id no JK board sends: valid checksum, undecodable data.
    const bad = good.slice();
    const at = bad.indexOf(0x85, 11 + 2 + 4 * 3);
    bad[at] = 0x88;
    let sum = 0;
    for (let i = 0; i < bad.length - 4; i++) sum += bad[i] as number;
    bad[bad.length - 2] = (sum >> 8) & 0xff;
    bad[bad.length - 1] = sum & 0xff;
    let broken = true;
    pair.device.onData((chunk) => {
      // Every request is answered by echoing it first (a half-duplex adapter), then the reply.
      void pair.device.send(chunk);
      void pair.device.send(broken ? bad : good);
    });
    const link = new SerialLink({ path: pair.driverPath, baudRate: JK_SERIAL_BAUD_RATE });
    const driver = new JkSerialDriver({ link, pollIntervalMs: POLL_MS, replyTimeoutMs: TIMEOUT_MS });
    const snapshots: BatterySnapshot[] = [];
    const events: DriverEvent[] = [];
    driver.onSnapshot((s) => snapshots.push(s));
    driver.onEvent((e) => events.push(e));
    cleanups.push(() => driver.stop());
    driver.start();
    await waitFor(() => events.some((e) => e.message.startsWith('bad reply')), 5000, 'a decode event');
    expect(messages(events)).toMatch(/invalid-value: unknown register id 0x88/);
    expect(snapshots).toHaveLength(0);
    broken = false;
    await waitFor(() => snapshots.length >= 1, 5000, 'a snapshot once replies are sane');
    expect(snapshots[0]).toMatchObject({
      voltage: 13.26,
      current: 1.5,
      soc: 50,
      cellVoltages: [3.3, 3.31, 3.32, 3.33],
    });
  });
});
