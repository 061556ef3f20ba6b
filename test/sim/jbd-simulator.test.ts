import { describe, expect, it } from 'vitest';
import {
  decodeBasicInfo,
  decodeCellVoltages,
  decodeFrame,
  decodeHardwareVersion,
  decodeRequest,
  encodeReadRequest,
  encodeWriteRequest,
  JbdFramer,
  JbdRegister,
  protectionFlags,
} from '../../src/bms/jbd/protocol.js';
import { JbdSimulator, lfpOpenCircuitVoltage } from '../../src/sim/jbd-simulator.js';
import { waitFor } from '../support/pty.js';
import { manualClock, wire } from '../support/sim-wire.js';

/** A manual clock, so simulated hours pass instantly. */

function ask(sim: JbdSimulator, register: number) {
  const reply = sim.respond(decodeRequest(encodeReadRequest(register)));
  if (reply === undefined) throw new Error('no reply');
  return decodeFrame(reply);
}

describe('JbdSimulator answers like a JBD board', () => {
  it('answers 0x03 with the values it reports, decoded by the protocol module', () => {
    const clock = manualClock();
    const sim = new JbdSimulator({ seed: 1, now: clock.now });
    const v = sim.values();
    const frame = ask(sim, JbdRegister.basicInfo);
    expect(frame.register).toBe(0x03);
    expect(frame.status).toBe(0);
    const basic = decodeBasicInfo(frame.payload);
    expect(basic.voltage).toBe(v.voltage);
    expect(basic.current).toBe(v.current);
    expect(basic.soc).toBe(v.soc);
    expect(basic.capacityRemaining).toBe(v.capacityRemaining);
    expect(basic.capacityNominal).toBe(100);
    expect(basic.cycles).toBe(v.cycles);
    expect(basic.cellCount).toBe(16);
    expect(basic.temperatures).toEqual(v.temperatures);
    expect(basic.temperatures).toHaveLength(3);
    expect(basic.chargeFet && basic.dischargeFet).toBe(true);
    expect(basic.protectionBits).toBe(0);
    expect(basic.productionDate).toBe('2023-05-17');
    expect(basic.softwareVersion).toBe('2.9');
  });

  it('answers 0x04 with every cell and 0x05 with the model string', () => {
    const sim = new JbdSimulator({ seed: 2, cells: 16, now: manualClock().now });
    const cells = decodeCellVoltages(ask(sim, JbdRegister.cellVoltages).payload);
    expect(cells).toEqual(sim.values().cells);
    expect(cells).toHaveLength(16);
    expect(decodeHardwareVersion(ask(sim, JbdRegister.hardwareVersion).payload)).toBe('JBD-SP25S003-L16S-100A');
  });

  it('keeps the pack voltage equal to the sum of the cells (to 10 mV)', () => {
    const sim = new JbdSimulator({ seed: 3, now: manualClock().now });
    const v = sim.values();
    const sum = v.cells.reduce((a, b) => a + b, 0);
    expect(Math.abs(v.voltage - sum)).toBeLessThanOrEqual(0.005 + 1e-9);
    expect(v.voltage).toBeGreaterThan(52);
    expect(v.voltage).toBeLessThan(55);
  });

  it('answers a register it does not model with the error status 0x80', () => {
    const sim = new JbdSimulator({ seed: 4 });
    const frame = ask(sim, 0x10);
    expect(frame.status).toBe(0x80);
    expect(frame.payload).toHaveLength(0);
  });

  it('switches the FETs off on an 0xE1 write, acks it, and reports the software lock until released', () => {
    const sim = new JbdSimulator({ seed: 5, now: manualClock().now });
    const ack = sim.respond(decodeRequest(encodeWriteRequest(JbdRegister.mosfetControl, Uint8Array.of(0x00, 0x03))));
    expect(ack).toEqual(Uint8Array.of(0xdd, 0xe1, 0x00, 0x00, 0x00, 0x00, 0x77));
    let basic = decodeBasicInfo(ask(sim, JbdRegister.basicInfo).payload);
    expect(basic.chargeFet).toBe(false);
    expect(basic.dischargeFet).toBe(false);
    expect(protectionFlags(basic.protectionBits).fetSoftwareLock).toBe(true);

    sim.respond(decodeRequest(encodeWriteRequest(JbdRegister.mosfetControl, Uint8Array.of(0x00, 0x00))));
    basic = decodeBasicInfo(ask(sim, JbdRegister.basicInfo).payload);
    expect(basic.chargeFet && basic.dischargeFet).toBe(true);
    expect(protectionFlags(basic.protectionBits).fetSoftwareLock).toBe(false);
  });

  it('holds forced values while time passes and lets them drift again after release()', () => {
    const clock = manualClock();
    const sim = new JbdSimulator({ seed: 6, now: clock.now });
    const cells = Array.from({ length: 16 }, (_, i) => (i === 6 ? 3.652 : 3.4));
    sim.setValues({ cells, chargeFet: false, protectionBits: 1 << 0, temperatures: [48.5, 21], soc: 99 });
    clock.advance(3_600_000);
    const basic = decodeBasicInfo(ask(sim, JbdRegister.basicInfo).payload);
    expect(decodeCellVoltages(ask(sim, JbdRegister.cellVoltages).payload)).toEqual(cells);
    expect(basic.voltage).toBe(54.65);
    expect(basic.chargeFet).toBe(false);
    expect(protectionFlags(basic.protectionBits).cellOverVoltage).toBe(true);
    expect(basic.temperatures).toEqual([48.5, 21]);
    expect(basic.soc).toBe(99);
    expect(basic.capacityRemaining).toBe(99);

    sim.release();
    clock.advance(600_000);
    expect(sim.values().cells).not.toEqual(cells);
  });

  it('supports 1 to 32 cells and refuses other counts', () => {
    for (const n of [1, 4, 8, 24, 32]) {
      const sim = new JbdSimulator({ cells: n, seed: n });
      expect(decodeCellVoltages(ask(sim, JbdRegister.cellVoltages).payload)).toHaveLength(n);
      expect(decodeBasicInfo(ask(sim, JbdRegister.basicInfo).payload).cellCount).toBe(n);
    }
    expect(() => new JbdSimulator({ cells: 0 })).toThrow(RangeError);
    expect(() => new JbdSimulator({ cells: 33 })).toThrow(RangeError);
    expect(() => new JbdSimulator({ cells: 2.5 })).toThrow(RangeError);
  });

  it('gives the same bytes for the same seed and clock (deterministic runs)', () => {
    const a = manualClock();
    const b = manualClock();
    const simA = new JbdSimulator({ seed: 42, now: a.now });
    const simB = new JbdSimulator({ seed: 42, now: b.now });
    for (let i = 0; i < 50; i++) {
      a.advance(7_000);
      b.advance(7_000);
      expect(simA.respond(decodeRequest(encodeReadRequest(3)))).toEqual(
        simB.respond(decodeRequest(encodeReadRequest(3))),
      );
      expect(simA.respond(decodeRequest(encodeReadRequest(4)))).toEqual(
        simB.respond(decodeRequest(encodeReadRequest(4))),
      );
    }
  });
});

describe('JbdSimulator values over simulated time', () => {
  it('stay in realistic LiFePO4 ranges over two simulated days while still moving', () => {
    const clock = manualClock();
    const sim = new JbdSimulator({ seed: 7, now: clock.now });
    const socs: number[] = [];
    const currents: number[] = [];
    const cellValues: number[] = [];
    const packVoltages: number[] = [];
    const temperatures: number[] = [];
    let widestSpread = 0;
    let balancingSeen = 0;
    for (let minute = 0; minute < 48 * 60; minute++) {
      clock.advance(60_000);
      const basic = decodeBasicInfo(ask(sim, JbdRegister.basicInfo).payload);
      const cells = decodeCellVoltages(ask(sim, JbdRegister.cellVoltages).payload);
      cellValues.push(Math.min(...cells), Math.max(...cells));
      widestSpread = Math.max(widestSpread, Math.max(...cells) - Math.min(...cells));
      packVoltages.push(basic.voltage);
      temperatures.push(...basic.temperatures);
      if (basic.balanceBits !== 0) balancingSeen++;
      socs.push(basic.soc);
      currents.push(basic.current);
    }
    expect(Math.min(...cellValues)).toBeGreaterThanOrEqual(3.25);
    expect(Math.max(...cellValues)).toBeLessThanOrEqual(3.45);
    expect(widestSpread).toBeLessThan(0.035);
    expect(Math.min(...packVoltages)).toBeGreaterThan(16 * 3.25);
    expect(Math.max(...packVoltages)).toBeLessThan(16 * 3.45);
    expect(Math.min(...socs)).toBeGreaterThanOrEqual(20);
    expect(Math.max(...socs)).toBeLessThanOrEqual(95);
    expect(Math.max(...currents.map(Math.abs))).toBeLessThanOrEqual(10);
    expect(Math.min(...temperatures)).toBeGreaterThanOrEqual(15);
    expect(Math.max(...temperatures)).toBeLessThanOrEqual(35);
    // It is a live pack, not a constant: SoC wanders, the current changes direction, balancing happens sometimes.
    expect(Math.max(...socs) - Math.min(...socs)).toBeGreaterThan(10);
    expect(currents.some((c) => c > 0.5)).toBe(true);
    expect(currents.some((c) => c < -0.5)).toBe(true);
    expect(balancingSeen).toBeGreaterThan(0);
    expect(balancingSeen).toBeLessThan(48 * 60);
    expect(sim.values().cycles).toBeGreaterThanOrEqual(0);
  });

  it('moves only a little between two polls a second apart', () => {
    const clock = manualClock();
    const sim = new JbdSimulator({ seed: 8, now: clock.now });
    let prev = sim.values();
    for (let i = 0; i < 300; i++) {
      clock.advance(1000);
      const v = sim.values();
      expect(Math.abs(v.soc - prev.soc)).toBeLessThanOrEqual(1);
      expect(Math.abs(v.voltage - prev.voltage)).toBeLessThan(0.2);
      prev = v;
    }
  });

  it('follows a monotonic LFP open-circuit curve with the long plateau around 3.30–3.35 V', () => {
    let last = 0;
    for (let soc = 0; soc <= 100; soc += 5) {
      const v = lfpOpenCircuitVoltage(soc);
      expect(v).toBeGreaterThan(last);
      last = v;
    }
    expect(lfpOpenCircuitVoltage(50)).toBeGreaterThan(3.3);
    expect(lfpOpenCircuitVoltage(50)).toBeLessThan(3.35);
  });
});

describe('JbdSimulator on a transport', () => {
  it('parses requests from a byte stream (split, with leading noise) and writes one reply each', async () => {
    const w = wire(new JbdFramer());
    const sim = new JbdSimulator({ seed: 9 });
    sim.attach(w.transport);
    const req = encodeReadRequest(3);
    w.request(Uint8Array.of(0x00, 0x13, ...req.subarray(0, 3)));
    w.request(req.subarray(3));
    w.request(Uint8Array.of(...encodeReadRequest(4), ...encodeReadRequest(5)));
    await waitFor(() => w.frames.length === 3, 1000, 'three replies');
    expect(w.frames.map((f) => f[1])).toEqual([3, 4, 5]);
    expect(sim.stats.requests).toEqual({ 3: 1, 4: 1, 5: 1 });
  });

  it('still produces complete, valid replies with garbage and split writes switched on', async () => {
    const w = wire(new JbdFramer());
    const sim = new JbdSimulator({ seed: 10 });
    sim.garbage = true;
    sim.split = true;
    sim.attach(w.transport);
    for (let i = 0; i < 20; i++) w.request(encodeReadRequest(i % 2 === 0 ? 3 : 4));
    await waitFor(() => w.frames.length === 20, 5000, 'twenty replies');
    expect(w.frames.map((f) => decodeFrame(f).register)).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 ? 4 : 3)));
    // The knobs really did something: far more writes than replies, and bytes thrown away by the framer.
    expect(w.chunks).toBeGreaterThan(100);
    expect(w.framer.discarded).toBeGreaterThan(0);
  });

  it('counts but does not answer requests while silent, and answers again when unsilenced', async () => {
    const w = wire(new JbdFramer());
    const sim = new JbdSimulator({ seed: 11 });
    sim.attach(w.transport);
    sim.silent = true;
    w.request(encodeReadRequest(3));
    await new Promise((r) => setTimeout(r, 30));
    expect(w.frames).toHaveLength(0);
    expect(sim.stats.requests[3]).toBe(1);
    sim.silent = false;
    w.request(encodeReadRequest(3));
    await waitFor(() => w.frames.length === 1, 1000, 'a reply');
  });

  it('ignores a detached transport and serves the one attached after a re-plug', async () => {
    const old = wire(new JbdFramer());
    const fresh = wire(new JbdFramer());
    const sim = new JbdSimulator({ seed: 12 });
    sim.attach(old.transport);
    sim.attach(fresh.transport);
    old.request(encodeReadRequest(3));
    fresh.request(encodeReadRequest(4));
    await waitFor(() => fresh.frames.length === 1, 1000, 'a reply on the new transport');
    expect(old.frames).toHaveLength(0);
    sim.detach();
    fresh.request(encodeReadRequest(3));
    await new Promise((r) => setTimeout(r, 30));
    expect(fresh.frames).toHaveLength(1);
  });

  it('survives a transport whose send throws', async () => {
    const sim = new JbdSimulator({ seed: 13 });
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
    listener?.(encodeReadRequest(3));
    listener?.(encodeReadRequest(4));
    await waitFor(() => attempts === 2, 1000, 'two write attempts');
  });
});
