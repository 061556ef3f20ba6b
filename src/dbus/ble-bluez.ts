/**
 * BleLink over BlueZ's D-Bus API (org.bluez): the production default on Venus OS (DECISIONS.md D5) — no native
 * code, and it coexists with bluetoothd and Venus' own Bluetooth users. Low-level dbus-next calls (no
 * introspection): Adapter1 (SetDiscoveryFilter, StartDiscovery, StopDiscovery), Device1 (Connect, Disconnect,
 * Connected, ServicesResolved), GattService1 / GattCharacteristic1 (UUID, Flags, StartNotify, WriteValue, Value),
 * ObjectManager (GetManagedObjects, InterfacesAdded) and PropertiesChanged.
 */
import * as dbus from 'dbus-next';
import { errorMessage, LinkError } from '../domain/errors.js';
import {
  type BleAdvertisement,
  type BleCharacteristicInfo,
  type BleEvent,
  type BleLink,
  type BlePeer,
  normalizeAddress,
  normalizeUuid,
} from '../links/ble/ble-link.js';

const BLUEZ = 'org.bluez';
const ADAPTER = 'org.bluez.Adapter1';
const DEVICE = 'org.bluez.Device1';
const SERVICE = 'org.bluez.GattService1';
const CHAR = 'org.bluez.GattCharacteristic1';
const PROPS = 'org.freedesktop.DBus.Properties';
const OBJECT_MANAGER = 'org.freedesktop.DBus.ObjectManager';

export interface BluezOptions {
  /** Adapter name (default hci0). */
  adapter?: string | undefined;
  /** Bus address (tests); default: the system bus. */
  busAddress?: string | undefined;
}

type Props = Record<string, dbus.Variant>;
type Managed = Record<string, Record<string, Props>>;

function value<T>(props: Props | undefined, key: string): T | undefined {
  return props?.[key]?.value as T | undefined;
}

/** `/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF` */
export function devicePath(adapter: string, address: string): string {
  return `/org/bluez/${adapter}/dev_${normalizeAddress(address).toUpperCase().replace(/:/g, '_')}`;
}

export class BluezBleLink implements BleLink {
  readonly description: string;
  readonly adapter: string;
  private readonly adapterPath: string;
  private readonly busAddress: string | undefined;
  private bus: dbus.MessageBus | undefined;
  private readonly eventListeners: ((e: BleEvent) => void)[] = [];
  private readonly signalListeners = new Set<(msg: dbus.Message) => void>();
  private scanners = 0;
  private closed = false;

  constructor(opts: BluezOptions = {}) {
    this.adapter = opts.adapter ?? 'hci0';
    this.adapterPath = `/org/bluez/${this.adapter}`;
    this.busAddress = opts.busAddress;
    this.description = `BLE bluez ${this.adapter}`;
  }

  onEvent(listener: (event: BleEvent) => void): void {
    this.eventListeners.push(listener);
  }

  private connection(): dbus.MessageBus {
    if (this.closed) throw new LinkError(`${this.description} is closed`);
    if (!this.bus) {
      const bus = this.busAddress ? dbus.sessionBus({ busAddress: this.busAddress }) : dbus.systemBus();
      bus.on('error', (e: unknown) => this.emit('error', `${this.description}: D-Bus: ${errorMessage(e)}`));
      bus.on('message', (msg: dbus.Message) => {
        if (msg.type !== dbus.MessageType.SIGNAL) return;
        for (const l of this.signalListeners) {
          try {
            l(msg);
          } catch {
            // a listener's error is not the bus's
          }
        }
      });
      this.bus = bus;
      void this.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'AddMatch', 's', [
        `type='signal',sender='${BLUEZ}'`,
      ]).catch((e) => this.emit('warn', `${this.description}: AddMatch failed: ${errorMessage(e)}`));
    }
    return this.bus;
  }

  /** One method call; rejects with a LinkError carrying BlueZ's error. */
  async call(destination: string, path: string, iface: string, member: string, signature = '', body: unknown[] = []) {
    const bus = this.connection();
    try {
      const reply = await bus.call(new dbus.Message({ destination, path, interface: iface, member, signature, body }));
      return reply?.body ?? [];
    } catch (e) {
      const name = (e as { type?: string }).type;
      throw new LinkError(`${member} on ${path}: ${name ? `${name}: ` : ''}${errorMessage(e)}`);
    }
  }

  private bluez(path: string, iface: string, member: string, signature = '', body: unknown[] = []) {
    return this.call(BLUEZ, path, iface, member, signature, body);
  }

  /** Listen to bluez signals; returns the unsubscribe function. */
  listen(listener: (msg: dbus.Message) => void): () => void {
    if (this.closed) return () => undefined;
    this.connection();
    this.signalListeners.add(listener);
    return () => this.signalListeners.delete(listener);
  }

  async managedObjects(): Promise<Managed> {
    const [objects] = await this.bluez('/', OBJECT_MANAGER, 'GetManagedObjects');
    return (objects ?? {}) as Managed;
  }

  async powerOn(timeoutMs = 10_000): Promise<void> {
    const [powered] = await this.bluez(this.adapterPath, PROPS, 'Get', 'ss', [ADAPTER, 'Powered']);
    if ((powered as dbus.Variant | undefined)?.value === true) return;
    await this.bluez(this.adapterPath, PROPS, 'Set', 'ssv', [ADAPTER, 'Powered', new dbus.Variant('b', true)]);
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const [p] = await this.bluez(this.adapterPath, PROPS, 'Get', 'ss', [ADAPTER, 'Powered']);
      if ((p as dbus.Variant | undefined)?.value === true) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new LinkError(`${this.description}: adapter not powered on`);
  }

  private async startDiscovery(): Promise<void> {
    this.scanners++;
    if (this.scanners > 1) return;
    await this.bluez(this.adapterPath, ADAPTER, 'SetDiscoveryFilter', 'a{sv}', [
      { Transport: new dbus.Variant('s', 'le'), DuplicateData: new dbus.Variant('b', true) },
    ]).catch(() => undefined);
    await this.bluez(this.adapterPath, ADAPTER, 'StartDiscovery').catch((e: unknown) => {
      // InProgress: someone else (Venus) is discovering already — that serves us as well.
      if (!/InProgress/.test(errorMessage(e))) throw e;
    });
  }

  private async stopDiscovery(): Promise<void> {
    this.scanners = Math.max(0, this.scanners - 1);
    if (this.scanners === 0) await this.bluez(this.adapterPath, ADAPTER, 'StopDiscovery').catch(() => undefined);
  }

  private advertisement(path: string, props: Props): BleAdvertisement | undefined {
    if (!path.startsWith(`${this.adapterPath}/`)) return undefined;
    const address = value<string>(props, 'Address');
    if (!address) return undefined;
    const mfr = value<Record<number, dbus.Variant>>(props, 'ManufacturerData');
    const first = mfr ? Object.entries(mfr)[0] : undefined;
    let manufacturerData: Uint8Array | undefined;
    if (first) {
      const id = Number(first[0]);
      const data = first[1].value as Uint8Array;
      manufacturerData = Uint8Array.from([id & 0xff, id >> 8, ...data]);
    }
    return {
      address: address.toLowerCase(),
      name: value<string>(props, 'Name') ?? '',
      rssi: value<number>(props, 'RSSI') ?? -127,
      serviceUuids: (value<string[]>(props, 'UUIDs') ?? []).map(normalizeUuid),
      ...(manufacturerData ? { manufacturerData } : {}),
      connectable: true,
    };
  }

  async scan(
    opts: { durationMs: number; serviceUuids?: readonly string[] | undefined },
    onDevice?: (adv: BleAdvertisement) => void,
  ): Promise<BleAdvertisement[]> {
    await this.powerOn();
    const devices = new Map<string, Props>();
    const seen = new Map<string, BleAdvertisement>();
    const update = (path: string, props: Props) => {
      const merged = { ...(devices.get(path) ?? {}), ...props };
      devices.set(path, merged);
      const adv = this.advertisement(path, merged);
      if (!adv || value<number>(merged, 'RSSI') === undefined) return;
      seen.set(adv.address, adv);
      try {
        onDevice?.(adv);
      } catch {
        // a consumer's error is not a scan error
      }
    };
    const stop = this.listen((msg) => {
      if (msg.member === 'InterfacesAdded' && msg.interface === OBJECT_MANAGER) {
        const [path, ifaces] = msg.body as [string, Record<string, Props>];
        if (ifaces[DEVICE]) update(path, ifaces[DEVICE]);
      } else if (msg.member === 'PropertiesChanged' && msg.interface === PROPS && msg.body[0] === DEVICE) {
        if (devices.has(msg.path)) update(msg.path, msg.body[1] as Props);
      }
    });
    try {
      for (const [path, ifaces] of Object.entries(await this.managedObjects())) {
        if (ifaces[DEVICE]) devices.set(path, ifaces[DEVICE]);
      }
      await this.startDiscovery();
      await new Promise((r) => setTimeout(r, opts.durationMs));
    } finally {
      stop();
      await this.stopDiscovery();
    }
    const filter = (opts.serviceUuids ?? []).map(normalizeUuid);
    const all = [...seen.values()];
    return filter.length === 0 ? all : all.filter((a) => a.serviceUuids.some((u) => filter.includes(u)));
  }

  async connect(address: string, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<BlePeer> {
    const addr = normalizeAddress(address);
    const path = devicePath(this.adapter, addr);
    const deadline = Date.now() + opts.timeoutMs;
    const { signal } = opts;
    let stopWaiting: (() => void) | undefined;
    const cancelled = new Promise<never>((_, reject) => {
      const t = setTimeout(
        () => reject(new LinkError(`connect to ${addr} timed out after ${opts.timeoutMs} ms`)),
        opts.timeoutMs,
      );
      const onAbort = () => reject(new LinkError(`connect to ${addr} cancelled`));
      signal?.addEventListener('abort', onAbort, { once: true });
      stopWaiting = () => {
        clearTimeout(t);
        signal?.removeEventListener('abort', onAbort);
      };
    });
    cancelled.catch(() => undefined);
    let settled = false;
    try {
      await Promise.race([this.establish(addr, path, deadline, () => settled), cancelled]);
    } catch (e) {
      // Abandon a half-made connection (BlueZ keeps trying otherwise).
      void this.bluez(path, DEVICE, 'Disconnect').catch(() => undefined);
      throw e instanceof LinkError ? e : new LinkError(`connect to ${addr} failed: ${errorMessage(e)}`);
    } finally {
      settled = true;
      stopWaiting?.();
    }
    return new BluezPeer(this, addr, path);
  }

  private async establish(addr: string, path: string, deadline: number, abandoned: () => boolean): Promise<void> {
    await this.powerOn();
    let objects = await this.managedObjects();
    if (!objects[path]?.[DEVICE]) {
      // BlueZ only knows devices it has seen advertising: discover until it appears.
      await this.startDiscovery();
      try {
        while (!objects[path]?.[DEVICE]) {
          if (Date.now() > deadline) throw new LinkError(`${addr} not found (not advertising, or out of range)`);
          await new Promise((r) => setTimeout(r, 200));
          objects = await this.managedObjects();
        }
      } finally {
        await this.stopDiscovery();
      }
    }
    let stop: () => void = () => undefined;
    const resolved = new Promise<void>((resolve) => {
      stop = this.listen((msg) => {
        if (msg.path === path && msg.member === 'PropertiesChanged' && msg.body[0] === DEVICE) {
          if (value<boolean>(msg.body[1] as Props, 'ServicesResolved') === true) resolve();
        }
      });
    });
    try {
      await this.bluez(path, DEVICE, 'Connect');
      const [already] = await this.bluez(path, PROPS, 'Get', 'ss', [DEVICE, 'ServicesResolved']);
      if ((already as dbus.Variant | undefined)?.value !== true) await resolved;
    } finally {
      stop();
    }
    // The caller gave up (timeout, cancel) while BlueZ was still connecting: do not leave the device connected.
    if (abandoned()) await this.bluez(path, DEVICE, 'Disconnect').catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signalListeners.clear();
    this.bus?.disconnect();
    this.bus = undefined;
  }

  private emit(level: BleEvent['level'], message: string): void {
    for (const l of this.eventListeners) {
      try {
        l({ level, message });
      } catch {
        // logging must not disturb the link
      }
    }
  }
}

class BluezPeer implements BlePeer {
  private readonly chars = new Map<string, { path: string; flags: string[] }>();
  private readonly disconnectListeners: ((reason: string) => void)[] = [];
  private readonly unlisten: (() => void)[] = [];
  private ended = false;

  constructor(
    private readonly link: BluezBleLink,
    readonly address: string,
    private readonly path: string,
  ) {
    this.unlisten.push(
      link.listen((msg) => {
        if (msg.path !== path || msg.member !== 'PropertiesChanged' || msg.body[0] !== DEVICE) return;
        if (value<boolean>(msg.body[1] as Props, 'Connected') === false) this.end('disconnected (BlueZ)');
      }),
    );
  }

  onDisconnect(listener: (reason: string) => void): void {
    this.disconnectListeners.push(listener);
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    for (const u of this.unlisten) u();
    for (const l of this.disconnectListeners) {
      try {
        l(reason);
      } catch {
        // listeners never throw into the bus
      }
    }
  }

  async discover(service: string, characteristics: readonly string[]): Promise<BleCharacteristicInfo[]> {
    const svc = normalizeUuid(service);
    const wanted = characteristics.map(normalizeUuid);
    const objects = await this.link.managedObjects();
    const servicePaths = Object.entries(objects)
      .filter(
        ([p, i]) => p.startsWith(`${this.path}/`) && normalizeUuid(value<string>(i[SERVICE], 'UUID') ?? '') === svc,
      )
      .map(([p]) => p);
    if (servicePaths.length === 0) throw new LinkError(`${this.address}: no GATT service ${svc}`);
    const out: BleCharacteristicInfo[] = [];
    for (const [p, i] of Object.entries(objects)) {
      const c = i[CHAR];
      if (!c || !servicePaths.some((s) => p.startsWith(`${s}/`))) continue;
      const uuid = normalizeUuid(value<string>(c, 'UUID') ?? '');
      if (!wanted.includes(uuid)) continue;
      const flags = (value<string[]>(c, 'Flags') ?? []).map((f) =>
        f === 'write-without-response' ? 'writeWithoutResponse' : f,
      );
      this.chars.set(uuid, { path: p, flags });
      out.push({ uuid, properties: flags });
    }
    const missing = wanted.filter((u) => !this.chars.has(u));
    if (missing.length > 0)
      throw new LinkError(`${this.address}: service ${svc} lacks characteristic(s) ${missing.join(', ')}`);
    return out;
  }

  private char(uuid: string): string {
    const c = this.chars.get(normalizeUuid(uuid));
    if (!c) throw new LinkError(`${this.address}: characteristic ${uuid} not discovered`);
    return c.path;
  }

  async subscribe(characteristic: string, listener: (value: Uint8Array) => void): Promise<void> {
    const path = this.char(characteristic);
    this.unlisten.push(
      this.link.listen((msg) => {
        if (msg.path !== path || msg.member !== 'PropertiesChanged' || msg.body[0] !== CHAR) return;
        const v = value<Uint8Array>(msg.body[1] as Props, 'Value');
        if (v !== undefined && !this.ended) {
          try {
            listener(new Uint8Array(v));
          } catch {
            // listeners never throw into the bus
          }
        }
      }),
    );
    await this.link.call(BLUEZ, path, CHAR, 'StartNotify');
  }

  async write(characteristic: string, data: Uint8Array, withoutResponse: boolean): Promise<void> {
    if (this.ended) throw new LinkError(`${this.address}: not connected`);
    const path = this.char(characteristic);
    await this.link.call(BLUEZ, path, CHAR, 'WriteValue', 'aya{sv}', [
      Buffer.from(data),
      { type: new dbus.Variant('s', withoutResponse ? 'command' : 'request') },
    ]);
  }

  async disconnect(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    for (const u of this.unlisten) u();
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A vanished peer or a busy bluetoothd must not hold a stop for long.
    await Promise.race([
      this.link.call(BLUEZ, this.path, DEVICE, 'Disconnect').catch(() => undefined),
      new Promise((r) => {
        timer = setTimeout(r, 2000);
      }),
    ]);
    clearTimeout(timer);
  }
}
