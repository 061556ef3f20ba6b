/**
 * MQTT publisher (mqtt.js): JSON topics per battery and bank, Home Assistant discovery, availability with a last
 * will. See topics.ts for the layout and docs/telemetry.md for the contract.
 *
 *   publish(state) ──► latest[id] (O(1), never blocks) ──timer──► flush(id): changed parts only, ≤ 1 per
 *   min_interval; every teleperiod all parts; on every (re)connect: status, discovery and all parts again.
 *
 * Nothing is queued while the broker is away (the next connect republishes the current state instead), and
 * messages handed to the socket but not yet written are capped: beyond the cap they are dropped and counted.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IClientOptions, MqttClient } from 'mqtt';

// Loaded on first use: a driver with MQTT off never pays mqtt.js's memory (RSS budget on the GX).
const loadMqtt = (): typeof import('mqtt') => createRequire(import.meta.url)('mqtt') as typeof import('mqtt');

import type { BatteryState } from '../../domain/battery-state.js';
import { errorMessage } from '../../domain/errors.js';
import type { Logger } from '../../log.js';
import { jsonSafe, stableJson, statePayload } from '../payload.js';
import { rateLimitedLog, type Sink, type SinkStats, type StateExtras } from '../sink.js';
import type { MqttConfig } from './config.js';
import { discoveryMessages, partBodies, type StatePart, type Topics, topics } from './topics.js';

export interface MqttSinkOptions {
  config: MqttConfig;
  logger: Logger;
  /** Driver version, for HA's `origin`. */
  version: string;
  now?: () => number;
  /** Messages handed to mqtt.js but not yet written, at most (default 1000). */
  maxInflight?: number;
}

interface Entry {
  state: BatteryState;
  extras: StateExtras | undefined;
  timer: NodeJS.Timeout | undefined;
  lastFlushMs: number;
  /** Topic → stable JSON last sent (cleared on reconnect). */
  sent: Map<string, string>;
}

export class MqttSink implements Sink {
  readonly name = 'mqtt';
  private readonly client: MqttClient | undefined;
  private readonly t: Topics;
  private readonly entries = new Map<string, Entry>();
  /** Other parts of the driver (the inverter output): the latest status by name, sent like a battery's parts. */
  private readonly components = new Map<string, { status: unknown; lastMs: number; sent: Map<string, string> }>();
  private readonly inflight = new Set<number>();
  private nextToken = 0;
  private sentCount = 0;
  private droppedCount = 0;
  private teleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private wasConnected = false;
  private readonly now: () => number;
  private readonly maxInflight: number;
  private readonly warnDown: (msg: string) => void;
  private readonly log: Logger;

  constructor(private readonly opts: MqttSinkOptions) {
    const cfg = opts.config;
    this.log = opts.logger;
    this.now = opts.now ?? Date.now;
    this.maxInflight = opts.maxInflight ?? 1000;
    this.t = topics(cfg.topic);
    this.warnDown = rateLimitedLog((m) => this.log.warn(m), 60_000, this.now);
    let tls: Pick<IClientOptions, 'ca' | 'cert' | 'key'> = {};
    try {
      tls = {
        ...(cfg.ca ? { ca: readFileSync(cfg.ca) } : {}),
        ...(cfg.cert ? { cert: readFileSync(cfg.cert) } : {}),
        ...(cfg.key ? { key: readFileSync(cfg.key) } : {}),
      };
    } catch (e) {
      this.log.error(`cannot read a TLS file: ${errorMessage(e)}; MQTT stays off`);
      this.client = undefined;
      return;
    }
    this.client = loadMqtt().connect({
      protocol: cfg.tls ? 'mqtts' : 'mqtt',
      host: cfg.host,
      port: cfg.port,
      clientId: cfg.clientId,
      ...(cfg.username ? { username: cfg.username } : {}),
      ...(cfg.password ? { password: cfg.password } : {}),
      keepalive: cfg.keepaliveS,
      reconnectPeriod: cfg.reconnectMs,
      connectTimeout: Math.max(2000, Math.min(30_000, cfg.reconnectMs * 3)),
      clean: true,
      // Never queue while offline: the next connect republishes the current state instead.
      queueQoSZero: false,
      will: { topic: this.t.status, payload: Buffer.from('offline'), qos: 1, retain: true },
      ...(cfg.tls ? { rejectUnauthorized: cfg.tlsVerify, ...tls } : {}),
    });
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => {
      this.inflight.clear();
      if (this.wasConnected && !this.closed) this.log.warn(`lost the broker ${cfg.host}:${cfg.port}; reconnecting`);
      this.wasConnected = false;
    });
    this.client.on('error', (e) => {
      if (!this.closed) this.warnDown(`broker ${cfg.host}:${cfg.port}: ${errorMessage(e)}`);
    });
    this.teleTimer = setInterval(() => this.teleperiod(), cfg.teleperiodMs);
    this.teleTimer.unref?.();
    this.log.info(`publishing to mqtt${cfg.tls ? 's' : ''}://${cfg.host}:${cfg.port} under ${cfg.topic}/`);
  }

  publish(state: BatteryState, extras?: StateExtras): void {
    if (this.closed || !this.client) return;
    let e = this.entries.get(state.id);
    if (!e) {
      e = { state, extras, timer: undefined, lastFlushMs: Number.NEGATIVE_INFINITY, sent: new Map() };
      this.entries.set(state.id, e);
    }
    e.state = state;
    e.extras = extras;
    if (e.timer) return;
    const delay = Math.max(0, e.lastFlushMs + this.opts.config.minIntervalMs - this.now());
    const entry = e;
    e.timer = setTimeout(() => {
      entry.timer = undefined;
      this.flush(entry, false);
    }, delay);
    e.timer.unref?.();
  }

  /**
   * `<topic>/<name>` (e.g. `batterybank/inverter`): the component's status as JSON, retained, when it changed and
   * at most once per `min_interval`; again on reconnect and every teleperiod. Never throws.
   */
  component(name: string, status: Readonly<Record<string, unknown>>): void {
    if (this.closed || !this.client || !/^[a-z0-9_-]{1,32}$/i.test(name)) return;
    let c = this.components.get(name);
    if (!c) {
      if (this.components.size >= 16) return;
      c = { status, lastMs: Number.NEGATIVE_INFINITY, sent: new Map() };
      this.components.set(name, c);
    }
    c.status = jsonSafe(status);
    if (this.now() - c.lastMs < this.opts.config.minIntervalMs) return;
    this.sendComponent(name, c, false);
  }

  private sendComponent(
    name: string,
    c: { status: unknown; lastMs: number; sent: Map<string, string> },
    force: boolean,
  ) {
    if (!this.client?.connected) return;
    c.lastMs = this.now();
    const topic = `${this.opts.config.topic}/${name}`;
    const stable = stableJson(c.status);
    if (!force && c.sent.get(topic) === stable) return;
    if (this.send(topic, JSON.stringify(c.status), true, 0)) c.sent.set(topic, stable);
  }

  stats(): SinkStats {
    return {
      connected: this.client?.connected ?? false,
      sent: this.sentCount,
      dropped: this.droppedCount,
      queued: this.inflight.size,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.teleTimer) clearInterval(this.teleTimer);
    for (const e of this.entries.values()) if (e.timer) clearTimeout(e.timer);
    const c = this.client;
    if (!c) return;
    try {
      if (c.connected) {
        // A clean disconnect does not fire the last will: say offline ourselves.
        await Promise.race([
          c.publishAsync(this.t.status, 'offline', { qos: 1, retain: true }),
          new Promise((r) => setTimeout(r, 1000)),
        ]);
      }
      await Promise.race([c.endAsync(false), new Promise((r) => setTimeout(r, 2000))]);
    } catch {
      // Closing never fails the caller.
    }
    if (!c.disconnected) await c.endAsync(true).catch(() => undefined);
  }

  private onConnect(): void {
    if (this.closed) return;
    this.wasConnected = true;
    this.log.info(`connected to ${this.opts.config.host}:${this.opts.config.port}`);
    this.send(this.t.status, 'online', true, 1);
    for (const e of this.entries.values()) {
      e.sent.clear();
      this.flush(e, true);
    }
    for (const [name, c] of this.components) this.sendComponent(name, c, true);
  }

  private teleperiod(): void {
    if (!this.client?.connected) return;
    this.send(this.t.status, 'online', true, 1);
    for (const e of this.entries.values()) this.flush(e, true);
    for (const [name, c] of this.components) this.sendComponent(name, c, true);
  }

  /** Publish what changed (or everything with `force`). Never throws. */
  private flush(e: Entry, force: boolean): void {
    try {
      e.lastFlushMs = this.now();
      if (!this.client?.connected) return;
      const p = statePayload(e.state, e.extras, this.now());
      const cfg = this.opts.config;
      if (cfg.discovery) {
        for (const m of discoveryMessages(p, {
          prefix: cfg.topic,
          discoveryPrefix: cfg.discoveryPrefix,
          version: this.opts.version,
        })) {
          this.sendIfChanged(e, m.topic, m.config, false, true, 1);
        }
      }
      this.sendIfChanged(e, this.t.availability(p.id), p.connected ? 'online' : 'offline', force, true, 1);
      const bodies = partBodies(p);
      for (const [part, body] of Object.entries(bodies) as [StatePart, unknown][]) {
        this.sendIfChanged(e, this.t.part(p.id, part), body, force, cfg.retain, 0);
      }
    } catch (err) {
      this.log.error(`cannot publish ${e.state.id}: ${errorMessage(err)}`);
    }
  }

  private sendIfChanged(e: Entry, topic: string, body: unknown, force: boolean, retain: boolean, qos: 0 | 1): void {
    const stable = typeof body === 'string' ? body : stableJson(body);
    if (!force && e.sent.get(topic) === stable) return;
    if (this.send(topic, typeof body === 'string' ? body : JSON.stringify(body), retain, qos))
      e.sent.set(topic, stable);
  }

  private send(topic: string, body: string, retain: boolean, qos: 0 | 1): boolean {
    const c = this.client;
    if (!c?.connected || this.inflight.size >= this.maxInflight) {
      this.droppedCount++;
      return false;
    }
    const token = this.nextToken++;
    this.inflight.add(token);
    c.publish(topic, body, { qos, retain }, (err) => {
      if (!this.inflight.delete(token)) return;
      if (err) {
        this.droppedCount++;
        this.warnDown(`publish to ${topic} failed: ${errorMessage(err)}`);
      } else {
        this.sentCount++;
      }
    });
    return true;
  }
}

/** Start the MQTT publisher (connects in the background; a dead broker only delays MQTT). */
export function createMqttSink(opts: MqttSinkOptions): MqttSink {
  return new MqttSink(opts);
}
