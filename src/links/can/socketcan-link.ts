/**
 * CanLink over Linux SocketCAN (`can0` on a GX, `vcan0` in tests) with the optional native `socketcan` package
 * (DECISIONS.md D4), loaded lazily so that everything else runs where it is missing.
 *
 * Kernel facts this class is built around (test-lab.md §3): on link down every raw socket on the interface stops
 * (`onStopped`) and stays dead after link up, and `send()` on it does not throw. So a stopped channel is a closed
 * link: the owner's reopen (CanBus) creates a new channel, which works as soon as the interface is up.
 * Sends are non-blocking (MSG_DONTWAIT) and go through a queue that yields to the event loop every few frames and
 * waits briefly when the kernel's transmit queue is full, so a burst never blocks timers or the receive side.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { errorMessage, LinkError } from '../../domain/errors.js';
import { type CanFilter, type CanFrame, type CanLink, checkCanFrame, matchesFilters } from './can-frame.js';

/** The part of socketcan's RawChannel we use. */
export interface RawChannelLike {
  addListener(event: 'onMessage', cb: (m: { id: number; ext?: boolean; rtr?: boolean; data: Buffer }) => void): void;
  addListener(event: 'onStopped', cb: () => void): void;
  start(): void;
  stop(): void;
  send(m: { id: number; ext: boolean; rtr: boolean; data: Buffer }): number | undefined;
  setRxFilters?(filters: { id: number; mask: number; invert?: boolean }[]): void;
}

export interface SocketCanModule {
  createRawChannelWithOptions(
    iface: string,
    options: { timestamps?: boolean; non_block_send?: boolean },
  ): RawChannelLike;
}

let cached: SocketCanModule | undefined;

/** Load `socketcan` once; a LinkError that says how to get it when it is not installed or not built. */
export function loadSocketCan(): SocketCanModule {
  if (cached !== undefined) return cached;
  try {
    const require = createRequire(import.meta.url);
    cached = require('socketcan') as SocketCanModule;
    return cached;
  } catch (e) {
    throw new LinkError(
      `SocketCAN needs the optional package "socketcan" (4.0.7), which did not load: ${errorMessage(e)}. ` +
        'The release for the GX bundles it (docs/install.md); from source run `npm install socketcan@4.0.7`, ' +
        'or use a USB-CAN-A adapter (`can_port = /dev/ttyUSB0`).',
      { cause: e },
    );
  }
}

export interface SocketCanLinkOptions {
  /** Interface, e.g. `can0`, `vcan0`. */
  iface: string;
  filters?: readonly CanFilter[];
  /** Module loader (default: the lazy require of `socketcan`). */
  load?: () => SocketCanModule;
}

/** Frames sent before the queue pauses for a timer tick. */
const SEND_SLICE = 16;
/** Waits for a full transmit queue before a send fails. */
const SEND_RETRIES = 200;
const SEND_RETRY_MS = 2;

/** Is the interface administratively up? undefined when sysfs cannot tell (the channel decides then). */
export function interfaceUp(iface: string): boolean | undefined {
  try {
    const flags = Number.parseInt(readFileSync(`/sys/class/net/${iface}/flags`, 'utf8').trim(), 16);
    return (flags & 1) === 1;
  } catch {
    return undefined;
  }
}

interface QueuedSend {
  frame: CanFrame;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class SocketCanLink implements CanLink {
  readonly description: string;
  readonly iface: string;
  private readonly load: () => SocketCanModule;
  private channel: RawChannelLike | undefined;
  private filters: readonly CanFilter[];
  private dataListener: ((frame: CanFrame) => void) | undefined;
  private readonly closeListeners: ((reason: Error) => void)[] = [];
  private readonly queue: QueuedSend[] = [];
  private draining = false;
  private sentSinceYield = 0;
  /** Channels created so far (tests read it to see a recreated channel). */
  channelsCreated = 0;

  constructor(opts: SocketCanLinkOptions) {
    this.iface = opts.iface;
    this.filters = opts.filters ?? [];
    this.load = opts.load ?? loadSocketCan;
    this.description = `SocketCAN ${opts.iface}`;
  }

  get isOpen(): boolean {
    return this.channel !== undefined;
  }

  async open(): Promise<void> {
    if (this.channel !== undefined) return;
    const mod = this.load();
    if (interfaceUp(this.iface) === false) throw new LinkError(`${this.iface} is down`);
    let channel: RawChannelLike;
    try {
      channel = mod.createRawChannelWithOptions(this.iface, { timestamps: false, non_block_send: true });
    } catch (e) {
      throw new LinkError(`cannot open ${this.iface}: ${errorMessage(e)}`, { cause: e });
    }
    channel.addListener('onMessage', (m) => {
      if (this.channel !== channel) return;
      const frame: CanFrame = m.rtr
        ? { id: m.id, ext: m.ext === true, data: new Uint8Array(0), rtr: true }
        : { id: m.id, ext: m.ext === true, data: new Uint8Array(m.data) };
      if (!matchesFilters(frame, this.filters)) return;
      try {
        this.dataListener?.(frame);
      } catch {
        // the receiver's failure must not break the link
      }
    });
    channel.addListener('onStopped', () => {
      if (this.channel !== channel) return;
      this.lost(new LinkError(`${this.iface} went down`));
    });
    try {
      this.applyKernelFilters(channel);
      channel.start();
    } catch (e) {
      throw new LinkError(`cannot start ${this.iface}: ${errorMessage(e)}`, { cause: e });
    }
    this.channel = channel;
    this.channelsCreated++;
  }

  send(frame: CanFrame): Promise<void> {
    try {
      checkCanFrame(frame);
    } catch (e) {
      return Promise.reject(new LinkError(errorMessage(e)));
    }
    if (this.channel === undefined) return Promise.reject(new LinkError(`${this.description} is not open`));
    return new Promise((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    this.failQueue(new LinkError(`${this.description} was closed`));
    if (channel !== undefined) {
      try {
        channel.stop();
      } catch {
        // already stopped
      }
    }
  }

  setFilters(filters: readonly CanFilter[]): void {
    this.filters = [...filters];
    if (this.channel !== undefined) {
      try {
        this.applyKernelFilters(this.channel);
      } catch {
        // the user-space filter still applies
      }
    }
  }

  onData(listener: (frame: CanFrame) => void): void {
    this.dataListener = listener;
  }

  onClose(listener: (reason: Error) => void): void {
    this.closeListeners.push(listener);
  }

  /** Kernel filters spare the event loop frames nobody wants; the user-space check stays as the authority. */
  private applyKernelFilters(channel: RawChannelLike): void {
    if (channel.setRxFilters === undefined) return;
    const filters =
      this.filters.length === 0 ? [{ id: 0, mask: 0 }] : this.filters.map((f) => ({ id: f.id, mask: f.mask }));
    channel.setRxFilters(filters);
  }

  private lost(reason: Error): void {
    // The channel has stopped itself: calling stop() on it again aborts the process (socketcan 4.0.7 unrefs twice).
    this.channel = undefined;
    this.failQueue(reason);
    for (const l of this.closeListeners) {
      try {
        l(reason);
      } catch {
        // a listener's failure must not break the link
      }
    }
  }

  private failQueue(reason: Error): void {
    for (const q of this.queue.splice(0)) q.reject(reason);
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const q = this.queue[0] as QueuedSend;
        const channel = this.channel;
        if (channel === undefined) {
          this.failQueue(new LinkError(`${this.description} is not open`));
          break;
        }
        let ok = false;
        for (let attempt = 0; attempt < SEND_RETRIES && this.channel === channel; attempt++) {
          let n: number | undefined;
          try {
            n = channel.send({
              id: q.frame.id,
              ext: q.frame.ext,
              rtr: q.frame.rtr === true,
              data: Buffer.from(q.frame.data),
            });
          } catch (e) {
            this.queue.shift();
            q.reject(new LinkError(`send on ${this.iface} failed: ${errorMessage(e)}`));
            break;
          }
          if (n === undefined || n >= 0) {
            ok = true;
            break;
          }
          // Transmit queue full (EAGAIN / ENOBUFS): let the kernel drain it.
          await new Promise((r) => setTimeout(r, SEND_RETRY_MS));
        }
        if (this.queue[0] !== q) continue;
        this.queue.shift();
        if (ok) q.resolve();
        else q.reject(new LinkError(`send on ${this.iface} failed: transmit queue stayed full`));
        // A timer, not setImmediate: the event loop (and the addon's receive thread, and other processes on one
        // core) get real time between slices. 16 frames per ≥ 1 ms is still 4× what a 500 kbit/s bus carries.
        // Counted across drains: a caller that awaits each send() would otherwise never reach a slice.
        if (++this.sentSinceYield >= SEND_SLICE) {
          this.sentSinceYield = 0;
          await new Promise((r) => setTimeout(r, 1));
        }
      }
    } finally {
      this.draining = false;
    }
  }
}
