/**
 * The poll loop both JK drivers share: one cycle every `pollIntervalMs` on a fixed grid (no drift; missed
 * slots are skipped, not bunched), the first cycle as soon as the line is open, one snapshot per good cycle.
 * A failed cycle costs an event and no snapshot; each kind of trouble is reported once at its level and then
 * at debug until a cycle succeeds, so a dead BMS does not flood the log. Nothing escapes a timer callback,
 * and the loop never ends on its own: health (online / stale / offline) is decided by the caller from the
 * snapshot timestamps.
 */
import { performance } from 'node:perf_hooks';
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { errorMessage, isFrameError, LinkError, TimeoutError } from '../../domain/errors.js';
import type { BmsDriver, DriverEvent } from '../driver.js';
import type { RequestBus } from './bus.js';

type Trouble = 'timeout' | 'decode' | 'link' | 'internal';

/** Common options of the JK drivers. */
export interface PolledDriverOptions {
  /** Time between the starts of two poll cycles, ms. */
  pollIntervalMs: number;
  /** Wall clock for snapshot timestamps, ms since epoch (default Date.now). */
  now?: (() => number) | undefined;
}

/** A BmsDriver whose cycle is `poll()` over a RequestBus. */
export abstract class PolledBusDriver implements BmsDriver {
  abstract readonly family: string;
  readonly pollIntervalMs: number;

  protected readonly now: () => number;
  private readonly snapshotListeners: ((s: BatterySnapshot) => void)[] = [];
  private readonly eventListeners: ((e: DriverEvent) => void)[] = [];
  private readonly troubles = new Set<Trouble>();
  private running = false;
  private session = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private busy: Promise<void> | undefined;
  private cycling = false;
  private nextDueMs = 0;

  constructor(
    protected readonly bus: RequestBus,
    opts: PolledDriverOptions,
  ) {
    if (!(opts.pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be > 0, got ${opts.pollIntervalMs}`);
    this.pollIntervalMs = opts.pollIntervalMs;
    this.now = opts.now ?? Date.now;
    bus.onEvent((e) => {
      if (this.running) this.emit(e.level, e.message);
    });
    bus.onOpen(() => this.onBusOpen());
  }

  /** One poll cycle: requests over the bus, then the snapshot. Throws what the requests and decoders throw. */
  protected abstract poll(): Promise<BatterySnapshot>;

  /** Prefix for events of this driver (e.g. the pack address on a shared bus). */
  protected get label(): string {
    return '';
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.session++;
    this.bus.acquire();
    // The bus may already be open (another pack's driver opened it): start polling at once.
    if (this.bus.isOpen) this.onBusOpen();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.session++;
    this.clearTimer();
    const busy = this.busy;
    if (busy !== undefined) await busy.catch(() => undefined);
    await this.bus.release();
  }

  onSnapshot(listener: (snapshot: BatterySnapshot) => void): void {
    this.snapshotListeners.push(listener);
  }

  onEvent(listener: (event: DriverEvent) => void): void {
    this.eventListeners.push(listener);
  }

  /** Is this poll still wanted (driver running, not restarted since `session`)? */
  protected isCurrent(session: number): boolean {
    return this.running && session === this.session;
  }

  private onBusOpen(): void {
    if (!this.running || this.cycling) return;
    this.nextDueMs = performance.now();
    const session = this.session;
    this.schedule(0, () => this.cycle(session));
  }

  private async cycle(session: number): Promise<void> {
    if (!this.isCurrent(session)) return;
    this.cycling = true;
    try {
      const snapshot = await this.poll();
      if (!this.isCurrent(session)) return;
      if (this.troubles.size > 0) {
        this.troubles.clear();
        this.emit('info', `${this.label}BMS answering again`);
      }
      for (const listener of this.snapshotListeners) {
        try {
          listener(snapshot);
        } catch (e) {
          this.emit('error', `${this.label}snapshot listener failed: ${errorMessage(e)}`);
        }
      }
    } catch (e) {
      if (!this.isCurrent(session)) return;
      if (e instanceof TimeoutError) this.report('timeout', 'warn', `${this.label}no reply from the BMS: ${e.message}`);
      else if (isFrameError(e)) this.report('decode', 'warn', `${this.label}bad reply: ${e.message}`);
      // The bus reports losing the line itself; here it only means this cycle was lost.
      else if (e instanceof LinkError) this.report('link', 'debug', `${this.label}poll skipped: ${e.message}`);
      else this.report('internal', 'error', `${this.label}unexpected error in poll cycle: ${errorMessage(e)}`);
    } finally {
      this.cycling = false;
    }
    if (this.isCurrent(session)) this.scheduleNext(session);
  }

  private scheduleNext(session: number): void {
    const t = performance.now();
    this.nextDueMs += this.pollIntervalMs;
    if (this.nextDueMs <= t) {
      this.nextDueMs += Math.ceil((t - this.nextDueMs) / this.pollIntervalMs) * this.pollIntervalMs;
    }
    if (this.nextDueMs <= t) this.nextDueMs += this.pollIntervalMs;
    this.schedule(this.nextDueMs - t, () => this.cycle(session));
  }

  private schedule(delayMs: number, task: () => Promise<void>): void {
    this.clearTimer();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (!this.running) return;
        const run = task().catch((e: unknown) => {
          this.emit('error', `${this.label}driver task failed: ${errorMessage(e)}`);
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

  private report(kind: Trouble, level: DriverEvent['level'], message: string): void {
    this.emit(this.troubles.has(kind) ? 'debug' : level, message);
    this.troubles.add(kind);
  }

  protected emit(level: DriverEvent['level'], message: string): void {
    for (const listener of this.eventListeners) {
      try {
        listener({ level, message });
      } catch {
        // a logging failure must not stop polling
      }
    }
  }
}
