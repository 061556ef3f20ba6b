/**
 * One polled serial bus: a byte link, its request channel, and the units (BMS packs at their addresses) polled over it
 * one after another, every pollIntervalMs. Several drivers share one bus when several packs hang on one RS485 line;
 * a single-device driver simply owns a bus with one unit.
 *
 *   link ──► RequestChannel (framer, one request in flight) ──► unit 1 poll ─► unit 2 poll ─► … (every interval)
 *
 * Connection handling follows JbdDriver: the link is opened when the first unit attaches and closed when the last one
 * detaches; a lost link (close event, failed send) is reopened with exponential back-off, forever; a run of cycles in
 * which *no* unit got any reply while the link is "open" also closes and reopens it (a vanished adapter often reports
 * nothing, test-lab.md §1). One silent pack only costs its own timeouts: the others keep being polled.
 *
 * Nothing here knows a BMS family; units bring the requests and the decoding.
 */
import { performance } from 'node:perf_hooks';
import { errorMessage, LinkError } from '../../domain/errors.js';
import type { Link } from '../../links/link.js';
import { type Framer, RequestChannel } from '../../links/request.js';
import type { DriverEvent } from '../driver.js';

/** Whether a unit heard anything from its device in one poll. */
export type PollOutcome = 'answered' | 'silent';

/** One device on the bus (a BMS pack at one address). */
export interface BusUnit {
  /**
   * One poll cycle over `channel`: send the unit's requests, deliver the snapshot. Resolves 'answered' when any reply
   * came (even one that failed to decode), 'silent' when every request timed out. Handles and reports its own decode
   * errors and timeouts; rejects only with a LinkError (the link failed a send or was aborted).
   */
  poll(channel: RequestChannel): Promise<PollOutcome>;
  /** The link was (re)opened: forget per-connection state (identity reads and the like). */
  connected(): void;
  /** A link-level event every unit on the bus passes to its own listeners. */
  busEvent(level: DriverEvent['level'], message: string): void;
}

/** Options of {@link PolledBus}. */
export interface PolledBusOptions {
  /** The byte link (serial, RS485); the bus opens and closes it. */
  link: Link<Uint8Array>;
  /** The wire protocol's framer. */
  framer: Framer;
  /** Time between the starts of two poll cycles over all units, ms (default 1000). */
  pollIntervalMs?: number;
  /** Time allowed for each reply, ms (default 500, or 80 % of a shorter poll interval); must be < pollIntervalMs. */
  replyTimeoutMs?: number;
  /** Consecutive cycles in which no unit got a reply after which the link is reopened (default 3). */
  maxSilentCycles?: number;
  /** First reopen delay, ms (default 500); doubles per failed attempt up to `reconnectMaxMs`. */
  reconnectMinMs?: number;
  /** Longest reopen delay, ms (default 10 000). */
  reconnectMaxMs?: number;
}

/** Link-level trouble kinds, reported once at warn level and then at debug level until a unit answers again. */
type BusTrouble = 'open' | 'lost' | 'silent';

/** Serial bus shared by the units attached to it. */
export class PolledBus {
  readonly pollIntervalMs: number;
  readonly replyTimeoutMs: number;
  readonly link: Link<Uint8Array>;
  readonly channel: RequestChannel;

  private readonly maxSilentCycles: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly units: BusUnit[] = [];
  private running = false;
  /** Bumped whenever the connection ends or the bus stops: work of an older session drops its result. */
  private session = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private backoffMs: number;
  private busy: Promise<void> | undefined;
  private nextDueMs = 0;
  private silentCycles = 0;
  private readonly troubles = new Set<BusTrouble>();

  constructor(opts: PolledBusOptions) {
    this.link = opts.link;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.replyTimeoutMs = opts.replyTimeoutMs ?? Math.min(500, Math.round(this.pollIntervalMs * 0.8));
    if (!(this.pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be > 0, got ${this.pollIntervalMs}`);
    if (!(this.replyTimeoutMs > 0 && this.replyTimeoutMs < this.pollIntervalMs)) {
      throw new RangeError(
        `replyTimeoutMs (${this.replyTimeoutMs}) must be > 0 and < pollIntervalMs (${this.pollIntervalMs})`,
      );
    }
    this.maxSilentCycles = Math.max(1, opts.maxSilentCycles ?? 3);
    this.reconnectMinMs = opts.reconnectMinMs ?? 500;
    this.reconnectMaxMs = Math.max(this.reconnectMinMs, opts.reconnectMaxMs ?? 10_000);
    this.backoffMs = this.reconnectMinMs;
    this.channel = new RequestChannel(this.link, opts.framer);
    this.link.onClose((reason) => this.onLinkLost(reason));
  }

  /** Units currently attached. */
  get size(): number {
    return this.units.length;
  }

  /** Start polling `unit` (opens the link if it is the first). Idempotent per unit. */
  attach(unit: BusUnit): void {
    if (this.units.includes(unit)) return;
    this.units.push(unit);
    if (this.running) return;
    this.running = true;
    this.session++;
    this.backoffMs = this.reconnectMinMs;
    this.schedule(0, () => this.connect());
  }

  /** Stop polling `unit`; the last one to go closes the link. Never rejects. */
  async detach(unit: BusUnit): Promise<void> {
    const i = this.units.indexOf(unit);
    if (i >= 0) this.units.splice(i, 1);
    if (this.units.length > 0 || !this.running) return;
    this.running = false;
    this.session++;
    this.clearTimer();
    this.channel.abort(new LinkError('bus stopped'));
    const busy = this.busy;
    if (busy !== undefined) await busy.catch(() => undefined);
    try {
      await this.link.close();
    } catch {
      // close() never rejects by contract; a buggy link must still not make detach() reject
    }
  }

  // ---- connection ----------------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    const session = this.session;
    try {
      await this.link.open();
    } catch (e) {
      if (session !== this.session) return;
      const delay = this.nextBackoff();
      this.report('open', 'warn', `cannot open ${this.link.description}: ${errorMessage(e)}; retrying in ${delay} ms`);
      this.schedule(delay, () => this.connect());
      return;
    }
    if (session !== this.session) {
      if (!this.running) await this.link.close();
      return;
    }
    this.backoffMs = this.reconnectMinMs;
    this.broadcast(this.troubles.has('silent') ? 'debug' : 'info', `${this.link.description} open`);
    for (const unit of this.units) unit.connected();
    this.silentCycles = 0;
    this.nextDueMs = performance.now();
    await this.cycle(session);
  }

  private onLinkLost(reason: Error): void {
    if (!this.running) return;
    this.session++;
    this.clearTimer();
    this.channel.abort(reason);
    const delay = this.nextBackoff();
    this.report('lost', 'warn', `${this.link.description} lost: ${reason.message}; reopening in ${delay} ms`);
    this.schedule(delay, () => this.connect());
  }

  /** Close the link ourselves (it looks dead) and reopen it after the back-off. */
  private async reopen(session: number, why: string): Promise<void> {
    if (session !== this.session || !this.running) return;
    this.session++;
    this.channel.abort(new LinkError(why));
    const delay = this.nextBackoff();
    this.report('silent', 'warn', `${why}: reopening ${this.link.description} in ${delay} ms`);
    await this.link.close();
    if (!this.running) return;
    this.schedule(delay, () => this.connect());
  }

  private nextBackoff(): number {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.reconnectMaxMs, this.backoffMs * 2);
    return delay;
  }

  // ---- polling -------------------------------------------------------------------------------------------

  private async cycle(session: number): Promise<void> {
    let answered = false;
    for (const unit of [...this.units]) {
      if (session !== this.session) return;
      if (!this.units.includes(unit)) continue; // detached while an earlier unit was being polled
      let outcome: PollOutcome;
      try {
        outcome = await unit.poll(this.channel);
      } catch (e) {
        if (session !== this.session) return; // lost or stopped: handled there
        // A link that fails a send without reporting a close is treated as gone.
        await this.reopen(session, e instanceof LinkError ? `send failed: ${e.message}` : errorMessage(e));
        return;
      }
      if (outcome === 'answered') answered = true;
    }
    if (session !== this.session) return;
    if (answered || this.units.length === 0) {
      this.silentCycles = 0;
      this.troubles.clear();
    } else if (++this.silentCycles >= this.maxSilentCycles) {
      await this.reopen(session, `no reply from any device in ${this.silentCycles} consecutive cycles`);
      return;
    }
    this.scheduleNextCycle(session);
  }

  private scheduleNextCycle(session: number): void {
    const t = performance.now();
    // Stay on the grid; if a cycle overran (timeouts), skip the missed slots instead of bunching cycles up.
    this.nextDueMs += this.pollIntervalMs;
    if (this.nextDueMs <= t) {
      this.nextDueMs += Math.ceil((t - this.nextDueMs) / this.pollIntervalMs) * this.pollIntervalMs;
    }
    if (this.nextDueMs <= t) this.nextDueMs += this.pollIntervalMs;
    this.schedule(this.nextDueMs - t, () => (session === this.session ? this.cycle(session) : Promise.resolve()));
  }

  // ---- plumbing ------------------------------------------------------------------------------------------

  /** One timer at a time; the task's promise is kept so detach() can wait for it; nothing it throws escapes. */
  private schedule(delayMs: number, task: () => Promise<void>): void {
    this.clearTimer();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (!this.running) return;
        const run = task().catch((e: unknown) => {
          this.broadcast('error', `bus task failed: ${errorMessage(e)}`);
        });
        this.busy = run;
        void run.finally(() => {
          if (this.busy === run) this.busy = undefined;
        });
      },
      Math.max(0, delayMs),
    );
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private report(kind: BusTrouble, level: DriverEvent['level'], message: string): void {
    this.broadcast(this.troubles.has(kind) ? 'debug' : level, message);
    this.troubles.add(kind);
  }

  private broadcast(level: DriverEvent['level'], message: string): void {
    for (const unit of this.units) {
      try {
        unit.busEvent(level, message);
      } catch {
        // a logging failure must not stop polling
      }
    }
  }
}

/**
 * A request that is not needed for every snapshot (alarms, limits, identity): after a failure it is skipped for
 * 2, 4, 8 … 32 cycles, so a firmware that lacks it costs one timeout now and then rather than one per cycle.
 */
export class OptionalRequest {
  private failures = 0;
  private skipUntil = 0;

  /** Should the request be sent in cycle `cycleNo`? */
  due(cycleNo: number): boolean {
    return cycleNo >= this.skipUntil;
  }

  succeeded(): void {
    this.failures = 0;
    this.skipUntil = 0;
  }

  failed(cycleNo: number): void {
    this.failures++;
    this.skipUntil = cycleNo + Math.min(32, 2 ** this.failures);
  }
}
