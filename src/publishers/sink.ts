/**
 * Telemetry sinks: where battery and bank states go besides D-Bus (MQTT, HTTP, PostgreSQL).
 *
 *   BatteryMonitor / bank ──state──► fanOut ──► MqttSink · HttpSink · PostgresSink
 *   BMS driver ──────────frame─────►        └─► (sinks that show raw frames)
 *
 * The contract every sink keeps: `publish` and `frame` are synchronous, return at once and never throw; slow or
 * dead remote ends only cost the sink's own bounded queue (a drop counter says how much was lost). Nothing a sink
 * does may delay polling, D-Bus or charge control.
 */
import type { BatteryState } from '../domain/battery-state.js';
import { errorMessage } from '../domain/errors.js';
import type { Logger } from '../log.js';

/** One raw BMS frame, as the driver saw it on the wire. */
export interface RawFrame {
  /** ms since epoch. */
  time: number;
  /** `tx` = request we sent, `rx` = reply we received. */
  direction: 'rx' | 'tx';
  /** The bytes, hex (`DD 03 00 1B …` or `dd03001b…`; shown as given). */
  hex: string;
  /** Register / command / CAN id the frame belongs to (last frame per register is kept). */
  register?: string | number;
  /** Decoded fields, JSON-safe. */
  decoded?: Record<string, unknown>;
}

/** Free-form extras published with a state (`chargeMode`, `kind: 'bank'`, `members`, firmware…). */
export type StateExtras = Readonly<Record<string, unknown>>;

/** Counters a sink reports (health endpoint, logs). */
export interface SinkStats {
  /** Remote end reachable now (broker connected, database connected, server listening). */
  connected: boolean;
  /** Messages / rows / events delivered. */
  sent: number;
  /** Messages / rows / events lost (queue full, remote end down, slow client). */
  dropped: number;
  /** Waiting in the sink's own queue. */
  queued: number;
}

export interface Sink {
  /** Short name for logs (`mqtt`, `http`, `postgres`). */
  readonly name: string;
  /** A battery or bank state (every snapshot and every tick). Synchronous, non-blocking, never throws. */
  publish(state: BatteryState, extras?: StateExtras): void;
  /** A raw frame of one battery. Synchronous, non-blocking, never throws. */
  frame?(batteryId: string, frame: RawFrame): void;
  /** The status of another part of the driver (`inverter`: the inverter output). Synchronous, never throws. */
  component?(name: string, status: Readonly<Record<string, unknown>>): void;
  /** Counters for /api/health and logs. */
  stats?(): SinkStats;
  /** Flush what can be flushed quickly, disconnect, stop timers. Never rejects. */
  close(): Promise<void>;
}

/**
 * One sink made of several: each call goes to every sink, each inside its own try/catch, so a failing sink
 * can never stop the others or the caller.
 */
export function fanOut(sinks: readonly Sink[], logger?: Logger): Sink & { readonly sinks: readonly Sink[] } {
  const complained = new Set<string>();
  const guard = (sink: Sink, what: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      // A sink is never supposed to throw; say so once per sink and operation, not once per second.
      const key = `${sink.name}:${what}`;
      if (!complained.has(key)) {
        complained.add(key);
        logger?.error(`${sink.name}: ${what} threw (ignored from now on): ${errorMessage(e)}`);
      }
    }
  };
  return {
    name: 'telemetry',
    sinks,
    publish(state, extras) {
      for (const s of sinks) guard(s, 'publish', () => s.publish(state, extras));
    },
    frame(batteryId, frame) {
      for (const s of sinks) if (s.frame) guard(s, 'frame', () => s.frame?.(batteryId, frame));
    },
    component(name, status) {
      for (const s of sinks) if (s.component) guard(s, 'component', () => s.component?.(name, status));
    },
    stats() {
      const all = sinks.map((s) => s.stats?.()).filter((x): x is SinkStats => x !== undefined);
      return {
        connected: all.every((s) => s.connected),
        sent: all.reduce((a, s) => a + s.sent, 0),
        dropped: all.reduce((a, s) => a + s.dropped, 0),
        queued: all.reduce((a, s) => a + s.queued, 0),
      };
    },
    async close() {
      await Promise.all(sinks.map((s) => s.close().catch(() => undefined)));
    },
  };
}

/** A FIFO with a fixed capacity: pushing onto a full queue drops the oldest entry and counts it. */
export class BoundedQueue<T> {
  private items: T[] = [];
  private head = 0;
  /** Entries dropped because the queue was full, since creation. */
  dropped = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('capacity must be at least 1');
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** Append; returns the entry dropped to make room, if any. */
  push(item: T): T | undefined {
    let out: T | undefined;
    if (this.length >= this.capacity) {
      out = this.shift();
      this.dropped++;
    }
    this.items.push(item);
    return out;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined as T;
    this.head++;
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  /** The first `n` entries, oldest first, without removing them. */
  first(n: number): T[] {
    return this.items.slice(this.head, this.head + n);
  }

  toArray(): T[] {
    return this.items.slice(this.head);
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/** A log line at most once per `everyMs` (the others are counted and reported with the next line). */
export function rateLimitedLog(write: (msg: string) => void, everyMs: number, now: () => number = Date.now) {
  let last = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (msg: string): void => {
    const t = now();
    if (t - last >= everyMs) {
      last = t;
      write(suppressed > 0 ? `${msg} (${suppressed} similar messages suppressed)` : msg);
      suppressed = 0;
    } else {
      suppressed++;
    }
  };
}
