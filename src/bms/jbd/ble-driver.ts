/**
 * JBD over Bluetooth LE (protocols.md §1.7): service 0xFF00, notify 0xFF01, write 0xFF02, the same frames as on
 * the UART. The serial driver runs unchanged over a BleByteLink: its JbdFramer reassembles the ≤ 20-byte
 * notifications by the length byte (a frame is `len + 7` bytes, capped at 262, resynchronising on garbage).
 */
import type { BleByteLink } from '../../links/ble/ble-byte-link.js';
import { bleByteLink, type PolledBleDriverOptions } from '../../links/ble/ble-driver-options.js';
import type { BleGattProfile } from '../../links/ble/ble-link.js';
import { defaultReplyTimeoutMs } from '../driver.js';
import { JbdDriver } from './driver.js';

export const JBD_BLE_PROFILE: BleGattProfile = { service: 'ff00', notify: 'ff01', write: 'ff02' };

/** Reply timeout default 1500 ms, or 80 % of a shorter poll interval. */
export type JbdBleDriverOptions = PolledBleDriverOptions;

/** Polls one JBD BMS over BLE. */
export class JbdBleDriver extends JbdDriver {
  readonly link: BleByteLink;

  constructor(opts: JbdBleDriverOptions, link: BleByteLink = bleByteLink(opts, JBD_BLE_PROFILE)) {
    const pollIntervalMs = opts.pollIntervalMs ?? 2000;
    super({
      link,
      pollIntervalMs,
      replyTimeoutMs: opts.replyTimeoutMs ?? defaultReplyTimeoutMs(pollIntervalMs, 1500),
      // The BLE link backs off (with jitter) itself: the bus only retries it.
      reconnectMinMs: 50,
      reconnectMaxMs: 500,
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.link = link;
    link.onEvent((e) => this.emit(e.level, e.message));
  }
}
