/**
 * Framing of the Pylontech RS485 "~…\r" ASCII-hex protocol (YD/T 1363.3 style), shared by Pylontech (pylontech.ts) and
 * Seplos V2 (seplos.ts), which differ only in their INFO field tables. Pure: no I/O, no timers, no logging.
 * Sources: Pylontech RS485 protocol V3.3 and Seplos BMS Communication Protocol V2.0 as summarised in protocols.md §8;
 * notes in docs/protocols/pylon-rs485.md.
 *
 *   Char  Len    Field    Notes
 *   0     1      SOI      '~' (0x7E)
 *   1     2      VER      0x20 = protocol V2.0 (Pylontech, Seplos); 0x25 on some clones
 *   3     2      ADR      pack address (Pylontech: 2 = first pack; Seplos: DIP 0–15)
 *   5     2      CID1     0x46 = LiFePO4 BMS
 *   7     2      CID2     command in requests; return code (RTN, 0x00 = OK) in replies
 *   9     4      LENGTH   bits 15–12 LCHKSUM, bits 11–0 LENID = number of INFO characters
 *   13    LENID  INFO     hex-ASCII bytes; requests: 1 byte COMMAND (the pack address) or nothing
 *   13+L  4      CHKSUM   (−Σ ASCII codes of chars 1 … 12+LENID) mod 65536
 *   17+L  1      EOI      '\r' (0x0D)
 *
 * Everything between SOI and EOI is hex digits (2 per byte, upper case on the wire), so '~' and '\r' can never occur
 * inside a frame: the framer resynchronises on them. LCHKSUM = (−(n11..8 + n7..4 + n3..0)) mod 16.
 */
import { ByteReader } from '../../bytes/byte-reader.js';
import { type FrameExtraction, IncrementalFramer } from '../../bytes/framer.js';
import { FrameError } from '../../domain/errors.js';

/** Start of frame, '~'. */
export const PYLON_SOI = 0x7e;
/** End of frame, '\r'. */
export const PYLON_EOI = 0x0d;
/** Protocol version byte of Pylontech and Seplos V2. */
export const PYLON_VERSION = 0x20;
/** CID1 of a LiFePO4 battery BMS. */
export const PYLON_CID1_LFP = 0x46;
/** Characters of a frame with empty INFO. */
export const PYLON_MIN_FRAME = 18;
/** LENID is 12 bits. */
export const PYLON_MAX_INFO_CHARS = 0xfff;
/** Longest possible frame, chars. */
export const PYLON_MAX_FRAME = PYLON_MIN_FRAME + PYLON_MAX_INFO_CHARS;

/** CID2 commands (requests). */
export const PylonCommand = {
  analogValues: 0x42,
  alarmInfo: 0x44,
  systemParameters: 0x47,
  protocolVersion: 0x4f,
  manufacturerInfo: 0x51,
  chargeManagement: 0x92,
  serialNumber: 0x93,
} as const;

/** CID2 return codes (replies), Pylontech and Seplos tables merged. */
export const PYLON_RETURN_CODES: Readonly<Record<number, string>> = {
  0: 'normal',
  1: 'VER error',
  2: 'CHKSUM error',
  3: 'LCHKSUM error',
  4: 'CID2 invalid',
  5: 'command format error',
  6: 'invalid data',
  7: 'no data',
  144: 'ADR error',
  145: 'internal communication error',
  225: 'CID1 invalid',
  226: 'command execution failure',
  227: 'device fault',
  228: 'invalid permissions',
};

/** Is this CID2 a return code (a reply) rather than a command (a request, or our own request echoed)? */
export function isReturnCode(cid2: number): boolean {
  return PYLON_RETURN_CODES[cid2] !== undefined;
}

/** One checked frame, either direction. */
export interface PylonFrame {
  readonly version: number;
  readonly address: number;
  readonly cid1: number;
  /** Command (request) or return code (reply). */
  readonly cid2: number;
  /** INFO as bytes (already converted from hex-ASCII). */
  readonly info: Uint8Array;
}

const HEX_DIGITS = '0123456789ABCDEF';

function isHexChar(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

function hexValue(c: number): number {
  if (c <= 0x39) return c - 0x30;
  if (c <= 0x46) return c - 0x37;
  return c - 0x57;
}

/** Value of `count` hex chars at `at`; −1 if any is not a hex digit or missing. */
function hexField(raw: Uint8Array, at: number, count: number): number {
  let v = 0;
  for (let k = 0; k < count; k++) {
    const c = raw[at + k];
    if (!isHexChar(c)) return -1;
    v = v * 16 + hexValue(c as number);
  }
  return v;
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, '0').toUpperCase();
}

/** LCHKSUM nibble of a LENID. */
export function lengthChecksum(lenid: number): number {
  const s = (lenid & 0xf) + ((lenid >> 4) & 0xf) + ((lenid >> 8) & 0xf);
  return (16 - (s % 16)) % 16;
}

/** The 16-bit LENGTH field for `infoChars` INFO characters. */
export function lengthField(infoChars: number): number {
  return (lengthChecksum(infoChars) << 12) | (infoChars & 0xfff);
}

/** CHKSUM over the ASCII codes in [start, end). */
export function frameChecksum(ascii: Uint8Array, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i++) s += ascii[i] as number;
  return (0x10000 - (s & 0xffff)) & 0xffff;
}

function pushHex(out: number[], value: number, chars: number): void {
  for (let k = chars - 1; k >= 0; k--) out.push(HEX_DIGITS.charCodeAt((value >> (4 * k)) & 0xf));
}

/** Build any frame (ASCII bytes, '~' … '\r'). */
export function encodeFrame(frame: PylonFrame): Uint8Array {
  if (frame.info.length * 2 > PYLON_MAX_INFO_CHARS) throw new RangeError('INFO is at most 2047 bytes');
  const out: number[] = [PYLON_SOI];
  pushHex(out, frame.version & 0xff, 2);
  pushHex(out, frame.address & 0xff, 2);
  pushHex(out, frame.cid1 & 0xff, 2);
  pushHex(out, frame.cid2 & 0xff, 2);
  pushHex(out, lengthField(frame.info.length * 2), 4);
  for (const b of frame.info) pushHex(out, b, 2);
  const bytes = Uint8Array.from(out);
  pushHex(out, frameChecksum(bytes, 1, bytes.length), 4);
  out.push(PYLON_EOI);
  return Uint8Array.from(out);
}

/** Options of {@link encodeRequest}. */
export interface PylonRequest {
  /** Pack address (ADR). */
  address: number;
  /** CID2 command, see PylonCommand. */
  command: number;
  /** INFO bytes; most reads send the pack address as one byte, some (0x47 and 0x51 on Seplos) send nothing. */
  info?: Uint8Array;
  /** VER, default 0x20. */
  version?: number;
  /** CID1, default 0x46. */
  cid1?: number;
}

/** A request frame, e.g. `~20024642E00202FD33\r` for 0x42 to pack 2. */
export function encodeRequest(req: PylonRequest): Uint8Array {
  return encodeFrame({
    version: req.version ?? PYLON_VERSION,
    address: req.address,
    cid1: req.cid1 ?? PYLON_CID1_LFP,
    cid2: req.command,
    info: req.info ?? new Uint8Array(0),
  });
}

/** Device side: a reply frame with return code `rtn` (0 = OK). */
export function encodeReply(address: number, info: Uint8Array, rtn = 0, version = PYLON_VERSION): Uint8Array {
  return encodeFrame({ version, address, cid1: PYLON_CID1_LFP, cid2: rtn, info });
}

/** Check one frame; returns it or the FrameError it deserves (no throwing, so the framer can use it cheaply). */
function checkFrame(raw: Uint8Array): PylonFrame | FrameError {
  if (raw.length === 0) return new FrameError('truncated', 'empty frame');
  if (raw[0] !== PYLON_SOI)
    return new FrameError('bad-header', `starts with 0x${hex2(raw[0] as number)}, expected '~'`);
  if (raw.length < PYLON_MIN_FRAME) return new FrameError('truncated', `${raw.length} chars, a frame has at least 18`);
  const version = hexField(raw, 1, 2);
  const address = hexField(raw, 3, 2);
  const cid1 = hexField(raw, 5, 2);
  const cid2 = hexField(raw, 7, 2);
  const length = hexField(raw, 9, 4);
  if (version < 0 || address < 0 || cid1 < 0 || cid2 < 0 || length < 0) {
    return new FrameError('bad-header', 'header is not hex-ASCII');
  }
  const lenid = length & 0xfff;
  if (length >> 12 !== lengthChecksum(lenid)) {
    return new FrameError('bad-checksum', `LENGTH 0x${length.toString(16)} fails its LCHKSUM`);
  }
  if (lenid % 2 !== 0) return new FrameError('bad-length', `LENID ${lenid} is odd`);
  const total = PYLON_MIN_FRAME + lenid;
  if (raw.length < total) return new FrameError('truncated', `${raw.length} chars, LENGTH says ${total}`);
  if (raw[total - 1] !== PYLON_EOI) {
    return new FrameError('bad-footer', `char ${total - 1} is 0x${hex2(raw[total - 1] as number)}, expected '\\r'`);
  }
  if (raw.length > total) return new FrameError('bad-length', `${raw.length} chars, LENGTH says ${total}`);
  const stored = hexField(raw, total - 5, 4);
  const want = frameChecksum(raw, 1, total - 5);
  if (stored !== want) {
    return new FrameError(
      'bad-checksum',
      `CHKSUM ${stored < 0 ? 'is not hex' : `0x${stored.toString(16)}`} != 0x${want.toString(16)}`,
    );
  }
  const info = new Uint8Array(lenid / 2);
  for (let i = 0; i < info.length; i++) {
    const v = hexField(raw, 13 + 2 * i, 2);
    if (v < 0) return new FrameError('invalid-value', `INFO char ${2 * i} is not hex`);
    info[i] = v;
  }
  return { version, address, cid1, cid2, info };
}

/** Decode exactly one frame (framing, LENGTH, CHKSUM); no meaning applied to INFO. Throws FrameError. */
export function decodeFrame(raw: Uint8Array): PylonFrame {
  const r = checkFrame(raw);
  if (r instanceof FrameError) throw r;
  return r;
}

/** Decode one frame, or undefined when it is not a valid frame. Never throws. */
export function tryDecodeFrame(raw: Uint8Array): PylonFrame | undefined {
  const r = checkFrame(raw);
  return r instanceof FrameError ? undefined : r;
}

/**
 * The INFO of a good reply from `address`. Throws FrameError 'unexpected-reply' for another pack's reply or a request
 * (an echo of ours), 'bms-error' when the BMS answered with a return code other than 0 (named in the message).
 */
export function requireReplyInfo(frame: PylonFrame, address: number): Uint8Array {
  if (frame.address !== address) {
    throw new FrameError('unexpected-reply', `reply from address ${frame.address}, expected ${address}`);
  }
  if (!isReturnCode(frame.cid2))
    throw new FrameError('unexpected-reply', `CID2 0x${hex2(frame.cid2)} is a command, not a reply`);
  if (frame.cid2 !== 0) {
    throw new FrameError('bms-error', `BMS returned 0x${hex2(frame.cid2)} (${PYLON_RETURN_CODES[frame.cid2]})`);
  }
  return frame.info;
}

/** Result of scanning a buffer for frames. */
export type ExtractResult = FrameExtraction;

/**
 * Find frames in whatever arrived. A candidate runs from '~' over hex digits to '\r'; one that fails its checks is
 * dropped whole (it cannot contain a '~', so no frame is lost with it), and so is a '~' followed by any other char. An
 * incomplete candidate is kept only while it can still become a frame: hex digits only, and no longer than its LENGTH
 * (or the 12-bit maximum) allows.
 */
export function extractFrames(buffer: Uint8Array): ExtractResult {
  const frames: Uint8Array[] = [];
  let i = 0;
  let discarded = 0;
  while (i < buffer.length) {
    if (buffer[i] !== PYLON_SOI) {
      i++;
      discarded++;
      continue;
    }
    let j = i + 1;
    while (j < buffer.length && isHexChar(buffer[j])) j++;
    if (j === buffer.length) {
      if (stillPossible(buffer, i)) break; // wait for the rest
      discarded += j - i;
      i = j;
      continue;
    }
    if (buffer[j] === PYLON_EOI) {
      const candidate = buffer.subarray(i, j + 1);
      if (!(checkFrame(candidate) instanceof FrameError)) frames.push(candidate.slice());
      else discarded += candidate.length;
      i = j + 1;
      continue;
    }
    // '~' followed by hex digits and then neither '\r' nor more hex: not a frame.
    discarded += j - i;
    i = j;
  }
  return { frames, rest: buffer.slice(i), discarded };
}

/** An unterminated candidate at `i` (hex digits only so far) that is not yet longer than a frame can be. */
function stillPossible(buffer: Uint8Array, i: number): boolean {
  const have = buffer.length - i;
  if (have < 13) return true;
  const length = hexField(buffer, i + 9, 4);
  const lenid = length & 0xfff;
  if (length >> 12 !== lengthChecksum(lenid)) return false;
  return have < PYLON_MIN_FRAME + lenid;
}

/** Incremental framer; memory stays below one maximal frame because extractFrames keeps only a possible frame. */
export class PylonFramer extends IncrementalFramer {
  constructor() {
    super((buffer) => extractFrames(buffer));
  }
}

// ---- INFO helpers shared by the field tables --------------------------------------------------------------------

/** Sequential reader over INFO bytes (bounds-checked by ByteReader: a short INFO throws FrameError('truncated')). */
export class InfoReader {
  private readonly r: ByteReader;
  private at = 0;
  constructor(readonly info: Uint8Array) {
    this.r = new ByteReader(info);
  }
  /** Bytes consumed so far. */
  get offset(): number {
    return this.at;
  }
  u8(): number {
    const v = this.r.u8(this.at);
    this.at += 1;
    return v;
  }
  u16(): number {
    const v = this.r.u16be(this.at);
    this.at += 2;
    return v;
  }
  s16(): number {
    const v = this.r.s16be(this.at);
    this.at += 2;
    return v;
  }
  u24(): number {
    const hi = this.r.u8(this.at);
    const lo = this.r.u16be(this.at + 1);
    this.at += 3;
    return hi * 0x10000 + lo;
  }
  ascii(length: number): string {
    const s = this.r.ascii(this.at, length);
    this.at += length;
    return s;
  }
  skip(length: number): void {
    this.r.slice(this.at, length);
    this.at += length;
  }
}

/** Sequential writer for the device-side INFO encoders. */
export class InfoWriter {
  private readonly bytes: number[] = [];
  u8(v: number): this {
    this.bytes.push(Math.max(0, Math.min(0xff, Math.round(v))));
    return this;
  }
  u16(v: number): this {
    const x = Math.max(0, Math.min(0xffff, Math.round(v)));
    this.bytes.push(x >> 8, x & 0xff);
    return this;
  }
  s16(v: number): this {
    const x = Math.max(-0x8000, Math.min(0x7fff, Math.round(v))) & 0xffff;
    this.bytes.push(x >> 8, x & 0xff);
    return this;
  }
  u24(v: number): this {
    const x = Math.max(0, Math.min(0xffffff, Math.round(v)));
    this.bytes.push((x >> 16) & 0xff, (x >> 8) & 0xff, x & 0xff);
    return this;
  }
  /** ASCII, padded with spaces (or cut) to `length`. */
  ascii(s: string, length: number): this {
    for (let i = 0; i < length; i++) this.bytes.push(i < s.length ? s.charCodeAt(i) & 0x7f : 0x20);
    return this;
  }
  toBytes(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** Temperatures travel in 0.1 K with 2731 = 0 °C (both field tables). */
export function kelvinTenthsToCelsius(v: number): number {
  return Math.round(v - 2731) / 10;
}

/** Inverse of kelvinTenthsToCelsius. */
export function celsiusToKelvinTenths(c: number): number {
  return Math.round(c * 10) + 2731;
}

/** CID2 0x51 reply (same layout for Pylontech and Seplos): device name, software version, manufacturer. */
export interface PylonManufacturerInfo {
  /** Battery / device name, 10 chars, trimmed (e.g. "1101-SP15", "US2000C"). */
  deviceName: string;
  /** `major.minor` with two-digit minor, e.g. "2.07". */
  softwareVersion: string;
  /** Manufacturer name, 20 chars, trimmed (Seplos puts its CAN protocol setting here, e.g. "CANProtocol:Sofar"). */
  manufacturer: string;
}

/** CID2 0x51 INFO: 10 chars name · u8 major · u8 minor · 20 chars manufacturer. Throws FrameError. */
export function decodeManufacturerInfo(info: Uint8Array): PylonManufacturerInfo {
  const r = new InfoReader(info);
  const deviceName = r.ascii(10);
  const major = r.u8();
  const minor = r.u8();
  const manufacturer = r.ascii(20);
  return { deviceName, softwareVersion: `${major}.${String(minor).padStart(2, '0')}`, manufacturer };
}

/** Device side: CID2 0x51 INFO. */
export function encodeManufacturerInfo(v: PylonManufacturerInfo): Uint8Array {
  const [major = '0', minor = '0'] = v.softwareVersion.split('.');
  return new InfoWriter()
    .ascii(v.deviceName, 10)
    .u8(Number(major))
    .u8(Number(minor))
    .ascii(v.manufacturer, 20)
    .toBytes();
}
