/**
 * JK-PB inverter BMS over RS485. There is NO real JK-PB RS485 capture under the project's shared vectors
 * (test/fixtures/jk/SOURCE.md). What is real here: the 300-byte JK02_32S records, captured over BLE from
 * hardware-11 JK boards, which protocols.md §2.3 documents to be the very frame a JK-PB pack sends after a
 * trigger write. The Modbus envelope around them (trigger request, FC 0x10 acknowledgement) is tested against
 * the layout protocols.md §2.3 quotes and against four short byte strings published with
 * mr-manuel/venus-os_dbus-serialbattery tests/bms/test_jkbms_pb.py @ 358d3c7 ("LA1010 capture"); every such
 * row is named "spec example".
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  ALARM_BITS,
  decodeCellInfo,
  decodeDeviceInfo,
  decodeRecord,
  decodeSettings,
  encodeCellInfoRecord,
  encodeDeviceInfoRecord,
  encodeSettingsRecord,
  isValidRecordAt,
  type Jk02CellInfo,
  type Jk02Layout,
  type Jk02Settings,
  productionDateIso,
  protectionFlags,
} from '../../src/bms/jk-modbus/jk02-record.js';
import {
  decodeFrame,
  decodeRequest,
  encodeReadRequest,
  encodeReadResponse,
  encodeTriggerReply,
  encodeTriggerRequest,
  encodeWriteAck,
  encodeWriteRequest,
  extractFrames,
  isTriggerReply,
  JK_PB_MAX_FRAME,
  JkPbFramer,
  JkPbTrigger,
  probe,
  toSnapshot,
} from '../../src/bms/jk-modbus/protocol.js';
import { byteSum } from '../../src/bytes/checksum.js';
import { toHex } from '../../src/bytes/hex.js';
import { isFrameError } from '../../src/domain/errors.js';
import { hexBytes, readFixture } from '../support/fixtures.js';
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

// ---- fixtures ----------------------------------------------------------------------------------------------

interface RecordLine {
  line: number;
  /** The 300-byte record. */
  bytes: Uint8Array;
  /** Whatever the capture has on the same line after the record (see the fixture test below). */
  after: Uint8Array;
}

/** One reassembled record per non-empty line (`0x55 0xAA …` or `55 AA …`). */
function records(file: string): RecordLine[] {
  return readFixture(`jk/${file}`)
    .split(/\r?\n/)
    .map((text, i) => ({ line: i + 1, text: text.trim() }))
    .filter((l) => l.text !== '')
    .map((l) => {
      const bytes = hexBytes(l.text);
      return { line: l.line, bytes: bytes.subarray(0, 300), after: bytes.subarray(300) };
    });
}

const FILE_32S = 'JK-B2A8S20P-11.17-BLE-JK02_32S.txt';
const FILE_32S_SETTINGS = 'JK-B2A8S20P-11.26-BLE-JK02_32S-settings-frame.txt';
const FILE_24S = 'JK-B2A24S20P-10.07-BLE-JK02.txt';
const FILE_16S_24S = 'JK-BD6A17S6P-7.1.0H-BLE-JK02.txt';
const FILE_COLD = 'JK-B1A20S15P-10.07-BLE-JK02.txt';

const rec32 = records(FILE_32S);
const rec32Settings = records(FILE_32S_SETTINGS);
const rec24 = records(FILE_24S);
const rec16 = records(FILE_16S_24S);
const recCold = records(FILE_COLD);

const typeOf = (r: RecordLine): number => r.bytes[4] as number;
const ofType = (list: RecordLine[], type: number): RecordLine[] => list.filter((r) => typeOf(r) === type);
const first = (list: RecordLine[], type: number): Uint8Array => {
  const found = ofType(list, type)[0];
  if (!found) throw new Error(`no record of type ${type}`);
  return found.bytes;
};

const ABOUT_32S = first(rec32, 3);
const SETTINGS_32S = first(rec32, 1);
const STATUS_32S = first(rec32, 2);

const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));

function edited(bytes: Uint8Array, edits: Record<number, number>): Uint8Array {
  const out = bytes.slice();
  for (const [at, value] of Object.entries(edits)) out[Number(at)] = value;
  return out;
}

/** A hand-edited record with its sum8 put right again. */
function resummed(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  out[299] = byteSum(out, 0, 299) & 0xff;
  return out;
}

// Spec examples: bytes published with mr-manuel/venus-os_dbus-serialbattery tests/bms/test_jkbms_pb.py @ 358d3c7
// (pack at address 3). Not in shared/vectors; see the file comment.
const SPEC_REQUEST_STATUS_ADDR3 = hexBytes('03 10 16 20 00 01 02 00 00 CF 91');
const SPEC_ACK_STATUS_ADDR3 = hexBytes('03 10 16 20 00 01 05 A9');
const SPEC_ACK_SETTINGS_ADDR3 = hexBytes('03 10 16 1E 00 01 64 65');
const SPEC_ACK_ABOUT_ADDR3 = hexBytes('03 10 16 1C 00 01 C5 A5');

/** What a pack sends after a trigger (protocols.md §2.3): record, 00, acknowledgement (trailing 00 left off). */
const wireReply = (record: Uint8Array, ack: Uint8Array): Uint8Array => concat(record, Uint8Array.of(0), ack);
const REPLY_STATUS = wireReply(STATUS_32S, SPEC_ACK_STATUS_ADDR3);
const REPLY_SETTINGS = wireReply(SETTINGS_32S, SPEC_ACK_SETTINGS_ADDR3);
const REPLY_ABOUT = wireReply(ABOUT_32S, SPEC_ACK_ABOUT_ADDR3);

// ---- contract -------------------------------------------------------------------------------------------

const goldenFrames: readonly GoldenFrame[] = [
  ...rec32.map((r) => ({ name: `${FILE_32S} line ${r.line} (type ${typeOf(r)})`, bytes: r.bytes })),
  ...rec32Settings.map((r) => ({ name: `${FILE_32S_SETTINGS} line ${r.line} (settings)`, bytes: r.bytes })),
];

const badFrames: readonly BadFrame[] = [
  { name: 'the 32S cell-info record cut to 299 bytes', bytes: STATUS_32S.subarray(0, 299), code: 'truncated' },
  {
    name: 'the 32S cell-info record with its sum8 off by one',
    bytes: edited(STATUS_32S, { 299: 0xf5 }),
    code: 'bad-checksum',
  },
  {
    name: 'the 32S cell-info record with one cell bit flipped',
    bytes: edited(STATUS_32S, { 6: 0xd6 }),
    code: 'bad-checksum',
  },
  { name: 'the 32S cell-info record starting 55 AA EB 91', bytes: edited(STATUS_32S, { 3: 0x91 }), code: 'bad-header' },
  {
    name: 'the 32S cell-info record starting AA 55 (a BLE command header)',
    bytes: edited(STATUS_32S, { 0: 0xaa, 1: 0x55 }),
    code: 'bad-header',
  },
  {
    name: 'the 32S record with type 04 (sum put right)',
    bytes: resummed(edited(STATUS_32S, { 4: 0x04 })),
    code: 'bad-header',
  },
  {
    name: 'spec example: the status reply whose acknowledgement CRC is off by one',
    bytes: edited(REPLY_STATUS, { 308: 0xaa }),
    code: 'bad-checksum',
  },
  {
    name: 'spec example: the status reply with three zero bytes before its acknowledgement',
    bytes: concat(STATUS_32S, Uint8Array.of(0, 0, 0), SPEC_ACK_STATUS_ADDR3),
    code: 'bad-length',
  },
  {
    name: 'spec example: a record followed by a read request instead of an acknowledgement',
    bytes: concat(STATUS_32S, encodeReadRequest(3, 0x1200, 10)),
    code: 'bad-header',
  },
  {
    name: 'spec example: the status request with its CRC bytes swapped',
    bytes: hexBytes('03 10 16 20 00 01 02 00 00 91 CF'),
    code: 'bad-checksum',
  },
  {
    name: 'spec example: the status request cut after 9 bytes',
    bytes: SPEC_REQUEST_STATUS_ADDR3.subarray(0, 9),
    code: 'truncated',
  },
  {
    name: 'a frame from address 0x20, beyond the four DIP switches',
    bytes: hexBytes('20 10 16 20 00 01 0A 9A'),
    code: 'bad-header',
  },
  { name: 'a frame with function code 0x06', bytes: hexBytes('01 06 16 20 00 01 4D 38'), code: 'bad-header' },
  {
    name: 'an FC 0x03 response with an odd byte count',
    bytes: hexBytes('01 03 03 0D 0D 0D 00 00 00'),
    code: 'bad-length',
  },
  { name: 'a single byte', bytes: hexBytes('01'), code: 'truncated' },
  {
    name: 'the 32S cell-info record followed by one stray byte',
    bytes: concat(STATUS_32S, hexBytes('00')),
    code: 'bad-length',
  },
  { name: 'an FC 0x10 frame of 7 bytes', bytes: hexBytes('03 10 16 20 00 01 02'), code: 'truncated' },
  {
    name: 'spec example: the status request with byte count 4 for one register',
    bytes: hexBytes('03 10 16 20 00 01 04 00 00 00 00 00 00'),
    code: 'bad-length',
  },
  {
    name: 'spec example: the status request followed by one more byte',
    bytes: concat(SPEC_REQUEST_STATUS_ADDR3, hexBytes('00')),
    code: 'bad-length',
  },
  { name: 'an FC 0x03 frame of 2 bytes', bytes: hexBytes('01 03'), code: 'truncated' },
  {
    name: 'an FC 0x03 response announcing 4 bytes and carrying 2',
    bytes: hexBytes('01 03 04 0D 0D 00 00'),
    code: 'truncated',
  },
  { name: 'an exception with its CRC bytes swapped', bytes: hexBytes('01 83 02 C1 C0'), code: 'bad-checksum' },
];

const jkModbusFamily: BmsFamilyUnderTest = {
  id: 'jk-modbus',
  goldenFrames,
  // A record starts with 0x55; Modbus frames with an address 0–15.
  startBytes: [0x55, ...Array.from({ length: 16 }, (_, i) => i)],
  extract: (buffer) => extractFrames(buffer, { endOfInput: true }),
  decode: decodeFrame,
  probe,
  badFrames,
  requests: [
    {
      name: 'spec example: status trigger to address 3 (published capture)',
      encoded: encodeTriggerRequest(3, JkPbTrigger.status),
      captured: SPEC_REQUEST_STATUS_ADDR3,
    },
  ],
};

describeBmsFamily(jkModbusFamily);
describeRefusalByOtherFamilies(jkModbusFamily, [jkModbusFamily, jbdFamily]);
describeRefusalOfForeignFrames(jkModbusFamily, [
  ...jbdFamily.goldenFrames,
  ...['JK-B2A24S20P-10.07-UART-TTL.txt', 'JK-BD6A17S6P-7.1.0H-UART-TTL.txt'].map((file) => {
    const line = readFixture(`jk/${file}`)
      .split(/\r?\n/)
      .find((l) => l.startsWith('<<<')) as string;
    return { name: `${file} reply (JK serial 4E 57)`, bytes: hexBytes(line.slice(3).replace(':46:0:', ':46:A0:')) };
  }),
]);

// ---- fixtures sanity -------------------------------------------------------------------------------------

describe('JK02 fixtures', () => {
  test('the 32S capture holds one device-info, one settings and 70 cell-info records, all distinct', () => {
    expect(rec32.map(typeOf).slice(0, 2)).toEqual([3, 1]);
    expect(ofType(rec32, 2)).toHaveLength(70);
    expect(new Set(rec32.map((r) => toHex(r.bytes, ''))).size).toBe(72);
  });

  test('every record in every JK02 fixture passes its checksum; lines 1 and 3 of the 16S capture carry an app command after it', () => {
    for (const list of [rec32, rec32Settings, rec24, rec16, recCold]) {
      for (const r of list) expect(() => decodeRecord(r.bytes, 'jk02-24s')).not.toThrow();
    }
    // On those two lines the capture appended the phone's next 20-byte BLE write (AA 55 90 EB C8 …).
    const extras = [rec32, rec32Settings, rec24, rec16, recCold].flat().filter((r) => r.after.length > 0);
    expect(extras.map((r) => r.line)).toEqual([1, 3]);
    for (const r of extras)
      expect(toHex(r.after, ' ')).toBe('AA 55 90 EB C8 01 01 00 00 00 00 00 00 00 00 00 00 00 00 44');
    expect(rec32Settings.map(typeOf)).toEqual([1, 1, 1, 1, 1]);
  });
});

// ---- golden values: 32S (the JK-PB layout) ----------------------------------------------------------------

describe('JK02_32S golden records decode to the values the captures hold', () => {
  test('the device-info record names a JK_B2A8S20P, hardware 11.XW, software 11.17, serial 2062015232', () => {
    expect(decodeDeviceInfo(ABOUT_32S)).toEqual({
      model: 'JK_B2A8S20P',
      hardwareVersion: '11.XW',
      softwareVersion: '11.17',
      uptimeSeconds: 10800,
      powerOnCount: 1,
      deviceName: 'JK_B2A8S20P',
      productionDate: '220804',
      serialNumber: '2062015232',
    });
  });

  test('the first cell-info record: 8 cells 3.284–3.328 V, 26.381 V, 0 A, SoC 69 %, 69.554 of 100 Ah', () => {
    const c = decodeCellInfo(STATUS_32S);
    expect(c.cellVoltages).toEqual([3.287, 3.291, 3.285, 3.327, 3.328, 3.285, 3.284, 3.296]);
    expect(c.enabledCells).toBe(0xff);
    expect(c.averageCellVoltage).toBe(3.298);
    expect(c.deltaCellVoltage).toBe(0.043);
    expect(c.voltage).toBe(26.381);
    expect(c.current).toBe(0);
    expect(c.soc).toBe(69);
    expect(c.capacityRemaining).toBe(69.554);
    expect(c.capacityNominal).toBe(100);
  });

  test('the first cell-info record: MOSFET 36.1 °C, T1 29.7 °C, T2 29.8 °C, both FETs on, no alarm', () => {
    const c = decodeCellInfo(STATUS_32S);
    expect(c.mosTemperature).toBe(36.1);
    expect(c.temperatures).toEqual([29.7, 29.8]);
    expect(c.chargeFet).toBe(true);
    expect(c.dischargeFet).toBe(true);
    expect(c.alarms).toBe(0);
  });

  test('the first cell-info record: balancing by discharge at −2.019 A, 0 cycles, SoH 100 %, 10 989 s running', () => {
    const c = decodeCellInfo(STATUS_32S);
    expect(c.balancing).toBe(2);
    expect(c.balanceCurrent).toBe(-2.019);
    expect(c.cycles).toBe(0);
    expect(c.totalCycleCapacity).toBe(0.046);
    expect(c.soh).toBe(100);
    expect(c.runtimeSeconds).toBe(10989);
  });

  test('every 32S cell-info record is self-consistent: pack voltage within 10 mV of the cell sum, average within 2 mV of the mean', () => {
    for (const r of ofType(rec32, 2)) {
      const c = decodeCellInfo(r.bytes);
      expect(c.cellVoltages).toHaveLength(8);
      const sum = c.cellVoltages.reduce((a, b) => a + b, 0);
      expect(Math.abs(c.voltage - sum)).toBeLessThanOrEqual(0.010001);
      expect(Math.abs(c.averageCellVoltage - sum / 8)).toBeLessThanOrEqual(0.002);
      for (const v of c.cellVoltages) expect(v).toBeGreaterThan(3.1);
      expect(c.soc).toBeGreaterThanOrEqual(0);
      expect(c.soc).toBeLessThanOrEqual(100);
      expect(c.capacityRemaining).toBeLessThanOrEqual(c.capacityNominal);
      expect(c.temperatures[0]).toBeGreaterThan(20);
      expect(c.temperatures[0]).toBeLessThan(40);
    }
  });

  test('the last 32S cell-info record: 26.054 V, SoC 60 %, 36.418 of 60 Ah, 198 488 s running', () => {
    const c = decodeCellInfo((rec32.at(-1) as RecordLine).bytes);
    expect(c.cellVoltages).toEqual([3.216, 3.285, 3.231, 3.297, 3.296, 3.215, 3.216, 3.297]);
    expect(c).toMatchObject({ voltage: 26.054, soc: 60, capacityRemaining: 36.418, capacityNominal: 60 });
    expect(c).toMatchObject({ mosTemperature: 30.8, temperatures: [28.3, 29.5], runtimeSeconds: 198488 });
  });

  test('the 32S settings record: 8 cells, 100 Ah, cell protection 2.6 / 3.6 V, 25 A charge and 200 A discharge', () => {
    expect(decodeSettings(SETTINGS_32S)).toEqual({
      smartSleepVoltage: 0.6,
      cellUnderVoltageProtection: 2.6,
      cellUnderVoltageRecovery: 2.65,
      cellOverVoltageProtection: 3.6,
      cellOverVoltageRecovery: 3.55,
      balanceTriggerVoltage: 0.01,
      requestChargeVoltage: 0,
      requestFloatVoltage: 0,
      powerOffVoltage: 2.5,
      maxChargeCurrent: 25,
      maxDischargeCurrent: 200,
      maxBalanceCurrent: 2,
      chargeOverTemperature: 70,
      chargeOverTemperatureRecovery: 60,
      dischargeOverTemperature: 70,
      dischargeOverTemperatureRecovery: 60,
      chargeUnderTemperature: -20,
      chargeUnderTemperatureRecovery: -10,
      mosOverTemperature: 100,
      mosOverTemperatureRecovery: 80,
      cellCount: 8,
      chargeSwitch: true,
      dischargeSwitch: true,
      balanceSwitch: true,
      nominalCapacity: 100,
      balanceStartVoltage: 3,
    });
  });

  test('the five 11.26 settings records: 4 cells, 13 Ah, discharge switch off, cell limits 3.62 / 4.10 V', () => {
    for (const r of rec32Settings) {
      expect(decodeSettings(r.bytes)).toMatchObject({
        cellCount: 4,
        nominalCapacity: 13,
        chargeSwitch: true,
        dischargeSwitch: false,
        cellUnderVoltageProtection: 3.62,
        cellOverVoltageProtection: 4.1,
        maxChargeCurrent: 2,
        maxDischargeCurrent: 2,
        balanceStartVoltage: 4,
      });
    }
  });

  test('decodeRecord reports the type and the counter byte of each record', () => {
    expect(decodeRecord(ABOUT_32S)).toMatchObject({ type: 'device-info', counter: 0x8b });
    expect(decodeRecord(SETTINGS_32S)).toMatchObject({ type: 'settings', counter: 0x8b });
    expect(decodeRecord(STATUS_32S)).toMatchObject({ type: 'cell-info' });
    expect(rec32Settings.map((r) => decodeRecord(r.bytes).counter)).toEqual([0xd5, 0xe4, 0xe4, 0xea, 0xec]);
  });
});

// ---- golden values: 24S layout (older boards; same record decoder) ----------------------------------------

describe('JK02_24S golden records decode with the 24S layout', () => {
  const layout: Jk02Layout = 'jk02-24s';

  test('the 24-cell board: 24 cells 3.279–3.285 V, 78.735 V, 0 A, SoC 85 %, 42.804 of 50 Ah, charge FET only', () => {
    const c = decodeCellInfo(first(rec24, 2), layout);
    expect(c.cellVoltages).toHaveLength(24);
    expect(Math.min(...c.cellVoltages)).toBe(3.279);
    expect(Math.max(...c.cellVoltages)).toBe(3.285);
    expect(c.enabledCells).toBe(0xffffff);
    expect(c).toMatchObject({ voltage: 78.735, current: 0, soc: 85, capacityRemaining: 42.804, capacityNominal: 50 });
    expect(c).toMatchObject({ mosTemperature: 23.4, temperatures: [20.7, 20.7], cycles: 0, soh: 100 });
    expect(c).toMatchObject({ runtimeSeconds: 269340, chargeFet: true, dischargeFet: false });
  });

  test('the 24-cell board names itself JK-B2A24S20P, hardware 10.XG, software 10.07', () => {
    expect(decodeDeviceInfo(first(rec24, 3))).toMatchObject({
      model: 'JK-B2A24S20P',
      hardwareVersion: '10.XG',
      softwareVersion: '10.07',
      serialNumber: '2041803028',
      productionDate: '220511',
    });
  });

  test('the 16S board charging: 16 cells 3.226–3.243 V, 51.715 V, +3.045 A, SoC 30 %, 24.439 of 81 Ah, 111 cycles', () => {
    const c = decodeCellInfo(first(rec16, 2), layout);
    expect(c.cellVoltages).toHaveLength(16);
    expect(Math.min(...c.cellVoltages)).toBe(3.226);
    expect(Math.max(...c.cellVoltages)).toBe(3.243);
    expect(c).toMatchObject({ voltage: 51.715, current: 3.045, soc: 30, capacityRemaining: 24.439 });
    expect(c).toMatchObject({ capacityNominal: 81, cycles: 111, runtimeSeconds: 15967430 });
  });

  test('the 16S capture also holds discharges: its currents run from −15.66 A to +11.049 A, six of them negative', () => {
    const currents = ofType(rec16, 2).map((r) => decodeCellInfo(r.bytes, layout).current);
    expect(Math.min(...currents)).toBe(-15.66);
    expect(Math.max(...currents)).toBe(11.049);
    expect(currents.filter((a) => a < 0)).toHaveLength(6);
  });

  test('the cold 13S board reads below zero: T1 −3.1 °C, T2 −2.9 °C, MOSFET +0.5 °C', () => {
    const c = decodeCellInfo(first(recCold, 2), layout);
    expect(c.temperatures).toEqual([-3.1, -2.9]);
    expect(c.mosTemperature).toBe(0.5);
    expect(c.cellVoltages).toHaveLength(13);
    expect(c).toMatchObject({ voltage: 42.786, soc: 47, capacityRemaining: 63.168, capacityNominal: 132, cycles: 56 });
    expect(c).toMatchObject({ chargeFet: false, dischargeFet: false });
  });

  test('the 16S board settings record uses the same offsets in the 24S layout: 16 cells, 81 Ah, 30 A / 60 A', () => {
    expect(decodeSettings(first(rec16, 1))).toMatchObject({
      cellCount: 16,
      nominalCapacity: 81,
      maxChargeCurrent: 30,
      maxDischargeCurrent: 60,
      cellOverVoltageProtection: 3.65,
      chargeUnderTemperature: 0,
      chargeUnderTemperatureRecovery: 5,
    });
  });
});

// ---- Modbus envelope ------------------------------------------------------------------------------------

describe('JK-PB request encoders and the Modbus envelope', () => {
  test('spec example: the status trigger to address 3 is the published 03 10 16 20 00 01 02 00 00 CF 91', () => {
    expect(Array.from(encodeTriggerRequest(3, JkPbTrigger.status))).toEqual(Array.from(SPEC_REQUEST_STATUS_ADDR3));
  });

  test('spec example: the acknowledgements of address 3 are the published bytes for status, settings and about', () => {
    expect(Array.from(encodeWriteAck(3, JkPbTrigger.status, 1))).toEqual(Array.from(SPEC_ACK_STATUS_ADDR3));
    expect(Array.from(encodeWriteAck(3, JkPbTrigger.settings, 1))).toEqual(Array.from(SPEC_ACK_SETTINGS_ADDR3));
    expect(Array.from(encodeWriteAck(3, JkPbTrigger.about, 1))).toEqual(Array.from(SPEC_ACK_ABOUT_ADDR3));
  });

  test.each([1, 2, 7, 15])(
    'the trigger requests to address %i follow the layout addr 10 16 xx 00 01 02 00 00 crc',
    (address) => {
      for (const register of [JkPbTrigger.status, JkPbTrigger.settings, JkPbTrigger.about]) {
        const bytes = encodeTriggerRequest(address, register);
        expect(Array.from(bytes.subarray(0, 9))).toEqual([address, 0x10, 0x16, register & 0xff, 0, 1, 2, 0, 0]);
        expect(decodeRequest(bytes)).toEqual({ kind: 'write-request', address, register, values: [0] });
      }
    },
  );

  test('addresses outside 0–15 and write sizes outside 1–123 registers are refused with a RangeError', () => {
    expect(() => encodeTriggerRequest(16, JkPbTrigger.status)).toThrow(RangeError);
    expect(() => encodeTriggerRequest(-1, JkPbTrigger.status)).toThrow(RangeError);
    expect(() => encodeWriteRequest(1, 0x1000, [])).toThrow(RangeError);
    expect(() => encodeReadRequest(1, 0x1200, 0)).toThrow(RangeError);
    expect(() => encodeReadResponse(1, new Array(126).fill(0))).toThrow(RangeError);
  });

  test('spec example: the status reply decodes to address 3, register 0x1620 and the cell-info record', () => {
    const f = decodeFrame(REPLY_STATUS);
    expect(f.kind).toBe('reply');
    if (f.kind !== 'reply' || f.record.type !== 'cell-info') throw new Error('not a cell-info reply');
    expect(f.address).toBe(3);
    expect(f.register).toBe(0x1620);
    expect(f.record.cellInfo.voltage).toBe(26.381);
  });

  test('spec example: isTriggerReply pairs a reply only with its own address, register and record type', () => {
    expect(isTriggerReply(REPLY_STATUS, 3, JkPbTrigger.status)).toBe(true);
    expect(isTriggerReply(REPLY_SETTINGS, 3, JkPbTrigger.settings)).toBe(true);
    expect(isTriggerReply(REPLY_ABOUT, 3, JkPbTrigger.about)).toBe(true);
    expect(isTriggerReply(REPLY_STATUS, 2, JkPbTrigger.status)).toBe(false);
    expect(isTriggerReply(REPLY_STATUS, 3, JkPbTrigger.settings)).toBe(false);
    // A settings record acknowledged as a status trigger (a confused bus) is not a status reply.
    expect(isTriggerReply(wireReply(SETTINGS_32S, SPEC_ACK_STATUS_ADDR3), 3, JkPbTrigger.status)).toBe(false);
    // A bare record (the bus master's broadcast) carries no address and answers nobody.
    expect(isTriggerReply(STATUS_32S, 3, JkPbTrigger.status)).toBe(false);
    expect(isTriggerReply(edited(REPLY_STATUS, { 6: 0x00 }), 3, JkPbTrigger.status)).toBe(false);
  });

  test('a reply from address 0 (the bus master) is told apart from the zero byte before it', () => {
    const reply = wireReply(STATUS_32S, encodeWriteAck(0, JkPbTrigger.status, 1));
    expect(decodeFrame(reply)).toMatchObject({ kind: 'reply', address: 0, register: 0x1620 });
    expect(new JkPbFramer().push(concat(reply, Uint8Array.of(0)))).toEqual([reply]);
  });

  test('plain Modbus frames decode to their kinds: read request, read response, write request, ack, exception', () => {
    expect(decodeFrame(encodeReadRequest(4, 0x1200, 10))).toEqual({
      kind: 'read-request',
      address: 4,
      register: 0x1200,
      quantity: 10,
    });
    expect(decodeFrame(encodeReadResponse(4, [3341, 3342]))).toEqual({
      kind: 'read-response',
      address: 4,
      values: [3341, 3342],
    });
    expect(decodeFrame(encodeWriteRequest(1, 0x1070, [0, 1]))).toEqual({
      kind: 'write-request',
      address: 1,
      register: 0x1070,
      values: [0, 1],
    });
    expect(decodeFrame(SPEC_ACK_SETTINGS_ADDR3)).toEqual({
      kind: 'write-ack',
      address: 3,
      register: 0x161e,
      quantity: 1,
    });
    // 01 90 02 + CRC-16/Modbus 0xC1CD, low byte first; 01 83 02 + 0xF1C0.
    expect(decodeFrame(hexBytes('01 90 02 CD C1'))).toEqual({
      kind: 'exception',
      address: 1,
      functionCode: 0x10,
      exceptionCode: 2,
    });
    expect(decodeFrame(hexBytes('01 83 02 C0 F1'))).toEqual({
      kind: 'exception',
      address: 1,
      functionCode: 0x03,
      exceptionCode: 2,
    });
  });

  test('decodeRequest refuses anything that is not a request', () => {
    expectFrameError(() => decodeRequest(SPEC_ACK_STATUS_ADDR3), 'unexpected-reply');
    expectFrameError(() => decodeRequest(STATUS_32S), 'unexpected-reply');
  });

  test('probe accepts records and replies, and refuses requests, acknowledgements and broken frames', () => {
    expect(probe(STATUS_32S)).toBe(true);
    expect(probe(REPLY_STATUS)).toBe(true);
    expect(probe(SPEC_REQUEST_STATUS_ADDR3)).toBe(false);
    expect(probe(SPEC_ACK_STATUS_ADDR3)).toBe(false);
    expect(probe(edited(STATUS_32S, { 299: 0 }))).toBe(false);
  });
});

// ---- framing ---------------------------------------------------------------------------------------------

describe('JkPbFramer and extractFrames', () => {
  test('spec example: the status reply, trailing zero included, split at every byte boundary comes out once, whole', () => {
    const wire = concat(REPLY_STATUS, Uint8Array.of(0));
    for (let cut = 1; cut < wire.length; cut++) {
      const framer = new JkPbFramer();
      const out = [...framer.push(wire.subarray(0, cut)), ...framer.push(wire.subarray(cut))];
      expect(out).toEqual([REPLY_STATUS]);
    }
  });

  test('spec example: a reply fed one byte at a time comes out when the last acknowledgement byte arrives', () => {
    const framer = new JkPbFramer();
    for (let i = 0; i < REPLY_ABOUT.length - 1; i++) expect(framer.push(REPLY_ABOUT.subarray(i, i + 1))).toEqual([]);
    expect(framer.push(REPLY_ABOUT.subarray(-1))).toEqual([REPLY_ABOUT]);
  });

  test('spec example: the echo of our request, the reply and its trailing zero give the request and the reply', () => {
    const wire = concat(SPEC_REQUEST_STATUS_ADDR3, REPLY_STATUS, Uint8Array.of(0));
    const framer = new JkPbFramer();
    expect(framer.push(wire)).toEqual([SPEC_REQUEST_STATUS_ADDR3, REPLY_STATUS]);
  });

  test('spec example: three replies of three packs in one chunk come out in order', () => {
    const replies = [1, 2, 3].map((a) => wireReply(STATUS_32S, encodeWriteAck(a, JkPbTrigger.status, 1)));
    const wire = concat(...replies.flatMap((r) => [r, Uint8Array.of(0)]));
    expect(new JkPbFramer().push(wire)).toEqual(replies);
  });

  test('a record with nothing behind it yet is held back by the framer but returned by extractFrames at end of input', () => {
    const framer = new JkPbFramer();
    expect(framer.push(STATUS_32S)).toEqual([]);
    expect(framer.pending).toBe(300);
    expect(extractFrames(STATUS_32S, { endOfInput: true }).frames).toEqual([STATUS_32S]);
  });

  test('a bus-master broadcast record followed by a reply comes out as a bare record, then the reply', () => {
    const framer = new JkPbFramer();
    expect(framer.push(concat(SETTINGS_32S, REPLY_STATUS))).toEqual([SETTINGS_32S, REPLY_STATUS]);
  });

  test('part of a record is kept as the rest, with nothing discarded', () => {
    expect(extractFrames(STATUS_32S.subarray(0, 100))).toEqual({
      frames: [],
      rest: STATUS_32S.subarray(0, 100),
      discarded: 0,
    });
    expect(extractFrames(hexBytes('FF 55 AA'))).toEqual({ frames: [], rest: hexBytes('55 AA'), discarded: 1 });
  });

  test('isValidRecordAt needs a whole record, its header and its sum at the given offset', () => {
    const buffer = concat(hexBytes('00'), STATUS_32S);
    expect(isValidRecordAt(buffer, 1)).toBe(true);
    expect(isValidRecordAt(buffer, 0)).toBe(false);
    expect(isValidRecordAt(buffer.subarray(0, 300), 1)).toBe(false);
    expect(isValidRecordAt(edited(buffer, { 300: 0 }), 1)).toBe(false);
  });

  test('a record followed by a byte that cannot begin an acknowledgement is released at once', () => {
    expect(new JkPbFramer().push(concat(STATUS_32S, Uint8Array.of(0xff)))).toEqual([STATUS_32S]);
  });

  test('garbage before and between frames is discarded and counted', () => {
    const framer = new JkPbFramer();
    const out = framer.push(concat(hexBytes('FF 55 AA 00 10 99'), REPLY_STATUS, hexBytes('EE 55 AA EB'), REPLY_ABOUT));
    expect(out).toEqual([REPLY_STATUS, REPLY_ABOUT]);
    expect(framer.discarded).toBe(10);
  });

  test('a false Modbus start announcing 250 bytes does not hold back a complete reply behind it', () => {
    const framer = new JkPbFramer();
    expect(framer.push(concat(hexBytes('05 03 FA 00'), REPLY_STATUS))).toEqual([REPLY_STATUS]);
    expect(framer.discarded).toBe(4);
  });

  test('a false Modbus start announcing more bytes than there are gives way to a complete frame behind it', () => {
    expect(extractFrames(concat(hexBytes('05 03 FA'), SPEC_ACK_STATUS_ADDR3))).toEqual({
      frames: [SPEC_ACK_STATUS_ADDR3],
      rest: new Uint8Array(0),
      discarded: 3,
    });
  });

  test('a record with a broken checksum is skipped and the reply after it is found', () => {
    const broken = edited(STATUS_32S, { 6: 0x00 });
    expect(extractFrames(concat(broken, REPLY_SETTINGS)).frames).toEqual([REPLY_SETTINGS]);
  });

  test('a stream cut into 20-byte pieces (BLE notification size) gives back every frame in order', () => {
    const frames = [REPLY_ABOUT, REPLY_SETTINGS, REPLY_STATUS, SPEC_REQUEST_STATUS_ADDR3, REPLY_STATUS];
    const stream = concat(...frames.flatMap((f) => [f, Uint8Array.of(0)]));
    const framer = new JkPbFramer();
    const out: Uint8Array[] = [];
    for (let at = 0; at < stream.length; at += 20) out.push(...framer.push(stream.subarray(at, at + 20)));
    expect(out).toEqual(frames);
  });

  test('a long stream of garbage keeps the pending buffer within one reply, and a reply after it still comes out', () => {
    const framer = new JkPbFramer();
    const maxPending = pushGarbage({
      seed: 0x5eed1234,
      chunks: 2000,
      byte: (random) => {
        const r = random() % 8;
        return r === 0 ? 0x55 : r === 1 ? random() % 16 : random() & 0xff;
      },
      push: (bytes) => framer.push(bytes),
      pending: () => framer.pending,
    });
    expect(maxPending).toBeLessThanOrEqual(JK_PB_MAX_FRAME);
    framer.reset();
    expect(framer.push(concat(REPLY_STATUS, Uint8Array.of(0)))).toEqual([REPLY_STATUS]);
  });

  test('reset drops a half reply so it cannot swallow the next one', () => {
    const framer = new JkPbFramer();
    framer.push(REPLY_STATUS.subarray(0, 123));
    expect(framer.pending).toBe(123);
    framer.reset();
    expect(framer.pending).toBe(0);
    expect(framer.push(REPLY_ABOUT)).toEqual([REPLY_ABOUT]);
  });
});

// ---- snapshot --------------------------------------------------------------------------------------------

describe('JK-PB snapshot mapping', () => {
  test('status, settings and about records of the 32S board map to one snapshot in SI units', () => {
    const snapshot = toSnapshot(
      {
        status: decodeCellInfo(STATUS_32S),
        settings: decodeSettings(SETTINGS_32S),
        about: decodeDeviceInfo(ABOUT_32S),
      },
      1_700_000_000_000,
    );
    expect(snapshot).toStrictEqual({
      timestampMs: 1_700_000_000_000,
      voltage: 26.381,
      current: 0,
      power: 0,
      soc: 69,
      soh: 100,
      capacityRemaining: 69.554,
      capacityInstalled: 100,
      cycles: 0,
      cellVoltages: [3.287, 3.291, 3.285, 3.327, 3.328, 3.285, 3.284, 3.296],
      cellCount: 8,
      temperatures: [
        { name: 'T1', celsius: 29.7 },
        { name: 'T2', celsius: 29.8 },
      ],
      mosTemperature: 36.1,
      chargeFet: true,
      dischargeFet: true,
      protection: {
        internalFailure: false,
        frontEndError: false,
        cellOverVoltage: false,
        packOverVoltage: false,
        chargeOverCurrent: false,
        shortCircuit: false,
        chargeOverTemperature: false,
        chargeUnderTemperature: false,
        cellUnderVoltage: false,
        packUnderVoltage: false,
        dischargeOverCurrent: false,
        dischargeOverTemperature: false,
      },
      identity: {
        manufacturer: 'JK',
        model: 'JK_B2A8S20P',
        serial: '2062015232',
        firmware: '11.17',
        hardware: '11.XW',
        productionDate: '2022-08-04',
      },
    });
  });

  test('a discharging 16S pack without settings or about records: negative power, identity from nothing but JK', () => {
    const all = ofType(rec16, 2).map((r) => decodeCellInfo(r.bytes, 'jk02-24s'));
    const status = all.find((c) => c.current === -15.66) as Jk02CellInfo;
    const s = toSnapshot({ status }, 5);
    expect(s.current).toBe(-15.66);
    expect(s.power).toBeLessThan(0);
    expect(s.power).toBe(Math.round(status.voltage * -15.66 * 100) / 100);
    expect(s.identity).toEqual({ manufacturer: 'JK' });
    expect(s.cellCount).toBe(16);
  });

  test('the installed capacity comes from the status record, else from the settings, else stays unknown', () => {
    const status = { ...decodeCellInfo(STATUS_32S), capacityNominal: 0 };
    const settings = decodeSettings(SETTINGS_32S);
    expect(toSnapshot({ status, settings }, 0).capacityInstalled).toBe(100);
    expect('capacityInstalled' in toSnapshot({ status }, 0)).toBe(false);
    expect(toSnapshot({ status: decodeCellInfo(STATUS_32S) }, 0).capacityInstalled).toBe(100);
  });

  test.each(ALARM_BITS.map(([bit, name]) => [bit, name] as const))('alarm bit %i sets %s', (bit, name) => {
    const flags = protectionFlags(2 ** bit);
    expect(flags[name]).toBe(true);
    const others = Object.entries(flags).filter(([k, v]) => v && k !== name);
    expect(others).toEqual([]);
  });

  test('alarm bits without a snapshot flag (wire resistance, MOSFET over-temperature, GPS …) set nothing', () => {
    const flags = protectionFlags((1 << 0) | (1 << 1) | (1 << 18) | (1 << 19) | (1 << 21) | (1 << 23));
    expect(Object.values(flags).some((v) => v)).toBe(false);
  });

  test.each([
    ['220804', '2022-08-04'],
    ['210609', '2021-06-09'],
    ['221304', undefined],
    ['2204', undefined],
    ['', undefined],
  ])('production date %s reads as %s', (text, iso) => {
    expect(productionDateIso(text)).toBe(iso);
  });
});

// ---- device side and robustness ------------------------------------------------------------------------

const cellInfoArb: fc.Arbitrary<Jk02CellInfo> = fc
  .array(fc.integer({ min: 2500, max: 3650 }), { minLength: 1, maxLength: 32 })
  .chain((mv) =>
    fc.record({
      cellVoltages: fc.constant(mv.map((v) => v / 1000)),
      enabledCells: fc.constant(mv.length === 32 ? 0xffffffff : 2 ** mv.length - 1),
      averageCellVoltage: fc.integer({ min: 2500, max: 3650 }).map((v) => v / 1000),
      deltaCellVoltage: fc.integer({ min: 0, max: 500 }).map((v) => v / 1000),
      wireResistances: fc.constant(mv.map((_, i) => ((i * 7) % 50) / 1000)),
      mosTemperature: fc.integer({ min: -400, max: 1000 }).map((v) => v / 10),
      voltage: fc.integer({ min: 0, max: 150_000 }).map((v) => v / 1000),
      current: fc.integer({ min: -300_000, max: 300_000 }).map((v) => (v === 0 ? 0 : v / 1000)),
      temperatures: fc.tuple(
        fc.integer({ min: -400, max: 800 }).map((v) => v / 10),
        fc.integer({ min: -400, max: 800 }).map((v) => v / 10),
      ),
      alarms: fc.integer({ min: 0, max: 0xffffff }),
      balanceCurrent: fc.integer({ min: -2000, max: 2000 }).map((v) => (v === 0 ? 0 : v / 1000)),
      balancing: fc.integer({ min: 0, max: 2 }),
      soc: fc.integer({ min: 0, max: 100 }),
      capacityRemaining: fc.integer({ min: 0, max: 300_000 }).map((v) => v / 1000),
      capacityNominal: fc.integer({ min: 1, max: 300_000 }).map((v) => v / 1000),
      cycles: fc.integer({ min: 0, max: 10_000 }),
      totalCycleCapacity: fc.integer({ min: 0, max: 5_000_000 }).map((v) => v / 1000),
      soh: fc.integer({ min: 0, max: 100 }),
      runtimeSeconds: fc.integer({ min: 0, max: 0xffffffff }),
      chargeFet: fc.boolean(),
      dischargeFet: fc.boolean(),
    }),
  );

describe('JK-PB device side (simulator encoders)', () => {
  test('decodeCellInfo(encodeCellInfoRecord(c)) gives c back for any cell info at wire resolution', () => {
    fc.assert(
      fc.property(cellInfoArb, (c) => {
        const record = encodeCellInfoRecord(c);
        expect(record).toHaveLength(300);
        expect(decodeCellInfo(record)).toEqual(c);
      }),
      { seed: 0x1620, numRuns: 200 },
    );
  });

  test('the settings and device-info encoders give back what the real 32S records decode to', () => {
    const settings: Jk02Settings = decodeSettings(SETTINGS_32S);
    expect(decodeSettings(encodeSettingsRecord(settings))).toEqual(settings);
    const about = decodeDeviceInfo(ABOUT_32S);
    expect(decodeDeviceInfo(encodeDeviceInfoRecord(about))).toEqual(about);
  });

  test('encodeTriggerReply lays out record, zero, acknowledgement, zero, and the framer pairs them again', () => {
    const wire = encodeTriggerReply(3, JkPbTrigger.status, STATUS_32S);
    expect(wire).toHaveLength(310);
    expect(Array.from(wire.subarray(300))).toEqual([0, ...SPEC_ACK_STATUS_ADDR3, 0]);
    expect(new JkPbFramer().push(wire)).toEqual([REPLY_STATUS]);
    expect(() => encodeTriggerReply(3, JkPbTrigger.status, STATUS_32S.subarray(0, 299))).toThrow();
  });

  test('the settings encoder carries switched-off switches too (the real 11.26 record and all three off)', () => {
    const real = decodeSettings((rec32Settings[0] as RecordLine).bytes);
    expect(decodeSettings(encodeSettingsRecord(real))).toEqual(real);
    const off = { ...real, chargeSwitch: false, dischargeSwitch: false, balanceSwitch: false };
    expect(decodeSettings(encodeSettingsRecord(off))).toEqual(off);
  });

  test('decodeRecord refuses 301 bytes as bad-length', () => {
    expectFrameError(() => decodeRecord(concat(STATUS_32S, hexBytes('00'))), 'bad-length');
  });

  test('a record with more than 32 cells is refused with a RangeError', () => {
    const c = decodeCellInfo(STATUS_32S);
    expect(() => encodeCellInfoRecord({ ...c, cellVoltages: new Array(33).fill(3.3) })).toThrow(RangeError);
  });

  test('decode, record decoders and extract of arbitrary bytes return or throw FrameError, never anything else', () => {
    const layouts: Jk02Layout[] = ['jk02-32s', 'jk02-24s'];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), fc.boolean(), (bytes, end) => {
        const fns = [
          () => decodeFrame(bytes),
          () => extractFrames(bytes, { endOfInput: end }),
          ...layouts.map((l) => () => decodeRecord(bytes, l)),
        ];
        for (const fn of fns) {
          try {
            fn();
          } catch (e) {
            if (!isFrameError(e)) throw e;
          }
        }
      }),
      { seed: 0x55aa, numRuns: 500 },
    );
  });

  test('records with random contents behind a valid header and checksum decode in both layouts without throwing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 294, maxLength: 294 }), fc.constantFrom(1, 2, 3), (body, type) => {
        const record = resummed(concat(Uint8Array.of(0x55, 0xaa, 0xeb, 0x90, type), body, Uint8Array.of(0)));
        expect(() => decodeRecord(record, 'jk02-32s')).not.toThrow();
        expect(() => decodeRecord(record, 'jk02-24s')).not.toThrow();
        expect(probe(record)).toBe(true);
      }),
      { seed: 0xeb90, numRuns: 200 },
    );
  });
});
