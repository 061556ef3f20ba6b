/**
 * The Bluetooth LE families: the same protocols as over serial, carried by a BleLink (BlueZ over D-Bus by
 * default, noble for a dedicated adapter or a UART HCI dongle). One BleLink per adapter, shared by every
 * battery on it; its AdapterGate keeps to one connection attempt at a time.
 */
import { BluezBleLink } from '../dbus/ble-bluez.js';
import type { BleMode } from '../links/ble/ble-byte-link.js';
import type { BleLink } from '../links/ble/ble-link.js';
import { NobleBleLink } from '../links/ble/noble-link.js';
import { DalyBleDriver } from './daly/ble-driver.js';
import type { BmsDriver } from './driver.js';
import { JbdBleDriver } from './jbd/ble-driver.js';
import { JkBleDriver } from './jk-ble/driver.js';

export interface BleDriverSettings {
  address: string;
  mode: BleMode;
  pollIntervalMs: number;
  replyTimeoutMs: number;
  staleAfterMs: number;
  now: () => number;
}

export interface BleFamily {
  /** `protocol =` value (jbd and daly are BLE when the section has `mac`). */
  readonly id: string;
  readonly productName: string;
  createDriver(ble: BleLink, s: BleDriverSettings): BmsDriver;
}

const common = (ble: BleLink, s: BleDriverSettings) => ({
  ble,
  address: s.address,
  mode: s.mode,
  now: s.now,
  // A vanished peer is never reported by the stack: our own watchdog, well inside stale_after.
  noDataTimeoutMs: Math.max(3000, Math.min(20_000, s.staleAfterMs)),
});

export const BLE_FAMILIES: readonly BleFamily[] = [
  {
    id: 'jbd',
    productName: 'JBD BMS',
    createDriver: (ble, s) =>
      new JbdBleDriver({ ...common(ble, s), pollIntervalMs: s.pollIntervalMs, replyTimeoutMs: s.replyTimeoutMs }),
  },
  {
    id: 'daly',
    productName: 'Daly BMS',
    createDriver: (ble, s) =>
      new DalyBleDriver({ ...common(ble, s), pollIntervalMs: s.pollIntervalMs, replyTimeoutMs: s.replyTimeoutMs }),
  },
  { id: 'jk-ble', productName: 'JK BMS', createDriver: (ble, s) => new JkBleDriver(common(ble, s)) },
];

export function findBleFamily(id: string): BleFamily | undefined {
  return BLE_FAMILIES.find((f) => f.id === id);
}

/** Which adapter, through which stack. */
export interface BleAdapter {
  backend: 'bluez' | 'noble';
  /** `hci0`, … */
  adapter: string;
  /** noble over a UART HCI port instead of the kernel adapter. */
  hciUart?: string | undefined;
}

export class BleLinkPool {
  private readonly links = new Map<string, BleLink>();

  /** `createLink` replaces the real adapters (replay). */
  constructor(
    private readonly busAddress?: string,
    private readonly createLink?: ((adapter: BleAdapter) => BleLink) | undefined,
  ) {}

  link(a: BleAdapter): BleLink {
    const key = `${a.backend}:${a.hciUart ?? a.adapter}`;
    let link = this.links.get(key);
    if (!link) {
      if (this.createLink) link = this.createLink(a);
      else if (a.backend === 'noble') {
        const id = Number(/^hci(\d+)$/.exec(a.adapter)?.[1] ?? 0);
        link = new NobleBleLink(a.hciUart ? { uartPort: a.hciUart } : { deviceId: id });
      } else {
        link = new BluezBleLink({ adapter: a.adapter, ...(this.busAddress ? { busAddress: this.busAddress } : {}) });
      }
      this.links.set(key, link);
    }
    return link;
  }

  /** Close every adapter link this pool opened. Never rejects. */
  async close(): Promise<void> {
    const links = [...this.links.values()];
    this.links.clear();
    await Promise.all(links.map((l) => l.close().catch(() => undefined)));
  }
}
