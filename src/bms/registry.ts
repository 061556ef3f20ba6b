/**
 * The only list of BMS families. One entry per family: how to name it, how to talk to it, how batteries are told
 * apart on a shared port, how to make its bus and a driver. Config validation, the CLI and the composition root read
 * it; nothing scans folders.
 *
 *   [battery.a] ─┐                       ┌─ SerialBus (port, protocol, baud) ─ one link, one request in flight
 *   [battery.b] ─┼─ BusPool.bus(family) ─┤
 *   [battery.c] ─┘                       └─ family.createDriver(bus, settings) → one BmsDriver per battery
 */
import type { Link } from '../links/link.js';
import { SerialBus } from '../links/serial-bus.js';
import { createDalyBus, DalyDriver } from './daly/driver.js';
import { DALY_HOST_RS485, DALY_HOST_UART } from './daly/protocol.js';
import type { BmsDriver } from './driver.js';
import { createJbdBus, JbdDriver } from './jbd/driver.js';
import { createJkPbBus, JK_PB_BAUD_RATE, JkPbDriver } from './jk-modbus/driver.js';
import { JK_PB_MAX_ADDRESS } from './jk-modbus/protocol.js';
import { createJkSerialBus, JK_SERIAL_BAUD_RATE, JkSerialDriver } from './jk-serial/driver.js';
import { createPylonBus, PylonRs485Driver } from './pylon-rs485/driver.js';
import { PYLONTECH_FIRST_ADDRESS } from './pylon-rs485/pylontech.js';

/** How batteries of a family are told apart on one port: not at all (one per port), or by an address. */
export type Addressing = 'none' | { readonly min: number; readonly max: number; readonly default: number };

/** A family-specific numeric setting beyond the address (config key, allowed values, default). */
export interface FamilyOption {
  /** Config key, e.g. `host_address`. */
  readonly key: string;
  readonly description: string;
  readonly default: number;
  readonly choices: readonly number[];
}

/** What a driver needs from the battery's config section. */
export interface DriverSettings {
  /** The battery's address on the port; families with addressing 'none' take none. Default: the family's. */
  address?: number | undefined;
  pollIntervalMs: number;
  replyTimeoutMs: number;
  now: () => number;
  /** Values of the family's options by key (missing: the option's default). */
  options?: Readonly<Record<string, number | undefined>> | undefined;
}

export interface BmsFamily {
  /** `protocol =` value in the config. */
  readonly id: string;
  /** Default /ProductName. */
  readonly productName: string;
  /** Default serial settings. */
  readonly baudRate: number;
  readonly addressing: Addressing;
  readonly options: readonly FamilyOption[];
  /** A new bus for one port: the family's framer and line timing. Use a BusPool to share it. */
  createBus(link: Link<Uint8Array>): SerialBus;
  /**
   * A driver for one battery: on `transport` when it is a SerialBus (shared with the port's other batteries of this
   * family), else on a bus of its own over the link. Throws RangeError for an address or option value out of range.
   */
  createDriver(transport: SerialBus | Link<Uint8Array>, settings: DriverSettings): BmsDriver;
}

interface FamilyDefinition extends Omit<BmsFamily, 'createDriver' | 'options'> {
  readonly options?: readonly FamilyOption[];
  makeDriver(bus: SerialBus, settings: DriverSettings, address: number | undefined, family: BmsFamily): BmsDriver;
}

function defineFamily(def: FamilyDefinition): BmsFamily {
  const { makeDriver, ...rest } = def;
  const family: BmsFamily = {
    ...rest,
    options: def.options ?? [],
    createDriver: (transport, settings) => {
      const address = resolveAddress(family, settings.address);
      const bus = transport instanceof SerialBus ? transport : def.createBus(transport);
      return makeDriver(bus, settings, address, family);
    },
  };
  return family;
}

const timing = (s: DriverSettings) => ({
  pollIntervalMs: s.pollIntervalMs,
  replyTimeoutMs: s.replyTimeoutMs,
  now: s.now,
});

export const FAMILIES: readonly BmsFamily[] = [
  defineFamily({
    id: 'jbd',
    productName: 'JBD BMS',
    baudRate: 9600,
    addressing: 'none',
    createBus: (link) => createJbdBus(link),
    makeDriver: (bus, s) => new JbdDriver({ bus, ...timing(s) }),
  }),
  defineFamily({
    id: 'jk-serial',
    productName: 'JK BMS',
    baudRate: JK_SERIAL_BAUD_RATE,
    addressing: 'none',
    createBus: (link) => createJkSerialBus(link),
    makeDriver: (bus, s) => new JkSerialDriver({ bus, ...timing(s) }),
  }),
  defineFamily({
    id: 'jk-modbus',
    productName: 'JK-PB BMS',
    baudRate: JK_PB_BAUD_RATE,
    addressing: { min: 1, max: JK_PB_MAX_ADDRESS, default: 1 },
    createBus: (link) => createJkPbBus(link),
    makeDriver: (bus, s, address) => new JkPbDriver({ bus, address: address as number, ...timing(s) }),
  }),
  defineFamily({
    id: 'daly',
    productName: 'Daly BMS',
    baudRate: 9600,
    addressing: 'none',
    options: [
      {
        key: 'host_address',
        description: 'host address in requests: 0x40 on the RS485 / PC port, 0x80 on the UART / BLE port',
        default: DALY_HOST_RS485,
        choices: [DALY_HOST_RS485, DALY_HOST_UART],
      },
    ],
    createBus: (link) => createDalyBus(link),
    makeDriver: (bus, s, _address, family) =>
      new DalyDriver({ bus, hostAddress: optionValue(family, s, 'host_address'), ...timing(s) }),
  }),
  defineFamily({
    id: 'pylontech',
    productName: 'Pylontech battery',
    baudRate: 115200,
    addressing: { min: 0, max: 0xfe, default: PYLONTECH_FIRST_ADDRESS },
    createBus: (link) => createPylonBus(link),
    makeDriver: (bus, s, address) =>
      new PylonRs485Driver({ bus, protocol: 'pylontech', address: address as number, ...timing(s) }),
  }),
  defineFamily({
    id: 'seplos',
    productName: 'Seplos BMS',
    baudRate: 9600,
    addressing: { min: 0, max: 15, default: 0 },
    createBus: (link) => createPylonBus(link),
    makeDriver: (bus, s, address) =>
      new PylonRs485Driver({ bus, protocol: 'seplos', address: address as number, ...timing(s) }),
  }),
];

export function findFamily(id: string): BmsFamily | undefined {
  return FAMILIES.find((f) => f.id === id);
}

/**
 * The address a battery of `family` has on its port: `address`, or the family's default; undefined for families
 * without addressing. Throws RangeError when it is out of range, or given to a family that has no addressing.
 */
export function resolveAddress(family: BmsFamily, address: number | undefined): number | undefined {
  const a = family.addressing;
  if (a === 'none') {
    if (address !== undefined) throw new RangeError(`protocol ${family.id} has no bus address (got ${address})`);
    return undefined;
  }
  const value = address ?? a.default;
  if (!Number.isInteger(value) || value < a.min || value > a.max) {
    throw new RangeError(`address for protocol ${family.id} must be an integer ${a.min}–${a.max}, got ${value}`);
  }
  return value;
}

/** The value of option `key` in `settings`, or its default. Throws RangeError for a value not among its choices. */
function optionValue(family: BmsFamily, settings: DriverSettings, key: string): number {
  const option = family.options.find((o) => o.key === key);
  if (option === undefined) throw new Error(`protocol ${family.id} has no option ${key}`);
  const value = settings.options?.[key] ?? option.default;
  if (!option.choices.includes(value)) {
    throw new RangeError(`${key} for protocol ${family.id} must be one of ${option.choices.join(', ')}, got ${value}`);
  }
  return value;
}

/** Where a battery is: its port, line speed and address on it. */
export interface BusRequest {
  /** Device path, e.g. `/dev/ttyUSB0`. */
  path: string;
  /** Default: the family's. */
  baudRate?: number | undefined;
  /** The battery's address (default: the family's; none for families without addressing). */
  address?: number | undefined;
  /** Who asks (the battery id), for error messages. */
  owner?: string | undefined;
}

/** Makes the link of a port; the composition root passes `(port) => new SerialLink(port)`. */
export type LinkFactory = (port: { path: string; baudRate: number }) => Link<Uint8Array>;

interface PoolEntry {
  readonly family: BmsFamily;
  readonly baudRate: number;
  readonly bus: SerialBus;
  /** Address (or 'single' for families without addressing) → owner. */
  readonly claims: Map<string, string>;
}

/**
 * Hands out one SerialBus per (port, protocol, baud rate), so the drivers of the batteries on one port share it.
 * Refuses what cannot work on a real line: two protocols or baud rates on one port, two batteries at one address,
 * two batteries of a family without addressing on one port.
 */
export class BusPool {
  private readonly entries = new Map<string, PoolEntry>();

  constructor(private readonly createLink: LinkFactory) {}

  /** Every bus handed out so far. */
  get buses(): readonly SerialBus[] {
    return [...this.entries.values()].map((e) => e.bus);
  }

  /**
   * The bus of `family` on `request.path`, made on first use. Throws Error (naming the batteries) when the port is
   * already used by another protocol or baud rate or the address is taken, RangeError for an address out of range.
   */
  bus(family: BmsFamily, request: BusRequest): SerialBus {
    const baudRate = request.baudRate ?? family.baudRate;
    const who = request.owner ?? `a ${family.id} battery`;
    const address = resolveAddress(family, request.address);
    let entry = this.entries.get(request.path);
    if (entry === undefined) {
      entry = {
        family,
        baudRate,
        bus: family.createBus(this.createLink({ path: request.path, baudRate })),
        claims: new Map(),
      };
      this.entries.set(request.path, entry);
    } else if (entry.family !== family || entry.baudRate !== baudRate) {
      const first = [...entry.claims.values()][0] ?? 'another battery';
      throw new Error(
        `${who}: port ${request.path} is already used by ${first} with protocol ${entry.family.id} at ${entry.baudRate} Bd; ` +
          `batteries on one port must share protocol and baud rate (here ${family.id} at ${baudRate} Bd)`,
      );
    }
    const claim = address === undefined ? 'single' : String(address);
    const holder = entry.claims.get(claim);
    if (holder !== undefined) {
      throw new Error(
        address === undefined
          ? `${who}: port ${request.path} already carries ${holder}, and protocol ${family.id} has no bus address to tell two batteries apart`
          : `${who}: address ${address} on port ${request.path} is already used by ${holder}`,
      );
    }
    entry.claims.set(claim, who);
    return entry.bus;
  }
}
