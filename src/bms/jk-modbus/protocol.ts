/**
 * JK-PB "inverter BMS" over RS485 (Modbus RTU framing, 115200 Bd 8N1), several packs on one bus by DIP
 * address 1–15 (0 makes a pack the bus master). Pure: no I/O, no timers, no logging.
 * Sources: protocols.md §2.3 (our notes on mr-manuel/venus-os_dbus-serialbattery bms-docs/JKBMS-PB.md and
 * the vendor's "RS485 Modbus V1.0/V1.1" register map); notes in docs/protocols/jk.md.
 *
 * We speak the vendor bus master's dialect: an FC 0x10 "trigger" write of one zero register makes the
 * addressed pack answer with a 300-byte JK02 record (jk02-record.ts, 32S layout) and then the ordinary FC 0x10
 * acknowledgement. The record carries no address; the acknowledgement does, so request and reply are paired
 * by it.
 *
 *   Request (11 bytes):  addr | 10 | reg_hi reg_lo | 00 01 | 02 | 00 00 | crc_lo crc_hi
 *     reg 0x1620 → status (record type 02), 0x161E → settings (type 01), 0x161C → about (type 03)
 *   Reply:               record (300) | 00 | addr 10 reg_hi reg_lo 00 01 crc_lo crc_hi | 00
 *
 * CRC-16/MODBUS over everything before it, low byte first. The framer also knows the plain Modbus frames a
 * JK-PB bus carries (FC 0x03 reads and replies, FC 0x10 writes and acknowledgements, exceptions), so an echo
 * of our own request or a neighbour's traffic is recognised and not mistaken for noise. It only considers
 * addresses 0–15 (four DIP switches), which keeps random bytes from posing as Modbus frames.
 *
 * Frame kinds returned by decodeFrame:
 *   reply          record + acknowledgement (what a trigger gets): address, register, record
 *   record         a record with no acknowledgement behind it (the bus master's own broadcasts)
 *   write-ack      addr 10 reg(2) qty(2) crc          (8 bytes)
 *   write-request  addr 10 reg(2) qty(2) n data(n) crc (9 + n bytes, n = 2·qty)
 *   read-request   addr 03 reg(2) qty(2) crc          (8 bytes)
 *   read-response  addr 03 n data(n) crc              (5 + n bytes; register values big-endian)
 *   exception      addr (fc | 80) code crc            (5 bytes)
 */
import { crc16Modbus } from '../../bytes/checksum.js';
import { type FrameExtraction, IncrementalFramer } from '../../bytes/framer.js';
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import { round } from '../../domain/round.js';
import {
  checkRecord,
  decodeRecord,
  isValidRecordAt,
  JK02_RECORD_LENGTH,
  type Jk02CellInfo,
  type Jk02DeviceInfo,
  type Jk02Record,
  Jk02RecordType,
  type Jk02Settings,
  jk02Identity,
  protectionFlags,
} from './jk02-record.js';

/** Highest address the framer and the encoders accept (four DIP switches). */
export const JK_PB_MAX_ADDRESS = 15;

/** Trigger registers and the record type each one makes the pack send. */
export const JkPbTrigger = {
  about: 0x161c,
  settings: 0x161e,
  status: 0x1620,
} as const;
export type JkPbTriggerRegister = (typeof JkPbTrigger)[keyof typeof JkPbTrigger];

/** Record type (byte 4) answering each trigger register. */
export const TRIGGER_RECORD_TYPE: Readonly<Record<JkPbTriggerRegister, number>> = {
  [JkPbTrigger.about]: Jk02RecordType.deviceInfo,
  [JkPbTrigger.settings]: Jk02RecordType.settings,
  [JkPbTrigger.status]: Jk02RecordType.cellInfo,
};

/** Modbus function codes we handle. */
export const ModbusFunction = { readHolding: 0x03, writeMultiple: 0x10 } as const;

/** Zero bytes allowed between a record and its acknowledgement (one is usual). */
const MAX_PAD = 2;
/** Longest byte run the framer can be waiting on: record + pad + acknowledgement. */
export const JK_PB_MAX_FRAME = JK02_RECORD_LENGTH + MAX_PAD + 8;

/** A decoded frame of the JK-PB bus. */
export type JkPbFrame =
  | { kind: 'reply'; address: number; register: number; record: Jk02Record }
  | { kind: 'record'; record: Jk02Record }
  | { kind: 'write-ack'; address: number; register: number; quantity: number }
  | { kind: 'write-request'; address: number; register: number; values: number[] }
  | { kind: 'read-request'; address: number; register: number; quantity: number }
  | { kind: 'read-response'; address: number; values: number[] }
  | { kind: 'exception'; address: number; functionCode: number; exceptionCode: number };

function hex(b: number, digits = 2): string {
  return b.toString(16).padStart(digits, '0').toUpperCase();
}

function checkAddress(address: number): void {
  if (!Number.isInteger(address) || address < 0 || address > JK_PB_MAX_ADDRESS) {
    throw new RangeError(`JK-PB address must be an integer 0–${JK_PB_MAX_ADDRESS}, got ${address}`);
  }
}

/** Append the CRC (low byte first). */
function withCrc(body: readonly number[]): Uint8Array {
  const out = new Uint8Array(body.length + 2);
  out.set(body, 0);
  const crc = crc16Modbus(out, 0, body.length);
  out[body.length] = crc & 0xff;
  out[body.length + 1] = crc >> 8;
  return out;
}

function crcOk(bytes: Uint8Array, at: number, length: number): boolean {
  const crc = crc16Modbus(bytes, at, at + length - 2);
  return bytes[at + length - 2] === (crc & 0xff) && bytes[at + length - 1] === crc >> 8;
}

/** FC 0x10 write of `values` (u16 each) from `register`. */
export function encodeWriteRequest(address: number, register: number, values: readonly number[]): Uint8Array {
  checkAddress(address);
  if (values.length < 1 || values.length > 123) throw new RangeError('an FC 0x10 write carries 1–123 registers');
  const body = [address, 0x10, (register >> 8) & 0xff, register & 0xff, 0, values.length, values.length * 2];
  for (const v of values) body.push((v >> 8) & 0xff, v & 0xff);
  return withCrc(body);
}

/** The trigger write that makes pack `address` send its status, settings or about record. */
export function encodeTriggerRequest(address: number, register: JkPbTriggerRegister): Uint8Array {
  return encodeWriteRequest(address, register, [0]);
}

/** FC 0x03 read of `quantity` holding registers (plain Modbus; values come back big-endian). */
export function encodeReadRequest(address: number, register: number, quantity: number): Uint8Array {
  checkAddress(address);
  if (quantity < 1 || quantity > 125) throw new RangeError('an FC 0x03 read asks for 1–125 registers');
  return withCrc([address, 0x03, (register >> 8) & 0xff, register & 0xff, 0, quantity]);
}

/** Device side: the FC 0x10 acknowledgement. */
export function encodeWriteAck(address: number, register: number, quantity: number): Uint8Array {
  checkAddress(address);
  return withCrc([address, 0x10, (register >> 8) & 0xff, register & 0xff, (quantity >> 8) & 0xff, quantity & 0xff]);
}

/**
 * Device side: everything a pack sends after a trigger: record, one zero byte, the acknowledgement, one
 * zero byte (the layout the captures in JKBMS-PB.md show).
 */
export function encodeTriggerReply(address: number, register: number, record: Uint8Array): Uint8Array {
  checkRecord(record);
  const ack = encodeWriteAck(address, register, 1);
  const out = new Uint8Array(JK02_RECORD_LENGTH + 1 + ack.length + 1);
  out.set(record, 0);
  out.set(ack, JK02_RECORD_LENGTH + 1);
  return out;
}

/** Device side: an FC 0x03 response with `values` (u16 each, big-endian). */
export function encodeReadResponse(address: number, values: readonly number[]): Uint8Array {
  checkAddress(address);
  if (values.length > 125) throw new RangeError('an FC 0x03 response carries at most 125 registers');
  const body = [address, 0x03, values.length * 2];
  for (const v of values) body.push((v >> 8) & 0xff, v & 0xff);
  return withCrc(body);
}

// ---- framing ---------------------------------------------------------------------------------------------

/** Options of {@link extractFrames}. */
export interface ExtractOptions {
  /**
   * The buffer is all there will be (a capture file, a test): a record at its very end is returned at once
   * instead of being kept while its acknowledgement might still arrive. The incremental framer leaves this
   * off, so a reply and its acknowledgement always come out as one frame whatever the chunking.
   */
  endOfInput?: boolean;
}

/** Result of scanning a byte buffer for frames. */
export type ExtractResult = FrameExtraction;

type Candidate = { state: 'valid'; length: number } | { state: 'incomplete' } | { state: 'no' };

const NO: Candidate = { state: 'no' };
const INCOMPLETE: Candidate = { state: 'incomplete' };

/** Modbus candidate lengths by function code, given what is in the buffer (undefined = cannot tell yet). */
function modbusLengths(buffer: Uint8Array, i: number): (number | undefined)[] | undefined {
  const fc = buffer[i + 1];
  switch (fc) {
    case 0x10: {
      // Acknowledgement (8) or request (9 + n, n = 2 × quantity, at most 246).
      const n = buffer[i + 6];
      const qty = i + 5 < buffer.length ? ((buffer[i + 4] as number) << 8) | (buffer[i + 5] as number) : undefined;
      const request =
        n === undefined || qty === undefined ? undefined : n === 2 * qty && n > 0 && n <= 246 ? 9 + n : -1;
      return [8, request];
    }
    case 0x03: {
      // Request (8) or response (5 + n, n even, at most 250).
      const n = buffer[i + 2];
      const response = n === undefined ? undefined : n % 2 === 0 && n <= 250 ? 5 + n : -1;
      return [8, response];
    }
    case 0x83:
    case 0x90:
      return [5];
    default:
      return undefined;
  }
}

function modbusCandidate(buffer: Uint8Array, i: number): Candidate {
  if ((buffer[i] as number) > JK_PB_MAX_ADDRESS) return NO;
  if (i + 1 >= buffer.length) return INCOMPLETE;
  const lengths = modbusLengths(buffer, i);
  if (lengths === undefined) return NO;
  let waiting = false;
  for (const length of lengths) {
    if (length === -1) continue;
    if (length === undefined || buffer.length - i < length) {
      waiting = true;
      continue;
    }
    if (crcOk(buffer, i, length)) return { state: 'valid', length };
  }
  return waiting ? INCOMPLETE : NO;
}

/**
 * After a valid record at `end - 300`: is an acknowledgement (after 0–2 zero bytes) there, possibly there
 * (not enough bytes yet), or not there?
 */
function ackAfter(buffer: Uint8Array, end: number): { state: 'found'; length: number } | { state: 'maybe' | 'none' } {
  let maybe = false;
  for (let pad = 0; pad <= MAX_PAD; pad++) {
    let padOk = true;
    for (let k = 0; k < pad; k++) {
      const b = buffer[end + k];
      if (b === undefined) break;
      if (b !== 0) padOk = false;
    }
    if (!padOk) continue;
    const at = end + pad;
    const left = buffer.length - at;
    if (left <= 0) {
      maybe = true;
      continue;
    }
    if ((buffer[at] as number) > JK_PB_MAX_ADDRESS) continue;
    if (left >= 2 && buffer[at + 1] !== 0x10) continue;
    if (left < 8) {
      maybe = true;
      continue;
    }
    if (crcOk(buffer, at, 8)) return { state: 'found', length: pad + 8 };
  }
  return { state: maybe ? 'maybe' : 'none' };
}

function candidateAt(buffer: Uint8Array, i: number): Candidate {
  if (buffer[i] === 0x55) {
    const left = buffer.length - i;
    const header = [0x55, 0xaa, 0xeb, 0x90];
    for (let k = 1; k < 4 && k < left; k++) if (buffer[i + k] !== header[k]) return NO;
    if (left < JK02_RECORD_LENGTH) return INCOMPLETE;
    return isValidRecordAt(buffer, i) ? { state: 'valid', length: JK02_RECORD_LENGTH } : NO;
  }
  return modbusCandidate(buffer, i);
}

function nextValidFrame(buffer: Uint8Array, from: number): number {
  for (let j = from; j < buffer.length; j++) {
    if (candidateAt(buffer, j).state === 'valid') return j;
  }
  return -1;
}

/**
 * Find frames in whatever arrived. Bytes that start no valid frame are skipped one at a time (resync); an
 * incomplete candidate is given up as soon as a later complete, valid frame is found, so a false start in
 * noise cannot hold back a reply that is already there. A record is returned together with the
 * acknowledgement behind it; while that acknowledgement may still be arriving, the record is kept back
 * (unless `endOfInput`).
 */
export function extractFrames(buffer: Uint8Array, opts: ExtractOptions = {}): ExtractResult {
  const frames: Uint8Array[] = [];
  let i = 0;
  let discarded = 0;
  while (i < buffer.length) {
    const c = candidateAt(buffer, i);
    if (c.state === 'no') {
      i++;
      discarded++;
      continue;
    }
    if (c.state === 'incomplete') {
      const next = nextValidFrame(buffer, i + 1);
      if (next < 0) break;
      discarded += next - i;
      i = next;
      continue;
    }
    let length = c.length;
    if (buffer[i] === 0x55) {
      const ack = ackAfter(buffer, i + length);
      if (ack.state === 'found') length += ack.length;
      else if (ack.state === 'maybe' && !opts.endOfInput) break;
    }
    frames.push(buffer.slice(i, i + length));
    i += length;
  }
  return { frames, rest: buffer.slice(i), discarded };
}

/**
 * Incremental framer for a JK-PB bus. The residue is at most one record plus its acknowledgement, or one
 * incomplete Modbus frame, so memory stays bounded.
 */
export class JkPbFramer extends IncrementalFramer {
  constructor() {
    super((buffer) => extractFrames(buffer));
  }
}

// ---- decoding ---------------------------------------------------------------------------------------------

function u16be(bytes: Uint8Array, at: number): number {
  return ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
}

function expectLength(raw: Uint8Array, length: number, what: string): void {
  if (raw.length < length) throw new FrameError('truncated', `${raw.length} bytes, ${what} has ${length}`);
  if (raw.length > length) throw new FrameError('bad-length', `${raw.length} bytes, ${what} has ${length}`);
}

function expectCrc(raw: Uint8Array): void {
  if (!crcOk(raw, 0, raw.length)) {
    const want = crc16Modbus(raw, 0, raw.length - 2);
    const got = (raw[raw.length - 2] as number) | ((raw[raw.length - 1] as number) << 8);
    throw new FrameError('bad-checksum', `CRC 0x${hex(got, 4)} != computed 0x${hex(want, 4)}`);
  }
}

function decodeModbus(raw: Uint8Array): JkPbFrame {
  if (raw.length < 2) throw new FrameError('truncated', `${raw.length} bytes, a Modbus frame has at least 5`);
  const address = raw[0] as number;
  if (address > JK_PB_MAX_ADDRESS) {
    throw new FrameError('bad-header', `first byte 0x${hex(address)} is neither 55 (record) nor an address 0–15`);
  }
  const fc = raw[1] as number;
  switch (fc) {
    case 0x10: {
      if (raw.length === 8) {
        expectCrc(raw);
        return { kind: 'write-ack', address, register: u16be(raw, 2), quantity: u16be(raw, 4) };
      }
      if (raw.length < 9) throw new FrameError('truncated', `${raw.length} bytes, an FC 0x10 frame has 8 or 9 + n`);
      const n = raw[6] as number;
      if (n !== 2 * u16be(raw, 4)) throw new FrameError('bad-length', `byte count ${n} for ${u16be(raw, 4)} registers`);
      expectLength(raw, 9 + n, 'this FC 0x10 request');
      expectCrc(raw);
      const values: number[] = [];
      for (let k = 0; k < n; k += 2) values.push(u16be(raw, 7 + k));
      return { kind: 'write-request', address, register: u16be(raw, 2), values };
    }
    case 0x03: {
      if (raw.length < 3) throw new FrameError('truncated', `${raw.length} bytes, an FC 0x03 frame has 8 or 5 + n`);
      const n = raw[2] as number;
      // A request is 8 bytes, a response 5 + n with n even, so 8 bytes is always a request.
      if (raw.length === 8) {
        expectCrc(raw);
        return { kind: 'read-request', address, register: u16be(raw, 2), quantity: u16be(raw, 4) };
      }
      if (n % 2 !== 0) throw new FrameError('bad-length', `odd byte count ${n} in an FC 0x03 response`);
      expectLength(raw, 5 + n, 'this FC 0x03 response');
      expectCrc(raw);
      const values: number[] = [];
      for (let k = 0; k < n; k += 2) values.push(u16be(raw, 3 + k));
      return { kind: 'read-response', address, values };
    }
    case 0x83:
    case 0x90:
      expectLength(raw, 5, 'a Modbus exception');
      expectCrc(raw);
      return { kind: 'exception', address, functionCode: fc & 0x7f, exceptionCode: raw[2] as number };
    default:
      throw new FrameError('bad-header', `function code 0x${hex(fc)} is not used on a JK-PB bus`);
  }
}

/**
 * Decode one frame as extractFrames returns it. Throws FrameError: 'truncated', 'bad-length',
 * 'bad-header', 'bad-checksum' (record sum or Modbus CRC).
 */
export function decodeFrame(raw: Uint8Array): JkPbFrame {
  if (raw.length > 0 && raw[0] === 0x55) {
    if (raw.length <= JK02_RECORD_LENGTH) return { kind: 'record', record: decodeRecord(raw) };
    const record = decodeRecord(raw.subarray(0, JK02_RECORD_LENGTH));
    const tail = raw.subarray(JK02_RECORD_LENGTH);
    const pad = tail.length - 8;
    if (pad < 0 || pad > MAX_PAD || tail.subarray(0, pad).some((b) => b !== 0)) {
      throw new FrameError('bad-length', `${tail.length} bytes after the record, expected 0–2 zero bytes and 8`);
    }
    const ack = decodeModbus(tail.subarray(pad));
    if (ack.kind !== 'write-ack')
      throw new FrameError('bad-header', 'the bytes after the record are not an FC 0x10 ack');
    return { kind: 'reply', address: ack.address, register: ack.register, record };
  }
  return decodeModbus(raw);
}

/** Device side: decode a request addressed to a pack (trigger writes and FC 0x03 reads). Throws FrameError. */
export function decodeRequest(raw: Uint8Array): Extract<JkPbFrame, { kind: 'write-request' | 'read-request' }> {
  const frame = decodeFrame(raw);
  if (frame.kind !== 'write-request' && frame.kind !== 'read-request') {
    throw new FrameError('unexpected-reply', `a ${frame.kind}, not a request`);
  }
  return frame;
}

/**
 * Is `raw` the reply of pack `address` to the trigger `register` (acknowledgement from that address for that
 * register, record of the matching type)? Never throws.
 */
export function isTriggerReply(raw: Uint8Array, address: number, register: JkPbTriggerRegister): boolean {
  if (raw.length <= JK02_RECORD_LENGTH || raw[0] !== 0x55) return false;
  try {
    const frame = decodeFrame(raw);
    return (
      frame.kind === 'reply' &&
      frame.address === address &&
      frame.register === register &&
      recordTypeByte(frame.record) === TRIGGER_RECORD_TYPE[register]
    );
  } catch {
    return false;
  }
}

function recordTypeByte(record: Jk02Record): number {
  switch (record.type) {
    case 'cell-info':
      return Jk02RecordType.cellInfo;
    case 'settings':
      return Jk02RecordType.settings;
    case 'device-info':
      return Jk02RecordType.deviceInfo;
  }
}

/** Does this family accept `frame` as a reply from a pack (a record, with or without its ack)? Never throws. */
export function probe(frame: Uint8Array): boolean {
  try {
    const f = decodeFrame(frame);
    return f.kind === 'reply' || f.kind === 'record';
  } catch {
    return false;
  }
}

// ---- snapshot ---------------------------------------------------------------------------------------------

/** The records of one pack, as far as they have been read. */
export interface JkPbReadings {
  status: Jk02CellInfo;
  settings?: Jk02Settings | undefined;
  about?: Jk02DeviceInfo | undefined;
}

/** One pack's records → snapshot. */
export function toSnapshot(readings: JkPbReadings, timestampMs: number): BatterySnapshot {
  const { status, settings, about } = readings;
  const capacity = status.capacityNominal > 0 ? status.capacityNominal : settings?.nominalCapacity;
  return {
    timestampMs,
    voltage: status.voltage,
    current: status.current,
    power: round(status.voltage * status.current, 2),
    soc: status.soc,
    soh: status.soh,
    capacityRemaining: status.capacityRemaining,
    ...(capacity !== undefined && capacity > 0 ? { capacityInstalled: capacity } : {}),
    cycles: status.cycles,
    cellVoltages: status.cellVoltages,
    cellCount: settings?.cellCount || status.cellVoltages.length,
    temperatures: status.temperatures.map((celsius, i) => ({ name: `T${i + 1}`, celsius })),
    mosTemperature: status.mosTemperature,
    chargeFet: status.chargeFet,
    dischargeFet: status.dischargeFet,
    protection: protectionFlags(status.alarms),
    identity: jk02Identity(about),
  };
}
