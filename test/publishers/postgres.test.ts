/**
 * PostgreSQL history against a real PostgreSQL 15 started by this file: migrations, rows at the interval, the
 * BlueNova-compatible battery_pack view (columns compared with the seed's table, created in the same server),
 * a database restart (nothing lost that fits the buffer), a too-small buffer (oldest dropped and counted),
 * retention, and the shipped Grafana dashboard's queries.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { noAlarms } from '../../src/domain/battery-state.js';
import { type PostgresConfig, parsePostgresConfig } from '../../src/publishers/postgres/config.js';
import { createPostgresSink, type PostgresSink } from '../../src/publishers/postgres/postgres-sink.js';
import { type Postgres, startPostgres } from '../support/postgres.js';
import { bankState, batteryState, eventually, memoryLogger, sleep, snapshot } from './fixtures.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON and browser objects as they come over the wire
type Json = any;

/** BlueNova's battery_pack table (the seed's CREATE TABLE): name, type, in order. */
const SEED_COLUMNS: [string, string][] = [
  ['INSERT_TIME_UTC', 'TIMESTAMP'],
  ['MCU_ID', 'BIGINT'],
  ['N_UNITS', 'SMALLINT'],
  ['UNIT_RANK', 'SMALLINT'],
  ['CELL_COUNT', 'SMALLINT'],
  ...Array.from({ length: 16 }, (_, i): [string, string] => [`CELL_${String(i + 1).padStart(2, '0')}_V`, 'REAL']),
  ...Array.from({ length: 16 }, (_, i): [string, string] => [`CELL_${String(i + 1).padStart(2, '0')}_T`, 'SMALLINT']),
  ['V_PACK', 'REAL'],
  ['I_PACK', 'REAL'],
  ['TEMP', 'SMALLINT'],
  ['V_CELL_MIN', 'REAL'],
  ['V_CELL_MAX', 'REAL'],
  ['SOC', 'SMALLINT'],
  ['HEALTH', 'REAL'],
  ['ERRORS', 'VARCHAR(32)'],
  ['SYSTEM_STATE', 'VARCHAR(32)'],
  ['BREAKER', 'VARCHAR(32)'],
  ['CHARGE_STATE', 'VARCHAR(16)'],
  ['ENERGY_IN', 'REAL'],
  ['ENERGY_OUT', 'REAL'],
  ['ADC_VP', 'REAL'],
  ['ADC_0', 'REAL'],
  ['ADC_1', 'REAL'],
  ['ADC_2', 'REAL'],
  ['ADC_3', 'REAL'],
  ['ADC_4', 'REAL'],
  ['BAD_CRC', 'SMALLINT'],
  ['PARSE_FAIL', 'SMALLINT'],
  ['BAD_VCELL', 'SMALLINT'],
];

let db: Postgres;
const sinks: PostgresSink[] = [];

beforeAll(async () => {
  db = await startPostgres();
}, 60_000);

afterAll(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  await db?.close();
});

function config(url: string, values: Record<string, string> = {}): PostgresConfig {
  const v: Record<string, string> = { enabled: 'true', url, interval: '0.5', ...values };
  return parsePostgresConfig((k) => v[k], 'postgres', 'test.ini');
}

function sink(cfg: PostgresConfig, logger = memoryLogger()): PostgresSink {
  const s = createPostgresSink({ config: cfg, logger, maxBackoffMs: 500 });
  sinks.push(s);
  return s;
}

/** Keep publishing like a battery monitor does (every 100 ms) until stopped. */
function feed(s: PostgresSink, make: () => ReturnType<typeof batteryState>[]): () => void {
  const t = setInterval(() => {
    for (const st of make()) s.publish(st);
  }, 100);
  for (const st of make()) s.publish(st);
  return () => clearInterval(t);
}

async function times(database: string, id: string): Promise<number[]> {
  const r = await db.query<{ t: Date }>(
    'SELECT time AS t FROM battery_sample WHERE battery_id = $1 ORDER BY time',
    [id],
    database,
  );
  return r.rows.map((x) => x.t.getTime());
}

describe('PostgreSQL history', () => {
  test('creates its tables idempotently and writes one row per battery and bank at the interval', async () => {
    const url = await db.createDatabase('rows');
    const house = batteryState({ id: 'house' });
    const garage = batteryState({ id: 'garage', snapshot: snapshot({ current: 4 }) });
    // Two writers starting at once: migrations are serialised by an advisory lock, and are idempotent.
    const s1 = sink(config(url));
    const s2 = sink(config(url, { interval: '60' }));
    await eventually(() => s1.stats().connected && s2.stats().connected, 10_000, 'connected');
    await s2.close();
    const stop = feed(s1, () => [house, garage, bankState([house, garage], 'bank') as never]);
    const t0 = Date.now();
    await sleep(3200);
    stop();
    await eventually(() => s1.stats().queued === 0, 3000);
    const elapsed = Date.now() - t0;
    const h = await times('rows', 'house');
    expect(h.length).toBeGreaterThanOrEqual(Math.floor(elapsed / 500) - 1);
    expect(h.length).toBeLessThanOrEqual(Math.ceil(elapsed / 500) + 1);
    for (let i = 1; i < h.length; i++) {
      const gap = (h[i] as number) - (h[i - 1] as number);
      expect(gap).toBeGreaterThan(350);
      expect(gap).toBeLessThan(700);
    }
    expect((await times('rows', 'bank')).length).toBe(h.length);
    const { rows } = await db.query(
      `SELECT kind, health, voltage, current, soc, cell_count, cell_voltages, cell_balancing, cell_min, cell_max,
              temperatures, temperature_names, charge_current, charge_reason, alarms, alarm_worst, n_units, unit_rank
         FROM battery_sample WHERE battery_id = 'house' ORDER BY time DESC LIMIT 1`,
      [],
      'rows',
    );
    const r = rows[0] as Record<string, Json>;
    expect(r).toMatchObject({
      kind: 'battery',
      health: 'online',
      cell_count: 8,
      charge_reason: 'config',
      alarm_worst: 0,
      n_units: 2,
      unit_rank: 2,
      temperature_names: ['T1', 'T2'],
    });
    expect(r.voltage).toBeCloseTo(26.4, 4);
    expect(r.current).toBeCloseTo(-12.5, 4);
    expect(r.cell_voltages).toHaveLength(8);
    expect(r.cell_voltages[6]).toBeCloseTo(3.297, 5);
    expect(r.cell_balancing[3]).toBe(true);
    expect(r.alarms).toMatchObject({ LowVoltage: 0, BmsCable: 0 });
    const bank = (
      await db.query(`SELECT kind, n_units FROM battery_sample WHERE battery_id = 'bank' LIMIT 1`, [], 'rows')
    ).rows[0];
    expect(bank).toEqual({ kind: 'bank', n_units: 2 });
    const versions = await db.query('SELECT version FROM batterybank_migrations', [], 'rows');
    expect(versions.rows).toEqual([{ version: 1 }]);
  }, 30_000);

  test('the battery_pack view has exactly the seed table columns, in order, with the same types, and values', async () => {
    const url = await db.createDatabase('view');
    const s = sink(config(url));
    s.publish(
      batteryState({
        id: 'house',
        alarms: { ...noAlarms(), LowSoc: 1, CellImbalance: 2 },
        snapshot: snapshot({ current: 7.5, chargeFet: true, dischargeFet: false }),
      }),
    );
    await eventually(async () => (await times('view', 'house')).length > 0, 5000, 'a row');
    await db.query(
      `CREATE SCHEMA seed; CREATE TABLE seed.battery_pack (${SEED_COLUMNS.map(([n, t]) => `${n} ${t}`).join(', ')})`,
      [],
      'view',
    );
    const columns = (schema: string) =>
      db.query<{ column_name: string; data_type: string; character_maximum_length: number | null }>(
        `SELECT column_name, data_type, character_maximum_length FROM information_schema.columns
          WHERE table_schema = $1 AND table_name = 'battery_pack' ORDER BY ordinal_position`,
        [schema],
        'view',
      );
    const ours = (await columns('public')).rows;
    const seed = (await columns('seed')).rows;
    expect(seed).toHaveLength(SEED_COLUMNS.length);
    expect(ours).toEqual(seed);
    const { rows } = await db.query('SELECT * FROM battery_pack', [], 'view');
    const r = rows[0] as Record<string, Json>;
    expect(r.cell_count).toBe(8);
    expect(r.cell_07_v).toBeCloseTo(3.297, 5);
    expect(r.cell_09_v).toBeNull();
    expect(r.cell_01_t).toBe(22); // 21.5 °C rounds half up
    expect(r.cell_02_t).toBe(23);
    expect(r.v_pack).toBeCloseTo(26.4, 4);
    expect(r.i_pack).toBeCloseTo(7.5, 4);
    expect(r.v_cell_min).toBeCloseTo(3.297, 5);
    expect(r.v_cell_max).toBeCloseTo(3.304, 5);
    expect(r.soc).toBe(61);
    expect(r.health).toBeCloseTo(97, 4);
    expect(r.temp).toBe(23);
    expect(r.errors).toBe('CellImbalance,LowSoc');
    expect(r.system_state).toBe('online');
    expect(r.breaker).toBe('charge only');
    expect(r.charge_state).toBe('charging');
    expect(r.mcu_id).toMatch(/^\d+$/); // bigint comes back as a string
    expect(r.insert_time_utc).toBeInstanceOf(Date);
  }, 30_000);

  test('a database restart loses nothing that fits the buffer, and a writer started while it is down catches up', async () => {
    const url = await db.createDatabase('restart');
    const logger = memoryLogger();
    const s = sink(config(url), logger);
    const stop = feed(s, () => [batteryState({ id: 'house' })]);
    try {
      await eventually(async () => (await times('restart', 'house')).length >= 2, 5000, 'first rows');
      await db.stop();
      const down = Date.now();
      const late = sink(config(url), memoryLogger());
      late.publish(batteryState({ id: 'late' }));
      await sleep(2500);
      expect(s.stats().connected).toBe(false);
      expect(s.stats().queued).toBeGreaterThanOrEqual(3);
      await db.start();
      const up = Date.now();
      await eventually(() => s.stats().connected && s.stats().queued === 0, 10_000, 'the buffer written');
      const h = await times('restart', 'house');
      // Samples taken while the database was down are there, without a gap.
      expect(h.filter((t) => t > down + 300 && t < up - 300).length).toBeGreaterThanOrEqual(3);
      for (let i = 1; i < h.length; i++) expect((h[i] as number) - (h[i - 1] as number)).toBeLessThan(800);
      expect(s.stats().dropped).toBe(0);
      const log = logger.lines.join('\n');
      expect(log).toMatch(/lost the database/);
      expect(log).toMatch(/reconnected to postgresql:\/\/postgres@127\.0\.0\.1/);
      await eventually(async () => (await times('restart', 'late')).length > 0, 10_000, 'the late writer');
    } finally {
      stop();
    }
  }, 40_000);

  test('with the database down the buffer stays bounded: the oldest samples are dropped, counted and logged', async () => {
    const url = await db.createDatabase('bounded');
    const logger = memoryLogger();
    const s = sink(config(url, { interval: '0.2', buffer: '4' }), logger);
    const stop = feed(s, () => [batteryState({ id: 'house' })]);
    try {
      await eventually(async () => (await times('bounded', 'house')).length >= 1, 5000, 'first row');
      await db.stop();
      const down = Date.now();
      // Never blocks the caller, whatever the state of the database.
      const t0 = performance.now();
      for (let i = 0; i < 20_000; i++) s.publish(batteryState({ id: 'house' }));
      expect(performance.now() - t0).toBeLessThan(500);
      await sleep(2000);
      expect(s.stats().queued).toBe(4);
      expect(s.stats().dropped).toBeGreaterThanOrEqual(4);
      expect(logger.lines.join('\n')).toMatch(/buffer full \(4 samples\): dropped the oldest/);
      await db.start();
      const up = Date.now();
      await eventually(() => s.stats().connected && s.stats().queued === 0, 10_000, 'the buffer written');
      const written = Date.now();
      const all = await times('bounded', 'house');
      // What survived of the outage is the newest buffered window (4 samples × 0.2 s before the flush), no more.
      const during = all.filter((t) => t > down && t < up);
      expect(during.length).toBeLessThanOrEqual(4);
      for (const t of during) expect(t).toBeGreaterThan(up - 4 * 200 - 300);
      expect(all.filter((t) => t > down && t <= written).length).toBeGreaterThanOrEqual(4);
    } finally {
      stop();
    }
  }, 40_000);

  test('retention deletes samples older than retention_days', async () => {
    const url = await db.createDatabase('retention');
    const s1 = sink(config(url, { retention_days: '0', interval: '60' }));
    await eventually(() => s1.stats().connected, 5000);
    await db.query(
      `INSERT INTO battery_sample (time, battery_id, health) VALUES (now() - interval '40 days', 'old', 'online'),
        (now() - interval '10 days', 'recent', 'online')`,
      [],
      'retention',
    );
    const s2 = sink(config(url, { retention_days: '30', interval: '60' }));
    await eventually(async () => (await times('retention', 'old')).length === 0, 5000, 'the old row deleted');
    expect((await times('retention', 'recent')).length).toBe(1);
    await s2.close();
  });
});

describe('Grafana dashboard', () => {
  test('is valid JSON and every panel query runs against the schema', async () => {
    const dash = JSON.parse(
      readFileSync(fileURLToPath(new URL('../../grafana/batterybank.json', import.meta.url)), 'utf8'),
    ) as { panels: { title: string; targets?: { rawSql?: string }[] }[]; templating: { list: { query?: unknown }[] } };
    const url = await db.createDatabase('grafana');
    const s = sink(config(url));
    const house = batteryState({ id: 'house' });
    s.publish(house);
    s.publish(bankState([house], 'bank'));
    await eventually(async () => (await times('grafana', 'house')).length >= 2, 5000, 'rows');
    const expand = (sql: string) =>
      sql
        .replace(/\$__timeFilter\(([^)]+)\)/g, "$1 BETWEEN now() - interval '1 hour' AND now() + interval '1 minute'")
        .replace(/\$__timeFrom\(\)/g, "(now() - interval '1 hour')")
        .replace(/\$__timeTo\(\)/g, 'now()')
        .replace(/\$\{?battery\}?/g, "'house', 'bank'");
    const queries = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, sql: t.rawSql })));
    expect(queries.length).toBeGreaterThanOrEqual(8);
    for (const q of queries) {
      expect(q.sql, q.title).toBeTypeOf('string');
      const r = await db.query(expand(q.sql as string), [], 'grafana');
      expect(r.rows.length, q.title).toBeGreaterThan(0);
    }
    for (const v of dash.templating.list) {
      if (typeof v.query === 'string' && /select/i.test(v.query)) {
        expect((await db.query(v.query, [], 'grafana')).rows.length).toBeGreaterThan(0);
      }
    }
  }, 30_000);
});
