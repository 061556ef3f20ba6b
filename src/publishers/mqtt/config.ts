/** The `[mqtt]` section: broker, identity, topics, timing, TLS, Home Assistant discovery. */
import { hostname } from 'node:os';
import { isHost, type MakeConfigError, type SectionGet, SectionReader } from '../config-util.js';

export interface MqttConfig {
  enabled: boolean;
  host: string;
  port: number;
  username: string;
  password: string;
  /** Empty in the file → `batterybank_<hostname>`. */
  clientId: string;
  /** Topic prefix, no leading/trailing slash. */
  topic: string;
  /** Full state of every battery every this many ms, changed or not. */
  teleperiodMs: number;
  /** At most one message per topic per this many ms; changes in between are coalesced. */
  minIntervalMs: number;
  /** MQTT keepalive, s. */
  keepaliveS: number;
  /** Wait between reconnect attempts, ms. */
  reconnectMs: number;
  /** Retain state topics (availability and discovery are always retained). */
  retain: boolean;
  tls: boolean;
  /** File paths ('' = none). */
  ca: string;
  cert: string;
  key: string;
  tlsVerify: boolean;
  discovery: boolean;
  discoveryPrefix: string;
}

export const MQTT_KEYS = [
  'enabled',
  'host',
  'port',
  'username',
  'password',
  'client_id',
  'topic',
  'teleperiod',
  'min_interval',
  'keepalive',
  'reconnect',
  'retain',
  'tls',
  'ca',
  'cert',
  'key',
  'tls_verify',
  'discovery',
  'discovery_prefix',
] as const;

/** The section as it goes into config.default.ini (every key, its default, one comment line each). */
export const MQTT_DEFAULT_INI = `[mqtt]
; Publish every battery and bank to an MQTT broker (JSON topics, Home Assistant discovery). Off by default.
enabled = false
; Broker host name or IP. Venus OS runs a broker on the GX itself (127.0.0.1) when MQTT is enabled in its settings.
host = 127.0.0.1
; Broker port: 1883 plain, usually 8883 with TLS.
port = 1883
; Broker login (empty: anonymous).
username =
password =
; MQTT client id (empty: batterybank_<hostname>).
client_id =
; Topic prefix: <topic>/<battery id>/state, …/cells, …/limits, …/alarms, …/connection, <topic>/status.
topic = batterybank
; Full state of every battery every this many seconds, changed or not.
teleperiod = 300
; At most one message per topic per this many seconds; changes in between are merged into the next one.
min_interval = 5
; MQTT keepalive, seconds; the broker publishes the last will ("offline") after 1.5 × this without traffic.
keepalive = 30
; Seconds between reconnect attempts while the broker is unreachable.
reconnect = 10
; Retain the state topics, so a new subscriber gets the last values at once.
retain = true
; Connect with TLS (mqtts). Setting ca, cert or key turns it on too.
tls = false
; CA certificate file (PEM) to verify the broker; empty: the system's CAs.
ca =
; Client certificate and key files (PEM) for brokers that want them.
cert =
key =
; Verify the broker's certificate and host name.
tls_verify = true
; Publish Home Assistant MQTT discovery configs (retained), one HA device per battery and per bank.
discovery = true
; Home Assistant's discovery prefix.
discovery_prefix = homeassistant
`;

export const DEFAULT_MQTT: MqttConfig = {
  enabled: false,
  host: '127.0.0.1',
  port: 1883,
  username: '',
  password: '',
  clientId: '',
  topic: 'batterybank',
  teleperiodMs: 300_000,
  minIntervalMs: 5000,
  keepaliveS: 30,
  reconnectMs: 10_000,
  retain: true,
  tls: false,
  ca: '',
  cert: '',
  key: '',
  tlsVerify: true,
  discovery: true,
  discoveryPrefix: 'homeassistant',
};

const TOPIC = /^[^#+/\s][^#+\s]*[^#+/\s]$|^[^#+/\s]$/;

/**
 * Parse `[mqtt]`. `get(key)` returns the raw value (or `{ value, file }`), undefined when absent.
 * @throws the error `makeError` builds (default TelemetryConfigError), naming file, section, key, value and what
 *   was expected.
 */
export function parseMqttConfig(
  get: SectionGet,
  section = 'mqtt',
  file = 'config.ini',
  makeError?: MakeConfigError,
): MqttConfig {
  const r: SectionReader = new SectionReader(get, section, file, makeError);
  const d = DEFAULT_MQTT;
  const host = r.string('host', d.host);
  if (!isHost(host)) r.fail('host', 'a host name or IP address (no scheme, no port)');
  const topic = r.string('topic', d.topic);
  if (!TOPIC.test(topic) || topic.includes('//')) {
    r.fail('topic', 'a topic prefix without wildcards (+ #), spaces or leading/trailing /');
  }
  const discoveryPrefix = r.string('discovery_prefix', d.discoveryPrefix);
  if (!TOPIC.test(discoveryPrefix))
    r.fail('discovery_prefix', 'a topic prefix without wildcards, such as homeassistant');
  const clientId = r.string('client_id', '');
  if (clientId.length > 128 || /\s/.test(clientId)) r.fail('client_id', 'up to 128 characters without spaces');
  const enabled = r.bool('enabled', d.enabled);
  // Certificate files are checked only when MQTT is on (a disabled section may point at files not there yet).
  const ca = r.readableFile('ca', enabled);
  const cert = r.readableFile('cert', enabled);
  const key = r.readableFile('key', enabled);
  if ((cert === '') !== (key === '')) r.fail(cert === '' ? 'cert' : 'key', 'cert and key given together');
  const username = r.string('username', '');
  const password = r.string('password', '');
  if (password !== '' && username === '') r.fail('username', 'a user name when password is set');
  const teleperiodS = r.number('teleperiod', 300, 1, 86_400, 'seconds between full state messages (1–86400)');
  const minIntervalS = r.number('min_interval', 5, 0, 3600, 'seconds (0–3600)');
  return {
    enabled,
    host,
    port: r.number('port', d.port, 1, 65_535, 'a TCP port (1–65535)', true),
    username,
    password,
    clientId: clientId || `batterybank_${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}`,
    topic,
    teleperiodMs: Math.round(teleperiodS * 1000),
    minIntervalMs: Math.round(minIntervalS * 1000),
    keepaliveS: r.number('keepalive', d.keepaliveS, 0, 65_535, 'seconds (0–65535, 0 = off)', true),
    reconnectMs: Math.round(
      r.number('reconnect', 10, 0.1, 3600, 'seconds between reconnect attempts (0.1–3600)') * 1000,
    ),
    retain: r.bool('retain', d.retain),
    tls: r.bool('tls', d.tls) || ca !== '' || cert !== '',
    ca,
    cert,
    key,
    tlsVerify: r.bool('tls_verify', d.tlsVerify),
    discovery: r.bool('discovery', d.discovery),
    discoveryPrefix,
  };
}
