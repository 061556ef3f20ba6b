/**
 * Reading capture files back: tolerant. A line that is not JSON, not a known record or cut off by a crash is
 * counted and reported, never fatal; what is readable is replayed. Several files (a rotated set, oldest first)
 * join into one session when they share its `session`; a file of another session is left out and named.
 */
import { readFile } from 'node:fs/promises';
import { fromHex } from '../bytes/hex.js';
import type { BatterySnapshot } from '../domain/battery-snapshot.js';
import { errorMessage } from '../domain/errors.js';
import { type CanFrame, parseCanLine } from '../links/can/can-frame.js';
import {
  CAPTURE_VERSION,
  type CaptureEvent,
  type CaptureFrame,
  type CaptureHeader,
  type CaptureSnapshot,
} from './capture-file.js';

/** One frame, decoded from its record. */
export interface ReplayFrame {
  t: number;
  battery: string;
  dir: 'tx' | 'rx';
  /** Serial, BLE, websocket bytes; for CAN the data bytes. */
  bytes: Uint8Array;
  /** Lower-case hex of `bytes` (serial/BLE), for matching requests. */
  hex: string;
  req?: string | undefined;
  can?: CanFrame | undefined;
}

export interface CaptureSession {
  session: string;
  /** The last header of each battery, in order of first appearance. */
  headers: CaptureHeader[];
  /** Every frame, in time order (stable). */
  frames: ReplayFrame[];
  snapshots: CaptureSnapshot[];
  events: CaptureEvent[];
  /** Lines that could not be used, with the first few reasons ("file:line: why"). */
  badLines: number;
  problems: string[];
  /** Files (or parts) left out because they belong to another session. */
  skippedFiles: string[];
  /** Earliest time in the session, ms since epoch. */
  startT: number;
  endT: number;
}

const MAX_PROBLEMS = 10;

function isHeader(r: Record<string, unknown>): r is Record<string, unknown> & CaptureHeader {
  return (
    r.k === 'h' &&
    typeof r.battery === 'string' &&
    typeof r.family === 'string' &&
    typeof r.session === 'string' &&
    typeof r.t === 'number' &&
    typeof r.config === 'object' &&
    r.config !== null &&
    typeof r.link === 'object' &&
    r.link !== null
  );
}

/** Parse the text of capture files (oldest first). Never throws. */
export function parseCapture(files: readonly { name: string; text: string }[]): CaptureSession {
  const out: CaptureSession = {
    session: '',
    headers: [],
    frames: [],
    snapshots: [],
    events: [],
    badLines: 0,
    problems: [],
    skippedFiles: [],
    startT: Number.POSITIVE_INFINITY,
    endT: Number.NEGATIVE_INFINITY,
  };
  const headers = new Map<string, CaptureHeader>();
  const bad = (where: string, why: string) => {
    out.badLines++;
    if (out.problems.length < MAX_PROBLEMS) out.problems.push(`${where}: ${why}`);
  };
  for (const file of files) {
    const lines = file.text.split('\n');
    // The session of this file: its first readable header.
    let fileSession: string | undefined;
    for (const line of lines) {
      try {
        const r = JSON.parse(line) as Record<string, unknown>;
        if (isHeader(r)) {
          fileSession = r.session;
          break;
        }
      } catch {
        // counted in the main pass
      }
    }
    if (fileSession === undefined) {
      bad(file.name, 'no header line: not a capture file, or its start is lost');
      out.skippedFiles.push(file.name);
      continue;
    }
    if (out.session === '') out.session = fileSession;
    else if (fileSession !== out.session) {
      out.skippedFiles.push(file.name);
      continue;
    }
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      const where = `${file.name}:${i + 1}`;
      let r: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(line);
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
        r = parsed as Record<string, unknown>;
      } catch (e) {
        bad(where, `not a JSON record (${errorMessage(e)})`);
        return;
      }
      const why = take(r, headers, out);
      if (why !== undefined) bad(where, why);
    });
  }
  out.headers = [...headers.values()];
  // Stable sort: frames of one battery keep their order when two share a millisecond.
  out.frames = out.frames
    .map((f, i) => ({ f, i }))
    .sort((a, b) => a.f.t - b.f.t || a.i - b.i)
    .map((x) => x.f);
  for (const h of out.headers) out.startT = Math.min(out.startT, h.t);
  for (const f of out.frames) {
    out.startT = Math.min(out.startT, f.t);
    out.endT = Math.max(out.endT, f.t);
  }
  if (!Number.isFinite(out.startT)) out.startT = 0;
  if (!Number.isFinite(out.endT)) out.endT = out.startT;
  return out;
}

/** Take one record into the session; the reason when it cannot be used. */
function take(
  r: Record<string, unknown>,
  headers: Map<string, CaptureHeader>,
  out: CaptureSession,
): string | undefined {
  switch (r.k) {
    case 'h': {
      if (!isHeader(r)) return 'header without battery, family, session, link or config';
      if (typeof r.v !== 'number' || r.v > CAPTURE_VERSION)
        return `header of layout version ${String(r.v)} (this reads ${CAPTURE_VERSION})`;
      // The first part's header (part 0) names the session start; later parts repeat it.
      const first = headers.get(r.battery);
      headers.set(r.battery, first && first.t < r.t ? { ...r, t: first.t } : r);
      return undefined;
    }
    case 'f': {
      const f = r as Partial<CaptureFrame>;
      if (typeof f.t !== 'number' || typeof f.b !== 'string' || (f.d !== 'tx' && f.d !== 'rx')) {
        return 'frame without t, b or d';
      }
      if (!headers.has(f.b)) return `frame of battery "${f.b}" before its header`;
      try {
        if (typeof f.can === 'string') {
          const can = parseCanLine(f.can);
          if (can === undefined) return 'empty CAN frame';
          out.frames.push({ t: f.t, battery: f.b, dir: f.d, bytes: can.data, hex: f.can.toLowerCase(), can });
        } else if (typeof f.hex === 'string') {
          const bytes = fromHex(f.hex);
          out.frames.push({
            t: f.t,
            battery: f.b,
            dir: f.d,
            bytes,
            hex: f.hex.toLowerCase(),
            ...(typeof f.req === 'string' ? { req: f.req.toLowerCase() } : {}),
          });
        } else return 'frame without hex or can';
      } catch (e) {
        return `bad frame bytes: ${errorMessage(e)}`;
      }
      return undefined;
    }
    case 's': {
      const s = r as Partial<CaptureSnapshot>;
      if (typeof s.t !== 'number' || typeof s.b !== 'string' || typeof s.snap !== 'object' || s.snap === null) {
        return 'snapshot without t, b or snap';
      }
      out.snapshots.push({ k: 's', t: s.t, b: s.b, snap: s.snap as BatterySnapshot });
      return undefined;
    }
    case 'e': {
      const e = r as Partial<CaptureEvent>;
      if (typeof e.t !== 'number' || typeof e.b !== 'string' || typeof e.msg !== 'string')
        return 'event without t, b or msg';
      out.events.push({ k: 'e', t: e.t, b: e.b, level: e.level ?? 'info', msg: e.msg });
      return undefined;
    }
    default:
      return `unknown record kind ${JSON.stringify(r.k)}`;
  }
}

/** Read capture files (oldest first) and parse them. Rejects only when a file cannot be read. */
export async function readCapture(paths: readonly string[]): Promise<CaptureSession> {
  const files = await Promise.all(paths.map(async (name) => ({ name, text: await readFile(name, 'utf8') })));
  return parseCapture(files);
}
