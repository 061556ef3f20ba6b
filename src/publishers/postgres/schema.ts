/**
 * PostgreSQL schema: versioned, idempotent migrations (run on every connect under an advisory lock), the sample
 * row built from a StatePayload, and the `battery_pack` compatibility view (BlueNova's wide layout: exact column
 * names and types, so existing Grafana queries keep working).
 */
import { ALARM_NAMES } from '../../domain/battery-state.js';
import type { StatePayload } from '../payload.js';

/** Arbitrary constant for pg_advisory_xact_lock: two drivers starting at once migrate one after the other. */
export const MIGRATION_LOCK = 0x6261_7462;

export const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
CREATE TABLE IF NOT EXISTS battery_sample (
  time                timestamptz NOT NULL,
  battery_id          text        NOT NULL,
  kind                text        NOT NULL DEFAULT 'battery',
  health              text        NOT NULL,
  voltage             real,
  current             real,
  power               real,
  soc                 real,
  soh                 real,
  capacity_remaining  real,
  capacity_installed  real,
  cycles              integer,
  cell_count          smallint,
  cell_voltages       real[],
  cell_balancing      boolean[],
  cell_min            real,
  cell_max            real,
  cell_delta          real,
  temperatures        real[],
  temperature_names   text[],
  temperature_min     real,
  temperature_max     real,
  mos_temperature     real,
  charge_fet          boolean,
  discharge_fet       boolean,
  charge_voltage      real,
  charge_current      real,
  discharge_current   real,
  battery_low_voltage real,
  charge_reason       text,
  discharge_reason    text,
  charge_mode         text,
  alarms              jsonb       NOT NULL DEFAULT '{}',
  alarm_worst         smallint    NOT NULL DEFAULT 0,
  n_units             smallint,
  unit_rank           smallint,
  extras              jsonb,
  PRIMARY KEY (battery_id, time)
);
CREATE INDEX IF NOT EXISTS battery_sample_time ON battery_sample (time);
COMMENT ON TABLE battery_sample IS 'dbus-batterybank: one row per battery (or bank) per sample interval';
`,
  },
];

/** Columns of battery_sample in insert order. */
export const SAMPLE_COLUMNS = [
  'time',
  'battery_id',
  'kind',
  'health',
  'voltage',
  'current',
  'power',
  'soc',
  'soh',
  'capacity_remaining',
  'capacity_installed',
  'cycles',
  'cell_count',
  'cell_voltages',
  'cell_balancing',
  'cell_min',
  'cell_max',
  'cell_delta',
  'temperatures',
  'temperature_names',
  'temperature_min',
  'temperature_max',
  'mos_temperature',
  'charge_fet',
  'discharge_fet',
  'charge_voltage',
  'charge_current',
  'discharge_current',
  'battery_low_voltage',
  'charge_reason',
  'discharge_reason',
  'charge_mode',
  'alarms',
  'alarm_worst',
  'n_units',
  'unit_rank',
  'extras',
] as const;

export type SampleRow = unknown[];

/** One battery_sample row (values in SAMPLE_COLUMNS order) from a payload taken at `time`. */
export function sampleRow(p: StatePayload, time: Date, units: { n: number; rank: number }): SampleRow {
  const alarms: Record<string, number> = {};
  for (const name of ALARM_NAMES) alarms[name] = p.alarms[name] ?? 0;
  const int = (v: number | null) => (v === null ? null : Math.round(v));
  const row: Record<(typeof SAMPLE_COLUMNS)[number], unknown> = {
    time,
    battery_id: p.id,
    kind: p.kind,
    health: p.health,
    voltage: p.voltage,
    current: p.current,
    power: p.power,
    soc: p.soc,
    soh: p.soh,
    capacity_remaining: p.capacityRemaining,
    capacity_installed: p.capacityInstalled,
    cycles: int(p.cycles),
    cell_count: p.cells.count === null ? null : Math.min(32767, Math.round(p.cells.count)),
    cell_voltages: p.cells.voltages.length ? p.cells.voltages : null,
    cell_balancing: p.cells.balancing.length ? p.cells.balancing : null,
    cell_min: p.cells.min,
    cell_max: p.cells.max,
    cell_delta: p.cells.delta,
    temperatures: p.temperatures.length ? p.temperatures.map((t) => t.celsius) : null,
    temperature_names: p.temperatures.length ? p.temperatures.map((t) => t.name) : null,
    temperature_min: p.temperatureMin,
    temperature_max: p.temperatureMax,
    mos_temperature: p.mosTemperature,
    charge_fet: p.chargeFet,
    discharge_fet: p.dischargeFet,
    charge_voltage: p.limits.chargeVoltage,
    charge_current: p.limits.chargeCurrent,
    discharge_current: p.limits.dischargeCurrent,
    battery_low_voltage: p.limits.batteryLowVoltage,
    charge_reason: p.limits.chargeReason,
    discharge_reason: p.limits.dischargeReason,
    charge_mode: p.limits.chargeMode,
    alarms: JSON.stringify(alarms),
    alarm_worst: p.alarms.worst,
    n_units: units.n,
    unit_rank: units.rank,
    extras: Object.keys(p.extras).length ? JSON.stringify(p.extras) : null,
  };
  return SAMPLE_COLUMNS.map((c) => row[c]);
}

/** `INSERT … VALUES ($1…), ($n…) ON CONFLICT DO NOTHING` for `rows` rows (a retried batch inserts nothing twice). */
export function insertSql(rows: number): string {
  const n = SAMPLE_COLUMNS.length;
  const casts: Record<string, string> = { alarms: '::jsonb', extras: '::jsonb' };
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) {
    tuples.push(`(${SAMPLE_COLUMNS.map((c, i) => `$${r * n + i + 1}${casts[c] ?? ''}`).join(', ')})`);
  }
  return `INSERT INTO battery_sample (${SAMPLE_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (battery_id, time) DO NOTHING`;
}

const pad = (i: number) => String(i).padStart(2, '0');

/** A BlueNova battery's own value from `extras.bluenova` (the driver's telemetry extras), as text. */
const bn = (key: string) => `(bn.b->>'${key}')`;

/**
 * A BlueNova parser counter per row, as the seed writes it (events since its previous row): our driver counts
 * since it started, so this is the count minus the previous row's (the count itself after a restart).
 */
const perRow = (key: string, column: string) =>
  `LEAST(32767, (bn.b->'counters'->>'${key}')::int - CASE WHEN (prev.c->>'${key}')::int <= (bn.b->'counters'->>'${key}')::int ` +
  `THEN (prev.c->>'${key}')::int ELSE 0 END)::smallint AS ${column}`;

/**
 * The compatibility view: BlueNova's battery_pack columns in their order and types (INSERT_TIME_UTC timestamp
 * in UTC, MCU_ID a stable bigint from the battery id, CELL_nn_V / CELL_nn_T for the first 16 cells and sensors,
 * V_PACK, I_PACK, …). A BlueNova battery (`extras.bluenova`) fills the columns with its own values: MCU ID,
 * N_UNITS, UNIT_RANK, TEMP, the ERRORS / SYSTEM_STATE / BREAKER / CHARGE_STATE texts, energy, ADC channels and
 * the parser counters per row. For other batteries those come from our data where we have an equivalent, else NULL.
 */
export function packViewSql(name: string): string {
  const cols: string[] = [
    `(s.time AT TIME ZONE 'UTC')::timestamp AS insert_time_utc`,
    `COALESCE(${bn('mcuId')}::bigint, ('x' || substr(md5(s.battery_id), 1, 15))::bit(60)::bigint) AS mcu_id`,
    `COALESCE(${bn('units')}::smallint, s.n_units::smallint) AS n_units`,
    `COALESCE(${bn('rank')}::smallint, s.unit_rank::smallint) AS unit_rank`,
    `s.cell_count::smallint AS cell_count`,
  ];
  for (let i = 1; i <= 16; i++) cols.push(`s.cell_voltages[${i}]::real AS cell_${pad(i)}_v`);
  for (let i = 1; i <= 16; i++) cols.push(`round(s.temperatures[${i}])::smallint AS cell_${pad(i)}_t`);
  cols.push(
    `s.voltage::real AS v_pack`,
    `s.current::real AS i_pack`,
    `round(COALESCE(${bn('temperature')}::real, s.temperature_max, s.mos_temperature))::smallint AS temp`,
    `s.cell_min::real AS v_cell_min`,
    `s.cell_max::real AS v_cell_max`,
    `round(s.soc)::smallint AS soc`,
    `s.soh::real AS health`,
    `left(COALESCE(${bn('errors')}, (SELECT string_agg(a.key, ',' ORDER BY a.key) FROM jsonb_each_text(s.alarms) a WHERE a.value <> '0'), ''), 32)::varchar(32) AS errors`,
    `left(COALESCE(${bn('systemState')}, s.health), 32)::varchar(32) AS system_state`,
    `left(COALESCE(${bn('breaker')}, CASE WHEN s.charge_fet IS NULL AND s.discharge_fet IS NULL THEN NULL
       WHEN s.charge_fet AND s.discharge_fet THEN 'closed'
       WHEN s.charge_fet THEN 'charge only'
       WHEN s.discharge_fet THEN 'discharge only'
       ELSE 'open' END), 32)::varchar(32) AS breaker`,
    `left(COALESCE(${bn('chargeState')}, CASE WHEN s.current IS NULL THEN NULL
       WHEN s.current > 0.05 THEN 'charging'
       WHEN s.current < -0.05 THEN 'discharging'
       ELSE 'idle' END), 16)::varchar(16) AS charge_state`,
    `${bn('energyIn')}::real AS energy_in`,
    `${bn('energyOut')}::real AS energy_out`,
    `${bn('adcVp')}::real AS adc_vp`,
  );
  for (let i = 0; i <= 4; i++) cols.push(`(bn.b->'adc'->>${i})::real AS adc_${i}`);
  cols.push(perRow('badCrc', 'bad_crc'), perRow('parseFail', 'parse_fail'), perRow('badVcell', 'bad_vcell'));
  // prev: the same battery's previous row, only for BlueNova rows (a one-time filter; an index lookup each).
  return (
    `CREATE VIEW ${name} AS\nSELECT\n  ${cols.join(',\n  ')}\nFROM battery_sample s\n` +
    `LEFT JOIN LATERAL (SELECT s.extras->'bluenova' AS b) bn ON true\n` +
    `LEFT JOIN LATERAL (SELECT p.extras->'bluenova'->'counters' AS c FROM battery_sample p\n` +
    `  WHERE s.extras ? 'bluenova' AND p.battery_id = s.battery_id AND p.time < s.time ORDER BY p.time DESC LIMIT 1) prev ON true`
  );
}
