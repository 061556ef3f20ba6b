/**
 * What every BLE BMS driver takes: the adapter, the address and the connection manager's knobs.
 * Config keys (described for the CLI/config wiring): `mac`, `adapter`, `ble_backend`, `ble_mode`, `ble_hci_uart`.
 */
import type { AdapterGate } from './adapter-gate.js';
import { BleByteLink, type BleMode } from './ble-byte-link.js';
import type { BleEvent, BleGattProfile, BleLink } from './ble-link.js';

export interface BleDriverOptions {
  /** The adapter (a NobleBleLink or another backend). */
  ble: BleLink;
  /** Bluetooth address of the BMS. */
  address: string;
  mode?: BleMode | undefined;
  gate?: AdapterGate | undefined;
  connectTimeoutMs?: number | undefined;
  noDataTimeoutMs?: number | undefined;
  idleDisconnectMs?: number | undefined;
  backoffMinMs?: number | undefined;
  backoffMaxMs?: number | undefined;
  /** Wall clock for snapshot timestamps, ms since epoch (default Date.now). */
  now?: (() => number) | undefined;
}

/** A BLE driver that polls (JBD, Daly over their UART protocol): the timing of its polls too. */
export interface PolledBleDriverOptions extends BleDriverOptions {
  /** Time between the starts of two polls, ms (default 2000). */
  pollIntervalMs?: number | undefined;
  /** Per reply, ms (default: the family's cap, or 80 % of a shorter poll interval). */
  replyTimeoutMs?: number | undefined;
}

/** The BleByteLink of one battery. */
export function bleByteLink(opts: BleDriverOptions, profile: BleGattProfile): BleByteLink {
  return new BleByteLink({
    ble: opts.ble,
    address: opts.address,
    profile,
    mode: opts.mode,
    gate: opts.gate,
    connectTimeoutMs: opts.connectTimeoutMs,
    noDataTimeoutMs: opts.noDataTimeoutMs,
    idleDisconnectMs: opts.idleDisconnectMs,
    backoffMinMs: opts.backoffMinMs,
    backoffMaxMs: opts.backoffMaxMs,
  });
}

/** A BLE connection event as a driver event (`debug` stays debug). */
export function asDriverEvent(e: BleEvent): BleEvent {
  return { level: e.level, message: e.message };
}
