import { describe, expect, test } from 'vitest';
import {
  assembleCellVoltages,
  assembleTemperatures,
  DalyCommand,
  DalyFramer,
  decodeBalanceState,
  decodeCellExtremes,
  decodeCellVoltageFrame,
  decodeFailureStatus,
  decodeFetStatus,
  decodePackStatus,
  decodeReplyFrame,
  decodeStatusInfo,
  decodeTemperatureExtremes,
  decodeTemperatureFrame,
  encodeRequest,
  protectionFlags,
  requirePayload,
  toSnapshot,
} from '../../src/bms/daly/protocol.js';
import { DalySimulator, PackModel } from '../../src/sim/daly-simulator.js';
import { createRandom } from '../../src/sim/random.js';

/** A transport in memory: what the simulator writes is collected; `deliver` plays the host's side. */
function memoryTransport() {
  const written: Uint8Array[] = [];
  let listener: ((chunk: Uint8Array) => void) | undefined;
  return {
    written,
    send: (bytes: Uint8Array) => {
      written.push(bytes);
    },
    onData: (l: (chunk: Uint8Array) => void) => {
      listener = l;
    },
    deliver: (bytes: Uint8Array) => listener?.(bytes),
    bytes: () => Uint8Array.from(written.flatMap((c) => [...c])),
  };
}

const waitUntil = async (check: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** Ask the simulator for every data id and decode the answers with the protocol module (the driver's view). */
function readAll(sim: DalySimulator, now: number) {
  const one = (id: number) => {
    const [frame] = sim.respond(encodeRequest(id));
    return requirePayload(decodeReplyFrame(frame as Uint8Array), id);
  };
  const many = (id: number) => sim.respond(encodeRequest(id)).map((f) => requirePayload(decodeReplyFrame(f), id));
  const status = decodeStatusInfo(one(DalyCommand.statusInfo));
  return toSnapshot(
    {
      pack: decodePackStatus(one(DalyCommand.packStatus)),
      fet: decodeFetStatus(one(DalyCommand.fetStatus)),
      status,
      cells: assembleCellVoltages(many(DalyCommand.cellVoltages).map(decodeCellVoltageFrame), status.cellCount),
      temperatures: assembleTemperatures(
        many(DalyCommand.temperatures).map(decodeTemperatureFrame),
        status.temperatureSensorCount,
      ),
      balancing: decodeBalanceState(one(DalyCommand.balanceState)),
      failures: decodeFailureStatus(one(DalyCommand.failureStatus)),
    },
    now,
  );
}

describe('Daly simulator answers decode to its own values', () => {
  test('a 16-cell, 2-sensor pack answers every data id with values equal to values()', () => {
    const clock = { t: 0 };
    const sim = new DalySimulator({ seed: 7, now: () => clock.t });
    const v = sim.values();
    const s = readAll(sim, 0);
    expect(s).toMatchObject({
      voltage: v.voltage,
      current: v.current,
      soc: v.soc,
      capacityRemaining: v.capacityRemaining,
      cycles: v.cycles,
      cellCount: 16,
      cellVoltages: v.cells,
      balancing: v.balancing,
      chargeFet: true,
      dischargeFet: true,
    });
    expect(s.temperatures?.map((t) => t.celsius)).toEqual(v.temperatures);
    expect(v.cells).toHaveLength(16);
    expect(v.temperatures).toHaveLength(2);
  });

  test('0x91 and 0x92 report the extremes of the cells and sensors', () => {
    const sim = new DalySimulator({ seed: 3, now: () => 0 });
    sim.setValues({ cells: [3.3, 3.31, 3.29, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3] });
    sim.setValues({ temperatures: [18, 26] });
    const [c] = sim.respond(encodeRequest(0x91));
    expect(decodeCellExtremes(requirePayload(decodeReplyFrame(c as Uint8Array), 0x91))).toEqual({
      maxCellVoltage: 3.31,
      maxCellNumber: 2,
      minCellVoltage: 3.29,
      minCellNumber: 3,
    });
    const [t] = sim.respond(encodeRequest(0x92));
    expect(decodeTemperatureExtremes(requirePayload(decodeReplyFrame(t as Uint8Array), 0x92))).toEqual({
      maxTemperature: 26,
      maxSensor: 2,
      minTemperature: 18,
      minSensor: 1,
    });
  });

  test('0x95 comes as ⌈cells/3⌉ frames, or all 16 with allCellFrames (the BLE boards), and 0x96 as ⌈sensors/7⌉', () => {
    const sim = new DalySimulator({ cells: 8, temperatureSensors: 9, seed: 1, now: () => 0 });
    expect(sim.respond(encodeRequest(0x95))).toHaveLength(3);
    expect(sim.respond(encodeRequest(0x96))).toHaveLength(2);
    sim.allCellFrames = true;
    const frames = sim.respond(encodeRequest(0x95)).map((f) => decodeCellVoltageFrame(decodeReplyFrame(f).payload));
    expect(frames.map((f) => f.frameNumber)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(assembleCellVoltages(frames, 8)).toEqual(sim.values().cells);
  });

  test('requests from both host addresses (0x40 RS485, 0x80 UART) are answered; replies and unknown ids are not', () => {
    const sim = new DalySimulator({ seed: 1, now: () => 0 });
    expect(sim.respond(encodeRequest(0x90, 0x40))).toHaveLength(1);
    expect(sim.respond(encodeRequest(0x90, 0x80))).toHaveLength(1);
    expect(sim.respond(sim.respond(encodeRequest(0x90))[0] as Uint8Array)).toEqual([]);
    expect(sim.respond(encodeRequest(0x50))).toEqual([]);
  });

  test('forced failure bits and an open charge FET show up in 0x98 and 0x93, and the current stops charging', () => {
    const clock = { t: 0 };
    const sim = new DalySimulator({ seed: 5, now: () => clock.t });
    sim.setValues({ failureBits: [0x02, 0, 0, 0, 0, 0, 0], faultCode: 3, chargeFet: false });
    const [f] = sim.respond(encodeRequest(0x98));
    const failures = decodeFailureStatus(requirePayload(decodeReplyFrame(f as Uint8Array), 0x98));
    expect(failures.faultCode).toBe(3);
    expect(protectionFlags(failures).cellOverVoltage).toBe(true);
    for (let i = 0; i < 50; i++) {
      clock.t += 60_000;
      expect(sim.values().current).toBeLessThanOrEqual(0);
    }
    sim.release();
    expect(sim.values().failureBits).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  test('the same seed and the same clock give the same values; values drift slowly over an hour', () => {
    const clockA = { t: 0 };
    const clockB = { t: 0 };
    const a = new DalySimulator({ seed: 42, now: () => clockA.t });
    const b = new DalySimulator({ seed: 42, now: () => clockB.t });
    const first = a.values();
    for (let i = 0; i < 60; i++) {
      clockA.t += 60_000;
      clockB.t += 60_000;
      const va = a.values();
      expect(b.values()).toEqual(va);
      expect(va.soc).toBeGreaterThan(0);
      expect(va.soc).toBeLessThan(100);
      for (const c of va.cells) expect(c).toBeGreaterThan(2.9);
    }
    const last = a.values();
    expect(Math.abs(last.soc - first.soc)).toBeLessThan(15);
  });

  test('setValues refuses a cell list of the wrong length', () => {
    const sim = new DalySimulator({ cells: 4, seed: 1, now: () => 0 });
    expect(() => sim.setValues({ cells: [3.3] })).toThrow(RangeError);
    expect(() => new DalySimulator({ cells: 49 })).toThrow(RangeError);
  });
});

describe('Daly simulator on a transport', () => {
  test('requests split into single bytes are answered, with garbage and split replies the framer still reads', async () => {
    const sim = new DalySimulator({ seed: 9, now: () => 0 });
    sim.garbage = true;
    sim.split = true;
    const t = memoryTransport();
    sim.attach(t);
    const request = encodeRequest(DalyCommand.cellVoltages);
    for (const b of request) t.deliver(Uint8Array.of(b));
    await waitUntil(() => new DalyFramer().push(t.bytes()).length >= 6);
    const frames = new DalyFramer().push(t.bytes());
    expect(frames).toHaveLength(6);
    expect(sim.stats).toEqual({ requests: { [DalyCommand.cellVoltages]: 1 }, replies: 6 });
    sim.detach();
  });

  test('a silent simulator counts the request and writes nothing', async () => {
    const sim = new DalySimulator({ seed: 9, now: () => 0 });
    sim.silent = true;
    const t = memoryTransport();
    sim.attach(t);
    t.deliver(encodeRequest(0x90));
    await new Promise((r) => setTimeout(r, 20));
    expect(t.written).toEqual([]);
    expect(sim.stats.requests[0x90]).toBe(1);
  });
});

describe('the LiFePO4 pack model', () => {
  test('a pack that may not charge or discharge ends at zero current', () => {
    const m = new PackModel({ cells: 4, sensors: 1, capacityAh: 10, rnd: createRandom(1) });
    m.chargeAllowed = false;
    m.dischargeAllowed = false;
    m.advance(600);
    expect(m.view().current).toBe(0);
  });

  test('a held current is integrated into SoC: +10 A for 6 minutes into 100 Ah is +1 %', () => {
    const m = new PackModel({ cells: 4, sensors: 1, capacityAh: 100, rnd: createRandom(1) });
    m.setSoc(50);
    m.heldCurrent = 10;
    m.advance(360);
    expect(m.view().soc).toBeCloseTo(51, 6);
  });
});
