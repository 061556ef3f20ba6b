/**
 * The tests' second, separate D-Bus connection: plain dbus-next, none of our src/dbus code, so what it sees is
 * what any other client on the bus would see.
 */
import * as dbus from 'dbus-next';

export const BUSITEM = 'com.victronenergy.BusItem';

export type Items = Record<string, { Value: dbus.Variant; Text: dbus.Variant }>;

export class BusClient {
  private constructor(readonly bus: dbus.MessageBus) {}

  static async connect(address: string): Promise<BusClient> {
    const bus = dbus.sessionBus({ busAddress: address });
    bus.on('error', () => {}); // tests kill the daemon on purpose
    await new Promise<void>((resolve, reject) => {
      bus.once('connect', () => resolve());
      bus.once('error', reject);
    });
    return new BusClient(bus);
  }

  /** A method call; `iface: null` sends it without an interface field, as velib's VeDbusItemImport does. */
  async call(
    destination: string,
    path: string,
    member: string,
    opts: { iface?: string | null; signature?: string; body?: unknown[] } = {},
  ): Promise<dbus.Message> {
    const fields: dbus.MessageLike = {
      destination,
      path,
      member,
      signature: opts.signature ?? '',
      body: opts.body ?? [],
    };
    if (opts.iface !== null) fields.interface = opts.iface ?? BUSITEM;
    const reply = await this.bus.call(new dbus.Message(fields));
    if (!reply) throw new Error('no reply');
    return reply;
  }

  async getItems(service: string): Promise<Items> {
    return (await this.call(service, '/', 'GetItems')).body[0] as Items;
  }

  async getValue(service: string, path: string): Promise<dbus.Variant> {
    return (await this.call(service, path, 'GetValue')).body[0] as dbus.Variant;
  }

  async getText(service: string, path: string): Promise<unknown> {
    return (await this.call(service, path, 'GetText')).body[0];
  }

  async setValue(service: string, path: string, value: dbus.Variant): Promise<number> {
    return (await this.call(service, path, 'SetValue', { signature: 'v', body: [value] })).body[0] as number;
  }

  async addMatch(rule: string): Promise<void> {
    await this.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'AddMatch', {
      iface: 'org.freedesktop.DBus',
      signature: 's',
      body: [rule],
    });
  }

  async nameOwner(name: string): Promise<string | undefined> {
    try {
      const r = await this.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'GetNameOwner', {
        iface: 'org.freedesktop.DBus',
        signature: 's',
        body: [name],
      });
      return String(r.body[0]);
    } catch {
      return undefined;
    }
  }

  /** Record every signal that matches `filter` (a match rule must be added separately). */
  record(filter: (msg: dbus.Message) => boolean): dbus.Message[] {
    const seen: dbus.Message[] = [];
    this.bus.on('message', (msg: dbus.Message) => {
      if (msg.type === dbus.MessageType.SIGNAL && filter(msg)) seen.push(msg);
    });
    return seen;
  }

  /**
   * Round trip to `service`: its reply travels behind every signal it sent before, so once this resolves all
   * of them have been delivered to us.
   */
  async syncWith(service: string): Promise<void> {
    await this.call(service, '/', 'Ping', { iface: 'org.freedesktop.DBus.Peer' });
  }

  close(): void {
    this.bus.disconnect();
  }
}

/** Poll `check` until it returns true (or throw after `timeoutMs`). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Plain value of a variant: undefined for any empty array (Victron invalid). */
export function plain(v: dbus.Variant | undefined): unknown {
  if (!v) return undefined;
  return Array.isArray(v.value) && v.value.length === 0 ? undefined : v.value;
}
