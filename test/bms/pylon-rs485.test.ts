import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  decodeFrame,
  decodeManufacturerInfo,
  encodeFrame,
  encodeManufacturerInfo,
  encodeReply,
  encodeRequest,
  extractFrames,
  frameChecksum,
  isReturnCode,
  lengthChecksum,
  lengthField,
  PYLON_MAX_FRAME,
  PylonCommand,
  PylonFramer,
  requireReplyInfo,
  tryDecodeFrame,
} from '../../src/bms/pylon-rs485/protocol.js';
import {
  decodeAlarmInfo,
  decodeAnalogValues,
  decodeChargeManagement,
  decodeSystemParameters,
  encodeAlarmInfo,
  encodeAnalogValues,
  encodeChargeManagement,
  encodeSystemParameters,
  identifyReply,
  type PylontechModule,
  type PylontechSystemParameters,
  probe,
  protectionFlags,
  requestInfo,
  toSnapshot,
} from '../../src/bms/pylon-rs485/pylontech.js';
import {
  describeBmsFamily,
  describeRefusalByOtherFamilies,
  describeRefusalOfForeignFrames,
  expectFrameError,
} from './contract.js';
import { dalyFamily } from './daly-family.js';
import { jbdFamily, jbdGoldenFrames } from './jbd-family.js';
import {
  ascii,
  pylonCaptures,
  pylonFrame,
  pylontechFamily,
  pylontechGoldenFrames,
  seplosFamily,
  seplosGoldenFrames,
} from './pylon-rs485-family.js';

const text = (bytes: Uint8Array): string => String.fromCharCode(...bytes);
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));
const infoOf = (raw: Uint8Array): Uint8Array => requireReplyInfo(decodeFrame(raw), decodeFrame(raw).address);

// Real replies (python-pylontech; line numbers in test/fixtures/seplos-pylon-rs485/python-pylontech-frames.txt).
const US2000_ALL = pylonFrame(pylonCaptures.pylontech, 4);
const US3000_ALL = pylonFrame(pylonCaptures.pylontech, 6);
const MIXED_ALL = pylonFrame(pylonCaptures.pylontech, 8);
const UP2500 = pylonFrame(pylonCaptures.pylontech, 10);
const UP2500_MGMT = pylonFrame(pylonCaptures.pylontech, 12);
const SEPLOS_TELEMETRY = pylonFrame(pylonCaptures.seplos, 7);
/** The V3.3 spec's example request (0x42 to pack 2). */
const PYLON_REQUEST = (
  pylonCaptures.requests.find((l) => l.label.startsWith('pylontech')) ?? { bytes: new Uint8Array(0) }
).bytes;

describeBmsFamily(pylontechFamily);
describeRefusalByOtherFamilies(pylontechFamily, [jbdFamily, dalyFamily, pylontechFamily, seplosFamily]);
describeRefusalOfForeignFrames(pylontechFamily, jbdGoldenFrames.slice(0, 5));

describe('Pylontech fixtures', () => {
  test('the python-pylontech file holds five real replies and no requests', () => {
    expect(pylontechGoldenFrames).toHaveLength(5);
    expect(pylonCaptures.pylontech.every((l) => l.direction === 'rx')).toBe(true);
    expect(new Set(pylontechGoldenFrames.map((g) => text(g.bytes))).size).toBe(5);
  });

  test('every real frame ends in \\r and carries the header the capture comment names (VER 20, ADR 02, CID1 46, RTN 00)', () => {
    for (const g of pylontechGoldenFrames) {
      expect(g.bytes.at(-1)).toBe(0x0d);
      expect(decodeFrame(g.bytes)).toMatchObject({ version: 0x20, address: 2, cid1: 0x46, cid2: 0 });
    }
  });
});

describe('Pylon RS485 framing (shared by Pylontech and Seplos)', () => {
  test('LCHKSUM follows the worked examples: LENID 2 → E002, LENID 322 → 9142, LENID 0 → 0000', () => {
    expect(lengthField(2).toString(16).toUpperCase()).toBe('E002');
    expect(lengthField(322).toString(16).toUpperCase()).toBe('9142');
    expect(lengthField(0)).toBe(0);
    expect(lengthChecksum(0x05e)).toBe(0xd);
  });

  test('CHKSUM follows the worked example: Σ "20024642E00202" = 0x02CD → FD33', () => {
    const body = ascii('20024642E00202');
    expect(frameChecksum(body, 0, body.length)).toBe(0xfd33);
  });

  test('the real UP2500 0x92 reply decodes to its header fields and 10 INFO bytes', () => {
    const f = decodeFrame(UP2500_MGMT);
    expect(f).toMatchObject({ version: 0x20, address: 2, cid1: 0x46, cid2: 0 });
    expect(Array.from(f.info)).toEqual([0x02, 0x6e, 0xf0, 0x5a, 0xa0, 0x02, 0x2b, 0xfd, 0xd5, 0xc0]);
  });

  test('encodeFrame rebuilds every real reply char for char from its decoded parts', () => {
    for (const g of [...pylontechGoldenFrames, ...seplosGoldenFrames]) {
      expect(text(encodeFrame(decodeFrame(g.bytes))), g.name).toBe(text(g.bytes));
    }
  });

  test('lower-case hex digits are accepted (the checksum covers the chars as sent)', () => {
    const lower = encodeFrame(decodeFrame(UP2500_MGMT));
    const body = text(lower).slice(1, -5).toLowerCase();
    const chk = frameChecksum(ascii(body), 0, body.length).toString(16).padStart(4, '0');
    expect(decodeFrame(ascii(`~${body}${chk}\r`)).info).toEqual(decodeFrame(UP2500_MGMT).info);
  });

  test('a valid frame with an INFO char that is not hex is refused with invalid-value', () => {
    const body = '20024600E00200'.replace('E00200', 'E0020G');
    const chk = frameChecksum(ascii(body), 0, body.length).toString(16).toUpperCase();
    expectFrameError(() => decodeFrame(ascii(`~${body}${chk}\r`)), 'invalid-value');
  });

  test('requireReplyInfo refuses another pack, an echoed request and a non-zero return code', () => {
    expectFrameError(() => requireReplyInfo(decodeFrame(UP2500), 3), 'unexpected-reply');
    const echo = PYLON_REQUEST;
    expectFrameError(() => requireReplyInfo(decodeFrame(echo), 2), 'unexpected-reply');
    const refused = encodeReply(2, new Uint8Array(0), 0x90);
    expectFrameError(() => requireReplyInfo(decodeFrame(refused), 2), 'bms-error');
    expect(isReturnCode(0x42)).toBe(false);
    expect(isReturnCode(0x00)).toBe(true);
  });

  test('tryDecodeFrame returns undefined instead of throwing', () => {
    expect(tryDecodeFrame(UP2500.subarray(0, 20))).toBeUndefined();
    expect(tryDecodeFrame(UP2500)?.address).toBe(2);
  });
});

describe('Pylon RS485 framer', () => {
  const all = concat(...pylontechGoldenFrames.map((g) => g.bytes), ...seplosGoldenFrames.map((g) => g.bytes));
  const expected = [...pylontechGoldenFrames, ...seplosGoldenFrames].map((g) => text(g.bytes));

  test('the UP2500 analog reply split at every char boundary comes out whole', () => {
    for (let cut = 0; cut <= UP2500.length; cut++) {
      const framer = new PylonFramer();
      const got = [...framer.push(UP2500.subarray(0, cut)), ...framer.push(UP2500.subarray(cut))];
      expect(got.map(text), `cut at ${cut}`).toEqual([text(UP2500)]);
      expect(framer.pending).toBe(0);
    }
  });

  test('all seven real replies fed one char at a time come out in order', () => {
    const framer = new PylonFramer();
    const got: string[] = [];
    for (const b of all) got.push(...framer.push(Uint8Array.of(b)).map(text));
    expect(got).toEqual(expected);
    expect(framer.discarded).toBe(0);
  });

  test('two frames in one chunk, with line noise, a \\n and a stray "~" around them, come out as two frames', () => {
    const chunk = concat(ascii('\n\0xyz~20'), UP2500_MGMT, ascii('\r\n~~'), UP2500, ascii('garbage'));
    const { frames, rest, discarded } = extractFrames(chunk);
    expect(frames.map(text)).toEqual([text(UP2500_MGMT), text(UP2500)]);
    expect(rest.length).toBe(0);
    expect(discarded).toBe(chunk.length - UP2500_MGMT.length - UP2500.length);
  });

  test('a frame that fails its checksum is dropped whole and the next frame is still found', () => {
    const broken = ascii(text(UP2500_MGMT).replace('C0F915', 'C1F915'));
    const { frames } = extractFrames(concat(broken, UP2500));
    expect(frames.map(text)).toEqual([text(UP2500)]);
  });

  test('an unterminated candidate is given up once it is longer than its LENGTH allows', () => {
    const noEoi = UP2500.subarray(0, UP2500.length - 1);
    const framer = new PylonFramer();
    expect(framer.push(noEoi)).toEqual([]);
    expect(framer.pending).toBe(noEoi.length);
    // One more hex digit instead of '\r': the frame can no longer be complete.
    expect(framer.push(ascii('0'))).toEqual([]);
    expect(framer.pending).toBe(0);
    expect(framer.push(UP2500_MGMT).map(text)).toEqual([text(UP2500_MGMT)]);
  });

  test('a candidate whose LENGTH fails its LCHKSUM is dropped before the rest arrives', () => {
    const framer = new PylonFramer();
    framer.push(ascii('~20024600A014'));
    expect(framer.pending).toBe(0);
  });

  test('whatever arrives, the framer never holds more than one maximal frame (seeded)', () => {
    const hexish = fc
      .array(fc.constantFrom(...'~0123456789ABCDEF\r'), { maxLength: 6000 })
      .map((cs) => ascii(cs.join('')));
    fc.assert(
      fc.property(hexish, (bytes) => {
        const framer = new PylonFramer();
        framer.push(bytes);
        expect(framer.pending).toBeLessThan(PYLON_MAX_FRAME);
      }),
      { seed: 0x9710, numRuns: 100 },
    );
  });

  test('random chunking of all seven real replies yields them in order (seeded)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 30 }), (sizes) => {
        const framer = new PylonFramer();
        const got: string[] = [];
        let at = 0;
        for (let k = 0; at < all.length; k++) {
          const n = sizes[k % sizes.length] as number;
          got.push(...framer.push(all.subarray(at, at + n)).map(text));
          at += n;
        }
        expect(got).toEqual(expected);
      }),
      { seed: 0x9711, numRuns: 200 },
    );
  });
});

/** The python-pylontech test expectations for module 1 of each capture, plus the values protocols.md §8.5 lists. */
describe('Pylontech golden frames decode to the values the captures document', () => {
  test('3× US2000 (all packs): three 15-cell modules; module 1 is −2.6 A, 49.545 V, 33.5 of 50 Ah, 31 cycles', () => {
    const a = decodeAnalogValues(infoOf(US2000_ALL), 'all');
    expect(a.dataFlag).toBe(0x11);
    expect(a.address).toBeUndefined();
    expect(a.consumed).toBe(infoOf(US2000_ALL).length);
    expect(a.modules).toHaveLength(3);
    expect(a.modules[0]).toStrictEqual({
      cellVoltages: [
        3.303, 3.304, 3.302, 3.303, 3.304, 3.304, 3.304, 3.302, 3.301, 3.302, 3.304, 3.303, 3.306, 3.301, 3.302,
      ],
      temperatures: [23, 22, 22, 22, 22],
      current: -2.6,
      voltage: 49.545,
      capacityRemaining: 33.5,
      capacityTotal: 50,
      cycles: 31,
    });
    expect(a.modules.map((m) => [m.current, m.voltage, m.cycles])).toEqual([
      [-2.6, 49.545, 31],
      [-2.5, 49.52, 31],
      [-2.7, 49.504, 31],
    ]);
    expect(a.modules[1]?.cellVoltages).toEqual([
      3.298, 3.302, 3.302, 3.297, 3.301, 3.303, 3.302, 3.299, 3.298, 3.301, 3.299, 3.305, 3.303, 3.305, 3.305,
    ]);
    expect(a.modules[2]?.temperatures).toEqual([23, 21, 21, 21, 21]);
  });

  test('4× US3000 (all packs, user-defined 4): remaining and total come from the u24 fields', () => {
    const a = decodeAnalogValues(infoOf(US3000_ALL), 'all');
    expect(a.modules.map((m) => [m.current, m.voltage, m.capacityRemaining, m.capacityTotal, m.cycles])).toEqual([
      [0, 49.857, 61.42, 74, 47],
      [-6.8, 49.586, 62.16, 74, 40],
      [-7.3, 49.592, 59.2, 74, 113],
      [-6.9, 49.593, 60.68, 74, 107],
    ]);
    expect(a.modules[0]?.cellVoltages).toEqual([
      3.325, 3.324, 3.324, 3.323, 3.324, 3.323, 3.325, 3.324, 3.324, 3.323, 3.322, 3.325, 3.323, 3.326, 3.322,
    ]);
    expect(a.modules[3]?.temperatures).toEqual([30, 28, 28, 28, 27]);
  });

  test('US3000 + US2000 (all packs): a 74 Ah and a 50 Ah module, 564 and 658 cycles', () => {
    const a = decodeAnalogValues(infoOf(MIXED_ALL), 'all');
    expect(a.modules.map((m) => [m.current, m.voltage, m.capacityRemaining, m.capacityTotal, m.cycles])).toEqual([
      [-6.1, 49.149, 32.56, 74, 564],
      [-4.7, 49.125, 24.5, 50, 658],
    ]);
    expect(a.modules[0]?.temperatures).toEqual([31, 29, 29, 30, 29]);
    expect(a.modules[1]?.temperatures).toEqual([32, 29, 29, 29, 28]);
  });

  test('UP2500 (single pack 2): 8 cells, −0.6 A, 26.638 V, 95.46 of 111 Ah, 0 cycles', () => {
    const a = decodeAnalogValues(infoOf(UP2500), 'single');
    expect(a.dataFlag).toBe(0x10);
    expect(a.address).toBe(2);
    expect(a.modules).toStrictEqual([
      {
        cellVoltages: [3.33, 3.33, 3.33, 3.331, 3.328, 3.329, 3.329, 3.331],
        temperatures: [21, 19, 19, 19, 20],
        current: -0.6,
        voltage: 26.638,
        capacityRemaining: 95.46,
        capacityTotal: 111,
        cycles: 0,
      },
    ]);
  });

  test('UP2500 0x92: charge 28.4 V / 55.5 A, discharge 23.2 V / −55.5 A, charge and discharge enabled', () => {
    expect(decodeChargeManagement(infoOf(UP2500_MGMT))).toStrictEqual({
      address: 2,
      chargeVoltageLimit: 28.4,
      dischargeVoltageLimit: 23.2,
      chargeCurrentLimit: 55.5,
      dischargeCurrentLimit: -55.5,
      chargeEnable: true,
      dischargeEnable: true,
      chargeImmediately1: false,
      chargeImmediately2: false,
      fullChargeRequest: false,
    });
  });

  test('the UP2500 analog and management replies become one snapshot with SOC 86 % and the BMS limits', () => {
    const analog = decodeAnalogValues(infoOf(UP2500)).modules[0] as PylontechModule;
    const snapshot = toSnapshot({ analog, management: decodeChargeManagement(infoOf(UP2500_MGMT)) }, 42);
    expect(snapshot).toStrictEqual({
      timestampMs: 42,
      voltage: 26.638,
      current: -0.6,
      power: -15.98,
      soc: 86,
      capacityRemaining: 95.46,
      capacityInstalled: 111,
      cycles: 0,
      cellCount: 8,
      cellVoltages: [3.33, 3.33, 3.33, 3.331, 3.328, 3.329, 3.329, 3.331],
      temperatures: [
        { name: 'BMS', celsius: 21 },
        { name: 'T1', celsius: 19 },
        { name: 'T2', celsius: 19 },
        { name: 'T3', celsius: 19 },
        { name: 'T4', celsius: 20 },
      ],
      protection: {},
      identity: { manufacturer: 'Pylontech' },
      bmsLimits: { chargeVoltage: 28.4, dischargeVoltage: 23.2, chargeCurrent: 55.5, dischargeCurrent: 55.5 },
    });
  });

  test('the US2000 module 1 snapshot has SOC 67 % (33.5 of 50 Ah), as python-pylontech computes it', () => {
    const m = decodeAnalogValues(infoOf(US2000_ALL), 'all').modules[0] as PylontechModule;
    expect(toSnapshot({ analog: m }, 0).soc).toBe(67);
  });

  test('identifyReply recognises each real reply by its layout alone', () => {
    expect(pylontechGoldenFrames.map((g) => identifyReply(infoOf(g.bytes))?.kind)).toEqual([
      'analog',
      'analog',
      'analog',
      'analog',
      'management',
    ]);
    expect(identifyReply(infoOf(SEPLOS_TELEMETRY))).toBeUndefined();
  });
});

describe('Pylontech decoding rules', () => {
  test('a user-defined item count other than 2 or 4 is refused with invalid-value (a Seplos reply has 10)', () => {
    expectFrameError(() => decodeAnalogValues(infoOf(SEPLOS_TELEMETRY)), 'invalid-value');
  });

  test('an all-packs reply read as single-pack leaves bytes over, which probe uses to tell the layouts apart', () => {
    const info = infoOf(US2000_ALL);
    expect(decodeAnalogValues(info, 'single').consumed).toBeLessThan(info.length);
    const single = decodeAnalogValues(infoOf(UP2500), 'single');
    expect(single.consumed).toBe(infoOf(UP2500).length);
  });

  test('probe refuses a request, an error reply and a reply of another family', () => {
    expect(probe(PYLON_REQUEST)).toBe(false);
    expect(probe(encodeReply(2, new Uint8Array(0), 0x04))).toBe(false);
    expect(probe(SEPLOS_TELEMETRY)).toBe(false);
    expect(probe(UP2500)).toBe(true);
  });

  test('requests carry the pack address as INFO, except 0x51 which carries nothing', () => {
    expect(text(encodeRequest({ address: 2, command: 0x42, info: requestInfo(0x42, 2) }))).toBe(
      '~20024642E00202FD33\r',
    );
    expect(text(encodeRequest({ address: 3, command: 0x92, info: requestInfo(0x92, 3) }))).toMatch(/^~20034692E00203/);
    expect(requestInfo(PylonCommand.manufacturerInfo, 2)).toHaveLength(0);
  });

  test.each<[string, number, string]>([
    ['module over-voltage', 0x01, 'packOverVoltage'],
    ['cell under-voltage', 0x02, 'cellUnderVoltage'],
    ['charge over-current', 0x04, 'chargeOverCurrent'],
    ['discharge over-current', 0x10, 'dischargeOverCurrent'],
    ['discharge over-temperature', 0x20, 'dischargeOverTemperature'],
    ['charge over-temperature', 0x40, 'chargeOverTemperature'],
    ['module under-voltage', 0x80, 'packUnderVoltage'],
  ])('0x44 status1 %s (0x%s) sets %s', (_, bit, flag) => {
    const info = encodeAlarmInfo({
      address: 2,
      cellAlarms: new Array(15).fill('normal'),
      temperatureAlarms: new Array(5).fill('normal'),
      chargeCurrentAlarm: 'normal',
      moduleVoltageAlarm: 'normal',
      dischargeCurrentAlarm: 'normal',
      status: [bit, 0x06, 0, 0, 0],
    });
    const flags = protectionFlags(decodeAlarmInfo(info));
    expect(
      Object.entries(flags)
        .filter(([, on]) => on)
        .map(([k]) => k),
    ).toEqual([flag]);
  });
});

describe('Pylontech layouts without a public capture (0x44, 0x47): decoder and device-side encoder agree', () => {
  // Not golden: no real 0x44 or 0x47 reply is public. These rows check that the simulator's bytes and the decoder
  // follow the same reading of the V3.3 spec, with values chosen to exercise every field.
  test('a 0x44 reply with a high cell, a low temperature, FETs on and cell 3 failed decodes field by field', () => {
    const info = encodeAlarmInfo({
      address: 3,
      cellAlarms: ['normal', 'high', 'normal'],
      temperatureAlarms: ['low', 'other'],
      chargeCurrentAlarm: 'high',
      moduleVoltageAlarm: 'normal',
      dischargeCurrentAlarm: 'low',
      status: [0x00, 0x0e, 0x88, 0x04, 0x00],
    });
    const a = decodeAlarmInfo(info);
    expect(a).toMatchObject({
      address: 3,
      cellAlarms: ['normal', 'high', 'normal'],
      temperatureAlarms: ['low', 'other'],
      chargeCurrentAlarm: 'high',
      dischargeCurrentAlarm: 'low',
      chargeFet: true,
      dischargeFet: true,
      fullyCharged: true,
      consumed: info.length,
    });
    expect(protectionFlags(a).internalFailure).toBe(true);
  });

  test('a 0x47 reply round-trips every limit', () => {
    const p: PylontechSystemParameters = {
      dataFlag: 0x11,
      cellHighVoltage: 3.7,
      cellLowVoltage: 3.05,
      cellUnderVoltage: 2.9,
      chargeHighTemperature: 60,
      chargeLowTemperature: 0,
      chargeCurrentLimit: 102,
      moduleHighVoltage: 54,
      moduleLowVoltage: 46,
      moduleUnderVoltage: 44.5,
      dischargeHighTemperature: 60,
      dischargeLowTemperature: -10,
      dischargeCurrentLimit: -102,
    };
    expect(decodeSystemParameters(encodeSystemParameters(p))).toStrictEqual(p);
  });

  test('the analog and management encoders rebuild the real UP2500 and US3000 INFO byte for byte', () => {
    // The simulator's encoders checked against real bytes (the decoders were checked against the capture above).
    const up = decodeAnalogValues(infoOf(UP2500));
    expect(Array.from(encodeAnalogValues(up.modules, 2, up.dataFlag))).toEqual(Array.from(infoOf(UP2500)));
    const us3 = decodeAnalogValues(infoOf(US3000_ALL), 'all');
    expect(Array.from(encodeAnalogValues(us3.modules, undefined, us3.dataFlag))).toEqual(
      Array.from(infoOf(US3000_ALL)),
    );
    const us2 = decodeAnalogValues(infoOf(US2000_ALL), 'all');
    expect(Array.from(encodeAnalogValues(us2.modules, undefined, us2.dataFlag))).toEqual(
      Array.from(infoOf(US2000_ALL)),
    );
    const mgmt = decodeChargeManagement(infoOf(UP2500_MGMT));
    expect(Array.from(encodeChargeManagement(mgmt))).toEqual(Array.from(infoOf(UP2500_MGMT)));
  });

  test('0x51 manufacturer info round-trips name, version and manufacturer', () => {
    const v = { deviceName: 'US2000C', softwareVersion: '1.07', manufacturer: 'PYLON' };
    expect(decodeManufacturerInfo(encodeManufacturerInfo(v))).toStrictEqual(v);
  });
});
