import { describe, expect, it } from 'vitest';
import type { DriverEvent } from '../../src/bms/driver.js';
import { createPylonBus, type PylonProtocol, PylonRs485Driver } from '../../src/bms/pylon-rs485/driver.js';
import { decodeFrame, PylonFramer } from '../../src/bms/pylon-rs485/protocol.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { PylonRs485Simulator, type PylonSimValues } from '../../src/sim/pylon-rs485-simulator.js';
import { driverTestScope } from '../support/driver-rig.js';
import { waitFor } from '../support/pty.js';

const POLL_MS = 400;
const TIMEOUT_MS = 120;
const { cleanups, linkPath } = driverTestScope();

interface PackRig {
  driver: PylonRs485Driver;
  snapshots: BatterySnapshot[];
  events: DriverEvent[];
}

interface BusRig {
  sim: PylonRs485Simulator;
  running: SimulatorOnPty;
  packs: Map<number, PackRig>;
  /** [address, CID2] of each request the device side received, in order. */
  requests: [number, number][];
  start(): void;
}

async function busRig(
  protocol: PylonProtocol,
  addresses: number[],
  timing: { pollIntervalMs: number; replyTimeoutMs: number } = { pollIntervalMs: POLL_MS, replyTimeoutMs: TIMEOUT_MS },
): Promise<BusRig> {
  const path = linkPath(protocol);
  const sim = new PylonRs485Simulator({ protocol, packs: addresses.map((address) => ({ address })), seed: 5 });
  // Hold the values still so that snapshots can be compared with values() exactly.
  for (const a of addresses) sim.pack(a).setValues({ ...sim.pack(a).values(), current: a % 2 === 0 ? -3.2 : 2.5 });
  const running = await runSimulatorOnPty({ simulator: sim, link: path });
  const requests: [number, number][] = [];
  const tap = new PylonFramer();
  running.pair?.device.onData((chunk) => {
    for (const f of tap.push(chunk)) {
      const d = decodeFrame(f);
      requests.push([d.address, d.cid2]);
    }
  });
  const bus = createPylonBus(new SerialLink({ path }));
  const packs = new Map<number, PackRig>();
  for (const address of addresses) {
    const driver = new PylonRs485Driver({ protocol, address, bus, ...timing });
    const rig: PackRig = { driver, snapshots: [], events: [] };
    driver.onSnapshot((s) => rig.snapshots.push(s));
    driver.onEvent((e) => rig.events.push(e));
    packs.set(address, rig);
  }
  cleanups.push(async () => {
    for (const p of packs.values()) await p.driver.stop();
    await running.close();
  });
  return {
    sim,
    running,
    packs,
    requests,
    start: () => {
      for (const p of packs.values()) p.driver.start();
    },
  };
}

const pack = (r: BusRig, address: number): PackRig => r.packs.get(address) as PackRig;

function expectPackValues(s: BatterySnapshot, v: PylonSimValues): void {
  expect(s.voltage).toBe(v.voltage);
  expect(s.current).toBe(v.current);
  expect(s.soc).toBe(v.soc);
  expect(s.capacityRemaining).toBe(v.capacityRemaining);
  expect(s.capacityInstalled).toBe(v.capacityTotal);
  expect(s.cycles).toBe(v.cycles);
  expect(s.cellVoltages).toEqual(v.cells);
  expect(s.chargeFet).toBe(v.chargeFet);
  expect(s.dischargeFet).toBe(v.dischargeFet);
}

describe('Pylontech packs on one RS485 bus (pty + simulator)', () => {
  it('three packs each deliver snapshots equal to their own simulated values, limits and identity included', async () => {
    const r = await busRig('pylontech', [2, 3, 4]);
    r.start();
    await waitFor(() => [2, 3, 4].every((a) => pack(r, a).snapshots.length >= 2), 8000, 'two snapshots per pack');
    for (const a of [2, 3, 4]) {
      const v = r.sim.pack(a).values();
      for (const s of pack(r, a).snapshots) {
        expectPackValues(s, v);
        expect(s.temperatures?.map((t) => t.celsius)).toEqual(v.temperatures);
        expect(s.bmsLimits).toEqual({
          chargeVoltage: v.limits.chargeVoltage,
          dischargeVoltage: v.limits.dischargeVoltage,
          chargeCurrent: v.limits.chargeCurrent,
          dischargeCurrent: v.limits.dischargeCurrent,
        });
      }
      expect(pack(r, a).snapshots.at(-1)?.identity).toEqual({
        manufacturer: 'PYLON',
        model: 'US2000C',
        firmware: '1.07',
      });
    }
  });

  it('polls each pack in turn: 0x42, 0x44, 0x92, and 0x51 once per connection', async () => {
    const r = await busRig('pylontech', [2, 3]);
    r.start();
    await waitFor(() => pack(r, 3).snapshots.length >= 2, 8000, 'two cycles');
    const first = r.requests.slice(0, 8).map(([a, c]) => `${a}:${c.toString(16)}`);
    expect(first).toEqual(['2:42', '2:44', '2:92', '2:51', '3:42', '3:44', '3:92', '3:51']);
    expect(r.requests.filter(([a, c]) => a === 2 && c === 0x51)).toHaveLength(1);
  });

  it('with one of three packs silenced the other two keep delivering, and only the silent one reports timeouts', async () => {
    const r = await busRig('pylontech', [2, 3, 4]);
    r.sim.pack(3).silent = true;
    r.start();
    await waitFor(() => pack(r, 2).snapshots.length >= 4 && pack(r, 4).snapshots.length >= 4, 10_000, 'four snapshots');
    expect(pack(r, 3).snapshots).toHaveLength(0);
    expect(pack(r, 3).events.some((e) => e.level === 'warn' && e.message.includes('no reply from pack 3'))).toBe(true);
    expect(pack(r, 2).events.some((e) => e.message.includes('no reply'))).toBe(false);
    expectPackValues(pack(r, 4).snapshots.at(-1) as BatterySnapshot, r.sim.pack(4).values());
    // The bus was never reopened for one silent pack: every pack saw one open event only.
    expect(pack(r, 2).events.filter((e) => e.message.endsWith(' open'))).toHaveLength(1);
    // The silenced pack comes back.
    r.sim.pack(3).silent = false;
    await waitFor(() => pack(r, 3).snapshots.length >= 1, 8000, 'pack 3 answering again');
    expect(pack(r, 3).events.some((e) => e.message.includes('answering again'))).toBe(true);
  });

  it('when no pack answers for three cycles the bus reopens the link, and polling resumes when they answer', async () => {
    const r = await busRig('pylontech', [2, 3]);
    r.sim.pack(2).silent = true;
    r.sim.pack(3).silent = true;
    r.start();
    await waitFor(
      () => pack(r, 2).events.some((e) => e.message.includes('no reply from any device in 3 consecutive cycles')),
      8000,
      'the bus reopening',
    );
    expect(pack(r, 3).events.some((e) => e.message.includes('reopening'))).toBe(true);
    r.sim.pack(2).silent = false;
    r.sim.pack(3).silent = false;
    await waitFor(() => pack(r, 2).snapshots.length >= 1 && pack(r, 3).snapshots.length >= 1, 8000, 'snapshots again');
  });

  it('a pack that stops its driver leaves the others polling; the last one to stop closes the link', async () => {
    const r = await busRig('pylontech', [2, 3]);
    r.start();
    await waitFor(() => pack(r, 2).snapshots.length >= 1, 8000, 'a snapshot');
    await pack(r, 2).driver.stop();
    const before = pack(r, 3).snapshots.length;
    await waitFor(() => pack(r, 3).snapshots.length >= before + 2, 8000, 'pack 3 still polled');
    expect(pack(r, 3).driver.bus.link.isOpen).toBe(true);
    await pack(r, 3).driver.stop();
    expect(pack(r, 3).driver.bus.link.isOpen).toBe(false);
  });
});

describe('Seplos packs on one RS485 bus (pty + simulator)', () => {
  it('two Seplos packs at DIP addresses 0 and 1 deliver their own values; a silenced one does not stop the other', async () => {
    // Replies written in 1–6 byte chunks with pauses take ~150 ms for a 168-char 0x42 reply: allow for it.
    const r = await busRig('seplos', [0, 1], { pollIntervalMs: 1000, replyTimeoutMs: 450 });
    r.sim.garbage = true;
    r.sim.split = true;
    r.start();
    await waitFor(() => [0, 1].every((a) => pack(r, a).snapshots.length >= 2), 8000, 'two snapshots per pack');
    for (const a of [0, 1]) {
      const v = r.sim.pack(a).values();
      const s = pack(r, a).snapshots.at(-1) as BatterySnapshot;
      expectPackValues(s, v);
      expect(s.soh).toBe(100);
      expect(s.mosTemperature).toBe(v.temperatures[5]);
      expect(s.balancing).toEqual(v.balancing);
      expect(s.identity).toEqual({ manufacturer: 'Seplos', model: '1101-SP15', firmware: '2.07' });
    }
    r.sim.pack(0).silent = true;
    const before = pack(r, 1).snapshots.length;
    await waitFor(() => pack(r, 1).snapshots.length >= before + 2, 10_000, 'pack 1 continuing');
    expect(pack(r, 0).events.some((e) => e.message.includes('no reply from pack 0'))).toBe(true);
  });
});
