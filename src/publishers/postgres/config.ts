/** The `[postgres]` section: history of every battery and bank in PostgreSQL. */
import { type MakeConfigError, type SectionGet, SectionReader } from '../config-util.js';

export interface PostgresConfig {
  enabled: boolean;
  /** `postgresql://user:password@host:port/database?sslmode=…` */
  url: string;
  /** One sample per battery per this many ms. */
  intervalMs: number;
  /** Delete samples older than this many days (0 = keep everything). */
  retentionDays: number;
  /** Samples kept in memory while the database is unreachable; beyond it the oldest are dropped. */
  bufferRows: number;
  /** Name of the compatibility view with the BlueNova `battery_pack` column layout ('' = none). */
  packView: string;
}

export const POSTGRES_KEYS = ['enabled', 'url', 'interval', 'retention_days', 'buffer', 'pack_view'] as const;

export const POSTGRES_DEFAULT_INI = `[postgres]
; Write a history of every battery and bank to PostgreSQL (tables are created on start). Off by default.
enabled = false
; Connection string: postgresql://user:password@host:port/database (add ?sslmode=require for TLS).
url = postgresql://batterybank@127.0.0.1:5432/batterybank
; Seconds between two samples of each battery.
interval = 10
; Delete samples older than this many days (0 = keep everything).
retention_days = 365
; Samples kept in memory while the database is unreachable; beyond that the oldest are dropped (and counted).
buffer = 10000
; View with the BlueNova battery_pack column layout, for existing Grafana queries (empty: no view).
pack_view = battery_pack
`;

export const DEFAULT_POSTGRES: PostgresConfig = {
  enabled: false,
  url: 'postgresql://batterybank@127.0.0.1:5432/batterybank',
  intervalMs: 10_000,
  retentionDays: 365,
  bufferRows: 10_000,
  packView: 'battery_pack',
};

/**
 * Parse `[postgres]`. `get(key)` returns the raw value (or `{ value, file }`), undefined when absent.
 * @throws the error `makeError` builds (default TelemetryConfigError), naming file, section, key, value and what
 *   was expected.
 */
export function parsePostgresConfig(
  get: SectionGet,
  section = 'postgres',
  file = 'config.ini',
  makeError?: MakeConfigError,
): PostgresConfig {
  const r: SectionReader = new SectionReader(get, section, file, makeError);
  const d = DEFAULT_POSTGRES;
  const url = r.string('url', d.url);
  let ok = /^postgres(ql)?:\/\//.test(url);
  if (ok) {
    try {
      const u = new URL(url);
      ok = u.hostname !== '' || u.searchParams.has('host');
    } catch {
      ok = false;
    }
  }
  if (!ok) r.fail('url', 'a connection URL such as postgresql://user:password@127.0.0.1:5432/batterybank');
  const packView = r.string('pack_view', d.packView);
  if (packView !== '' && !/^[a-z_][a-z0-9_]{0,62}$/.test(packView)) {
    r.fail('pack_view', 'a lower-case SQL name (a-z, 0-9, _) or empty');
  }
  return {
    enabled: r.bool('enabled', d.enabled),
    url,
    intervalMs: Math.round(r.number('interval', 10, 0.1, 86_400, 'seconds between samples (0.1–86400)') * 1000),
    retentionDays: r.number(
      'retention_days',
      d.retentionDays,
      0,
      36_500,
      'days (0 = keep everything, up to 36500)',
      true,
    ),
    bufferRows: r.number('buffer', d.bufferRows, 1, 1_000_000, 'rows (1–1000000)', true),
    packView,
  };
}

/** The URL with its password masked, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}
