/**
 * The Pylontech and Seplos V2 families (one "~…\r" framing, two field tables) as the contract suite sees them, built
 * only from the real captures in test/fixtures/seplos-pylon-rs485/ (provenance in its SOURCE.md). Kept apart from the
 * test files so that other families' tests can import them for the cross-family probe check.
 */
import { encodeRequest, extractFrames, PylonCommand } from '../../src/bms/pylon-rs485/protocol.js';
import * as pylontech from '../../src/bms/pylon-rs485/pylontech.js';
import * as seplos from '../../src/bms/pylon-rs485/seplos.js';
import { readFixture } from '../support/fixtures.js';
import type { BadFrame, BmsFamilyUnderTest, CapturedRequest, GoldenFrame } from './contract.js';

/** File names under test/fixtures/seplos-pylon-rs485/. */
export const PYLON_FILES = {
  pylontech: 'python-pylontech-frames.txt',
  seplos: 'seplos-v2-readme-frames.txt',
  requests: 'request-examples.txt',
} as const;

/** ASCII as bytes, with the capture files' `<CR>` marker turned into the real 0x0D. */
export function ascii(text: string): Uint8Array {
  const s = text.replace(/<CR>/g, '\r');
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** One frame line of a capture file. */
export interface PylonCaptureLine {
  line: number;
  direction: 'tx' | 'rx';
  /** Text before the frame, for request-examples.txt (e.g. `seplos 0x42 address 1`). */
  label: string;
  bytes: Uint8Array;
}

/** Frame lines: `~…<CR>` (a reply), `> ~…` (host), `< ~…` (BMS) or `label: ~…` (documented request). */
export function parsePylonCapture(text: string, bareDirection: 'tx' | 'rx' = 'rx'): PylonCaptureLine[] {
  const out: PylonCaptureLine[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    if (raw.startsWith('#')) return;
    const m = /^(?:([<>])\s*|([^~]*):\s*)?(~[0-9A-Fa-f]+<CR>)\s*$/.exec(raw);
    if (!m) return;
    const direction = m[1] === '>' ? 'tx' : m[1] === '<' ? 'rx' : m[2] !== undefined ? 'tx' : bareDirection;
    out.push({ line: index + 1, direction, label: (m[2] ?? '').trim(), bytes: ascii(m[3] as string) });
  });
  return out;
}

export const pylonCaptures = {
  pylontech: parsePylonCapture(readFixture(`seplos-pylon-rs485/${PYLON_FILES.pylontech}`)),
  seplos: parsePylonCapture(readFixture(`seplos-pylon-rs485/${PYLON_FILES.seplos}`)),
  requests: parsePylonCapture(readFixture(`seplos-pylon-rs485/${PYLON_FILES.requests}`)),
};

/** The frame on `line` of a capture. Throws when the file does not have one there. */
export function pylonFrame(lines: readonly PylonCaptureLine[], line: number): Uint8Array {
  const found = lines.find((l) => l.line === line);
  if (!found) throw new Error(`no frame on line ${line}`);
  return found.bytes;
}

const replies = (file: keyof typeof PYLON_FILES): GoldenFrame[] =>
  pylonCaptures[file]
    .filter((l) => l.direction === 'rx')
    .map((l) => ({ name: `${PYLON_FILES[file]} line ${l.line}`, bytes: l.bytes }));

/** Every real Pylontech reply (all distinct). */
export const pylontechGoldenFrames: readonly GoldenFrame[] = replies('pylontech');
/** Every real Seplos V2 reply (all distinct). */
export const seplosGoldenFrames: readonly GoldenFrame[] = replies('seplos');

const text = (s: string): Uint8Array => ascii(s);

/** Broken frames shared by both families (the framing is the same), made from the real UP2500 0x92 reply. */
const MGMT = '~20024600B014026EF05AA0022BFDD5C0F915\r';

function framingBadFrames(): BadFrame[] {
  return [
    { name: 'an empty buffer', bytes: new Uint8Array(0), code: 'truncated' },
    { name: 'the 0x92 reply cut to its first 17 chars', bytes: text(MGMT.slice(0, 17)), code: 'truncated' },
    { name: 'the 0x92 reply without its final \\r', bytes: text(MGMT.slice(0, -1)), code: 'truncated' },
    { name: 'the 0x92 reply with SOI "!" instead of "~"', bytes: text(`!${MGMT.slice(1)}`), code: 'bad-header' },
    { name: 'the 0x92 reply with VER "2G"', bytes: text(`~2G${MGMT.slice(3)}`), code: 'bad-header' },
    {
      // LENGTH B014 → A014: LENID 0x014 wants LCHKSUM 0xB.
      name: 'the 0x92 reply with its LCHKSUM nibble changed from B to A',
      bytes: text(MGMT.replace('B014', 'A014')),
      code: 'bad-checksum',
    },
    {
      // The whole frame read with an odd LENID: 0x013 has LCHKSUM (−4) mod 16 = C.
      name: 'the 0x92 reply with LENGTH C013 (odd number of INFO chars)',
      bytes: text(MGMT.replace('B014', 'C013')),
      code: 'bad-length',
    },
    {
      name: 'the 0x92 reply with its INFO status byte C0 changed to C1',
      bytes: text(MGMT.replace('FDD5C0F915', 'FDD5C1F915')),
      code: 'bad-checksum',
    },
    { name: 'the 0x92 reply with CHKSUM "F91G"', bytes: text(MGMT.replace('F915\r', 'F91G\r')), code: 'bad-checksum' },
    { name: 'the 0x92 reply ending in "\\n"', bytes: text(MGMT.replace('\r', '\n')), code: 'bad-footer' },
    { name: 'the 0x92 reply followed by one more char', bytes: text(`${MGMT}0`), code: 'bad-length' },
    {
      // RTN 0x04 "CID2 invalid"; CHKSUM worked out: Σ("200246040000") = 0x0252 → 0xFDAE.
      name: 'a reply with return code 0x04 (CID2 invalid) and no INFO',
      bytes: text('~200246040000FDAE\r'),
      code: 'bms-error',
    },
  ];
}

/** Request encoders against the requests the capture files hold (ESPHome's, and the spec examples). */
function capturedRequests(family: 'pylontech' | 'seplos'): CapturedRequest[] {
  const out: CapturedRequest[] = [];
  const add = (name: string, address: number, command: number, captured: Uint8Array) => {
    const info =
      family === 'pylontech' ? pylontech.requestInfo(command, address) : seplos.requestInfo(command, address);
    out.push({ name, encoded: encodeRequest({ address, command, info }), captured });
  };
  for (const l of pylonCaptures.requests) {
    const m = /^(pylontech|seplos) 0x([0-9a-f]+) address (\d+)$/i.exec(l.label);
    if (!m || m[1] !== family) continue;
    add(
      `${l.label} (${PYLON_FILES.requests} line ${l.line})`,
      Number(m[3]),
      Number.parseInt(m[2] as string, 16),
      l.bytes,
    );
  }
  if (family === 'seplos') {
    for (const l of pylonCaptures.seplos.filter((x) => x.direction === 'tx')) {
      const command = Number.parseInt(String.fromCharCode(l.bytes[7] as number, l.bytes[8] as number), 16);
      add(`ESPHome request CID2 0x${command.toString(16)} (${PYLON_FILES.seplos} line ${l.line})`, 0, command, l.bytes);
    }
  }
  return out;
}

/** Pylontech under the shared contract. */
export const pylontechFamily: BmsFamilyUnderTest = {
  id: 'pylontech',
  goldenFrames: pylontechGoldenFrames,
  startBytes: [0x7e],
  extract: (buffer) => extractFrames(buffer),
  decode: pylontech.decodeReply,
  probe: pylontech.probe,
  badFrames: framingBadFrames(),
  requests: capturedRequests('pylontech'),
};

/** Seplos V2 under the shared contract. */
export const seplosFamily: BmsFamilyUnderTest = {
  id: 'seplos',
  goldenFrames: seplosGoldenFrames,
  startBytes: [0x7e],
  extract: (buffer) => extractFrames(buffer),
  decode: seplos.decodeReply,
  probe: seplos.probe,
  badFrames: framingBadFrames(),
  requests: capturedRequests('seplos'),
};

/** Commands the captured requests use, for tests that check the coverage of the request rows. */
export const CAPTURED_SEPLOS_COMMANDS = [
  PylonCommand.analogValues,
  PylonCommand.manufacturerInfo,
  PylonCommand.systemParameters,
  PylonCommand.protocolVersion,
] as const;
