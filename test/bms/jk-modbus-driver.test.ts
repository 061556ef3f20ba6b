import { describe, expect, it } from 'vitest';
import type { DriverEvent } from '../../src/bms/driver.js';
import { createJkPbBus, JK_PB_BAUD_RATE, JkPbDriver } from '../../src/bms/jk-modbus/driver.js';
import { decodeRequest, extractFrames } from '../../src/bms/jk-modbus/protocol.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import type { SerialBus } from '../../src/links/serial-bus.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { JkModbusSimulator, type JkPbSimValues } from '../../src/sim/jk-modbus-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { driverTestScope } from '../support/driver-rig.js';
import { openPair, sleep, waitFor } from '../support/pty.js';

const POLL_MS = 300;
const TIMEOUT_MS = 120;
const { cleanups, linkPath } = driverTestScope();

/** Distinct forced values per pack, so a reply delivered to the wrong driver would show. */
function forced(address: number): Partial<JkPbSimValues> {
  return {
    cells: Array.from({ length: 16 }, (_, i) => (3300 + 10 * address + i) / 1000),
    current: address % 2 === 0 ? 12.345 : (-1111 * address) / 1000,
    soc: 40 + address,
    capacityNominal: 280,
    temperatures: [(200 + address) / 10, (210 + address) / 10],
    mosTemperature: 30 + address,
    cycles: 100 + address,
    soh: 97,
    serialNumber: `SIMPACK0${address}`,
  };
}

interface Pack {
  driver: JkPbDriver;
  snapshots: BatterySnapshot[];
  events: DriverEvent[];
}

interface BusRig {
  sim: JkModbusSimulator;
  running: SimulatorOnPty;
  link: SerialLink;
  bus: SerialBus;
  packs: Map<number, Pack>;
  /** Addresses of the requests the device side received, in order. */
  requests: number[];
}

async function busRig(simAddresses: number[], driverAddresses: number[] = simAddresses): Promise<BusRig> {
  const path = linkPath('pb');
  const sim = new JkModbusSimulator({ seed: 5, addresses: simAddresses });
  for (const a of simAddresses) sim.setValues(forced(a), a);
  const running = await runSimulatorOnPty({ simulator: sim, link: path });
  const requests: number[] = [];
  let inbox: Uint8Array = new Uint8Array(0);
  running.pair?.device.onData((chunk) => {
    const joined = new Uint8Array(inbox.length + chunk.length);
    joined.set(inbox);
    joined.set(chunk, inbox.length);
    const { frames, rest } = extractFrames(joined);
    inbox = rest;
    for (const f of frames) requests.push(decodeRequest(f).address);
  });
  const link = new SerialLink({ path, baudRate: JK_PB_BAUD_RATE });
  const bus = createJkPbBus(link, { gapMs: 5, reconnectMinMs: 100, reconnectMaxMs: 400 });
  const packs = new Map<number, Pack>();
  for (const address of driverAddresses) {
    const driver = new JkPbDriver({ bus, address, pollIntervalMs: POLL_MS, replyTimeoutMs: TIMEOUT_MS });
    const pack: Pack = { driver, snapshots: [], events: [] };
    driver.onSnapshot((s) => pack.snapshots.push(s));
    driver.onEvent((e) => pack.events.push(e));
    packs.set(address, pack);
  }
  cleanups.push(async () => {
    for (const p of packs.values()) await p.driver.stop();
    await running.close();
  });
  return { sim, running, link, bus, packs, requests };
}

const pack = (r: BusRig, address: number): Pack => r.packs.get(address) as Pack;
const messages = (events: DriverEvent[]) => events.map((e) => e.message).join('\n');

function expectPackValues(s: BatterySnapshot, address: number, sim?: JkModbusSimulator): void {
  const v = forced(address);
  const cells = v.cells as number[];
  expect(s.cellVoltages).toEqual(cells);
  expect(s.voltage).toBe(cells.reduce((a, b) => a + Math.round(b * 1000), 0) / 1000);
  expect(s.current).toBe(v.current);
  expect(s.soc).toBe(v.soc);
  expect(s.soh).toBe(97);
  expect(s.capacityInstalled).toBe(280);
  expect(s.capacityRemaining).toBe(Math.round(((v.soc as number) / 100) * 280 * 1000) / 1000);
  expect(s.cycles).toBe(v.cycles);
  expect(s.cellCount).toBe(16);
  expect(s.temperatures?.map((t) => t.celsius)).toEqual(v.temperatures);
  expect(s.mosTemperature).toBe(v.mosTemperature);
  expect(s.chargeFet && s.dischargeFet).toBe(true);
  if (sim !== undefined) {
    // And the simulator reports the same (it holds forced values exactly).
    const now = sim.values(address);
    expect(s).toMatchObject({
      voltage: now.voltage,
      current: now.current,
      soc: now.soc,
      soh: now.soh,
      capacityRemaining: now.capacityRemaining,
      capacityInstalled: now.capacityNominal,
      cycles: now.cycles,
      cellVoltages: now.cells,
      mosTemperature: now.mosTemperature,
    });
  }
}

describe('JkPbDriver on a three-pack bus simulated on a pty', () => {
  it('delivers each pack its own values, identity included, over one shared port', async () => {
    const r = await busRig([1, 2, 3]);
    for (const p of r.packs.values()) p.driver.start();
    await waitFor(() => [...r.packs.values()].every((p) => p.snapshots.length >= 3), 8000, 'three snapshots per pack');
    for (const [address, p] of r.packs) {
      for (const s of p.snapshots) expectPackValues(s, address, r.sim);
      expect(p.snapshots.at(-1)?.identity).toEqual({
        manufacturer: 'JK',
        model: 'JK_PB2A16S20P',
        serial: `SIMPACK0${address}`,
        firmware: '15.41',
        hardware: '15A',
        productionDate: '2024-09-14',
      });
    }
    expect(r.bus.stats.timeouts).toBe(0);
  });

  it('keeps delivering packs 1 and 3 while pack 2 is silenced, without reopening the port', async () => {
    const r = await busRig([1, 2, 3]);
    r.sim.pack(2).silent = true;
    for (const p of r.packs.values()) p.driver.start();
    await waitFor(() => pack(r, 1).snapshots.length >= 4 && pack(r, 3).snapshots.length >= 4, 8000, 'packs 1 and 3');
    expect(pack(r, 2).snapshots).toHaveLength(0);
    for (const a of [1, 3]) for (const s of pack(r, a).snapshots) expectPackValues(s, a);
    const silentEvents = pack(r, 2).events;
    expect(silentEvents.find((e) => e.message.includes('pack 2: no reply from the BMS'))?.level).toBe('warn');
    // Repeats of the same trouble go to debug, so a dead pack does not flood the log.
    expect(silentEvents.filter((e) => e.message.includes('no reply') && e.level === 'warn')).toHaveLength(1);
    expect(messages(pack(r, 1).events)).not.toMatch(/reopening|no reply/);
    expect(r.link.isOpen).toBe(true);
    // The silent pack is asked once per cycle (status only), not three times.
    const asked2 = r.requests.filter((a) => a === 2).length;
    const cycles1 = pack(r, 1).snapshots.length;
    expect(asked2).toBeLessThanOrEqual(cycles1 + 2);

    r.sim.pack(2).silent = false;
    await waitFor(() => pack(r, 2).snapshots.length >= 2, 5000, 'pack 2 after it wakes up');
    expectPackValues(pack(r, 2).snapshots.at(-1) as BatterySnapshot, 2);
    expect(messages(pack(r, 2).events)).toContain('pack 2: BMS answering again');
  });

  it('a driver for an address nobody has gets no snapshots and does not disturb the others', async () => {
    const r = await busRig([1, 3], [1, 3, 9]);
    for (const p of r.packs.values()) p.driver.start();
    await waitFor(() => pack(r, 1).snapshots.length >= 3 && pack(r, 3).snapshots.length >= 3, 8000, 'packs 1 and 3');
    expect(pack(r, 9).snapshots).toHaveLength(0);
    expect(r.requests.filter((a) => a === 9).length).toBeGreaterThan(0);
  });

  it('reopens the port when the whole bus goes quiet, and every pack resumes when it answers again', async () => {
    const r = await busRig([1, 2]);
    for (const p of r.packs.values()) p.driver.start();
    await waitFor(() => pack(r, 1).snapshots.length >= 1 && pack(r, 2).snapshots.length >= 1, 5000, 'first snapshots');
    r.sim.silent = true;
    await waitFor(() => /requests in a row: reopening/.test(messages(pack(r, 1).events)), 8000, 'the bus watchdog');
    const counts = [pack(r, 1).snapshots.length, pack(r, 2).snapshots.length];
    r.sim.silent = false;
    await waitFor(
      () => pack(r, 1).snapshots.length > counts[0]! + 1 && pack(r, 2).snapshots.length > counts[1]! + 1,
      8000,
      'both packs after the silence',
    );
    expectPackValues(pack(r, 1).snapshots.at(-1) as BatterySnapshot, 1);
  });

  it('survives an unplug of the adapter and resumes all packs after the re-plug', async () => {
    const r = await busRig([1, 2]);
    for (const p of r.packs.values()) p.driver.start();
    await waitFor(() => pack(r, 2).snapshots.length >= 2, 5000, 'snapshots before the unplug');
    await r.running.unplug();
    await waitFor(() => /lost|cannot open|in a row/.test(messages(pack(r, 1).events)), 5000, 'the loss');
    const before = [pack(r, 1).snapshots.length, pack(r, 2).snapshots.length];
    await sleep(300);
    await r.running.replug();
    await waitFor(
      () => pack(r, 1).snapshots.length >= before[0]! + 2 && pack(r, 2).snapshots.length >= before[1]! + 2,
      8000,
      'snapshots after the re-plug',
    );
    expectPackValues(pack(r, 2).snapshots.at(-1) as BatterySnapshot, 2);
  });

  it('the port stays open until the last pack driver stops, then closes', async () => {
    const r = await busRig([1, 2]);
    for (const p of r.packs.values()) p.driver.start();
    await waitFor(() => pack(r, 1).snapshots.length >= 1 && pack(r, 2).snapshots.length >= 1, 5000, 'snapshots');
    await pack(r, 1).driver.stop();
    const count1 = pack(r, 1).snapshots.length;
    const count2 = pack(r, 2).snapshots.length;
    await waitFor(() => pack(r, 2).snapshots.length >= count2 + 2, 5000, 'pack 2 alone');
    expect(pack(r, 1).snapshots.length).toBe(count1);
    expect(r.link.isOpen).toBe(true);
    expect(r.bus.userCount).toBe(1);
    await pack(r, 2).driver.stop();
    expect(r.bus.userCount).toBe(0);
    expect(r.link.isOpen).toBe(false);
  });

  it('a pack that answers only the status trigger still delivers snapshots, and about is retried spaced out', async () => {
    const pair = await openPair();
    const sim = new JkModbusSimulator({ seed: 9, addresses: [4] });
    sim.setValues(forced(4), 4);
    const asked: number[] = [];
    let inbox: Uint8Array = new Uint8Array(0);
    pair.device.onData((chunk) => {
      const joined = new Uint8Array(inbox.length + chunk.length);
      joined.set(inbox);
      joined.set(chunk, inbox.length);
      const { frames, rest } = extractFrames(joined);
      inbox = rest;
      for (const f of frames) {
        const request = decodeRequest(f);
        asked.push(request.register);
        const reply = request.register === 0x1620 ? sim.respond(request) : undefined;
        if (reply !== undefined) void pair.device.send(reply);
      }
    });
    const bus = createJkPbBus(new SerialLink({ path: pair.driverPath, baudRate: JK_PB_BAUD_RATE }), { gapMs: 0 });
    const driver = new JkPbDriver({ bus, address: 4, pollIntervalMs: 150, replyTimeoutMs: 60 });
    const snapshots: BatterySnapshot[] = [];
    const events: DriverEvent[] = [];
    driver.onSnapshot((x) => snapshots.push(x));
    driver.onEvent((e) => events.push(e));
    cleanups.push(() => driver.stop());
    driver.start();
    await waitFor(() => snapshots.length >= 8, 8000, 'eight snapshots');
    for (const x of snapshots) expectPackValues(x, 4);
    expect(snapshots.at(-1)?.identity).toEqual({ manufacturer: 'JK' });
    expect(messages(events)).toContain('about record not read');
    expect(messages(events)).toContain('settings record not read');
    // Status every cycle; about after the 1st, 3rd and 7th cycle (2, 4, 8 cycles apart), not every cycle.
    const about = asked.filter((r) => r === 0x161c).length;
    expect(about).toBeGreaterThanOrEqual(2);
    expect(about).toBeLessThan(asked.filter((r) => r === 0x1620).length / 2);
  });

  it('refuses an address outside 1–15 and a reply timeout longer than the poll interval', () => {
    const bus = createJkPbBus(new SerialLink({ path: '/nonexistent' }));
    expect(() => new JkPbDriver({ bus, address: 0 })).toThrow(RangeError);
    expect(() => new JkPbDriver({ bus, address: 16 })).toThrow(RangeError);
    expect(() => new JkPbDriver({ bus, address: 1, pollIntervalMs: 500, replyTimeoutMs: 600 })).toThrow(RangeError);
  });
});
