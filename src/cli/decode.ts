/**
 * `batterybank decode <family> HEX...`: decode captured frames into the snapshot's field names.
 * The hex arguments are joined (so `DD 03 00 …` split by the shell works) and read frame by frame;
 * the first bad frame is reported with its FrameError code.
 */
import {
  decodeBasicInfo,
  decodeCellVoltages,
  decodeFrame,
  decodeHardwareVersion,
  JBD_START,
  JbdRegister,
  toSnapshot,
} from '../bms/jbd/protocol.js';
import { fromHex, toHex } from '../bytes/hex.js';
import { FrameError } from '../domain/errors.js';

export type DecodedRecord = Record<string, unknown>;

/** Split a JBD byte string into frames by their length bytes; anything that does not fit is a FrameError. */
function* jbdFrames(bytes: Uint8Array): Generator<Uint8Array> {
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i] !== JBD_START)
      throw new FrameError('bad-header', `byte ${i} is 0x${toHex(bytes.subarray(i, i + 1))}, expected 0xDD`);
    if (bytes.length - i < 4) throw new FrameError('truncated', `${bytes.length - i} byte(s) left at offset ${i}`);
    const total = (bytes[i + 3] as number) + 7;
    const end = Math.min(bytes.length, i + total);
    yield bytes.subarray(i, end);
    i = end;
  }
}

function decodeJbd(frame: Uint8Array): DecodedRecord {
  const f = decodeFrame(frame);
  const base: DecodedRecord = { register: `0x${f.register.toString(16).padStart(2, '0')}`, status: f.status };
  if (f.status !== 0) return { ...base, error: 'BMS reported an error status' };
  switch (f.register) {
    case JbdRegister.basicInfo: {
      const basic = decodeBasicInfo(f.payload);
      const { timestampMs: _t, ...snap } = toSnapshot({ basic }, 0);
      return { ...base, ...snap, balanceBits: basic.balanceBits, protectionBits: basic.protectionBits };
    }
    case JbdRegister.cellVoltages:
      return { ...base, cellVoltages: decodeCellVoltages(f.payload) };
    case JbdRegister.hardwareVersion:
      return { ...base, identity: { model: decodeHardwareVersion(f.payload) } };
    default:
      return { ...base, payload: toHex(f.payload) };
  }
}

const FAMILIES: Record<
  string,
  { frames: (b: Uint8Array) => Iterable<Uint8Array>; decode: (f: Uint8Array) => DecodedRecord }
> = {
  jbd: { frames: jbdFrames, decode: decodeJbd },
};

export const DECODE_FAMILIES = Object.keys(FAMILIES);

/**
 * Decode; returns the records decoded before the first error and that error (if any).
 * Never throws for bad input.
 */
export function decodeHex(family: string, hexArgs: readonly string[]): { records: DecodedRecord[]; error?: string } {
  const fam = FAMILIES[family];
  if (!fam) return { records: [], error: `unknown family "${family}" (known: ${DECODE_FAMILIES.join(', ')})` };
  let bytes: Uint8Array;
  try {
    bytes = fromHex(hexArgs.join(''));
  } catch (e) {
    return { records: [], error: `bad-hex: ${(e as Error).message}` };
  }
  if (bytes.length === 0) return { records: [], error: 'no bytes given' };
  const records: DecodedRecord[] = [];
  try {
    for (const frame of fam.frames(bytes)) records.push(fam.decode(frame));
  } catch (e) {
    if (e instanceof FrameError) return { records, error: e.message };
    throw e;
  }
  return { records };
}
