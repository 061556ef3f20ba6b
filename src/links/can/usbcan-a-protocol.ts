/**
 * Waveshare USB-CAN-A serial framing (CH340 USB-serial, 2 000 000 Bd). Pure: no I/O. docs/protocols/deye-can.md
 * and protocols.md §5.2.
 *
 * Variable-length data frame (what we send, and what the adapter sends in its default mode):
 *   AA | info | id (2 bytes LE standard, 4 bytes LE extended) | data[dlc] | 55
 *   info = 0xC0 | ext << 5 | rtr << 4 | dlc
 * Fixed 20-byte frame (the adapter's other mode; the Deye seed's captures):
 *   AA 55 | 01 type data | 01 std / 02 ext | 01 data / 02 remote | id u32 LE | dlc | data[8] | 00 | checksum
 *   checksum = Σ bytes 2..18 & 0xFF
 * Setup command (fixed 20 bytes, type 0x12 = "variable-length protocol"):
 *   AA 55 12 | speed | frame type (01 std, 02 ext) | filter id u32 | mask u32 | mode (00 normal) | 01 | 00×4 | checksum
 */
import { FrameError } from '../../domain/errors.js';
import type { CanFrame } from './can-frame.js';

export const USBCAN_A_BAUD = 2_000_000;
export const USBCAN_START = 0xaa;
export const USBCAN_END = 0x55;
const FIXED_LEN = 20;

/** Bit rate → the adapter's speed code. */
export const USBCAN_SPEEDS: ReadonlyMap<number, number> = new Map([
  [1_000_000, 0x01],
  [800_000, 0x02],
  [500_000, 0x03],
  [400_000, 0x04],
  [250_000, 0x05],
  [200_000, 0x06],
  [125_000, 0x07],
  [100_000, 0x08],
  [50_000, 0x09],
  [20_000, 0x0a],
  [10_000, 0x0b],
  [5_000, 0x0c],
]);

function sum(bytes: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += bytes[i] as number;
  return s & 0xff;
}

/** The setup command for `bitrate` (normal mode, accept all ids, variable-length protocol). */
export function encodeSetup(bitrate: number, ext = false): Uint8Array {
  const speed = USBCAN_SPEEDS.get(bitrate);
  if (speed === undefined) {
    throw new RangeError(`USB-CAN-A bit rate ${bitrate} is not one of ${[...USBCAN_SPEEDS.keys()].join(', ')}`);
  }
  const out = new Uint8Array(FIXED_LEN);
  out.set([0xaa, 0x55, 0x12, speed, ext ? 0x02 : 0x01]);
  out[14] = 0x01;
  out[19] = sum(out, 2, 19);
  return out;
}

/** A frame in the variable-length format. */
export function encodeVariable(frame: CanFrame): Uint8Array {
  const dlc = frame.data.length;
  if (dlc > 8) throw new RangeError('CAN data is at most 8 bytes');
  const idLen = frame.ext ? 4 : 2;
  const out = new Uint8Array(2 + idLen + dlc + 1);
  out[0] = USBCAN_START;
  out[1] = 0xc0 | (frame.ext ? 0x20 : 0) | (frame.rtr === true ? 0x10 : 0) | dlc;
  for (let i = 0; i < idLen; i++) out[2 + i] = (frame.id >>> (8 * i)) & 0xff;
  out.set(frame.data, 2 + idLen);
  out[out.length - 1] = USBCAN_END;
  return out;
}

/** A frame in the fixed 20-byte format (the adapter's other mode; device side for simulators and tests). */
export function encodeFixed(frame: CanFrame): Uint8Array {
  const dlc = frame.data.length;
  if (dlc > 8) throw new RangeError('CAN data is at most 8 bytes');
  const out = new Uint8Array(FIXED_LEN);
  out.set([0xaa, 0x55, 0x01, frame.ext ? 0x02 : 0x01, frame.rtr === true ? 0x02 : 0x01]);
  for (let i = 0; i < 4; i++) out[5 + i] = (frame.id >>> (8 * i)) & 0xff;
  out[9] = dlc;
  out.set(frame.data, 10);
  out[19] = sum(out, 2, 19);
  return out;
}

/** Length of the frame starting at `buf[at]` (an 0xAA), 0 if more bytes are needed, -1 if it is no frame start. */
function frameLength(buf: Uint8Array, at: number): number {
  const second = buf[at + 1];
  if (second === undefined) return 0;
  if (second === 0x55) return FIXED_LEN;
  if ((second & 0xc0) !== 0xc0) return -1;
  const dlc = second & 0x0f;
  if (dlc > 8) return -1;
  return 2 + (second & 0x20 ? 4 : 2) + dlc + 1;
}

/** Decode exactly one adapter frame (either format). Throws FrameError. */
export function decodeUsbCanFrame(raw: Uint8Array): CanFrame {
  if (raw.length < 2) throw new FrameError('truncated', `${raw.length} bytes, a USB-CAN-A frame has at least 5`);
  if (raw[0] !== USBCAN_START)
    throw new FrameError('bad-header', `starts with 0x${(raw[0] as number).toString(16)}, not 0xAA`);
  const len = frameLength(raw, 0);
  if (len < 0) throw new FrameError('bad-header', `0x${(raw[1] as number).toString(16)} is no USB-CAN-A frame type`);
  if (raw.length < len) throw new FrameError('truncated', `${raw.length} bytes, this frame has ${len}`);
  if (raw.length > len) throw new FrameError('bad-length', `${raw.length} bytes, this frame has ${len}`);
  if (len === FIXED_LEN) {
    if (sum(raw, 2, 19) !== raw[19]) throw new FrameError('bad-checksum', 'USB-CAN-A checksum mismatch');
    if (raw[2] !== 0x01)
      throw new FrameError('unexpected-reply', `fixed frame type 0x${(raw[2] as number).toString(16)} is not data`);
    const ext = raw[3] === 0x02;
    const dlc = raw[9] as number;
    if (dlc > 8) throw new FrameError('bad-length', `DLC ${dlc}`);
    const id =
      ((raw[5] as number) | ((raw[6] as number) << 8) | ((raw[7] as number) << 16) | ((raw[8] as number) << 24)) >>> 0;
    if (id > (ext ? 0x1fff_ffff : 0x7ff)) throw new FrameError('invalid-value', `id 0x${id.toString(16)} too large`);
    const frame: CanFrame = { id, ext, data: raw.slice(10, 10 + dlc) };
    return raw[4] === 0x02 ? { ...frame, rtr: true } : frame;
  }
  if (raw[len - 1] !== USBCAN_END) throw new FrameError('bad-footer', 'USB-CAN-A frame does not end with 0x55');
  const info = raw[1] as number;
  const ext = (info & 0x20) !== 0;
  const idLen = ext ? 4 : 2;
  let id = 0;
  for (let i = idLen - 1; i >= 0; i--) id = id * 256 + (raw[2 + i] as number);
  if (id > (ext ? 0x1fff_ffff : 0x7ff)) throw new FrameError('invalid-value', `id 0x${id.toString(16)} too large`);
  const frame: CanFrame = { id, ext, data: raw.slice(2 + idLen, len - 1) };
  return info & 0x10 ? { ...frame, rtr: true } : frame;
}

/**
 * Complete adapter frames at the front of `buffer` and the bytes to keep. Resyncs byte by byte: a candidate that
 * fails its checksum or end byte is dropped one byte at a time, so a frame hidden after garbage is still found.
 */
export function extractUsbCanFrames(buffer: Uint8Array): { frames: Uint8Array[]; rest: Uint8Array } {
  const frames: Uint8Array[] = [];
  let at = 0;
  while (at < buffer.length) {
    if (buffer[at] !== USBCAN_START) {
      at++;
      continue;
    }
    const len = frameLength(buffer, at);
    if (len < 0) {
      at++;
      continue;
    }
    if (len === 0 || at + len > buffer.length) break;
    const candidate = buffer.subarray(at, at + len);
    try {
      decodeUsbCanFrame(candidate);
    } catch {
      at++;
      continue;
    }
    frames.push(candidate.slice());
    at += len;
  }
  return { frames, rest: buffer.slice(at) };
}
