/** The [mqtt], [http] and [postgres] section parsers: defaults, documented defaults, and error messages. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'ini';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { TelemetryConfigError } from '../../src/publishers/config-util.js';
import { DEFAULT_HTTP, HTTP_DEFAULT_INI, HTTP_KEYS, parseHttpConfig } from '../../src/publishers/http/config.js';
import { createTelemetry } from '../../src/publishers/index.js';
import { DEFAULT_MQTT, MQTT_DEFAULT_INI, MQTT_KEYS, parseMqttConfig } from '../../src/publishers/mqtt/config.js';
import {
  DEFAULT_POSTGRES,
  POSTGRES_DEFAULT_INI,
  POSTGRES_KEYS,
  parsePostgresConfig,
  redactUrl,
} from '../../src/publishers/postgres/config.js';
import {
  isTelemetrySection,
  parseTelemetryConfig,
  telemetryDefaultIni,
  telemetryKeys,
} from '../../src/publishers/telemetry-config.js';
import { batteryState, memoryLogger } from './fixtures.js';

const getter = (values: Record<string, string>) => (k: string) => values[k];
const sectionOf = (text: string, name: string) => (parse(text) as Record<string, Record<string, string>>)[name] ?? {};

describe('defaults', () => {
  test('an absent section is off, with every default', () => {
    const none = () => undefined;
    const { clientId, ...mqtt } = parseMqttConfig(none);
    const { clientId: _, ...dflt } = DEFAULT_MQTT;
    expect(mqtt).toEqual(dflt);
    expect(clientId).toMatch(/^batterybank_[A-Za-z0-9_-]+$/);
    expect(parseHttpConfig(none)).toEqual(DEFAULT_HTTP);
    expect(parsePostgresConfig(none)).toEqual(DEFAULT_POSTGRES);
    const all = parseTelemetryConfig(() => undefined, 'config.ini');
    expect([all.mqtt.enabled, all.http.enabled, all.postgres.enabled]).toEqual([false, false, false]);
  });

  test('the HTTP server listens on loopback unless configured otherwise', () => {
    expect(parseHttpConfig(() => undefined)).toMatchObject({ host: '127.0.0.1', port: 8035 });
    expect(parseHttpConfig(getter({ listen: '0.0.0.0:9000' }))).toMatchObject({ host: '0.0.0.0', port: 9000 });
    expect(parseHttpConfig(getter({ listen: '[::1]:8035' }))).toMatchObject({ host: '::1', port: 8035 });
    expect(parseHttpConfig(getter({ listen: '8080' }))).toMatchObject({ host: '127.0.0.1', port: 8080 });
  });

  test('the documented sections state exactly the built-in defaults, one comment line per key', () => {
    for (const [text, name, keys, parser, dflt] of [
      [MQTT_DEFAULT_INI, 'mqtt', MQTT_KEYS, parseMqttConfig, { ...DEFAULT_MQTT, clientId: expect.any(String) }],
      [HTTP_DEFAULT_INI, 'http', HTTP_KEYS, parseHttpConfig, DEFAULT_HTTP],
      [POSTGRES_DEFAULT_INI, 'postgres', POSTGRES_KEYS, parsePostgresConfig, DEFAULT_POSTGRES],
    ] as const) {
      const sec = sectionOf(text, name);
      expect(Object.keys(sec).sort(), name).toEqual([...keys].sort());
      expect((parser as (g: (k: string) => string | undefined) => unknown)(getter(sec)), name).toEqual(dflt);
      const lines = text.split('\n');
      lines.forEach((line, i) => {
        if (/^[a-z_]+ =/.test(line) && !/^password =/.test(line) && !/^key =/.test(line)) {
          expect(lines[i - 1], `${name}: comment above ${line}`).toMatch(/^;/);
        }
      });
    }
    expect(Object.keys(telemetryKeys())).toEqual(['mqtt', 'http', 'postgres']);
    expect(telemetryDefaultIni()).toContain('[mqtt]');
  });

  const shipped = fileURLToPath(new URL('../../config.default.ini', import.meta.url));
  const shippedText = readFileSync(shipped, 'utf8');
  test.runIf(/^\[mqtt\]/m.test(shippedText))('config.default.ini repeats these defaults', () => {
    for (const name of ['mqtt', 'http', 'postgres']) {
      expect(sectionOf(shippedText, name), name).toEqual(sectionOf(telemetryDefaultIni(), name));
    }
  });
});

describe('errors name file, section, key, value and what was expected', () => {
  const parsers = { mqtt: parseMqttConfig, http: parseHttpConfig, postgres: parsePostgresConfig } as const;
  test.each([
    ['mqtt', { port: 'abc' }, 'c.ini: [mqtt] port = "abc": expected a TCP port (1–65535)'],
    ['mqtt', { port: '70000' }, '[mqtt] port = "70000"'],
    ['mqtt', { enabled: 'maybe' }, '[mqtt] enabled = "maybe": expected true or false'],
    ['mqtt', { topic: 'a/#' }, '[mqtt] topic = "a/#": expected a topic prefix without wildcards'],
    ['mqtt', { topic: '/lead' }, '[mqtt] topic = "/lead"'],
    ['mqtt', { host: 'mqtt://x' }, '[mqtt] host = "mqtt://x": expected a host name or IP'],
    ['mqtt', { teleperiod: '0' }, '[mqtt] teleperiod = "0": expected seconds'],
    ['mqtt', { password: 'x' }, '[mqtt] username = (missing): expected a user name'],
    [
      'mqtt',
      { enabled: 'true', ca: '/nonexistent/ca.pem' },
      '[mqtt] ca = "/nonexistent/ca.pem": expected a readable file',
    ],
    ['mqtt', { enabled: 'true', cert: '/etc/hostname' }, '[mqtt] key = (missing)'],
    ['http', { listen: 'localhost' }, 'c.ini: [http] listen = "localhost": expected address:port'],
    ['http', { username: 'admin' }, '[http] password = (missing): expected username and password'],
    ['http', { history: '0' }, '[http] history = "0": expected minutes'],
    ['postgres', { url: 'mysql://x/y' }, '[postgres] url = "mysql://x/y": expected a connection URL'],
    ['postgres', { interval: 'ten' }, '[postgres] interval = "ten": expected seconds'],
    ['postgres', { buffer: '0' }, '[postgres] buffer = "0": expected rows'],
    ['postgres', { retention_days: '1.5' }, '[postgres] retention_days = "1.5"'],
    ['postgres', { pack_view: 'Battery Pack' }, '[postgres] pack_view = "Battery Pack"'],
  ] as const)('[%s] with %j is rejected with a message naming it', (section, values, message) => {
    const fn = () => parsers[section](getter(values as Record<string, string>), section, 'c.ini');
    expect(fn).toThrow(TelemetryConfigError);
    expect(fn).toThrow(message);
  });

  test('the caller chooses the error class (src/config.ts passes its ConfigError)', () => {
    const fn = () =>
      parseTelemetryConfig(
        (s) => (s === 'http' ? getter({ listen: 'x' }) : undefined),
        'c.ini',
        (m) => new ConfigError(m),
      );
    expect(fn).toThrow(ConfigError);
    expect(fn).toThrow('c.ini: [http] listen = "x"');
    expect(isTelemetrySection('mqtt')).toBe(true);
    expect(isTelemetrySection('battery')).toBe(false);
  });

  test('a value given as { value, file } is reported with its own file', () => {
    expect(() =>
      parseMqttConfig((k) => (k === 'port' ? { value: 'x', file: 'user.ini' } : undefined), 'mqtt', 'last.ini'),
    ).toThrow('user.ini: [mqtt] port = "x"');
  });

  test('a disabled section does not need its certificate files to exist yet', () => {
    expect(parseMqttConfig(getter({ ca: '/nonexistent/ca.pem' })).ca).toBe('/nonexistent/ca.pem');
  });

  test('passwords are masked in logged URLs', () => {
    expect(redactUrl('postgresql://bb:secret@db:5432/x')).toBe('postgresql://bb:***@db:5432/x');
  });
});

describe('createTelemetry', () => {
  test('with nothing enabled it is a no-op sink that never throws', async () => {
    const t = createTelemetry(
      parseTelemetryConfig(() => undefined, 'x.ini'),
      { logger: memoryLogger(), version: 't' },
    );
    expect(t.sinks).toHaveLength(0);
    t.publish(batteryState());
    t.frame?.('house', { time: Date.now(), direction: 'rx', hex: 'dd' });
    await t.close();
  });

  test('starts the enabled sinks; the HTTP health endpoint reports the others', async () => {
    const cfg = parseTelemetryConfig(
      (name) =>
        ({
          mqtt: getter({ enabled: 'true', port: '1', reconnect: '60' }),
          http: getter({ enabled: 'true', listen: '127.0.0.1:0' }),
          postgres: undefined,
        })[name],
      'x.ini',
    );
    const t = createTelemetry(cfg, { logger: memoryLogger(), version: 't' });
    try {
      expect(t.sinks.map((s) => s.name)).toEqual(['mqtt', 'http']);
      t.publish(batteryState());
      const http = t.sinks[1] as import('../../src/publishers/http/http-sink.js').HttpSink;
      await http.ready();
      const health = (await (await fetch(`${http.url}/api/health`)).json()) as { sinks: Record<string, unknown> };
      expect(Object.keys(health.sinks)).toEqual(['http', 'mqtt']);
    } finally {
      await t.close();
    }
  });
});
