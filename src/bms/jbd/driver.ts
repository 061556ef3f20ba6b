/**
 * JBD driver: runs the poll sequence (protocols.md §1.8) over an injected byte link and emits one snapshot per
 * complete cycle.
 *
 *   every pollIntervalMs:  0x03 basic info → 0x04 cells [→ 0x05 model, until it has been read once per connection]
 *
 * It survives whatever a serial line does. Garbage and split replies are the framer's job; a silent BMS costs
 * a timeout event and no snapshot; a decode error costs an event and no snapshot; a lost link (close event,
 * write error) is reopened with exponential back-off, forever. A vanished pty or USB adapter often reports
 * nothing at all (test-lab.md §1), so a run of cycles without any reply while the link is "open" also
 * closes and reopens it. Health (online/stale/offline) is not decided here: the caller derives it from the
 * snapshot timestamps.
 */
import { performance } from 'node:perf_hooks';
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { errorMessage, isFrameError, LinkError, TimeoutError } from '../../domain/errors.js';
import type { Link } from '../../links/link.js';
import { RequestChannel } from '../../links/request.js';
import type { BmsDriver, DriverEvent } from '../driver.js';
import {
  decodeBasicInfo,
  decodeCellVoltages,
  decodeFrame,
  decodeHardwareVersion,
  encodeReadRequest,
  JBD_MIN_FRAME,
  JbdFramer,
  JbdRegister,
  requirePayload,
  toSnapshot,
} from './protocol.js';

/** Options of {@link JbdDriver}. */
export interface JbdDriverOptions {
  /** The byte link to the BMS (serial, RS485, BLE); the driver opens and closes it. */
  link: Link<Uint8Array>;
  /** Time between the starts of two poll cycles, ms (default 1000). */
  pollIntervalMs?: number;
  /** Time allowed for each reply, ms (default 800, or 80 % of a shorter poll interval); must be < pollIntervalMs. */
  replyTimeoutMs?: number;
  /** Consecutive cycles without any reply after which the link is closed and reopened (default 3). */
  maxSilentCycles?: number;
  /** First reopen delay, ms (default 500); doubles per failed attempt up to `reconnectMaxMs`, reset by a successful open. */
  reconnectMinMs?: number;
  /** Longest reopen delay, ms (default 10 000). */
  reconnectMaxMs?: number;
  /** Wall clock for snapshot timestamps, ms since epoch (default Date.now). */
  now?: () => number;
}

/** Kinds of trouble, so a repeating one is reported once at warn level and then at debug level. */
type Trouble = 'open' | 'lost' | 'timeout' | 'decode' | 'silent';

/** Polls one JBD BMS over a byte link; see the file comment for the failure handling. */
export class JbdDriver implements BmsDriver {
  readonly family = 'jbd';
  readonly pollIntervalMs: number;
  readonly replyTimeoutMs: number;

  private readonly link: Link<Uint8Array>;
  private readonly channel: RequestChannel;
  private readonly now: () => number;
  private readonly maxSilentCycles: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly snapshotListeners: ((s: BatterySnapshot) => void)[] = [];
  private readonly eventListeners: ((e: DriverEvent) => void)[] = [];

  private running = false;
  /** Bumped whenever the connection ends or the driver stops: async work of an older session drops its result. */
  private session = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private backoffMs: number;
  /** Work in progress that stop() waits for. */
  private busy: Promise<void> | undefined;
  /** Monotonic time the next cycle is due (fixed grid: start + k × interval, so no drift accumulates). */
  private nextDueMs = 0;
  private silentCycles = 0;
  private cycleNo = 0;
  private model: string | undefined;
  private modelFailures = 0;
  private modelRetryCycle = 0;
  /** Troubles reported since the last good cycle: each kind is reported at its level once, then at debug. */
  private readonly troubles = new Set<Trouble>();

  constructor(opts: JbdDriverOptions) {
    this.link = opts.link;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.replyTimeoutMs = opts.replyTimeoutMs ?? Math.min(800, Math.round(this.pollIntervalMs * 0.8));
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
    this.now = opts.now ?? Date.now;
    this.channel = new RequestChannel(this.link, new JbdFramer());
    this.link.onClose((reason) => this.onLinkLost(reason));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.session++;
    this.backoffMs = this.reconnectMinMs;
    this.schedule(0, () => this.connect());
  }

  async stop(): Promise<void> {
    this.running = false;
    this.session++;
    this.clearTimer();
    this.channel.abort(new LinkError('driver stopped'));
    const busy = this.busy;
    if (busy !== undefined) await busy.catch(() => undefined);
    try {
      await this.link.close();
    } catch {
      // close() never rejects by contract; a buggy link must still not make stop() reject
    }
  }

  onSnapshot(listener: (snapshot: BatterySnapshot) => void): void {
    this.snapshotListeners.push(listener);
  }

  onEvent(listener: (event: DriverEvent) => void): void {
    this.eventListeners.push(listener);
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
      // Stopped (or lost) while opening: the newer owner of the session decides; do not leave it open if stopped.
      if (!this.running) await this.link.close();
      return;
    }
    this.backoffMs = this.reconnectMinMs;
    // While a dead BMS makes us reopen every few cycles, the reopen itself is not news.
    this.emit(this.troubles.has('silent') ? 'debug' : 'info', `${this.link.description} open`);
    this.model = undefined;
    this.modelFailures = 0;
    this.modelRetryCycle = 0;
    this.silentCycles = 0;
    this.cycleNo = 0;
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
    this.cycleNo++;
    try {
      const basic = decodeBasicInfo(await this.read(JbdRegister.basicInfo));
      const cells = decodeCellVoltages(await this.read(JbdRegister.cellVoltages));
      if (session !== this.session) return;
      await this.readModelIfDue(session);
      if (session !== this.session) return;
      this.silentCycles = 0;
      const snapshot = toSnapshot({ basic, cells, model: this.model }, this.now());
      if (this.troubles.size > 0) {
        this.troubles.clear();
        this.emit('info', 'BMS answering again');
      }
      for (const listener of this.snapshotListeners) {
        try {
          listener(snapshot);
        } catch (e) {
          this.emit('error', `snapshot listener failed: ${errorMessage(e)}`);
        }
      }
    } catch (e) {
      if (session !== this.session) return; // the link was lost or the driver stopped: handled there
      if (e instanceof TimeoutError) {
        this.silentCycles++;
        this.report('timeout', 'warn', `no reply from the BMS: ${e.message}`);
        if (this.silentCycles >= this.maxSilentCycles) {
          await this.reopen(session, `no reply in ${this.silentCycles} consecutive cycles`);
          return;
        }
      } else if (isFrameError(e)) {
        // The BMS answered, so the line is alive; only this cycle's data is unusable.
        this.silentCycles = 0;
        this.report('decode', 'warn', `bad reply: ${e.message}`);
      } else if (e instanceof LinkError) {
        // A link that fails a send without reporting a close is treated as gone.
        await this.reopen(session, `send failed: ${e.message}`);
        return;
      } else {
        this.report('decode', 'error', `unexpected error in poll cycle: ${errorMessage(e)}`);
      }
    }
    if (session !== this.session) return;
    this.scheduleNextCycle(session);
  }

  /** 0x05 once per connection; after a failure it is retried on later cycles, spaced out, never blocking 0x03/0x04. */
  private async readModelIfDue(session: number): Promise<void> {
    if (this.model !== undefined || this.cycleNo < this.modelRetryCycle) return;
    try {
      this.model = decodeHardwareVersion(await this.read(JbdRegister.hardwareVersion));
      this.emit('info', `BMS model ${this.model || '(empty)'}`);
    } catch (e) {
      if (session !== this.session) return;
      this.modelFailures++;
      this.modelRetryCycle = this.cycleNo + Math.min(32, 2 ** this.modelFailures);
      this.emit('debug', `model (0x05) not read: ${errorMessage(e)}`);
    }
  }

  /** One request; resolves with the payload of an OK reply to `register`. */
  private async read(register: number): Promise<Uint8Array> {
    const frame = await this.channel.request(encodeReadRequest(register), {
      timeoutMs: this.replyTimeoutMs,
      isReply: (f) => f.length >= JBD_MIN_FRAME && f[1] === register && (f[2] === 0x00 || f[2] === 0x80),
    });
    return requirePayload(decodeFrame(frame), register);
  }

  private scheduleNextCycle(session: number): void {
    const t = performance.now();
    // Stay on the grid; if a cycle overran (timeouts), skip the missed slots instead of bunching cycles up.
    this.nextDueMs += this.pollIntervalMs;
    if (this.nextDueMs <= t)
      this.nextDueMs += Math.ceil((t - this.nextDueMs) / this.pollIntervalMs) * this.pollIntervalMs;
    if (this.nextDueMs <= t) this.nextDueMs += this.pollIntervalMs;
    this.schedule(this.nextDueMs - t, () => {
      if (session === this.session) return this.cycle(session);
      return Promise.resolve();
    });
  }

  // ---- plumbing ------------------------------------------------------------------------------------------

  /** One timer at a time; the task's promise is kept so stop() can wait for it; nothing it throws escapes. */
  private schedule(delayMs: number, task: () => Promise<void>): void {
    this.clearTimer();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (!this.running) return;
        const run = task().catch((e: unknown) => {
          this.emit('error', `driver task failed: ${errorMessage(e)}`);
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

  /** A trouble already reported since the last good cycle goes to debug, so a dead BMS does not flood the log. */
  private report(kind: Trouble, level: DriverEvent['level'], message: string): void {
    this.emit(this.troubles.has(kind) ? 'debug' : level, message);
    this.troubles.add(kind);
  }

  private emit(level: DriverEvent['level'], message: string): void {
    for (const listener of this.eventListeners) {
      try {
        listener({ level, message });
      } catch {
        // a logging failure must not stop polling
      }
    }
  }
}
