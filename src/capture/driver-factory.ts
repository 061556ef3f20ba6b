/**
 * One battery's driver from its config and a way to its links, through the family registries: what `capture`
 * (real links) and `replay` (replay links) need without the D-Bus service of the composition root. Serial
 * batteries on one port share one bus and CAN batteries on one interface one CanBus, as in the service.
 */
import { findBleFamily } from '../bms/ble-registry.js';

import { findCanFamily } from '../bms/can-registry.js';
import type { BmsDriver } from '../bms/driver.js';
import { findNetworkFamily } from '../bms/network-registry.js';
import { findFamily } from '../bms/registry.js';
import type { BatteryConfig } from '../config.js';
import type { BleLink } from '../links/ble/ble-link.js';
import { CanBus } from '../links/can/can-bus.js';
import type { CanLink } from '../links/can/can-frame.js';
import type { Link } from '../links/link.js';
import type { SerialBus } from '../links/serial-bus.js';
import type { ConsoleLink } from '../links/websocket-link.js';

export interface BatteryLinks {
  serial(cfg: BatteryConfig): Link<Uint8Array>;
  can(cfg: BatteryConfig): CanLink;
  ble(cfg: BatteryConfig): BleLink;
  /** Network batteries; without it they get their real link (a websocket to the endpoint). */
  net?(cfg: BatteryConfig): ConsoleLink;
}

/** Throws Error for a family the registries do not know. */
export function createDriverOver(
  cfg: BatteryConfig,
  family: string,
  links: BatteryLinks,
  now: () => number,
  buses: Map<string, SerialBus | CanBus>,
): BmsDriver {
  if (cfg.net) {
    const f = findNetworkFamily(family);
    if (!f) throw new Error(`${cfg.id}: no network family ${family}`);
    return f.createDriver(cfg.net, {
      now,
      staleAfterMs: cfg.staleAfterMs,
      options: cfg.options,
      ...(links.net ? { link: links.net(cfg) } : {}),
    });
  }
  if (cfg.ble) {
    const f = findBleFamily(family);
    if (!f) throw new Error(`${cfg.id}: no Bluetooth family ${family}`);
    return f.createDriver(links.ble(cfg), {
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
    const e = cfg.can.endpoint;
    const key = e.kind === 'socketcan' ? `can:${e.iface}` : `can:${e.path}`;
    let bus = buses.get(key) as CanBus | undefined;
    if (!bus) {
      bus = new CanBus(links.can(cfg));
      buses.set(key, bus);
    }
    return f.createDriver(bus, { now, pack: cfg.can.pack, keepAlive: cfg.can.keepAlive });
  }
  const f = findFamily(family);
  if (!f) throw new Error(`${cfg.id}: no serial family ${family}`);
  const key = `serial:${cfg.port}`;
  let bus = buses.get(key) as SerialBus | undefined;
  if (!bus) {
    bus = f.createBus(links.serial(cfg));
    buses.set(key, bus);
  }
  return f.createDriver(bus, {
    address: cfg.address,
    pollIntervalMs: cfg.pollIntervalMs,
    replyTimeoutMs: cfg.replyTimeoutMs,
    now,
    options: cfg.options,
  });
}
