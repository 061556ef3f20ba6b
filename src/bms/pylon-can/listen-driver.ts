/**
 * The base of CAN battery drivers: they do not poll, they listen. Frames arrive on a shared CanBus; the family
 * folds them into its state and says when a snapshot is complete (e.g. on each 0x356). Optionally it sends a
 * keep-alive frame periodically (Pylon batteries wait for the inverter's 0x305). A silent battery just means no
 * snapshots: health (stale / offline) is the caller's, from the snapshot timestamps.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { errorMessage, isFrameError } from '../../domain/errors.js';
import type { CanBus, CanSubscriber } from '../../links/can/can-bus.js';
import { type CanFrame, formatCanFrame } from '../../links/can/can-frame.js';
import type { BmsDriver, DriverEvent, WireFrame } from '../driver.js';

export interface CanDriverOptions {
  bus: CanBus;
  /** Wall clock for snapshot timestamps (default Date.now). */
  now?: () => number;
  /** Send `keepAliveFrame` every this many ms (0 = never). */
  keepAliveMs?: number;
}

export abstract class CanListenDriver implements BmsDriver {
  abstract readonly family: string;
  readonly bus: CanBus;
  protected readonly now: () => number;
  private readonly keepAliveMs: number;
  private running = false;
  private detach: (() => Promise<void>) | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private readonly snapshotListeners: ((s: BatterySnapshot) => void)[] = [];
  private readonly eventListeners: ((e: DriverEvent) => void)[] = [];
  private readonly frameListeners: ((f: WireFrame) => void)[] = [];
  private decodeTrouble = false;

  constructor(opts: CanDriverOptions) {
    this.bus = opts.bus;
    this.now = opts.now ?? Date.now;
    this.keepAliveMs = opts.keepAliveMs ?? 0;
  }

  /** Fold one frame into the state; return a snapshot when this frame completes one. Throws FrameError. */
  protected abstract receive(frame: CanFrame): BatterySnapshot | undefined;

  /** The frame sent every keepAliveMs. */
  protected keepAliveFrame(): CanFrame | undefined {
    return undefined;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const sub: CanSubscriber = {
      frame: (f) => this.onFrameIn(f),
      state: (up, reason) => {
        if (up) this.emit('info', `${this.bus.link.description} open`);
        else this.emit('warn', `${this.bus.link.description}: ${reason ?? 'closed'}`);
      },
    };
    this.detach = this.bus.attach(sub);
    if (this.keepAliveMs > 0) {
      this.keepAliveTimer = setInterval(() => {
        const f = this.keepAliveFrame();
        if (f === undefined || !this.bus.isOpen) return;
        this.tap('tx', f);
        void this.bus.send(f);
      }, this.keepAliveMs);
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    const detach = this.detach;
    this.detach = undefined;
    await detach?.();
  }

  onSnapshot(listener: (snapshot: BatterySnapshot) => void): void {
    this.snapshotListeners.push(listener);
  }

  onEvent(listener: (event: DriverEvent) => void): void {
    this.eventListeners.push(listener);
  }

  onFrame(listener: (frame: WireFrame) => void): void {
    this.frameListeners.push(listener);
  }

  protected emit(level: DriverEvent['level'], message: string): void {
    for (const l of this.eventListeners) {
      try {
        l({ level, message });
      } catch {
        // logging must not stop the driver
      }
    }
  }

  private tap(direction: WireFrame['direction'], frame: CanFrame): void {
    if (this.frameListeners.length === 0) return;
    // The CAN frame as the SocketCAN / candump world writes it, ASCII: `351#1C02…`.
    const bytes = new TextEncoder().encode(formatCanFrame(frame));
    for (const l of this.frameListeners) {
      try {
        l({ time: this.now(), direction, bytes });
      } catch {
        // telemetry must not disturb the driver
      }
    }
  }

  private onFrameIn(frame: CanFrame): void {
    if (!this.running) return;
    // Every frame, before decoding: a capture must hold the frames that fail to decode too.
    this.tap('rx', frame);
    let snapshot: BatterySnapshot | undefined;
    try {
      snapshot = this.receive(frame);
      if (this.decodeTrouble && snapshot !== undefined) {
        this.decodeTrouble = false;
        this.emit('info', 'BMS frames decode again');
      }
    } catch (e) {
      if (isFrameError(e)) {
        this.emit(this.decodeTrouble ? 'debug' : 'warn', `bad frame ${formatCanFrame(frame)}: ${e.message}`);
        this.decodeTrouble = true;
      } else {
        this.emit('error', `unexpected error decoding ${formatCanFrame(frame)}: ${errorMessage(e)}`);
      }
      return;
    }
    if (snapshot === undefined) return;
    for (const l of this.snapshotListeners) {
      try {
        l(snapshot);
      } catch (e) {
        this.emit('error', `snapshot listener failed: ${errorMessage(e)}`);
      }
    }
  }
}
