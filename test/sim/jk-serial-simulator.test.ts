import { describe, expect, it } from 'vitest';
import {
  decodeReadAllReply,
  decodeRequest,
  encodeFrame,
  encodeReadAllRequest,
  JkSerialFramer,
  toSnapshot,
} from '../../src/bms/jk-serial/protocol.js';
import { JkPackModel, JkSerialSimulator } from '../../src/sim/jk-serial-simulator.js';
import { waitFor } from '../support/pty.js';
import { manualClock, wire } from '../support/sim-wire.js';

/** A manual clock, so simulated hours pass instantly. */

function readAll(sim: JkSerialSimulator) {
  const reply = sim.respond(decodeRequest(encodeReadAllRequest()));
  if (reply === undefined) throw new Error('no reply');
  return decodeReadAllReply(reply);
}

describe('JkSerialSimulator answers like a JK-B board', () => {
  it('answers read-all with the values it reports, decoded by the protocol module', () => {
    const sim = new JkSerialSimulator({ seed: 1, now: manualClock().now });
    const v = sim.values();
    const s = readAll(sim);
    expect(s.cellVoltages).toEqual(v.cells);
    expect(s.cellCount).toBe(16);
    expect(s.voltage).toBe(v.voltage);
    expect(s.current).toBe(v.current);
    expect(s.soc).toBe(v.soc);
    expect(s.cycles).toBe(v.cycles);
    expect(s.totalCycleCapacity).toBe(v.totalCycleCapacity);
    expect(s.capacity).toBe(100);
    expect(s.mosTemperature).toBe(v.mosTemperature);
    expect(s.temperatures).toEqual(v.temperatures);
    expect(s.status).toBe(0b011 | (v.balancing ? 0b100 : 0));
    expect(s.warnings).toBe(0);
    expect(s.protocolVersion).toBe(1);
    expect(s.softwareVersion).toBe('10.XW_S10.07');
    expect(s.manufacturerId).toBe(v.manufacturerId);
    expect(s.runtimeMinutes).toBe(Math.floor(v.runtimeSeconds / 60));
  });

  it('maps through toSnapshot to exactly its own values', () => {
    const sim = new JkSerialSimulator({ seed: 2, now: manualClock().now });
    const v = sim.values();
    const snap = toSnapshot(readAll(sim), 0);
    expect(snap).toMatchObject({
      voltage: v.voltage,
      current: v.current,
      soc: v.soc,
      cycles: v.cycles,
      capacityInstalled: v.capacityNominal,
      cellVoltages: v.cells,
      mosTemperature: v.mosTemperature,
      chargeFet: true,
      dischargeFet: true,
      identity: { manufacturer: 'JK', serial: v.manufacturerId, hardware: '10.XW', firmware: '10.07' },
    });
    expect(snap.temperatures?.map((t) => t.celsius)).toEqual(v.temperatures);
  });

  it('speaks protocol version 0 when told to, and the current still decodes with its sign', () => {
    const sim = new JkSerialSimulator({ seed: 3, now: manualClock().now });
    sim.setValues({ protocolVersion: 0, current: -7.5 });
    expect(readAll(sim)).toMatchObject({ protocolVersion: 0, current: -7.5 });
    sim.setValues({ current: 4.2 });
    expect(readAll(sim).current).toBe(4.2);
  });

  it('holds forced values, negative temperatures and warnings included, and drifts again after release()', () => {
    const clock = manualClock();
    const sim = new JkSerialSimulator({ seed: 4, now: clock.now });
    const cells = Array.from({ length: 16 }, (_, i) => (i === 3 ? 3.651 : 3.4));
    sim.setValues({ cells, chargeFet: false, alarms: 1 << 10, temperatures: [-7, 3], mosTemperature: -2, soc: 97 });
    clock.advance(3_600_000);
    const s = readAll(sim);
    expect(s.cellVoltages).toEqual(cells);
    expect(s.voltage).toBe(54.65);
    expect(s.status && s.status & 1).toBe(0);
    expect(toSnapshot(s, 0).protection.cellOverVoltage).toBe(true);
    expect(s.temperatures).toEqual([-7, 3]);
    expect(s.mosTemperature).toBe(-2);
    expect(s.soc).toBe(97);
    sim.release();
    clock.advance(600_000);
    expect(sim.values().cells).not.toEqual(cells);
  });

  it('supports 1 to 32 cells and refuses other counts', () => {
    for (const n of [1, 4, 8, 13, 24, 32]) {
      const s = readAll(new JkSerialSimulator({ cells: n, seed: n }));
      expect(s.cellVoltages).toHaveLength(n);
      expect(s.cellCount).toBe(n);
    }
    expect(() => new JkSerialSimulator({ cells: 0 })).toThrow(RangeError);
    expect(() => new JkSerialSimulator({ cells: 33 })).toThrow(RangeError);
  });

  it('gives the same bytes for the same seed and clock', () => {
    const a = manualClock();
    const b = manualClock();
    const simA = new JkSerialSimulator({ seed: 42, now: a.now });
    const simB = new JkSerialSimulator({ seed: 42, now: b.now });
    for (let i = 0; i < 30; i++) {
      a.advance(9_000);
      b.advance(9_000);
      expect(simA.respond(decodeRequest(encodeReadAllRequest()))).toEqual(
        simB.respond(decodeRequest(encodeReadAllRequest())),
      );
    }
  });

  it('does not answer commands other than read-all', () => {
    const sim = new JkSerialSimulator({ seed: 5 });
    const write = encodeFrame({ command: 0x02, source: 3, frameType: 0, data: Uint8Array.of(0xab, 0x01) });
    expect(sim.respond(decodeRequest(write))).toBeUndefined();
  });
});

describe('JkSerialSimulator values over simulated time', () => {
  it('stay in realistic LiFePO4 ranges over two simulated days while still moving', () => {
    const clock = manualClock();
    const sim = new JkSerialSimulator({ seed: 7, now: clock.now });
    const socs: number[] = [];
    const currents: number[] = [];
    const cells: number[] = [];
    const temps: number[] = [];
    const mos: number[] = [];
    let balancing = 0;
    for (let poll = 0; poll < 24 * 30; poll++) {
      clock.advance(120_000);
      const s = readAll(sim);
      cells.push(...s.cellVoltages);
      temps.push(...s.temperatures);
      mos.push(s.mosTemperature as number);
      socs.push(s.soc as number);
      currents.push(s.current as number);
      if (((s.status ?? 0) & 4) !== 0) balancing++;
      const sum = s.cellVoltages.reduce((x, y) => x + y, 0);
      expect(Math.abs((s.voltage as number) - sum)).toBeLessThanOrEqual(0.005 + 1e-9);
    }
    expect(Math.min(...cells)).toBeGreaterThanOrEqual(3.2);
    expect(Math.max(...cells)).toBeLessThanOrEqual(3.45);
    expect(Math.min(...socs)).toBeGreaterThanOrEqual(15);
    expect(Math.max(...socs)).toBeLessThanOrEqual(97);
    expect(Math.max(...socs) - Math.min(...socs)).toBeGreaterThan(10);
    expect(currents.some((c) => c > 0.5)).toBe(true);
    expect(currents.some((c) => c < -0.5)).toBe(true);
    expect(Math.max(...currents.map(Math.abs))).toBeLessThanOrEqual(12);
    expect(Math.min(...temps)).toBeGreaterThanOrEqual(12);
    expect(Math.max(...temps)).toBeLessThanOrEqual(38);
    expect(Math.max(...mos)).toBeLessThanOrEqual(60);
    expect(balancing).toBeGreaterThan(0);
    expect(balancing).toBeLessThan(24 * 30);
  });

  it('moves only a little between two polls a second apart', () => {
    const clock = manualClock();
    const sim = new JkSerialSimulator({ seed: 8, now: clock.now });
    let prev = sim.values();
    for (let i = 0; i < 300; i++) {
      clock.advance(1000);
      const v = sim.values();
      expect(Math.abs(v.soc - prev.soc)).toBeLessThanOrEqual(1);
      expect(Math.abs(v.voltage - prev.voltage)).toBeLessThan(0.2);
      prev = v;
    }
  });

  it('the pack model keeps the requested wire resolution for every value', () => {
    const clock = manualClock();
    const model = new JkPackModel({
      seed: 9,
      now: clock.now,
      resolution: { voltage: 2, current: 1, temperature: 0, capacity: 1 },
    });
    const decimals = (x: number) => (String(x).split('.')[1] ?? '').length;
    for (let i = 0; i < 100; i++) {
      clock.advance(30_000);
      const v = model.values();
      expect(decimals(v.voltage)).toBeLessThanOrEqual(2);
      expect(decimals(v.current)).toBeLessThanOrEqual(1);
      expect(v.temperatures.every((t) => Number.isInteger(t))).toBe(true);
      expect(decimals(v.capacityRemaining)).toBeLessThanOrEqual(1);
      for (const c of v.cells) expect(decimals(c)).toBeLessThanOrEqual(3);
    }
  });
});

describe('JkSerialSimulator on a transport', () => {
  it('parses requests from a byte stream (split, with leading noise, echoes of replies) and answers each', async () => {
    const w = wire(new JkSerialFramer());
    const sim = new JkSerialSimulator({ seed: 10 });
    sim.attach(w.transport);
    const req = encodeReadAllRequest();
    w.request(Uint8Array.of(0x00, 0x57, ...req.subarray(0, 5)));
    w.request(req.subarray(5));
    w.request(Uint8Array.of(...req, ...req));
    await waitFor(() => w.frames.length === 3, 1000, 'three replies');
    // A reply fed back (an RS485 echo) is not a request and gets no answer.
    const [reply] = w.frames;
    w.request(reply as Uint8Array);
    await new Promise((r) => setTimeout(r, 30));
    expect(w.frames).toHaveLength(3);
    expect(sim.stats).toEqual({ requests: { 6: 3 }, replies: 3 });
  });

  it('still produces complete, valid replies with garbage and split writes switched on', async () => {
    const w = wire(new JkSerialFramer());
    const sim = new JkSerialSimulator({ seed: 11 });
    sim.garbage = true;
    sim.split = true;
    sim.attach(w.transport);
    for (let i = 0; i < 3; i++) w.request(encodeReadAllRequest());
    await waitFor(() => w.frames.length === 3, 10_000, 'three replies');
    for (const f of w.frames) expect(decodeReadAllReply(f).cellVoltages).toHaveLength(16);
    expect(w.chunks).toBeGreaterThan(3 * 20);
    expect(w.framer.discarded).toBeGreaterThan(0);
  });

  it('counts but does not answer requests while silent, and answers again when unsilenced', async () => {
    const w = wire(new JkSerialFramer());
    const sim = new JkSerialSimulator({ seed: 12 });
    sim.attach(w.transport);
    sim.silent = true;
    w.request(encodeReadAllRequest());
    await new Promise((r) => setTimeout(r, 30));
    expect(w.frames).toHaveLength(0);
    expect(sim.stats.requests[6]).toBe(1);
    sim.silent = false;
    w.request(encodeReadAllRequest());
    await waitFor(() => w.frames.length === 1, 1000, 'a reply');
  });

  it('ignores a detached transport and serves the one attached after a re-plug', async () => {
    const old = wire(new JkSerialFramer());
    const fresh = wire(new JkSerialFramer());
    const sim = new JkSerialSimulator({ seed: 13 });
    sim.attach(old.transport);
    sim.attach(fresh.transport);
    old.request(encodeReadAllRequest());
    fresh.request(encodeReadAllRequest());
    await waitFor(() => fresh.frames.length === 1, 1000, 'a reply on the new transport');
    expect(old.frames).toHaveLength(0);
    sim.detach();
    fresh.request(encodeReadAllRequest());
    await new Promise((r) => setTimeout(r, 30));
    expect(fresh.frames).toHaveLength(1);
  });

  it('survives a transport whose send throws', async () => {
    const sim = new JkSerialSimulator({ seed: 14 });
    let listener: ((c: Uint8Array) => void) | undefined;
    let attempts = 0;
    sim.attach({
      send: () => {
        attempts++;
        throw new Error('port gone');
      },
      onData: (l) => {
        listener = l;
      },
    });
    listener?.(encodeReadAllRequest());
    listener?.(encodeReadAllRequest());
    await waitFor(() => attempts === 2, 1000, 'two write attempts');
  });
});
