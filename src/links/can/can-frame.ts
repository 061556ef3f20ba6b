/**
 * CAN frames as the links carry them, and the text notations people paste (candump, can-utils `cansend`,
 * CAN logs of other projects). Pure: no I/O.
 */
import { FrameError } from '../../domain/errors.js';
import type { Link } from '../link.js';

/** One classic CAN 2.0 data frame. */
export interface CanFrame {
  /** 11-bit (ext = false) or 29-bit (ext = true) identifier. */
  readonly id: number;
  readonly ext: boolean;
  /** 0–8 bytes. */
  readonly data: Uint8Array;
  /** Remote request frame (no data). */
  readonly rtr?: boolean;
}

/** Accept a frame when `(frame.id & mask) === (id & mask)` (and, if given, its `ext` matches). */
export interface CanFilter {
  readonly id: number;
  readonly mask: number;
  readonly ext?: boolean;
}

/** A Link of CAN frames: SocketCAN or a USB-CAN adapter. */
export interface CanLink extends Link<CanFrame> {
  /** Only frames matching one of these reach onData (empty = all). Applies at once, also while open. */
  setFilters(filters: readonly CanFilter[]): void;
}

export const CAN_STD_MAX_ID = 0x7ff;
export const CAN_EXT_MAX_ID = 0x1fff_ffff;

/** Throws RangeError unless the frame can go on a classic CAN bus. */
export function checkCanFrame(frame: CanFrame): void {
  const max = frame.ext ? CAN_EXT_MAX_ID : CAN_STD_MAX_ID;
  if (!Number.isInteger(frame.id) || frame.id < 0 || frame.id > max) {
    throw new RangeError(`CAN id 0x${frame.id.toString(16)} out of range for ${frame.ext ? '29' : '11'}-bit`);
  }
  if (frame.data.length > 8) throw new RangeError(`CAN data is at most 8 bytes, got ${frame.data.length}`);
}

export function matchesFilters(frame: CanFrame, filters: readonly CanFilter[]): boolean {
  if (filters.length === 0) return true;
  for (const f of filters) {
    if (f.ext !== undefined && f.ext !== frame.ext) continue;
    if (((frame.id ^ f.id) & f.mask) === 0) return true;
  }
  return false;
}

/** Short text of a frame in cansend notation: `351#1C0200000000E801`, `18FF50E5#01` (ext ids are 8 digits). */
export function formatCanFrame(frame: CanFrame): string {
  const id = frame.id
    .toString(16)
    .toUpperCase()
    .padStart(frame.ext ? 8 : 3, '0');
  if (frame.rtr === true) return `${id}#R`;
  let data = '';
  for (const b of frame.data) data += b.toString(16).toUpperCase().padStart(2, '0');
  return `${id}#${data}`;
}

function hexData(text: string): Uint8Array {
  const clean = text.replace(/[\s.]/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new FrameError('invalid-value', `not CAN data: "${text}"`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  if (out.length > 8) throw new FrameError('bad-length', `${out.length} data bytes, CAN has at most 8`);
  return out;
}

function parseId(text: string): { id: number; ext: boolean } {
  if (!/^[0-9a-fA-F]{1,8}$/.test(text)) throw new FrameError('invalid-value', `not a CAN id: "${text}"`);
  const id = Number.parseInt(text, 16);
  const ext = text.length > 3 || id > CAN_STD_MAX_ID;
  if (id > CAN_EXT_MAX_ID) throw new FrameError('invalid-value', `CAN id ${text} has more than 29 bits`);
  return { id, ext };
}

/**
 * One frame from a line in any of the usual notations; undefined for a line without a frame (blank, `#` comment).
 * - cansend / `candump -L`: `351#1C0200000000E801`, `(1700000000.123456) can0 351#1C02…`, `18FF50E5#01`, `123#R`
 * - candump default: `  vcan0  351   [8]  1C 02 00 00 00 00 E8 01`
 * - logs with a bracketed DLC: `(0.001) RX0 438 [8] 55 55 01 D6 47 68 10 BF`, `351 [8] 43 02 E8 03 …`
 * Throws FrameError for a line that looks like a frame but is malformed (bad hex, DLC ≠ byte count).
 */
export function parseCanLine(line: string): CanFrame | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  const hash = /(?:^|\s)([0-9a-fA-F]{1,8})#(R|[0-9a-fA-F.]*)\s*$/.exec(text);
  if (hash !== null) {
    const { id, ext } = parseId(hash[1] as string);
    if (hash[2] === 'R') return { id, ext, data: new Uint8Array(0), rtr: true };
    return { id, ext, data: hexData(hash[2] as string) };
  }
  const bracket = /(?:^|\s)([0-9a-fA-F]{1,8})\s+\[(\d)\]((?:\s+[0-9a-fA-F]{2})*)\s*(?:\S.*)?$/.exec(text);
  if (bracket !== null) {
    const { id, ext } = parseId(bracket[1] as string);
    const dlc = Number(bracket[2]);
    const data = hexData((bracket[3] as string).trim());
    if (data.length !== dlc) throw new FrameError('bad-length', `DLC ${dlc} but ${data.length} data bytes: "${text}"`);
    return { id, ext, data };
  }
  throw new FrameError('invalid-value', `not a CAN frame: "${text}"`);
}

/** Every frame of a multi-line candump / log text (comment and blank lines skipped). */
export function parseCanLog(text: string): CanFrame[] {
  const out: CanFrame[] = [];
  for (const line of text.split(/\r?\n/)) {
    const frame = parseCanLine(line);
    if (frame !== undefined) out.push(frame);
  }
  return out;
}
