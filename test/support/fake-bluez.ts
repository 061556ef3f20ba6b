/**
 * A BlueZ stand-in on a private bus: owns org.bluez and serves the part of its D-Bus API our BluezBleLink uses
 * (ObjectManager, Adapter1, Device1, GattService1, GattCharacteristic1, Properties), with simulated BMSes behind
 * the devices. A device appears when discovery starts; Connect resolves its services; writes go to the simulator,
 * whose replies come back as Value PropertiesChanged in 20-byte pieces, like bluetoothd relaying notifications.
 */
import * as dbus from 'dbus-next';
import type { BleSimDevice } from '../../src/sim/ble-peripheral.js';

const OM = 'org.freedesktop.DBus.ObjectManager';
const PROPS = 'org.freedesktop.DBus.Properties';

type Props = Record<string, dbus.Variant>;

interface FakeDevice {
  path: string;
  props: Props;
  service: string;
  notify: string;
  write: string;
  sim: BleSimDevice;
  listeners: ((chunk: Uint8Array) => void)[];
  notifying: boolean;
  visible: boolean;
  /** Drop everything silently (a vanished peer). */
  vanished: boolean;
}

export class FakeBluez {
  readonly adapterPath = '/org/bluez/hci0';
  private readonly devices = new Map<string, FakeDevice>();
  private readonly adapter: Props = {
    Address: new dbus.Variant('s', '00:11:22:33:44:55'),
    Powered: new dbus.Variant('b', false),
    Discovering: new dbus.Variant('b', false),
  };
  /** Method calls received, `Interface.Member` each. */
  readonly calls: string[] = [];

  private constructor(private readonly bus: dbus.MessageBus) {}

  static async start(busAddress: string): Promise<FakeBluez> {
    const bus = dbus.sessionBus({ busAddress });
    const fake = new FakeBluez(bus);
    bus.addMethodHandler((msg: dbus.Message) => fake.handle(msg));
    await bus.requestName('org.bluez', dbus.NameFlag.DO_NOT_QUEUE);
    return fake;
  }

  /** A BMS in range (it shows up at the next discovery). */
  addDevice(opts: {
    address: string;
    name: string;
    rssi: number;
    profile: { service: string; notify: string; write: string };
    sim: BleSimDevice;
  }): void {
    const path = `${this.adapterPath}/dev_${opts.address.toUpperCase().replace(/:/g, '_')}`;
    const full = (u: string) => `0000${u}-0000-1000-8000-00805f9b34fb`;
    const dev: FakeDevice = {
      path,
      props: {
        Address: new dbus.Variant('s', opts.address.toUpperCase()),
        Name: new dbus.Variant('s', opts.name),
        RSSI: new dbus.Variant('n', opts.rssi),
        UUIDs: new dbus.Variant('as', [full(opts.profile.service)]),
        Connected: new dbus.Variant('b', false),
        ServicesResolved: new dbus.Variant('b', false),
      },
      service: full(opts.profile.service),
      notify: full(opts.profile.notify),
      write: full(opts.profile.write),
      sim: opts.sim,
      listeners: [],
      notifying: false,
      visible: false,
      vanished: false,
    };
    this.devices.set(path, dev);
  }

  /** The device drops the connection (BlueZ reports Connected = false). */
  remoteDisconnect(address: string): void {
    const dev = this.byAddress(address);
    this.setConnected(dev, false);
  }

  /** The device goes silent without a word (no PropertiesChanged ever again). */
  vanish(address: string): void {
    this.byAddress(address).vanished = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const d of this.devices.values()) d.sim.detach();
    this.bus.disconnect();
  }

  private stopped = false;

  /** Send unless stopped (messages still buffered after disconnect() must not throw). */
  private post(msg: dbus.Message): void {
    if (this.stopped) return;
    try {
      this.bus.send(msg);
    } catch {
      // the bus went away under us
    }
  }

  private byAddress(address: string): FakeDevice {
    for (const d of this.devices.values())
      if (String(d.props.Address?.value).toLowerCase() === address.toLowerCase()) return d;
    throw new Error(`no device ${address}`);
  }

  private signal(path: string, iface: string, name: string, signature: string, body: unknown[]): void {
    this.post(dbus.Message.newSignal(path, iface, name, signature, body));
  }

  private changed(path: string, iface: string, props: Props): void {
    this.signal(path, PROPS, 'PropertiesChanged', 'sa{sv}as', [iface, props, []]);
  }

  private gatt(dev: FakeDevice): Record<string, Record<string, Props>> {
    const svc = `${dev.path}/service000a`;
    const out: Record<string, Record<string, Props>> = {
      [svc]: {
        'org.bluez.GattService1': { UUID: new dbus.Variant('s', dev.service), Primary: new dbus.Variant('b', true) },
      },
    };
    const flags = dev.notify === dev.write ? ['notify', 'write', 'write-without-response'] : ['notify'];
    out[`${svc}/char000b`] = {
      'org.bluez.GattCharacteristic1': {
        UUID: new dbus.Variant('s', dev.notify),
        Flags: new dbus.Variant('as', flags),
      },
    };
    if (dev.notify !== dev.write) {
      out[`${svc}/char000e`] = {
        'org.bluez.GattCharacteristic1': {
          UUID: new dbus.Variant('s', dev.write),
          Flags: new dbus.Variant('as', ['write', 'write-without-response']),
        },
      };
    }
    return out;
  }

  private managed(): Record<string, Record<string, Props>> {
    const out: Record<string, Record<string, Props>> = { [this.adapterPath]: { 'org.bluez.Adapter1': this.adapter } };
    for (const d of this.devices.values()) {
      if (!d.visible) continue;
      out[d.path] = { 'org.bluez.Device1': d.props };
      if (d.props.ServicesResolved?.value === true) Object.assign(out, this.gatt(d));
    }
    return out;
  }

  private setConnected(dev: FakeDevice, on: boolean): void {
    dev.props.Connected = new dbus.Variant('b', on);
    dev.props.ServicesResolved = new dbus.Variant('b', on);
    if (!on) {
      dev.notifying = false;
      dev.sim.detach();
    }
    this.changed(dev.path, 'org.bluez.Device1', {
      Connected: dev.props.Connected,
      ...(on ? {} : { ServicesResolved: dev.props.ServicesResolved }),
    });
    if (on) {
      for (const [p, ifaces] of Object.entries(this.gatt(dev)))
        this.signal('/', OM, 'InterfacesAdded', 'oa{sa{sv}}', [p, ifaces]);
      dev.listeners = [];
      dev.sim.attach({
        send: (bytes) => {
          if (!dev.notifying || dev.vanished) return;
          for (let i = 0; i < bytes.length; i += 20) {
            this.changed(`${dev.path}/service000a/char000b`, 'org.bluez.GattCharacteristic1', {
              Value: new dbus.Variant('ay', Buffer.from(bytes.subarray(i, i + 20))),
            });
          }
        },
        onData: (l) => {
          dev.listeners.push(l);
        },
      });
      this.changed(dev.path, 'org.bluez.Device1', { ServicesResolved: dev.props.ServicesResolved });
    }
  }

  private handle(msg: dbus.Message): boolean {
    if (msg.type !== dbus.MessageType.METHOD_CALL) return false;
    if (this.stopped) return true;
    this.calls.push(`${msg.interface}.${msg.member}`);
    const reply = (signature = '', body: unknown[] = []) =>
      this.post(dbus.Message.newMethodReturn(msg, signature, body));
    const fail = (name: string, text: string) =>
      this.post(dbus.Message.newError(msg as unknown as string, `org.bluez.Error.${name}`, text));
    const dev = this.devices.get(msg.path);
    const charDev = [...this.devices.values()].find((d) => msg.path.startsWith(`${d.path}/`));
    switch (`${msg.interface}.${msg.member}`) {
      case `${OM}.GetManagedObjects`:
        reply('a{oa{sa{sv}}}', [this.managed()]);
        return true;
      case `${PROPS}.Get`: {
        const [iface, name] = msg.body as [string, string];
        const props = msg.path === this.adapterPath ? this.adapter : dev?.props;
        const v = iface.startsWith('org.bluez.') ? props?.[name] : undefined;
        if (v === undefined) fail('DoesNotExist', `${iface}.${name}`);
        else reply('v', [v]);
        return true;
      }
      case `${PROPS}.Set`: {
        const [, name, v] = msg.body as [string, string, dbus.Variant];
        if (msg.path === this.adapterPath && name === 'Powered') {
          this.adapter.Powered = new dbus.Variant('b', v.value === true);
          this.changed(this.adapterPath, 'org.bluez.Adapter1', { Powered: this.adapter.Powered });
        }
        reply();
        return true;
      }
      case 'org.bluez.Adapter1.SetDiscoveryFilter':
      case 'org.bluez.Adapter1.StopDiscovery':
        reply();
        return true;
      case 'org.bluez.Adapter1.StartDiscovery':
        reply();
        for (const d of this.devices.values()) {
          if (d.vanished) continue;
          if (!d.visible) {
            d.visible = true;
            this.signal('/', OM, 'InterfacesAdded', 'oa{sa{sv}}', [d.path, { 'org.bluez.Device1': d.props }]);
          } else {
            this.changed(d.path, 'org.bluez.Device1', { RSSI: d.props.RSSI as dbus.Variant });
          }
        }
        return true;
      case 'org.bluez.Device1.Connect':
        if (!dev || dev.vanished) fail('Failed', 'le-connection-abort-by-local');
        else {
          reply();
          setTimeout(() => this.setConnected(dev, true), 5);
        }
        return true;
      case 'org.bluez.Device1.Disconnect':
        reply();
        if (dev?.props.Connected?.value === true) this.setConnected(dev, false);
        return true;
      case 'org.bluez.GattCharacteristic1.StartNotify':
        if (charDev) charDev.notifying = true;
        reply();
        return true;
      case 'org.bluez.GattCharacteristic1.WriteValue': {
        if (charDev?.props.Connected?.value !== true) {
          fail('NotConnected', 'Not connected');
          return true;
        }
        reply();
        const data = new Uint8Array(msg.body[0] as Buffer);
        if (charDev && !charDev.vanished) for (const l of charDev.listeners) l(data);
        return true;
      }
      default:
        return false;
    }
  }
}
