/**
 * Request/response over a byte link, for half-duplex serial protocols where the device only speaks when asked.
 *
 * One `RequestChannel` per physical link: it owns the link's data callback and a family framer, and lets
 * exactly one request be in flight at a time (later requests wait in FIFO order), so several drivers that
 * share one RS485 bus can use the same channel. Each request carries a predicate that recognises its reply;
 * any other frame (a late reply to an earlier, timed-out request, a neighbour's traffic, an echo) is counted
 * and dropped. It knows nothing about any BMS family.
 */
import { errorMessage, LinkError, TimeoutError } from '../domain/errors.js';
import type { Link } from './link.js';

/** Incremental framer of one wire protocol: chunks in, complete frames out. */
export interface Framer {
  push(chunk: Uint8Array): Uint8Array[];
  /** Drop buffered partial data. */
  reset(): void;
}

/** One request. */
export interface RequestOptions {
  /** Recognises the reply to this request; frames it rejects are dropped. Must not throw (if it does, the frame is dropped). */
  isReply(frame: Uint8Array): boolean;
  /** Time allowed for sending and for the reply to arrive, ms. */
  timeoutMs: number;
}

/** Counters for logs and tests. */
export interface RequestStats {
  /** Requests answered. */
  replies: number;
  /** Requests that got no matching reply in time. */
  timeouts: number;
  /** Frames that arrived but matched no in-flight request. */
  droppedFrames: number;
}

interface InFlight {
  readonly isReply: (frame: Uint8Array) => boolean;
  readonly resolve: (frame: Uint8Array) => void;
  readonly reject: (reason: Error) => void;
}

/** Serialised request/response over one byte link. */
export class RequestChannel {
  private readonly counters: RequestStats = { replies: 0, timeouts: 0, droppedFrames: 0 };
  private inFlight: InFlight | undefined;
  /** Settles when the last queued request has finished; the next one chains on it. */
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(
    readonly link: Link<Uint8Array>,
    private readonly framer: Framer,
  ) {
    link.onData((chunk) => this.receive(chunk));
  }

  /** A copy of the counters. */
  get stats(): RequestStats {
    return { ...this.counters };
  }

  /** Requests waiting or in flight. */
  get pending(): number {
    return this.queued;
  }

  /**
   * Send `bytes` once the link is free and resolve with the first frame `isReply` accepts. Rejects with
   * TimeoutError when no such frame arrives within `timeoutMs` (the framer is then reset, so a half frame
   * cannot poison the next reply), with LinkError when the send fails or {@link abort} is called.
   */
  request(bytes: Uint8Array, opts: RequestOptions): Promise<Uint8Array> {
    this.queued++;
    const run = this.tail.then(() => this.run(bytes, opts));
    // The queue continues whatever this request's outcome is.
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run.finally(() => {
      this.queued--;
    });
  }

  /** Fail the in-flight request now (link lost, driver stopping) instead of letting it time out. */
  abort(reason: Error): void {
    const current = this.inFlight;
    if (current === undefined) return;
    this.framer.reset();
    current.reject(reason);
  }

  private run(bytes: Uint8Array, opts: RequestOptions): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        if (this.inFlight === entry) this.inFlight = undefined;
      };
      const entry: InFlight = {
        isReply: opts.isReply,
        resolve: (frame) => {
          finish();
          this.counters.replies++;
          resolve(frame);
        },
        reject: (reason) => {
          finish();
          reject(reason);
        },
      };
      this.inFlight = entry;
      // The timer covers the send too: a write to a device nobody reads can stay pending forever.
      timer = setTimeout(() => {
        if (this.inFlight !== entry) return;
        this.counters.timeouts++;
        this.framer.reset();
        entry.reject(new TimeoutError(`no reply within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      this.link.send(bytes).catch((e: unknown) => {
        if (this.inFlight !== entry) return;
        entry.reject(e instanceof LinkError ? e : new LinkError(`send failed: ${errorMessage(e)}`, { cause: e }));
      });
    });
  }

  private receive(chunk: Uint8Array): void {
    let frames: Uint8Array[];
    try {
      frames = this.framer.push(chunk);
    } catch {
      // A framer should never throw; if one does, start afresh rather than let it escape the link callback.
      this.framer.reset();
      return;
    }
    for (const frame of frames) {
      const current = this.inFlight;
      if (current !== undefined && accepts(current, frame)) current.resolve(frame);
      else this.counters.droppedFrames++;
    }
  }
}

function accepts(entry: InFlight, frame: Uint8Array): boolean {
  try {
    return entry.isReply(frame);
  } catch {
    return false;
  }
}
