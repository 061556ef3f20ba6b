/**
 * One CAN interface shared by every battery on it (a Deye rack's packs, several listeners): fans frames out to
 * its subscribers and keeps the link open — when the link closes (unplug, `ip link set can0 down`) it opens it
 * again with back-off, which for SocketCAN creates a new channel. Never throws out of a callback.
 */
import { errorMessage } from '../../domain/errors.js';
import type { CanFrame, CanLink } from './can-frame.js';

export interface CanSubscriber {
  frame(frame: CanFrame): void;
  /** The link opened (true) or was lost / could not be opened (false, with the reason). */
  state?(up: boolean, reason?: string): void;
}

export interface CanBusOptions {
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

export class CanBus {
  readonly link: CanLink;
  private readonly subscribers = new Set<CanSubscriber>();
  private readonly minMs: number;
  private readonly maxMs: number;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private delay: number;
  private lastFailure: string | undefined;

  constructor(link: CanLink, opts: CanBusOptions = {}) {
    this.link = link;
    this.minMs = opts.reconnectMinMs ?? 500;
    this.maxMs = opts.reconnectMaxMs ?? 10_000;
    this.delay = this.minMs;
    link.onData((frame) => {
      for (const s of this.subscribers) {
        try {
          s.frame(frame);
        } catch {
          // one subscriber's failure must not starve the others
        }
      }
    });
    link.onClose((reason) => {
      this.notify(false, reason.message);
      if (this.running) this.schedule();
    });
  }

  get isOpen(): boolean {
    return this.link.isOpen;
  }

  /** Add a subscriber; the first one opens the link. Returns the function that removes it (the last closes). */
  attach(subscriber: CanSubscriber): () => Promise<void> {
    this.subscribers.add(subscriber);
    if (!this.running) {
      this.running = true;
      this.delay = this.minMs;
      void this.tryOpen();
    } else if (this.link.isOpen) {
      subscriber.state?.(true);
    }
    return async () => {
      this.subscribers.delete(subscriber);
      if (this.subscribers.size === 0) await this.stop();
    };
  }

  /** Send when open; false (and nothing sent) while the link is down or the send failed. */
  async send(frame: CanFrame): Promise<boolean> {
    if (!this.link.isOpen) return false;
    try {
      await this.link.send(frame);
      return true;
    } catch {
      return false;
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.link.close();
  }

  private async tryOpen(): Promise<void> {
    this.timer = undefined;
    if (!this.running) return;
    try {
      await this.link.open();
    } catch (e) {
      const why = errorMessage(e);
      if (why !== this.lastFailure) this.notify(false, why);
      this.lastFailure = why;
      this.schedule();
      return;
    }
    if (!this.running) {
      await this.link.close();
      return;
    }
    this.lastFailure = undefined;
    this.delay = this.minMs;
    this.notify(true);
  }

  private schedule(): void {
    if (this.timer !== undefined || !this.running) return;
    const wait = this.delay;
    this.delay = Math.min(this.maxMs, this.delay * 2);
    this.timer = setTimeout(() => void this.tryOpen(), wait);
  }

  private notify(up: boolean, reason?: string): void {
    for (const s of this.subscribers) {
      try {
        s.state?.(up, reason);
      } catch {
        // ignore
      }
    }
  }
}
