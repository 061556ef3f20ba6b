/** The `[http]` section: JSON API, server-sent events and the status page. */
import { isHost, type MakeConfigError, parseHostPort, type SectionGet, SectionReader } from '../config-util.js';

export interface HttpConfig {
  enabled: boolean;
  /** Address to bind; loopback unless the user configures another one. */
  host: string;
  /** 0 = any free port (tests). */
  port: number;
  /** Basic auth; both empty = no authentication. */
  username: string;
  password: string;
  /** Chart history kept per battery, ms. */
  historyMs: number;
  /** One chart point per this many ms. */
  historyStepMs: number;
  /** At most one server-sent event per battery per this many ms. */
  eventIntervalMs: number;
}

export const HTTP_KEYS = [
  'enabled',
  'listen',
  'username',
  'password',
  'history',
  'history_step',
  'event_interval',
] as const;

export const HTTP_DEFAULT_INI = `[http]
; JSON API (/api/…), live events (/api/events) and a status page (/) for phones and browsers. Off by default.
enabled = false
; Address and port to listen on. 127.0.0.1 = this device only; 0.0.0.0:8035 = every network (use a password).
listen = 127.0.0.1:8035
; Basic authentication for every page and API call (both empty: none).
username =
password =
; Minutes of voltage / current / SoC history kept for the chart.
history = 60
; Seconds between two chart points.
history_step = 5
; At most one live update per battery per this many seconds.
event_interval = 1
`;

export const DEFAULT_HTTP: HttpConfig = {
  enabled: false,
  host: '127.0.0.1',
  port: 8035,
  username: '',
  password: '',
  historyMs: 3_600_000,
  historyStepMs: 5000,
  eventIntervalMs: 1000,
};

/**
 * Parse `[http]`. `get(key)` returns the raw value (or `{ value, file }`), undefined when absent.
 * @throws the error `makeError` builds (default TelemetryConfigError), naming file, section, key, value and what
 *   was expected.
 */
export function parseHttpConfig(
  get: SectionGet,
  section = 'http',
  file = 'config.ini',
  makeError?: MakeConfigError,
): HttpConfig {
  const r: SectionReader = new SectionReader(get, section, file, makeError);
  const d = DEFAULT_HTTP;
  const listen = parseHostPort(r.string('listen', `${d.host}:${d.port}`), d.host);
  if (!listen || !isHost(listen.host)) {
    r.fail('listen', 'address:port such as 127.0.0.1:8035, [::1]:8035 or 0.0.0.0:8035');
  }
  const username = r.string('username', '');
  const password = r.string('password', '');
  if ((username === '') !== (password === '')) {
    r.fail(username === '' ? 'username' : 'password', 'username and password given together (or neither)');
  }
  if (username.includes(':')) r.fail('username', 'a user name without ":"');
  const historyMin = r.number('history', 60, 1, 1440, 'minutes of chart history (1–1440)');
  const stepS = r.number('history_step', 5, 1, 600, 'seconds between chart points (1–600)');
  if ((historyMin * 60) / stepS > 100_000) r.fail('history_step', 'at most 100000 points per battery (history / step)');
  return {
    enabled: r.bool('enabled', d.enabled),
    host: listen.host,
    port: listen.port,
    username,
    password,
    historyMs: Math.round(historyMin * 60_000),
    historyStepMs: Math.round(stepS * 1000),
    eventIntervalMs: Math.round(r.number('event_interval', 1, 0, 60, 'seconds (0–60)') * 1000),
  };
}
