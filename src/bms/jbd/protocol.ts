/**
 * JBD / Xiaoxiang / Overkill Solar "smart BMS" protocol (UART, RS485 and BLE carry the same frames).
 * Pure: no I/O, no timers, no logging. Source: JBD "General Protocol V4" and the public captures in
 * syssi/esphome-jbd-bms (see test/fixtures/jbd/SOURCE.md); notes in docs/protocols/jbd.md.
 *
 * Request:  DD | op (A5 read, 5A write) | reg | len | data[len] | chk_hi chk_lo | 77
 * Response: DD | reg | status (00 ok, 80 error) | len | data[len] | chk_hi chk_lo | 77
 * chk = (0x10000 − Σ bytes[2 .. 3+len]) & 0xFFFF, big-endian. Frame length = len + 7.
 * Byte 1 (op / register) is not covered by the checksum. Write acks `DD reg 00 00 00 00 77` carry 0000,
 * which is simply the correct checksum of an empty OK reply, so no special case is needed.
 *
 * Register 0x03 "basic info" payload (big-endian):
 *   Off Len Field                 Scale
 *   0   2   pack voltage  u16     10 mV
 *   2   2   current       s16     10 mA, + = charging
 *   4   2   remaining cap u16     10 mAh
 *   6   2   nominal cap   u16     10 mAh
 *   8   2   cycles        u16
 *   10  2   production date       day = v & 0x1F, month = (v >> 5) & 0x0F, year = 2000 + (v >> 9)
 *   12  2   balance cells 1–16    bit0 = cell 1
 *   14  2   balance cells 17–32
 *   16  2   protection bits       see PROTECTION_BITS
 *   18  1   software version      0x80 = 8.0
 *   19  1   RSOC %
 *   20  1   FET status            bit0 charge, bit1 discharge
 *   21  1   cell count
 *   22  1   NTC count N
 *   23  2·N NTC                   0.1 K (°C = (v − 2731) / 10)
 *   …       trailing bytes of newer firmwares: ignored (parsing is length-driven)
 * Register 0x04: N × u16 mV cell voltages. Register 0x05: ASCII model string.
 */
import { ByteReader } from '../../bytes/byte-reader.js';
import { sumComplement16 } from '../../bytes/checksum.js';
import { type FrameExtraction, IncrementalFramer } from '../../bytes/framer.js';
import type { BatterySnapshot, ProtectionFlags } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import { round } from '../../domain/round.js';

/** Frame start byte. */
export const JBD_START = 0xdd;
/** Frame end byte. */
export const JBD_END = 0x77;
/** Request op: read a register. */
export const JBD_READ = 0xa5;
/** Request op: write a register. */
export const JBD_WRITE = 0x5a;

/** Register / command codes we use (protocols.md §1.2). */
export const JbdRegister = {
  enterFactory: 0x00,
  exitFactory: 0x01,
  basicInfo: 0x03,
  cellVoltages: 0x04,
  hardwareVersion: 0x05,
  errorCounters: 0xaa,
  mosfetControl: 0xe1,
} as const;

/** Smallest possible frame: DD reg status len chk chk 77. */
export const JBD_MIN_FRAME = 7;
/** Largest possible frame: len is one byte. */
export const JBD_MAX_FRAME = 255 + 7;

/** A checked response frame. */
export interface JbdFrame {
  readonly register: number;
  readonly status: number;
  readonly payload: Uint8Array;
}

/** Register 0x03 decoded into SI units (V, A + = charging, Ah, °C). */
export interface JbdBasicInfo {
  voltage: number;
  current: number;
  capacityRemaining: number;
  capacityNominal: number;
  cycles: number;
  productionDate: string | undefined;
  /** Balance flags, index 0 = cell 1, 32 entries (use the cell count to cut). */
  balanceBits: number;
  protectionBits: number;
  softwareVersion: string;
  soc: number;
  chargeFet: boolean;
  dischargeFet: boolean;
  cellCount: number;
  /** NTC temperatures, °C. */
  temperatures: number[];
}

/** Protection bit → snapshot flag (bits 14–15 reserved). */
export const PROTECTION_BITS: readonly (readonly [number, keyof ProtectionFlags])[] = [
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
];

function checksumOf(frame: Uint8Array, dataEnd: number): number {
  return sumComplement16(frame, 2, dataEnd);
}

function build(first: number, second: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + 7);
  out[0] = JBD_START;
  out[1] = first;
  out[2] = second;
  out[3] = data.length;
  out.set(data, 4);
  const chk = checksumOf(out, 4 + data.length);
  out[4 + data.length] = chk >> 8;
  out[5 + data.length] = chk & 0xff;
  out[6 + data.length] = JBD_END;
  return out;
}

/** `DD A5 <reg> 00 chk chk 77`. */
export function encodeReadRequest(register: number): Uint8Array {
  return build(JBD_READ, register & 0xff, new Uint8Array(0));
}

/** `DD 5A <reg> <len> data chk chk 77`. */
export function encodeWriteRequest(register: number, data: Uint8Array): Uint8Array {
  if (data.length > 255) throw new RangeError('JBD write data is at most 255 bytes');
  return build(JBD_WRITE, register & 0xff, data);
}

/** A response frame (device side: used by the simulator). */
export function encodeResponse(register: number, payload: Uint8Array, status = 0): Uint8Array {
  if (payload.length > 255) throw new RangeError('JBD payload is at most 255 bytes');
  return build(register & 0xff, status & 0xff, payload);
}

/** A decoded request (device side: used by the simulator). */
export interface JbdRequest {
  readonly op: number;
  readonly register: number;
  readonly data: Uint8Array;
}

/** Check framing, length and checksum of exactly one frame; returns its parts (no meaning applied). */
function checkFrame(raw: Uint8Array): { b1: number; b2: number; data: Uint8Array } {
  if (raw.length < JBD_MIN_FRAME) throw new FrameError('truncated', `${raw.length} bytes, a JBD frame has at least 7`);
  if (raw[0] !== JBD_START) throw new FrameError('bad-header', `starts with 0x${hex(raw[0] as number)}, expected 0xDD`);
  const len = raw[3] as number;
  if (raw.length < len + 7) throw new FrameError('truncated', `${raw.length} bytes, length byte says ${len + 7}`);
  // Bytes after the footer mean the caller cut the stream wrongly; accepting them would hide framing bugs.
  if (raw.length > len + 7) throw new FrameError('bad-length', `${raw.length} bytes, length byte says ${len + 7}`);
  if (raw[len + 6] !== JBD_END) {
    throw new FrameError('bad-footer', `byte ${len + 6} is 0x${hex(raw[len + 6] as number)}, expected 0x77`);
  }
  const got = storedChecksum(raw, len);
  const want = checksumOf(raw, 4 + len);
  if (got !== want) {
    throw new FrameError('bad-checksum', `checksum 0x${got.toString(16)} != computed 0x${want.toString(16)}`);
  }
  return { b1: raw[1] as number, b2: raw[2] as number, data: raw.subarray(4, 4 + len) };
}

function storedChecksum(frame: Uint8Array, len: number): number {
  return ((frame[len + 4] as number) << 8) | (frame[len + 5] as number);
}

/** Decode one complete response frame. Throws FrameError. */
export function decodeFrame(raw: Uint8Array): JbdFrame {
  const { b1, b2, data } = checkFrame(raw);
  if (b2 !== 0x00 && b2 !== 0x80) {
    throw new FrameError('bad-header', `status byte 0x${hex(b2)} is neither 0x00 nor 0x80 (a request?)`);
  }
  return { register: b1, status: b2, payload: data };
}

/** Decode one complete request frame (device side). Throws FrameError. */
export function decodeRequest(raw: Uint8Array): JbdRequest {
  const { b1, b2, data } = checkFrame(raw);
  if (b1 !== JBD_READ && b1 !== JBD_WRITE) throw new FrameError('bad-header', `op 0x${hex(b1)} is not a request`);
  return { op: b1, register: b2, data };
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0').toUpperCase();
}

/** Result of scanning a byte buffer for frames. */
export type ExtractResult = FrameExtraction;

/**
 * Find frames in whatever arrived. Resynchronises on garbage: a 0xDD whose length byte does not lead to a
 * 0x77 footer with a valid checksum is skipped and the search continues at the next 0xDD.
 *
 * A stray 0xDD in line noise can announce up to 262 bytes. Waiting for them would hold back a real reply
 * that already sits complete behind it (request/response links then time out), so an incomplete candidate
 * is given up as soon as a later 0xDD starts a complete, valid frame.
 */
export function extractFrames(buffer: Uint8Array): ExtractResult {
  const frames: Uint8Array[] = [];
  let i = 0;
  let discarded = 0;
  while (i < buffer.length) {
    if (buffer[i] !== JBD_START) {
      i++;
      discarded++;
      continue;
    }
    if (!isComplete(buffer, i)) {
      const next = nextValidFrame(buffer, i + 1);
      if (next < 0) break; // wait for the rest
      discarded += next - i;
      i = next;
      continue;
    }
    const total = (buffer[i + 3] as number) + 7;
    if (isValidAt(buffer, i)) {
      frames.push(buffer.slice(i, i + total));
      i += total;
    } else {
      i++;
      discarded++;
    }
  }
  return { frames, rest: buffer.slice(i), discarded };
}

/** Enough bytes at `i` (a 0xDD) for the frame its length byte announces. */
function isComplete(buffer: Uint8Array, i: number): boolean {
  return buffer.length - i >= 4 && buffer.length - i >= (buffer[i + 3] as number) + 7;
}

/** A complete frame at `i` (a 0xDD) with footer and checksum right. */
function isValidAt(buffer: Uint8Array, i: number): boolean {
  const len = buffer[i + 3] as number;
  const frame = buffer.subarray(i, i + len + 7);
  return frame[len + 6] === JBD_END && storedChecksum(frame, len) === checksumOf(frame, 4 + len);
}

/** Index of the first 0xDD at or after `from` that starts a complete, valid frame; −1 if none. */
function nextValidFrame(buffer: Uint8Array, from: number): number {
  for (let j = from; j < buffer.length; j++) {
    if (buffer[j] === JBD_START && isComplete(buffer, j) && isValidAt(buffer, j)) return j;
  }
  return -1;
}

/**
 * Incremental framer: push chunks (UART reads, BLE notifications of any size), get complete frames.
 * Memory stays bounded without a cap: extractFrames only keeps bytes from a 0xDD whose announced frame
 * (at most JBD_MAX_FRAME bytes) is still incomplete, so the residue is always shorter than JBD_MAX_FRAME.
 */
export class JbdFramer extends IncrementalFramer {
  constructor() {
    super((buffer) => extractFrames(buffer));
  }
}

/**
 * The payload of a reply to `register`. Throws FrameError 'unexpected-reply' for a reply to another register
 * (a late answer to an earlier request) and 'bms-error' when the BMS set status 0x80.
 */
export function requirePayload(frame: JbdFrame, register: number): Uint8Array {
  if (frame.register !== register) {
    throw new FrameError('unexpected-reply', `reply to register 0x${hex(frame.register)}, expected 0x${hex(register)}`);
  }
  if (frame.status !== 0) throw new FrameError('bms-error', `BMS answered register 0x${hex(register)} with an error`);
  return frame.payload;
}

/** Production date word → ISO date, or undefined when the fields are out of range. */
export function decodeProductionDate(v: number): string | undefined {
  const day = v & 0x1f;
  const month = (v >> 5) & 0x0f;
  const year = 2000 + (v >> 9);
  if (day < 1 || month < 1 || month > 12) return undefined;
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** Register 0x03 payload. Length-driven: trailing bytes after the NTCs are ignored. Throws FrameError. */
export function decodeBasicInfo(payload: Uint8Array): JbdBasicInfo {
  const r = new ByteReader(payload);
  const ntcCount = r.u8(22);
  const temperatures: number[] = [];
  for (let i = 0; i < ntcCount; i++) temperatures.push(round((r.u16be(23 + 2 * i) - 2731) / 10, 1));
  const sw = r.u8(18);
  const fet = r.u8(20);
  return {
    voltage: round(r.u16be(0) / 100, 2),
    current: round(r.s16be(2) / 100, 2),
    capacityRemaining: round(r.u16be(4) / 100, 2),
    capacityNominal: round(r.u16be(6) / 100, 2),
    cycles: r.u16be(8),
    productionDate: decodeProductionDate(r.u16be(10)),
    balanceBits: (r.u16be(12) | (r.u16be(14) << 16)) >>> 0,
    protectionBits: r.u16be(16),
    softwareVersion: `${sw >> 4}.${sw & 0x0f}`,
    soc: r.u8(19),
    chargeFet: (fet & 0x01) !== 0,
    dischargeFet: (fet & 0x02) !== 0,
    cellCount: r.u8(21),
    temperatures,
  };
}

/** Register 0x04 payload: u16 BE mV per cell. Throws FrameError on an odd length. */
export function decodeCellVoltages(payload: Uint8Array): number[] {
  if (payload.length % 2 !== 0) throw new FrameError('bad-length', `cell payload has odd length ${payload.length}`);
  const r = new ByteReader(payload);
  const cells: number[] = [];
  for (let i = 0; i < payload.length; i += 2) cells.push(r.u16be(i) / 1000);
  return cells;
}

/** Register 0xAA: lifetime protection-event counters (what the Xiaoxiang app shows as "error counts"). */
export interface JbdErrorCounters {
  shortCircuit: number;
  chargeOverCurrent: number;
  dischargeOverCurrent: number;
  cellOverVoltage: number;
  cellUnderVoltage: number;
  chargeOverTemperature: number;
  chargeUnderTemperature: number;
  dischargeOverTemperature: number;
  dischargeUnderTemperature: number;
  packOverVoltage: number;
  packUnderVoltage: number;
}

const ERROR_COUNTER_ORDER: readonly (keyof JbdErrorCounters)[] = [
  'shortCircuit',
  'chargeOverCurrent',
  'dischargeOverCurrent',
  'cellOverVoltage',
  'cellUnderVoltage',
  'chargeOverTemperature',
  'chargeUnderTemperature',
  'dischargeOverTemperature',
  'dischargeUnderTemperature',
  'packOverVoltage',
  'packUnderVoltage',
];

/**
 * Register 0xAA payload: 11 × u16 counters. Devices send 24 bytes; the 12th word has no documented meaning
 * (both captures show 1) and is ignored. Throws FrameError('truncated') below 22 bytes.
 */
export function decodeErrorCounters(payload: Uint8Array): JbdErrorCounters {
  const r = new ByteReader(payload);
  const out = {} as JbdErrorCounters;
  ERROR_COUNTER_ORDER.forEach((name, i) => {
    out[name] = r.u16be(2 * i);
  });
  return out;
}

/** Register 0x05 payload: ASCII model string. */
export function decodeHardwareVersion(payload: Uint8Array): string {
  return new ByteReader(payload).ascii(0, payload.length);
}

/** Protection word (0x03 offset 16) → snapshot flags; bit 13 and the reserved bits are not mapped. */
export function protectionFlags(bits: number): ProtectionFlags {
  const flags: ProtectionFlags = {};
  for (const [bit, name] of PROTECTION_BITS) flags[name] = (bits & (1 << bit)) !== 0;
  return flags;
}

/** Decoded replies of one poll cycle. */
export interface JbdReadings {
  basic: JbdBasicInfo;
  cells?: number[] | undefined;
  model?: string | undefined;
}

/** Combine one poll cycle's replies into a snapshot. */
export function toSnapshot(readings: JbdReadings, timestampMs: number): BatterySnapshot {
  const { basic, cells, model } = readings;
  const cellCount = basic.cellCount;
  const cellVoltages = cells !== undefined && cells.length > 0 ? cells.slice(0, cellCount || cells.length) : undefined;
  const balancing: boolean[] = [];
  const n = cellVoltages?.length ?? cellCount;
  for (let i = 0; i < n; i++) balancing.push((basic.balanceBits & (2 ** i)) !== 0);
  return {
    timestampMs,
    voltage: basic.voltage,
    current: basic.current,
    power: round(basic.voltage * basic.current, 2),
    soc: basic.soc,
    capacityRemaining: basic.capacityRemaining,
    capacityInstalled: basic.capacityNominal,
    cycles: basic.cycles,
    cellCount,
    ...(cellVoltages !== undefined ? { cellVoltages } : {}),
    balancing,
    temperatures: basic.temperatures.map((celsius, i) => ({ name: `T${i + 1}`, celsius })),
    chargeFet: basic.chargeFet,
    dischargeFet: basic.dischargeFet,
    protection: protectionFlags(basic.protectionBits),
    identity: {
      manufacturer: 'JBD',
      ...(model ? { model } : {}),
      firmware: basic.softwareVersion,
      ...(basic.productionDate ? { productionDate: basic.productionDate } : {}),
    },
  };
}

/** Device side: build a 0x03 payload (the simulator uses this; tests never use it as ground truth). */
export function encodeBasicInfo(b: JbdBasicInfo): Uint8Array {
  const out = new Uint8Array(23 + 2 * b.temperatures.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, clampU16(Math.round(b.voltage * 100)));
  v.setInt16(2, Math.max(-32768, Math.min(32767, Math.round(b.current * 100))));
  v.setUint16(4, clampU16(Math.round(b.capacityRemaining * 100)));
  v.setUint16(6, clampU16(Math.round(b.capacityNominal * 100)));
  v.setUint16(8, clampU16(b.cycles));
  v.setUint16(10, encodeProductionDate(b.productionDate));
  v.setUint16(12, b.balanceBits & 0xffff);
  v.setUint16(14, (b.balanceBits >>> 16) & 0xffff);
  v.setUint16(16, b.protectionBits & 0xffff);
  const [maj = '0', min = '0'] = b.softwareVersion.split('.');
  out[18] = ((Number(maj) & 0x0f) << 4) | (Number(min) & 0x0f);
  out[19] = Math.max(0, Math.min(100, Math.round(b.soc)));
  out[20] = (b.chargeFet ? 1 : 0) | (b.dischargeFet ? 2 : 0);
  out[21] = b.cellCount;
  out[22] = b.temperatures.length;
  b.temperatures.forEach((t, i) => {
    v.setUint16(23 + 2 * i, clampU16(Math.round(t * 10 + 2731)));
  });
  return out;
}

/** Device side: build a 0x04 payload. */
export function encodeCellVoltages(cells: readonly number[]): Uint8Array {
  const out = new Uint8Array(cells.length * 2);
  const v = new DataView(out.buffer);
  cells.forEach((c, i) => {
    v.setUint16(i * 2, clampU16(Math.round(c * 1000)));
  });
  return out;
}

/** Device side: build a 0x05 payload. */
export function encodeHardwareVersion(model: string): Uint8Array {
  const out = new Uint8Array(Math.min(model.length, 31));
  for (let i = 0; i < out.length; i++) out[i] = model.charCodeAt(i) & 0x7f;
  return out;
}

function encodeProductionDate(iso: string | undefined): number {
  const m = iso ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso) : null;
  if (!m) return 0;
  return (((Number(m[1]) - 2000) & 0x7f) << 9) | ((Number(m[2]) & 0x0f) << 5) | (Number(m[3]) & 0x1f);
}

function clampU16(v: number): number {
  return Math.max(0, Math.min(0xffff, v));
}
