/**
 * The JBD family as the contract suite sees it, built only from the real captures in test/fixtures/jbd/
 * (provenance in test/fixtures/jbd/SOURCE.md). Kept out of jbd.test.ts so that later families' tests can
 * import `jbdFamily` for the cross-family probe check without re-running the JBD tests.
 */
import {
  decodeBasicInfo,
  decodeCellVoltages,
  decodeErrorCounters,
  decodeFrame,
  decodeHardwareVersion,
  encodeReadRequest,
  encodeWriteRequest,
  extractFrames,
  JbdRegister,
  requirePayload,
} from '../../src/bms/jbd/protocol.js';
import { toHex } from '../../src/bytes/hex.js';
import { isFrameError } from '../../src/domain/errors.js';
import {
  type ArrowCapture,
  type ArrowFrame,
  type AttRecord,
  type HexLine,
  hexBytes,
  parseArrowCapture,
  parseAttCapture,
  parseHexLines,
  readFixture,
} from '../support/fixtures.js';
import type { BadFrame, BmsFamilyUnderTest, CapturedRequest, GoldenFrame } from './contract.js';

/** File names under test/fixtures/jbd/. */
export const JBD_FILES = {
  uart4s: 'JBD-SP04S034-L4S-200A-B-U.txt',
  uartMosfet: 'JBD-SP04S034-L4S-200A-B-U_MOS.txt',
  ble34: 'JBD-DP04S007L4S100A-BLE.txt',
  uart16s: 'JBD-SP25S003-L16S-100A-100A-B.txt',
  upSeries: 'JBD-UP16S020-two-devices.txt',
  authFlow: 'communications2.txt',
  ble280: 'btsnoop_hci_jbd-sp04s034-l4s-200a-b-u.att.txt',
  bleMosfets: 'btsnoop_hci-mosfets-onoff.att.txt',
} as const;

const load = (name: string): string => readFixture(`jbd/${name}`);

/** Every JBD capture, parsed once. */
export const jbdCaptures = {
  uart4s: parseArrowCapture(load(JBD_FILES.uart4s)),
  uartMosfet: parseArrowCapture(load(JBD_FILES.uartMosfet)),
  ble34: parseArrowCapture(load(JBD_FILES.ble34)),
  uart16s: parseArrowCapture(load(JBD_FILES.uart16s)),
  upSeries: parseArrowCapture(load(JBD_FILES.upSeries)),
  authFlow: parseHexLines(load(JBD_FILES.authFlow)),
  ble280: parseAttCapture(load(JBD_FILES.ble280)),
  bleMosfets: parseAttCapture(load(JBD_FILES.bleMosfets)),
};

/** The frame on `line` of an arrow capture, in `direction`. Throws when the file does not have it. */
export function arrowFrame(capture: ArrowCapture, line: number, direction: ArrowFrame['direction']): Uint8Array {
  const found = capture.frames.find((f) => f.line === line && f.direction === direction);
  if (!found) throw new Error(`no ${direction} frame on line ${line}`);
  return found.bytes;
}

/** The ATT value on `line` of an .att.txt capture. Throws when the file does not have it. */
export function attValue(records: readonly AttRecord[], line: number): Uint8Array {
  const found = records.find((r) => r.line === line);
  if (!found) throw new Error(`no ATT record on line ${line}`);
  return found.bytes;
}

/** A frame reassembled from notifications, with the line of its last fragment. */
export interface ReassembledFrame {
  line: number;
  bytes: Uint8Array;
}

/**
 * Reference reassembly of BLE notifications, written straight from protocols.md §1.7 and independent of
 * JbdFramer (so the framer can be checked against it): a notification that begins `DD xx 00` opens a frame;
 * following notifications are appended until `len + 7` bytes are there; the frame counts if it ends in 0x77.
 * Notifications outside a frame (requests, auth traffic, stray bytes) are ignored.
 */
export function reassembleNotifications(chunks: readonly HexLine[]): ReassembledFrame[] {
  const out: ReassembledFrame[] = [];
  let open: number[] | undefined;
  for (const { line, bytes } of chunks) {
    if (open === undefined) {
      if (bytes[0] !== 0xdd || bytes[2] !== 0x00) continue;
      open = [];
    }
    open.push(...bytes);
    const want = open.length >= 4 ? (open[3] as number) + 7 : Number.POSITIVE_INFINITY;
    if (open.length >= want) {
      if (open.length === want && open[want - 1] === 0x77) out.push({ line, bytes: Uint8Array.from(open) });
      open = undefined;
    }
  }
  return out;
}

const notifications = (records: readonly AttRecord[]): HexLine[] =>
  records.filter((r) => r.direction === 'rx').map((r) => ({ line: r.line, bytes: r.bytes }));

/** Device → host frames of each capture, in file order (duplicates kept). */
export const jbdReplies = {
  uart4s: jbdCaptures.uart4s.frames.filter((f) => f.direction === 'rx'),
  uartMosfet: jbdCaptures.uartMosfet.frames.filter((f) => f.direction === 'rx'),
  ble34: jbdCaptures.ble34.frames.filter((f) => f.direction === 'rx'),
  uart16s: jbdCaptures.uart16s.frames.filter((f) => f.direction === 'rx'),
  authFlow: reassembleNotifications(jbdCaptures.authFlow),
  ble280: reassembleNotifications(notifications(jbdCaptures.ble280)),
  bleMosfets: reassembleNotifications(notifications(jbdCaptures.bleMosfets)),
};

function distinctGoldens(): GoldenFrame[] {
  const seen = new Set<string>();
  const out: GoldenFrame[] = [];
  for (const [source, frames] of Object.entries(jbdReplies) as [
    keyof typeof JBD_FILES,
    { line: number; bytes: Uint8Array }[],
  ][]) {
    for (const { line, bytes } of frames) {
      const key = toHex(bytes, '');
      if (seen.has(key)) continue;
      seen.add(key);
      const register = (bytes[1] as number).toString(16).padStart(2, '0');
      out.push({ name: `${JBD_FILES[source]} line ${line} (reply to 0x${register})`, bytes });
    }
  }
  return out;
}

/** Every distinct real reply frame in the JBD fixtures. */
export const jbdGoldenFrames: readonly GoldenFrame[] = distinctGoldens();

/** The first real UART 0x03 reply (JBD-SP04S034, 4S 5 Ah): the base for the hand-made rejection rows. */
const uartBasic = arrowFrame(jbdCaptures.uart4s, 1, 'rx');

function edited(bytes: Uint8Array, edits: Record<number, number>): Uint8Array {
  const out = bytes.slice();
  for (const [at, value] of Object.entries(edits)) out[Number(at)] = value;
  return out;
}

/** Broken frames, each one edit away from a real one (checksums of hand-made frames worked out in comments). */
export const jbdBadFrames: readonly BadFrame[] = [
  { name: 'a frame shorter than the 7-byte minimum', bytes: hexBytes('DD 03 00 1D 06 18'), code: 'truncated' },
  {
    name: 'the 4S basic-info reply cut before its checksum and footer',
    bytes: uartBasic.subarray(0, uartBasic.length - 3),
    code: 'truncated',
  },
  {
    name: 'the 4S basic-info reply with its low checksum byte off by one',
    bytes: edited(uartBasic, { 34: 0x8c }),
    code: 'bad-checksum',
  },
  {
    name: 'the 4S basic-info reply with one payload bit flipped',
    bytes: edited(uartBasic, { 19: 0x01 }),
    code: 'bad-checksum',
  },
  {
    name: 'the 4S basic-info reply starting 0xDC instead of 0xDD',
    bytes: edited(uartBasic, { 0: 0xdc }),
    code: 'bad-header',
  },
  {
    name: 'a captured read request, whose status position holds 0x03',
    bytes: arrowFrame(jbdCaptures.uart4s, 1, 'tx'),
    code: 'bad-header',
  },
  {
    name: 'a captured MOSFET write request, whose status position holds 0xE1',
    bytes: arrowFrame(jbdCaptures.uartMosfet, 1, 'tx'),
    code: 'bad-header',
  },
  {
    name: 'the 4S basic-info reply ending 0x78 instead of 0x77',
    bytes: edited(uartBasic, { 35: 0x78 }),
    code: 'bad-footer',
  },
  {
    name: 'the 4S basic-info reply followed by one more byte',
    bytes: Uint8Array.from([...uartBasic, 0x00]),
    code: 'bad-length',
  },
  {
    // Σ(00 07 0F 45 0F 3D 0F 37 0F) = 0xFC → checksum 0xFF04.
    name: 'a cell-voltage reply with an odd payload length of 7',
    bytes: hexBytes('DD 04 00 07 0F 45 0F 3D 0F 37 0F FF 04 77'),
    code: 'bad-length',
  },
  {
    // The real 16S frame with its NTC count raised from 0 to 1 (checksum 0xFF05 → 0xFF04): the NTC is missing.
    name: 'a basic-info reply announcing one NTC it does not carry',
    bytes: hexBytes('DD 03 00 17 00 00 00 00 00 00 27 10 00 00 2C 50 00 00 00 00 00 00 20 00 01 10 01 FF 04 77'),
    code: 'truncated',
  },
  {
    // Σ(80 00) = 0x80 → checksum 0xFF80.
    name: 'a basic-info reply with error status 0x80',
    bytes: hexBytes('DD 03 80 00 FF 80 77'),
    code: 'bms-error',
  },
];

/** Requests our encoders build, against the bytes the vendor app / ESPHome / jbdtool really sent. */
export const jbdCapturedRequests: readonly CapturedRequest[] = [
  {
    name: 'read 0x03 basic info (UART)',
    encoded: encodeReadRequest(JbdRegister.basicInfo),
    captured: arrowFrame(jbdCaptures.uart4s, 1, 'tx'),
  },
  {
    name: 'read 0x04 cell voltages (UART)',
    encoded: encodeReadRequest(JbdRegister.cellVoltages),
    captured: arrowFrame(jbdCaptures.uart4s, 3, 'tx'),
  },
  {
    name: 'read 0x05 hardware version (UART)',
    encoded: encodeReadRequest(JbdRegister.hardwareVersion),
    captured: arrowFrame(jbdCaptures.uart4s, 5, 'tx'),
  },
  {
    name: 'read 0xAA error counters (UART)',
    encoded: encodeReadRequest(JbdRegister.errorCounters),
    captured: arrowFrame(jbdCaptures.uart4s, 6, 'tx'),
  },
  {
    name: 'read 0x10 EEPROM design capacity (BLE, factory mode)',
    encoded: encodeReadRequest(0x10),
    captured: attValue(jbdCaptures.ble280, 356),
  },
  {
    name: 'read 0xA0 manufacturer name (BLE, factory mode)',
    encoded: encodeReadRequest(0xa0),
    captured: attValue(jbdCaptures.ble280, 400),
  },
  {
    name: 'write 0xE1 = 00 01, charge FET off (UART)',
    encoded: encodeWriteRequest(JbdRegister.mosfetControl, Uint8Array.of(0x00, 0x01)),
    captured: arrowFrame(jbdCaptures.uartMosfet, 1, 'tx'),
  },
  {
    name: 'write 0xE1 = 00 02, discharge FET off (UART)',
    encoded: encodeWriteRequest(JbdRegister.mosfetControl, Uint8Array.of(0x00, 0x02)),
    captured: arrowFrame(jbdCaptures.uartMosfet, 17, 'tx'),
  },
  {
    name: 'write 0xE1 = 00 00, release the FET lock (UART)',
    encoded: encodeWriteRequest(JbdRegister.mosfetControl, Uint8Array.of(0x00, 0x00)),
    captured: arrowFrame(jbdCaptures.uartMosfet, 9, 'tx'),
  },
  {
    name: 'write 0x01 = 00 00, exit factory mode without saving (UART)',
    encoded: encodeWriteRequest(JbdRegister.exitFactory, Uint8Array.of(0x00, 0x00)),
    captured: arrowFrame(jbdCaptures.uartMosfet, 4, 'tx'),
  },
  {
    name: 'write 0x00 = 56 78, enter factory mode (BLE)',
    encoded: encodeWriteRequest(JbdRegister.enterFactory, Uint8Array.of(0x56, 0x78)),
    captured: attValue(jbdCaptures.ble280, 238),
  },
  {
    name: 'write 0x06 with 7 bytes, the Xiaoxiang app greeting (BLE)',
    encoded: encodeWriteRequest(0x06, Uint8Array.of(0x06, 0, 0, 0, 0, 0, 0)),
    captured: attValue(jbdCaptures.ble280, 9),
  },
];

/** Decode one reply as far as its register allows; the payload itself for registers without a decoder. */
export function decodeJbdReply(raw: Uint8Array): unknown {
  const frame = decodeFrame(raw);
  const payload = requirePayload(frame, frame.register);
  switch (frame.register) {
    case JbdRegister.basicInfo:
      return decodeBasicInfo(payload);
    case JbdRegister.cellVoltages:
      return decodeCellVoltages(payload);
    case JbdRegister.hardwareVersion:
      return decodeHardwareVersion(payload);
    case JbdRegister.errorCounters:
      return decodeErrorCounters(payload);
    default:
      return payload;
  }
}

/** JBD under the shared contract. */
export const jbdFamily: BmsFamilyUnderTest = {
  id: 'jbd',
  goldenFrames: jbdGoldenFrames,
  startBytes: [0xdd],
  extract: (buffer) => extractFrames(buffer),
  decode: decodeJbdReply,
  probe: (bytes) => {
    try {
      decodeFrame(bytes);
      return true;
    } catch (e) {
      if (isFrameError(e)) return false;
      throw e;
    }
  },
  badFrames: jbdBadFrames,
  requests: jbdCapturedRequests,
};

function distinct(frames: readonly GoldenFrame[]): GoldenFrame[] {
  const seen = new Set<string>();
  return frames.filter((f) => {
    const key = toHex(f.bytes, '');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Real frames of other protocols that reached the same ports: the JBD "UP" series' Modbus-style RS485
 * protocol and the `FF AA` BLE authentication exchange of newer JBD firmware.
 */
export const jbdForeignFrames: readonly GoldenFrame[] = distinct([
  ...jbdCaptures.upSeries.frames.map((f) => ({
    name: `${JBD_FILES.upSeries} line ${f.line} ${f.direction} (Modbus-style, ${f.bytes.length} bytes)`,
    bytes: f.bytes,
  })),
  ...jbdCaptures.authFlow
    .filter((l) => l.bytes[0] !== 0xdd)
    .map((l) => ({ name: `${JBD_FILES.authFlow} line ${l.line} (BLE auth or unidentified)`, bytes: l.bytes })),
]);
