import { describe, expect, test } from 'vitest';
import {
  decodeFrame,
  decodeManufacturerInfo,
  encodeRequest,
  PylonCommand,
  PylonFramer,
  requireReplyInfo,
} from '../../src/bms/pylon-rs485/protocol.js';
import * as pylontech from '../../src/bms/pylon-rs485/pylontech.js';
import * as seplos from '../../src/bms/pylon-rs485/seplos.js';
import { PylonRs485Simulator } from '../../src/sim/pylon-rs485-simulator.js';

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

/** Ask pack `address` for `command` the way the driver does and return the INFO of the reply. */
function ask(sim: PylonRs485Simulator, address: number, command: number): Uint8Array {
  const info =
    sim.protocol === 'pylontech' ? pylontech.requestInfo(command, address) : seplos.requestInfo(command, address);
  const reply = sim.respond(encodeRequest({ address, command, info }));
  if (reply === undefined) throw new Error('no reply');
  return requireReplyInfo(decodeFrame(reply), address);
}

describe('Pylontech simulator answers decode to its own values', () => {
  const sim = new PylonRs485Simulator({
    protocol: 'pylontech',
    packs: [{ address: 2 }, { address: 3, cells: 16, capacityAh: 74 }, { address: 4 }],
    seed: 11,
    now: () => 0,
  });

  test('each pack answers 0x42 with its own module, 0x44 with FET bits and 0x92 with its limits', () => {
    for (const address of sim.addresses) {
      const v = sim.pack(address).values();
      const analog = pylontech.decodeAnalogValues(ask(sim, address, PylonCommand.analogValues), 'single');
      expect(analog.address).toBe(address);
      const m = analog.modules[0] as pylontech.PylontechModule;
      const alarms = pylontech.decodeAlarmInfo(ask(sim, address, PylonCommand.alarmInfo));
      const management = pylontech.decodeChargeManagement(ask(sim, address, PylonCommand.chargeManagement));
      const info = decodeManufacturerInfo(ask(sim, address, PylonCommand.manufacturerInfo));
      const s = pylontech.toSnapshot({ analog: m, alarms, management, info }, 0);
      expect(s).toMatchObject({
        voltage: v.voltage,
        current: v.current,
        soc: v.soc,
        capacityRemaining: v.capacityRemaining,
        capacityInstalled: v.capacityTotal,
        cycles: v.cycles,
        cellVoltages: v.cells,
        chargeFet: true,
        dischargeFet: true,
        bmsLimits: {
          chargeVoltage: v.limits.chargeVoltage,
          dischargeVoltage: v.limits.dischargeVoltage,
          chargeCurrent: v.limits.chargeCurrent,
          dischargeCurrent: v.limits.dischargeCurrent,
        },
        identity: { manufacturer: 'PYLON', model: 'US2000C', firmware: '1.07' },
      });
      expect(s.temperatures?.map((t) => t.celsius)).toEqual(v.temperatures);
    }
    expect(sim.pack(3).values().cells).toHaveLength(16);
    expect(sim.pack(3).values().capacityTotal).toBe(74);
  });

  test('a 74 Ah pack is sent with user-defined count 4 and u24 capacities, as US3000 packs do', () => {
    const info = ask(sim, 3, PylonCommand.analogValues);
    const m = pylontech.decodeAnalogValues(info).modules[0] as pylontech.PylontechModule;
    expect(m.capacityTotal).toBe(74);
    expect(pylontech.identifyReply(info)?.kind).toBe('analog');
  });

  test('the master answers 0x42 with COMMAND 0xFF for all packs; the others do not', () => {
    const all = sim.respond(encodeRequest({ address: 2, command: 0x42, info: Uint8Array.of(0xff) }));
    const decoded = pylontech.decodeAnalogValues(requireReplyInfo(decodeFrame(all as Uint8Array), 2), 'all');
    expect(decoded.modules.map((m) => m.voltage)).toEqual(sim.addresses.map((a) => sim.pack(a).values().voltage));
    const reply = sim.respond(encodeRequest({ address: 3, command: 0x42, info: Uint8Array.of(0xff) }));
    expect(decodeFrame(reply as Uint8Array).cid2).toBe(0x04);
  });

  test('0x47 decodes to plausible system parameters for the pack', () => {
    const p = pylontech.decodeSystemParameters(ask(sim, 2, PylonCommand.systemParameters));
    expect(p.moduleHighVoltage).toBe(54);
    expect(p.dischargeCurrentLimit).toBeLessThan(0);
  });

  test('an unknown command gets return code 0x04, an absent address and a silent pack get no answer', () => {
    expect(decodeFrame(sim.respond(encodeRequest({ address: 2, command: 0x4b })) as Uint8Array).cid2).toBe(0x04);
    expect(sim.respond(encodeRequest({ address: 9, command: 0x42, info: Uint8Array.of(9) }))).toBeUndefined();
    sim.pack(4).silent = true;
    expect(sim.respond(encodeRequest({ address: 4, command: 0x42, info: Uint8Array.of(4) }))).toBeUndefined();
    sim.pack(4).silent = false;
  });

  test('forced status1 bits and a disabled charge show up as protection flags and a zero charge limit', () => {
    const p = sim.pack(2);
    p.setValues({ pylontechStatus: [0x01, 0, 0, 0, 0], chargeFet: false });
    p.setValues({ limits: { ...p.values().limits, chargeEnable: false } });
    const alarms = pylontech.decodeAlarmInfo(ask(sim, 2, PylonCommand.alarmInfo));
    expect(pylontech.protectionFlags(alarms).packOverVoltage).toBe(true);
    expect(alarms.chargeFet).toBe(false);
    const m = pylontech.decodeAnalogValues(ask(sim, 2, 0x42)).modules[0] as pylontech.PylontechModule;
    const mgmt = pylontech.decodeChargeManagement(ask(sim, 2, PylonCommand.chargeManagement));
    expect(pylontech.toSnapshot({ analog: m, management: mgmt }, 0).bmsLimits?.chargeCurrent).toBe(0);
    p.release();
    expect(p.values().pylontechStatus).toEqual([0, 0, 0, 0, 0]);
  });

  test('two packs at one address are refused', () => {
    expect(() => new PylonRs485Simulator({ protocol: 'seplos', packs: [{ address: 1 }, { address: 1 }] })).toThrow(
      RangeError,
    );
  });
});

describe('Seplos simulator answers decode to its own values', () => {
  test('0x42, 0x44 and 0x51 of a Seplos pack decode to values(), in Seplos units', () => {
    const clock = { t: 0 };
    const sim = new PylonRs485Simulator({
      protocol: 'seplos',
      packs: [{ address: 0 }, { address: 1 }],
      seed: 4,
      now: () => clock.t,
    });
    clock.t = 3_600_000;
    for (const address of [0, 1]) {
      const v = sim.pack(address).values();
      const telemetry = seplos.decodeTelemetry(ask(sim, address, PylonCommand.analogValues));
      const alarms = seplos.decodeAlarms(ask(sim, address, PylonCommand.alarmInfo));
      const info = decodeManufacturerInfo(ask(sim, address, PylonCommand.manufacturerInfo));
      const s = seplos.toSnapshot({ telemetry, alarms, info }, 0);
      expect(s).toMatchObject({
        voltage: v.voltage,
        current: v.current,
        soc: v.soc,
        soh: 100,
        capacityRemaining: v.capacityRemaining,
        capacityInstalled: v.capacityTotal,
        cycles: v.cycles,
        cellVoltages: v.cells,
        balancing: v.balancing,
        mosTemperature: v.temperatures[5],
        identity: { manufacturer: 'Seplos', model: '1101-SP15', firmware: '2.07' },
      });
      expect(seplos.identifyReply(ask(sim, address, PylonCommand.alarmInfo))?.kind).toBe('alarms');
    }
  });

  test('Seplos packs do not answer the Pylontech-only 0x92 and 0x47', () => {
    const sim = new PylonRs485Simulator({ protocol: 'seplos', seed: 1, now: () => 0 });
    expect(decodeFrame(sim.respond(encodeRequest({ address: 0, command: 0x92 })) as Uint8Array).cid2).toBe(0x04);
    expect(decodeFrame(sim.respond(encodeRequest({ address: 0, command: 0x47 })) as Uint8Array).cid2).toBe(0x04);
  });

  test('a forced cell over-voltage protection bit becomes the protection flag', () => {
    const sim = new PylonRs485Simulator({ protocol: 'seplos', seed: 1, now: () => 0 });
    const bits = new Array(14).fill(0);
    bits[seplos.SeplosAlarmByte.event2] = 0x02;
    sim.pack(0).setValues({ seplosAlarmBits: bits, dischargeFet: false });
    const alarms = seplos.decodeAlarms(ask(sim, 0, PylonCommand.alarmInfo));
    expect(seplos.protectionFlags(alarms).cellOverVoltage).toBe(true);
    expect(alarms.dischargeFet).toBe(false);
  });
});

describe('Pylon RS485 simulator on a transport', () => {
  test('requests for three packs in one chunk get three replies, readable through garbage and split writes', async () => {
    const sim = new PylonRs485Simulator({
      protocol: 'pylontech',
      packs: [{ address: 2 }, { address: 3 }, { address: 4 }],
      seed: 2,
      now: () => 0,
    });
    sim.garbage = true;
    sim.split = true;
    const t = memoryTransport();
    sim.attach(t);
    const req = (a: number) => encodeRequest({ address: a, command: 0x42, info: Uint8Array.of(a) });
    t.deliver(Uint8Array.from([...req(2), ...req(3), ...req(4)]));
    await waitUntil(() => new PylonFramer().push(t.bytes()).length >= 3);
    const frames = new PylonFramer().push(t.bytes()).map(decodeFrame);
    expect(frames.map((f) => f.address)).toEqual([2, 3, 4]);
    expect(sim.stats).toEqual({ requests: { 2: 1, 3: 1, 4: 1 }, replies: 3 });
    sim.detach();
  });
});
