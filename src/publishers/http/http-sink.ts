/**
 * HTTP API, server-sent events and the status page (node:http, no framework).
 *
 *   GET /                              status page (src/web)
 *   GET /api/health                    driver and sink status
 *   GET /api/states                    every battery and bank (banks first)
 *   GET /api/bank                      the bank (404 when none)
 *   GET /api/batteries                 every battery (not banks)
 *   GET /api/batteries/<id>            one battery or bank
 *   GET /api/batteries/<id>/frames     last raw frame per register and direction
 *   GET /api/batteries/<id>/history    chart points [time ms, V, A, SoC %] of the last hour
 *   GET /api/inverter                  the inverter output's status (404 when none is configured)
 *   GET /api/events                    text/event-stream: `state` events (every state at connect, then changes)
 *
 * publish() only stores the state and schedules an event (≤ 1 per battery per event_interval); every memory use
 * is bounded (history ring, frames per battery, a slow event client is skipped and then dropped).
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BatteryState } from '../../domain/battery-state.js';
import { errorMessage } from '../../domain/errors.js';
import type { Logger } from '../../log.js';
import { STATUS_PAGE_CSS, STATUS_PAGE_HTML, STATUS_PAGE_JS } from '../../web/status-page.js';
import { jsonSafe, kindOf, num, type StatePayload, statePayload } from '../payload.js';
import type { RawFrame, Sink, SinkStats, StateExtras } from '../sink.js';
import type { HttpConfig } from './config.js';

export interface HttpSinkOptions {
  config: HttpConfig;
  logger: Logger;
  version: string;
  now?: () => number;
  /** Other sinks' counters for /api/health. */
  sinkStats?: () => Record<string, SinkStats>;
}

/** One chart point: time ms, voltage V, current A, SoC %. */
export type HistoryPoint = [number, number | null, number | null, number | null];

interface Entry {
  state: BatteryState;
  extras: StateExtras | undefined;
  payload: StatePayload | undefined;
  eventTimer: NodeJS.Timeout | undefined;
  lastEventMs: number;
  history: Ring<HistoryPoint>;
  lastPointMs: number;
}

type Reply = { status: number; json: unknown } | { type: string; text: string } | { status: 204 } | { events: true };

interface FrameEntry {
  register: string | number | null;
  direction: RawFrame['direction'];
  time: string;
  hex: string;
  decoded: unknown;
}

const MAX_BATTERIES = 64;
const MAX_FRAMES_PER_BATTERY = 256;
const MAX_CLIENTS = 32;
/** Bytes an event client may have unread before its events are skipped / it is dropped. */
const SLOW_CLIENT_SKIP = 256 * 1024;
const SLOW_CLIENT_DROP = 4 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;

/** A fixed-size ring, oldest overwritten. */
export class Ring<T> {
  private readonly buf: (T | undefined)[];
  private start = 0;
  private size = 0;
  constructor(readonly capacity: number) {
    this.buf = new Array<T | undefined>(capacity);
  }
  push(v: T): void {
    if (this.size < this.capacity) {
      this.buf[(this.start + this.size) % this.capacity] = v;
      this.size++;
    } else {
      this.buf[this.start] = v;
      this.start = (this.start + 1) % this.capacity;
    }
  }
  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.buf[(this.start + i) % this.capacity] as T);
    return out;
  }
  get length(): number {
    return this.size;
  }
}

export class HttpSink implements Sink {
  readonly name = 'http';
  private readonly server: Server;
  private readonly entries = new Map<string, Entry>();
  private readonly frames = new Map<string, Map<string, FrameEntry>>();
  /** Other parts' status by name (`inverter`), as last reported. */
  private readonly components = new Map<string, unknown>();
  private readonly clients = new Set<ServerResponse>();
  private readonly now: () => number;
  private readonly started: number;
  private heartbeat: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private listening: AddressInfo | undefined;
  private readyWaiters: ((a: AddressInfo | undefined) => void)[] = [];
  private sent = 0;
  private dropped = 0;
  private closed = false;
  private readonly expectedAuth: Buffer | undefined;

  constructor(private readonly opts: HttpSinkOptions) {
    this.now = opts.now ?? Date.now;
    this.started = this.now();
    const { username, password } = opts.config;
    this.expectedAuth = username
      ? Buffer.from(`Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`)
      : undefined;
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('error', (e) => this.onListenError(e));
    this.server.on('clientError', (_e, socket) => socket.destroy());
    this.listen();
    this.heartbeat = setInterval(() => this.ping(), HEARTBEAT_MS);
    this.heartbeat.unref?.();
  }

  /** Resolves with the bound address once listening (undefined if closed first). */
  ready(): Promise<AddressInfo | undefined> {
    if (this.listening || this.closed) return Promise.resolve(this.listening);
    return new Promise((r) => this.readyWaiters.push(r));
  }

  /** Base URL once listening (`http://127.0.0.1:8035`). */
  get url(): string | undefined {
    const a = this.listening;
    if (!a) return undefined;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  publish(state: BatteryState, extras?: StateExtras): void {
    if (this.closed) return;
    let e = this.entries.get(state.id);
    if (!e) {
      if (this.entries.size >= MAX_BATTERIES) return;
      const c = this.opts.config;
      e = {
        state,
        extras,
        payload: undefined,
        eventTimer: undefined,
        lastEventMs: Number.NEGATIVE_INFINITY,
        history: new Ring(Math.max(2, Math.ceil(c.historyMs / c.historyStepMs) + 1)),
        lastPointMs: Number.NEGATIVE_INFINITY,
      };
      this.entries.set(state.id, e);
    }
    e.state = state;
    e.extras = extras;
    e.payload = undefined;
    const t = this.now();
    if (t - e.lastPointMs >= this.opts.config.historyStepMs) {
      e.lastPointMs = t;
      const live = state.health === 'offline' ? undefined : state.snapshot;
      e.history.push([t, num(live?.voltage), num(live?.current), num(live?.soc)]);
    }
    if (!e.eventTimer && this.clients.size > 0) {
      const entry = e;
      const delay = Math.max(0, e.lastEventMs + this.opts.config.eventIntervalMs - t);
      e.eventTimer = setTimeout(() => {
        entry.eventTimer = undefined;
        entry.lastEventMs = this.now();
        try {
          this.broadcast('state', this.payloadOf(entry));
        } catch (err) {
          this.opts.logger.error(`cannot send the state of ${entry.state.id}: ${errorMessage(err)}`);
        }
      }, delay);
      e.eventTimer.unref?.();
    }
  }

  frame(batteryId: string, frame: RawFrame): void {
    if (this.closed) return;
    let m = this.frames.get(batteryId);
    if (!m) {
      if (this.frames.size >= MAX_BATTERIES) return;
      m = new Map();
      this.frames.set(batteryId, m);
    }
    const key = `${frame.register ?? ''}|${frame.direction}`;
    if (!m.has(key) && m.size >= MAX_FRAMES_PER_BATTERY) {
      const oldest = m.keys().next().value;
      if (oldest !== undefined) m.delete(oldest);
    }
    m.delete(key); // re-insert: the map's order is recency
    m.set(key, {
      register: frame.register ?? null,
      direction: frame.direction,
      time: new Date(Number.isFinite(frame.time) ? frame.time : this.now()).toISOString(),
      hex: String(frame.hex).slice(0, 8192),
      decoded: frame.decoded === undefined ? null : jsonSafe(frame.decoded),
    });
  }

  component(name: string, status: Readonly<Record<string, unknown>>): void {
    if (this.closed || (!this.components.has(name) && this.components.size >= 16)) return;
    this.components.set(name, jsonSafe(status));
  }

  stats(): SinkStats {
    return {
      connected: this.listening !== undefined,
      sent: this.sent,
      dropped: this.dropped,
      queued: this.clients.size,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.retry) clearTimeout(this.retry);
    for (const e of this.entries.values()) if (e.eventTimer) clearTimeout(e.eventTimer);
    for (const c of this.clients) c.destroy();
    this.clients.clear();
    for (const w of this.readyWaiters.splice(0)) w(undefined);
    await new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ───────────────────────────── server ─────────────────────────────

  private listen(): void {
    const { host, port } = this.opts.config;
    this.server.listen({ host, port }, () => {
      this.listening = this.server.address() as AddressInfo;
      this.opts.logger.info(`status page and API on ${this.url}/`);
      for (const w of this.readyWaiters.splice(0)) w(this.listening);
    });
  }

  private onListenError(e: Error): void {
    if (this.closed) return;
    const { host, port } = this.opts.config;
    this.opts.logger.error(`cannot listen on ${host}:${port}: ${errorMessage(e)}; trying again in 10 s`);
    this.retry = setTimeout(() => {
      if (!this.closed && !this.server.listening) this.listen();
    }, 10_000);
    this.retry.unref?.();
  }

  private authorised(req: IncomingMessage): boolean {
    if (!this.expectedAuth) return true;
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === this.expectedAuth.length && timingSafeEqual(got, this.expectedAuth);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    try {
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Referrer-Policy', 'no-referrer');
      if (!this.authorised(req)) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="batterybank", charset="UTF-8"' });
        res.end('authentication required\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' });
        res.end();
        return;
      }
      const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/+$/, '') || '/';
      this.route(path, req, res);
    } catch (e) {
      this.opts.logger.error(`request ${req.url}: ${errorMessage(e)}`);
      if (!res.headersSent) this.json(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  }

  private route(path: string, req: IncomingMessage, res: ServerResponse): void {
    const reply = this.reply(path);
    if ('events' in reply) this.events(req, res);
    else if ('text' in reply) this.asset(res, reply.type, reply.text);
    else if ('json' in reply) this.json(res, reply.status, reply.json);
    else {
      res.writeHead(reply.status, { 'Cache-Control': 'max-age=86400' });
      res.end();
    }
  }

  /** What a GET of `path` answers. */
  private reply(path: string): Reply {
    switch (path) {
      case '/':
      case '/index.html':
        return { type: 'text/html; charset=utf-8', text: STATUS_PAGE_HTML };
      case '/app.js':
        return { type: 'text/javascript; charset=utf-8', text: STATUS_PAGE_JS };
      case '/app.css':
        return { type: 'text/css; charset=utf-8', text: STATUS_PAGE_CSS };
      case '/favicon.ico':
        return { status: 204 };
      case '/api/health':
        return { status: 200, json: this.health() };
      case '/api/states':
        return { status: 200, json: this.ordered().map((e) => this.payloadOf(e)) };
      case '/api/batteries':
        return {
          status: 200,
          json: this.ordered()
            .filter((e) => kindOf(e.state, e.extras) === 'battery')
            .map((e) => this.payloadOf(e)),
        };
      case '/api/bank': {
        const bank = this.ordered().find((e) => kindOf(e.state, e.extras) === 'bank');
        return bank ? { status: 200, json: this.payloadOf(bank) } : { status: 404, json: { error: 'no bank' } };
      }
      case '/api/events':
        return { events: true };
      case '/api/inverter': {
        const inv = this.components.get('inverter');
        return inv ? { status: 200, json: inv } : { status: 404, json: { error: 'no inverter' } };
      }
    }
    const m = /^\/api\/batteries\/([A-Za-z0-9_]+)(?:\/(frames|history))?$/.exec(path);
    if (!m) return { status: 404, json: { error: 'not found' } };
    const id = m[1] as string;
    const e = this.entries.get(id);
    if (m[2] === 'frames') {
      const f = this.frames.get(id);
      if (!e && !f) return { status: 404, json: { error: `no battery ${id}` } };
      const list = [...(f?.values() ?? [])].sort(
        (a, b) =>
          String(a.register).localeCompare(String(b.register), 'en', { numeric: true }) ||
          a.direction.localeCompare(b.direction),
      );
      return { status: 200, json: { id, frames: list } };
    }
    if (!e) return { status: 404, json: { error: `no battery ${id}` } };
    if (m[2] === 'history') {
      return { status: 200, json: { id, stepMs: this.opts.config.historyStepMs, points: e.history.toArray() } };
    }
    return { status: 200, json: this.payloadOf(e) };
  }

  private asset(res: ServerResponse, type: string, body: string): void {
    res.writeHead(200, {
      'Content-Type': type,
      'Cache-Control': 'no-cache',
      'Content-Security-Policy':
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    });
    res.end(body);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  private health(): Record<string, unknown> {
    const list = this.ordered();
    const healths = list.map((e) => e.state.health);
    const status =
      list.length === 0
        ? 'starting'
        : healths.every((h) => h === 'online')
          ? 'ok'
          : healths.some((h) => h !== 'offline')
            ? 'degraded'
            : 'offline';
    return {
      status,
      version: this.opts.version,
      time: new Date(this.now()).toISOString(),
      uptimeSeconds: Math.round((this.now() - this.started) / 1000),
      batteries: list.map((e) => ({
        id: e.state.id,
        kind: kindOf(e.state, e.extras),
        health: e.state.health,
        lastValid: e.state.lastValidMs !== undefined ? new Date(e.state.lastValidMs).toISOString() : null,
      })),
      sinks: { http: this.stats(), ...(this.opts.sinkStats?.() ?? {}) },
      ...Object.fromEntries(this.components),
    };
  }

  /** Banks first, then batteries, each sorted by id. */
  private ordered(): Entry[] {
    const rank = (e: Entry) => (kindOf(e.state, e.extras) === 'bank' ? 0 : 1);
    return [...this.entries.values()].sort((a, b) => rank(a) - rank(b) || a.state.id.localeCompare(b.state.id));
  }

  private payloadOf(e: Entry): StatePayload {
    e.payload ??= statePayload(e.state, e.extras, this.now());
    return e.payload;
  }

  // ───────────────────────────── events ─────────────────────────────

  private events(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= MAX_CLIENTS) {
      this.json(res, 503, { error: 'too many event clients' });
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    this.clients.add(res);
    const drop = () => this.clients.delete(res);
    req.on('close', drop);
    res.on('error', drop);
    for (const e of this.ordered()) this.write(res, 'state', this.payloadOf(e));
  }

  private broadcast(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.clients) this.writeText(c, text);
  }

  private write(res: ServerResponse, event: string, data: unknown): void {
    this.writeText(res, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private writeText(res: ServerResponse, text: string): void {
    if (res.writableLength > SLOW_CLIENT_DROP) {
      this.clients.delete(res);
      res.destroy();
      this.dropped++;
      return;
    }
    if (res.writableLength > SLOW_CLIENT_SKIP) {
      this.dropped++;
      return;
    }
    res.write(text);
    this.sent++;
  }

  private ping(): void {
    for (const c of this.clients) if (c.writableLength < SLOW_CLIENT_SKIP) c.write(': ping\n\n');
  }
}

/** Start the HTTP server (listens in the background; a busy port is retried every 10 s and never throws). */
export function createHttpSink(opts: HttpSinkOptions): HttpSink {
  return new HttpSink(opts);
}
