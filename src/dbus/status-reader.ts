/**
 * Read-only view of the battery services on the bus, for `batterybank status` and the demo's live view.
 * Returns plain records; nothing of dbus-next leaks out.
 */
import type * as dbus from 'dbus-next';
import { errorMessage } from '../domain/errors.js';
import { BUSITEM_INTERFACE, DbusConnection, type OpenBusOptions } from './connection.js';
import { type DbusValue, fromVariant } from './values.js';

/** Every battery service name starts with this. */
export const BATTERY_SERVICE_PREFIX = 'com.victronenergy.battery.';

/** One service's values by absolute path (undefined = invalid). */
export type ItemValues = Record<string, DbusValue>;

/** One battery service as read from the bus. */
export interface StatusRecord {
  service: string;
  items: ItemValues;
  /** Set when the service could not be read (timeout, error reply). */
  error?: string;
}

/** Decode a GetItems / ItemsChanged body (a{sa{sv}}) into values; entries without Value are skipped. */
function decodeItems(body: unknown): ItemValues {
  const out: ItemValues = {};
  if (body === null || typeof body !== 'object') return out;
  for (const [path, entry] of Object.entries(body as Record<string, Record<string, dbus.Variant>>)) {
    if (entry && 'Value' in entry) out[path] = fromVariant(entry.Value);
  }
  return out;
}

/** A client connection that reads battery services. */
export class StatusReader {
  private readonly subscriptions = new Map<string, { rule: string; stop: () => void }>();

  private constructor(private readonly connection: DbusConnection) {}

  /** Open a client connection (system bus unless `busAddress`). */
  static async open(opts: OpenBusOptions = {}): Promise<StatusReader> {
    return new StatusReader(await DbusConnection.open(opts));
  }

  /** Names of every com.victronenergy.battery.* service, sorted. */
  async listBatteryServices(): Promise<string[]> {
    const reply = await this.connection.callBus('ListNames');
    const names = (reply.body[0] ?? []) as string[];
    return names.filter((n) => n.startsWith(BATTERY_SERVICE_PREFIX)).sort();
  }

  /** GetItems on `/` of one service (with the connection's call timeout). */
  async read(service: string): Promise<StatusRecord> {
    try {
      const reply = await this.connection.call({
        destination: service,
        path: '/',
        interface: BUSITEM_INTERFACE,
        member: 'GetItems',
      });
      return { service, items: decodeItems(reply.body[0]) };
    } catch (err) {
      return { service, items: {}, error: errorMessage(err) };
    }
  }

  /** Every battery service with its items; a service that does not answer carries `error`. */
  async readAll(): Promise<StatusRecord[]> {
    const services = await this.listBatteryServices();
    return Promise.all(services.map((s) => this.read(s)));
  }

  /**
   * Call `listener` with the changed values of each ItemsChanged `service` sends. One match rule per service
   * (dbus-next would leak one per handler); subscribing twice to the same service replaces the listener.
   * Returns the unsubscribe function.
   */
  async subscribe(service: string, listener: (changes: ItemValues) => void): Promise<() => Promise<void>> {
    await this.unsubscribe(service);
    const rule = `type='signal',sender='${service}',interface='${BUSITEM_INTERFACE}',member='ItemsChanged',path='/'`;
    const ownerRule = `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${service}'`;
    // ItemsChanged arrives from the owner's unique name: follow the owner so other senders are ignored.
    let owner: string | undefined;
    const stop = this.connection.onSignal((msg) => {
      if (msg.member === 'NameOwnerChanged' && msg.interface === 'org.freedesktop.DBus' && msg.body[0] === service) {
        owner = (msg.body[2] as string) || undefined;
        return;
      }
      if (msg.member !== 'ItemsChanged' || msg.interface !== BUSITEM_INTERFACE || msg.path !== '/') return;
      if (owner === undefined || msg.sender !== owner) return;
      listener(decodeItems(msg.body[0]));
    });
    try {
      await this.connection.addMatch(ownerRule);
      owner = await this.connection.getNameOwner(service);
      await this.connection.addMatch(rule);
    } catch (err) {
      stop();
      throw err;
    }
    this.subscriptions.set(service, {
      rule,
      stop: () => {
        stop();
        void this.connection.removeMatch(ownerRule).catch(() => {});
      },
    });
    return () => this.unsubscribe(service);
  }

  /** Close the connection (and with it every subscription). */
  close(): void {
    for (const s of this.subscriptions.values()) s.stop();
    this.subscriptions.clear();
    this.connection.close();
  }

  private async unsubscribe(service: string): Promise<void> {
    const sub = this.subscriptions.get(service);
    if (!sub) return;
    this.subscriptions.delete(service);
    sub.stop();
    await this.connection.removeMatch(sub.rule).catch(() => {});
  }
}

/** Open, read every battery service, close. */
export async function readBatteryStatus(opts: OpenBusOptions = {}): Promise<StatusRecord[]> {
  const reader = await StatusReader.open(opts);
  try {
    return await reader.readAll();
  } finally {
    reader.close();
  }
}

const num = (v: DbusValue, digits: number): string => (typeof v === 'number' ? v.toFixed(digits) : '-');

/**
 * A text table of battery services: service (without the com.victronenergy.battery. prefix), name (custom name,
 * else product name), connected, V, A, SoC, CVL/CCL/DCL and min/max cell voltage. Pure.
 */
export function formatStatusTable(records: readonly StatusRecord[]): string {
  if (records.length === 0) return 'no battery services on the bus';
  const header = ['SERVICE', 'NAME', 'CONN', 'V', 'A', 'SOC%', 'CVL/CCL/DCL', 'CELL MIN/MAX V'];
  const rows = records.map((r) => {
    const i = r.items;
    const service = r.service.startsWith(BATTERY_SERVICE_PREFIX)
      ? r.service.slice(BATTERY_SERVICE_PREFIX.length)
      : r.service;
    if (r.error !== undefined) return [service, `error: ${r.error}`, '', '', '', '', '', ''];
    const custom = i['/CustomName'];
    const name = typeof custom === 'string' && custom !== '' ? custom : (i['/ProductName'] ?? '-');
    const connected = i['/Connected'] === undefined ? '-' : i['/Connected'] === 1 ? 'yes' : 'no';
    return [
      service,
      String(name),
      connected,
      num(i['/Dc/0/Voltage'], 2),
      num(i['/Dc/0/Current'], 1),
      num(i['/Soc'], 0),
      `${num(i['/Info/MaxChargeVoltage'], 2)}/${num(i['/Info/MaxChargeCurrent'], 0)}/${num(i['/Info/MaxDischargeCurrent'], 0)}`,
      `${num(i['/System/MinCellVoltage'], 3)}/${num(i['/System/MaxCellVoltage'], 3)}`,
    ];
  });
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((row) => (row[c] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, c) => cell.padEnd(widths[c] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
