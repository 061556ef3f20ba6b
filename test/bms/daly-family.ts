/**
 * The classic Daly family as the contract suite sees it, built only from the real captures in test/fixtures/daly/
 * (provenance in test/fixtures/daly/SOURCE.md). Kept apart from daly.test.ts so that other families' tests can import
 * `dalyFamily` for the cross-family probe check.
 */
import { decodeReply, encodeRequest, extractFrames, probe } from '../../src/bms/daly/protocol.js';
import { toHex } from '../../src/bytes/hex.js';
import { hexBytes, readFixture } from '../support/fixtures.js';
import type { BadFrame, BmsFamilyUnderTest, CapturedRequest, GoldenFrame } from './contract.js';

/** File names under test/fixtures/daly/. */
export const DALY_FILES = {
  ble: 'python-daly-bms-ble-frames.txt',
  modbus24: 'daly_bms_24cells.txt',
} as const;

/** One `>` or `<` line of the python-daly-bms capture: the bytes as one chunk, as the BLE stack delivered them. */
export interface DalyCaptureLine {
  line: number;
  direction: 'tx' | 'rx';
  bytes: Uint8Array;
}

/** The capture, parsed independently of our framer: chunks by direction, and the `# CHECK frame` list. */
export interface DalyCapture {
  chunks: DalyCaptureLine[];
  /** Frames the capture's author listed (and checksummed) one by one, with their line numbers. */
  checked: { line: number; bytes: Uint8Array }[];
}

export function parseDalyCapture(text: string): DalyCapture {
  const chunks: DalyCaptureLine[] = [];
  const checked: { line: number; bytes: Uint8Array }[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const check = /^# CHECK frame ([0-9a-f]+) /i.exec(raw);
    if (check) {
      checked.push({ line, bytes: hexBytes(check[1] as string) });
      return;
    }
    const m = /^([<>])([0-9a-f]+)$/i.exec(raw.trim());
    if (m) chunks.push({ line, direction: m[1] === '>' ? 'tx' : 'rx', bytes: hexBytes(m[2] as string) });
  });
  return { chunks, checked };
}

export const dalyCapture = parseDalyCapture(readFixture(`daly/${DALY_FILES.ble}`));

/** The chunk on `line`. Throws when the file does not have one there. */
export function dalyChunk(line: number): Uint8Array {
  const found = dalyCapture.chunks.find((c) => c.line === line);
  if (!found) throw new Error(`no capture chunk on line ${line}`);
  return found.bytes;
}

/** The checked frame whose hex is `hex` (so tests name frames by content). */
export function dalyFrame(hex: string): Uint8Array {
  const found = dalyCapture.checked.find((c) => toHex(c.bytes, '').toLowerCase() === hex.toLowerCase());
  if (!found) throw new Error(`the capture has no checked frame ${hex}`);
  return found.bytes;
}

function distinctGoldens(): GoldenFrame[] {
  const seen = new Set<string>();
  const out: GoldenFrame[] = [];
  for (const { line, bytes } of dalyCapture.checked) {
    const key = toHex(bytes, '');
    if (seen.has(key)) continue;
    seen.add(key);
    const id = (bytes[2] as number).toString(16);
    const n = bytes[2] === 0x95 || bytes[2] === 0x96 ? ` frame ${bytes[4]}` : '';
    out.push({ name: `${DALY_FILES.ble} line ${line} (0x${id}${n})`, bytes });
  }
  return out;
}

/** Every distinct real reply frame in the Daly fixtures. */
export const dalyGoldenFrames: readonly GoldenFrame[] = distinctGoldens();

const PACK = '0xa5 0x01 0x90 0x08 0x02 0x12 0x00 0x00 0x74 0xf5 0x03 0x9a 0x58';

function edited(bytes: Uint8Array, edits: Record<number, number>): Uint8Array {
  const out = bytes.slice();
  for (const [at, value] of Object.entries(edits)) out[Number(at)] = value;
  return out;
}

const pack = hexBytes(PACK);

/** Broken frames, each one edit away from the real 0x90 reply (53.0 V, −5.9 A, 92.2 %). */
export const dalyBadFrames: readonly BadFrame[] = [
  { name: 'the 0x90 reply cut to 12 bytes', bytes: pack.subarray(0, 12), code: 'truncated' },
  { name: 'an empty buffer', bytes: new Uint8Array(0), code: 'truncated' },
  { name: 'the 0x90 reply with its checksum off by one', bytes: edited(pack, { 12: 0x59 }), code: 'bad-checksum' },
  { name: 'the 0x90 reply with one SOC bit flipped', bytes: edited(pack, { 11: 0x9b }), code: 'bad-checksum' },
  { name: 'the 0x90 reply starting 0xA4', bytes: edited(pack, { 0: 0xa4 }), code: 'bad-header' },
  // Σ changes by +1 with the length byte 0x09, so the checksum is made right (0x59) to reach the length check.
  { name: 'the 0x90 reply with length byte 0x09', bytes: edited(pack, { 3: 0x09, 12: 0x59 }), code: 'bad-length' },
  { name: 'the 0x90 reply followed by one more byte', bytes: Uint8Array.from([...pack, 0x00]), code: 'bad-length' },
  { name: 'a captured BLE read request (host address 0x80)', bytes: dalyChunk(4), code: 'bad-header' },
  {
    // The corrupted run of the real 0x95 stream, cut to 13 bytes: length byte 0x40 (and no valid checksum).
    name: 'the first 13 bytes of the corrupted run in the real 0x95 stream',
    bytes: hexBytes('a5a8004000702440000d300000'),
    code: 'bad-length',
  },
  {
    // A well-formed reply with a data id the family has no decoder for: Σ(A5 01 50 08) = 0xFE.
    name: 'a reply to data id 0x50 (rated parameters), which the driver does not read',
    bytes: hexBytes('a50150080000000000000000fe'),
    code: 'unexpected-reply',
  },
];

/** Our request encoder against the requests the python-daly-bms BLE capture sent (host address 0x80). */
export const dalyCapturedRequests: readonly CapturedRequest[] = dalyCapture.chunks
  .filter((c) => c.direction === 'tx')
  .map((c) => ({
    name: `read 0x${(c.bytes[2] as number).toString(16)} over BLE (line ${c.line})`,
    encoded: encodeRequest(c.bytes[2] as number, 0x80),
    captured: c.bytes,
  }));

/** Classic Daly under the shared contract. */
export const dalyFamily: BmsFamilyUnderTest = {
  id: 'daly',
  goldenFrames: dalyGoldenFrames,
  startBytes: [0xa5],
  extract: (buffer) => extractFrames(buffer),
  decode: decodeReply,
  probe,
  badFrames: dalyBadFrames,
  requests: dalyCapturedRequests,
};

/** Real replies of the newer Daly Modbus ("D2") protocol: the classic family must refuse them. */
export const dalyForeignFrames: readonly GoldenFrame[] = readFixture(`daly/${DALY_FILES.modbus24}`)
  .split(/\r?\n/)
  .map((text, index) => ({ text, line: index + 1 }))
  .filter(({ text }) => /^0x/i.test(text.trim()))
  .map(({ text, line }) => ({
    name: `${DALY_FILES.modbus24} line ${line} (Daly Modbus D2 reply)`,
    bytes: hexBytes(text),
  }));
