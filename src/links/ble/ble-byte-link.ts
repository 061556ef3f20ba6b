/**
 * One BMS over BLE as a byte link (Link<Uint8Array>): writes go to the family's write characteristic,
 * notifications of its notify characteristic come out as data. So the serial drivers (their SerialBus, framers
 * and decoders) run unchanged over BLE, and a streaming family (JK) reads the same bytes.
 *
 * The connection manager lives here:
 * - connect attempts go through the adapter's AdapterGate (one at a time per adapter, staggered starts), each
 *   with a connect timeout that cancels it; failed attempts back off exponentially with jitter;
 * - modes: `keep-connected` (default; open() connects, a lost connection closes the link and the owner reopens
 *   it) and `poll` (open() connects nothing; each send connects on demand and the connection is dropped after
 *   `idleDisconnectMs` without sends — for peripherals that must stay free for a phone app);
 * - a no-data watchdog: a vanished peer is never reported by some stacks (no supervision timeout, test-lab.md
 *   §4), so `noDataTimeoutMs` without a notification while connected counts as a lost connection;
 * - the Venus OS vesmart-server pattern (DECISIONS.md D5): remote disconnects every ~60 s after connecting are
 *   recognised and named once in the log; the link reconnects each time anyway.
 *
 * Never throws out of a callback; errors are LinkErrors from open()/send() or a close event.
 */
import { errorMessage, LinkError } from '../../domain/errors.js';
import type { Link } from '../link.js';
import { AdapterGate, Backoff } from './adapter-gate.js';
import { type BleEvent, type BleGattProfile, type BleLink, type BlePeer, normalizeAddress } from './ble-link.js';

export type BleMode = 'keep-connected' | 'poll';

export interface BleByteLinkOptions {
  /** The adapter. */
  ble: BleLink;
  /** The BMS's Bluetooth address. */
  address: string;
  /** Service, notify and write characteristics of the family. */
  profile: BleGattProfile;
  /** Connection attempts of this adapter (default: the shared gate of `ble.description`). */
  gate?: AdapterGate | undefined;
  mode?: BleMode | undefined;
  /** Per connection attempt (scan for the address included), ms (default 15 000). */
  connectTimeoutMs?: number | undefined;
  /** No notification for this long while connected = connection lost, ms (default 20 000; 0 = off). */
  noDataTimeoutMs?: number | undefined;
  /** Poll mode: disconnect after this long without a send, ms (default 3000). */
  idleDisconnectMs?: number | undefined;
  /** First back-off delay after a failed attempt, ms (default 1000); doubles up to `backoffMaxMs` (60 000). */
  backoffMinMs?: number | undefined;
  backoffMaxMs?: number | undefined;
  /** The disconnect period of vesmart-server, ms (default 60 000), ± `vesmartToleranceMs` (default 5000). */
  vesmartPeriodMs?: number | undefined;
  vesmartToleranceMs?: number | undefined;
  /** Random source of the jitter (tests). */
  random?: (() => number) | undefined;
}

/** Counters and timings, for logs, /Mgmt and the test report. */
export interface BleLinkStats {
  connects: number;
  failedConnects: number;
  /** Connections that ended without close(): remote disconnects and watchdog trips. */
  lost: number;
  watchdogTrips: number;
  /** Duration of the last successful connect (gate wait excluded, discovery and subscribe included), ms. */
  lastConnectMs: number | undefined;
}

const VESMART_REPEATS = 3;

export class BleByteLink implements Link<Uint8Array> {
  readonly description: string;
  readonly address: string;
  readonly mode: BleMode;
  readonly stats: BleLinkStats = {
    connects: 0,
    failedConnects: 0,
    lost: 0,
    watchdogTrips: 0,
    lastConnectMs: undefined,
  };

  private readonly ble: BleLink;
  private readonly profile: BleGattProfile;
  private readonly gate: AdapterGate;
  private readonly connectTimeoutMs: number;
  private readonly noDataTimeoutMs: number;
  private readonly idleDisconnectMs: number;
  private readonly backoff: Backoff;
  private readonly vesmartPeriodMs: number;
  private readonly vesmartToleranceMs: number;

  private opened = false;
  /** Bumped by close(): an attempt that started before it drops its connection. */
  private generation = 0;
  /** Cancels the connect attempt in progress. */
  private attempt: AbortController | undefined;
  private peer: BlePeer | undefined;
  private connecting: Promise<BlePeer> | undefined;
  private withoutResponse = false;
  private connectedAt = 0;
  private lastRxAt = 0;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private sleeping: { timer: ReturnType<typeof setTimeout>; resolve: () => void } | undefined;
  private periodicDrops = 0;
  private vesmartReported = false;
  private dataListener: ((message: Uint8Array) => void) | undefined;
  private readonly closeListeners: ((reason: Error) => void)[] = [];
  private readonly eventListeners: ((event: BleEvent) => void)[] = [];

  constructor(opts: BleByteLinkOptions) {
    this.ble = opts.ble;
    this.address = normalizeAddress(opts.address);
    this.profile = opts.profile;
    this.mode = opts.mode ?? 'keep-connected';
    this.gate = opts.gate ?? AdapterGate.for(opts.ble.description);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
    this.noDataTimeoutMs = opts.noDataTimeoutMs ?? 20_000;
    this.idleDisconnectMs = opts.idleDisconnectMs ?? 3000;
    this.backoff = new Backoff(opts.backoffMinMs ?? 1000, opts.backoffMaxMs ?? 60_000, opts.random);
    this.vesmartPeriodMs = opts.vesmartPeriodMs ?? 60_000;
    this.vesmartToleranceMs = opts.vesmartToleranceMs ?? 5000;
    this.description = `BLE ${this.address}`;
  }

  get isOpen(): boolean {
    return this.opened;
  }

  /** Physically connected right now. */
  get isConnected(): boolean {
    return this.peer !== undefined;
  }

  onData(listener: (message: Uint8Array) => void): void {
    this.dataListener = listener;
  }

  onClose(listener: (reason: Error) => void): void {
    this.closeListeners.push(listener);
  }

  /** Connection events (connected, lost, watchdog, vesmart) for the log. */
  onEvent(listener: (event: BleEvent) => void): void {
    this.eventListeners.push(listener);
  }

  async open(): Promise<void> {
    if (this.opened) return;
    if (this.mode === 'keep-connected') await this.ensureConnected();
    this.opened = true;
  }

  async send(message: Uint8Array): Promise<void> {
    if (!this.opened) throw new LinkError(`${this.description} is not open`);
    const peer = this.peer ?? (await this.ensureConnected());
    if (this.mode === 'poll') this.armIdle();
    try {
      await peer.write(this.profile.write, message, this.withoutResponse);
    } catch (e) {
      const err = e instanceof LinkError ? e : new LinkError(errorMessage(e));
      if (this.peer === peer) {
        void peer.disconnect();
        this.lost(`write failed: ${err.message}`, false);
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    this.opened = false;
    this.generation++;
    this.attempt?.abort();
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.resolve();
      this.sleeping = undefined;
    }
    const peer = this.peer;
    this.drop();
    await peer?.disconnect();
  }

  // ---- connection ---------------------------------------------------------------------------------------

  private ensureConnected(): Promise<BlePeer> {
    if (this.peer) return Promise.resolve(this.peer);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<BlePeer> {
    const generation = this.generation;
    const delay = this.backoff.nextDelayMs();
    if (delay > 0) {
      this.emit('debug', `${this.address}: next connect attempt in ${delay} ms`);
      await new Promise<void>((resolve) => {
        this.sleeping = { timer: setTimeout(resolve, delay), resolve };
      });
      this.sleeping = undefined;
      if (generation !== this.generation) throw new LinkError(`${this.description} was closed`);
    }
    const attempt = new AbortController();
    this.attempt = attempt;
    try {
      const { peer, ms } = await this.gate.run(async () => {
        if (attempt.signal.aborted) throw new LinkError(`${this.description} was closed`);
        this.emit('debug', `${this.address}: connecting`);
        const t0 = performance.now();
        const peer = await this.ble.connect(this.address, {
          timeoutMs: this.connectTimeoutMs,
          signal: attempt.signal,
        });
        try {
          // Discovery and subscribe share the connect timeout: a stack that never answers must not hold the gate.
          const left = Math.max(1, this.connectTimeoutMs - (performance.now() - t0));
          await withTimeout(this.setUp(peer), left, 'GATT set-up timed out');
        } catch (e) {
          await peer.disconnect();
          throw e;
        }
        return { peer, ms: performance.now() - t0 };
      });
      if (generation !== this.generation) {
        await peer.disconnect();
        throw new LinkError(`${this.description} was closed while connecting`);
      }
      this.backoff.succeeded();
      this.stats.connects++;
      this.stats.lastConnectMs = ms;
      this.peer = peer;
      this.connectedAt = Date.now();
      this.lastRxAt = this.connectedAt;
      peer.onDisconnect((reason) => {
        if (this.peer === peer) this.lost(`disconnected by the peer (${reason})`, true);
      });
      this.startWatchdog(peer);
      this.emit('info', `${this.address}: connected in ${Math.round(ms)} ms`);
      return peer;
    } catch (e) {
      if (generation !== this.generation) throw e instanceof LinkError ? e : new LinkError(errorMessage(e));
      this.backoff.failed();
      this.stats.failedConnects++;
      const err = e instanceof LinkError ? e : new LinkError(errorMessage(e));
      this.emit(this.backoff.consecutiveFailures === 1 ? 'warn' : 'debug', `${this.address}: ${err.message}`);
      throw err;
    }
  }

  private async setUp(peer: BlePeer): Promise<void> {
    const { service, notify, write } = this.profile;
    const chars = await peer.discover(service, notify === write ? [notify] : [notify, write]);
    const w = chars.find((c) => c.uuid === write);
    this.withoutResponse = w?.properties.includes('writeWithoutResponse') ?? false;
    await peer.subscribe(notify, (value) => this.received(peer, value));
  }

  private received(peer: BlePeer, value: Uint8Array): void {
    if (this.peer !== peer) return;
    this.lastRxAt = Date.now();
    try {
      this.dataListener?.(value);
    } catch {
      // the receiver's problem, not the link's
    }
  }

  private startWatchdog(peer: BlePeer): void {
    if (this.noDataTimeoutMs <= 0) return;
    const every = Math.max(50, Math.min(1000, Math.round(this.noDataTimeoutMs / 4)));
    this.watchdog = setInterval(() => {
      if (this.peer !== peer) return;
      const silentMs = Date.now() - this.lastRxAt;
      if (silentMs < this.noDataTimeoutMs) return;
      this.stats.watchdogTrips++;
      this.emit(
        'warn',
        `${this.address}: no data for ${(silentMs / 1000).toFixed(1)} s, connection presumed lost (a vanished peer is not always reported by the Bluetooth stack)`,
      );
      void peer.disconnect();
      this.lost('no-data watchdog', false);
    }, every);
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      const peer = this.peer;
      if (!peer) return;
      this.emit('debug', `${this.address}: idle, disconnecting (poll mode)`);
      this.drop();
      void peer.disconnect();
    }, this.idleDisconnectMs);
  }

  /** Forget the connection (timers included). */
  private drop(): void {
    clearInterval(this.watchdog);
    clearTimeout(this.idleTimer);
    this.watchdog = undefined;
    this.idleTimer = undefined;
    this.peer = undefined;
  }

  /** The connection ended without close(). */
  private lost(why: string, remote: boolean): void {
    const lived = Date.now() - this.connectedAt;
    this.drop();
    this.stats.lost++;
    if (remote) this.checkVesmart(lived);
    else this.periodicDrops = 0;
    if (this.mode === 'poll') {
      this.emit('info', `${this.address}: ${why}; reconnecting at the next poll`);
      return;
    }
    this.emit('warn', `${this.address}: ${why} after ${(lived / 1000).toFixed(1)} s`);
    if (!this.opened) return;
    this.opened = false;
    const reason = new LinkError(`${this.address}: ${why}`);
    for (const l of this.closeListeners) {
      try {
        l(reason);
      } catch {
        // listeners never throw into the stack
      }
    }
  }

  private checkVesmart(livedMs: number): void {
    if (Math.abs(livedMs - this.vesmartPeriodMs) <= this.vesmartToleranceMs) {
      this.periodicDrops++;
    } else {
      this.periodicDrops = 0;
      this.vesmartReported = false;
    }
    if (this.periodicDrops >= VESMART_REPEATS && !this.vesmartReported) {
      this.vesmartReported = true;
      this.emit(
        'warn',
        `${this.address}: disconnected by the peer every ~${Math.round(this.vesmartPeriodMs / 1000)} s (${this.periodicDrops} times in a row): this is the Venus OS vesmart-server dropping BlueZ connections while "Settings → Bluetooth" is on. Reconnecting each time; turn Bluetooth off in Settings or use a dedicated adapter (ble_backend = noble) to stop it.`,
      );
    }
  }

  /** The vesmart-server pattern has been recognised (and logged). */
  get vesmartDetected(): boolean {
    return this.vesmartReported;
  }

  private emit(level: BleEvent['level'], message: string): void {
    for (const l of this.eventListeners) {
      try {
        l({ level, message });
      } catch {
        // logging must not disturb the connection
      }
    }
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LinkError(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
