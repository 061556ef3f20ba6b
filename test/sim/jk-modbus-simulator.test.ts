import { describe, expect, it } from 'vitest';
import { decodeCellInfo, decodeDeviceInfo, decodeSettings } from '../../src/bms/jk-modbus/jk02-record.js';
import {
  decodeFrame,
  decodeRequest,
  encodeReadRequest,
  encodeTriggerRequest,
  encodeWriteRequest,
  isTriggerReply,
  JkPbFramer,
  JkPbTrigger,
  type JkPbTriggerRegister,
  toSnapshot,
} from '../../src/bms/jk-modbus/protocol.js';
import { JkModbusSimulator } from '../../src/sim/jk-modbus-simulator.js';
import { waitFor } from '../support/pty.js';
import { manualClock, wire } from '../support/sim-wire.js';

/** The record a pack returns for a trigger, checked to be that pack's reply. */
function trigger(sim: JkModbusSimulator, address: number, register: JkPbTriggerRegister): Uint8Array {
  const reply = sim.respond(decodeRequest(encodeTriggerRequest(address, register)));
  if (reply === undefined) throw new Error(`no reply from ${address}`);
  const [frame, ...rest] = new JkPbFramer().push(reply);
  expect(rest).toEqual([]);
  expect(isTriggerReply(frame as Uint8Array, address, register)).toBe(true);
  return (frame as Uint8Array).subarray(0, 300);
}

const addressOf = (frame: Uint8Array): number | undefined => {
  const f = decodeFrame(frame);
  return f.kind === 'reply' ? f.address : undefined;
};

describe('JkModbusSimulator answers like JK-PB packs on one bus', () => {
  it('answers a status trigger with a cell-info record carrying the values it reports', () => {
    const sim = new JkModbusSimulator({ seed: 1, now: manualClock().now });
    const v = sim.values();
    const c = decodeCellInfo(trigger(sim, 1, JkPbTrigger.status));
    expect(c.cellVoltages).toEqual(v.cells);
    expect(c.cellVoltages).toHaveLength(16);
    expect(c).toMatchObject({
      voltage: v.voltage,
      current: v.current,
      soc: v.soc,
      soh: 100,
      capacityRemaining: v.capacityRemaining,
      capacityNominal: 280,
      cycles: v.cycles,
      totalCycleCapacity: v.totalCycleCapacity,
      mosTemperature: v.mosTemperature,
      temperatures: v.temperatures,
      chargeFet: true,
      dischargeFet: true,
      alarms: 0,
      runtimeSeconds: v.runtimeSeconds,
    });
    expect(c.enabledCells).toBe(0xffff);
  });

  it('answers settings and about triggers with the pack cell count, capacity and identity', () => {
    const sim = new JkModbusSimulator({ seed: 2, addresses: [4], cells: 8, capacityAh: 100 });
    const s = decodeSettings(trigger(sim, 4, JkPbTrigger.settings));
    expect(s).toMatchObject({ cellCount: 8, nominalCapacity: 100, chargeSwitch: true, dischargeSwitch: true });
    const d = decodeDeviceInfo(trigger(sim, 4, JkPbTrigger.about));
    const v = sim.values(4);
    expect(d).toMatchObject({
      model: 'JK_PB2A16S20P',
      hardwareVersion: '15A',
      softwareVersion: '15.41',
      serialNumber: v.serialNumber,
      deviceName: 'JK-SIM-4',
      productionDate: '240914',
    });
    expect(v.serialNumber).toMatch(/^SIM04\d{5}$/);
  });

  it('maps through toSnapshot to exactly the values of the pack', () => {
    const sim = new JkModbusSimulator({ seed: 3, addresses: [2], now: manualClock().now });
    const v = sim.values(2);
    const snap = toSnapshot(
      {
        status: decodeCellInfo(trigger(sim, 2, JkPbTrigger.status)),
        settings: decodeSettings(trigger(sim, 2, JkPbTrigger.settings)),
        about: decodeDeviceInfo(trigger(sim, 2, JkPbTrigger.about)),
      },
      0,
    );
    expect(snap).toMatchObject({
      voltage: v.voltage,
      current: v.current,
      soc: v.soc,
      soh: v.soh,
      capacityRemaining: v.capacityRemaining,
      capacityInstalled: v.capacityNominal,
      cycles: v.cycles,
      cellVoltages: v.cells,
      cellCount: 16,
      mosTemperature: v.mosTemperature,
      identity: { manufacturer: 'JK', serial: v.serialNumber, firmware: '15.41', productionDate: '2024-09-14' },
    });
    expect(snap.temperatures?.map((t) => t.celsius)).toEqual(v.temperatures);
  });

  it('keeps the packs of a bus apart: each answers only its own address, with its own values', () => {
    const sim = new JkModbusSimulator({ seed: 4, addresses: [1, 2, 3], now: manualClock().now });
    const volts = [1, 2, 3].map((a) => decodeCellInfo(trigger(sim, a, JkPbTrigger.status)).voltage);
    expect(volts).toEqual([1, 2, 3].map((a) => sim.values(a).voltage));
    expect(new Set([1, 2, 3].map((a) => sim.values(a).serialNumber)).size).toBe(3);
    expect(sim.respond(decodeRequest(encodeTriggerRequest(5, JkPbTrigger.status)))).toBeUndefined();
  });

  it('a silenced pack stops answering while its neighbours go on', () => {
    const sim = new JkModbusSimulator({ seed: 5, addresses: [1, 2, 3] });
    sim.pack(2).silent = true;
    expect(sim.respond(decodeRequest(encodeTriggerRequest(2, JkPbTrigger.status)))).toBeUndefined();
    expect(() => trigger(sim, 1, JkPbTrigger.status)).not.toThrow();
    expect(() => trigger(sim, 3, JkPbTrigger.status)).not.toThrow();
    sim.pack(2).silent = false;
    expect(() => trigger(sim, 2, JkPbTrigger.status)).not.toThrow();
  });

  it('does not answer FC 0x03 reads or writes to registers other than the triggers', () => {
    const sim = new JkModbusSimulator({ seed: 6 });
    expect(sim.respond(decodeRequest(encodeReadRequest(1, 0x1200, 10)))).toBeUndefined();
    expect(sim.respond(decodeRequest(encodeWriteRequest(1, 0x1070, [0, 1])))).toBeUndefined();
  });

  it('holds forced values per pack (alarms, FETs, cells, SoH, negative temperatures) until released', () => {
    const clock = manualClock();
    const sim = new JkModbusSimulator({ seed: 7, addresses: [1, 2], now: clock.now });
    const cells = Array.from({ length: 16 }, (_, i) => (i === 0 ? 2.65 : 3.3));
    sim.setValues({ cells, alarms: 1 << 11, dischargeFet: false, soh: 91, temperatures: [-4.5, -3.9] }, 2);
    clock.advance(3_600_000);
    const c = decodeCellInfo(trigger(sim, 2, JkPbTrigger.status));
    expect(c.cellVoltages).toEqual(cells);
    expect(c.voltage).toBe(52.15);
    expect(c).toMatchObject({ alarms: 1 << 11, dischargeFet: false, soh: 91, temperatures: [-4.5, -3.9] });
    expect(decodeCellInfo(trigger(sim, 1, JkPbTrigger.status)).alarms).toBe(0);
    sim.pack(2).release();
    clock.advance(600_000);
    expect(sim.values(2).cells).not.toEqual(cells);
  });

  it('refuses impossible bus layouts and unknown packs with a RangeError', () => {
    expect(() => new JkModbusSimulator({ addresses: [] })).toThrow(RangeError);
    expect(() => new JkModbusSimulator({ addresses: [0] })).toThrow(RangeError);
    expect(() => new JkModbusSimulator({ addresses: [16] })).toThrow(RangeError);
    expect(() => new JkModbusSimulator({ addresses: [3, 3] })).toThrow(RangeError);
    expect(() => new JkModbusSimulator({ cells: 33 })).toThrow(RangeError);
    expect(() => new JkModbusSimulator({ addresses: [1] }).pack(2)).toThrow(RangeError);
  });

  it('gives the same bytes for the same seed and clock', () => {
    const a = manualClock();
    const b = manualClock();
    const simA = new JkModbusSimulator({ seed: 42, addresses: [1, 7], now: a.now });
    const simB = new JkModbusSimulator({ seed: 42, addresses: [1, 7], now: b.now });
    for (let i = 0; i < 20; i++) {
      a.advance(5_000);
      b.advance(5_000);
      for (const addr of [1, 7]) {
        expect(trigger(simA, addr, JkPbTrigger.status)).toEqual(trigger(simB, addr, JkPbTrigger.status));
      }
    }
  });

  it('stays in realistic ranges over a simulated day while still moving', () => {
    const clock = manualClock();
    const sim = new JkModbusSimulator({ seed: 8, now: clock.now });
    const socs: number[] = [];
    const currents: number[] = [];
    for (let poll = 0; poll < 24 * 20; poll++) {
      clock.advance(180_000);
      const c = decodeCellInfo(trigger(sim, 1, JkPbTrigger.status));
      socs.push(c.soc);
      currents.push(c.current);
      expect(Math.min(...c.cellVoltages)).toBeGreaterThanOrEqual(3.2);
      expect(Math.max(...c.cellVoltages)).toBeLessThanOrEqual(3.45);
      expect(Math.abs(c.voltage - c.cellVoltages.reduce((x, y) => x + y, 0))).toBeLessThan(0.0005);
      expect(c.capacityRemaining).toBeLessThanOrEqual(c.capacityNominal);
    }
    expect(Math.max(...socs) - Math.min(...socs)).toBeGreaterThan(3);
    expect(currents.some((x) => x > 0.5)).toBe(true);
    expect(currents.some((x) => x < -0.5)).toBe(true);
  });
});

describe('JkModbusSimulator on a transport', () => {
  it('answers requests for three addresses from one byte stream, in order, and ignores its own replies', async () => {
    const w = wire(new JkPbFramer());
    const sim = new JkModbusSimulator({ seed: 10, addresses: [1, 2, 3] });
    sim.attach(w.transport);
    const reqs = [1, 2, 3].map((a) => encodeTriggerRequest(a, JkPbTrigger.status));
    const stream = Uint8Array.from([0xff, ...(reqs[0] as Uint8Array), ...(reqs[1] as Uint8Array)]);
    w.request(stream.subarray(0, 5));
    w.request(stream.subarray(5));
    w.request(reqs[2] as Uint8Array);
    await waitFor(() => w.frames.length === 3, 2000, 'three replies');
    expect(w.frames.map(addressOf)).toEqual([1, 2, 3]);
    w.request(w.frames[0] as Uint8Array);
    await new Promise((r) => setTimeout(r, 30));
    expect(w.frames).toHaveLength(3);
    expect(sim.stats.requests).toEqual({ 1: { 5664: 1 }, 2: { 5664: 1 }, 3: { 5664: 1 } });
    expect(sim.stats.replies).toBe(3);
  });

  it('a three-pack bus with pack 2 silenced answers 1 and 3 and counts the request to 2', async () => {
    const w = wire(new JkPbFramer());
    const sim = new JkModbusSimulator({ seed: 11, addresses: [1, 2, 3] });
    sim.pack(2).silent = true;
    sim.attach(w.transport);
    for (const a of [1, 2, 3]) w.request(encodeTriggerRequest(a, JkPbTrigger.status));
    await waitFor(() => w.frames.length === 2, 2000, 'two replies');
    await new Promise((r) => setTimeout(r, 30));
    expect(w.frames.map(addressOf)).toEqual([1, 3]);
    expect(sim.stats.requests[2]).toEqual({ 5664: 1 });
  });

  it('still produces complete, valid replies with garbage and split writes switched on', async () => {
    const w = wire(new JkPbFramer());
    const sim = new JkModbusSimulator({ seed: 12, addresses: [1, 2] });
    sim.garbage = true;
    sim.split = true;
    sim.attach(w.transport);
    w.request(encodeTriggerRequest(1, JkPbTrigger.status));
    w.request(encodeTriggerRequest(2, JkPbTrigger.about));
    await waitFor(() => w.frames.length === 2, 10_000, 'two replies');
    expect(isTriggerReply(w.frames[0] as Uint8Array, 1, JkPbTrigger.status)).toBe(true);
    expect(isTriggerReply(w.frames[1] as Uint8Array, 2, JkPbTrigger.about)).toBe(true);
    expect(w.chunks).toBeGreaterThan(2 * 40);
    expect(w.framer.discarded).toBeGreaterThan(0);
  });

  it('the whole bus silenced answers nobody', async () => {
    const w = wire(new JkPbFramer());
    const sim = new JkModbusSimulator({ seed: 13, addresses: [1, 2] });
    sim.silent = true;
    sim.attach(w.transport);
    w.request(encodeTriggerRequest(1, JkPbTrigger.status));
    await new Promise((r) => setTimeout(r, 30));
    expect(w.frames).toHaveLength(0);
    sim.silent = false;
    w.request(encodeTriggerRequest(1, JkPbTrigger.status));
    await waitFor(() => w.frames.length === 1, 1000, 'a reply');
  });
});
