/**
 * One battery's driver from its config, through the family registries and the same pools as the composition root
 * (one bus per serial port, one CanBus per CAN interface, one BLE link per adapter): what `capture` (real links)
 * and `replay` (replay links) need without the D-Bus service. The links come from the composition root's
 * LinkFactories; a kind left out gets its real link.
 */
import { BleLinkPool, findBleFamily } from '../bms/ble-registry.js';
import { CanBusPool, findCanFamily } from '../bms/can-registry.js';
import type { BmsDriver } from '../bms/driver.js';
import { findNetworkFamily } from '../bms/network-registry.js';
import { BusPool, findFamily } from '../bms/registry.js';
import type { BatteryConfig } from '../config.js';
import { SerialLink } from '../links/serial-link.js';
import type { LinkFactories } from '../main.js';

export class DriverFactory {
  private readonly serial: BusPool;
  private readonly can: CanBusPool;
  private readonly ble: BleLinkPool;

  constructor(
    private readonly links: LinkFactories = {},
    private readonly now: () => number = Date.now,
  ) {
    this.serial = new BusPool(links.serial ?? ((port) => new SerialLink(port)));
    this.can = new CanBusPool(links.can);
    this.ble = new BleLinkPool(undefined, links.ble);
  }

  /** The driver of `cfg` running `family` (the detected one for `protocol = auto`). Throws for an unknown family. */
  create(cfg: BatteryConfig, family: string): BmsDriver {
    const now = this.now;
    if (cfg.net) {
      const f = findNetworkFamily(family);
      if (!f) throw new Error(`${cfg.id}: no network family ${family}`);
      return f.createDriver(cfg.net, {
        now,
        staleAfterMs: cfg.staleAfterMs,
        options: cfg.options,
        ...(this.links.network ? { link: this.links.network(cfg.net) } : {}),
      });
    }
    if (cfg.ble) {
      const f = findBleFamily(family);
      if (!f) throw new Error(`${cfg.id}: no Bluetooth family ${family}`);
      return f.createDriver(this.ble.link(cfg.ble.adapter), {
        address: cfg.ble.mac,
        mode: cfg.ble.mode,
        pollIntervalMs: cfg.pollIntervalMs,
        replyTimeoutMs: cfg.replyTimeoutMs,
        staleAfterMs: cfg.staleAfterMs,
        now,
      });
    }
    if (cfg.can) {
      const f = findCanFamily(family);
      if (!f) throw new Error(`${cfg.id}: no CAN family ${family}`);
      return f.createDriver(this.can.bus(cfg.can.endpoint), { now, pack: cfg.can.pack, keepAlive: cfg.can.keepAlive });
    }
    const f = findFamily(family);
    if (!f) throw new Error(`${cfg.id}: no serial family ${family}`);
    const bus = this.serial.bus(f, {
      path: cfg.port,
      ...(cfg.baudRate !== undefined ? { baudRate: cfg.baudRate } : {}),
      ...(cfg.address !== undefined ? { address: cfg.address } : {}),
      owner: `[battery.${cfg.id}]`,
    });
    return f.createDriver(bus, {
      address: cfg.address,
      pollIntervalMs: cfg.pollIntervalMs,
      replyTimeoutMs: cfg.replyTimeoutMs,
      now,
      options: cfg.options,
    });
  }

  /** Close the Bluetooth adapters opened (drivers close their own links and buses when stopped). */
  close(): Promise<void> {
    return this.ble.close();
  }
}
