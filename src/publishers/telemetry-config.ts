/**
 * The telemetry sections of the INI, for src/config.ts: their keys (unknown-key check), their documented
 * defaults (config.default.ini) and one parser for all three. Imports no network library, and not src/config.ts
 * (the caller passes its error factory), so src/config.ts can import this without a module cycle.
 */
import type { MakeConfigError, SectionGet } from './config-util.js';
import { HTTP_DEFAULT_INI, HTTP_KEYS, type HttpConfig, parseHttpConfig } from './http/config.js';
import { MQTT_DEFAULT_INI, MQTT_KEYS, type MqttConfig, parseMqttConfig } from './mqtt/config.js';
import { POSTGRES_DEFAULT_INI, POSTGRES_KEYS, type PostgresConfig, parsePostgresConfig } from './postgres/config.js';

export type { MakeConfigError, SectionGet } from './config-util.js';
export { TelemetryConfigError } from './config-util.js';
export type { HttpConfig } from './http/config.js';
export type { MqttConfig } from './mqtt/config.js';
export type { PostgresConfig } from './postgres/config.js';

export interface TelemetryConfig {
  mqtt: MqttConfig;
  http: HttpConfig;
  postgres: PostgresConfig;
}

export type TelemetrySection = keyof TelemetryConfig;

/** Section name → its keys, for the unknown-key check in src/config.ts. */
export function telemetryKeys(): Readonly<Record<TelemetrySection, readonly string[]>> {
  return { mqtt: MQTT_KEYS, http: HTTP_KEYS, postgres: POSTGRES_KEYS };
}

/** Is `name` one of the telemetry sections? */
export function isTelemetrySection(name: string): name is TelemetrySection {
  return name === 'mqtt' || name === 'http' || name === 'postgres';
}

/** The three sections as they go into config.default.ini (every key, its default, a comment line each). */
export function telemetryDefaultIni(): string {
  return [MQTT_DEFAULT_INI, HTTP_DEFAULT_INI, POSTGRES_DEFAULT_INI].join('\n');
}

/**
 * Parse `[mqtt]`, `[http]` and `[postgres]`; an absent section gives its defaults (off).
 * @param section returns the key getter of a section, or undefined when the files have no such section.
 * @param makeError builds the thrown error from its message (src/config.ts: `(m) => new ConfigError(m)`).
 */
export function parseTelemetryConfig(
  section: (name: TelemetrySection) => SectionGet | undefined,
  file: string,
  makeError?: MakeConfigError,
): TelemetryConfig {
  const none: SectionGet = () => undefined;
  return {
    mqtt: parseMqttConfig(section('mqtt') ?? none, 'mqtt', file, makeError),
    http: parseHttpConfig(section('http') ?? none, 'http', file, makeError),
    postgres: parsePostgresConfig(section('postgres') ?? none, 'postgres', file, makeError),
  };
}
