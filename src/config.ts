/**
 * Configuration: `config.default.ini` (shipped, every key commented) overlaid by the user's `config.ini`.
 * Everything is validated here, once, into one typed object; an error names file, section, key, value and
 * what was expected. Nothing else in the program reads the INI.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'ini';
import { parseTopology, type Topology, TopologyError } from './bank/topology.js';
import { BLE_FAMILIES, type BleAdapter, findBleFamily } from './bms/ble-registry.js';
import { CAN_FAMILIES, type CanEndpoint, findCanFamily } from './bms/can-registry.js';
import { findNetworkFamily, NETWORK_FAMILIES, type NetworkEndpoint, parseEndpoint } from './bms/network-registry.js';
import { FAMILIES, findFamily } from './bms/registry.js';
import { INVERTER_KEYS, type InverterConfig, parseInverterConfig } from './inverter/inverter-config.js';
import { isLogLevel, type LogLevel } from './log.js';
import {
  type ChargeControlConfig,
  ChargeControlConfigError,
  canonicalChargeControlKey,
  isChargeControlKey,
  parseChargeControlConfig,
} from './policy/charge-control-config.js';
import {
  isTelemetrySection,
  parseTelemetryConfig,
  type TelemetryConfig,
  telemetryKeys,
} from './publishers/telemetry-config.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The hard limits the alarms share with the charge-control policy (the policy's values are the ones used). */
const HARD_LIMIT_KEYS = [
  'maxCellVoltage',
  'minCellVoltage',
  'cellOvpVoltage',
  'cellUvpVoltage',
  'maxChargeCurrent',
  'maxDischargeCurrent',
  'chargeMinTemperature',
  'chargeMaxTemperature',
  'dischargeMinTemperature',
  'dischargeMaxTemperature',
] as const satisfies readonly (keyof ChargeControlConfig)[];

/** Alarm thresholds and the hard limits (see docs/config.md). Voltages V, currents A, temperatures °C. */
export interface ChargeConfig extends Pick<ChargeControlConfig, (typeof HARD_LIMIT_KEYS)[number]> {
  socLowWarning: number;
  socLowAlarm: number;
  cellImbalanceWarning: number;
  cellImbalanceAlarm: number;
  mosTemperatureWarning: number;
  mosTemperatureAlarm: number;
}

/** A `protocol =` value: the id of a family in src/bms/registry.ts, or `auto` (detected on the port). */
export type Protocol = string;
export const AUTO_PROTOCOL = 'auto';

export interface BatteryConfig {
  /** Section id: `house` for `[battery.house]`; `[a-z0-9_]+`. */
  id: string;
  protocol: Protocol;
  port: string;
  /** Undefined only for `protocol = auto` without a configured rate (the detected rate is used). */
  baudRate: number | undefined;
  /** Bus address on a shared RS485 port (families with addressing); undefined = the family's default. */
  address: number | undefined;
  /** Family options by config key (e.g. Daly `host_address`). */
  options: Record<string, number>;
  /** CAN families only: the interface or USB-CAN-A adapter (then `port` names it too, for logs). */
  can?: { endpoint: CanEndpoint; pack: number | undefined; keepAlive: boolean } | undefined;
  /** Bluetooth LE batteries only (a `mac` in the section, or protocol jk-ble). */
  ble?: { mac: string; adapter: BleAdapter; mode: 'keep-connected' | 'poll' } | undefined;
  /** Network batteries only (protocol bluenova): `host = …`; then `port` is the endpoint's URL, for logs. */
  net?: NetworkEndpoint | undefined;
  pollIntervalMs: number;
  replyTimeoutMs: number;
  staleAfterMs: number;
  /** Preferred VRM device instance (localsettings may grant another). */
  deviceInstance: number;
  /** Initial /CustomName when localsettings has none. */
  customName: string;
  productName: string;
  /** Alarm thresholds (and the hard limits they share with `control`). */
  charge: ChargeConfig;
  /** The charge-control policy's settings (src/policy/charge-control-config.ts). */
  control: ChargeControlConfig;
  /** Write every raw frame of this battery to the capture file (`capture = true` here or in [general]). */
  capture?: true | undefined;
}

/** Where captures go (docs/capture.md); present only when some battery has `capture = true`. */
export interface CaptureSettings {
  /** Directory of the capture files; undefined = `captures/` next to the state file. */
  dir: string | undefined;
  /** Size at which the file is rotated, bytes. */
  maxBytes: number;
  /** Files kept, the current one included (capture.jsonl, .1, .2 …). */
  files: number;
}

export interface GeneralConfig {
  logLevel: LogLevel;
  productId: number;
  /** Undefined when no battery captures. */
  capture?: CaptureSettings | undefined;
  /** `dbus = false`: publish nothing on D-Bus (an inverter gateway without Venus); absent = publish. */
  dbus?: false | undefined;
  /** `dbus_properties_changed = true`: per-path PropertiesChanged besides ItemsChanged; absent = ItemsChanged only. */
  dbusPropertiesChanged?: true | undefined;
}

/** `[bank]`: several batteries combined into one virtual battery (src/bank/). */
export interface BankConfig {
  /** Bank id (`name`), `[a-z0-9_]`: service com.victronenergy.battery.batterybank_<id>. */
  id: string;
  topology: Topology;
  sharing: 'capacity' | 'count';
  /** Publish every member as its own service too (with /Info/* invalid, so DVCC uses the bank). */
  publishMembers: boolean;
  /** Preferred VRM instance of the bank service. */
  deviceInstance: number;
  customName: string;
}

export interface Config {
  general: GeneralConfig;
  batteries: BatteryConfig[];
  /** Undefined: every battery is published on its own (each is its own BMS on the bus). */
  bank: BankConfig | undefined;
  /** MQTT, HTTP and PostgreSQL sinks (each off unless its section says enabled = true). */
  telemetry: TelemetryConfig;
  /** `[inverter]`: the bank presented to a non-Victron inverter over CAN (src/inverter); absent = none. */
  inverter?: InverterConfig | undefined;
  /** Files read, in order (defaults first). */
  files: string[];
}

type Raw = Record<string, unknown>;

interface KeySpec<T> {
  key: string;
  parse: (v: string) => T | undefined;
  expected: string;
}

const num = (min: number, max: number): ((v: string) => number | undefined) => {
  return (v) => {
    const s = v.trim();
    if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s) && !/^0x[0-9a-f]+$/i.test(s)) return undefined;
    const n = Number(s);
    return Number.isFinite(n) && n >= min && n <= max ? n : undefined;
  };
};

const CHARGE_KEYS: Record<keyof ChargeConfig, KeySpec<number>> = {
  maxCellVoltage: { key: 'max_cell_voltage', parse: num(2, 4.5), expected: 'a cell voltage in V (2–4.5)' },
  minCellVoltage: { key: 'min_cell_voltage', parse: num(1.5, 4), expected: 'a cell voltage in V (1.5–4)' },
  cellOvpVoltage: { key: 'cell_ovp_voltage', parse: num(2, 4.5), expected: 'a cell voltage in V (2–4.5)' },
  cellUvpVoltage: { key: 'cell_uvp_voltage', parse: num(1.5, 4), expected: 'a cell voltage in V (1.5–4)' },
  maxChargeCurrent: { key: 'max_charge_current', parse: num(0, 10000), expected: 'a current in A (0–10000)' },
  maxDischargeCurrent: { key: 'max_discharge_current', parse: num(0, 10000), expected: 'a current in A (0–10000)' },
  chargeMinTemperature: { key: 'charge_min_temperature', parse: num(-40, 80), expected: '°C (−40–80)' },
  chargeMaxTemperature: { key: 'charge_max_temperature', parse: num(-40, 80), expected: '°C (−40–80)' },
  dischargeMinTemperature: { key: 'discharge_min_temperature', parse: num(-40, 80), expected: '°C (−40–80)' },
  dischargeMaxTemperature: { key: 'discharge_max_temperature', parse: num(-40, 100), expected: '°C (−40–100)' },
  socLowWarning: { key: 'soc_low_warning', parse: num(0, 100), expected: 'a SoC in % (0–100)' },
  socLowAlarm: { key: 'soc_low_alarm', parse: num(0, 100), expected: 'a SoC in % (0–100)' },
  cellImbalanceWarning: {
    key: 'cell_imbalance_warning',
    parse: num(0, 2),
    expected: 'a voltage difference in V (0–2)',
  },
  cellImbalanceAlarm: { key: 'cell_imbalance_alarm', parse: num(0, 2), expected: 'a voltage difference in V (0–2)' },
  mosTemperatureWarning: { key: 'mos_temperature_warning', parse: num(0, 150), expected: '°C (0–150)' },
  mosTemperatureAlarm: { key: 'mos_temperature_alarm', parse: num(0, 150), expected: '°C (0–150)' },
};

/** Built-in defaults; config.default.ini repeats them with comments (a test keeps the two equal). */
export const DEFAULT_CHARGE: ChargeConfig = {
  maxCellVoltage: 3.45,
  minCellVoltage: 2.9,
  cellOvpVoltage: 3.6,
  cellUvpVoltage: 2.8,
  maxChargeCurrent: 50,
  maxDischargeCurrent: 60,
  chargeMinTemperature: 0,
  chargeMaxTemperature: 55,
  dischargeMinTemperature: -20,
  dischargeMaxTemperature: 60,
  socLowWarning: 20,
  socLowAlarm: 10,
  cellImbalanceWarning: 0.08,
  cellImbalanceAlarm: 0.15,
  mosTemperatureWarning: 80,
  mosTemperatureAlarm: 90,
};

const BATTERY_KEYS = [
  'protocol',
  'mac',
  'adapter',
  'ble_backend',
  'ble_mode',
  'ble_hci_uart',
  'can',
  'can_port',
  'bitrate',
  'pack',
  'keepalive',
  'address',
  ...new Set([...FAMILIES, ...NETWORK_FAMILIES].flatMap((f) => f.options.map((o) => o.key))),
  'host',
  'port',
  'baud_rate',
  'poll_interval',
  'reply_timeout',
  'stale_after',
  'device_instance',
  'custom_name',
  'product_name',
  'capture',
] as const;
const GENERAL_KEYS = [
  'log_level',
  'product_id',
  'dbus',
  'dbus_properties_changed',
  'capture',
  'capture_dir',
  'capture_max_bytes',
  'capture_files',
] as const;
const BANK_KEYS = [
  'name',
  'batteries',
  'topology',
  'series',
  'sharing',
  'publish_members',
  'device_instance',
  'custom_name',
];

/** Where a value came from, for error messages. */
interface Located {
  value: string;
  file: string;
}

/** Section name → key → located value, merged over all files (later files win). */
type Merged = Map<string, Map<string, Located>>;

function mergeInto(merged: Merged, raw: Raw, file: string, prefix = ''): void {
  for (const [k, v] of Object.entries(raw)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      // A section (ini turns [battery.house] into nested objects).
      const name = prefix ? `${prefix}.${k}` : k;
      const inner = v as Raw;
      const hasScalars = Object.values(inner).some((x) => x === null || typeof x !== 'object');
      if (hasScalars || Object.keys(inner).length === 0) {
        const sec = merged.get(name) ?? new Map<string, Located>();
        merged.set(name, sec);
        for (const [key, val] of Object.entries(inner)) {
          if (val === null || typeof val !== 'object') sec.set(key, { value: String(val), file });
        }
      }
      mergeInto(
        merged,
        Object.fromEntries(Object.entries(inner).filter(([, x]) => x && typeof x === 'object')),
        file,
        name,
      );
    } else if (!prefix) {
      throw new ConfigError(
        `${file}: key "${k}" is outside any section; put it under [general] or a [battery.<id>] section`,
      );
    }
  }
}

function fail(loc: Located | undefined, file: string, section: string, key: string, expected: string): never {
  const where = loc?.file ?? file;
  const value = loc === undefined ? '(missing)' : JSON.stringify(loc.value);
  throw new ConfigError(`${where}: [${section}] ${key} = ${value}: expected ${expected}`);
}

function readCharge(
  sec: Map<string, Located> | undefined,
  section: string,
  file: string,
  base: ChargeConfig,
): ChargeConfig {
  const out = { ...base };
  for (const [field, spec] of Object.entries(CHARGE_KEYS) as [keyof ChargeConfig, KeySpec<number>][]) {
    const loc = sec?.get(spec.key);
    if (loc === undefined) continue;
    const v = spec.parse(loc.value);
    if (v === undefined) fail(loc, file, section, spec.key, spec.expected);
    out[field] = v;
  }
  return out;
}

function checkUnknownKeys(
  sec: Map<string, Located>,
  section: string,
  allowed: readonly string[],
  file: string,
  alsoAllowed: (key: string) => boolean = () => false,
): void {
  for (const [key, loc] of sec) {
    if (!allowed.includes(key) && !alsoAllowed(key)) {
      throw new ConfigError(
        `${loc.file ?? file}: [${section}] unknown key "${key}" (known keys: ${[...allowed].sort().join(', ')})`,
      );
    }
  }
}

/** Case-insensitive key lookup (dbus-serialbattery's keys are upper case). */
function lookupKey(sec: Map<string, Located> | undefined, key: string): Located | undefined {
  if (!sec) return undefined;
  const direct = sec.get(key);
  if (direct) return direct;
  const lower = key.toLowerCase();
  for (const [k, v] of sec) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/**
 * The charge-control settings of one battery: its own section first, then [charge], then the defaults. The
 * hard limits it shares with the alarm thresholds (cell OVP/UVP, temperature windows, …) are copied back so
 * both always agree, whichever spelling the user wrote.
 */
function readControl(
  sec: Map<string, Located> | undefined,
  chargeSec: Map<string, Located> | undefined,
  section: string,
  file: string,
  files: readonly string[],
): ChargeControlConfig {
  // Precedence levels: the battery's own section, then [charge] of each file, the user's before the defaults.
  // A setting is read from the first level that names it in any spelling (ours or a dbus-serialbattery alias),
  // so the user's MAX_BATTERY_CHARGE_CURRENT overrides the shipped max_charge_current instead of clashing.
  const levels: { sec: Map<string, Located>; label: string }[] = [];
  if (sec) levels.push({ sec, label: section });
  for (const f of [...files].reverse()) {
    const part = new Map([...(chargeSec ?? [])].filter(([, loc]) => loc.file === f));
    if (part.size > 0) levels.push({ sec: part, label: 'charge' });
  }
  const levelOf = (key: string) => {
    const canonical = canonicalChargeControlKey(key) ?? key;
    return levels.find((l) => [...l.sec.keys()].some((k) => (canonicalChargeControlKey(k) ?? k) === canonical));
  };
  try {
    return parseChargeControlConfig(
      (k) => {
        const level = levelOf(k);
        return level ? lookupKey(level.sec, k)?.value : undefined;
      },
      (k) => {
        const level = levelOf(k);
        const loc = level ? lookupKey(level.sec, k) : undefined;
        return `${loc?.file ?? file}: [${level?.label ?? section}]`;
      },
    );
  } catch (e) {
    // "file: [section]: key = …" → the "file: [section] key = …" shape of every other config error.
    if (e instanceof ChargeControlConfigError) throw new ConfigError(e.message.replace(']: ', '] '));
    throw e;
  }
}

function shareHardLimits(charge: ChargeConfig, control: ChargeControlConfig): ChargeConfig {
  const out = { ...charge };
  for (const key of HARD_LIMIT_KEYS) out[key] = control[key];
  return out;
}

function checkCharge(c: ChargeConfig, section: string, file: string): void {
  const rules: [boolean, string][] = [
    [c.minCellVoltage < c.maxCellVoltage, 'min_cell_voltage must be below max_cell_voltage'],
    [c.maxCellVoltage < c.cellOvpVoltage, 'max_cell_voltage must be below cell_ovp_voltage'],
    [c.cellUvpVoltage < c.minCellVoltage, 'cell_uvp_voltage must be below min_cell_voltage'],
    [c.chargeMinTemperature < c.chargeMaxTemperature, 'charge_min_temperature must be below charge_max_temperature'],
    [
      c.dischargeMinTemperature < c.dischargeMaxTemperature,
      'discharge_min_temperature must be below discharge_max_temperature',
    ],
    [c.socLowAlarm <= c.socLowWarning, 'soc_low_alarm must not exceed soc_low_warning'],
    [c.cellImbalanceWarning <= c.cellImbalanceAlarm, 'cell_imbalance_warning must not exceed cell_imbalance_alarm'],
    [c.mosTemperatureWarning <= c.mosTemperatureAlarm, 'mos_temperature_warning must not exceed mos_temperature_alarm'],
  ];
  for (const [ok, msg] of rules) if (!ok) throw new ConfigError(`${file}: [${section}] ${msg}`);
}

/** Parse and validate INI texts (defaults first). Pure apart from nothing: no file access. */
export function parseConfig(sources: readonly { file: string; text: string }[]): Config {
  const merged: Merged = new Map();
  for (const { file, text } of sources) {
    let raw: Raw;
    try {
      raw = parse(text) as Raw;
    } catch (e) {
      throw new ConfigError(`${file}: not valid INI: ${(e as Error).message}`);
    }
    mergeInto(merged, raw, file);
  }
  const file = sources[sources.length - 1]?.file ?? '(none)';
  const chargeKeys = Object.values(CHARGE_KEYS).map((s) => s.key);

  for (const [name, sec] of merged) {
    if (name === 'general') checkUnknownKeys(sec, name, GENERAL_KEYS, file);
    else if (name === 'charge') checkUnknownKeys(sec, name, chargeKeys, file, isChargeControlKey);
    else if (name.startsWith('battery.')) {
      checkUnknownKeys(sec, name, [...BATTERY_KEYS, ...chargeKeys], file, isChargeControlKey);
    } else if (isTelemetrySection(name)) checkUnknownKeys(sec, name, telemetryKeys()[name], file);
    else if (name === 'bank') checkUnknownKeys(sec, name, BANK_KEYS, file);
    else if (name === 'inverter') checkUnknownKeys(sec, name, INVERTER_KEYS, file);
    else if (name === 'battery') continue;
    else {
      throw new ConfigError(
        `${file}: unknown section [${name}] (known: [general], [charge], [battery.<id>], [bank], [inverter], [mqtt], [http], [postgres])`,
      );
    }
  }

  const gen = merged.get('general');
  const levelLoc = gen?.get('log_level');
  const logLevel = levelLoc?.value ?? 'info';
  if (!isLogLevel(logLevel)) fail(levelLoc, file, 'general', 'log_level', 'one of debug, info, warn, error');
  const pidLoc = gen?.get('product_id');
  const productId = pidLoc ? num(1, 0xffff)(pidLoc.value) : 0xba6b;
  if (productId === undefined || !Number.isInteger(productId)) {
    fail(pidLoc, file, 'general', 'product_id', 'an integer 1–0xFFFF (default 0xBA6B)');
  }

  const charge = readCharge(merged.get('charge'), 'charge', file, DEFAULT_CHARGE);
  checkCharge(charge, 'charge', file);
  const captureAll = readBool(gen?.get('capture'), file, 'general', 'capture') ?? false;
  const dbus = readBool(gen?.get('dbus'), file, 'general', 'dbus') ?? true;
  const propertiesChanged =
    readBool(gen?.get('dbus_properties_changed'), file, 'general', 'dbus_properties_changed') ?? false;

  const batteries: BatteryConfig[] = [];
  for (const [name, sec] of merged) {
    if (!name.startsWith('battery.')) continue;
    const id = name.slice('battery.'.length);
    if (!/^[a-z0-9_]+$/.test(id)) {
      throw new ConfigError(`${file}: section [${name}]: battery id "${id}" must use only a-z, 0-9 and _`);
    }
    const get = (k: string) => sec.get(k);
    const protoLoc = get('protocol');
    const protocol = protoLoc?.value;
    const fam = protocol ? findFamily(protocol) : undefined;
    const canFam = protocol ? findCanFamily(protocol) : undefined;
    const bleFam = protocol && (get('mac') || protocol === 'jk-ble') ? findBleFamily(protocol) : undefined;
    const netFam = protocol ? findNetworkFamily(protocol) : undefined;
    if (!protocol || (!fam && !canFam && !bleFam && !netFam && protocol !== AUTO_PROTOCOL)) {
      const known = [
        AUTO_PROTOCOL,
        ...FAMILIES.map((f) => f.id),
        ...CAN_FAMILIES.map((f) => f.id),
        ...BLE_FAMILIES.filter((f) => !findFamily(f.id)).map((f) => f.id),
        ...NETWORK_FAMILIES.map((f) => f.id),
      ];
      fail(protoLoc, file, name, 'protocol', `one of ${known.join(', ')}`);
    }
    const can = canFam ? readCan(sec, name, file, canFam.packs) : undefined;
    if (get('mac') && !bleFam) {
      fail(
        get('mac'),
        file,
        name,
        'mac',
        `nothing: protocol ${protocol} has no Bluetooth variant (${BLE_FAMILIES.map((f) => f.id).join(', ')} do)`,
      );
    }
    const ble = bleFam ? readBle(sec, name, file) : undefined;
    const net = netFam ? readHost(sec, name, file, netFam) : undefined;
    if (!netFam && get('host')) {
      const nets = NETWORK_FAMILIES.map((f) => f.id).join(', ');
      fail(get('host'), file, name, 'host', `nothing: host is for network batteries (protocol ${nets})`);
    }
    for (const k of ['adapter', 'ble_backend', 'ble_mode', 'ble_hci_uart']) {
      const loc = get(k);
      if (!bleFam && loc) fail(loc, file, name, k, 'nothing: this key is for Bluetooth batteries (with mac = …)');
    }
    for (const k of ['can', 'can_port', 'bitrate', 'pack', 'keepalive']) {
      const loc = get(k);
      if (!canFam && loc)
        fail(
          loc,
          file,
          name,
          k,
          `nothing: ${k} is for the CAN protocols (${CAN_FAMILIES.map((f) => f.id).join(', ')})`,
        );
    }
    const portLoc = can
      ? { value: can.endpoint.kind === 'socketcan' ? can.endpoint.iface : can.endpoint.path, file }
      : ble
        ? { value: `ble:${ble.mac}`, file }
        : net
          ? { value: net.url, file }
          : get('port');
    if (!portLoc || portLoc.value.trim() === '')
      fail(portLoc, file, name, 'port', 'a serial device path such as /dev/ttyUSB0');
    const numKey = (key: string, dflt: number, min: number, max: number, expected: string): number => {
      const loc = get(key);
      if (loc === undefined) return dflt;
      const v = num(min, max)(loc.value);
      if (v === undefined) fail(loc, file, name, key, expected);
      return v;
    };
    const pollS = numKey('poll_interval', 1, 0.1, 3600, 'seconds between polls (0.1–3600)');
    const staleS = numKey('stale_after', 10, 1, 3600, 'seconds without a valid reply before offline (1–3600)');
    const replyS = numKey('reply_timeout', Math.min(0.5, pollS * 0.8), 0.05, 60, 'seconds (0.05–60)');
    if (replyS >= pollS)
      fail(get('reply_timeout'), file, name, 'reply_timeout', `less than poll_interval (${pollS} s)`);
    if (staleS <= pollS) fail(get('stale_after'), file, name, 'stale_after', `more than poll_interval (${pollS} s)`);
    const baudLoc = get('baud_rate');
    const baudRate = baudLoc ? numKey('baud_rate', 0, 300, 4_000_000, 'a baud rate such as 9600') : fam?.baudRate;
    let address: number | undefined;
    const addrLoc = get('address');
    if (addrLoc !== undefined) {
      if (netFam) fail(addrLoc, file, name, 'address', `nothing: a ${protocol} battery is told apart by its host`);
      const a = fam?.addressing;
      if (a === 'none') fail(addrLoc, file, name, 'address', `no address: protocol ${protocol} has one BMS per port`);
      const min = a ? a.min : 0;
      const max = a ? a.max : 255;
      const v = num(min, max)(addrLoc.value);
      if (v === undefined || !Number.isInteger(v)) fail(addrLoc, file, name, 'address', `a bus address ${min}–${max}`);
      address = v;
    }
    const options: Record<string, number> = {};
    for (const opt of [...FAMILIES, ...NETWORK_FAMILIES].flatMap((f) => f.options)) {
      const loc = get(opt.key);
      if (loc === undefined || options[opt.key] !== undefined) continue;
      if (!(fam ?? netFam)?.options.some((o) => o.key === opt.key)) {
        fail(loc, file, name, opt.key, `nothing: ${opt.key} belongs to another protocol`);
      }
      const v = num(-0xffff, 0xffff)(loc.value);
      if (v === undefined || !opt.choices.includes(v)) {
        fail(
          loc,
          file,
          name,
          opt.key,
          `one of ${opt.choices.map((c) => (c < 0 || opt.choices.some((x) => x < 0) ? String(c) : `0x${c.toString(16).toUpperCase()}`)).join(', ')}`,
        );
      }
      options[opt.key] = v;
    }
    const deviceInstance = numKey('device_instance', 100 + batteries.length, 0, 999, 'an instance number 0–999');
    const control = readControl(
      sec,
      merged.get('charge'),
      name,
      file,
      sources.map((x) => x.file),
    );
    const bc = shareHardLimits(readCharge(sec, name, file, charge), control);
    checkCharge(bc, name, file);
    const capture = readBool(get('capture'), file, name, 'capture') ?? captureAll;
    batteries.push({
      id,
      protocol,
      port: portLoc.value.trim(),
      baudRate: baudRate === undefined ? undefined : Math.round(baudRate),
      address,
      options,
      ...(can ? { can } : {}),
      ...(ble ? { ble } : {}),
      ...(net ? { net } : {}),
      pollIntervalMs: Math.round(pollS * 1000),
      replyTimeoutMs: Math.round(replyS * 1000),
      staleAfterMs: Math.round(staleS * 1000),
      deviceInstance: Math.round(deviceInstance),
      customName: get('custom_name')?.value ?? '',
      productName:
        get('product_name')?.value ??
        bleFam?.productName ??
        fam?.productName ??
        canFam?.productName ??
        netFam?.productName ??
        'Battery BMS',
      charge: bc,
      control,
      ...(capture ? { capture: true as const } : {}),
    });
  }
  checkSharedPorts(batteries, file);
  if (batteries.length === 0) {
    throw new ConfigError(
      `${file}: no battery configured: add a section such as [battery.house] with protocol and port`,
    );
  }
  const bank = readBank(merged.get('bank'), batteries, file);
  const telemetry = parseTelemetryConfig(
    (section) => {
      const sec = merged.get(section);
      return sec && ((k: string) => sec.get(k)?.value);
    },
    file,
    (m) => new ConfigError(m),
  );
  // Validated even while nothing captures: a typo must not wait until the day capture is switched on.
  const captureSettings = readCaptureSettings(gen, file);
  const invSec = merged.get('inverter');
  const inverter = parseInverterConfig(
    (k) => invSec?.get(k),
    {
      file,
      batteries: batteries.map((b) => ({
        id: b.id,
        maxChargeCurrent: b.control.maxChargeCurrent,
        maxDischargeCurrent: b.control.maxDischargeCurrent,
        can: b.can?.endpoint,
      })),
      bank: bank && { id: bank.id, strings: bank.topology.strings },
    },
    (m) => new ConfigError(m),
  );
  const capture = batteries.some((b) => b.capture) ? captureSettings : undefined;
  return {
    general: {
      logLevel,
      productId,
      ...(capture ? { capture } : {}),
      ...(dbus ? {} : { dbus: false as const }),
      ...(propertiesChanged ? { dbusPropertiesChanged: true as const } : {}),
    },
    batteries,
    bank,
    telemetry,
    ...(inverter ? { inverter } : {}),
    files: sources.map((s) => s.file),
  };
}

/** A true/false key; undefined when absent. */
function readBool(loc: Located | undefined, file: string, section: string, key: string): boolean | undefined {
  if (loc === undefined) return undefined;
  const v = loc.value.trim().toLowerCase();
  if (['true', 'yes', '1'].includes(v)) return true;
  if (['false', 'no', '0'].includes(v)) return false;
  fail(loc, file, section, key, 'true or false');
}

/** `capture_dir` (relative to the file that names it), `capture_max_bytes`, `capture_files` of [general]. */
function readCaptureSettings(gen: Map<string, Located> | undefined, file: string): CaptureSettings {
  const dirLoc = gen?.get('capture_dir');
  const dirText = dirLoc?.value.trim() ?? '';
  const dir = dirText === '' ? undefined : resolve(dirname(dirLoc?.file ?? file), dirText);
  const maxLoc = gen?.get('capture_max_bytes');
  const maxBytes = maxLoc ? num(10_000, 1_000_000_000)(maxLoc.value) : 5_000_000;
  if (maxBytes === undefined || !Number.isInteger(maxBytes)) {
    fail(maxLoc, file, 'general', 'capture_max_bytes', 'a file size in bytes, 10000–1000000000 (default 5000000)');
  }
  const filesLoc = gen?.get('capture_files');
  const files = filesLoc ? num(1, 100)(filesLoc.value) : 3;
  if (files === undefined || !Number.isInteger(files)) {
    fail(filesLoc, file, 'general', 'capture_files', 'the number of files kept, 1–100 (default 3)');
  }
  return { dir, maxBytes, files };
}

/** `host = 10.0.0.2[:9000]` (or a ws:// URL) of a network battery; `port` has no meaning there. */
function readHost(
  sec: Map<string, Located>,
  section: string,
  file: string,
  family: NonNullable<ReturnType<typeof findNetworkFamily>>,
): NetworkEndpoint {
  const portLoc = sec.get('port');
  if (portLoc) {
    const how = `host = address[:${family.defaultPort}]`;
    fail(portLoc, file, section, 'port', `nothing: a ${family.id} battery is reached by ${how}`);
  }
  const hostLoc = sec.get('host');
  const endpoint = hostLoc ? parseEndpoint(hostLoc.value, family) : undefined;
  if (!endpoint) {
    fail(
      hostLoc,
      file,
      section,
      'host',
      `the battery's address, e.g. 10.0.0.2 or 10.0.0.2:${family.defaultPort} (${family.scheme}://…${family.path} is added)`,
    );
  }
  return endpoint;
}

function readBle(sec: Map<string, Located>, section: string, file: string): NonNullable<BatteryConfig['ble']> {
  const macLoc = sec.get('mac');
  const mac = macLoc?.value.trim().toUpperCase() ?? '';
  if (!/^([0-9A-F]{2}:){5}[0-9A-F]{2}$/.test(mac))
    fail(macLoc, file, section, 'mac', 'a Bluetooth address such as C8:47:8C:12:34:56');
  const adapterLoc = sec.get('adapter');
  const adapter = adapterLoc?.value.trim() ?? 'hci0';
  if (!/^hci\d+$/.test(adapter)) fail(adapterLoc, file, section, 'adapter', 'an adapter name such as hci0');
  const uart = sec.get('ble_hci_uart')?.value.trim() || undefined;
  const backendLoc = sec.get('ble_backend');
  const backend = backendLoc?.value.trim() ?? (uart ? 'noble' : 'bluez');
  if (backend !== 'bluez' && backend !== 'noble') fail(backendLoc, file, section, 'ble_backend', 'bluez or noble');
  if (uart && backend !== 'noble') fail(backendLoc, file, section, 'ble_backend', 'noble (ble_hci_uart needs it)');
  const modeLoc = sec.get('ble_mode');
  const mode = modeLoc?.value.trim() ?? 'keep-connected';
  if (mode !== 'keep-connected' && mode !== 'poll') fail(modeLoc, file, section, 'ble_mode', 'keep-connected or poll');
  return { mac, adapter: { backend, adapter, ...(uart ? { hciUart: uart } : {}) }, mode };
}

function readCan(
  sec: Map<string, Located>,
  section: string,
  file: string,
  packs: boolean,
): NonNullable<BatteryConfig['can']> {
  const canLoc = sec.get('can');
  const portLoc = sec.get('can_port');
  if (!canLoc === !portLoc) {
    fail(
      canLoc ?? portLoc,
      file,
      section,
      canLoc ? 'can_port' : 'can',
      'exactly one of can = can0 (SocketCAN) or can_port = /dev/ttyUSB0 (USB-CAN-A)',
    );
  }
  const brLoc = sec.get('bitrate');
  const bitrate = brLoc ? num(0, 1_000_000)(brLoc.value) : 500_000;
  if (bitrate !== 250_000 && bitrate !== 500_000) fail(brLoc, file, section, 'bitrate', '250000 or 500000');
  if (canLoc && !/^[a-z][a-z0-9_]*$/i.test(canLoc.value.trim()))
    fail(canLoc, file, section, 'can', 'an interface name such as can0 or vecan0');
  const packLoc = sec.get('pack');
  let pack: number | undefined;
  if (packLoc) {
    if (!packs) fail(packLoc, file, section, 'pack', 'nothing: only deye-can has packs');
    const v = num(0, 31)(packLoc.value);
    if (v === undefined || !Number.isInteger(v)) fail(packLoc, file, section, 'pack', 'a pack index 0–31');
    pack = v;
  }
  const kaLoc = sec.get('keepalive');
  const ka = kaLoc?.value.trim().toLowerCase() ?? 'true';
  if (!['true', 'false', 'yes', 'no', '1', '0'].includes(ka)) fail(kaLoc, file, section, 'keepalive', 'true or false');
  return {
    endpoint: canLoc
      ? { kind: 'socketcan', iface: canLoc.value.trim() }
      : { kind: 'usbcan-a', path: (portLoc as Located).value.trim(), bitrate },
    pack,
    keepAlive: ['true', 'yes', '1'].includes(ka),
  };
}

/**
 * Batteries on one port share one line: the same protocol and baud rate, and distinct addresses (a family
 * without addressing can have only one battery per port). `auto` must have its port to itself.
 */
function checkSharedPorts(batteries: readonly BatteryConfig[], file: string): void {
  const byPort = new Map<string, BatteryConfig[]>();
  for (const b of batteries) if (!b.can && !b.ble) byPort.set(b.port, [...(byPort.get(b.port) ?? []), b]);
  for (const [port, group] of byPort) {
    if (group.length < 2) continue;
    const names = group.map((b) => `[battery.${b.id}]`).join(', ');
    const first = group[0] as BatteryConfig;
    if (group.some((b) => b.protocol !== first.protocol || b.baudRate !== first.baudRate)) {
      throw new ConfigError(
        `${file}: ${names} share port ${port} but not protocol and baud rate; one line speaks one protocol`,
      );
    }
    const fam = findFamily(first.protocol);
    if (!fam || fam.addressing === 'none') {
      throw new ConfigError(
        `${file}: ${names} share port ${port}, but protocol ${first.protocol} has no bus address: one battery per port`,
      );
    }
    const seen = new Map<number, string>();
    for (const b of group) {
      const a = b.address ?? fam.addressing.default;
      const other = seen.get(a);
      if (other)
        throw new ConfigError(`${file}: [battery.${b.id}] and [battery.${other}] both use address ${a} on ${port}`);
      seen.set(a, b.id);
    }
  }
}

function readBank(
  sec: Map<string, Located> | undefined,
  batteries: readonly BatteryConfig[],
  file: string,
): BankConfig | undefined {
  if (!sec || sec.size === 0) return undefined;
  const get = (k: string) => sec.get(k);
  const list = (k: string) =>
    get(k)
      ?.value.split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '');
  const nameLoc = get('name');
  const id = nameLoc?.value.trim() || 'bank';
  if (!/^[a-z0-9_]+$/.test(id)) fail(nameLoc, file, 'bank', 'name', 'a bank id of a-z, 0-9 and _');
  if (batteries.some((b) => b.id === id))
    fail(nameLoc, file, 'bank', 'name', `a name no battery section uses ("${id}" is one)`);
  let topology: Topology;
  try {
    const batteriesList = list('batteries');
    const series = list('series');
    const topo = get('topology')?.value.trim();
    topology = parseTopology(
      {
        ...(batteriesList ? { batteries: batteriesList } : {}),
        ...(series ? { series } : {}),
        ...(topo ? { topology: topo } : {}),
      },
      batteries.map((b) => b.id),
    );
  } catch (e) {
    if (e instanceof TopologyError) throw new ConfigError(`${get('batteries')?.file ?? file}: ${e.message}`);
    throw e;
  }
  const sharingLoc = get('sharing');
  const sharing = sharingLoc?.value.trim() ?? 'capacity';
  if (sharing !== 'capacity' && sharing !== 'count') fail(sharingLoc, file, 'bank', 'sharing', 'capacity or count');
  const pubLoc = get('publish_members');
  const pub = pubLoc?.value.trim().toLowerCase() ?? 'true';
  if (!['true', 'false', 'yes', 'no', '1', '0'].includes(pub))
    fail(pubLoc, file, 'bank', 'publish_members', 'true or false');
  const instLoc = get('device_instance');
  const inst = instLoc ? num(0, 999)(instLoc.value) : 99;
  if (inst === undefined || !Number.isInteger(inst))
    fail(instLoc, file, 'bank', 'device_instance', 'an instance number 0–999');
  return {
    id,
    topology,
    sharing,
    publishMembers: ['true', 'yes', '1'].includes(pub),
    deviceInstance: inst,
    customName: get('custom_name')?.value ?? '',
  };
}

/** Read the default file (if present) and the user's file, then validate. */
export function loadConfig(userFile: string, defaultFile?: string): Config {
  const sources: { file: string; text: string }[] = [];
  if (defaultFile) {
    try {
      sources.push({ file: defaultFile, text: readFileSync(defaultFile, 'utf8') });
    } catch {
      // Defaults are built in; the shipped file only documents them.
    }
  }
  let text: string;
  try {
    text = readFileSync(userFile, 'utf8');
  } catch (e) {
    throw new ConfigError(`${userFile}: cannot read config: ${(e as Error).message}`);
  }
  sources.push({ file: userFile, text });
  return parseConfig(sources);
}
