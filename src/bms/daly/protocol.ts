/**
 * Daly BMS, classic "A5" protocol (UART / RS485 / BLE carry the same 13-byte frames). Pure: no I/O, no timers, no
 * logging. Sources: Daly UART/RS485 protocol V1.2 as described in protocols.md §3.1, real captures from
 * dreadnought/python-daly-bms (test/fixtures/daly/SOURCE.md); notes in docs/protocols/daly.md.
 *
 * Every frame, both directions:  A5 | addr | id | 08 | d0 … d7 | sum8          (13 bytes)
 *   addr: host 0x40 (RS485 / PC port) or 0x80 (UART / BLE) in requests, BMS 0x01 in replies
 *   sum8 = (Σ bytes 0..11) & 0xFF. Reads carry eight zero data bytes.
 * Replies to 0x95 and 0x96 are several frames (one per 3 cells / 7 sensors), each with a 1-based frame number.
 *
 * Reply payloads (d0 … d7, big-endian):
 *   id   Off Len Field                        Scale
 *   0x90 0   2   pack voltage                 0.1 V
 *        2   2   "gather" voltage             0.1 V (usually 0)
 *        4   2   current                      (v − 30000) × 0.1 A, + = charging; v = 0 while the BMS sleeps
 *        6   2   SOC                          0.1 %
 *   0x91 0   2   max cell mV · 2 max cell # · 3 2 min cell mV · 5 min cell #
 *   0x92 0   1   max temp (°C + 40) · 1 sensor # · 2 min temp (°C + 40) · 3 sensor #
 *   0x93 0   1   state 0 idle / 1 charging / 2 discharging · 1 charge FET · 2 discharge FET · 3 heartbeat
 *        4   4   remaining capacity           mAh
 *   0x94 0   1   cell count · 1 NTC count · 2 charger present · 3 load present · 4 DI/DO bits
 *        5   2   cycles
 *   0x95 0   1   frame # (1-based) · 1 3 × u16 cell mV · 7 filler
 *   0x96 0   1   frame # (1-based) · 1 7 × u8 (°C + 40)
 *   0x97 0   6   balancing bitmap, byte 0 bit 0 = cell 1
 *   0x98 0   7   failure bit bytes (see FAILURE_BITS) · 7 fault code
 */
import { ByteReader } from '../../bytes/byte-reader.js';
import { sum8 } from '../../bytes/checksum.js';
import { type FrameExtraction, IncrementalFramer } from '../../bytes/framer.js';
import type { BatterySnapshot, ProtectionFlags } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import { round } from '../../domain/round.js';

/** First byte of every frame. */
export const DALY_START = 0xa5;
/** Every frame is this long. */
export const DALY_FRAME_LENGTH = 13;
/** The length byte (always 8 data bytes). */
export const DALY_DATA_LENGTH = 8;
/** Address the BMS answers from. */
export const DALY_BMS_ADDRESS = 0x01;
/** Host address on the RS485 / PC port. */
export const DALY_HOST_RS485 = 0x40;
/** Host address on the UART / BLE port. */
export const DALY_HOST_UART = 0x80;

/** Data ids the driver reads (protocols.md §3.1). */
export const DalyCommand = {
  packStatus: 0x90,
  cellExtremes: 0x91,
  temperatureExtremes: 0x92,
  fetStatus: 0x93,
  statusInfo: 0x94,
  cellVoltages: 0x95,
  temperatures: 0x96,
  balanceState: 0x97,
  failureStatus: 0x98,
} as const;

/** Cells per 0x95 frame. */
export const DALY_CELLS_PER_FRAME = 3;
/** Sensors per 0x96 frame. */
export const DALY_SENSORS_PER_FRAME = 7;

/** One checked frame (either direction). */
export interface DalyFrame {
  readonly address: number;
  readonly dataId: number;
  /** The 8 data bytes. */
  readonly payload: Uint8Array;
}

/** 0x90. */
export interface DalyPackStatus {
  /** Pack voltage, V. */
  voltage: number;
  /** Second ("gather") voltage, V; most boards send 0. */
  gatherVoltage: number;
  /** A, + = charging; undefined when the BMS sends the raw value 0 (asleep: it would read −3000 A). */
  current: number | undefined;
  /** %, 0.1 % resolution. */
  soc: number;
}

/** 0x91. */
export interface DalyCellExtremes {
  maxCellVoltage: number;
  maxCellNumber: number;
  minCellVoltage: number;
  minCellNumber: number;
}

/** 0x92. */
export interface DalyTemperatureExtremes {
  maxTemperature: number;
  maxSensor: number;
  minTemperature: number;
  minSensor: number;
}

/** Charge / discharge state of 0x93 byte 0. */
export type DalyChargeState = 'idle' | 'charging' | 'discharging';

/** 0x93. */
export interface DalyFetStatus {
  /** undefined for a value other than 0–2. */
  state: DalyChargeState | undefined;
  chargeFet: boolean;
  dischargeFet: boolean;
  /** Counter the BMS increments (its "life"), 0–255. */
  heartbeat: number;
  /** Ah. */
  capacityRemaining: number;
}

/** 0x94. */
export interface DalyStatusInfo {
  cellCount: number;
  temperatureSensorCount: number;
  chargerPresent: boolean;
  loadPresent: boolean;
  /** Digital in/out bits as sent. */
  dio: number;
  cycles: number;
}

/** One frame of a 0x95 or 0x96 reply. */
export interface DalyIndexedFrame {
  /** 1-based. */
  frameNumber: number;
  values: number[];
}

/** 0x98. */
export interface DalyFailureStatus {
  /** The 7 bit bytes as sent. */
  bits: number[];
  /** Byte 7; 0 = none. */
  faultCode: number;
  /** Names of all set bits, in table order (for the log). */
  active: string[];
}

/** 0x98 bit names, byte by byte, bit 0 first (Daly protocol V1.2; level 1 = alarm, level 2 = protection). */
export const FAILURE_BITS: readonly (readonly string[])[] = [
  [
    'cell voltage high level 1',
    'cell voltage high level 2',
    'cell voltage low level 1',
    'cell voltage low level 2',
    'pack voltage high level 1',
    'pack voltage high level 2',
    'pack voltage low level 1',
    'pack voltage low level 2',
  ],
  [
    'charge temperature high level 1',
    'charge temperature high level 2',
    'charge temperature low level 1',
    'charge temperature low level 2',
    'discharge temperature high level 1',
    'discharge temperature high level 2',
    'discharge temperature low level 1',
    'discharge temperature low level 2',
  ],
  [
    'charge over-current level 1',
    'charge over-current level 2',
    'discharge over-current level 1',
    'discharge over-current level 2',
    'SOC high level 1',
    'SOC high level 2',
    'SOC low level 1',
    'SOC low level 2',
  ],
  [
    'cell voltage difference level 1',
    'cell voltage difference level 2',
    'temperature difference level 1',
    'temperature difference level 2',
    '',
    '',
    '',
    '',
  ],
  [
    'charge FET over-temperature',
    'discharge FET over-temperature',
    'charge FET temperature sensor fault',
    'discharge FET temperature sensor fault',
    'charge FET stuck closed',
    'discharge FET stuck closed',
    'charge FET open circuit',
    'discharge FET open circuit',
  ],
  [
    'AFE acquisition chip fault',
    'cell voltage sense wire dropped',
    'cell temperature sensor fault',
    'EEPROM fault',
    'RTC fault',
    'precharge failure',
    'communication failure',
    'internal communication failure',
  ],
  [
    'current module fault',
    'pack voltage sense fault',
    'short circuit protection',
    'low-voltage charge inhibit',
    '',
    '',
    '',
    '',
  ],
];

/**
 * Which 0x98 bits count as an active protection. Level 2 is where Daly opens the FETs; level-1 bits are warnings and stay
 * out of the protection flags. [byte, bit, flag].
 */
const PROTECTION_BITS: readonly (readonly [number, number, keyof ProtectionFlags])[] = [
  [0, 1, 'cellOverVoltage'],
  [0, 3, 'cellUnderVoltage'],
  [0, 5, 'packOverVoltage'],
  [0, 7, 'packUnderVoltage'],
  [1, 1, 'chargeOverTemperature'],
  [1, 3, 'chargeUnderTemperature'],
  [1, 5, 'dischargeOverTemperature'],
  [1, 7, 'dischargeUnderTemperature'],
  [2, 1, 'chargeOverCurrent'],
  [2, 3, 'dischargeOverCurrent'],
  [6, 2, 'shortCircuit'],
  [5, 0, 'frontEndError'],
];

/** Hardware-fault bits that become `internalFailure` (FET, sensor, memory and communication faults). */
const INTERNAL_FAILURE_MASKS: readonly (readonly [number, number])[] = [
  [4, 0xfc], // FET sensor / stuck / open faults (bits 0–1 are over-temperature warnings)
  [5, 0xfe], // everything but the AFE bit, which has its own flag
  [6, 0x03], // current module, pack voltage sense
];

function frameChecksum(frame: Uint8Array): number {
  return sum8(frame, 0, DALY_FRAME_LENGTH - 1);
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0').toUpperCase();
}

/** Build any frame: `A5 addr id 08 data sum8`. `data` is zero-padded / must be at most 8 bytes. */
export function encodeFrame(address: number, dataId: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (data.length > DALY_DATA_LENGTH) throw new RangeError('a Daly frame carries at most 8 data bytes');
  const out = new Uint8Array(DALY_FRAME_LENGTH);
  out[0] = DALY_START;
  out[1] = address & 0xff;
  out[2] = dataId & 0xff;
  out[3] = DALY_DATA_LENGTH;
  out.set(data, 4);
  out[12] = frameChecksum(out);
  return out;
}

/** A read request from the host: `A5 40 <id> 08 00×8 sum` (pass DALY_HOST_UART for the UART / BLE port). */
export function encodeRequest(dataId: number, hostAddress: number = DALY_HOST_RS485): Uint8Array {
  return encodeFrame(hostAddress, dataId);
}

/** Device side: a reply frame from the BMS (address 0x01). */
export function encodeReply(dataId: number, payload: Uint8Array): Uint8Array {
  return encodeFrame(DALY_BMS_ADDRESS, dataId, payload);
}

/** Check exactly one frame (start byte, length, checksum); no meaning applied. Throws FrameError. */
export function decodeFrame(raw: Uint8Array): DalyFrame {
  if (raw.length < DALY_FRAME_LENGTH) throw new FrameError('truncated', `${raw.length} bytes, a Daly frame has 13`);
  if (raw[0] !== DALY_START)
    throw new FrameError('bad-header', `starts with 0x${hex(raw[0] as number)}, expected 0xA5`);
  if (raw.length > DALY_FRAME_LENGTH) throw new FrameError('bad-length', `${raw.length} bytes, a Daly frame has 13`);
  if (raw[3] !== DALY_DATA_LENGTH)
    throw new FrameError('bad-length', `length byte 0x${hex(raw[3] as number)}, expected 0x08`);
  const want = frameChecksum(raw);
  if (raw[12] !== want)
    throw new FrameError('bad-checksum', `checksum 0x${hex(raw[12] as number)} != computed 0x${hex(want)}`);
  return { address: raw[1] as number, dataId: raw[2] as number, payload: raw.subarray(4, 12) };
}

/** Decode one frame and require it to come from the BMS (address 0x01, not a host request). Throws FrameError. */
export function decodeReplyFrame(raw: Uint8Array): DalyFrame {
  const frame = decodeFrame(raw);
  if (frame.address !== DALY_BMS_ADDRESS) {
    throw new FrameError('bad-header', `address 0x${hex(frame.address)} is not the BMS (0x01): a request or an echo?`);
  }
  return frame;
}

/** The payload of a reply to `dataId`; FrameError 'unexpected-reply' for a reply to another data id (a late answer). */
export function requirePayload(frame: DalyFrame, dataId: number): Uint8Array {
  if (frame.dataId !== dataId) {
    throw new FrameError('unexpected-reply', `reply to data id 0x${hex(frame.dataId)}, expected 0x${hex(dataId)}`);
  }
  return frame.payload;
}

/** Result of scanning a byte buffer for frames. */
export type ExtractResult = FrameExtraction;

/** A 0xA5 at `i` that can still become a frame with what is there (length byte right, if already present). */
function plausibleStart(buffer: Uint8Array, i: number): boolean {
  return buffer[i] === DALY_START && (buffer.length - i < 4 || buffer[i + 3] === DALY_DATA_LENGTH);
}

function validAt(buffer: Uint8Array, i: number): boolean {
  if (buffer.length - i < DALY_FRAME_LENGTH || !plausibleStart(buffer, i)) return false;
  return sum8(buffer, i, i + 12) === buffer[i + 12];
}

/**
 * Find frames in whatever arrived. Frames are fixed-size, so a candidate is a 0xA5 with 12 more bytes, the length byte
 * 0x08 and a matching checksum; anything else is skipped one byte at a time. That is how the corrupted run in the real
 * 0x95 capture (`a5 a8 00 40 …` between frames 0x0B and 0x0F) is passed over: its length byte is 0x40. An incomplete
 * candidate at the end (fewer than 13 bytes, length byte 0x08 if present) is kept for the next chunk.
 */
export function extractFrames(buffer: Uint8Array): ExtractResult {
  const frames: Uint8Array[] = [];
  let i = 0;
  let discarded = 0;
  while (i < buffer.length) {
    if (!plausibleStart(buffer, i)) {
      i++;
      discarded++;
      continue;
    }
    // Wait for the rest. (A later 0xA5 cannot start a complete frame either: frames are fixed-size.)
    if (buffer.length - i < DALY_FRAME_LENGTH) break;
    if (validAt(buffer, i)) {
      frames.push(buffer.slice(i, i + DALY_FRAME_LENGTH));
      i += DALY_FRAME_LENGTH;
    } else {
      i++;
      discarded++;
    }
  }
  return { frames, rest: buffer.slice(i), discarded };
}

/**
 * Incremental framer: push chunks of any size, get complete 13-byte frames. The residue is always shorter than one frame,
 * so memory is bounded without a cap.
 */
export class DalyFramer extends IncrementalFramer {
  constructor() {
    super((buffer) => extractFrames(buffer));
  }
}

/**
 * Framer for a request/response channel: like DalyFramer, but while a multi-frame reply is expected (0x95: one frame per
 * 3 cells, 0x96: one per 7 sensors) it holds those frames back and emits them together, in frame-number order, as one
 * `count × 13`-byte block once frames 1…count are all there. A request channel resolves a request with one "frame", so
 * this is how a multi-frame reply travels as one. Frames of other ids pass through unchanged; surplus frames (a BLE-style
 * BMS that always sends 16 cell frames) pass through after the block and are dropped by the channel as unsolicited.
 */
export class DalyReplyFramer {
  private readonly inner = new DalyFramer();
  private expected: { dataId: number; count: number; frames: Map<number, Uint8Array> } | undefined;
  private readonly highest = new Map<number, number>();

  /**
   * Highest frame number seen in replies to `dataId` (0 if none). A board that answers 0x95 with all 16 frames
   * whatever its cell count shows it here, and the driver then waits for all of them: sending the next request while
   * the BMS is still talking would collide on a half-duplex RS485 line.
   */
  highestFrameSeen(dataId: number): number {
    return this.highest.get(dataId) ?? 0;
  }

  /** The next reply to `dataId` consists of frames numbered 1…`count`. */
  expectMultiFrame(dataId: number, count: number): void {
    this.expected = { dataId, count: Math.max(1, count), frames: new Map() };
  }

  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const frame of this.inner.push(chunk)) {
      const id = frame[2] as number;
      const n = frame[4] as number;
      if (frame[1] === DALY_BMS_ADDRESS && (id === DalyCommand.cellVoltages || id === DalyCommand.temperatures)) {
        if (n > (this.highest.get(id) ?? 0)) this.highest.set(id, n);
      }
      const want = this.expected;
      if (want === undefined || frame[2] !== want.dataId || frame[1] !== DALY_BMS_ADDRESS) {
        out.push(frame);
        continue;
      }
      if (n < 1 || n > want.count || want.frames.has(n)) {
        out.push(frame);
        continue;
      }
      want.frames.set(n, frame);
      if (want.frames.size === want.count) {
        const block = new Uint8Array(want.count * DALY_FRAME_LENGTH);
        for (let k = 1; k <= want.count; k++) block.set(want.frames.get(k) as Uint8Array, (k - 1) * DALY_FRAME_LENGTH);
        this.expected = undefined;
        out.push(block);
      }
    }
    return out;
  }

  /** Drop partial data and any half-collected multi-frame reply. */
  reset(): void {
    this.inner.reset();
    this.expected = undefined;
  }

  /** Bytes thrown away while resynchronising. */
  get discarded(): number {
    return this.inner.discarded;
  }
}

/** Split a block of back-to-back 13-byte frames (a DalyReplyFramer block) and decode each reply. Throws FrameError. */
export function decodeReplyBlock(block: Uint8Array): DalyFrame[] {
  if (block.length === 0 || block.length % DALY_FRAME_LENGTH !== 0) {
    throw new FrameError('bad-length', `${block.length} bytes is not a whole number of 13-byte frames`);
  }
  const out: DalyFrame[] = [];
  for (let i = 0; i < block.length; i += DALY_FRAME_LENGTH) {
    out.push(decodeReplyFrame(block.subarray(i, i + DALY_FRAME_LENGTH)));
  }
  return out;
}

/** Raw 0x90 current of a sleeping BMS: decodes to −3000 A, which is no measurement. */
const CURRENT_OFFSET = 30000;

/** 0x90 payload. */
export function decodePackStatus(payload: Uint8Array): DalyPackStatus {
  const r = new ByteReader(payload);
  const rawCurrent = r.u16be(4);
  return {
    voltage: round(r.u16be(0) / 10, 1),
    gatherVoltage: round(r.u16be(2) / 10, 1),
    current: rawCurrent === 0 ? undefined : round((rawCurrent - CURRENT_OFFSET) / 10, 1),
    soc: round(r.u16be(6) / 10, 1),
  };
}

/** 0x91 payload. */
export function decodeCellExtremes(payload: Uint8Array): DalyCellExtremes {
  const r = new ByteReader(payload);
  return {
    maxCellVoltage: r.u16be(0) / 1000,
    maxCellNumber: r.u8(2),
    minCellVoltage: r.u16be(3) / 1000,
    minCellNumber: r.u8(5),
  };
}

/** 0x92 payload. */
export function decodeTemperatureExtremes(payload: Uint8Array): DalyTemperatureExtremes {
  const r = new ByteReader(payload);
  return {
    maxTemperature: r.u8(0) - 40,
    maxSensor: r.u8(1),
    minTemperature: r.u8(2) - 40,
    minSensor: r.u8(3),
  };
}

const CHARGE_STATES: readonly DalyChargeState[] = ['idle', 'charging', 'discharging'];

/** 0x93 payload. */
export function decodeFetStatus(payload: Uint8Array): DalyFetStatus {
  const r = new ByteReader(payload);
  return {
    state: CHARGE_STATES[r.u8(0)],
    chargeFet: r.u8(1) !== 0,
    dischargeFet: r.u8(2) !== 0,
    heartbeat: r.u8(3),
    capacityRemaining: r.u32be(4) / 1000,
  };
}

/** 0x94 payload. */
export function decodeStatusInfo(payload: Uint8Array): DalyStatusInfo {
  const r = new ByteReader(payload);
  return {
    cellCount: r.u8(0),
    temperatureSensorCount: r.u8(1),
    chargerPresent: r.u8(2) !== 0,
    loadPresent: r.u8(3) !== 0,
    dio: r.u8(4),
    cycles: r.u16be(5),
  };
}

/** One 0x95 frame: frame number and its three cell voltages, V. */
export function decodeCellVoltageFrame(payload: Uint8Array): DalyIndexedFrame {
  const r = new ByteReader(payload);
  const values: number[] = [];
  for (let k = 0; k < DALY_CELLS_PER_FRAME; k++) values.push(r.u16be(1 + 2 * k) / 1000);
  return { frameNumber: r.u8(0), values };
}

/** One 0x96 frame: frame number and its seven temperatures, °C. */
export function decodeTemperatureFrame(payload: Uint8Array): DalyIndexedFrame {
  const r = new ByteReader(payload);
  const values: number[] = [];
  for (let k = 0; k < DALY_SENSORS_PER_FRAME; k++) values.push(r.u8(1 + k) - 40);
  return { frameNumber: r.u8(0), values };
}

/**
 * Put the values of numbered frames in order and cut them to `count` (cells or sensors). Frames may come in any order;
 * frames beyond the count are ignored (a BLE board sends all 16 cell frames). Throws FrameError('truncated') when a frame
 * the count needs is missing, 'invalid-value' for frame number 0.
 */
export function assembleIndexed(frames: readonly DalyIndexedFrame[], count: number, perFrame: number): number[] {
  const byNumber = new Map<number, number[]>();
  for (const f of frames) {
    if (f.frameNumber < 1) throw new FrameError('invalid-value', 'frame number 0 (numbers start at 1)');
    if (!byNumber.has(f.frameNumber)) byNumber.set(f.frameNumber, f.values);
  }
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const values = byNumber.get(Math.floor(i / perFrame) + 1);
    if (values === undefined) throw new FrameError('truncated', `frame ${Math.floor(i / perFrame) + 1} is missing`);
    out.push(values[i % perFrame] as number);
  }
  return out;
}

/** Cell voltages (V, cell 1 first) from the frames of one 0x95 reply. Throws FrameError. */
export function assembleCellVoltages(frames: readonly DalyIndexedFrame[], cellCount: number): number[] {
  return assembleIndexed(frames, cellCount, DALY_CELLS_PER_FRAME);
}

/** Temperatures (°C, sensor 1 first) from the frames of one 0x96 reply. Throws FrameError. */
export function assembleTemperatures(frames: readonly DalyIndexedFrame[], sensorCount: number): number[] {
  return assembleIndexed(frames, sensorCount, DALY_SENSORS_PER_FRAME);
}

/** Frames a multi-frame reply needs for `count` cells (0x95) or sensors (0x96). */
export function framesFor(dataId: number, count: number): number {
  const per = dataId === DalyCommand.temperatures ? DALY_SENSORS_PER_FRAME : DALY_CELLS_PER_FRAME;
  return Math.max(1, Math.ceil(count / per));
}

/** 0x97 payload → one flag per cell (up to 48), cell 1 = byte 0 bit 0. */
export function decodeBalanceState(payload: Uint8Array): boolean[] {
  const r = new ByteReader(payload);
  const out: boolean[] = [];
  for (let byte = 0; byte < 6; byte++) {
    const v = r.u8(byte);
    for (let bit = 0; bit < 8; bit++) out.push((v & (1 << bit)) !== 0);
  }
  return out;
}

/** 0x98 payload. */
export function decodeFailureStatus(payload: Uint8Array): DalyFailureStatus {
  const r = new ByteReader(payload);
  const bits: number[] = [];
  const active: string[] = [];
  for (let byte = 0; byte < 7; byte++) {
    const v = r.u8(byte);
    bits.push(v);
    for (let bit = 0; bit < 8; bit++) {
      if ((v & (1 << bit)) === 0) continue;
      const name = FAILURE_BITS[byte]?.[bit];
      active.push(name ? name : `reserved byte ${byte} bit ${bit}`);
    }
  }
  return { bits, faultCode: r.u8(7), active };
}

/** 0x98 → snapshot protection flags (level-2 bits and hardware faults; see PROTECTION_BITS). */
export function protectionFlags(status: DalyFailureStatus): ProtectionFlags {
  const flags: ProtectionFlags = {};
  for (const [byte, bit, name] of PROTECTION_BITS) flags[name] = ((status.bits[byte] ?? 0) & (1 << bit)) !== 0;
  flags.internalFailure = INTERNAL_FAILURE_MASKS.some(([byte, mask]) => ((status.bits[byte] ?? 0) & mask) !== 0);
  return flags;
}

/** A decoded reply of any data id the family knows (what the contract and the CLI decode). */
export type DalyReply =
  | { kind: 'packStatus'; value: DalyPackStatus }
  | { kind: 'cellExtremes'; value: DalyCellExtremes }
  | { kind: 'temperatureExtremes'; value: DalyTemperatureExtremes }
  | { kind: 'fetStatus'; value: DalyFetStatus }
  | { kind: 'statusInfo'; value: DalyStatusInfo }
  | { kind: 'cellVoltages'; value: DalyIndexedFrame }
  | { kind: 'temperatures'; value: DalyIndexedFrame }
  | { kind: 'balanceState'; value: boolean[] }
  | { kind: 'failureStatus'; value: DalyFailureStatus };

/** Decode one reply frame with the decoder of its data id. Throws FrameError ('unexpected-reply' for an unknown id). */
export function decodeReply(raw: Uint8Array): DalyReply {
  const { dataId, payload } = decodeReplyFrame(raw);
  switch (dataId) {
    case DalyCommand.packStatus:
      return { kind: 'packStatus', value: decodePackStatus(payload) };
    case DalyCommand.cellExtremes:
      return { kind: 'cellExtremes', value: decodeCellExtremes(payload) };
    case DalyCommand.temperatureExtremes:
      return { kind: 'temperatureExtremes', value: decodeTemperatureExtremes(payload) };
    case DalyCommand.fetStatus:
      return { kind: 'fetStatus', value: decodeFetStatus(payload) };
    case DalyCommand.statusInfo:
      return { kind: 'statusInfo', value: decodeStatusInfo(payload) };
    case DalyCommand.cellVoltages:
      return { kind: 'cellVoltages', value: decodeCellVoltageFrame(payload) };
    case DalyCommand.temperatures:
      return { kind: 'temperatures', value: decodeTemperatureFrame(payload) };
    case DalyCommand.balanceState:
      return { kind: 'balanceState', value: decodeBalanceState(payload) };
    case DalyCommand.failureStatus:
      return { kind: 'failureStatus', value: decodeFailureStatus(payload) };
    default:
      throw new FrameError('unexpected-reply', `data id 0x${hex(dataId)} is not one the driver reads`);
  }
}

/**
 * Does this look like a classic Daly reply? One complete frame, checksum right, from the BMS address, with a data id
 * 0x90–0x98. Never throws (autodetect calls it on anything).
 */
export function probe(raw: Uint8Array): boolean {
  try {
    const f = decodeReplyFrame(raw);
    return f.dataId >= DalyCommand.packStatus && f.dataId <= DalyCommand.failureStatus;
  } catch {
    return false;
  }
}

/** Decoded replies of one poll cycle. Only `pack` (0x90) is required. */
export interface DalyReadings {
  pack: DalyPackStatus;
  fet?: DalyFetStatus | undefined;
  status?: DalyStatusInfo | undefined;
  /** V, cell 1 first, already cut to the cell count. */
  cells?: number[] | undefined;
  /** °C, sensor 1 first, already cut to the sensor count. */
  temperatures?: number[] | undefined;
  /** Used when per-sensor temperatures are missing. */
  temperatureExtremes?: DalyTemperatureExtremes | undefined;
  balancing?: boolean[] | undefined;
  failures?: DalyFailureStatus | undefined;
}

/** Combine one poll cycle's replies into a snapshot. */
export function toSnapshot(readings: DalyReadings, timestampMs: number): BatterySnapshot {
  const { pack, fet, status, cells, failures } = readings;
  const cellCount = status?.cellCount ?? (cells && cells.length > 0 ? cells.length : undefined);
  const n = cells?.length ?? cellCount;
  const balancing = readings.balancing !== undefined && n !== undefined ? readings.balancing.slice(0, n) : undefined;
  let temperatures: { name: string; celsius: number }[] | undefined;
  if (readings.temperatures !== undefined) {
    temperatures = readings.temperatures.map((celsius, i) => ({ name: `T${i + 1}`, celsius }));
  } else if (readings.temperatureExtremes !== undefined) {
    // Without 0x96 the extremes are all there is; both ends are real sensor readings.
    const t = readings.temperatureExtremes;
    temperatures = [
      { name: `T${t.maxSensor}`, celsius: t.maxTemperature },
      ...(t.minSensor !== t.maxSensor ? [{ name: `T${t.minSensor}`, celsius: t.minTemperature }] : []),
    ];
  }
  return {
    timestampMs,
    voltage: pack.voltage,
    ...(pack.current !== undefined ? { current: pack.current, power: round(pack.voltage * pack.current, 2) } : {}),
    soc: pack.soc,
    ...(fet !== undefined
      ? { capacityRemaining: fet.capacityRemaining, chargeFet: fet.chargeFet, dischargeFet: fet.dischargeFet }
      : {}),
    ...(status !== undefined ? { cycles: status.cycles } : {}),
    ...(cellCount !== undefined ? { cellCount } : {}),
    ...(cells !== undefined && cells.length > 0 ? { cellVoltages: cells } : {}),
    ...(balancing !== undefined ? { balancing } : {}),
    ...(temperatures !== undefined ? { temperatures } : {}),
    protection: failures !== undefined ? protectionFlags(failures) : {},
    identity: { manufacturer: 'Daly' },
  };
}

// ---- device side (simulator) ------------------------------------------------------------------------------------------

/** Device side: 0x90 payload. A current of undefined encodes as the sleeping BMS's raw 0. */
export function encodePackStatus(v: DalyPackStatus): Uint8Array {
  const out = new Uint8Array(8);
  const d = new DataView(out.buffer);
  d.setUint16(0, clampU16(Math.round(v.voltage * 10)));
  d.setUint16(2, clampU16(Math.round(v.gatherVoltage * 10)));
  d.setUint16(4, v.current === undefined ? 0 : clampU16(Math.round(v.current * 10) + CURRENT_OFFSET));
  d.setUint16(6, clampU16(Math.round(v.soc * 10)));
  return out;
}

/** Device side: 0x91 payload. */
export function encodeCellExtremes(v: DalyCellExtremes): Uint8Array {
  const out = new Uint8Array(8);
  const d = new DataView(out.buffer);
  d.setUint16(0, clampU16(Math.round(v.maxCellVoltage * 1000)));
  out[2] = v.maxCellNumber & 0xff;
  d.setUint16(3, clampU16(Math.round(v.minCellVoltage * 1000)));
  out[5] = v.minCellNumber & 0xff;
  return out;
}

/** Device side: 0x92 payload. */
export function encodeTemperatureExtremes(v: DalyTemperatureExtremes): Uint8Array {
  return Uint8Array.of(
    clampU8(Math.round(v.maxTemperature) + 40),
    v.maxSensor & 0xff,
    clampU8(Math.round(v.minTemperature) + 40),
    v.minSensor & 0xff,
    0,
    0,
    0,
    0,
  );
}

/** Device side: 0x93 payload. */
export function encodeFetStatus(v: DalyFetStatus): Uint8Array {
  const out = new Uint8Array(8);
  out[0] = v.state === undefined ? 0 : CHARGE_STATES.indexOf(v.state);
  out[1] = v.chargeFet ? 1 : 0;
  out[2] = v.dischargeFet ? 1 : 0;
  out[3] = v.heartbeat & 0xff;
  new DataView(out.buffer).setUint32(4, Math.max(0, Math.min(0xffffffff, Math.round(v.capacityRemaining * 1000))));
  return out;
}

/** Device side: 0x94 payload. */
export function encodeStatusInfo(v: DalyStatusInfo): Uint8Array {
  const out = new Uint8Array(8);
  out[0] = v.cellCount & 0xff;
  out[1] = v.temperatureSensorCount & 0xff;
  out[2] = v.chargerPresent ? 1 : 0;
  out[3] = v.loadPresent ? 1 : 0;
  out[4] = v.dio & 0xff;
  new DataView(out.buffer).setUint16(5, clampU16(v.cycles));
  return out;
}

/** Device side: the payloads of a 0x95 reply, one per 3 cells (unused slots 0 mV). */
export function encodeCellVoltageFrames(
  cells: readonly number[],
  frameCount = framesFor(0x95, cells.length),
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let f = 0; f < frameCount; f++) {
    const p = new Uint8Array(8);
    const d = new DataView(p.buffer);
    p[0] = f + 1;
    for (let k = 0; k < DALY_CELLS_PER_FRAME; k++) {
      const c = cells[f * DALY_CELLS_PER_FRAME + k];
      d.setUint16(1 + 2 * k, c === undefined ? 0 : clampU16(Math.round(c * 1000)));
    }
    out.push(p);
  }
  return out;
}

/** Device side: the payloads of a 0x96 reply, one per 7 sensors (unused slots 0, i.e. −40 °C, as real boards send). */
export function encodeTemperatureFrames(temps: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let f = 0; f < framesFor(0x96, temps.length); f++) {
    const p = new Uint8Array(8);
    p[0] = f + 1;
    for (let k = 0; k < DALY_SENSORS_PER_FRAME; k++) {
      const t = temps[f * DALY_SENSORS_PER_FRAME + k];
      p[1 + k] = t === undefined ? 0 : clampU8(Math.round(t) + 40);
    }
    out.push(p);
  }
  return out;
}

/** Device side: 0x97 payload from per-cell flags (cell 1 first). */
export function encodeBalanceState(flags: readonly boolean[]): Uint8Array {
  const out = new Uint8Array(8);
  flags.slice(0, 48).forEach((on, i) => {
    if (on) out[i >> 3] = (out[i >> 3] as number) | (1 << (i & 7));
  });
  return out;
}

/** Device side: 0x98 payload from the 7 bit bytes and the fault code. */
export function encodeFailureStatus(bits: readonly number[], faultCode = 0): Uint8Array {
  const out = new Uint8Array(8);
  for (let i = 0; i < 7; i++) out[i] = (bits[i] ?? 0) & 0xff;
  out[7] = faultCode & 0xff;
  return out;
}

function clampU16(v: number): number {
  return Math.max(0, Math.min(0xffff, v));
}

function clampU8(v: number): number {
  return Math.max(0, Math.min(0xff, v));
}
