/**
 * Playing a capture back to unchanged drivers. Replay has no device by definition, so the recorded device is
 * played by these players behind the same link interfaces the real links implement (./replay-links.ts).
 *
 * - ReplayClock: the session's time, running at `speed` from the session start; drivers take it as their clock,
 *   so snapshot timestamps are the recorded ones (give or take the event loop).
 * - RequestPlayer (serial, BLE): the recording as segments, one per request sent, each with the frames
 *   received after it. A request the driver writes is matched with the next recorded request of the same bytes
 *   (recorded requests the driver no longer sends are skipped and counted), and the frames of that segment come
 *   back at their recorded delays scaled by `speed`. A recorded request with no reply (a timeout) stays silent
 *   again. A request far ahead of the recording (the recording has a gap there: the port was gone) is left
 *   unanswered until the clock gets there. A driver that stops asking while the recording goes on (a BLE stream
 *   that reconnected) is told its connection is lost, so it connects and asks again.
 * - TimelinePlayer (CAN): every received frame at its recorded time; what the driver sends is counted, not
 *   answered (a CAN battery broadcasts).
 */
import { performance } from 'node:perf_hooks';
import { toHex } from '../bytes/hex.js';
import type { ReplayFrame } from './capture-reader.js';

export class ReplayClock {
  private base: number;
  private r0 = performance.now();

  constructor(
    startT: number,
    readonly speed: number,
  ) {
    if (!(speed > 0)) throw new RangeError(`speed must be > 0, got ${speed}`);
    this.base = startT;
  }

  /** The session's time now, ms since epoch. */
  readonly now = (): number => Math.round(this.base + (performance.now() - this.r0) * this.speed);

  /** Jump forward to `t` (never back): the recording was later than the driver. */
  advanceTo(t: number): void {
    const now = this.base + (performance.now() - this.r0) * this.speed;
    if (t > now) this.base += t - now;
  }

  /** Real ms until the session's time reaches `t`. */
  realDelayTo(t: number): number {
    return Math.max(0, (t - this.now()) / this.speed);
  }

  /** Real ms for a recorded interval. */
  real(ms: number): number {
    return Math.max(0, ms / this.speed);
  }
}

export interface PlayerStats {
  /** Requests the driver sent that matched a recorded one. */
  matched: number;
  /** Requests that matched nothing (left unanswered). */
  unmatched: number;
  /** Requests after the recording's last one (left unanswered: the recording is over). */
  afterEnd: number;
  /** Requests sent ahead of a gap in the recording (left unanswered). */
  early: number;
  /** Recorded requests the driver never sent. */
  skipped: number;
  /** Frames handed to the driver. */
  delivered: number;
  /** Connection losses played to a driver that had stopped asking. */
  lost: number;
}

export function emptyStats(): PlayerStats {
  return { matched: 0, unmatched: 0, afterEnd: 0, early: 0, skipped: 0, delivered: 0, lost: 0 };
}

/** What a player does to its link. */
export interface PlayerSink {
  /** A received frame. */
  rx(bytes: Uint8Array, frame: ReplayFrame): void;
  /** The recorded connection is over: the link should report a loss. */
  lost?(): void;
}

interface Segment {
  tx: ReplayFrame | undefined;
  rx: ReplayFrame[];
}

abstract class Player {
  readonly stats: PlayerStats = emptyStats();
  protected sink: PlayerSink | undefined;
  protected finished = false;
  private readonly doneWaiters: (() => void)[] = [];

  constructor(protected readonly clock: ReplayClock) {}

  /** Resolves once everything recorded has been played (or given up on). */
  done(): Promise<void> {
    if (this.finished) return Promise.resolve();
    return new Promise((resolve) => this.doneWaiters.push(resolve));
  }

  get isDone(): boolean {
    return this.finished;
  }

  protected finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.stopTimers();
    for (const w of this.doneWaiters.splice(0)) w();
  }

  protected deliver(frame: ReplayFrame): void {
    this.stats.delivered++;
    try {
      this.sink?.rx(frame.bytes, frame);
    } catch {
      // a link's receiver never throws into the player
    }
  }

  protected abstract stopTimers(): void;
  abstract attach(sink: PlayerSink): void;
  abstract detach(): void;
  /** The driver wrote `bytes`. */
  abstract request(bytes: Uint8Array): void;
  /** Stop playing. */
  stop(): void {
    this.finish();
  }
}

export interface RequestPlayerOptions {
  /** A request this far (recorded ms) ahead of the recording is in a gap; also how long an idle driver is
   * waited for before a connection loss is played. */
  gapMs: number;
}

export class RequestPlayer extends Player {
  private readonly segments: Segment[] = [];
  private readonly gapMs: number;
  private cursor = 0;
  /** Segments being delivered; bumped by detach() so their timers stop. */
  private generation = 0;
  private pending = 0;
  private lostFor = -1;
  private readonly endT: number;
  private watch: NodeJS.Timeout | undefined;

  constructor(clock: ReplayClock, frames: readonly ReplayFrame[], opts: RequestPlayerOptions) {
    super(clock);
    this.gapMs = opts.gapMs;
    let last: Segment | undefined;
    const byReq = new Map<string, Segment>();
    for (const f of frames) {
      if (f.dir === 'tx') {
        last = { tx: f, rx: [] };
        this.segments.push(last);
        // Replies name their request: on a shared port the last request of *this* battery is the one.
        byReq.set(`${f.battery} ${f.hex}`, last);
      } else {
        const owner = (f.req !== undefined ? byReq.get(`${f.battery} ${f.req}`) : undefined) ?? last;
        if (owner) owner.rx.push(f);
        else {
          last = { tx: undefined, rx: [f] };
          this.segments.push(last);
        }
      }
    }
    this.endT = frames.length > 0 ? (frames[frames.length - 1] as ReplayFrame).t : clock.now();
    if (this.segments.length === 0) this.finish();
  }

  attach(sink: PlayerSink): void {
    this.sink = sink;
    // Frames received before any request (a device that talks first) play at their time.
    const first = this.segments[this.cursor];
    if (first && first.tx === undefined) {
      this.cursor++;
      this.play(first, first.rx[0]?.t ?? this.clock.now(), true);
    }
    this.watch ??= setInterval(() => this.check(), 25);
    this.watch.unref?.();
  }

  detach(): void {
    this.sink = undefined;
    this.generation++;
    this.pending = 0;
  }

  request(bytes: Uint8Array): void {
    if (this.finished || this.cursor >= this.segments.length) {
      this.stats.afterEnd++;
      return;
    }
    const hex = toHex(bytes, '').toLowerCase();
    let j = this.cursor;
    while (j < this.segments.length && this.segments[j]?.tx?.hex !== hex) j++;
    const seg = this.segments[j];
    if (seg === undefined || seg.tx === undefined) {
      this.stats.unmatched++;
      return;
    }
    if (seg.tx.t > this.clock.now() + this.gapMs) {
      this.stats.early++;
      return;
    }
    this.stats.matched++;
    this.stats.skipped += j - this.cursor;
    this.cursor = j + 1;
    this.clock.advanceTo(seg.tx.t);
    this.play(seg, seg.tx.t, false);
  }

  /** The frames of `seg`, each at its recorded delay after `fromT`, one timer at a time. */
  private play(seg: Segment, fromT: number, absolute: boolean): void {
    const gen = this.generation;
    const frames = seg.rx;
    if (frames.length === 0) return;
    this.pending++;
    let i = 0;
    let prevT = fromT;
    const next = () => {
      if (gen !== this.generation) return;
      const f = frames[i];
      if (f === undefined) {
        this.pending--;
        return;
      }
      const delay = absolute ? this.clock.realDelayTo(f.t) : this.clock.real(f.t - prevT);
      setTimeout(() => {
        if (gen !== this.generation) return;
        prevT = f.t;
        i++;
        this.deliver(f);
        next();
      }, delay);
    };
    next();
  }

  private check(): void {
    if (this.finished) return;
    const now = this.clock.now();
    if (this.cursor >= this.segments.length) {
      if (this.pending === 0) this.finish();
      return;
    }
    const next = this.segments[this.cursor] as Segment;
    const dueT = next.tx?.t ?? next.rx[0]?.t ?? now;
    // The recording is over for a driver that no longer asks: give up well after its last frame.
    if (now > this.endT + 4 * this.gapMs) {
      this.stats.skipped += this.segments.length - this.cursor;
      this.finish();
      return;
    }
    if (this.pending === 0 && now > dueT + this.gapMs && this.lostFor !== this.cursor) {
      // The driver is idle while the recording asks again (a stream that reconnected): a connection loss
      // makes it connect and start over. Once per recorded request.
      this.lostFor = this.cursor;
      this.stats.lost++;
      try {
        this.sink?.lost?.();
      } catch {
        // ignore
      }
    }
  }

  protected stopTimers(): void {
    if (this.watch) clearInterval(this.watch);
    this.watch = undefined;
  }
}

export class TimelinePlayer extends Player {
  private readonly frames: ReplayFrame[];
  private index = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(clock: ReplayClock, frames: readonly ReplayFrame[]) {
    super(clock);
    this.frames = frames.filter((f) => f.dir === 'rx');
    if (this.frames.length === 0) this.finish();
  }

  attach(sink: PlayerSink): void {
    this.sink = sink;
    this.schedule();
  }

  detach(): void {
    this.sink = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  request(_bytes: Uint8Array): void {
    // A CAN battery broadcasts: what the driver sends (keep-alive, polls) is answered by the recording's timeline.
  }

  private schedule(): void {
    if (this.timer || this.finished || !this.sink) return;
    const f = this.frames[this.index];
    if (f === undefined) {
      this.finish();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.sink) return;
      // Every frame that is due (a burst of one millisecond goes out together).
      while (this.index < this.frames.length && (this.frames[this.index] as ReplayFrame).t <= this.clock.now()) {
        this.deliver(this.frames[this.index++] as ReplayFrame);
      }
      this.schedule();
    }, this.clock.realDelayTo(f.t));
  }

  protected stopTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
