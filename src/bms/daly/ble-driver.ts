/**
 * Daly (classic A5 protocol) over Bluetooth LE (protocols.md §3.1): service 0xFFF0, notify 0xFFF1, write
 * 0xFFF2, host address 0x80. The serial driver runs unchanged over a BleByteLink; its DalyReplyFramer
 * reassembles the 13-byte frames from the notifications and waits for all 16 cell frames a BLE board sends.
 */
import type { BleByteLink } from '../../links/ble/ble-byte-link.js';
import { bleByteLink, type PolledBleDriverOptions } from '../../links/ble/ble-driver-options.js';
import type { BleGattProfile } from '../../links/ble/ble-link.js';
import { defaultReplyTimeoutMs } from '../driver.js';
import { DalyDriver } from './driver.js';
import { DALY_HOST_UART } from './protocol.js';

export const DALY_BLE_PROFILE: BleGattProfile = { service: 'fff0', notify: 'fff1', write: 'fff2' };

/** Reply timeout default 1000 ms, or 80 % of a shorter poll interval. */
export type DalyBleDriverOptions = PolledBleDriverOptions;

/** Polls one Daly BMS over BLE. */
export class DalyBleDriver extends DalyDriver {
  readonly link: BleByteLink;

  constructor(opts: DalyBleDriverOptions, link: BleByteLink = bleByteLink(opts, DALY_BLE_PROFILE)) {
    const pollIntervalMs = opts.pollIntervalMs ?? 2000;
    super({
      link,
      hostAddress: DALY_HOST_UART,
      pollIntervalMs,
      replyTimeoutMs: opts.replyTimeoutMs ?? defaultReplyTimeoutMs(pollIntervalMs, 1000),
      reconnectMinMs: 50,
      reconnectMaxMs: 500,
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.link = link;
    link.onEvent((e) => this.emit(e.level, e.message));
  }
}
