/**
 * The network families: batteries reached over IP instead of a serial port, CAN bus or Bluetooth. Today one:
 * BlueNova, whose battery pushes its BMS console on a websocket. Each battery has a link of its own (several
 * instances reach several batteries; nothing is shared).
 *
 *   [battery.a] protocol = bluenova, host = 10.0.0.2 ─► WebSocketLink ws://10.0.0.2:9000/ws/ ─► BlueNovaDriver
 *   [battery.b] protocol = bluenova, host = 10.0.0.3 ─► WebSocketLink ws://10.0.0.3:9000/ws/ ─► BlueNovaDriver
 */
import { type ConsoleLink, WebSocketLink } from '../links/websocket-link.js';
import { BLUENOVA_DBUS_PATHS, BlueNovaDriver } from './bluenova/driver.js';
import type { BmsDriver } from './driver.js';
import type { FamilyOption } from './registry.js';

/** Where a network battery is. */
export interface NetworkEndpoint {
  host: string;
  port: number;
  path: string;
  /** `ws://host:port/path`. */
  url: string;
}

export interface NetworkDriverSettings {
  now: () => number;
  /** The battery's stale_after: the link drops a connection silent for max(this, 10 s) and reconnects. */
  staleAfterMs: number;
  /** Values of the family's options by key (missing: the option's default). */
  options?: Readonly<Record<string, number | undefined>> | undefined;
  /** Batteries of this family in this battery's bank (1 when it is not in a bank). */
  configuredUnits?: number | undefined;
  /** The link to use instead of a websocket to the endpoint (a capture's replay). */
  link?: ConsoleLink | undefined;
}

/** A driver that also has paths of its own on D-Bus and extras for telemetry. */
export interface NetworkDriver extends BmsDriver {
  dbusValues(): Record<string, number | string | undefined>;
  telemetryExtras(): Record<string, unknown>;
}

export interface NetworkFamily {
  readonly id: string;
  readonly productName: string;
  readonly scheme: 'ws';
  readonly defaultPort: number;
  readonly path: string;
  readonly options: readonly FamilyOption[];
  /** Extra D-Bus paths the driver fills (dbusValues). */
  readonly dbusPaths: Readonly<Record<string, 'd' | 'i' | 's'>>;
  createDriver(endpoint: NetworkEndpoint, settings: NetworkDriverSettings): NetworkDriver;
}

const NO_DATA_MIN_MS = 10_000;

export const NETWORK_FAMILIES: readonly NetworkFamily[] = [
  {
    id: 'bluenova',
    productName: 'BlueNova battery',
    scheme: 'ws',
    defaultPort: 9000,
    path: '/ws/',
    options: [
      {
        key: 'current_sign',
        description: '1: the console current is positive when charging; -1: positive when discharging',
        default: 1,
        choices: [1, -1],
      },
    ],
    dbusPaths: BLUENOVA_DBUS_PATHS,
    createDriver: (endpoint, s) =>
      new BlueNovaDriver({
        link:
          s.link ?? new WebSocketLink({ url: endpoint.url, noDataTimeoutMs: Math.max(NO_DATA_MIN_MS, s.staleAfterMs) }),
        now: s.now,
        currentSign: s.options?.['current_sign'] === -1 ? -1 : 1,
        ...(s.configuredUnits !== undefined ? { configuredUnits: s.configuredUnits } : {}),
      }),
  },
];

export function findNetworkFamily(id: string): NetworkFamily | undefined {
  return NETWORK_FAMILIES.find((f) => f.id === id);
}

/**
 * `host = …` → endpoint: `10.0.0.2`, `10.0.0.2:9001`, `battery.local`, `[fe80::1]:9000`, or a whole
 * `ws://host:port/path` URL. Undefined when it is none of these.
 */
export function parseEndpoint(text: string, family: NetworkFamily): NetworkEndpoint | undefined {
  const t = text.trim();
  if (t === '' || /\s/.test(t)) return undefined;
  let u: URL;
  try {
    u = new URL(/^[a-z]+:\/\//i.test(t) ? t : `${family.scheme}://${t}`);
  } catch {
    return undefined;
  }
  if (u.protocol !== `${family.scheme}:` || u.hostname === '' || u.username || u.password || u.search || u.hash) {
    return undefined;
  }
  const port = u.port === '' ? family.defaultPort : Number(u.port);
  const path = u.pathname === '/' && !/^[a-z]+:\/\/[^/]+\/$/i.test(t) ? family.path : u.pathname;
  const host = u.hostname;
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return { host, port, path, url: `${family.scheme}://${shownHost}:${port}${path}` };
}
