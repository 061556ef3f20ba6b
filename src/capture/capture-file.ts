/**
 * Capture files: every raw frame of a battery (time, direction, bytes, decoded summary), its snapshots and its
 * driver events as JSON lines, for bug reports and `batterybank replay` (docs/capture.md).
 *
 *   driver ─onFrame/onSnapshot/onEvent─► record() (sync, queue only) ─► flush (async, every 100 ms) ─► file
 *                                                                           └─ at capture_max_bytes: rotate
 *
 * Every file begins with one header per battery (what replay needs to rebuild the driver), so each rotated
 * file replays on its own. Nothing here throws into the data path: a write error is logged once and switches
 * the capture off; a queue that the disk cannot keep up with drops records and counts them.
 */

import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import type { BankConfig, BatteryConfig } from '../config.js';
import type { BatterySnapshot } from '../domain/battery-snapshot.js';
import { errorMessage } from '../domain/errors.js';

/** Version of the record layout; the reader refuses newer majors. */
export const CAPTURE_VERSION = 1;

/** The file name in the capture directory. */
export const CAPTURE_FILE_NAME = 'batterybank-capture.jsonl';

/** How the battery was reached. */
export type CaptureLinkKind = 'serial' | 'ble' | 'can' | 'ws';

/** First lines of every file: one per battery. */
export interface CaptureHeader {
  k: 'h';
  v: number;
  /** When the session (the service start) began, ISO time: rotated parts of one session share it. */
  session: string;
  /** 0 for the first file of the session, 1 after the first rotation, … */
  part: number;
  /** ms since epoch when this header was written. */
  t: number;
  battery: string;
  /** The family that ran (the detected one for `protocol = auto`). */
  family: string;
  link: { kind: CaptureLinkKind; description: string };
  /** The battery's settings with `protocol`, `baudRate` and `address` resolved: enough to rebuild its driver. */
  config: BatteryConfig;
  /** /ProductId of the service. */
  productId?: number | undefined;
  /** The [bank] this battery is a member of: replay publishes the bank when every member is in the capture. */
  bank?: BankConfig | undefined;
  /** dbus-batterybank version that wrote it. */
  version: string;
}

/** One frame on the wire. */
export interface CaptureFrame {
  k: 'f';
  /** ms since epoch (the driver's clock). */
  t: number;
  /** Battery id. */
  b: string;
  d: 'tx' | 'rx';
  /** The bytes, lower-case hex without spaces (serial, BLE, websocket). */
  hex?: string | undefined;
  /** A CAN frame in cansend notation (`351#1C02…`, 29-bit ids with 8 digits): id, ext and data in one. */
  can?: string | undefined;
  /** The request this frame belongs to, hex (polled families). */
  req?: string | undefined;
  /** Decoded summary of a received frame (register, voltage, SoC, … or the decode error). */
  sum?: Record<string, unknown> | undefined;
}

/** One snapshot as the driver delivered it. */
export interface CaptureSnapshot {
  k: 's';
  t: number;
  b: string;
  snap: BatterySnapshot;
}

/** One driver event (link opened or lost, timeouts, decode errors). */
export interface CaptureEvent {
  k: 'e';
  t: number;
  b: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
}

export type CaptureRecord = CaptureHeader | CaptureFrame | CaptureSnapshot | CaptureEvent;

export interface CaptureWriterOptions {
  /** The current file; rotated ones are `path.1`, `path.2`, … */
  path: string;
  /** Rotate once the file would grow beyond this, bytes. */
  maxBytes: number;
  /** Files kept, the current one included (≥ 1). */
  files: number;
  /** Receives the one warning of a failed capture. */
  warn?: ((message: string) => void) | undefined;
  /** Time between flushes, ms (default 100). */
  flushMs?: number | undefined;
}

export interface CaptureStats {
  /** Records written to disk. */
  records: number;
  /** Records dropped (queue over its bound, or the capture failed). */
  dropped: number;
  rotations: number;
  /** Why the capture stopped, when a write failed. */
  failed: string | undefined;
}

/**
 * One capture file shared by every captured battery. `record()` only queues: the file is written by one async
 * flush at a time, and rotated when the next chunk would pass `maxBytes` (a new part begins with every header).
 */
export class CaptureWriter {
  readonly path: string;
  readonly stats: CaptureStats = { records: 0, dropped: 0, rotations: 0, failed: undefined };

  private readonly maxBytes: number;
  private readonly files: number;
  private readonly warn: (message: string) => void;
  private readonly flushMs: number;
  private readonly headers = new Map<string, CaptureHeader>();
  private queue: string[] = [];
  private queuedBytes = 0;
  private handle: FileHandle | undefined;
  private size = 0;
  private part = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private started = false;
  readonly session = new Date().toISOString();

  constructor(opts: CaptureWriterOptions) {
    if (!(opts.maxBytes > 0)) throw new RangeError(`maxBytes must be > 0, got ${opts.maxBytes}`);
    if (!(Number.isInteger(opts.files) && opts.files >= 1))
      throw new RangeError(`files must be ≥ 1, got ${opts.files}`);
    this.path = opts.path;
    this.maxBytes = opts.maxBytes;
    this.files = opts.files;
    this.warn = opts.warn ?? (() => undefined);
    this.flushMs = opts.flushMs ?? 100;
  }

  /** Add (or replace) a battery's header: written now, and again at the top of every rotated part. */
  addHeader(header: Omit<CaptureHeader, 'k' | 'v' | 'session' | 'part' | 't'>): void {
    const h: CaptureHeader = {
      k: 'h',
      v: CAPTURE_VERSION,
      session: this.session,
      part: this.part,
      t: Date.now(),
      ...header,
    };
    this.headers.set(h.battery, h);
    this.push(h);
  }

  /** Queue one record. Never throws, never waits. */
  record(r: CaptureFrame | CaptureSnapshot | CaptureEvent): void {
    this.push(r);
  }

  private push(r: CaptureRecord): void {
    if (this.closed || this.stats.failed !== undefined) {
      this.stats.dropped++;
      return;
    }
    let line: string;
    try {
      line = `${JSON.stringify(r)}\n`;
    } catch {
      this.stats.dropped++;
      return;
    }
    // A disk that cannot keep up must not grow memory without bound: at most one file's worth is queued.
    if (this.queuedBytes + line.length > this.maxBytes) {
      this.stats.dropped++;
      return;
    }
    this.queue.push(line);
    this.queuedBytes += line.length;
    if (this.timer === undefined && this.flushing === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.flushMs);
      this.timer.unref?.();
    }
  }

  /** Write what is queued. Resolves when it is on disk (or the capture has failed); never rejects. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => (this.queue.length > 0 ? this.flush() : undefined));
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.flushing = this.writeQueued()
      .catch((e: unknown) => this.fail(e))
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  /** Flush and close; later records are dropped. Never rejects. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    const h = this.handle;
    this.handle = undefined;
    await h?.close().catch(() => undefined);
  }

  private async writeQueued(): Promise<void> {
    while (this.queue.length > 0 && this.stats.failed === undefined) {
      const lines = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      if (!this.started) await this.begin();
      let chunk = '';
      let chunkBytes = 0;
      let count = 0;
      for (const line of lines) {
        const lineBytes = Buffer.byteLength(line);
        // Rotate before a line that would pass the cap, unless the file holds nothing but headers yet.
        if (this.size + chunkBytes + lineBytes > this.maxBytes && this.size + chunkBytes > this.headerBytes()) {
          await this.append(chunk, count);
          chunk = '';
          chunkBytes = 0;
          count = 0;
          await this.rotate();
        }
        chunk += line;
        chunkBytes += lineBytes;
        count++;
      }
      await this.append(chunk, count);
    }
  }

  private headerBytes(): number {
    let n = 0;
    for (const h of this.headers.values()) n += Buffer.byteLength(JSON.stringify({ ...h, part: this.part })) + 1;
    return n;
  }

  /** The session's first write: a file of an earlier session is rotated away, so every file is one session. */
  private async begin(): Promise<void> {
    this.started = true;
    const dir = this.path.slice(0, Math.max(0, this.path.lastIndexOf('/')));
    if (dir) await mkdir(dir, { recursive: true });
    const existing = await stat(this.path).catch(() => undefined);
    if (existing && existing.size > 0) await this.shiftFiles();
    this.handle = await open(this.path, 'a');
    this.size = 0;
  }

  private async append(chunk: string, count: number): Promise<void> {
    if (chunk === '' || this.handle === undefined) return;
    await this.handle.write(chunk);
    this.size += Buffer.byteLength(chunk);
    this.stats.records += count;
  }

  /** path → path.1 → … → path.(files-1); the oldest is deleted. A new part begins with every header. */
  private async rotate(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
    await this.shiftFiles();
    this.handle = await open(this.path, 'a');
    this.size = 0;
    this.part++;
    this.stats.rotations++;
    let lines = '';
    for (const header of this.headers.values())
      lines += `${JSON.stringify({ ...header, part: this.part, t: Date.now() })}\n`;
    await this.append(lines, 0);
  }

  private async shiftFiles(): Promise<void> {
    if (this.files <= 1) {
      await rm(this.path, { force: true });
      return;
    }
    await rm(`${this.path}.${this.files - 1}`, { force: true });
    for (let i = this.files - 2; i >= 1; i--) {
      await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(() => undefined);
    }
    await rename(this.path, `${this.path}.1`).catch(() => undefined);
  }

  private fail(e: unknown): void {
    if (this.stats.failed !== undefined) return;
    this.stats.failed = errorMessage(e);
    this.stats.dropped += this.queue.length;
    this.queue = [];
    this.queuedBytes = 0;
    this.warn(`capture to ${this.path} stopped: ${this.stats.failed}`);
    const h = this.handle;
    this.handle = undefined;
    void h?.close().catch(() => undefined);
  }
}
