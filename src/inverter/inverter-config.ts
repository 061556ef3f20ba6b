/**
 * The `[inverter]` section: present the bank (or one battery) to a non-Victron inverter over CAN.
 * Parsed here and called from src/config.ts, which passes the section's values with the file each came from.
 */
import type { CanEndpoint } from '../bms/can-registry.js';
import { DEFAULT_BYD_WATCHDOG_MS } from './byd-hvs.js';
import { DEFAULT_PYLON_MANUFACTURER } from './pylon-lv.js';

export const INVERTER_PROTOCOLS = ['pylon', 'byd-hvs'] as const;
export type InverterProtocol = (typeof INVERTER_PROTOCOLS)[number];

export interface InverterConfig {
  protocol: InverterProtocol;
  /** The CAN interface or USB-CAN-A adapter the inverter is on. */
  endpoint: CanEndpoint;
  /** What is presented: the bank (its `name`) or a battery id. */
  source: { kind: 'bank' | 'battery'; id: string };
  /** 0x35E text (Pylon), at most 8 ASCII characters. */
  manufacturer: string;
  /** Pylon: also send 0x35A, 0x35F, 0x370–0x373. */
  victronExtensions: boolean;
  /** Caps that may only lower the policy's limits, A. */
  maxChargeCurrent: number | undefined;
  maxDischargeCurrent: number | undefined;
  /** BYD: the capacity announced in the hello, kWh; undefined = installed Ah × nominal voltage. */
  capacityKwh: number | undefined;
  /** The inverter counts as gone after this long without its frames (BYD: stop sending), ms. */
  watchdogMs: number;
}

export const INVERTER_KEYS = [
  'enabled',
  'protocol',
  'can',
  'can_port',
  'bitrate',
  'source',
  'manufacturer',
  'victron_extensions',
  'max_charge_current',
  'max_discharge_current',
  'capacity_kwh',
  'watchdog',
] as const;

/** A value with the file it came from. */
export interface InverterLocated {
  value: string;
  file: string;
}

/** What the section may refer to. */
export interface InverterContext {
  /** The last file read (for messages about missing keys). */
  file: string;
  batteries: readonly {
    id: string;
    /** The battery's policy maximums, A (`max_charge_current`, `max_discharge_current`). */
    maxChargeCurrent: number;
    maxDischargeCurrent: number;
    /** The battery's own CAN endpoint, if it is a CAN battery. */
    can: CanEndpoint | undefined;
  }[];
  bank: { id: string; strings: readonly (readonly string[])[] } | undefined;
}

function endpointKey(e: CanEndpoint): string {
  return e.kind === 'socketcan' ? `can ${e.iface}` : `can_port ${e.path}`;
}

const BOOL: Record<string, boolean> = { true: true, yes: true, 1: true, false: false, no: false, 0: false };

/**
 * Parse `[inverter]`; undefined when the section is absent, empty or `enabled = false`.
 * @throws the error `makeError(message)` builds, naming file, section, key, value and what was expected.
 */
export function parseInverterConfig(
  get: (key: string) => InverterLocated | undefined,
  ctx: InverterContext,
  makeError: (message: string) => Error,
): InverterConfig | undefined {
  const fail = (key: string, expected: string): never => {
    const loc = get(key);
    const value = loc === undefined ? '(missing)' : JSON.stringify(loc.value);
    throw makeError(`${loc?.file ?? ctx.file}: [inverter] ${key} = ${value}: expected ${expected}`);
  };
  const text = (key: string) => get(key)?.value.trim();
  const bool = (key: string, dflt: boolean): boolean => {
    const v = text(key)?.toLowerCase();
    if (v === undefined) return dflt;
    const b = BOOL[v];
    if (b === undefined) fail(key, 'true or false');
    return b as boolean;
  };
  const number = (key: string, min: number, max: number, expected: string): number | undefined => {
    const v = text(key);
    if (v === undefined) return undefined;
    const n = /^[-+]?(\d+\.?\d*|\.\d+)$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isFinite(n) || n < min || n > max) fail(key, expected);
    return n;
  };

  if (INVERTER_KEYS.every((k) => get(k) === undefined)) return undefined;
  if (!bool('enabled', true)) return undefined;

  const protocol = text('protocol');
  if (!protocol || !(INVERTER_PROTOCOLS as readonly string[]).includes(protocol)) {
    fail('protocol', `one of ${INVERTER_PROTOCOLS.join(', ')}`);
  }
  const proto = protocol as InverterProtocol;

  // The CAN side, as in a CAN battery section.
  const can = text('can');
  const port = text('can_port');
  if (!can === !port) {
    fail(can ? 'can_port' : 'can', 'exactly one of can = can1 (SocketCAN) or can_port = /dev/ttyUSB1 (USB-CAN-A)');
  }
  if (can !== undefined && !/^[a-z][a-z0-9_]*$/i.test(can)) fail('can', 'an interface name such as can1 or vcan1');
  const bitrate = number('bitrate', 0, 1_000_000, '250000 or 500000') ?? 500_000;
  if (bitrate !== 250_000 && bitrate !== 500_000) fail('bitrate', '250000 or 500000');
  const endpoint: CanEndpoint =
    can !== undefined ? { kind: 'socketcan', iface: can } : { kind: 'usbcan-a', path: port as string, bitrate };
  const clash = ctx.batteries.find((b) => b.can !== undefined && endpointKey(b.can) === endpointKey(endpoint));
  if (clash) {
    fail(
      can !== undefined ? 'can' : 'can_port',
      `another CAN interface than [battery.${clash.id}]'s: the inverter must be on its own bus`,
    );
  }

  // What is presented: the bank by default, else the only battery.
  const sourceText = text('source');
  let source: InverterConfig['source'] | undefined;
  if (sourceText) {
    if (ctx.bank?.id === sourceText) source = { kind: 'bank', id: sourceText };
    else if (ctx.batteries.some((b) => b.id === sourceText)) source = { kind: 'battery', id: sourceText };
    else {
      const names = [...(ctx.bank ? [ctx.bank.id] : []), ...ctx.batteries.map((b) => b.id)];
      fail('source', `the bank name or a battery id (${names.join(', ')})`);
    }
  } else if (ctx.bank) {
    source = { kind: 'bank', id: ctx.bank.id };
  } else if (ctx.batteries.length === 1) {
    source = { kind: 'battery', id: (ctx.batteries[0] as { id: string }).id };
  } else {
    fail(
      'source',
      `a battery id (${ctx.batteries.map((b) => b.id).join(', ')}): with several batteries and no [bank] it is ambiguous`,
    );
  }
  const src = source as InverterConfig['source'];

  const manufacturer = get('manufacturer')?.value.trim() ?? DEFAULT_PYLON_MANUFACTURER;
  if (get('manufacturer') && proto !== 'pylon') fail('manufacturer', 'nothing: 0x35E is a Pylon frame');
  if (!/^[\x20-\x7e]{1,8}$/.test(manufacturer)) fail('manufacturer', 'at most 8 ASCII characters, such as PYLON');
  if (get('victron_extensions') && proto !== 'pylon') fail('victron_extensions', 'nothing: a Pylon option');
  const victronExtensions = bool('victron_extensions', false);
  if (get('capacity_kwh') && proto !== 'byd-hvs') fail('capacity_kwh', 'nothing: a BYD HVS option');
  const capacityKwh = number('capacity_kwh', 0.1, 6553, 'the capacity in kWh (0.1–6553)');

  // Caps may only lower what the policy allows: a cap above the policy's own maximum is a mistake.
  const policyMax = (dir: 'charge' | 'discharge'): number => {
    const of = (id: string) => {
      const b = ctx.batteries.find((x) => x.id === id);
      return b === undefined ? 0 : dir === 'charge' ? b.maxChargeCurrent : b.maxDischargeCurrent;
    };
    if (src.kind === 'battery') return of(src.id);
    // A bank never advertises more than the sum over its strings of each string's weakest member.
    return (ctx.bank?.strings ?? []).reduce((sum, s) => sum + Math.min(...s.map(of)), 0);
  };
  const cap = (key: 'max_charge_current' | 'max_discharge_current', dir: 'charge' | 'discharge') => {
    const v = number(key, 0, 10_000, 'a current in A (0–10000)');
    if (v === undefined) return undefined;
    const limit = policyMax(dir);
    if (v > limit) {
      const where = src.kind === 'bank' ? `the bank ${src.id}` : `[battery.${src.id}]`;
      fail(
        key,
        `at most the charge policy's ${key} (${limit} A for ${where}): [inverter] ${key} can only lower the ` +
          `policy's limits, raise the policy's ${key} instead`,
      );
    }
    return v;
  };
  const maxChargeCurrent = cap('max_charge_current', 'charge');
  const maxDischargeCurrent = cap('max_discharge_current', 'discharge');
  const watchdogS = number('watchdog', 1, 3600, 'seconds without inverter frames (1–3600)');

  return {
    protocol: proto,
    endpoint,
    source: src,
    manufacturer,
    victronExtensions,
    maxChargeCurrent,
    maxDischargeCurrent,
    capacityKwh,
    watchdogMs: watchdogS === undefined ? DEFAULT_BYD_WATCHDOG_MS : Math.round(watchdogS * 1000),
  };
}
