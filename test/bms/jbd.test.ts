import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  decodeBasicInfo,
  decodeCellVoltages,
  decodeErrorCounters,
  decodeFrame,
  decodeHardwareVersion,
  decodeProductionDate,
  decodeRequest,
  encodeBasicInfo,
  encodeCellVoltages,
  encodeHardwareVersion,
  encodeReadRequest,
  encodeResponse,
  encodeWriteRequest,
  extractFrames,
  JBD_MAX_FRAME,
  type JbdBasicInfo,
  JbdFramer,
  JbdRegister,
  protectionFlags,
  requirePayload,
  toSnapshot,
} from '../../src/bms/jbd/protocol.js';
import { sumComplement16 } from '../../src/bytes/checksum.js';
import { toHex } from '../../src/bytes/hex.js';
import type { ProtectionFlags } from '../../src/domain/battery-snapshot.js';
import type { FrameErrorCode } from '../../src/domain/errors.js';
import { type HexLine, hexBytes } from '../support/fixtures.js';
import {
  describeBmsFamily,
  describeRefusalByOtherFamilies,
  describeRefusalOfForeignFrames,
  expectFrameError,
  pushGarbage,
} from './contract.js';
import {
  arrowFrame,
  attValue,
  jbdCaptures,
  jbdFamily,
  jbdForeignFrames,
  jbdGoldenFrames,
  jbdReplies,
} from './jbd-family.js';

const payloadOf = (raw: Uint8Array): Uint8Array => decodeFrame(raw).payload;
const basicOf = (raw: Uint8Array): JbdBasicInfo => decodeBasicInfo(requirePayload(decodeFrame(raw), 0x03));
const cellsOf = (raw: Uint8Array): number[] => decodeCellVoltages(requirePayload(decodeFrame(raw), 0x04));
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));
const hex = (bytes: Uint8Array): string => toHex(bytes, '');

/** All protection flags false: what a healthy pack reports. */
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
  fetSoftwareLock: false,
};

// Real frames used by name below (file and line in the name; provenance in test/fixtures/jbd/SOURCE.md).
const uart = jbdCaptures.uart4s;
const UART_BASIC = arrowFrame(uart, 1, 'rx');
const UART_BASIC_2 = arrowFrame(uart, 2, 'rx');
const UART_CELLS = arrowFrame(uart, 3, 'rx');
const UART_CELLS_2 = arrowFrame(uart, 4, 'rx');
const UART_MODEL = arrowFrame(uart, 5, 'rx');
const UART_ERRORS = arrowFrame(uart, 6, 'rx');
const UART16_BASIC = arrowFrame(jbdCaptures.uart16s, 2, 'rx');
const UART16_CELLS = arrowFrame(jbdCaptures.uart16s, 25, 'rx');
const BLE34_BASIC = arrowFrame(jbdCaptures.ble34, 1, 'rx');

describeBmsFamily(jbdFamily);
describeRefusalByOtherFamilies(jbdFamily, [jbdFamily]);
describeRefusalOfForeignFrames(jbdFamily, jbdForeignFrames);

describe('JBD fixtures', () => {
  test('the fixtures hold the expected number of distinct real reply frames', () => {
    // 6 UART + 2 UART write acks + 1 DP04S007 + 2 16S + 5 auth-flow BLE, then the BLE captures' frames not seen
    // before: 58 in the 280 Ah one (less its 0x01 ack) and 20 in the MOSFET one (less its 0xE1, 0x01, 0x06 acks).
    expect(jbdGoldenFrames.length).toBe(6 + 2 + 1 + 2 + 5 + (58 - 1) + (20 - 3));
  });

  test('the only unreadable segment in the arrow captures is the DP04S007 cell reply the author masked with XX', () => {
    expect(jbdCaptures.ble34.unreadable).toEqual([{ line: 5, text: 'DD.04.00.XX.0D.52.0D.56.0D.57.0D.B4.XX.XX.77' }]);
    for (const c of [jbdCaptures.uart4s, jbdCaptures.uartMosfet, jbdCaptures.uart16s, jbdCaptures.upSeries]) {
      expect(c.unreadable).toEqual([]);
    }
  });
});

describe('JBD golden frames decode to the values the captures document', () => {
  test('the UART 4S reply to 0x03 decodes to 15.60 V, 0 A, 4.98 of 5.00 Ah, SoC 100 % and three NTCs', () => {
    expect(decodeFrame(UART_BASIC)).toMatchObject({ register: 0x03, status: 0x00 });
    expect(basicOf(UART_BASIC)).toStrictEqual({
      voltage: 15.6,
      current: 0,
      capacityRemaining: 4.98,
      capacityNominal: 5,
      cycles: 0,
      productionDate: '2022-03-28',
      balanceBits: 0,
      protectionBits: 0,
      softwareVersion: '8.0',
      soc: 100,
      chargeFet: true,
      dischargeFet: true,
      cellCount: 4,
      temperatures: [22.4, 22.3, 21.7],
    });
  });

  test('the second UART 0x03 reply differs only in its second NTC, 22.2 °C', () => {
    expect(basicOf(UART_BASIC_2)).toStrictEqual({ ...basicOf(UART_BASIC), temperatures: [22.4, 22.2, 21.7] });
  });

  test('the UART replies to 0x04 decode to the four cell voltages in volts', () => {
    expect(cellsOf(UART_CELLS)).toEqual([3.909, 3.901, 3.895, 3.901]);
    expect(cellsOf(UART_CELLS_2)).toEqual([3.909, 3.902, 3.895, 3.901]);
  });

  test('the UART reply to 0x05 decodes to the model string JBD-SP04S034-L4S-200A-B-U', () => {
    expect(decodeHardwareVersion(requirePayload(decodeFrame(UART_MODEL), 0x05))).toBe('JBD-SP04S034-L4S-200A-B-U');
  });

  test('the UART reply to 0xAA counts 122 cell over-voltage and 2 cell under-voltage events', () => {
    const frame = decodeFrame(UART_ERRORS);
    expect(frame).toMatchObject({ register: 0xaa, status: 0 });
    expect(frame.payload.length).toBe(24);
    expect(decodeErrorCounters(frame.payload)).toStrictEqual({
      shortCircuit: 0,
      chargeOverCurrent: 0,
      dischargeOverCurrent: 0,
      cellOverVoltage: 122,
      cellUnderVoltage: 2,
      chargeOverTemperature: 0,
      chargeUnderTemperature: 0,
      dischargeOverTemperature: 0,
      dischargeUnderTemperature: 0,
      packOverVoltage: 0,
      packUnderVoltage: 0,
    });
  });

  test('the 16S reply to 0x03 has a 0x17-byte payload with no NTC at all', () => {
    expect(UART16_BASIC[3]).toBe(0x17);
    expect(basicOf(UART16_BASIC)).toStrictEqual({
      voltage: 0,
      current: 0,
      capacityRemaining: 0,
      capacityNominal: 100,
      cycles: 0,
      productionDate: '2022-02-16',
      balanceBits: 0,
      protectionBits: 0,
      softwareVersion: '2.0',
      soc: 0,
      chargeFet: true,
      dischargeFet: false,
      cellCount: 16,
      temperatures: [],
    });
  });

  test('the 16S reply to 0x04 decodes to fifteen cells at 3.600 V and an unconnected sixteenth', () => {
    expect(cellsOf(UART16_CELLS)).toEqual([...Array<number>(15).fill(3.6), 0]);
  });

  test('the DP04S007 BLE reply with a 34-byte payload is parsed by length and its 9 trailing bytes are ignored', () => {
    const payload = payloadOf(BLE34_BASIC);
    expect(payload.length).toBe(34);
    expect(hex(payload.subarray(25))).toBe('0000004E204ADF0000');
    expect(basicOf(BLE34_BASIC)).toStrictEqual({
      voltage: 13.75,
      current: 0,
      capacityRemaining: 191.67,
      capacityNominal: 200,
      cycles: 2,
      productionDate: '2022-08-20',
      balanceBits: 0,
      protectionBits: 0,
      softwareVersion: '2.3',
      soc: 96,
      chargeFet: true,
      dischargeFet: true,
      cellCount: 4,
      temperatures: [26.2],
    });
  });

  describe('the BLE auth-flow capture (communications2.txt)', () => {
    const replies = jbdReplies.authFlow;

    test('holds four reassembled 0x03 replies and one 0x04 reply', () => {
      expect(replies.map((r) => [r.line, r.bytes[1]])).toEqual([
        [35, 0x03],
        [38, 0x03],
        [57, 0x03],
        [60, 0x03],
        [62, 0x04],
      ]);
    });

    test('its reply with current 0xFFCB decodes to −0.53 A, a discharge, with the other documented values', () => {
      const r = replies[1]!;
      expect(hex(r.bytes.subarray(4, 8))).toBe('0536FFCB');
      expect(basicOf(r.bytes)).toStrictEqual({
        voltage: 13.34,
        current: -0.53,
        capacityRemaining: 204.66,
        capacityNominal: 213,
        cycles: 1,
        productionDate: '2024-04-27',
        balanceBits: 0,
        protectionBits: 0,
        softwareVersion: '4.4',
        soc: 96,
        chargeFet: true,
        dischargeFet: true,
        cellCount: 4,
        temperatures: [26.8, 27.6, 27],
      });
    });

    test('its other 0x03 replies carry 0.00 A, −0.70 A and −0.53 A with 204.66, 204.65 and 204.65 Ah left', () => {
      const picked = [replies[0], replies[2], replies[3]].map((r) => basicOf(r!.bytes));
      expect(picked.map((b) => [b.current, b.capacityRemaining])).toEqual([
        [0, 204.66],
        [-0.7, 204.65],
        [-0.53, 204.65],
      ]);
    });

    test('its 0x04 reply decodes to 3.335, 3.334, 3.336 and 3.336 V', () => {
      expect(cellsOf(replies[4]!.bytes)).toEqual([3.335, 3.334, 3.336, 3.336]);
    });
  });

  describe('the BLE 280 Ah capture (btsnoop, JBD-SP04S034)', () => {
    const ble = jbdCaptures.ble280;

    test('two notifications fed to JbdFramer one at a time give one 0x03 frame: 13.70 V, 279.98 of 280.00 Ah', () => {
      const framer = new JbdFramer();
      expect(framer.push(attValue(ble, 7))).toEqual([]);
      expect(framer.pending).toBe(20);
      const frames = framer.push(attValue(ble, 8));
      expect(frames.map(hex)).toEqual(['DD03001D055A00006D5E6D6000002C7C00000000000080640304030B6E0B6E0B6AFAEF77']);
      expect(framer.pending).toBe(0);
      expect(basicOf(frames[0]!)).toStrictEqual({
        voltage: 13.7,
        current: 0,
        capacityRemaining: 279.98,
        capacityNominal: 280,
        cycles: 0,
        productionDate: '2022-03-28',
        balanceBits: 0,
        protectionBits: 0,
        softwareVersion: '8.0',
        soc: 100,
        chargeFet: true,
        dischargeFet: true,
        cellCount: 4,
        temperatures: [19.5, 19.5, 19.1],
      });
    });

    test('its 0x04 reply, one notification, decodes to 3.430, 3.425, 3.432 and 3.417 V', () => {
      expect(cellsOf(attValue(ble, 12))).toEqual([3.43, 3.425, 3.432, 3.417]);
    });

    test('its 0xAA reply, split over two notifications, counts one cell under-voltage event', () => {
      const framer = new JbdFramer();
      const frames = [...framer.push(attValue(ble, 164)), ...framer.push(attValue(ble, 165))];
      expect(frames).toHaveLength(1);
      expect(decodeErrorCounters(requirePayload(decodeFrame(frames[0]!), 0xaa))).toMatchObject({
        cellOverVoltage: 0,
        cellUnderVoltage: 1,
        shortCircuit: 0,
      });
    });

    test('its factory-mode EEPROM replies carry the 280 Ah design capacity and the name DGJBD', () => {
      expect(decodeFrame(attValue(ble, 357))).toEqual({
        register: 0x10,
        status: 0,
        payload: Uint8Array.of(0x6d, 0x60),
      });
      const maker = payloadOf(attValue(ble, 401));
      expect(maker[0]).toBe(5); // length-prefixed string
      expect(decodeHardwareVersion(maker.subarray(1))).toBe('DGJBD');
    });

    test('every notification fed to one JbdFramer gives the reference reassembly, dropping only the stray 0x00', () => {
      const framer = new JbdFramer();
      const frames = ble.filter((r) => r.direction === 'rx').flatMap((r) => framer.push(r.bytes));
      expect(frames.map(hex)).toEqual(jbdReplies.ble280.map((r) => hex(r.bytes)));
      expect(frames).toHaveLength(198);
      expect(framer.discarded).toBe(1);
      expect(framer.pending).toBe(0);
    });
  });

  describe('the BLE MOSFET on/off capture', () => {
    const records = jbdCaptures.bleMosfets;

    test('after "charge FET off" the 0x03 reply sets protection bit 12 and FET byte 0x02', () => {
      const framer = new JbdFramer();
      const frames = [...framer.push(attValue(records, 63)), ...framer.push(attValue(records, 64))];
      expect(frames).toHaveLength(1);
      const basic = basicOf(frames[0]!);
      expect(basic).toMatchObject({
        voltage: 13.31,
        capacityRemaining: 268.25,
        capacityNominal: 280,
        soc: 96,
        protectionBits: 0x1000,
        chargeFet: false,
        dischargeFet: true,
        temperatures: [19.4, 19.4, 19],
      });
      expect(protectionFlags(basic.protectionBits)).toStrictEqual({ ...NO_PROTECTION, fetSoftwareLock: true });
    });

    test('every 0x03 reply in the capture shows the FET state of the last 0xE1 write before it', () => {
      let lastWrite = 0; // nothing written yet: both FETs on
      let checked = 0;
      const framer = new JbdFramer();
      for (const r of records) {
        if (r.direction === 'tx' && r.bytes[2] === JbdRegister.mosfetControl) {
          lastWrite = decodeRequest(r.bytes).data[1] as number;
        }
        if (r.direction !== 'rx') continue;
        for (const frame of framer.push(r.bytes)) {
          if (frame[1] !== JbdRegister.basicInfo) continue;
          const b = basicOf(frame);
          expect([b.chargeFet, b.dischargeFet, b.protectionBits]).toEqual([
            (lastWrite & 1) === 0,
            (lastWrite & 2) === 0,
            lastWrite === 0 ? 0 : 0x1000,
          ]);
          checked++;
        }
      }
      expect(checked).toBe(51);
    });

    test('JbdFramer reassembles the whole capture exactly like the reference reassembly', () => {
      const framer = new JbdFramer();
      const frames = records.filter((r) => r.direction === 'rx').flatMap((r) => framer.push(r.bytes));
      expect(frames.map(hex)).toEqual(jbdReplies.bleMosfets.map((r) => hex(r.bytes)));
    });
  });

  test('write acknowledgements with len 0 carry checksum 0000, which is the correct sum for an empty OK reply', () => {
    const acks = [
      arrowFrame(jbdCaptures.uartMosfet, 2, 'rx'),
      arrowFrame(jbdCaptures.uartMosfet, 5, 'rx'),
      attValue(jbdCaptures.ble280, 10),
      attValue(jbdCaptures.ble280, 239),
    ];
    expect(acks.map(hex)).toEqual(['DDE10000000077', 'DD010000000077', 'DD060000000077', 'DD000000000077']);
    for (const ack of acks) {
      expect(sumComplement16(ack, 2, 4)).toBe(0x0000);
      expect(decodeFrame(ack)).toEqual({ register: ack[1], status: 0, payload: new Uint8Array(0) });
    }
  });
});

describe('JBD request encoders', () => {
  test('read requests for 0x03, 0x04 and 0x05 are the documented bytes', () => {
    expect(hex(encodeReadRequest(0x03))).toBe('DDA50300FFFD77');
    expect(hex(encodeReadRequest(0x04))).toBe('DDA50400FFFC77');
    expect(hex(encodeReadRequest(0x05))).toBe('DDA50500FFFB77');
  });

  test('decodeRequest(encodeReadRequest(r)) returns a read of r with no data for every register', () => {
    for (let register = 0; register < 256; register++) {
      expect(decodeRequest(encodeReadRequest(register))).toEqual({ op: 0xa5, register, data: new Uint8Array(0) });
    }
  });

  test('decodeRequest(encodeWriteRequest(r, data)) returns the register and data for any data up to 255 bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 255 }), (register, data) => {
        expect(decodeRequest(encodeWriteRequest(register, data))).toEqual({ op: 0x5a, register, data });
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  test('decodeRequest reads the captured MOSFET write as register 0xE1 with data 00 01', () => {
    expect(decodeRequest(arrowFrame(jbdCaptures.uartMosfet, 1, 'tx'))).toEqual({
      op: 0x5a,
      register: 0xe1,
      data: Uint8Array.of(0x00, 0x01),
    });
  });

  test('write data or a payload longer than 255 bytes is refused with a RangeError', () => {
    expect(() => encodeWriteRequest(0xe1, new Uint8Array(256))).toThrow(RangeError);
    expect(() => encodeResponse(0x03, new Uint8Array(256))).toThrow(RangeError);
  });
});

describe('JBD rejection', () => {
  const CAPTURED_READ = arrowFrame(uart, 1, 'tx');

  // Columns: case, expected code, input. The code comes second so that both print in the test name.
  test.each<[string, FrameErrorCode, Uint8Array]>([
    ['a truncated frame: the 4S reply without its last byte', 'truncated', UART_BASIC.subarray(0, 35)],
    ['a truncated frame: only the first six bytes', 'truncated', UART_BASIC.subarray(0, 6)],
    ['a bad checksum: high checksum byte changed', 'bad-checksum', Uint8Array.from(UART_BASIC).fill(0xfb, 33, 34)],
    ['a wrong header: 0xAA instead of 0xDD', 'bad-header', Uint8Array.from(UART_BASIC).fill(0xaa, 0, 1)],
    ['a bad footer: 0x00 instead of 0x77', 'bad-footer', Uint8Array.from(UART_BASIC).fill(0x00, 35, 36)],
    ['a status byte neither 0x00 nor 0x80: a captured read request', 'bad-header', CAPTURED_READ],
    ['a bad length: two frames passed as one', 'bad-length', concat(UART_BASIC, UART_CELLS)],
  ])('decodeFrame refuses %s with FrameError %s', (_, code, bytes) => {
    expectFrameError(() => decodeFrame(bytes), code);
  });

  test.each<[string, FrameErrorCode, Uint8Array]>([
    ['a reply, whose op position holds register 0x03', 'bad-header', UART_BASIC],
    ['a request with a broken checksum', 'bad-checksum', Uint8Array.from(CAPTURED_READ).fill(0xfe, 4, 5)],
  ])('decodeRequest refuses %s with FrameError %s', (_, code, bytes) => {
    expectFrameError(() => decodeRequest(bytes), code);
  });

  test.each<[string, FrameErrorCode, Uint8Array, number]>([
    ['a 0x04 reply where 0x03 was asked', 'unexpected-reply', UART_CELLS, 0x03],
    ['a 0x03 reply where 0x05 was asked', 'unexpected-reply', UART_BASIC, 0x05],
    ['an error reply (status 0x80) to 0x03', 'bms-error', hexBytes('DD 03 80 00 FF 80 77'), 0x03],
  ])('requirePayload refuses %s with FrameError %s', (_, code, bytes, register) => {
    expectFrameError(() => requirePayload(decodeFrame(bytes), register), code);
  });

  test.each<[string, FrameErrorCode, () => unknown]>([
    ['decodeCellVoltages with an odd-length payload', 'bad-length', () => decodeCellVoltages(new Uint8Array(7))],
    ['decodeBasicInfo with a 22-byte payload', 'truncated', () => decodeBasicInfo(new Uint8Array(22))],
    [
      'decodeBasicInfo with fewer NTC bytes than its count says',
      'truncated',
      () => decodeBasicInfo(payloadOf(UART_BASIC).subarray(0, 28)),
    ],
    ['decodeErrorCounters with a 21-byte payload', 'truncated', () => decodeErrorCounters(new Uint8Array(21))],
  ])('%s throws FrameError %s', (_, code, run) => {
    expectFrameError(run, code);
  });

  test('requirePayload returns the payload of a reply to the register asked for', () => {
    expect(requirePayload(decodeFrame(UART_CELLS), 0x04)).toEqual(payloadOf(UART_CELLS));
  });
});

describe('JbdFramer and extractFrames', () => {
  test('every golden frame split at every byte boundary comes out once, whole', () => {
    for (const { bytes } of jbdGoldenFrames) {
      for (let cut = 1; cut < bytes.length; cut++) {
        const framer = new JbdFramer();
        const out = [...framer.push(bytes.subarray(0, cut)), ...framer.push(bytes.subarray(cut))];
        expect(out).toEqual([bytes]);
        expect(framer.pending).toBe(0);
      }
    }
  });

  test('a frame fed one byte at a time comes out when its last byte arrives', () => {
    const framer = new JbdFramer();
    UART_BASIC.forEach((byte, i) => {
      const out = framer.push(Uint8Array.of(byte));
      expect(out).toEqual(i === UART_BASIC.length - 1 ? [UART_BASIC] : []);
    });
  });

  test('two frames in one chunk both come out, in order', () => {
    expect(new JbdFramer().push(concat(UART_BASIC, UART_CELLS))).toEqual([UART_BASIC, UART_CELLS]);
  });

  test('leading garbage is discarded and counted', () => {
    const framer = new JbdFramer();
    expect(framer.push(concat(Uint8Array.of(0x00, 0x77, 0x12), UART_MODEL))).toEqual([UART_MODEL]);
    expect(framer.discarded).toBe(3);
  });

  test('garbage between frames, including real BLE auth traffic, is skipped', () => {
    const auth = jbdCaptures.authFlow.filter((l) => l.bytes[0] === 0xff).map((l) => l.bytes);
    const out = new JbdFramer().push(concat(UART_BASIC, ...auth, UART_CELLS, Uint8Array.of(0x77, 0x77), UART_ERRORS));
    expect(out).toEqual([UART_BASIC, UART_CELLS, UART_ERRORS]);
  });

  test('a stream cut into 20-byte BLE fragments gives back every frame in order', () => {
    const frames = [UART_BASIC, UART_CELLS, UART_MODEL, UART_ERRORS, UART16_BASIC, UART16_CELLS, BLE34_BASIC];
    const stream = concat(...frames);
    const framer = new JbdFramer();
    const out: Uint8Array[] = [];
    for (let at = 0; at < stream.length; at += 20) out.push(...framer.push(stream.subarray(at, at + 20)));
    expect(out).toEqual(frames);
  });

  test('a false 0xDD in garbage announcing 255 bytes does not hold back a complete frame behind it', () => {
    const framer = new JbdFramer();
    expect(framer.push(concat(Uint8Array.of(0x01, 0xdd, 0x02, 0x00, 0xff), UART_CELLS))).toEqual([UART_CELLS]);
    expect(framer.discarded).toBe(5);
    expect(framer.pending).toBe(0);
  });

  test('a false 0xDD followed by a frame arriving in fragments yields the frame once it is complete', () => {
    const framer = new JbdFramer();
    expect(framer.push(Uint8Array.of(0xdd, 0x10, 0x00, 0x80))).toEqual([]);
    expect(framer.push(UART_BASIC.subarray(0, 20))).toEqual([]);
    expect(framer.push(UART_BASIC.subarray(20))).toEqual([UART_BASIC]);
  });

  test('a false 0xDD right before a frame, whose length byte is the frame status, is skipped', () => {
    expect(extractFrames(concat(Uint8Array.of(0xdd), UART_CELLS))).toEqual({
      frames: [UART_CELLS],
      rest: new Uint8Array(0),
      discarded: 1,
    });
  });

  test('a frame with a valid footer but a broken checksum is skipped and the next frame is found', () => {
    const broken = Uint8Array.from(UART_CELLS).fill(0x00, 12, 13);
    expect(extractFrames(concat(broken, UART_MODEL)).frames).toEqual([UART_MODEL]);
  });

  test('an incomplete frame is kept as the rest, and a lone 0xDD too', () => {
    expect(extractFrames(UART_BASIC.subarray(0, 30))).toEqual({
      frames: [],
      rest: UART_BASIC.subarray(0, 30),
      discarded: 0,
    });
    expect(extractFrames(Uint8Array.of(0x00, 0xdd, 0x03))).toEqual({
      frames: [],
      rest: Uint8Array.of(0xdd, 0x03),
      discarded: 1,
    });
  });

  test('a huge stream of garbage keeps the pending buffer below one maximal frame, and a frame after it still comes out', () => {
    const framer = new JbdFramer();
    const maxPending = pushGarbage({
      seed: 0x2545f491,
      chunks: 4000,
      byte: (random) => (random() % 8 === 0 ? 0xdd : random() & 0xff),
      push: (bytes) => expect(framer.push(bytes)).toEqual([]),
      pending: () => framer.pending,
    });
    expect(maxPending).toBeGreaterThan(0);
    expect(maxPending).toBeLessThan(JBD_MAX_FRAME);
    expect(framer.discarded).toBeGreaterThan(100_000);
    expect(framer.push(UART_BASIC)).toEqual([UART_BASIC]);
  });

  test('reset drops a half frame so it cannot swallow the next reply', () => {
    const framer = new JbdFramer();
    framer.push(UART_BASIC.subarray(0, 10));
    expect(framer.pending).toBe(10);
    framer.reset();
    expect(framer.pending).toBe(0);
    expect(framer.push(UART_CELLS)).toEqual([UART_CELLS]);
  });

  test('the auth-flow capture, one line per push, gives its requests and replies in order', () => {
    const framer = new JbdFramer();
    const frames = jbdCaptures.authFlow.flatMap((l: HexLine) => framer.push(l.bytes)).map(hex);
    const r = jbdReplies.authFlow.map((x) => hex(x.bytes));
    const read3 = 'DDA50300FFFD77';
    expect(frames).toEqual([
      read3,
      r[0],
      read3,
      r[1],
      read3,
      r[2],
      read3,
      r[3],
      'DDA50400FFFC77',
      r[4],
      'DDA5FA03007504FE8A77',
    ]);
    expect(framer.pending).toBe(0);
  });
});

describe('JBD snapshot mapping', () => {
  test('one UART poll cycle (0x03, 0x04, 0x05) maps to a snapshot in SI units', () => {
    const snapshot = toSnapshot(
      {
        basic: basicOf(UART_BASIC),
        cells: cellsOf(UART_CELLS),
        model: decodeHardwareVersion(payloadOf(UART_MODEL)),
      },
      1_700_000_000_000,
    );
    expect(snapshot).toStrictEqual({
      timestampMs: 1_700_000_000_000,
      voltage: 15.6,
      current: 0,
      power: 0,
      soc: 100,
      capacityRemaining: 4.98,
      capacityInstalled: 5,
      cycles: 0,
      cellCount: 4,
      cellVoltages: [3.909, 3.901, 3.895, 3.901],
      balancing: [false, false, false, false],
      temperatures: [
        { name: 'T1', celsius: 22.4 },
        { name: 'T2', celsius: 22.3 },
        { name: 'T3', celsius: 21.7 },
      ],
      chargeFet: true,
      dischargeFet: true,
      protection: NO_PROTECTION,
      identity: {
        manufacturer: 'JBD',
        model: 'JBD-SP04S034-L4S-200A-B-U',
        firmware: '8.0',
        productionDate: '2022-03-28',
      },
    });
  });

  test('a discharging pack gets a negative power of V × I, rounded to 0.01 W', () => {
    const basic = basicOf(jbdReplies.authFlow[1]!.bytes);
    expect(toSnapshot({ basic }, 0)).toMatchObject({ voltage: 13.34, current: -0.53, power: -7.07 });
  });

  test('without a 0x04 reply the snapshot has no cell voltages but one balancing flag per reported cell', () => {
    const s = toSnapshot({ basic: basicOf(UART16_BASIC) }, 0);
    expect(s.cellVoltages).toBeUndefined();
    expect('cellVoltages' in s).toBe(false);
    expect(s.cellCount).toBe(16);
    expect(s.balancing).toEqual(Array<boolean>(16).fill(false));
    expect(s.temperatures).toEqual([]);
  });

  test('an empty model string and an invalid production date are left out of the identity', () => {
    const basic = { ...basicOf(UART_BASIC), productionDate: undefined };
    expect(toSnapshot({ basic, cells: [], model: '' }, 0).identity).toStrictEqual({
      manufacturer: 'JBD',
      firmware: '8.0',
    });
  });

  test('more cell voltages than the cell count are cut to the count, and a count of 0 keeps them all', () => {
    const cells = cellsOf(UART16_CELLS);
    expect(toSnapshot({ basic: { ...basicOf(UART_BASIC), cellCount: 4 }, cells }, 0).cellVoltages).toEqual([
      3.6, 3.6, 3.6, 3.6,
    ]);
    expect(toSnapshot({ basic: { ...basicOf(UART_BASIC), cellCount: 0 }, cells }, 0).cellVoltages).toHaveLength(16);
  });

  test('balance bits map bit 0 to cell 1 and reach into the second word (vendor order; unverified on hardware)', () => {
    const basic = { ...basicOf(UART16_BASIC), cellCount: 32, balanceBits: 0x8001_0005 };
    const s = toSnapshot({ basic, cells: Array<number>(32).fill(3.3) }, 0);
    const on = s.balancing?.flatMap((b, i) => (b ? [i + 1] : []));
    expect(on).toEqual([1, 3, 17, 32]);
  });

  test.each<[number, keyof ProtectionFlags]>([
    [0, 'cellOverVoltage'],
    [1, 'cellUnderVoltage'],
    [2, 'packOverVoltage'],
    [3, 'packUnderVoltage'],
    [4, 'chargeOverTemperature'],
    [5, 'chargeUnderTemperature'],
    [6, 'dischargeOverTemperature'],
    [7, 'dischargeUnderTemperature'],
    [8, 'chargeOverCurrent'],
    [9, 'dischargeOverCurrent'],
    [10, 'shortCircuit'],
    [11, 'frontEndError'],
    [12, 'fetSoftwareLock'],
  ])('protection bit %i sets only %s', (bit, name) => {
    expect(protectionFlags(1 << bit)).toStrictEqual({ ...NO_PROTECTION, [name]: true });
  });

  test('protection bit 13 (charge timeout) and the reserved bits set no flag', () => {
    expect(protectionFlags(0xe000)).toStrictEqual(NO_PROTECTION);
  });

  test.each<[string, string | undefined, number]>([
    ['0x2C7C (4S capture)', '2022-03-28', 0x2c7c],
    ['0x2C50 (16S capture)', '2022-02-16', 0x2c50],
    ['0x0000', undefined, 0x0000],
    ['0x2C60 (day 0)', undefined, 0x2c60],
    ['0x2C1C (month 0)', undefined, 0x2c1c],
    ['0x2DBC (month 13)', undefined, 0x2dbc],
  ])('production date word %s decodes to %s', (_, iso, word) => {
    expect(decodeProductionDate(word)).toBe(iso);
  });
});

describe('JBD simulator encoders agree with the decoders (consistency, not ground truth)', () => {
  test('re-encoding the decoded real 0x03 payloads without trailing bytes gives the same bytes', () => {
    const reals = [UART_BASIC, UART16_BASIC, jbdReplies.authFlow[1]!.bytes, jbdReplies.ble280[0]!.bytes];
    reals.push(...jbdReplies.bleMosfets.filter((r) => r.bytes[1] === 0x03).map((r) => r.bytes));
    for (const raw of reals) {
      const payload = payloadOf(raw);
      expect(hex(encodeBasicInfo(decodeBasicInfo(payload)))).toBe(hex(payload));
    }
  });

  test('encodeResponse wraps a payload so that decodeFrame returns it with the register and status', () => {
    const payload = encodeBasicInfo(basicOf(UART_BASIC));
    expect(hex(encodeResponse(0x03, payload))).toBe(hex(UART_BASIC));
    expect(decodeFrame(encodeResponse(0x04, Uint8Array.of(1, 2), 0x80))).toEqual({
      register: 0x04,
      status: 0x80,
      payload: Uint8Array.of(1, 2),
    });
  });

  test('any basic info within the field ranges survives encodeBasicInfo then decodeBasicInfo', () => {
    const info = fc.record({
      voltage: fc.integer({ min: 0, max: 0xffff }).map((v) => v / 100),
      current: fc.integer({ min: -32768, max: 32767 }).map((v) => v / 100),
      capacityRemaining: fc.integer({ min: 0, max: 0xffff }).map((v) => v / 100),
      capacityNominal: fc.integer({ min: 0, max: 0xffff }).map((v) => v / 100),
      cycles: fc.integer({ min: 0, max: 0xffff }),
      productionDate: fc.option(
        fc
          .tuple(fc.integer({ min: 2000, max: 2127 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 31 }))
          .map(([y, m, d]) => `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`),
        { nil: undefined },
      ),
      balanceBits: fc.integer({ min: 0, max: 0xffff_ffff }),
      protectionBits: fc.integer({ min: 0, max: 0xffff }),
      softwareVersion: fc.tuple(fc.nat(15), fc.nat(15)).map(([a, b]) => `${a}.${b}`),
      soc: fc.integer({ min: 0, max: 100 }),
      chargeFet: fc.boolean(),
      dischargeFet: fc.boolean(),
      cellCount: fc.integer({ min: 0, max: 32 }),
      temperatures: fc.array(
        fc.integer({ min: 0, max: 0xffff }).map((v) => Math.round(v - 2731) / 10),
        { maxLength: 8 },
      ),
    });
    fc.assert(
      fc.property(info, (b) => {
        // fc.record builds null-prototype objects; spread into a plain one for the strict comparison.
        expect(decodeBasicInfo(encodeBasicInfo(b))).toStrictEqual({ ...b });
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  test('encodeBasicInfo clamps out-of-range values and encodes odd inputs predictably', () => {
    const base = basicOf(UART_BASIC);
    const decoded = decodeBasicInfo(
      encodeBasicInfo({
        ...base,
        voltage: 900,
        current: -500,
        soc: 130,
        productionDate: 'soon',
        softwareVersion: '8',
        chargeFet: false,
        dischargeFet: false,
      }),
    );
    expect(decoded).toMatchObject({
      voltage: 655.35,
      current: -327.68,
      soc: 100,
      productionDate: undefined,
      softwareVersion: '8.0',
      chargeFet: false,
      dischargeFet: false,
    });
    expect(decodeBasicInfo(encodeBasicInfo({ ...base, current: 500, soc: -3 }))).toMatchObject({
      current: 327.67,
      soc: 0,
    });
  });

  test('cell voltages and the model string survive their encoders, the model cut to 31 ASCII characters', () => {
    expect(decodeCellVoltages(encodeCellVoltages([3.909, 3.901, 0, 65.535]))).toEqual([3.909, 3.901, 0, 65.535]);
    expect(decodeHardwareVersion(encodeHardwareVersion('JBD-SP04S034-L4S-200A-B-U'))).toBe('JBD-SP04S034-L4S-200A-B-U');
    expect(decodeHardwareVersion(encodeHardwareVersion('X'.repeat(40)))).toBe('X'.repeat(31));
    expect(Array.from(encodeHardwareVersion('é'))).toEqual([0xe9 & 0x7f]);
  });
});
