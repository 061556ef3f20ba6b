import { describe, expect, test } from 'vitest';
import {
  decodeFrame,
  decodeManufacturerInfo,
  encodeRequest,
  PylonCommand,
  requireReplyInfo,
} from '../../src/bms/pylon-rs485/protocol.js';
import {
  decodeAlarms,
  decodeTelemetry,
  encodeAlarms,
  encodeTelemetry,
  identifyReply,
  probe,
  protectionFlags,
  requestInfo,
  SeplosAlarmByte,
  type SeplosTelemetry,
  toSnapshot,
} from '../../src/bms/pylon-rs485/seplos.js';
import type { ProtectionFlags } from '../../src/domain/battery-snapshot.js';
import { describeBmsFamily, describeRefusalByOtherFamilies, expectFrameError } from './contract.js';
import { dalyFamily } from './daly-family.js';
import { jbdFamily } from './jbd-family.js';
import {
  CAPTURED_SEPLOS_COMMANDS,
  pylonCaptures,
  pylonFrame,
  pylontechFamily,
  pylontechGoldenFrames,
  seplosFamily,
  seplosGoldenFrames,
} from './pylon-rs485-family.js';

const text = (bytes: Uint8Array): string => String.fromCharCode(...bytes);
const infoOf = (raw: Uint8Array): Uint8Array => requireReplyInfo(decodeFrame(raw), decodeFrame(raw).address);

// Real replies (ESPHome seplos_bms README; line numbers in test/fixtures/seplos-pylon-rs485/seplos-v2-readme-frames.txt).
const TELEMETRY = pylonFrame(pylonCaptures.seplos, 7);
const INFO = pylonFrame(pylonCaptures.seplos, 10);
const base = decodeTelemetry(infoOf(TELEMETRY));

const NO_PROTECTION: ProtectionFlags = {
  cellOverVoltage: false,
  cellUnderVoltage: false,
  packOverVoltage: false,
  packUnderVoltage: false,
  chargeOverTemperature: false,
  chargeUnderTemperature: false,
  dischargeOverTemperature: false,
  dischargeUnderTemperature: false,
  chargeOverCurrent: false,
  dischargeOverCurrent: false,
  shortCircuit: false,
  frontEndError: false,
  internalFailure: false,
};

describeBmsFamily(seplosFamily);
describeRefusalByOtherFamilies(seplosFamily, [jbdFamily, dalyFamily, pylontechFamily, seplosFamily]);

describe('Seplos fixtures', () => {
  test('the README capture holds two real replies and the four requests ESPHome sent, all to address 0', () => {
    expect(seplosGoldenFrames).toHaveLength(2);
    const requests = pylonCaptures.seplos.filter((l) => l.direction === 'tx').map((l) => decodeFrame(l.bytes));
    expect(requests.map((r) => r.cid2)).toEqual([...CAPTURED_SEPLOS_COMMANDS]);
    expect(requests.every((r) => r.address === 0)).toBe(true);
  });
});

describe('Seplos golden frames decode to the values the capture documents', () => {
  test('the 0x42 reply decodes to 16 cells, six temperatures, −6.76 A, 52.80 V, SOC 78.7 % and the README values', () => {
    expect(decodeFrame(TELEMETRY)).toMatchObject({ version: 0x20, address: 0, cid1: 0x46, cid2: 0 });
    expect(decodeTelemetry(infoOf(TELEMETRY))).toStrictEqual({
      dataFlag: 0,
      commandGroup: 1,
      cellVoltages: [
        3.287, 3.305, 3.316, 3.286, 3.311, 3.301, 3.297, 3.292, 3.305, 3.312, 3.304, 3.311, 3.306, 3.29, 3.294, 3.288,
      ],
      temperatures: [25.1, 24.5, 23.6, 25.1, 25, 24.7],
      current: -6.76,
      voltage: 52.8,
      capacityRemaining: 133.9,
      capacity: 170,
      soc: 78.7,
      ratedCapacity: 180,
      cycles: 70,
      soh: 100,
      portVoltage: 52.79,
      consumed: 75,
    } satisfies SeplosTelemetry);
  });

  test('the 0x51 reply decodes to device 1101-SP15, software 2.07 and the CAN protocol setting', () => {
    expect(decodeManufacturerInfo(infoOf(INFO))).toStrictEqual({
      deviceName: '1101-SP15',
      softwareVersion: '2.07',
      manufacturer: 'CANProtocol:Sofar',
    });
  });

  test('the two real replies become one snapshot: SoC, SoH, capacities, ambient and MOS temperature, identity', () => {
    const snapshot = toSnapshot(
      { telemetry: decodeTelemetry(infoOf(TELEMETRY)), info: decodeManufacturerInfo(infoOf(INFO)) },
      7,
    );
    expect(snapshot).toStrictEqual({
      timestampMs: 7,
      voltage: 52.8,
      current: -6.76,
      power: -356.93,
      soc: 78.7,
      soh: 100,
      capacityRemaining: 133.9,
      capacityInstalled: 170,
      cycles: 70,
      cellCount: 16,
      cellVoltages: decodeTelemetry(infoOf(TELEMETRY)).cellVoltages,
      temperatures: [
        { name: 'T1', celsius: 25.1 },
        { name: 'T2', celsius: 24.5 },
        { name: 'T3', celsius: 23.6 },
        { name: 'T4', celsius: 25.1 },
        { name: 'Ambient', celsius: 25 },
      ],
      mosTemperature: 24.7,
      protection: {},
      identity: { manufacturer: 'Seplos', model: '1101-SP15', firmware: '2.07' },
    });
  });

  test('identifyReply recognises both real replies by their layout alone and no Pylontech reply', () => {
    expect(seplosGoldenFrames.map((g) => identifyReply(infoOf(g.bytes))?.kind)).toEqual([
      'telemetry',
      'manufacturerInfo',
    ]);
    for (const g of pylontechGoldenFrames) expect(identifyReply(infoOf(g.bytes)), g.name).toBeUndefined();
  });
});

describe('Seplos requests', () => {
  test('0x42 and 0x44 carry the address as INFO; 0x47, 0x4F and 0x51 carry none, as ESPHome sends them', () => {
    expect(text(encodeRequest({ address: 0, command: 0x42, info: requestInfo(0x42, 0) }))).toBe(
      '~20004642E00200FD37\r',
    );
    expect(text(encodeRequest({ address: 0, command: 0x51, info: requestInfo(0x51, 0) }))).toBe('~200046510000FDAE\r');
    expect(requestInfo(PylonCommand.alarmInfo, 9)).toEqual(Uint8Array.of(9));
    expect(requestInfo(PylonCommand.systemParameters, 9)).toHaveLength(0);
  });
});

describe('Seplos decoding rules', () => {
  test('a board that sends fewer custom items leaves the missing fields undefined and is not a probe match', () => {
    // Cut the real INFO after SOC and rated capacity, and say so in the custom-item count (P = 3).
    const info = infoOf(TELEMETRY);
    const at = 3 + 32 + 1 + 12 + 6; // flag, group, M, cells, N, temps, current/voltage/remaining
    const short = Uint8Array.from([...info.subarray(0, at), 3, ...info.subarray(at + 1, at + 1 + 6)]);
    const t = decodeTelemetry(short);
    expect([t.capacity, t.soc, t.ratedCapacity, t.cycles, t.soh, t.portVoltage]).toEqual([
      170,
      78.7,
      180,
      undefined,
      undefined,
      undefined,
    ]);
    expect(identifyReply(short)).toBeUndefined();
  });

  test('a telemetry INFO cut inside the cell voltages is refused with truncated', () => {
    expectFrameError(() => decodeTelemetry(infoOf(TELEMETRY).subarray(0, 20)), 'truncated');
  });

  test('an alarm reply with fewer than 9 bit bytes is refused with invalid-value', () => {
    const info = Uint8Array.of(0, 0, 1, 0, 1, 0, 0, 0, 3, 0, 0, 0);
    expectFrameError(() => decodeAlarms(info), 'invalid-value');
  });

  test('probe refuses the ESPHome requests and accepts both real replies', () => {
    for (const l of pylonCaptures.seplos) expect(probe(l.bytes), `line ${l.line}`).toBe(l.direction === 'rx');
  });

  test('with five temperature sensors none is taken for the MOS sensor', () => {
    const five = { ...base, temperatures: [20, 21, 22, 23, 24] };
    const s = toSnapshot({ telemetry: five }, 0);
    expect(s.mosTemperature).toBeUndefined();
    expect(s.temperatures?.map((t) => t.name)).toEqual(['T1', 'T2', 'T3', 'T4', 'T5']);
  });
});

describe('Seplos 0x44 alarms (layout of the V2.0 document; no public capture, so decoder and encoder are checked together)', () => {
  const alarmsWith = (bits: Record<number, number>) =>
    decodeAlarms(
      encodeAlarms({
        commandGroup: 0,
        cellAlarms: new Array(16).fill(0),
        temperatureAlarms: new Array(6).fill(0),
        bits: Array.from({ length: 20 }, (_, i) => bits[i] ?? 0),
      }),
    );

  test('a quiet pack with both FETs on decodes to FETs on, no balancing and no protection', () => {
    const a = alarmsWith({ [SeplosAlarmByte.onOff]: 0x03 });
    expect(a).toMatchObject({ chargeFet: true, dischargeFet: true, consumed: 2 + 17 + 7 + 2 + 21 });
    expect(a.balancing).toEqual(new Array(16).fill(false));
    expect(protectionFlags(a)).toStrictEqual(NO_PROTECTION);
    expect(
      identifyReply(encodeAlarms({ commandGroup: 0, cellAlarms: [0], temperatureAlarms: [0], bits: [] }))?.kind,
    ).toBe('alarms');
  });

  test('balancing bytes 1 and 2 map bit 0 to cell 1 and bit 7 of byte 2 to cell 16', () => {
    const a = alarmsWith({ [SeplosAlarmByte.balancing1]: 0x01, [SeplosAlarmByte.balancing2]: 0x80 });
    expect(a.balancing.flatMap((on, i) => (on ? [i + 1] : []))).toEqual([1, 16]);
  });

  test.each<[string, number, number, keyof ProtectionFlags]>([
    ['cell over-voltage protection', SeplosAlarmByte.event2, 0x02, 'cellOverVoltage'],
    ['cell under-voltage protection', SeplosAlarmByte.event2, 0x08, 'cellUnderVoltage'],
    ['total over-voltage protection', SeplosAlarmByte.event2, 0x20, 'packOverVoltage'],
    ['total under-voltage protection', SeplosAlarmByte.event2, 0x80, 'packUnderVoltage'],
    ['charge over-temperature protection', SeplosAlarmByte.event3, 0x02, 'chargeOverTemperature'],
    ['charge under-temperature protection', SeplosAlarmByte.event3, 0x08, 'chargeUnderTemperature'],
    ['discharge over-temperature protection', SeplosAlarmByte.event3, 0x20, 'dischargeOverTemperature'],
    ['discharge under-temperature protection', SeplosAlarmByte.event3, 0x80, 'dischargeUnderTemperature'],
    ['charge over-current protection', SeplosAlarmByte.event5, 0x02, 'chargeOverCurrent'],
    ['discharge over-current protection', SeplosAlarmByte.event5, 0x08, 'dischargeOverCurrent'],
    ['output short circuit protection', SeplosAlarmByte.event5, 0x20, 'shortCircuit'],
    ['output short circuit lockout', SeplosAlarmByte.event5, 0x80, 'shortCircuit'],
    ['voltage sensor fault', SeplosAlarmByte.event1, 0x01, 'frontEndError'],
    ['charge switch fault', SeplosAlarmByte.event1, 0x20, 'internalFailure'],
    ['EEPROM storage fault', SeplosAlarmByte.event8, 0x01, 'internalFailure'],
  ])('%s sets %s and nothing else', (_, byte, mask, flag) => {
    expect(protectionFlags(alarmsWith({ [byte]: mask }))).toStrictEqual({ ...NO_PROTECTION, [flag]: true });
  });

  test('alarm-level bits (cell high-voltage alarm, charge over-current alarm) set no protection flag', () => {
    expect(
      protectionFlags(alarmsWith({ [SeplosAlarmByte.event2]: 0x01, [SeplosAlarmByte.event5]: 0x01 })),
    ).toStrictEqual(NO_PROTECTION);
  });

  test('alarms in the snapshot give FET states, balancing cut to the cell count, and protection flags', () => {
    const a = alarmsWith({ [SeplosAlarmByte.onOff]: 0x01, [SeplosAlarmByte.balancing1]: 0x04 });
    const s = toSnapshot({ telemetry: { ...base, cellVoltages: base.cellVoltages.slice(0, 8) }, alarms: a }, 0);
    expect(s).toMatchObject({ chargeFet: false, dischargeFet: true, protection: NO_PROTECTION });
    expect(s.balancing).toEqual([false, false, true, false, false, false, false, false]);
  });

  test('the telemetry encoder rebuilds the real 0x42 INFO byte for byte from its decoded values', () => {
    // The simulator's encoder checked against real bytes (the decoder was checked against the capture above).
    expect(Array.from(encodeTelemetry(base))).toEqual(Array.from(infoOf(TELEMETRY)));
  });
});
