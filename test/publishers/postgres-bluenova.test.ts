/**
 * The battery_pack compatibility view over a BlueNova battery, on the whole real chain: the simulator's
 * websockets → the composition root (driver, monitor, telemetry) → our PostgreSQL sink → a real PostgreSQL
 * started by this file. The view must show the battery's own MCU ID, N_UNITS, UNIT_RANK, TEMP, texts,
 * energy, ADC channels, and the parser counters per row, as the seed's table had them.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { type Running, startService } from '../../src/main.js';
import { BlueNovaSimulator } from '../../src/sim/bluenova-simulator.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
import { type Postgres, startPostgres } from '../support/postgres.js';
import { eventually } from './fixtures.js';

// biome-ignore lint/suspicious/noExplicitAny: rows as pg returns them
type Row = Record<string, any>;

let db: Postgres;
let daemon: DbusDaemon;
let sim: BlueNovaSimulator;
let running: Running;
const logs: string[] = [];

const MCU_A = 0x1a2b3c4d;

beforeAll(async () => {
  [db, daemon] = await Promise.all([startPostgres(), startDbusDaemon()]);
  const url = await db.createDatabase('bluenova');
  // Three units in the battery's parallel group, two configured here: the view shows what the units say.
  sim = new BlueNovaSimulator({
    cycleMs: 100,
    energyEvery: 3,
    units: [
      {
        mcuId: MCU_A,
        cells: [3.301, 3.302, 3.303, 3.304],
        cellTemperatures: [35, 34, 33, 32],
        temperature: 31,
        current: -6.5,
        soc: 58,
        soh: 95.5,
        errors: 'None',
        systemState: 'RUNNING',
        breaker: 'CLOSED',
        chargeState: 'Discharge',
        energyIn: 4321.5,
        energyOut: 1234.25,
        adcVp: 13.21,
        adc: [0.5, 1, 1.5, 2, 2.5],
      },
      { cells: [3.3, 3.3, 3.3, 3.3] },
      { cells: [3.3, 3.3, 3.3, 3.3] },
    ],
  });
  await sim.start();
  const host = (i: number) => new URL(sim.url(i)).host;
  const text =
    `[battery.a]\nprotocol = bluenova\nhost = ${host(0)}\npoll_interval = 0.5\nstale_after = 3\n` +
    `[battery.b]\nprotocol = bluenova\nhost = ${host(1)}\npoll_interval = 0.5\nstale_after = 3\n` +
    `[postgres]\nenabled = true\nurl = ${url}\ninterval = 0.5\n`;
  running = startService({
    config: parseConfig([{ file: 'pg.ini', text }]),
    logger: createLogger({ level: 'info', write: (l) => logs.push(l) }),
    version: 'test',
    busAddress: daemon.address,
    onFatal: (e) => {
      throw e;
    },
  });
}, 60_000);

afterAll(async () => {
  await running?.stop();
  await sim?.close();
  await daemon?.stop();
  await db?.close();
});

const pack = async (id: 'a' | 'b'): Promise<Row[]> => {
  // The view has no battery id (the seed's had none): a battery is its MCU ID.
  const mcu = id === 'a' ? MCU_A : MCU_A + 1;
  return (
    await db.query(`SELECT * FROM battery_pack WHERE mcu_id = $1 ORDER BY insert_time_utc`, [String(mcu)], 'bluenova')
  ).rows;
};

describe('battery_pack view over BlueNova batteries', () => {
  test('a row carries the battery’s own values in the seed’s columns', async () => {
    const rows = await eventually(
      async () => {
        const r = await pack('a');
        const last = r.at(-1);
        return last && last.energy_in !== null && last.soc !== null ? r : undefined;
      },
      20_000,
      'a full row of battery a',
    );
    const r = rows.at(-1) as Row;
    expect(r.mcu_id).toBe(String(MCU_A));
    expect(r.n_units).toBe(3); // the unit's N_UNITS, not the 2 batteries configured here
    expect(r.unit_rank).toBe(1);
    expect(r.cell_count).toBe(4);
    expect(r.cell_01_v).toBeCloseTo(3.301, 5);
    expect(r.cell_04_v).toBeCloseTo(3.304, 5);
    expect(r.cell_05_v).toBeNull();
    expect(r.cell_01_t).toBe(35);
    expect(r.cell_04_t).toBe(32);
    expect(r.v_pack).toBeCloseTo(13.21, 4);
    expect(r.i_pack).toBeCloseTo(-6.5, 4);
    expect(r.temp).toBe(31); // the Temp line, not the hottest cell
    expect(r.v_cell_min).toBeCloseTo(3.301, 5);
    expect(r.v_cell_max).toBeCloseTo(3.304, 5);
    expect(r.soc).toBe(58);
    expect(r.health).toBeCloseTo(95.5, 4);
    expect(r.errors).toBe('None');
    expect(r.system_state).toBe('RUNNING');
    expect(r.breaker).toBe('CLOSED');
    expect(r.charge_state).toBe('Discharge');
    expect(r.energy_in).toBeCloseTo(4321.5, 3);
    expect(r.energy_out).toBeCloseTo(1234.25, 3);
    expect(r.adc_vp).toBeCloseTo(13.21, 4);
    expect([r.adc_0, r.adc_1, r.adc_2, r.adc_3, r.adc_4]).toEqual([0.5, 1, 1.5, 2, 2.5]);
    expect(r.bad_crc).toBe(0);
    expect(r.parse_fail).toBe(0);
    expect(r.bad_vcell).toBe(0);
    expect(r.insert_time_utc).toBeInstanceOf(Date);
    const b = (await eventually(async () => (await pack('b')).at(-1), 10_000, 'a row of battery b')) as Row;
    expect(b.unit_rank).toBe(2);
    expect(b.n_units).toBe(3);
  }, 30_000);

  test('parser counters are per row, as the seed wrote them (events since the previous row)', async () => {
    const before = (await pack('a')).length;
    sim.inject(0, 'INFO: BAD CRC', 'INFO: BAD CRC', 'INFO: BAD CRC', 'INFO: cellcomms parse FAIL');
    await eventually(async () => (await pack('a')).some((r) => r.bad_crc > 0), 10_000, 'the counted row');
    // Two more rows later, the next burst.
    await eventually(async () => (await pack('a')).length >= before + 4, 10_000, 'more rows');
    sim.inject(0, 'INFO: BAD CRC', 'INFO: BAD CRC', 'DEBUG: REJECT BAD VCELL C02');
    await eventually(
      async () => (await pack('a')).reduce((n, r) => n + r.bad_crc, 0) === 5,
      10_000,
      'the second burst',
    );
    await eventually(async () => (await pack('a')).length >= before + 8, 10_000, 'rows after it');
    const rows = await pack('a');
    const crc = rows.map((r) => r.bad_crc as number);
    expect(crc.filter((n) => n > 0).sort()).toEqual([2, 3]);
    expect(rows.reduce((n, r) => n + r.parse_fail, 0)).toBe(1);
    expect(rows.reduce((n, r) => n + r.bad_vcell, 0)).toBe(1);
    // The raw sample keeps the cumulative counts.
    const raw = await db.query(
      `SELECT extras->'bluenova'->'counters' AS c FROM battery_sample WHERE battery_id = 'a' ORDER BY time DESC LIMIT 1`,
      [],
      'bluenova',
    );
    expect(raw.rows[0]?.c).toEqual({ badCrc: 5, parseFail: 1, badVcell: 1 });
  }, 40_000);
});
