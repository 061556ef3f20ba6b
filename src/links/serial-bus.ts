/**
 * One serial line and the devices polled over it: a single BMS on its own adapter, or several packs at their
 * addresses on one RS485 port. Every serial family uses it; it knows no family (the framer, the requests and the
 * reply predicates come from the units).
 *
 *   unit A ─┐                      one poll at a time                  one request in flight
 *   unit B ─┼─► scheduler (each unit on its own grid) ──poll(channel)──► [gap] ──► RequestChannel ──► link
 *   unit C ─┘                                                                 ◄── framer ◄── bytes
 *
 * - the link's life: opened when the first unit attaches, closed when the last one detaches; after a close event, a
 *   failed write or `maxSilentCycles` polls of *every* unit without a single reply (a vanished adapter often reports
 *   nothing, test-lab.md §1) it is closed and reopened with exponential back-off (0.5 s doubling to 10 s, reset by a
 *   successful open), forever;
 * - polling: each unit is due every `pollIntervalMs` on a fixed grid (no drift; slots missed while the line was busy
 *   are skipped, not bunched); the due unit with the earliest slot goes first, ties in attach order, so every unit
 *   gets its turn each interval and a silent one only costs its own timeouts. Polls never overlap, nothing spins;
 * - an optional pause between transactions (`gapMs`): JK-PB packs mix up addresses below ~50 ms;
 * - line events (cannot open, lost, silent) go to every unit, once at warn and then at debug until a unit answers.
 *
 * Nothing escapes a timer or link callback.
 */
import { performance } from 'node:perf_hooks';
import { errorMessage, LinkError, TimeoutError } from '../domain/errors.js';
import type { Link } from './link.js';
import { type Framer, RequestChannel, type RequestOptions, type RequestStats } from './request.js';

/** A line event for the units to pass on to their logs. */
export interface BusEvent {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

/** What a unit may do during its poll: requests, one at a time. */
export interface BusChannel {
  /**
   * Send `bytes` and resolve with the frame `opts.isReply` accepts. Rejects with TimeoutError when none comes in
   * time, with LinkError when the line is not open or went away, or the unit was detached.
   */
  request(bytes: Uint8Array, opts: RequestOptions): Promise<Uint8Array>;
}

/** Did the device say anything at all during one poll (even a reply that failed to decode)? */
export type PollOutcome = 'answered' | 'silent';

/** One device on the bus (one battery section). */
export interface BusUnit {
  /** Time between the starts of two polls of this unit, ms (> 0). */
  readonly pollIntervalMs: number;
  /**
   * One poll: the unit's requests over `channel`, its snapshot delivered by itself. Resolves 'answered' when any reply
   * came, 'silent' when none did. Handles its own timeouts and decode errors; rejects only with the LinkError a
   * request rejected with.
   */
  poll(channel: BusChannel): Promise<PollOutcome>;
  /** The line was (re)opened: forget per-connection state (identity reads and the like). */
  connected(): void;
  /** A line event. */
  busEvent(event: BusEvent): void;
}

/** Options of {@link SerialBus}. */
export interface SerialBusOptions {
  /** The byte link; the bus opens and closes it. */
  link: Link<Uint8Array>;
  /** The wire protocol's framer. */
  framer: Framer;
  /** Pause between the end of one transaction and the start of the next, ms (default 0). */
  gapMs?: number | undefined;
  /** Polls of every attached unit without any reply after which the link is reopened (default 3). */
  maxSilentCycles?: number | undefined;
  /** First reopen delay, ms (default 500); doubles per failed attempt up to `reconnectMaxMs`. */
  reconnectMinMs?: number | undefined;
  /** Longest reopen delay, ms (default 10 000). */
  reconnectMaxMs?: number | undefined;
}

/** The options of a bus that are about the line, not the link or the wire protocol. */
export type BusLineOptions = Omit<SerialBusOptions, 'link' | 'framer'>;

interface Slot {
  readonly unit: BusUnit;
  /** Monotonic time of this unit's next slot on its grid. */
  nextDueMs: number;
  /** Consecutive polls of this unit without any reply. */
  silentPolls: number;
}

type Trouble = 'open' | 'lost' | 'silent';

/** A self-healing, shared request/response line with fair polling of its units. */
export class SerialBus {
  readonly link: Link<Uint8Array>;
  readonly framer: Framer;
  readonly description: string;
  readonly gapMs: number;
  readonly maxSilentCycles: number;

  private readonly channel: RequestChannel;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly slots: Slot[] = [];
  private readonly troubles = new Set<Trouble>();
  /** Timer and connection work in progress, which the last detach waits for. */
  private readonly tasks = new Set<Promise<void>>();

  /** At least one unit is attached. */
  private running = false;
  /** Bumped whenever the connection ends or the bus stops: work of an older session drops its result. */
  private session = 0;
  private connected = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private gapWait: { timer: ReturnType<typeof setTimeout>; resolve: () => void } | undefined;
  private closing: Promise<void> | undefined;
  /** The session whose scheduler loop is running right now (not waiting on its timer). */
  private pumpingSession: number | undefined;
  private current: { slot: Slot; done: Promise<void> } | undefined;
  private backoffMs: number;
  private silentRequests = 0;
  private lastDoneMs = Number.NEGATIVE_INFINITY;

  constructor(opts: SerialBusOptions) {
    this.link = opts.link;
    this.framer = opts.framer;
    this.description = opts.link.description;
    this.gapMs = Math.max(0, opts.gapMs ?? 0);
    this.maxSilentCycles = Math.max(1, opts.maxSilentCycles ?? 3);
    this.reconnectMinMs = Math.max(1, opts.reconnectMinMs ?? 500);
    this.reconnectMaxMs = Math.max(this.reconnectMinMs, opts.reconnectMaxMs ?? 10_000);
    this.backoffMs = this.reconnectMinMs;
    this.channel = new RequestChannel(this.link, opts.framer);
    this.link.onClose((reason) => this.onLinkLost(reason));
  }

  /** Open and polling right now. */
  get isOpen(): boolean {
    return this.connected && this.link.isOpen;
  }

  /** Units attached. */
  get userCount(): number {
    return this.slots.length;
  }

  /** Counters of the underlying request channel. */
  get stats(): RequestStats {
    return this.channel.stats;
  }

  /** Start polling `unit`; the first one opens the link. Idempotent per unit. */
  attach(unit: BusUnit): void {
    if (this.slots.some((s) => s.unit === unit)) return;
    if (!(unit.pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be > 0, got ${unit.pollIntervalMs}`);
    this.slots.push({ unit, nextDueMs: performance.now(), silentPolls: 0 });
    if (!this.running) {
      this.running = true;
      this.connected = false;
      this.session++;
      this.backoffMs = this.reconnectMinMs;
      this.schedule(0, () => this.connect());
      return;
    }
    if (!this.connected) return; // connect() tells it and polls it
    safely(() => unit.connected());
    // The scheduler may be asleep until a later slot: wake it so the new unit is polled now.
    if (this.pumpingSession !== this.session) {
      const session = this.session;
      this.schedule(0, () => this.pump(session));
    }
  }

  /**
   * Stop polling `unit` (after its poll in progress, whose request is aborted); the last one to go closes the link.
   * Never rejects.
   */
  async detach(unit: BusUnit): Promise<void> {
    const i = this.slots.findIndex((s) => s.unit === unit);
    if (i < 0) return;
    const slot = this.slots[i] as Slot;
    this.slots.splice(i, 1);
    if (this.slots.length > 0) {
      const current = this.current;
      if (current?.slot === slot) {
        this.cancelGap();
        this.channel.abort(new LinkError(`${this.description}: detached`));
        await current.done;
      }
      return;
    }
    this.running = false;
    this.connected = false;
    this.session++;
    this.clearTimer();
    this.cancelGap();
    this.channel.abort(new LinkError(`${this.description}: stopped`));
    await Promise.all([...this.tasks]);
    // A unit attached while we waited keeps the link.
    if (this.slots.length === 0) await this.closeLink();
  }

  // ---- connection ----------------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    const session = this.session;
    if (this.closing !== undefined) await this.closing;
    if (session !== this.session) return;
    try {
      await this.link.open();
    } catch (e) {
      if (session !== this.session) return;
      const delay = this.nextBackoff();
      this.report('open', 'warn', `cannot open ${this.description}: ${errorMessage(e)}; retrying in ${delay} ms`);
      this.schedule(delay, () => this.connect());
      return;
    }
    if (session !== this.session) {
      if (!this.running) await this.closeLink();
      return;
    }
    this.connected = true;
    this.backoffMs = this.reconnectMinMs;
    this.silentRequests = 0;
    // While a dead line makes us reopen every few cycles, the reopen itself is not news.
    this.broadcast(this.troubles.has('silent') ? 'debug' : 'info', `${this.description} open`);
    const t = performance.now();
    for (const slot of [...this.slots]) {
      slot.nextDueMs = t;
      slot.silentPolls = 0;
      safely(() => slot.unit.connected());
    }
    await this.pump(session);
  }

  private onLinkLost(reason: Error): void {
    if (!this.running) return;
    this.session++;
    this.connected = false;
    this.clearTimer();
    this.cancelGap();
    this.channel.abort(reason);
    const delay = this.nextBackoff();
    this.report('lost', 'warn', `${this.description} lost: ${reason.message}; reopening in ${delay} ms`);
    this.schedule(delay, () => this.connect());
  }

  /** Close the link ourselves (it looks dead) and reopen it after the back-off. */
  private async reopen(session: number, why: string): Promise<void> {
    if (session !== this.session || !this.running) return;
    const mine = ++this.session;
    this.connected = false;
    this.clearTimer();
    this.cancelGap();
    this.channel.abort(new LinkError(why));
    const delay = this.nextBackoff();
    this.report('silent', 'warn', `${why}: reopening ${this.description} in ${delay} ms`);
    await this.closeLink();
    if (this.running && mine === this.session) this.schedule(delay, () => this.connect());
  }

  private closeLink(): Promise<void> {
    const closing = this.link.close().catch(() => {
      // close() never rejects by contract; a buggy link must still not break the bus
    });
    this.closing = closing;
    return closing.finally(() => {
      if (this.closing === closing) this.closing = undefined;
    });
  }

  private nextBackoff(): number {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.reconnectMaxMs, this.backoffMs * 2);
    return delay;
  }

  // ---- polling -------------------------------------------------------------------------------------------

  /** Poll every due unit, earliest slot first, then sleep until the next slot. */
  private async pump(session: number): Promise<void> {
    this.pumpingSession = session;
    try {
      while (this.isLive(session)) {
        const slot = this.earliest();
        if (slot === undefined) return;
        const wait = slot.nextDueMs - performance.now();
        if (wait > 0) {
          this.schedule(wait, () => this.pump(session));
          return;
        }
        await this.pollSlot(session, slot);
      }
    } finally {
      if (this.pumpingSession === session) this.pumpingSession = undefined;
    }
  }

  /** The unit with the earliest slot; ties go to the one attached first. */
  private earliest(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) if (best === undefined || s.nextDueMs < best.nextDueMs) best = s;
    return best;
  }

  private async pollSlot(session: number, slot: Slot): Promise<void> {
    const channel: BusChannel = { request: (bytes, opts) => this.transact(session, slot, bytes, opts) };
    let outcome = 'silent' as PollOutcome;
    let failure: unknown;
    const done = (async () => {
      try {
        outcome = await slot.unit.poll(channel);
      } catch (e) {
        failure = e;
      }
    })();
    this.current = { slot, done };
    await done;
    this.current = undefined;
    if (!this.isLive(session) || !this.slots.includes(slot)) return; // lost, stopped or detached: handled there
    this.advance(slot);
    if (failure instanceof LinkError) {
      // A link that fails a send without reporting a close is treated as gone.
      await this.reopen(session, `send failed: ${failure.message}`);
      return;
    }
    if (failure !== undefined) {
      safely(() => slot.unit.busEvent({ level: 'error', message: `poll failed: ${errorMessage(failure)}` }));
    }
    if (outcome === 'answered') {
      slot.silentPolls = 0;
      this.troubles.clear();
      return;
    }
    slot.silentPolls++;
    if (this.slots.every((s) => s.silentPolls >= this.maxSilentCycles)) {
      await this.reopen(
        session,
        `no reply from any device in ${this.maxSilentCycles} consecutive cycles, ${this.silentRequests} requests in a row`,
      );
    }
  }

  /** Move the unit to its next slot on its grid; slots already past are skipped, not made up for. */
  private advance(slot: Slot): void {
    const interval = slot.unit.pollIntervalMs;
    const t = performance.now();
    slot.nextDueMs += interval;
    if (slot.nextDueMs <= t) slot.nextDueMs += Math.ceil((t - slot.nextDueMs) / interval) * interval;
    if (slot.nextDueMs <= t) slot.nextDueMs += interval;
  }

  private async transact(session: number, slot: Slot, bytes: Uint8Array, opts: RequestOptions): Promise<Uint8Array> {
    this.assertCurrent(session, slot);
    const wait = this.lastDoneMs + this.gapMs - performance.now();
    if (wait > 0) {
      await this.sleepGap(wait);
      this.assertCurrent(session, slot);
    }
    if (!this.link.isOpen) throw new LinkError(`${this.description} is not open`);
    try {
      const frame = await this.channel.request(bytes, opts);
      this.silentRequests = 0;
      return frame;
    } catch (e) {
      if (e instanceof TimeoutError && session === this.session) this.silentRequests++;
      throw e;
    } finally {
      this.lastDoneMs = performance.now();
    }
  }

  private assertCurrent(session: number, slot: Slot): void {
    if (session !== this.session || !this.running) throw new LinkError(`${this.description} is not open`);
    if (!this.slots.includes(slot)) throw new LinkError(`${this.description}: detached`);
  }

  private isLive(session: number): boolean {
    return this.running && this.connected && session === this.session;
  }

  // ---- plumbing ------------------------------------------------------------------------------------------

  private sleepGap(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.gapWait = undefined;
        resolve();
      }, ms);
      this.gapWait = { timer, resolve };
    });
  }

  private cancelGap(): void {
    const gap = this.gapWait;
    if (gap === undefined) return;
    this.gapWait = undefined;
    clearTimeout(gap.timer);
    gap.resolve();
  }

  /** One timer at a time; the task is tracked so that the last detach can wait for it; nothing it throws escapes. */
  private schedule(delayMs: number, task: () => Promise<void>): void {
    this.clearTimer();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (!this.running) return;
        const run: Promise<void> = task()
          .catch((e: unknown) => this.broadcast('error', `${this.description}: ${errorMessage(e)}`))
          .finally(() => this.tasks.delete(run));
        this.tasks.add(run);
      },
      Math.max(0, delayMs),
    );
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private report(kind: Trouble, level: BusEvent['level'], message: string): void {
    this.broadcast(this.troubles.has(kind) ? 'debug' : level, message);
    this.troubles.add(kind);
  }

  private broadcast(level: BusEvent['level'], message: string): void {
    for (const slot of [...this.slots]) safely(() => slot.unit.busEvent({ level, message }));
  }
}

/** A unit's hook must not break the bus. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // a unit's logging or reset failed: polling goes on
  }
}
