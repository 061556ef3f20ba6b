/**
 * PostgreSQL history (pg): one row per battery and bank per `interval`, written in batches.
 *
 *   publish(state) ──► latest[id] (O(1))
 *   every interval ──► one row per id ──► bounded buffer (full: oldest dropped, counted, logged)
 *                                          └─► flush: INSERT … ON CONFLICT DO NOTHING, ≤ 500 rows a statement
 *   connect ──► migrations + view ──► flush; lost ──► reconnect with back-off 1 s … 60 s
 *
 * Rows leave the buffer only after the database confirmed them, so a restart of the database loses nothing
 * that fits into the buffer. Nothing here ever blocks or throws into the caller.
 */
import { createRequire } from 'node:module';
import type pg from 'pg';

// Loaded on first use: a driver with PostgreSQL off never pays for the pg module.
const loadPg = (): typeof pg => createRequire(import.meta.url)('pg') as typeof pg;

import type { BatteryState } from '../../domain/battery-state.js';
import { errorMessage } from '../../domain/errors.js';
import type { Logger } from '../../log.js';
import { kindOf, statePayload } from '../payload.js';
import { BoundedQueue, rateLimitedLog, type Sink, type SinkStats, type StateExtras } from '../sink.js';
import { type PostgresConfig, redactUrl } from './config.js';
import { insertSql, MIGRATION_LOCK, MIGRATIONS, packViewSql, type SampleRow, sampleRow } from './schema.js';

export interface PostgresSinkOptions {
  config: PostgresConfig;
  logger: Logger;
  now?: () => number;
  /** Rows per INSERT statement (default 500). */
  batchRows?: number;
  /** Longest wait between reconnect attempts, ms (default 60 000). */
  maxBackoffMs?: number;
}

interface Queued {
  seq: number;
  row: SampleRow;
}

const RETENTION_EVERY_MS = 3_600_000;

export class PostgresSink implements Sink {
  readonly name = 'postgres';
  private readonly latest = new Map<string, { state: BatteryState; extras: StateExtras | undefined }>();
  private readonly queue: BoundedQueue<Queued>;
  private client: pg.Client | undefined;
  private connected = false;
  private connecting = false;
  private flushing: Promise<void> | undefined;
  private seq = 0;
  private sent = 0;
  private backoffMs = 1000;
  private everConnected = false;
  private sampleTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private droppedSinceLog = 0;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly warnLimited: (msg: string) => void;
  private readonly dropLog: (msg: string) => void;

  constructor(private readonly opts: PostgresSinkOptions) {
    this.now = opts.now ?? Date.now;
    this.log = opts.logger;
    this.queue = new BoundedQueue(opts.config.bufferRows);
    this.warnLimited = rateLimitedLog((m) => this.log.warn(m), 60_000, this.now);
    this.dropLog = rateLimitedLog((m) => this.log.warn(m), 30_000, this.now);
    this.sampleTimer = setInterval(() => this.sample(), opts.config.intervalMs);
    this.sampleTimer.unref?.();
    this.log.info(
      `history to ${redactUrl(opts.config.url)} every ${opts.config.intervalMs / 1000} s` +
        (opts.config.retentionDays > 0 ? `, kept ${opts.config.retentionDays} days` : ''),
    );
    void this.connect();
  }

  publish(state: BatteryState, extras?: StateExtras): void {
    if (this.closed) return;
    this.latest.set(state.id, { state, extras });
  }

  stats(): SinkStats {
    return { connected: this.connected, sent: this.sent, dropped: this.queue.dropped, queued: this.queue.length };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of [this.sampleTimer, this.retentionTimer, this.reconnectTimer]) if (t) clearTimeout(t);
    // Give what is buffered one short chance, then go.
    if (this.connected && this.queue.length > 0) {
      await Promise.race([this.flush(), new Promise((r) => setTimeout(r, 2000))]);
    } else {
      await Promise.race([this.flushing, new Promise((r) => setTimeout(r, 2000))]);
    }
    if (this.queue.length > 0) this.log.warn(`closing with ${this.queue.length} samples not written`);
    const c = this.client;
    this.client = undefined;
    this.connected = false;
    await c?.end().catch(() => undefined);
  }

  /** Take one sample of every battery now (the timer calls this; public for tests). */
  sample(): void {
    if (this.closed) return;
    try {
      const time = new Date(this.now());
      const batteries = [...this.latest.values()]
        .filter((e) => kindOf(e.state, e.extras) === 'battery')
        .map((e) => e.state.id)
        .sort();
      for (const { state, extras } of this.latest.values()) {
        const p = statePayload(state, extras, time.getTime());
        const units =
          p.kind === 'bank'
            ? { n: p.members?.length ?? 0, rank: 0 }
            : { n: batteries.length, rank: batteries.indexOf(p.id) + 1 };
        if (this.queue.push({ seq: this.seq++, row: sampleRow(p, time, units) }) !== undefined) {
          this.droppedSinceLog++;
        }
      }
      if (this.droppedSinceLog > 0) {
        this.dropLog(
          `buffer full (${this.queue.capacity} samples): dropped the oldest ${this.droppedSinceLog} (${this.queue.dropped} in all)`,
        );
        this.droppedSinceLog = 0;
      }
    } catch (e) {
      this.log.error(`cannot build a sample: ${errorMessage(e)}`);
    }
    void this.flush();
  }

  // ───────────────────────────── connection ─────────────────────────────

  private async connect(): Promise<void> {
    if (this.closed || this.connected || this.connecting) return;
    this.connecting = true;
    const client = new (loadPg().Client)({
      connectionString: this.opts.config.url,
      connectionTimeoutMillis: 5000,
      query_timeout: 30_000,
      keepAlive: true,
      application_name: 'dbus-batterybank',
    });
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client, new Error('connection closed')));
    try {
      await client.connect();
      await this.migrate(client);
      if (this.closed) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      this.connected = true;
      this.backoffMs = 1000;
      this.log.info(
        `${this.everConnected ? 'reconnected to' : 'connected to'} ${redactUrl(this.opts.config.url)}` +
          (this.queue.length ? `; writing ${this.queue.length} buffered samples` : ''),
      );
      this.everConnected = true;
      this.scheduleRetention(0);
      void this.flush();
    } catch (e) {
      await client.end().catch(() => undefined);
      this.warnLimited(`database ${redactUrl(this.opts.config.url)} unreachable: ${errorMessage(e)}; retrying`);
      this.scheduleReconnect();
    } finally {
      this.connecting = false;
    }
  }

  private lost(client: pg.Client, e: unknown): void {
    if (this.client !== client) return;
    this.client = undefined;
    if (this.connected && !this.closed) {
      this.log.warn(`lost the database: ${errorMessage(e)}; buffering up to ${this.queue.capacity} samples`);
    }
    this.connected = false;
    client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 60_000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, wait);
    this.reconnectTimer.unref?.();
  }

  private async migrate(client: pg.Client): Promise<void> {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(
        'CREATE TABLE IF NOT EXISTS batterybank_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM batterybank_migrations');
      const current = rows[0]?.v ?? 0;
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO batterybank_migrations (version) VALUES ($1)', [m.version]);
        this.log.info(`database schema migrated to version ${m.version}`);
      }
      const view = this.opts.config.packView;
      if (view) {
        const rel = await client.query<{ relkind: string }>(
          'SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass($1)',
          [view],
        );
        const kind = rel.rows[0]?.relkind;
        if (kind === undefined || kind === 'v') {
          // Drop and create: CREATE OR REPLACE cannot change a view's columns between versions.
          if (kind === 'v') await client.query(`DROP VIEW ${view}`);
          await client.query(packViewSql(view));
        } else {
          this.log.warn(`"${view}" exists and is not a view (an old BlueNova table?): compatibility view not created`);
        }
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  private scheduleRetention(delayMs: number): void {
    if (this.retentionTimer) clearTimeout(this.retentionTimer);
    if (this.opts.config.retentionDays <= 0 || this.closed) return;
    this.retentionTimer = setTimeout(() => {
      void this.retention();
    }, delayMs);
    this.retentionTimer.unref?.();
  }

  private async retention(): Promise<void> {
    const c = this.client;
    try {
      if (c && this.connected) {
        const r = await c.query('DELETE FROM battery_sample WHERE time < now() - make_interval(days => $1)', [
          this.opts.config.retentionDays,
        ]);
        if (r.rowCount)
          this.log.info(`deleted ${r.rowCount} samples older than ${this.opts.config.retentionDays} days`);
      }
    } catch (e) {
      this.log.warn(`retention cleanup failed: ${errorMessage(e)}`);
    }
    this.scheduleRetention(RETENTION_EVERY_MS);
  }

  // ───────────────────────────── writing ─────────────────────────────

  /** Write buffered rows until the buffer is empty or the database fails. One flush at a time. */
  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (!this.connected || this.queue.length === 0) return Promise.resolve();
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushLoop(): Promise<void> {
    const batchRows = this.opts.batchRows ?? 500;
    while (this.connected && this.queue.length > 0) {
      const c = this.client;
      if (!c) return;
      const batch = this.queue.first(batchRows);
      const last = batch[batch.length - 1]?.seq ?? -1;
      try {
        await c.query(
          insertSql(batch.length),
          batch.flatMap((q) => q.row),
        );
        this.sent += batch.length;
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (typeof code === 'string' && /^(22|23)/.test(code)) {
          // The rows themselves are bad (data exception / constraint): drop them, never retry them forever.
          this.log.error(`dropping ${batch.length} samples the database refused: ${errorMessage(e)}`);
        } else {
          this.lost(c, e);
          return;
        }
      }
      // Remove what was written (or refused); the buffer may have dropped some of them meanwhile.
      while ((this.queue.peek()?.seq ?? Number.POSITIVE_INFINITY) <= last) this.queue.shift();
    }
  }
}

/** Start the PostgreSQL history writer (connects in the background; a dead database only fills the buffer). */
export function createPostgresSink(opts: PostgresSinkOptions): PostgresSink {
  return new PostgresSink(opts);
}
