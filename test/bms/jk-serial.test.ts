import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  decodeCurrent,
  decodeFrame,
  decodeReadAllReply,
  decodeRequest,
  decodeStatusData,
  decodeTemperature,
  encodeCurrent,
  encodeFrame,
  encodeReadAllReply,
  encodeReadAllRequest,
  encodeTemperature,
  extractFrames,
  JK_SERIAL_MAX_FRAME,
  JkSerialFramer,
  type JkSerialReplyValues,
  probe,
  splitVersion,
  toSnapshot,
} from '../../src/bms/jk-serial/protocol.js';
import { byteSum } from '../../src/bytes/checksum.js';
import { isFrameError } from '../../src/domain/errors.js';
import { type ArrowCapture, hexBytes, parseArrowCapture, readFixture } from '../support/fixtures.js';
import {
  type BadFrame,
  type BmsFamilyUnderTest,
  describeBmsFamily,
  describeRefusalByOtherFamilies,
  describeRefusalOfForeignFrames,
  expectFrameError,
  type GoldenFrame,
  pushGarbage,
} from './contract.js';
import { jbdFamily } from './jbd-family.js';

// ---- fixtures (provenance: test/fixtures/jk/SOURCE.md) ---------------------------------------------------

const FILE_13S = 'JK-B2A24S20P-10.07-UART-TTL.txt';
const FILE_16S = 'JK-BD6A17S6P-7.1.0H-UART-TTL.txt';

const capture13 = parseArrowCapture(readFixture(`jk/${FILE_13S}`));
const raw16 = readFixture(`jk/${FILE_16S}`);
/** The upstream file lost the register id A0 to a typo ("0:"); SOURCE.md explains the one fix we apply. */
const TYPO = ':9F:00:46:0:00:64:';
const capture16 = parseArrowCapture(raw16.replace(TYPO, ':9F:00:46:A0:00:64:'));

function only(capture: ArrowCapture, direction: 'tx' | 'rx'): Uint8Array {
  const frames = capture.frames.filter((f) => f.direction === direction);
  if (frames.length !== 1) throw new Error(`expected one ${direction} frame, found ${frames.length}`);
  return (frames[0] as { bytes: Uint8Array }).bytes;
}

const REPLY_13S = only(capture13, 'rx');
const REPLY_16S = only(capture16, 'rx');
const REQUEST_13S = only(capture13, 'tx');
const REQUEST_16S = only(capture16, 'tx');

const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));

function edited(bytes: Uint8Array, edits: Record<number, number>): Uint8Array {
  const out = bytes.slice();
  for (const [at, value] of Object.entries(edits)) out[Number(at)] = value;
  return out;
}

/** A hand-edited frame with its checksum put right again (u16 sum of everything up to the end marker). */
function resummed(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const sum = byteSum(out, 0, out.length - 4) & 0xffff;
  out[out.length - 2] = sum >> 8;
  out[out.length - 1] = sum & 0xff;
  return out;
}

/** Index of a register id in the 13S reply's TLV stream (found by walking the real frame's known layout). */
const AT_85_IN_13S = REPLY_13S.indexOf(0x85, 11 + 2 + 13 * 3);

const goldenFrames: readonly GoldenFrame[] = [
  { name: `${FILE_13S} reply (13S Li-ion, 282 bytes)`, bytes: REPLY_13S },
  { name: `${FILE_16S} reply with the documented A0 fix (16S LiFePO4, 291 bytes)`, bytes: REPLY_16S },
];

const badFrames: readonly BadFrame[] = [
  { name: 'three bytes of a start', bytes: hexBytes('4E 57 01'), code: 'truncated' },
  { name: 'the 13S reply cut before its checksum', bytes: REPLY_13S.subarray(0, 278), code: 'truncated' },
  {
    name: 'the 13S reply with its low checksum byte off by one',
    bytes: edited(REPLY_13S, { 281: 0x4f }),
    code: 'bad-checksum',
  },
  {
    name: 'the 13S reply with one cell voltage bit flipped',
    bytes: edited(REPLY_13S, { 14: 0xfd }),
    code: 'bad-checksum',
  },
  { name: 'the 13S reply starting 4E 58', bytes: edited(REPLY_13S, { 1: 0x58 }), code: 'bad-header' },
  { name: 'the 13S reply starting DD (a JBD start byte)', bytes: edited(REPLY_13S, { 0: 0xdd }), code: 'bad-header' },
  {
    name: 'the 13S reply with end marker 69 instead of 68',
    bytes: edited(REPLY_13S, { 277: 0x69 }),
    code: 'bad-footer',
  },
  { name: 'the 13S reply followed by one more byte', bytes: concat(REPLY_13S, Uint8Array.of(0)), code: 'bad-length' },
  { name: 'a length field announcing 7 bytes', bytes: hexBytes('4E 57 00 05 00 00 00'), code: 'bad-length' },
  { name: 'a length field announcing 4 097 bytes', bytes: edited(REPLY_13S, { 2: 0x0f, 3: 0xff }), code: 'bad-length' },
  {
    name: 'the captured read-all request (what an RS485 echo looks like)',
    bytes: REQUEST_13S,
    code: 'unexpected-reply',
  },
  {
    name: 'the 13S reply with command 03 instead of 06 (checksum put right)',
    bytes: resummed(edited(REPLY_13S, { 8: 0x03 })),
    code: 'unexpected-reply',
  },
  {
    name: 'the 13S reply with register id 85 changed to the unknown 88 (checksum put right)',
    bytes: resummed(edited(REPLY_13S, { [AT_85_IN_13S]: 0x88 })),
    code: 'invalid-value',
  },
  {
    name: 'the 13S reply with a cell block length of 38, not a multiple of 3 (checksum put right)',
    bytes: resummed(edited(REPLY_13S, { 12: 0x26 })),
    code: 'invalid-value',
  },
  {
    // Built with our frame encoder on purpose: the defect is in the data, which no real capture has.
    name: 'a reply whose data ends inside the SoC value it announces',
    bytes: encodeFrame({ command: 6, source: 0, frameType: 1, data: Uint8Array.of(0x83, 0x14, 0xc1, 0x85) }),
    code: 'truncated',
  },
];

/** The serial family under the shared contract. */
const jkSerialFamily: BmsFamilyUnderTest = {
  id: 'jk-serial',
  goldenFrames,
  startBytes: [0x4e],
  extract: (buffer) => extractFrames(buffer),
  decode: decodeReadAllReply,
  probe,
  badFrames,
  requests: [
    { name: `read all (${FILE_13S})`, encoded: encodeReadAllRequest(), captured: REQUEST_13S },
    { name: `read all (${FILE_16S})`, encoded: encodeReadAllRequest(), captured: REQUEST_16S },
  ],
};

/** Real JK02 records (another JK protocol): the serial probe must not take them. */
function jk02Records(): GoldenFrame[] {
  const file = 'JK-B2A24S20P-10.07-BLE-JK02.txt';
  return readFixture(`jk/${file}`)
    .split(/\r?\n/)
    .map((line, i) => ({ line: i + 1, text: line.trim() }))
    .filter((l) => l.text !== '')
    .map((l) => ({ name: `${file} line ${l.line}`, bytes: hexBytes(l.text) }));
}

describeBmsFamily(jkSerialFamily);
describeRefusalByOtherFamilies(jkSerialFamily, [jkSerialFamily, jbdFamily]);
describeRefusalOfForeignFrames(jkSerialFamily, [...jbdFamily.goldenFrames, ...jk02Records()]);

// ---- golden values -------------------------------------------------------------------------------------

describe('JK serial fixtures', () => {
  test('each capture holds one read-all request and one reply', () => {
    expect(capture13.frames.map((f) => f.direction)).toEqual(['tx', 'rx']);
    expect(capture16.frames.map((f) => f.direction)).toEqual(['tx', 'rx']);
  });

  test('the 16S file needs exactly the one documented fix, and without it the reply cannot be read', () => {
    expect(raw16.split(TYPO)).toHaveLength(2);
    const unfixed = parseArrowCapture(raw16);
    expect(unfixed.frames.filter((f) => f.direction === 'rx')).toEqual([]);
    expect(unfixed.unreadable).toHaveLength(1);
  });

  test('the replies are 282 and 291 bytes long and their length fields say so', () => {
    expect(REPLY_13S.length).toBe(282);
    expect((REPLY_13S[2] as number) * 256 + (REPLY_13S[3] as number)).toBe(280);
    expect(REPLY_16S.length).toBe(291);
    expect((REPLY_16S[2] as number) * 256 + (REPLY_16S[3] as number)).toBe(289);
  });

  test('the replies end with checksums 0x544E and 0x4AB1', () => {
    expect(Array.from(REPLY_13S.subarray(-4))).toEqual([0x00, 0x00, 0x54, 0x4e]);
    expect(Array.from(REPLY_16S.subarray(-4))).toEqual([0x00, 0x00, 0x4a, 0xb1]);
  });
});

describe('JK serial golden frames decode to the values the captures hold', () => {
  test('the 13S reply carries the thirteen cell voltages protocols.md lists', () => {
    const s = decodeReadAllReply(REPLY_13S);
    expect(s.cellVoltages).toEqual([
      4.092, 4.047, 4.093, 4.092, 4.092, 4.09, 4.087, 4.094, 4.094, 4.092, 4.087, 4.087, 4.093,
    ]);
    expect(s.cellCount).toBe(13);
  });

  test('the 13S reply decodes to 53.13 V, 0 A, SoC 94 %, 22/19/19 °C and 5 Ah with no cycles', () => {
    const s = decodeReadAllReply(REPLY_13S);
    expect(s.voltage).toBe(53.13);
    expect(s.current).toBe(0);
    expect(Object.is(s.current, -0)).toBe(false);
    expect(s.soc).toBe(94);
    expect(s.mosTemperature).toBe(22);
    expect(s.temperatures).toEqual([19, 19]);
    expect(s.temperatureSensorCount).toBe(2);
    expect(s.cycles).toBe(0);
    expect(s.totalCycleCapacity).toBe(0);
    expect(s.capacity).toBe(5);
    expect(s.actualCapacity).toBe(0);
    expect(s.protocolVersion).toBe(1);
  });

  test('the 13S reply has no warnings, status 0x0004 (balancer on, both FETs off) and both switches off', () => {
    const s = decodeReadAllReply(REPLY_13S);
    expect(s.warnings).toBe(0);
    expect(s.status).toBe(0x0004);
    expect(s.chargeSwitch).toBe(false);
    expect(s.dischargeSwitch).toBe(false);
  });

  test('the 13S reply identifies itself as software 10.XW_S10.07 built 2204 with manufacturer id "Input UserdaJK-B2A24S15P"', () => {
    const s = decodeReadAllReply(REPLY_13S);
    expect(s.softwareVersion).toBe('10.XW_S10.07');
    expect(s.deviceId).toBe('Input Us');
    expect(s.productionDate).toBe('2204');
    expect(s.runtimeMinutes).toBe(0);
    expect(s.manufacturerId).toBe('Input UserdaJK-B2A24S15P');
  });

  test('the 13S reply keeps the protection settings raw, the signed low-temperature ones below zero', () => {
    const { settings } = decodeReadAllReply(REPLY_13S);
    expect(settings).toEqual({
      142: 5460,
      143: 3770,
      144: 4200,
      145: 4100,
      146: 5,
      147: 2900,
      148: 3200,
      149: 5,
      150: 300,
      151: 150,
      152: 300,
      153: 25,
      154: 30,
      155: 3300,
      156: 10,
      157: 1,
      158: 90,
      159: 70,
      160: 100,
      161: 100,
      162: 20,
      163: 70,
      164: 70,
      165: -20,
      166: -10,
      167: -20,
      168: -10,
      169: 13,
      173: 1070,
      174: 1,
      175: 1,
      176: 10,
      177: 20,
      179: 0,
      184: 0,
    });
  });

  test('the password register is read past and never kept', () => {
    const s = decodeReadAllReply(REPLY_13S);
    expect(JSON.stringify(s)).not.toContain('123456');
    expect(s.settings[0xb2]).toBeUndefined();
  });

  test('the 16S reply carries sixteen LiFePO4 cells from 3.185 to 3.203 V', () => {
    const s = decodeReadAllReply(REPLY_16S);
    expect(s.cellVoltages).toEqual([
      3.201, 3.201, 3.202, 3.201, 3.203, 3.201, 3.185, 3.201, 3.196, 3.203, 3.202, 3.203, 3.203, 3.203, 3.203, 3.202,
    ]);
    expect(s.cellCount).toBe(16);
  });

  test('the 16S reply decodes to 51.21 V and −0.69 A: raw 0x0045 with bit 15 clear is a discharge', () => {
    const s = decodeReadAllReply(REPLY_16S);
    expect(s.voltage).toBe(51.21);
    expect(s.protocolVersion).toBe(1);
    expect(s.current).toBe(-0.69);
  });

  test('the 16S reply decodes to SoC 15 %, 17 cycles, 1280 Ah throughput, 81 Ah and 18/16/16 °C', () => {
    const s = decodeReadAllReply(REPLY_16S);
    expect(s.soc).toBe(15);
    expect(s.cycles).toBe(17);
    expect(s.totalCycleCapacity).toBe(1280);
    expect(s.capacity).toBe(81);
    expect(s.mosTemperature).toBe(18);
    expect(s.temperatures).toEqual([16, 16]);
  });

  test('the 16S reply has both FETs on (status 0x0003), both switches on and no warnings', () => {
    const s = decodeReadAllReply(REPLY_16S);
    expect(s.status).toBe(0x0003);
    expect(s.warnings).toBe(0);
    expect(s.chargeSwitch).toBe(true);
    expect(s.dischargeSwitch).toBe(true);
  });

  test('the 16S reply identifies itself as H7.X / 7.1.0H, built 2106, manufacturer id BT3072020120000200521001', () => {
    const s = decodeReadAllReply(REPLY_16S);
    expect(s.softwareVersion).toBe('H7.X__S7.1.0H');
    expect(splitVersion(s.softwareVersion as string)).toEqual({ hardware: 'H7.X', software: '7.1.0H' });
    expect(s.productionDate).toBe('2106');
    expect(s.runtimeMinutes).toBe(91136);
    expect(s.manufacturerId).toBe('BT3072020120000200521001');
  });

  test('the 16S reply has the LiFePO4 settings, among them the fixed A0 = 100 and the signed A5 = 0 and A6 = 5', () => {
    const { settings } = decodeReadAllReply(REPLY_16S);
    expect(settings[0x90]).toBe(3650);
    expect(settings[0x93]).toBe(2650);
    expect(settings[0xa0]).toBe(100);
    expect(settings[0xa5]).toBe(0);
    expect(settings[0xa6]).toBe(5);
    expect(settings[0xa7]).toBe(-20);
    expect(settings[0xad]).toBe(725);
  });

  test('decodeFrame reads the header fields of a reply: terminal 0, command 06, source 0, type 1', () => {
    const f = decodeFrame(REPLY_13S);
    expect(f).toMatchObject({ terminal: 0, command: 0x06, source: 0, frameType: 1, recordNumber: 0 });
    expect(f.data[0]).toBe(0x79);
    expect(f.data.length).toBe(282 - 20);
  });
});

describe('JK serial field rules', () => {
  test.each([
    [0, 0],
    [22, 22],
    [100, 100],
    [101, -1],
    [105, -5],
    [140, -40],
  ])('temperature byte %i decodes to %i °C (values above 100 are below zero)', (raw, celsius) => {
    expect(decodeTemperature(raw)).toBe(celsius);
  });

  test.each([
    // Spec examples from the vendor register list (protocols.md §2.1).
    ['protocol 1, 0x07D0 (discharging 20 A)', 0x07d0, 1, -20],
    ['protocol 1, 0x87D0 (charging 20 A)', 0x87d0, 1, 20],
    ['protocol 1, 0x80D0 (the ESPHome 14-cell frame)', 0x80d0, 1, 2.08],
    ['protocol 0, 11000 (discharging 10 A)', 11000, 0, -10],
    ['protocol 0, 9500 (charging 5 A)', 9500, 0, 5],
    ['protocol 0, 10000 (idle)', 10000, 0, 0],
  ])('current %s decodes to %d A', (_, raw, version, amps) => {
    expect(decodeCurrent(raw, version)).toBe(amps);
  });

  test('a reply without a C0 register is read with protocol 0 current, applied after the whole stream is walked', () => {
    const s = decodeStatusData(Uint8Array.of(0x84, 0x27, 0x74, 0x85, 0x32));
    expect(s.protocolVersion).toBeUndefined();
    expect(s.current).toBe(-1);
    const withVersion = decodeStatusData(Uint8Array.of(0x84, 0x80, 0x64, 0xc0, 0x01));
    expect(withVersion.current).toBe(1);
  });

  test('cells are put in the order of their index bytes, not the order they arrive in', () => {
    const s = decodeStatusData(Uint8Array.of(0x79, 0x06, 0x02, 0x0c, 0x80, 0x01, 0x0c, 0x81));
    expect(s.cellVoltages).toEqual([3.201, 3.2]);
  });

  test.each([
    ['10.XW_S10.07', { hardware: '10.XW', software: '10.07' }],
    ['H7.X__S7.1.0H', { hardware: 'H7.X', software: '7.1.0H' }],
    ['NW_1_0_0_200428', { software: 'NW_1_0_0_200428' }],
    ['_S11.2', { software: '11.2' }],
  ])('software version %s splits into %o', (text, parts) => {
    expect(splitVersion(text)).toEqual(parts);
  });
});

describe('JK serial request encoder', () => {
  test('the read-all request is the 21 captured bytes 4E 57 00 13 … 68 00 00 01 29', () => {
    expect(Array.from(encodeReadAllRequest())).toEqual(
      Array.from(hexBytes('4E570013000000000603000000000000680000 0129')),
    );
  });

  test('decodeRequest reads the captured request as command 06 from source 3 (PC) for register 00', () => {
    const r = decodeRequest(REQUEST_13S);
    expect(r).toMatchObject({ command: 6, source: 3, frameType: 0 });
    expect(Array.from(r.data)).toEqual([0x00]);
  });

  test('decodeRequest refuses a reply frame', () => {
    expectFrameError(() => decodeRequest(REPLY_13S), 'unexpected-reply');
  });

  test('encodeFrame refuses data that would make the frame longer than the maximum', () => {
    expect(() =>
      encodeFrame({ command: 6, source: 0, frameType: 1, data: new Uint8Array(JK_SERIAL_MAX_FRAME) }),
    ).toThrow(RangeError);
  });
});

// ---- framing ---------------------------------------------------------------------------------------------

describe('JkSerialFramer and extractFrames', () => {
  test.each(goldenFrames.map((g) => [g.name, g.bytes] as const))(
    '%s split at every byte boundary comes out once, whole',
    (_, frame) => {
      for (let cut = 1; cut < frame.length; cut++) {
        const framer = new JkSerialFramer();
        const out = [...framer.push(frame.subarray(0, cut)), ...framer.push(frame.subarray(cut))];
        expect(out).toEqual([frame]);
        expect(framer.pending).toBe(0);
      }
    },
  );

  test('a reply fed one byte at a time comes out when its last byte arrives', () => {
    const framer = new JkSerialFramer();
    for (let i = 0; i < REPLY_16S.length - 1; i++) expect(framer.push(REPLY_16S.subarray(i, i + 1))).toEqual([]);
    expect(framer.push(REPLY_16S.subarray(-1))).toEqual([REPLY_16S]);
  });

  test('two replies in one chunk both come out, in order', () => {
    expect(new JkSerialFramer().push(concat(REPLY_13S, REPLY_16S))).toEqual([REPLY_13S, REPLY_16S]);
  });

  test('an RS485 echo of the request followed by the reply gives both frames, request first', () => {
    expect(extractFrames(concat(REQUEST_13S, REPLY_13S)).frames).toEqual([REQUEST_13S, REPLY_13S]);
  });

  test('leading garbage is discarded and counted', () => {
    const framer = new JkSerialFramer();
    expect(framer.push(concat(hexBytes('00 FF 4E 13 57 68'), REPLY_13S))).toEqual([REPLY_13S]);
    expect(framer.discarded).toBe(6);
  });

  test('a stray 4E 57 announcing 400 bytes does not hold back a complete reply behind it', () => {
    const framer = new JkSerialFramer();
    expect(framer.push(concat(hexBytes('4E 57 01 8E 00'), REPLY_16S))).toEqual([REPLY_16S]);
    expect(framer.pending).toBe(0);
  });

  test('a stray 4E 57 followed by a reply arriving in pieces yields the reply once it is complete', () => {
    const framer = new JkSerialFramer();
    expect(framer.push(hexBytes('4E 57 01 8E'))).toEqual([]);
    expect(framer.push(REPLY_13S.subarray(0, 100))).toEqual([]);
    expect(framer.push(REPLY_13S.subarray(100))).toEqual([REPLY_13S]);
  });

  test('a reply with a broken checksum is skipped and the next reply is found', () => {
    const broken = edited(REPLY_13S, { 20: 0x00 });
    expect(extractFrames(concat(broken, REPLY_16S)).frames).toEqual([REPLY_16S]);
  });

  test('an incomplete reply is kept as the rest, and a lone 4E too', () => {
    expect(extractFrames(REPLY_13S.subarray(0, 50))).toEqual({
      frames: [],
      rest: REPLY_13S.subarray(0, 50),
      discarded: 0,
    });
    expect(extractFrames(hexBytes('01 4E'))).toEqual({ frames: [], rest: hexBytes('4E'), discarded: 1 });
  });

  test('a long stream of garbage keeps the pending buffer below one maximal frame, and a reply after it still comes out', () => {
    const framer = new JkSerialFramer();
    const maxPending = pushGarbage({
      seed: 0x1f2e3d4c,
      chunks: 2000,
      byte: (random) => {
        const r = random() % 16;
        return r === 0 ? 0x4e : r === 1 ? 0x57 : random() & 0xff;
      },
      push: (bytes) => framer.push(bytes),
      pending: () => framer.pending,
    });
    expect(maxPending).toBeLessThan(JK_SERIAL_MAX_FRAME);
    expect(framer.discarded).toBeGreaterThan(50_000);
    framer.reset();
    expect(framer.push(REPLY_13S)).toEqual([REPLY_13S]);
  });

  test('reset drops a half reply so it cannot swallow the next one', () => {
    const framer = new JkSerialFramer();
    framer.push(REPLY_13S.subarray(0, 40));
    expect(framer.pending).toBe(40);
    framer.reset();
    expect(framer.pending).toBe(0);
    expect(framer.push(REPLY_16S)).toEqual([REPLY_16S]);
  });
});

// ---- snapshot --------------------------------------------------------------------------------------------

describe('JK serial snapshot mapping', () => {
  test('the 16S reply maps to a snapshot in SI units with a negative (discharging) current and power', () => {
    expect(toSnapshot(decodeReadAllReply(REPLY_16S), 1_700_000_000_000)).toStrictEqual({
      timestampMs: 1_700_000_000_000,
      voltage: 51.21,
      current: -0.69,
      power: -35.33,
      soc: 15,
      capacityInstalled: 81,
      cycles: 17,
      cellVoltages: [
        3.201, 3.201, 3.202, 3.201, 3.203, 3.201, 3.185, 3.201, 3.196, 3.203, 3.202, 3.203, 3.203, 3.203, 3.203, 3.202,
      ],
      cellCount: 16,
      temperatures: [
        { name: 'T1', celsius: 16 },
        { name: 'T2', celsius: 16 },
      ],
      mosTemperature: 18,
      chargeFet: true,
      dischargeFet: true,
      protection: {
        packOverVoltage: false,
        packUnderVoltage: false,
        chargeOverTemperature: false,
        dischargeOverTemperature: false,
        chargeOverCurrent: false,
        dischargeOverCurrent: false,
        chargeUnderTemperature: false,
        dischargeUnderTemperature: false,
        cellOverVoltage: false,
        cellUnderVoltage: false,
      },
      identity: { manufacturer: 'JK', serial: 'BT3072020120000200521001', hardware: 'H7.X', firmware: '7.1.0H' },
    });
  });

  test('the 13S reply maps to both FETs off, 5 Ah installed and firmware 10.07 on hardware 10.XW', () => {
    const s = toSnapshot(decodeReadAllReply(REPLY_13S), 1);
    expect(s).toMatchObject({
      voltage: 53.13,
      current: 0,
      power: 0,
      soc: 94,
      capacityInstalled: 5,
      cellCount: 13,
      mosTemperature: 22,
      chargeFet: false,
      dischargeFet: false,
      identity: { manufacturer: 'JK', serial: 'Input UserdaJK-B2A24S15P', hardware: '10.XW', firmware: '10.07' },
    });
    expect(s.capacityRemaining).toBeUndefined();
    expect(s.soh).toBeUndefined();
    expect('balancing' in s).toBe(false);
  });

  test.each([
    [1 << 2, ['packOverVoltage']],
    [1 << 3, ['packUnderVoltage']],
    [1 << 4, ['chargeOverTemperature', 'dischargeOverTemperature']],
    [1 << 5, ['chargeOverCurrent']],
    [1 << 6, ['dischargeOverCurrent']],
    [1 << 9, ['chargeUnderTemperature', 'dischargeUnderTemperature']],
    [1 << 10, ['cellOverVoltage']],
    [1 << 11, ['cellUnderVoltage']],
    [(1 << 0) | (1 << 1) | (1 << 7) | (1 << 8) | (1 << 12) | (1 << 13), []],
  ])('warning word %i sets exactly the flags %o', (warnings, names) => {
    const s = toSnapshot({ cellVoltages: [], temperatures: [], settings: {}, warnings }, 0);
    const set = Object.entries(s.protection)
      .filter(([, v]) => v === true)
      .map(([k]) => k)
      .sort();
    expect(set).toEqual([...names].sort());
    expect(s.protection.shortCircuit).toBeUndefined();
  });

  test('a reply without a status register leaves the FET states unknown', () => {
    const s = toSnapshot({ cellVoltages: [3.3], temperatures: [], settings: {} }, 0);
    expect(s.chargeFet).toBeUndefined();
    expect(s.cellCount).toBe(1);
    expect(s.protection).toEqual({});
  });
});

// ---- device side and robustness ------------------------------------------------------------------------

const replyValues = fc.record({
  cellVoltages: fc
    .array(fc.integer({ min: 2000, max: 4500 }), { minLength: 1, maxLength: 32 })
    .map((a) => a.map((mv) => mv / 1000)),
  mosTemperature: fc.integer({ min: -40, max: 100 }),
  temperatures: fc.tuple(fc.integer({ min: -40, max: 100 }), fc.integer({ min: -40, max: 100 })),
  voltage: fc.integer({ min: 0, max: 65535 }).map((v) => v / 100),
  // Protocol 0 carries −555.35 … +100.00 A, protocol 1 ±327.67 A: stay inside both.
  current: fc.integer({ min: -32767, max: 10000 }).map((v) => v / 100),
  soc: fc.integer({ min: 0, max: 100 }),
  cycles: fc.integer({ min: 0, max: 65535 }),
  totalCycleCapacity: fc.integer({ min: 0, max: 1_000_000 }),
  warnings: fc.integer({ min: 0, max: 0x3fff }),
  status: fc.integer({ min: 0, max: 15 }),
  capacity: fc.integer({ min: 1, max: 2000 }),
  chargeSwitch: fc.boolean(),
  dischargeSwitch: fc.boolean(),
  deviceId: fc.stringMatching(/^[A-Za-z0-9]{0,8}$/),
  productionDate: fc.stringMatching(/^[0-9]{4}$/),
  runtimeMinutes: fc.integer({ min: 0, max: 0xffffffff }),
  softwareVersion: fc.constantFrom('11.XW_S11.48', 'H7.X__S7.1.0H'),
  manufacturerId: fc.stringMatching(/^[A-Z0-9]{1,24}$/),
  protocolVersion: fc.constantFrom(0, 1),
}) satisfies fc.Arbitrary<JkSerialReplyValues>;

describe('JK serial device side (simulator encoders)', () => {
  test('decode(encodeReadAllReply(values)) gives the values back for any values at wire resolution', () => {
    fc.assert(
      fc.property(replyValues, (v) => {
        const frame = encodeReadAllReply(v);
        expect(probe(frame)).toBe(true);
        const s = decodeReadAllReply(frame);
        expect(s.cellVoltages).toEqual(v.cellVoltages);
        expect(s.mosTemperature).toBe(v.mosTemperature);
        expect(s.temperatures).toEqual(v.temperatures);
        expect(s.voltage).toBe(v.voltage);
        expect(s.current).toBe(v.current === 0 ? 0 : v.current);
        expect(s).toMatchObject({
          soc: v.soc,
          cycles: v.cycles,
          totalCycleCapacity: v.totalCycleCapacity,
          cellCount: v.cellVoltages.length,
          warnings: v.warnings,
          status: v.status,
          capacity: v.capacity,
          chargeSwitch: v.chargeSwitch,
          dischargeSwitch: v.dischargeSwitch,
          deviceId: v.deviceId,
          productionDate: v.productionDate,
          runtimeMinutes: v.runtimeMinutes,
          softwareVersion: v.softwareVersion,
          manufacturerId: v.manufacturerId,
          protocolVersion: v.protocolVersion,
        });
      }),
      { seed: 0x4e57, numRuns: 200 },
    );
  });

  test('encodeTemperature and encodeCurrent invert their decoders over the whole documented range', () => {
    for (let t = -40; t <= 100; t++) expect(decodeTemperature(encodeTemperature(t))).toBe(t);
    for (let centi = -32767; centi <= 32767; centi += 97) {
      expect(decodeCurrent(encodeCurrent(centi / 100, 1), 1)).toBe(centi / 100);
    }
    // Protocol 0 is an offset of 10000 in an unsigned word: −555.35 A … +100.00 A.
    for (let centi = -55535; centi <= 10000; centi += 89) {
      expect(decodeCurrent(encodeCurrent(centi / 100, 0), 0)).toBe(centi / 100);
    }
    expect(decodeCurrent(encodeCurrent(150, 0), 0)).toBe(100);
  });

  test('an encoded reply has the field set of the real 13S reply, in the same order', () => {
    // The register order is compared through decodeFrame's data: same ids, same order.
    const realIds = walkIds(decodeFrame(REPLY_13S).data);
    const simIds = walkIds(
      decodeFrame(
        encodeReadAllReply({
          cellVoltages: [3.3, 3.3],
          mosTemperature: 20,
          temperatures: [20, 20],
          voltage: 6.6,
          current: 0,
          soc: 50,
          cycles: 0,
          totalCycleCapacity: 0,
          warnings: 0,
          status: 3,
          capacity: 100,
          chargeSwitch: true,
          dischargeSwitch: true,
          deviceId: 'SIM',
          productionDate: '2401',
          runtimeMinutes: 0,
          softwareVersion: '11.XW_S11.48',
          manufacturerId: 'SIM',
        }),
      ).data,
    );
    expect(simIds).toEqual(realIds);
  });

  test('decode and extract of arbitrary bytes return or throw FrameError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        for (const fn of [() => decodeReadAllReply(bytes), () => decodeStatusData(bytes), () => extractFrames(bytes)]) {
          try {
            fn();
          } catch (e) {
            if (!isFrameError(e)) throw e;
          }
        }
      }),
      { seed: 0x6a6b, numRuns: 500 },
    );
  });
});

/** Register ids of a TLV stream, walked with the lengths the real frames show (independent of the decoder). */
function walkIds(data: Uint8Array): number[] {
  const lengths: Record<number, number> = { 133: 1, 134: 1, 137: 4, 157: 1, 169: 1, 170: 4, 171: 1, 172: 1 };
  Object.assign(lengths, { 174: 1, 175: 1, 177: 1, 178: 10, 179: 1, 180: 8, 181: 4, 182: 4, 183: 15 });
  Object.assign(lengths, { 184: 1, 185: 4, 186: 24, 192: 1 });
  const out: number[] = [];
  let i = 0;
  while (i < data.length) {
    const id = data[i] as number;
    out.push(id);
    i += id === 0x79 ? 2 + (data[i + 1] as number) : 1 + (lengths[id] ?? 2);
  }
  return out;
}
