import { describe, expect, it } from 'vitest';
import type { DriverEvent } from '../../src/bms/driver.js';
import { JbdDriver, type JbdDriverOptions } from '../../src/bms/jbd/driver.js';
import {
  decodeRequest,
  encodeBasicInfo,
  encodeCellVoltages,
  encodeHardwareVersion,
  encodeResponse,
  extractFrames,
} from '../../src/bms/jbd/protocol.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { JbdSimulator, type JbdSimValues } from '../../src/sim/jbd-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { driverRig, driverTestScope } from '../support/driver-rig.js';
import { openPair, sleep, waitFor } from '../support/pty.js';

const POLL_MS = 200;
const TIMEOUT_MS = 150;
const { dir, cleanups, linkPath } = driverTestScope();

/** Values a test forces, so that snapshots can be compared exactly. */
const FORCED: Partial<JbdSimValues> = {
  cells: [3.301, 3.302, 3.305, 3.299, 3.31, 3.312, 3.308, 3.3, 3.297, 3.303, 3.306, 3.304, 3.309, 3.311, 3.298, 3.302],
  current: -4.25,
  soc: 63,
  temperatures: [21.4, 22.8, 25.1],
  cycles: 17,
  balanceBits: 0b10_0000,
};

interface Rig {
  path: string;
  sim: JbdSimulator;
  running: SimulatorOnPty;
  link: SerialLink;
  driver: JbdDriver;
  snapshots: BatterySnapshot[];
  events: DriverEvent[];
  /** Registers the device side received, in order. */
  requests: number[];
  /** Snapshots arriving after index `from`. */
  since(from: number): BatterySnapshot[];
}

async function rig(driverOpts: Partial<JbdDriverOptions> = {}, seed = 1): Promise<Rig> {
  const sim = new JbdSimulator({ seed });
  sim.setValues(FORCED);
  const r = await driverRig({
    dir,
    simulator: sim,
    makeDriver: (link) => new JbdDriver({ link, pollIntervalMs: POLL_MS, replyTimeoutMs: TIMEOUT_MS, ...driverOpts }),
  });
  const requests: number[] = [];
  tapRequests(r.running, requests);
  cleanups.push(r.cleanup);
  return { ...r, sim, requests, since: (from) => r.snapshots.slice(from) };
}

/** Record the registers requested on the device side (a second listener on the pty master). */
function tapRequests(running: SimulatorOnPty, into: number[]): void {
  let inbox: Uint8Array = new Uint8Array(0);
  running.pair?.device.onData((chunk) => {
    const joined = new Uint8Array(inbox.length + chunk.length);
    joined.set(inbox);
    joined.set(chunk, inbox.length);
    const { frames, rest } = extractFrames(joined);
    inbox = rest;
    for (const f of frames) into.push(decodeRequest(f).register);
  });
}

function expectForcedValues(s: BatterySnapshot): void {
  const cells = FORCED.cells as number[];
  expect(s.cellVoltages).toEqual(cells);
  expect(s.voltage).toBe(Math.round(cells.reduce((a, b) => a + b, 0) * 100) / 100);
  expect(s.current).toBe(-4.25);
  expect(s.soc).toBe(63);
  expect(s.capacityRemaining).toBe(63);
  expect(s.capacityInstalled).toBe(100);
  expect(s.cycles).toBe(17);
  expect(s.cellCount).toBe(16);
  expect(s.temperatures?.map((t) => t.celsius)).toEqual([21.4, 22.8, 25.1]);
  expect(s.balancing?.[5]).toBe(true);
  expect(s.balancing?.filter(Boolean)).toHaveLength(1);
  expect(s.chargeFet).toBe(true);
  expect(s.dischargeFet).toBe(true);
  expect(s.protection.cellOverVoltage).toBe(false);
}

const messages = (events: DriverEvent[]) => events.map((e) => e.message).join('\n');

describe('JbdDriver against the simulator on a pty', () => {
  it('emits snapshots carrying exactly the values the simulator was set to, model included', async () => {
    let t = 1_000_000;
    const r = await rig({ now: () => (t += 1000) });
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 3, 5000, 'three snapshots');
    for (const s of r.snapshots) expectForcedValues(s);
    const last = r.snapshots.at(-1) as BatterySnapshot;
    expect(last.identity).toMatchObject({ manufacturer: 'JBD', model: 'JBD-SP25S003-L16S-100A', firmware: '2.9' });
    expect(last.identity.productionDate).toBe('2023-05-17');
    // Timestamps come from the injected clock.
    expect(r.snapshots.every((s) => s.timestampMs > 1_000_000 && s.timestampMs % 1000 === 0)).toBe(true);
    expect(r.events.some((e) => e.level === 'info' && e.message.includes('open'))).toBe(true);
  });

  it('polls 0x03 then 0x04 each cycle, reads 0x05 once per connection, and never overlaps cycles', async () => {
    const r = await rig();
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 4, 5000, 'four snapshots');
    await r.driver.stop();
    const seen = r.requests.map((x) => x.toString(16)).join(',');
    expect(seen.startsWith('3,4,5,3,4,3,4,3,4')).toBe(true);
    expect(r.requests.filter((x) => x === 5)).toHaveLength(1);
    // One snapshot per complete cycle.
    expect(r.snapshots.length).toBe(r.requests.filter((x) => x === 4).length);
  });

  it('still produces correct snapshots when replies come split into small chunks with garbage between them', async () => {
    const r = await rig();
    r.sim.garbage = true;
    r.sim.split = true;
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 6, 8000, 'six snapshots');
    for (const s of r.snapshots) expectForcedValues(s);
    expect(r.snapshots.at(-1)?.identity.model).toBe('JBD-SP25S003-L16S-100A');
  });

  it('follows values the simulator changes while running (cell over-voltage, charge FET off)', async () => {
    const r = await rig();
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 1, 5000, 'a snapshot');
    const cells = [...(FORCED.cells as number[])];
    cells[3] = 3.651;
    r.sim.setValues({ cells, chargeFet: false, protectionBits: 1, temperatures: [44.5, 22.8, 25.1] });
    const s = await waitFor(
      () => r.snapshots.find((x) => x.protection.cellOverVoltage === true),
      5000,
      'a snapshot with cell over-voltage',
    );
    expect(s.cellVoltages?.[3]).toBe(3.651);
    expect(s.chargeFet).toBe(false);
    expect(s.temperatures?.[0]?.celsius).toBe(44.5);
  });

  it('reports timeouts and emits nothing while the BMS is silent, then resumes by itself', async () => {
    const r = await rig();
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 2, 5000, 'first snapshots');
    r.sim.silent = true;
    await waitFor(() => r.events.some((e) => e.message.includes('no reply')), 3000, 'a timeout event');
    const countAtSilence = r.snapshots.length;
    // Long enough for the watchdog (3 silent cycles) to close and reopen the port at least once.
    await waitFor(() => r.events.some((e) => e.message.includes('consecutive cycles')), 5000, 'the watchdog');
    expect(r.snapshots.length).toBe(countAtSilence);
    expect(r.events.find((e) => e.message.includes('no reply'))?.level).toBe('warn');

    r.sim.silent = false;
    await waitFor(() => r.snapshots.length >= countAtSilence + 2, 5000, 'snapshots after the silence');
    expectForcedValues(r.snapshots.at(-1) as BatterySnapshot);
    expect(r.events.some((e) => e.message.includes('answering again'))).toBe(true);
  });

  it('keeps running when the pty is destroyed (unplug) and resumes when it is recreated at the same path', async () => {
    const r = await rig({ reconnectMinMs: 100, reconnectMaxMs: 400 });
    r.driver.start();
    for (let round = 0; round < 2; round++) {
      await waitFor(() => r.snapshots.length >= 2, 5000, 'snapshots before the unplug');
      await r.running.unplug();
      const before = r.snapshots.length;
      // Whichever way the loss shows (close event, EIO, silence), the driver notices and keeps trying to reopen.
      await waitFor(() => /lost|cannot open|consecutive cycles/.test(messages(r.events)), 5000, 'the loss');
      await waitFor(() => messages(r.events).includes('cannot open'), 5000, 'a failed reopen');
      await sleep(300);
      expect(r.snapshots.length).toBe(before);
      expect(r.link.isOpen).toBe(false);

      await r.running.replug();
      tapRequests(r.running, r.requests);
      await waitFor(() => r.snapshots.length >= before + 2, 5000, 'snapshots after the re-plug');
      expectForcedValues(r.snapshots.at(-1) as BatterySnapshot);
      r.snapshots.length = 0;
      r.events.length = 0;
    }
  });

  it('keeps retrying the open when the device does not exist yet and starts polling once it appears', async () => {
    const path = linkPath('late');
    const link = new SerialLink({ path });
    const driver = new JbdDriver({ link, pollIntervalMs: POLL_MS, replyTimeoutMs: TIMEOUT_MS, reconnectMinMs: 50 });
    const snapshots: BatterySnapshot[] = [];
    const events: DriverEvent[] = [];
    driver.onSnapshot((s) => snapshots.push(s));
    driver.onEvent((e) => events.push(e));
    const sim = new JbdSimulator({ seed: 3 });
    let running: SimulatorOnPty | undefined;
    cleanups.push(async () => {
      await driver.stop();
      await running?.close();
    });
    driver.start();
    driver.start(); // idempotent
    await waitFor(() => events.filter((e) => e.message.includes('cannot open')).length >= 3, 5000, 'failed opens');
    // The first failure is a warning, repeats go to debug: a missing adapter does not flood the log.
    expect(events.filter((e) => e.message.includes('cannot open') && e.level === 'warn')).toHaveLength(1);
    running = await runSimulatorOnPty({ simulator: sim, link: path });
    await waitFor(() => snapshots.length >= 1, 5000, 'a snapshot');
    expect(snapshots[0]?.cellCount).toBe(16);
  });

  it('stop() ends polling, closes the port and leaves no timer or handle behind', async () => {
    const baseline = process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    const r = await rig();
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 2, 5000, 'snapshots');
    await r.driver.stop();
    await r.driver.stop(); // idempotent
    expect(r.link.isOpen).toBe(false);
    const count = r.snapshots.length;
    const requests = r.requests.length;
    await r.running.close();
    await sleep(3 * POLL_MS);
    expect(r.snapshots.length).toBe(count);
    expect(r.requests.length).toBe(requests);
    const resources = process.getActiveResourcesInfo();
    expect(resources.filter((x) => x === 'Timeout').length).toBeLessThanOrEqual(baseline);
    expect(resources).not.toContain('ProcessWrap');
  });

  it('can be started again after stop()', async () => {
    const r = await rig();
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 1, 5000, 'a snapshot');
    await r.driver.stop();
    const count = r.snapshots.length;
    r.driver.start();
    await waitFor(() => r.snapshots.length >= count + 2, 5000, 'snapshots after the restart');
  });
});

describe('JbdDriver against a misbehaving device', () => {
  /** A hand-written device end: answers with whatever `answer` returns for each register. */
  async function handRig(answer: (register: number, n: number) => Uint8Array | undefined) {
    const pair = await openPair();
    let inbox: Uint8Array = new Uint8Array(0);
    let n = 0;
    pair.device.onData((chunk) => {
      const joined = new Uint8Array(inbox.length + chunk.length);
      joined.set(inbox);
      joined.set(chunk, inbox.length);
      const { frames, rest } = extractFrames(joined);
      inbox = rest;
      for (const f of frames) {
        const bytes = answer(decodeRequest(f).register, n++);
        if (bytes) void pair.device.send(bytes);
      }
    });
    const link = new SerialLink({ path: pair.driverPath });
    const driver = new JbdDriver({ link, pollIntervalMs: POLL_MS, replyTimeoutMs: TIMEOUT_MS });
    const snapshots: BatterySnapshot[] = [];
    const events: DriverEvent[] = [];
    driver.onSnapshot((s) => snapshots.push(s));
    driver.onEvent((e) => events.push(e));
    cleanups.push(() => driver.stop());
    return { driver, snapshots, events };
  }

  const basic = () =>
    encodeBasicInfo({
      voltage: 13.2,
      current: 1.5,
      capacityRemaining: 50,
      capacityNominal: 100,
      cycles: 3,
      productionDate: '2024-01-02',
      balanceBits: 0,
      protectionBits: 0,
      softwareVersion: '1.0',
      soc: 50,
      chargeFet: true,
      dischargeFet: true,
      cellCount: 4,
      temperatures: [20],
    });

  it('reports undecodable and error-status replies as events, emits no snapshot for them, and carries on', async () => {
    let broken = true;
    const r = await handRig((reg, n) => {
      if (reg === 3 && broken)
        return n % 2 === 0 ? encodeResponse(3, Uint8Array.of(1, 2, 3)) : encodeResponse(3, new Uint8Array(0), 0x80);
      if (reg === 3) return encodeResponse(3, basic());
      if (reg === 4) return encodeResponse(4, encodeCellVoltages([3.3, 3.3, 3.3, 3.3]));
      if (reg === 5) return encodeResponse(5, encodeHardwareVersion('HAND-MADE'));
      return undefined;
    });
    r.driver.start();
    await waitFor(() => r.events.filter((e) => e.message.startsWith('bad reply')).length >= 2, 5000, 'decode events');
    expect(r.snapshots).toHaveLength(0);
    expect(messages(r.events)).toMatch(/truncated/);
    expect(messages(r.events)).toMatch(/bms-error/);
    broken = false;
    await waitFor(() => r.snapshots.length >= 1, 5000, 'a snapshot once replies are sane');
    expect(r.snapshots[0]).toMatchObject({ voltage: 13.2, current: 1.5, soc: 50, cellVoltages: [3.3, 3.3, 3.3, 3.3] });
    expect(r.snapshots[0]?.identity.model).toBe('HAND-MADE');
  });

  it('keeps polling when 0x05 is never answered, and retries it spaced out rather than every cycle', async () => {
    const asked: number[] = [];
    const r = await handRig((reg) => {
      asked.push(reg);
      if (reg === 3) return encodeResponse(3, basic());
      if (reg === 4) return encodeResponse(4, encodeCellVoltages([3.3, 3.3, 3.3, 3.3]));
      return undefined; // 0x05: silence
    });
    r.driver.start();
    await waitFor(() => r.snapshots.length >= 6, 8000, 'six snapshots');
    expect(r.snapshots.every((s) => s.identity.model === undefined)).toBe(true);
    const modelRequests = asked.filter((x) => x === 5).length;
    expect(modelRequests).toBeGreaterThanOrEqual(1);
    expect(modelRequests).toBeLessThan(r.snapshots.length);
    // A missing model string is no reason to reopen the port.
    expect(messages(r.events)).not.toMatch(/consecutive cycles/);
  });

  it('rejects a reply timeout that is not shorter than the poll interval', () => {
    const link = new SerialLink({ path: '/nonexistent' });
    expect(() => new JbdDriver({ link, pollIntervalMs: 500, replyTimeoutMs: 500 })).toThrow(RangeError);
    expect(new JbdDriver({ link }).replyTimeoutMs).toBe(800);
    expect(new JbdDriver({ link, pollIntervalMs: 200 }).replyTimeoutMs).toBe(160);
  });
});
