import { toHex } from '../bytes/hex.js';
import type { BatterySnapshot } from '../domain/battery-snapshot.js';
import { errorMessage, isFrameError, LinkError, TimeoutError } from '../domain/errors.js';
import type { Link } from '../links/link.js';
import type { BusChannel, BusLineOptions, BusUnit, PollOutcome, SerialBus } from '../links/serial-bus.js';

/**
 * A BMS driver runs one family's poll sequence over an injected link and turns replies into snapshots.
 * It never throws out of a callback and never exits the process: a dead device only means no snapshots
 * (the caller's health tracking turns silence into `stale` / `offline`).
 */
export interface BmsDriver {
  /** Family id, e.g. `jbd`. */
  readonly family: string;
  /** Begin polling (opens the link, reopens it with back-off when it vanishes). Idempotent. */
  start(): void;
  /** Stop polling and close the link. Never rejects. */
  stop(): Promise<void>;
  /** Receives one snapshot per completed poll cycle. */
  onSnapshot(listener: (snapshot: BatterySnapshot) => void): void;
  /** Receives one line per notable event (link opened/lost, decode error, timeout), for the log. */
  onEvent(listener: (event: DriverEvent) => void): void;
  /**
   * Receives every request sent and reply received for this battery, raw (for the HTTP API's last frames and
   * for captures). Optional: register it only when someone uses the frames, so polling allocates nothing more.
   */
  onFrame?(listener: (frame: WireFrame) => void): void;
}

/** One frame on the wire, as the driver saw it. `bytes` must be copied if kept. */
export interface WireFrame {
  /** ms since epoch (the driver's clock). */
  time: number;
  direction: 'tx' | 'rx';
  bytes: Uint8Array;
  /** The request this frame belongs to (the request itself, or the one a reply answers), as hex: lets a
   * consumer keep "the last frame per request" without knowing any BMS layout. */
  request?: string;
}

export interface DriverEvent {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

// ---- polled drivers on a SerialBus ------------------------------------------------------------------------

/** Where a polled driver's bus comes from: a shared bus, or a link for a bus of its own (single device). */
export interface BusOrLink extends BusLineOptions {
  /** The bus of the port, shared with the other batteries of the same protocol on it. */
  bus?: SerialBus | undefined;
  /** Without `bus`: the driver's own link (the line options apply to the bus made for it). */
  link?: Link<Uint8Array> | undefined;
}

/** `opts.bus`, or a new bus over `opts.link` made by the family's `create`. */
export function busFrom(
  opts: BusOrLink,
  create: (link: Link<Uint8Array>, line: BusLineOptions) => SerialBus,
): SerialBus {
  if (opts.bus !== undefined) return opts.bus;
  if (opts.link === undefined) throw new TypeError('a driver needs a bus or a link');
  const { gapMs, maxSilentCycles, reconnectMinMs, reconnectMaxMs } = opts;
  return create(opts.link, { gapMs, maxSilentCycles, reconnectMinMs, reconnectMaxMs });
}

/** The default reply timeout: `capMs`, or 80 % of a shorter poll interval. */
export function defaultReplyTimeoutMs(pollIntervalMs: number, capMs: number): number {
  return Math.min(capMs, Math.round(pollIntervalMs * 0.8));
}

/** Timing of a {@link PolledDriver}. */
export interface PolledDriverTiming {
  /** Time between the starts of two polls of this battery, ms. */
  pollIntervalMs: number;
  /** Time allowed for each reply, ms; must be < pollIntervalMs. */
  replyTimeoutMs: number;
  /** Wall clock for snapshot timestamps, ms since epoch (default Date.now). */
  now?: (() => number) | undefined;
}

/**
 * A request that is not needed for every snapshot (alarms, limits, identity): after a failure it is skipped for
 * 2, 4, 8 … 32 polls, so a firmware that lacks it costs one timeout now and then rather than one per poll.
 */
export class OptionalRequest {
  private failures = 0;
  private skipUntil = 0;

  /** Should the request be sent in poll `cycleNo`? */
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

type Trouble = 'timeout' | 'decode' | 'internal';

/**
 * A BmsDriver that is one unit of a SerialBus: the bus decides when it polls and owns the line; the family only
 * says what one poll is ({@link readSnapshot}). A failed poll costs an event and no snapshot; each kind of trouble
 * is reported once at its level and then at debug until a poll succeeds, so a dead BMS does not flood the log.
 * Health (online / stale / offline) is the caller's, from the snapshot timestamps.
 */
export abstract class PolledDriver implements BmsDriver {
  abstract readonly family: string;
  readonly bus: SerialBus;
  readonly pollIntervalMs: number;
  readonly replyTimeoutMs: number;

  protected readonly now: () => number;
  /** Polls so far, this one included: spaces out optional reads. */
  protected cycleNo = 0;
  private running = false;
  private stopping: Promise<void> | undefined;
  private readonly snapshotListeners: ((s: BatterySnapshot) => void)[] = [];
  private readonly eventListeners: ((e: DriverEvent) => void)[] = [];
  private readonly troubles = new Set<Trouble>();
  private readonly unit: BusUnit;

  constructor(bus: SerialBus, timing: PolledDriverTiming) {
    const { pollIntervalMs, replyTimeoutMs } = timing;
    if (!(pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be > 0, got ${pollIntervalMs}`);
    if (!(replyTimeoutMs > 0 && replyTimeoutMs < pollIntervalMs)) {
      throw new RangeError(`replyTimeoutMs (${replyTimeoutMs}) must be > 0 and < pollIntervalMs (${pollIntervalMs})`);
    }
    this.bus = bus;
    this.pollIntervalMs = pollIntervalMs;
    this.replyTimeoutMs = replyTimeoutMs;
    this.now = timing.now ?? Date.now;
    this.unit = {
      pollIntervalMs,
      poll: (channel) => this.pollOnce(channel),
      connected: () => this.onConnected(),
      busEvent: (e) => {
        if (this.running) this.emit(e.level, e.message);
      },
    };
  }

  /** One poll: this battery's requests over `channel`, decoded. Throws what the requests and decoders throw. */
  protected abstract readSnapshot(channel: BusChannel): Promise<BatterySnapshot>;

  /** The line was (re)opened: forget what must be read again once per connection. */
  protected onConnected(): void {}

  /** Prefix of this driver's own events, e.g. `pack 2: ` on a shared bus. */
  protected get label(): string {
    return '';
  }

  /** Whom "no reply from …" names. */
  protected get subject(): string {
    return 'the BMS';
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.bus.attach(this.unit);
  }

  async stop(): Promise<void> {
    if (this.running) {
      this.running = false;
      this.stopping = this.bus.detach(this.unit);
    }
    await this.stopping;
  }

  onSnapshot(listener: (snapshot: BatterySnapshot) => void): void {
    this.snapshotListeners.push(listener);
  }

  onEvent(listener: (event: DriverEvent) => void): void {
    this.eventListeners.push(listener);
  }

  private readonly frameListeners: ((frame: WireFrame) => void)[] = [];

  onFrame(listener: (frame: WireFrame) => void): void {
    this.frameListeners.push(listener);
  }

  private tapFrame(direction: WireFrame['direction'], bytes: Uint8Array, request: Uint8Array): void {
    const key = toHex(request, '');
    for (const l of this.frameListeners) {
      try {
        l({ time: this.now(), direction, bytes, request: key });
      } catch {
        // A frame consumer (telemetry) must never disturb polling.
      }
    }
  }

  /** One request with this driver's reply timeout. */
  protected request(channel: BusChannel, bytes: Uint8Array, isReply: (frame: Uint8Array) => boolean) {
    return channel.request(bytes, { timeoutMs: this.replyTimeoutMs, isReply });
  }

  /**
   * A read the snapshot can do without: undefined when `gate` says it is not due or the read fails (then the gate
   * backs it off and a debug event names `what`). A LinkError still propagates: the line is gone.
   */
  protected async optional<T>(
    gate: OptionalRequest | undefined,
    what: string,
    read: () => Promise<T>,
  ): Promise<T | undefined> {
    if (gate !== undefined && !gate.due(this.cycleNo)) return undefined;
    try {
      const value = await read();
      gate?.succeeded();
      return value;
    } catch (e) {
      if (e instanceof LinkError) throw e;
      gate?.failed(this.cycleNo);
      this.emit('debug', `${this.label}${what} not read: ${errorMessage(e)}`);
      return undefined;
    }
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

  private async pollOnce(channel: BusChannel): Promise<PollOutcome> {
    this.cycleNo++;
    let answered = false;
    const tracked: BusChannel = {
      request: async (bytes, opts) => {
        if (this.frameListeners.length > 0) this.tapFrame('tx', bytes, bytes);
        const frame = await channel.request(bytes, opts);
        answered = true;
        if (this.frameListeners.length > 0) this.tapFrame('rx', frame, bytes);
        return frame;
      },
    };
    try {
      const snapshot = await this.readSnapshot(tracked);
      if (!this.running) return 'answered';
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
      return 'answered';
    } catch (e) {
      // The bus handles a lost line (and a stopped driver's aborted request).
      if (e instanceof LinkError) throw e;
      if (!this.running) return answered ? 'answered' : 'silent';
      if (e instanceof TimeoutError) {
        this.report('timeout', 'warn', `${this.label}no reply from ${this.subject}: ${e.message}`);
      } else if (isFrameError(e)) {
        this.report('decode', 'warn', `${this.label}bad reply from ${this.subject}: ${e.message}`);
      } else {
        this.report('internal', 'error', `${this.label}unexpected error in poll cycle: ${errorMessage(e)}`);
      }
      return answered ? 'answered' : 'silent';
    }
  }

  private report(kind: Trouble, level: DriverEvent['level'], message: string): void {
    this.emit(this.troubles.has(kind) ? 'debug' : level, message);
    this.troubles.add(kind);
  }
}
