/**
 * One serial line used by one or more request/response drivers: a JK-PB RS485 bus with several packs, or a
 * single JK serial board. It owns what the drivers must not each do on a shared line:
 *
 *   drivers ──request()──► gap queue ──► RequestChannel (one request in flight) ──► link
 *                                                        ◄── framer ◄── bytes
 *
 * - the link's life: opened when the first driver starts, reopened with exponential back-off after a loss
 *   (close event, failed write) or after a run of requests nobody on the line answered, closed when the last
 *   driver stops. It never gives up and never throws out of a callback;
 * - a pause between transactions (`gapMs`): JK-PB packs mix up addresses when triggers follow each other
 *   within ~50 ms (JKBMS-PB.md, "Bus Behaviour");
 * - silence detection across the whole line, so one dead pack among live ones never closes the port.
 *
 * It knows no BMS family: the framer and the reply predicates come from the drivers.
 */
import { performance } from 'node:perf_hooks';
import { errorMessage, LinkError, TimeoutError } from '../../domain/errors.js';
import type { Link } from '../../links/link.js';
import { type Framer, RequestChannel, type RequestOptions, type RequestStats } from '../../links/request.js';
import type { DriverEvent } from '../driver.js';

/** Options of {@link RequestBus}. */
export interface RequestBusOptions {
  link: Link<Uint8Array>;
  /** The wire protocol's framer. */
  framer: Framer;
  /** Pause between the end of one transaction and the start of the next, ms (default 0). */
  gapMs?: number;
  /** Consecutive requests without any reply on the line after which the link is reopened (default 3). */
  maxSilentRequests?: number;
  /** First reopen delay, ms (default 500); doubles per failed attempt up to `reconnectMaxMs`. */
  reconnectMinMs?: number;
  /** Longest reopen delay, ms (default 10 000). */
  reconnectMaxMs?: number;
}

type Trouble = 'open' | 'lost' | 'silent';

/** A shared, self-healing request/response line. */
export class RequestBus {
  readonly description: string;
  readonly gapMs: number;

  private readonly link: Link<Uint8Array>;
  private readonly channel: RequestChannel;
  private readonly maxSilentRequests: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly eventListeners: ((e: DriverEvent) => void)[] = [];
  private readonly openListeners: (() => void)[] = [];
  private readonly troubles = new Set<Trouble>();

  private users = 0;
  private running = false;
  /** Bumped whenever the connection ends: work of an older connection drops its result. */
  private session = 0;
  private connected = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private busy: Promise<void> | undefined;
  private backoffMs: number;
  private silentRequests = 0;
  private queue: Promise<void> = Promise.resolve();
  private lastDoneMs = Number.NEGATIVE_INFINITY;

  constructor(opts: RequestBusOptions) {
    this.link = opts.link;
    this.description = opts.link.description;
    this.gapMs = Math.max(0, opts.gapMs ?? 0);
    this.maxSilentRequests = Math.max(1, opts.maxSilentRequests ?? 3);
    this.reconnectMinMs = opts.reconnectMinMs ?? 500;
    this.reconnectMaxMs = Math.max(this.reconnectMinMs, opts.reconnectMaxMs ?? 10_000);
    this.backoffMs = this.reconnectMinMs;
    this.channel = new RequestChannel(this.link, opts.framer);
    this.link.onClose((reason) => this.onLinkLost(reason));
  }

  /** Open and usable right now. */
  get isOpen(): boolean {
    return this.connected && this.link.isOpen;
  }

  /** Drivers currently using the line. */
  get userCount(): number {
    return this.users;
  }

  /** Counters of the underlying request channel. */
  get stats(): RequestStats {
    return this.channel.stats;
  }

  /** A driver starts using the line; the first one opens it. */
  acquire(): void {
    this.users++;
    if (this.users > 1) return;
    this.running = true;
    this.session++;
    this.backoffMs = this.reconnectMinMs;
    this.schedule(0, () => this.connect());
  }

  /** A driver stops using the line; the last one closes it. Never rejects. */
  async release(): Promise<void> {
    if (this.users === 0) return;
    this.users--;
    if (this.users > 0) return;
    this.running = false;
    this.connected = false;
    this.session++;
    this.clearTimer();
    this.channel.abort(new LinkError(`${this.description}: stopped`));
    const busy = this.busy;
    if (busy !== undefined) await busy.catch(() => undefined);
    await this.closeLink();
  }

  /** Line events (opened, lost, silent), for the drivers to pass on. */
  onEvent(listener: (event: DriverEvent) => void): void {
    this.eventListeners.push(listener);
  }

  /** Called each time the line has been (re)opened. */
  onOpen(listener: () => void): void {
    this.openListeners.push(listener);
  }

  /**
   * Send `bytes` when the line is free (and the gap has passed) and resolve with the reply `opts.isReply`
   * accepts. Rejects with TimeoutError when none comes in time, with LinkError when the line is not open.
   */
  request(bytes: Uint8Array, opts: RequestOptions): Promise<Uint8Array> {
    const run = this.queue.then(() => this.transact(bytes, opts));
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async transact(bytes: Uint8Array, opts: RequestOptions): Promise<Uint8Array> {
    const wait = this.lastDoneMs + this.gapMs - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (!this.isOpen) throw new LinkError(`${this.description} is not open`);
    const session = this.session;
    try {
      const frame = await this.channel.request(bytes, opts);
      this.silentRequests = 0;
      if (this.troubles.size > 0) {
        this.troubles.clear();
        this.emit('info', `${this.description}: answers again`);
      }
      return frame;
    } catch (e) {
      if (session === this.session && this.running) {
        if (e instanceof TimeoutError) {
          this.silentRequests++;
          if (this.silentRequests >= this.maxSilentRequests) {
            this.reopen(session, `no reply on ${this.description} to ${this.silentRequests} requests in a row`);
          }
        } else if (e instanceof LinkError) {
          // A write that fails without a close event is how a vanished adapter often shows itself.
          this.reopen(session, `send failed: ${e.message}`);
        }
      }
      throw e;
    } finally {
      this.lastDoneMs = performance.now();
    }
  }

  private async connect(): Promise<void> {
    const session = this.session;
    try {
      await this.link.open();
    } catch (e) {
      if (session !== this.session || !this.running) return;
      const delay = this.nextBackoff();
      this.report('open', 'warn', `cannot open ${this.description}: ${errorMessage(e)}; retrying in ${delay} ms`);
      this.schedule(delay, () => this.connect());
      return;
    }
    if (session !== this.session || !this.running) {
      if (!this.running) await this.closeLink();
      return;
    }
    this.connected = true;
    this.backoffMs = this.reconnectMinMs;
    this.silentRequests = 0;
    // While a dead line makes us reopen every few requests, the reopen itself is not news.
    this.emit(this.troubles.has('silent') ? 'debug' : 'info', `${this.description} open`);
    for (const listener of this.openListeners) {
      try {
        listener();
      } catch (e) {
        this.emit('error', `open listener failed: ${errorMessage(e)}`);
      }
    }
  }

  private onLinkLost(reason: Error): void {
    if (!this.running) return;
    this.session++;
    this.connected = false;
    this.clearTimer();
    this.channel.abort(reason);
    const delay = this.nextBackoff();
    this.report('lost', 'warn', `${this.description} lost: ${reason.message}; reopening in ${delay} ms`);
    this.schedule(delay, () => this.connect());
  }

  /** Close the link ourselves (it looks dead) and reopen it after the back-off. */
  private reopen(session: number, why: string): void {
    if (session !== this.session || !this.running) return;
    this.session++;
    this.connected = false;
    this.channel.abort(new LinkError(why));
    const delay = this.nextBackoff();
    this.report('silent', 'warn', `${why}: reopening in ${delay} ms`);
    this.clearTimer();
    const closing = this.closeLink().then(() => {
      if (this.running && session + 1 === this.session) this.schedule(delay, () => this.connect());
    });
    this.track(closing);
  }

  private async closeLink(): Promise<void> {
    try {
      await this.link.close();
    } catch {
      // close() never rejects by contract; a buggy link must still not break the bus
    }
  }

  private nextBackoff(): number {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.reconnectMaxMs, this.backoffMs * 2);
    return delay;
  }

  /** One timer at a time; the task's promise is kept so release() can wait for it; nothing escapes. */
  private schedule(delayMs: number, task: () => Promise<void>): void {
    this.clearTimer();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.running) this.track(task());
      },
      Math.max(0, delayMs),
    );
  }

  private track(work: Promise<void>): void {
    const run = work.catch((e: unknown) => {
      this.emit('error', `${this.description}: ${errorMessage(e)}`);
    });
    this.busy = run;
    void run.finally(() => {
      if (this.busy === run) this.busy = undefined;
    });
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private report(kind: Trouble, level: DriverEvent['level'], message: string): void {
    this.emit(this.troubles.has(kind) ? 'debug' : level, message);
    this.troubles.add(kind);
  }

  private emit(level: DriverEvent['level'], message: string): void {
    for (const listener of this.eventListeners) {
      try {
        listener({ level, message });
      } catch {
        // a logging failure must not break the line
      }
    }
  }
}
