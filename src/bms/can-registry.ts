/**
 * The CAN families: batteries that broadcast on a CAN bus (SocketCAN `canN`/`vcanN` or a Waveshare USB-CAN-A
 * adapter) instead of answering polls on a serial line. One CanBus per interface or adapter, shared by every
 * battery on it (a Deye rack is one bus with several packs).
 *
 *   [battery.a] can = can0 ─┐                    ┌─ CanBus(SocketCanLink can0) ─ one socket, reopened after link down
 *   [battery.b] can = can0 ─┴─ CanBusPool.bus() ─┤
 *   [battery.c] can_port = /dev/ttyUSB0 ─────────└─ CanBus(UsbCanALink /dev/ttyUSB0, bitrate)
 */
import { CanBus } from '../links/can/can-bus.js';
import type { CanLink } from '../links/can/can-frame.js';
import { SocketCanLink } from '../links/can/socketcan-link.js';
import { UsbCanALink } from '../links/can/usbcan-a-link.js';
import { BydAtto3Driver } from './byd-atto3/driver.js';
import { DeyeCanDriver } from './deye-can/driver.js';
import type { BmsDriver } from './driver.js';
import { PylonCanDriver } from './pylon-can/driver.js';

export interface CanDriverSettings {
  now: () => number;
  /** Deye: the pack index on the rack's bus; undefined = the whole rack. */
  pack?: number | undefined;
  /** Send the inverter keep-alive (0x305) ourselves: off when an inverter on the same bus already does. */
  keepAlive: boolean;
}

export interface CanFamily {
  readonly id: string;
  readonly productName: string;
  /** Takes `pack = n`. */
  readonly packs: boolean;
  createDriver(bus: CanBus, settings: CanDriverSettings): BmsDriver;
}

export const CAN_FAMILIES: readonly CanFamily[] = [
  {
    id: 'pylon-can',
    productName: 'Pylon CAN battery',
    packs: false,
    createDriver: (bus, s) => new PylonCanDriver({ bus, now: s.now, ...(s.keepAlive ? {} : { keepAliveMs: 0 }) }),
  },
  {
    id: 'deye-can',
    productName: 'Deye battery',
    packs: true,
    createDriver: (bus, s) =>
      new DeyeCanDriver({
        bus,
        now: s.now,
        ...(s.pack !== undefined ? { pack: s.pack } : {}),
        ...(s.keepAlive ? {} : { keepAliveMs: 0 }),
      }),
  },
  {
    id: 'byd-atto3',
    productName: 'BYD Atto 3 pack',
    packs: false,
    createDriver: (bus, s) => new BydAtto3Driver({ bus, now: s.now }),
  },
];

export function findCanFamily(id: string): CanFamily | undefined {
  return CAN_FAMILIES.find((f) => f.id === id);
}

/** Where a CAN battery is: a SocketCAN interface or a USB-CAN-A adapter's serial port. */
export type CanEndpoint = { kind: 'socketcan'; iface: string } | { kind: 'usbcan-a'; path: string; bitrate: number };

/** One CanBus per interface or adapter, however many batteries use it. */
export class CanBusPool {
  private readonly buses = new Map<string, CanBus>();

  /** `createLink` replaces the real links (replay). */
  constructor(private readonly createLink?: ((endpoint: CanEndpoint) => CanLink) | undefined) {}

  bus(endpoint: CanEndpoint): CanBus {
    const key = endpoint.kind === 'socketcan' ? `can:${endpoint.iface}` : `usb:${endpoint.path}`;
    let bus = this.buses.get(key);
    if (!bus) {
      const link =
        this.createLink?.(endpoint) ??
        (endpoint.kind === 'socketcan'
          ? new SocketCanLink({ iface: endpoint.iface })
          : new UsbCanALink({ path: endpoint.path, bitrate: endpoint.bitrate }));
      bus = new CanBus(link);
      this.buses.set(key, bus);
    }
    return bus;
  }
}
