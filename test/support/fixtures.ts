/**
 * Loading and parsing of the real captures under test/fixtures/ (provenance in each family's SOURCE.md).
 * Paths are resolved from this file, so tests work from any working directory and need nothing outside the repo.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fromHex } from '../../src/bytes/hex.js';

const FIXTURES_DIR = new URL('../fixtures/', import.meta.url);

/** Absolute path of a fixture, e.g. `fixturePath('jbd/communications2.txt')`. */
export function fixturePath(relative: string): string {
  return fileURLToPath(new URL(relative, FIXTURES_DIR));
}

/** A fixture's text. */
export function readFixture(relative: string): string {
  return readFileSync(fixturePath(relative), 'utf8');
}

/**
 * Hex bytes as captures write them: `DD:A5:03`, `dd a5 03`, `DD.03.00`, `dda503`. Throws on anything else
 * (placeholders such as `XX` included), so a typo can never turn into a shorter frame.
 */
export function hexBytes(text: string): Uint8Array {
  return fromHex(text.trim().replace(/\./g, ' '));
}

/** Like hexBytes, but undefined for text that is not hex (comment lines, `^^--ACK` markers, masked bytes). */
export function tryHexBytes(text: string): Uint8Array | undefined {
  if (!/^[\s0-9a-f:.,]+$/i.test(text) || !/[0-9a-f]/i.test(text)) return undefined;
  try {
    return hexBytes(text);
  } catch {
    return undefined;
  }
}

/** One frame from an arrow-style capture. */
export interface ArrowFrame {
  /** 1-based line number in the file. */
  line: number;
  /** `>>>` = host → device, `<<<` = device → host, as the capture's author marked it. */
  direction: 'tx' | 'rx';
  bytes: Uint8Array;
  /** Text after `#` on that line, if any. */
  comment?: string;
}

/** Result of parsing an arrow-style capture: frames in file order, plus segments that were not hex. */
export interface ArrowCapture {
  frames: ArrowFrame[];
  /** Marked segments that could not be read as hex (the author masked unknown bytes with `XX`, say). */
  unreadable: { line: number; text: string }[];
}

/**
 * ESPHome `uart_debug` style captures: `>>> DD:A5:03:00:FF:FD:77 <<< DD:03:…` (both on one line or on
 * separate lines), optionally after a log prefix like `[17:06:44][D][uart_debug:113]: ` and with a `# comment`.
 * Lines without an arrow (decoded-value log lines, continuation lines of bare payloads) are ignored.
 */
export function parseArrowCapture(text: string): ArrowCapture {
  const frames: ArrowFrame[] = [];
  const unreadable: { line: number; text: string }[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const hashAt = raw.indexOf('#');
    const body = hashAt >= 0 ? raw.slice(0, hashAt) : raw;
    const comment = hashAt >= 0 ? raw.slice(hashAt + 1).trim() : undefined;
    const marker = /(>>>|<<<)([^<>]*)/g;
    for (let m = marker.exec(body); m !== null; m = marker.exec(body)) {
      const segment = (m[2] as string).trim();
      const bytes = tryHexBytes(segment);
      if (bytes === undefined) {
        unreadable.push({ line: index + 1, text: segment });
        continue;
      }
      frames.push({
        line: index + 1,
        direction: m[1] === '>>>' ? 'tx' : 'rx',
        bytes,
        ...(comment ? { comment } : {}),
      });
    }
  });
  return { frames, unreadable };
}

/** One ATT PDU from a `.att.txt` file derived from an Android btsnoop log. */
export interface AttRecord {
  line: number;
  /** `tx` = phone → BMS (write), `rx` = BMS → phone (notification). */
  direction: 'tx' | 'rx';
  op: string;
  handle: number;
  /** The ATT value: for notifications, one BLE fragment of at most 20 bytes. */
  bytes: Uint8Array;
}

/** `.att.txt`: `# comments`, then `<tx|rx> <op> <0xHANDLE> <hex>` per line. Throws on a malformed line. */
export function parseAttCapture(text: string): AttRecord[] {
  const out: AttRecord[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(tx|rx)\s+(\S+)\s+(0x[0-9a-f]+)\s+([0-9a-f]+)$/i.exec(line);
    if (!m) throw new Error(`line ${index + 1} is not an ATT record: ${line}`);
    out.push({
      line: index + 1,
      direction: m[1] === 'tx' ? 'tx' : 'rx',
      op: m[2] as string,
      handle: Number.parseInt(m[3] as string, 16),
      bytes: hexBytes(m[4] as string),
    });
  });
  return out;
}

/** One line of a capture that is just hex (after arrows and `#` comments are removed). */
export interface HexLine {
  line: number;
  bytes: Uint8Array;
}

/**
 * Captures that list one packet (e.g. one BLE notification or write) per line, as in communications2.txt.
 * Arrows and comments are stripped; lines that are not hex (headings, `^^--ACK` pointers) are skipped.
 */
export function parseHexLines(text: string): HexLine[] {
  const out: HexLine[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const body = raw.replace(/#.*$/, '').replace(/>>>|<<</g, '');
    const bytes = tryHexBytes(body);
    if (bytes !== undefined) out.push({ line: index + 1, bytes });
  });
  return out;
}
