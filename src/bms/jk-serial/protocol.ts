/**
 * JK BMS serial "GPS / TTL port" protocol (frames start `4E 57`), spoken by the older JK-B… boards at
 * 115200 Bd 8N1. Pure: no I/O, no timers, no logging. Sources: the JK "RS485/TTL communication protocol"
 * register list as documented in syssi/esphome-jk-bms docs/protocol-design-uart-ttl-gps-port.md, and the
 * two real captures in test/fixtures/jk/ (see its SOURCE.md); notes in docs/protocols/jk.md.
 *
 * Frame (offsets from the first byte; multi-byte values big-endian):
 *   Off     Len Field
 *   0       2   start `4E 57`
 *   2       2   length = total frame bytes − 2 (it counts itself, not the start)
 *   4       4   BMS terminal number (0)
 *   8       1   command: 01 activate, 02 write, 03 read one, 05 password, 06 read all
 *   9       1   source: 0 BMS, 1 Bluetooth, 2 GPS, 3 PC
 *   10      1   frame type: 0 request, 1 reply, 2 BMS-initiated upload
 *   11      n   data: request → register id (00 = all) [+ value]; reply → TLV stream (below)
 *   T−9     4   record number
 *   T−5     1   end marker `68`
 *   T−4     4   checksum: `00 00` + u16 sum of bytes 0 … T−5 (the end marker included)
 *
 * Reply data is a stream of records `<id> <value>` whose value length is fixed per id (REGISTER_LENGTHS);
 * 0x79 (cells) alone is variable: `79 <n> (idx mV_hi mV_lo)×(n/3)`. Field sets differ between firmwares,
 * so we walk the stream and never use fixed offsets. Ids we use:
 *   Id   Len Field                      Decode
 *   79   1+n cell voltages              triplets idx, u16 mV
 *   80   2   MOSFET temperature         °C; 0–100 as is, 101–140 are −1…−40 (v > 100 → −(v − 100))
 *   81   2   temperature 1 (box)        same
 *   82   2   temperature 2 (battery)    same
 *   83   2   pack voltage               10 mV
 *   84   2   current                    C0 = 1: 10 mA, bit 15 set = charging, clear = discharging;
 *                                       C0 = 0 (or absent): (10000 − v) × 10 mA, + = charging
 *   85   1   SoC %                      87  2 cycles        89  4 total cycle capacity, Ah
 *   86   1   temperature sensor count   8A  2 cell count
 *   8B   2   warning bits (WARNING_BITS) 8C 2 status: bit0 charge FET, bit1 discharge FET, bit2 balancer
 *   AA   4   nominal capacity, Ah       AB/AC 1 charge / discharge switch
 *   B4   8   device id (ASCII)          B5  4 production date, ASCII YYMM
 *   B6   4   running time, minutes      B7 15 software version, ASCII `<hw>_S<sw>` padded with `_`
 *   B9   4   actual capacity, Ah        BA 24 manufacturer id (ASCII)
 *   C0   1   protocol version (changes the meaning of 0x84)
 * Every other id in REGISTER_LENGTHS is a protection setting or switch, kept raw in `settings`.
 */
import { ByteReader } from '../../bytes/byte-reader.js';
import { byteSum } from '../../bytes/checksum.js';
import { type FrameExtraction, IncrementalFramer } from '../../bytes/framer.js';
import type { BatterySnapshot, ProtectionFlags } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import { round } from '../../domain/round.js';

/** First two bytes of every frame. */
export const JK_SERIAL_START = Uint8Array.of(0x4e, 0x57);
/** End marker, five bytes before the end. */
export const JK_SERIAL_END = 0x68;
/** Smallest frame: header, command, source, type, record number, end marker, checksum (no data). */
export const JK_SERIAL_MIN_FRAME = 20;
/**
 * Largest frame we accept. A 32-cell read-all reply is about 340 bytes; the length field could say 65 537,
 * and a stray `4E 57` in line noise must not make the framer wait for that much.
 */
export const JK_SERIAL_MAX_FRAME = 512;

/** Command byte (frame offset 8). */
export const JkSerialCommand = {
  activate: 0x01,
  write: 0x02,
  read: 0x03,
  password: 0x05,
  readAll: 0x06,
} as const;

/** Source byte (frame offset 9). */
export const JkSerialSource = { bms: 0, bluetooth: 1, gps: 2, pc: 3 } as const;

/** Frame type byte (frame offset 10). */
export const JkSerialFrameType = { request: 0, reply: 1, upload: 2 } as const;

/**
 * Value length of each register id in a reply's TLV stream (0x79 is variable and handled apart).
 * From the vendor register list; 0xAD and 0xB0 are two bytes as both real captures show.
 */
export const REGISTER_LENGTHS: ReadonlyMap<number, number> = new Map([
  [0x80, 2],
  [0x81, 2],
  [0x82, 2],
  [0x83, 2],
  [0x84, 2],
  [0x85, 1],
  [0x86, 1],
  [0x87, 2],
  [0x89, 4],
  [0x8a, 2],
  [0x8b, 2],
  [0x8c, 2],
  ...range(0x8e, 0x9c).map((id) => [id, 2] as [number, number]),
  [0x9d, 1],
  ...range(0x9e, 0xa8).map((id) => [id, 2] as [number, number]),
  [0xa9, 1],
  [0xaa, 4],
  [0xab, 1],
  [0xac, 1],
  [0xad, 2],
  [0xae, 1],
  [0xaf, 1],
  [0xb0, 2],
  [0xb1, 1],
  [0xb2, 10],
  [0xb3, 1],
  [0xb4, 8],
  [0xb5, 4],
  [0xb6, 4],
  [0xb7, 15],
  [0xb8, 1],
  [0xb9, 4],
  [0xba, 24],
  [0xbb, 1],
  [0xbc, 1],
  [0xbd, 1],
  [0xbe, 2],
  [0xbf, 2],
  [0xc0, 1],
]);

/** Settings the vendor list marks as signed °C (charge / discharge low-temperature protection and recovery). */
const SIGNED_SETTINGS: ReadonlySet<number> = new Set([0xa5, 0xa6, 0xa7, 0xa8]);

/** Warning word (0x8B) bits → snapshot flags. Bits 0 (low capacity), 1 (MOSFET over-temperature), 7 (cell
 * difference), 8 (box over-temperature) and 12–13 ("309_A/B") have no snapshot flag: the MOSFET temperature
 * and the cell voltages are published themselves, and the alarm logic judges those. */
export const WARNING_BITS: readonly (readonly [number, readonly (keyof ProtectionFlags)[]])[] = [
  [2, ['packOverVoltage']],
  [3, ['packUnderVoltage']],
  [4, ['chargeOverTemperature', 'dischargeOverTemperature']],
  [5, ['chargeOverCurrent']],
  [6, ['dischargeOverCurrent']],
  [9, ['chargeUnderTemperature', 'dischargeUnderTemperature']],
  [10, ['cellOverVoltage']],
  [11, ['cellUnderVoltage']],
];

/** A frame whose framing, length, end marker and checksum are right (no meaning applied). */
export interface JkSerialFrame {
  readonly terminal: number;
  readonly command: number;
  readonly source: number;
  readonly frameType: number;
  /** Bytes between the frame type and the record number. */
  readonly data: Uint8Array;
  readonly recordNumber: number;
}

/** The read-all reply in SI units. Fields the reply did not carry are undefined. */
export interface JkSerialStatus {
  /** Cell voltages, V (1 mV), cell 1 first. */
  cellVoltages: number[];
  /** MOSFET temperature, °C. */
  mosTemperature?: number | undefined;
  /** 0x81 (box) and 0x82 (battery) temperatures, °C, in that order, those present. */
  temperatures: number[];
  /** Pack voltage, V. */
  voltage?: number | undefined;
  /** Current, A, + = charging (already corrected for the protocol version). */
  current?: number | undefined;
  soc?: number | undefined;
  temperatureSensorCount?: number | undefined;
  cycles?: number | undefined;
  /** Charge throughput, Ah. */
  totalCycleCapacity?: number | undefined;
  cellCount?: number | undefined;
  /** Warning bits (0x8B), see WARNING_BITS. */
  warnings?: number | undefined;
  /** Status bits (0x8C): bit0 charge FET on, bit1 discharge FET on, bit2 balancer on. */
  status?: number | undefined;
  /** Nominal capacity setting, Ah. */
  capacity?: number | undefined;
  /** Actual capacity, Ah (0 on boards that do not learn it). */
  actualCapacity?: number | undefined;
  chargeSwitch?: boolean | undefined;
  dischargeSwitch?: boolean | undefined;
  deviceId?: string | undefined;
  /** As sent: ASCII `YYMM`. */
  productionDate?: string | undefined;
  runtimeMinutes?: number | undefined;
  /** As sent, without the `_` padding, e.g. `10.XW_S10.07`. */
  softwareVersion?: string | undefined;
  manufacturerId?: string | undefined;
  protocolVersion?: number | undefined;
  /** Every other register id → raw value (unsigned, except the signed °C settings 0xA5–0xA8). */
  settings: Record<number, number>;
}

/** Sum over bytes 0 … end-marker, low 16 bits (what the last two bytes carry). */
function checksumOf(frame: Uint8Array, total: number): number {
  return byteSum(frame, 0, total - 4) & 0xffff;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0').toUpperCase();
}

/** Check framing, length, end marker and checksum of exactly one frame. Throws FrameError. */
export function decodeFrame(raw: Uint8Array): JkSerialFrame {
  if (raw.length < 4) throw new FrameError('truncated', `${raw.length} bytes, a JK serial frame has at least 20`);
  if (raw[0] !== 0x4e || raw[1] !== 0x57) {
    throw new FrameError('bad-header', `starts with ${hex(raw[0] as number)} ${hex(raw[1] as number)}, expected 4E 57`);
  }
  const total = ((raw[2] as number) << 8) + (raw[3] as number) + 2;
  if (total < JK_SERIAL_MIN_FRAME || total > JK_SERIAL_MAX_FRAME) {
    throw new FrameError('bad-length', `length field announces ${total} bytes, outside 20–${JK_SERIAL_MAX_FRAME}`);
  }
  if (raw.length < total) throw new FrameError('truncated', `${raw.length} bytes, length field says ${total}`);
  if (raw.length > total) throw new FrameError('bad-length', `${raw.length} bytes, length field says ${total}`);
  if (raw[total - 5] !== JK_SERIAL_END) {
    throw new FrameError('bad-footer', `byte ${total - 5} is ${hex(raw[total - 5] as number)}, expected 68`);
  }
  const r = new ByteReader(raw);
  const got = r.u16be(total - 2);
  const want = checksumOf(raw, total);
  if (got !== want) {
    throw new FrameError('bad-checksum', `checksum 0x${got.toString(16)} != computed 0x${want.toString(16)}`);
  }
  return {
    terminal: r.u32be(4),
    command: r.u8(8),
    source: r.u8(9),
    frameType: r.u8(10),
    data: raw.subarray(11, total - 9),
    recordNumber: r.u32be(total - 9),
  };
}

/** Build a frame around `data` (both directions use this). */
export function encodeFrame(parts: {
  command: number;
  source: number;
  frameType: number;
  data: Uint8Array;
  terminal?: number;
  recordNumber?: number;
}): Uint8Array {
  const total = parts.data.length + 20;
  if (total > JK_SERIAL_MAX_FRAME) throw new RangeError(`a JK serial frame is at most ${JK_SERIAL_MAX_FRAME} bytes`);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out.set(JK_SERIAL_START, 0);
  v.setUint16(2, total - 2);
  v.setUint32(4, (parts.terminal ?? 0) >>> 0);
  out[8] = parts.command & 0xff;
  out[9] = parts.source & 0xff;
  out[10] = parts.frameType & 0xff;
  out.set(parts.data, 11);
  v.setUint32(total - 9, (parts.recordNumber ?? 0) >>> 0);
  out[total - 5] = JK_SERIAL_END;
  v.setUint16(total - 2, checksumOf(out, total));
  return out;
}

/** The "read all" request a PC sends (`4E 57 00 13 … 06 03 00 00 … 68 00 00 01 29`). */
export function encodeReadAllRequest(): Uint8Array {
  return encodeFrame({
    command: JkSerialCommand.readAll,
    source: JkSerialSource.pc,
    frameType: JkSerialFrameType.request,
    data: Uint8Array.of(0x00),
  });
}

/** Is this a request frame (device side: the simulator answers these)? Throws FrameError on a broken frame. */
export function decodeRequest(raw: Uint8Array): JkSerialFrame {
  const frame = decodeFrame(raw);
  if (frame.frameType !== JkSerialFrameType.request) {
    throw new FrameError('unexpected-reply', `frame type ${frame.frameType} is not a request`);
  }
  return frame;
}

/** Result of scanning a byte buffer for frames. */
export type ExtractResult = FrameExtraction;

/**
 * Find frames in whatever arrived. A `4E 57` whose length field is out of range, or whose announced frame
 * lacks the end marker or a right checksum, is skipped and the search goes on at the next byte. As with JBD,
 * an incomplete candidate is given up as soon as a later `4E 57` starts a complete, valid frame, so a stray
 * start in line noise cannot hold back a reply that is already there.
 */
export function extractFrames(buffer: Uint8Array): ExtractResult {
  const frames: Uint8Array[] = [];
  let i = 0;
  let discarded = 0;
  while (i < buffer.length) {
    const state = candidateAt(buffer, i);
    if (state === 'no') {
      i++;
      discarded++;
      continue;
    }
    if (state === 'incomplete') {
      const next = nextValidFrame(buffer, i + 1);
      if (next < 0) break;
      discarded += next - i;
      i = next;
      continue;
    }
    const total = totalAt(buffer, i);
    frames.push(buffer.slice(i, i + total));
    i += total;
  }
  return { frames, rest: buffer.slice(i), discarded };
}

function totalAt(buffer: Uint8Array, i: number): number {
  return ((buffer[i + 2] as number) << 8) + (buffer[i + 3] as number) + 2;
}

/** What starts at `i`: a complete valid frame, a frame still arriving, or nothing. */
function candidateAt(buffer: Uint8Array, i: number): 'valid' | 'incomplete' | 'no' {
  if (buffer[i] !== 0x4e) return 'no';
  const left = buffer.length - i;
  if (left < 2) return 'incomplete';
  if (buffer[i + 1] !== 0x57) return 'no';
  if (left < 4) return 'incomplete';
  const total = totalAt(buffer, i);
  if (total < JK_SERIAL_MIN_FRAME || total > JK_SERIAL_MAX_FRAME) return 'no';
  if (left < total) return 'incomplete';
  if (buffer[i + total - 5] !== JK_SERIAL_END) return 'no';
  const frame = buffer.subarray(i, i + total);
  const stored = ((frame[total - 2] as number) << 8) | (frame[total - 1] as number);
  return stored === checksumOf(frame, total) ? 'valid' : 'no';
}

function nextValidFrame(buffer: Uint8Array, from: number): number {
  for (let j = from; j < buffer.length; j++) {
    if (buffer[j] === 0x4e && candidateAt(buffer, j) === 'valid') return j;
  }
  return -1;
}

/**
 * Incremental framer: push chunks, get complete frames. The residue is always shorter than one maximal frame
 * (only an incomplete candidate is kept), so memory stays bounded without a cap.
 */
export class JkSerialFramer extends IncrementalFramer {
  constructor() {
    super((buffer) => extractFrames(buffer));
  }
}

/** JK temperature byte pair: 0–100 °C as is, above 100 the excess is below zero (101 = −1 °C). */
export function decodeTemperature(raw: number): number {
  return raw > 100 ? -(raw - 100) : raw;
}

/** Inverse of decodeTemperature (device side), clamped to the documented −40…100 °C. */
export function encodeTemperature(celsius: number): number {
  const t = Math.round(Math.max(-40, Math.min(100, celsius)));
  return t < 0 ? 100 - t : t;
}

/** Current register → A, + = charging. */
export function decodeCurrent(raw: number, protocolVersion: number): number {
  let centiAmps: number;
  if (protocolVersion === 1) {
    const magnitude = raw & 0x7fff;
    centiAmps = (raw & 0x8000) !== 0 ? magnitude : -magnitude;
  } else {
    centiAmps = 10000 - raw;
  }
  // 0 − 0 is −0 in JS; a reading of "no current" must compare equal to 0 everywhere.
  return centiAmps === 0 ? 0 : centiAmps / 100;
}

/** Inverse of decodeCurrent (device side), clamped to what the register can carry. */
export function encodeCurrent(amps: number, protocolVersion: number): number {
  const centi = Math.round(amps * 100);
  if (protocolVersion === 1) {
    const magnitude = Math.min(0x7fff, Math.abs(centi));
    return centi > 0 ? 0x8000 | magnitude : magnitude;
  }
  return Math.max(0, Math.min(0xffff, 10000 - centi));
}

/**
 * Walk the TLV stream of a read-all reply. Throws FrameError 'truncated' when a value runs past the data,
 * 'invalid-value' on an id with no known length (the rest of the stream cannot be walked past it).
 */
export function decodeStatusData(data: Uint8Array): JkSerialStatus {
  const r = new ByteReader(data);
  const out: JkSerialStatus = { cellVoltages: [], temperatures: [], settings: {} };
  const cells: [number, number][] = [];
  let currentRaw: number | undefined;
  let t1: number | undefined;
  let t2: number | undefined;
  let i = 0;
  while (i < data.length) {
    const id = r.u8(i);
    if (id === 0x79) {
      const n = r.u8(i + 1);
      if (n % 3 !== 0) throw new FrameError('invalid-value', `cell block length ${n} is not a multiple of 3`);
      for (let k = 0; k < n; k += 3) cells.push([r.u8(i + 2 + k), r.u16be(i + 3 + k) / 1000]);
      i += 2 + n;
      continue;
    }
    const len = REGISTER_LENGTHS.get(id);
    if (len === undefined) {
      throw new FrameError('invalid-value', `unknown register id 0x${hex(id)} at data offset ${i}`);
    }
    const at = i + 1;
    // Reads are bounds-checked: a value cut short by the end of the data throws 'truncated'.
    const u = len === 1 ? r.u8(at) : len === 2 ? r.u16be(at) : len === 4 ? r.u32be(at) : 0;
    switch (id) {
      case 0x80:
        out.mosTemperature = decodeTemperature(u);
        break;
      case 0x81:
        t1 = decodeTemperature(u);
        break;
      case 0x82:
        t2 = decodeTemperature(u);
        break;
      case 0x83:
        out.voltage = u / 100;
        break;
      case 0x84:
        currentRaw = u;
        break;
      case 0x85:
        out.soc = u;
        break;
      case 0x86:
        out.temperatureSensorCount = u;
        break;
      case 0x87:
        out.cycles = u;
        break;
      case 0x89:
        out.totalCycleCapacity = u;
        break;
      case 0x8a:
        out.cellCount = u;
        break;
      case 0x8b:
        out.warnings = u;
        break;
      case 0x8c:
        out.status = u;
        break;
      case 0xaa:
        out.capacity = u;
        break;
      case 0xab:
        out.chargeSwitch = u !== 0;
        break;
      case 0xac:
        out.dischargeSwitch = u !== 0;
        break;
      case 0xb4:
        out.deviceId = r.ascii(at, len);
        break;
      case 0xb5:
        out.productionDate = r.ascii(at, len);
        break;
      case 0xb6:
        out.runtimeMinutes = u;
        break;
      case 0xb7:
        out.softwareVersion = r.ascii(at, len).replace(/_+$/, '');
        break;
      case 0xb9:
        out.actualCapacity = u;
        break;
      case 0xba:
        out.manufacturerId = r.ascii(at, len);
        break;
      case 0xc0:
        out.protocolVersion = u;
        break;
      case 0xb2:
        // The parameter password: read past it, never keep it.
        r.slice(at, len);
        break;
      default:
        // Every id longer than four bytes has its own case above, so `u` holds the whole value here.
        out.settings[id] = SIGNED_SETTINGS.has(id) && u >= 0x8000 ? u - 0x10000 : u;
    }
    i = at + len;
  }
  cells.sort((a, b) => a[0] - b[0]);
  out.cellVoltages = cells.map(([, v]) => v);
  if (t1 !== undefined) out.temperatures.push(t1);
  if (t2 !== undefined) out.temperatures.push(t2);
  // 0xC0 comes after 0x84 in the stream, so the current is resolved once the whole stream is read.
  // A board without 0xC0 predates the redefinition of 0x84: version 0.
  if (currentRaw !== undefined) out.current = decodeCurrent(currentRaw, out.protocolVersion ?? 0);
  return out;
}

/**
 * Decode a reply to "read all" (or a BMS upload of the same data). Throws FrameError: framing errors as in
 * decodeFrame, 'unexpected-reply' for a request frame (an RS485 echo of our own request) or another command.
 */
export function decodeReadAllReply(raw: Uint8Array): JkSerialStatus {
  const frame = decodeFrame(raw);
  if (frame.frameType === JkSerialFrameType.request) {
    throw new FrameError('unexpected-reply', 'a request frame (our own echo?), not a reply');
  }
  if (frame.command !== JkSerialCommand.readAll) {
    throw new FrameError('unexpected-reply', `reply to command 0x${hex(frame.command)}, expected 0x06 (read all)`);
  }
  return decodeStatusData(frame.data);
}

/** Does this family accept `frame` as a reply? Never throws. */
export function probe(frame: Uint8Array): boolean {
  try {
    decodeReadAllReply(frame);
    return true;
  } catch {
    return false;
  }
}

/** `10.XW_S10.07` → hardware `10.XW`, software `10.07`; a string without `_S` is all software. */
export function splitVersion(version: string): { hardware?: string; software: string } {
  const at = version.indexOf('_S');
  if (at < 0) return { software: version };
  const hardware = version.slice(0, at).replace(/_+$/, '');
  const software = version.slice(at + 2).replace(/_+$/, '');
  return hardware ? { hardware, software } : { software };
}

/** Warning word → snapshot flags (flags the word has no bit for stay undefined). */
export function protectionFlags(warnings: number): ProtectionFlags {
  const flags: ProtectionFlags = {};
  for (const [bit, names] of WARNING_BITS) {
    for (const name of names) flags[name] = (flags[name] ?? false) || (warnings & (1 << bit)) !== 0;
  }
  return flags;
}

/** One read-all reply → snapshot. */
export function toSnapshot(s: JkSerialStatus, timestampMs: number): BatterySnapshot {
  const version = s.softwareVersion !== undefined ? splitVersion(s.softwareVersion) : undefined;
  const cellVoltages = s.cellVoltages.length > 0 ? s.cellVoltages : undefined;
  return withoutUndefined({
    timestampMs,
    voltage: s.voltage,
    current: s.current,
    power: s.voltage !== undefined && s.current !== undefined ? round(s.voltage * s.current, 2) : undefined,
    soc: s.soc,
    capacityInstalled: s.capacity !== undefined && s.capacity > 0 ? s.capacity : undefined,
    cycles: s.cycles,
    cellVoltages,
    cellCount: s.cellCount ?? cellVoltages?.length,
    temperatures: s.temperatures.map((celsius, i) => ({ name: `T${i + 1}`, celsius })),
    mosTemperature: s.mosTemperature,
    chargeFet: s.status !== undefined ? (s.status & 0x01) !== 0 : undefined,
    dischargeFet: s.status !== undefined ? (s.status & 0x02) !== 0 : undefined,
    protection: s.warnings !== undefined ? protectionFlags(s.warnings) : {},
    identity: {
      manufacturer: 'JK',
      ...(s.manufacturerId ? { serial: s.manufacturerId } : {}),
      ...(version?.hardware ? { hardware: version.hardware } : {}),
      ...(version?.software ? { firmware: version.software } : {}),
    },
  });
}

/** Unknown stays absent rather than present-and-undefined, so snapshots compare and serialise cleanly. */
function withoutUndefined<T extends object>(o: T): T {
  for (const key of Object.keys(o) as (keyof T)[]) if (o[key] === undefined) delete o[key];
  return o;
}

// ---- device side (simulators; never ground truth in tests) ----------------------------------------------

/** What the simulator puts into a read-all reply. */
export interface JkSerialReplyValues {
  /** Cell voltages, V. */
  cellVoltages: readonly number[];
  mosTemperature: number;
  /** 0x81 and 0x82, °C. */
  temperatures: readonly [number, number];
  voltage: number;
  /** A, + = charging. */
  current: number;
  soc: number;
  cycles: number;
  totalCycleCapacity: number;
  warnings: number;
  status: number;
  capacity: number;
  chargeSwitch: boolean;
  dischargeSwitch: boolean;
  deviceId: string;
  productionDate: string;
  runtimeMinutes: number;
  /** `<hw>_S<sw>`, at most 15 characters (padded with `_`). */
  softwareVersion: string;
  manufacturerId: string;
  /** 0 or 1 (default 1, as current boards send). */
  protocolVersion?: number;
  /** Extra settings id → raw value (defaults below fill the usual set). */
  settings?: Readonly<Record<number, number>>;
}

/** Plausible LiFePO4 protection settings, so a simulated reply has the field set of a real one. */
const DEFAULT_SETTINGS: Readonly<Record<number, number>> = {
  142: 5840, // pack over-voltage, 10 mV
  143: 4000, // pack under-voltage, 10 mV
  144: 3650,
  145: 3400,
  146: 5,
  147: 2700,
  148: 2900,
  149: 5,
  150: 300,
  151: 100,
  152: 300,
  153: 100,
  154: 30,
  155: 3400,
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
  173: 1070,
  174: 1,
  175: 0,
  176: 10,
  177: 20,
  179: 0,
  184: 0,
};

function tlv(id: number, len: number, value: number): number[] {
  const out = [id];
  for (let k = len - 1; k >= 0; k--) out.push(Math.floor(value / 256 ** k) & 0xff);
  return out;
}

function asciiTlv(id: number, len: number, text: string, pad = 0): number[] {
  const out = [id];
  for (let k = 0; k < len; k++) out.push(k < text.length ? text.charCodeAt(k) & 0x7f : pad);
  return out;
}

/** Device side: the TLV data of a read-all reply, in the order real boards send it. */
export function encodeStatusData(v: JkSerialReplyValues): Uint8Array {
  const version = v.protocolVersion ?? 1;
  // DEFAULT_SETTINGS has every id written below, so each lookup finds a value.
  const settings = { ...DEFAULT_SETTINGS, ...v.settings };
  const bytes: number[] = [0x79, v.cellVoltages.length * 3];
  v.cellVoltages.forEach((cell, i) => {
    const mv = Math.max(0, Math.min(0xffff, Math.round(cell * 1000)));
    bytes.push(i + 1, mv >> 8, mv & 0xff);
  });
  bytes.push(...tlv(0x80, 2, encodeTemperature(v.mosTemperature)));
  bytes.push(...tlv(0x81, 2, encodeTemperature(v.temperatures[0])));
  bytes.push(...tlv(0x82, 2, encodeTemperature(v.temperatures[1])));
  bytes.push(...tlv(0x83, 2, clamp(Math.round(v.voltage * 100), 0, 0xffff)));
  bytes.push(...tlv(0x84, 2, encodeCurrent(v.current, version)));
  bytes.push(...tlv(0x85, 1, clamp(Math.round(v.soc), 0, 100)));
  bytes.push(...tlv(0x86, 1, 2));
  bytes.push(...tlv(0x87, 2, clamp(v.cycles, 0, 0xffff)));
  bytes.push(...tlv(0x89, 4, clamp(Math.round(v.totalCycleCapacity), 0, 0xffffffff)));
  bytes.push(...tlv(0x8a, 2, v.cellVoltages.length));
  bytes.push(...tlv(0x8b, 2, v.warnings & 0xffff));
  bytes.push(...tlv(0x8c, 2, v.status & 0xffff));
  for (let id = 0x8e; id <= 0xa8; id++) {
    const len = REGISTER_LENGTHS.get(id) as number;
    bytes.push(...tlv(id, len, ((settings[id] as number) + 0x10000) % 0x10000));
  }
  bytes.push(...tlv(0xa9, 1, v.cellVoltages.length));
  bytes.push(...tlv(0xaa, 4, clamp(Math.round(v.capacity), 0, 0xffffffff)));
  bytes.push(...tlv(0xab, 1, v.chargeSwitch ? 1 : 0));
  bytes.push(...tlv(0xac, 1, v.dischargeSwitch ? 1 : 0));
  for (const id of [0xad, 0xae, 0xaf, 0xb0, 0xb1]) {
    bytes.push(...tlv(id, REGISTER_LENGTHS.get(id) as number, settings[id] as number));
  }
  bytes.push(...asciiTlv(0xb2, 10, '123456'));
  bytes.push(...tlv(0xb3, 1, settings[0xb3] as number));
  bytes.push(...asciiTlv(0xb4, 8, v.deviceId));
  bytes.push(...asciiTlv(0xb5, 4, v.productionDate));
  bytes.push(...tlv(0xb6, 4, clamp(Math.round(v.runtimeMinutes), 0, 0xffffffff)));
  bytes.push(...asciiTlv(0xb7, 15, v.softwareVersion, 0x5f));
  bytes.push(...tlv(0xb8, 1, settings[0xb8] as number));
  bytes.push(...tlv(0xb9, 4, 0));
  bytes.push(...asciiTlv(0xba, 24, v.manufacturerId));
  bytes.push(...tlv(0xc0, 1, version));
  return Uint8Array.from(bytes);
}

/** Device side: a complete read-all reply frame. */
export function encodeReadAllReply(v: JkSerialReplyValues): Uint8Array {
  return encodeFrame({
    command: JkSerialCommand.readAll,
    source: JkSerialSource.bms,
    frameType: JkSerialFrameType.reply,
    data: encodeStatusData(v),
  });
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

function clamp(v: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, v));
}
