/**
 * Generic incremental framer: push chunks of any size (UART reads, BLE notifications), get complete frames.
 * The wire format lives in a pure `extract` function that scans a buffer and says which frames it found,
 * which bytes to keep for the next chunk and how many it threw away while resynchronising.
 */

/** Result of scanning a byte buffer for frames. */
export interface FrameExtraction {
  /** Complete frames. */
  frames: Uint8Array[];
  /** Bytes to keep for the next chunk (an incomplete frame at the end). */
  rest: Uint8Array;
  /** Bytes thrown away while resynchronising. */
  discarded: number;
}

/** Scans a buffer for frames of one wire protocol. */
export type FrameExtractor = (buffer: Uint8Array) => FrameExtraction;

export interface IncrementalFramerOptions {
  /**
   * Cap on the residue kept between chunks; older bytes beyond it are dropped and counted as discarded.
   * Unset: no cap (for extractors that already keep at most one incomplete frame).
   */
  maxPending?: number;
}

export class IncrementalFramer {
  private buf: Uint8Array = new Uint8Array(0);
  /** Bytes thrown away while resynchronising, since construction. */
  discarded = 0;

  constructor(
    private readonly extract: FrameExtractor,
    private readonly opts: IncrementalFramerOptions = {},
  ) {}

  push(chunk: Uint8Array): Uint8Array[] {
    const joined = this.buf.length === 0 ? chunk : concatBytes(this.buf, chunk);
    const { frames, rest, discarded } = this.extract(joined);
    this.discarded += discarded;
    const max = this.opts.maxPending;
    if (max !== undefined && rest.length > max) {
      this.discarded += rest.length - max;
      this.buf = rest.slice(rest.length - max);
    } else {
      this.buf = rest;
    }
    return frames;
  }

  /** Drop partial data (after a reply timeout, so a half frame cannot poison the next reply). */
  reset(): void {
    this.buf = new Uint8Array(0);
  }

  /** Bytes held back waiting for the rest of a frame. */
  get pending(): number {
    return this.buf.length;
  }
}

/** `a` followed by `b`, in a new array. */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
