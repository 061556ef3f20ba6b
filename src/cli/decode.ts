/**
 * `batterybank decode <family> HEX...`: decode captured frames into the snapshot's field names.
 * The hex arguments are joined (so `DD 03 00 …` split by the shell works); for the Pylontech/Seplos ASCII
 * protocol the frame text itself (`~20024A…`) is accepted too. Frames are found with the family's own
 * framer; bytes that belong to no valid frame are reported with the family's FrameError code.
 */
import { parseLine as parseBlueNovaLine } from '../bms/bluenova/protocol.js';
import * as daly from '../bms/daly/protocol.js';
import {
  decodeBasicInfo,
  decodeCellVoltages,
  decodeFrame,
  decodeHardwareVersion,
  JBD_START,
  JbdRegister,
  toSnapshot,
} from '../bms/jbd/protocol.js';
import * as jkPb from '../bms/jk-modbus/protocol.js';
import * as jkSerial from '../bms/jk-serial/protocol.js';
import { CAN_FAMILIES as CAN_FAMILY_IDS, type CanFamilyId, decodeCanText } from '../bms/pylon-can/can-decode.js';
import * as pylon from '../bms/pylon-rs485/protocol.js';
import * as pylontech from '../bms/pylon-rs485/pylontech.js';
import * as seplos from '../bms/pylon-rs485/seplos.js';
import { fromHex, toHex } from '../bytes/hex.js';
import type { BatterySnapshot } from '../domain/battery-snapshot.js';
import { FrameError } from '../domain/errors.js';

export type DecodedRecord = Record<string, unknown>;

/** A snapshot without its timestamp (decode has no clock). */
function fields(s: BatterySnapshot): DecodedRecord {
  const { timestampMs: _t, ...rest } = s;
  return rest;
}

/** Split a JBD byte string into frames by their length bytes; anything that does not fit is a FrameError. */
function* jbdFrames(bytes: Uint8Array): Generator<Uint8Array> {
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i] !== JBD_START) {
      throw new FrameError('bad-header', `byte ${i} is 0x${toHex(bytes.subarray(i, i + 1))}, expected 0xDD`);
    }
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
      return {
        ...base,
        ...fields(toSnapshot({ basic }, 0)),
        balanceBits: basic.balanceBits,
        protectionBits: basic.protectionBits,
      };
    }
    case JbdRegister.cellVoltages:
      return { ...base, cellVoltages: decodeCellVoltages(f.payload) };
    case JbdRegister.hardwareVersion:
      return { ...base, identity: { model: decodeHardwareVersion(f.payload) } };
    default:
      return { ...base, payload: toHex(f.payload) };
  }
}

/**
 * Frames of a family with an incremental framer: every byte must belong to a valid frame. Bytes that do not
 * are decoded on their own with the family's strict decoder so the error names its real cause.
 */
function framed(
  extract: (b: Uint8Array) => { frames: Uint8Array[]; rest: Uint8Array; discarded: number },
  strict: (b: Uint8Array) => unknown,
): (bytes: Uint8Array) => Iterable<Uint8Array> {
  return (bytes) => {
    const { frames, rest, discarded } = extract(bytes);
    if (discarded > 0 || rest.length > 0 || frames.length === 0) {
      const used = frames.reduce((n, f) => n + f.length, 0);
      // Decode what the framer refused; if even that passes, the bytes are a fragment.
      strict(frames.length === 0 ? bytes : bytes.subarray(0, bytes.length - used));
      throw new FrameError('truncated', `${bytes.length - used} byte(s) do not form a complete frame`);
    }
    return frames;
  };
}

function decodeJkPb(frame: Uint8Array): DecodedRecord {
  const f = jkPb.decodeFrame(frame);
  if ((f.kind === 'reply' || f.kind === 'record') && f.record.type === 'cell-info') {
    return { ...f, ...fields(jkPb.toSnapshot({ status: f.record.cellInfo }, 0)) };
  }
  return { ...f };
}

function decodePylontech(frame: Uint8Array): DecodedRecord {
  const { address, reply } = pylontech.decodeReply(frame);
  if (reply?.kind === 'analog') {
    const packs = reply.value.modules.map((analog) => fields(pylontech.toSnapshot({ analog }, 0)));
    return { address, kind: 'analog', ...(packs.length === 1 ? packs[0] : { packs }) };
  }
  if (reply) return { address, ...reply };
  const f = pylon.decodeFrame(frame);
  return { address, cid2: f.cid2, info: toHex(f.info) };
}

function decodeSeplos(frame: Uint8Array): DecodedRecord {
  const { address, reply } = seplos.decodeReply(frame);
  if (reply?.kind === 'telemetry')
    return { address, kind: 'telemetry', ...fields(seplos.toSnapshot({ telemetry: reply.value }, 0)) };
  if (reply) return { address, ...reply };
  const f = pylon.decodeFrame(frame);
  return { address, cid2: f.cid2, info: toHex(f.info) };
}

interface DecodeFamily {
  frames: (b: Uint8Array) => Iterable<Uint8Array>;
  decode: (f: Uint8Array) => DecodedRecord;
  /** Accepts the protocol's ASCII frame text as well as hex. */
  ascii?: boolean;
}

const pylonFrames = framed(pylon.extractFrames, pylon.decodeFrame);

const FAMILIES: Record<string, DecodeFamily> = {
  jbd: { frames: jbdFrames, decode: decodeJbd },
  'jk-serial': {
    frames: framed(jkSerial.extractFrames, jkSerial.decodeFrame),
    decode: (f) => fields(jkSerial.toSnapshot(jkSerial.decodeReadAllReply(f), 0)),
  },
  'jk-modbus': {
    frames: framed((b) => jkPb.extractFrames(b, { endOfInput: true }), jkPb.decodeFrame),
    decode: decodeJkPb,
  },
  daly: { frames: framed(daly.extractFrames, daly.decodeFrame), decode: (f) => ({ ...daly.decodeReply(f) }) },
  pylontech: { frames: pylonFrames, decode: decodePylontech, ascii: true },
  seplos: { frames: pylonFrames, decode: decodeSeplos, ascii: true },
};

/** CAN families take candump notation (`351#1C02…`, one frame per argument or line). */
const CAN_DECODE = new Set<string>(CAN_FAMILY_IDS);

/** Families whose frames are console text lines, not bytes (a capture holds their UTF-8 as hex). */
export const TEXT_FAMILIES: ReadonlySet<string> = new Set(['bluenova']);

export const DECODE_FAMILIES = [...Object.keys(FAMILIES), ...CAN_FAMILY_IDS, ...TEXT_FAMILIES];

/** BlueNova console lines (one per argument or line): the rule each matches and its value. */
function decodeConsoleLines(args: readonly string[]): { records: DecodedRecord[]; error?: string } {
  const records: DecodedRecord[] = [];
  for (const line of args.join('\n').split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const p = parseBlueNovaLine(line);
    if (!p) records.push({ line: 'unknown', text: line.slice(0, 120) });
    else if (p.value === undefined) records.push({ line: p.key, error: `malformed value in "${line.slice(0, 120)}"` });
    else records.push({ line: p.key, ...(p.index !== undefined ? { index: p.index } : {}), value: p.value });
  }
  if (records.length === 0) return { records, error: 'no console line given (e.g. "Vpack: 52920")' };
  return { records };
}

function inputBytes(fam: DecodeFamily, args: readonly string[]): Uint8Array {
  const joined = args.join('');
  if (fam.ascii && joined.startsWith('~')) {
    // The end-of-frame CR may be given as a real CR, as the two characters \r, or as <CR>.
    const text = `${joined.replace(/(\r|\\r|<CR>)$/i, '')}\r`;
    return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
  }
  return fromHex(joined);
}

/**
 * Decode; returns the records decoded before the first error and that error (if any).
 * Never throws for bad input.
 */
export function decodeHex(family: string, hexArgs: readonly string[]): { records: DecodedRecord[]; error?: string } {
  if (CAN_DECODE.has(family)) return decodeCan(family as CanFamilyId, hexArgs);
  if (TEXT_FAMILIES.has(family)) return decodeConsoleLines(hexArgs);
  const fam = FAMILIES[family];
  if (!fam) return { records: [], error: `unknown family "${family}" (known: ${DECODE_FAMILIES.join(', ')})` };
  let bytes: Uint8Array;
  try {
    bytes = inputBytes(fam, hexArgs);
  } catch (e) {
    return { records: [], error: `bad-hex: ${(e as Error).message}` };
  }
  if (bytes.length === 0) return { records: [], error: 'no bytes given' };
  const records: DecodedRecord[] = [];
  try {
    for (const frame of fam.frames(bytes)) records.push(fam.decode(frame));
  } catch (e) {
    if (e instanceof FrameError) return { records, error: e.message };
    if (e instanceof RangeError || e instanceof TypeError) return { records, error: `invalid-value: ${e.message}` };
    throw e;
  }
  return { records };
}

function decodeCan(family: CanFamilyId, args: readonly string[]): { records: DecodedRecord[]; error?: string } {
  const records: DecodedRecord[] = [];
  for (const line of decodeCanText(args.join('\n'), family)) {
    const r = line as unknown as DecodedRecord;
    if (typeof r.error === 'string') return { records, error: `${r.error}` };
    records.push(r);
  }
  if (records.length === 0) return { records, error: 'no CAN frame given (candump notation: 351#1C02…)' };
  return { records };
}
