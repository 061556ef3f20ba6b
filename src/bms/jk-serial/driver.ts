/**
 * JK serial (`4E 57`) driver: one "read all" request per cycle, one snapshot per reply.
 *
 *   every pollIntervalMs:  read all (4E 57 … 06 03 00 …) → TLV reply → snapshot
 *
 * The line (open, reopen with back-off after a loss or a run of unanswered requests, close on stop) is a
 * RequestBus with this driver as its only user; the poll loop is the one the JK-PB driver uses too.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import type { Link } from '../../links/link.js';
import { RequestBus } from '../jk-modbus/bus.js';
import { PolledBusDriver } from '../jk-modbus/polling.js';
import {
  decodeReadAllReply,
  encodeReadAllRequest,
  JK_SERIAL_MIN_FRAME,
  JkSerialCommand,
  JkSerialFramer,
  JkSerialFrameType,
  toSnapshot,
} from './protocol.js';

/** Default line speed of the GPS / TTL port. */
export const JK_SERIAL_BAUD_RATE = 115200;

/** Options of {@link JkSerialDriver}. */
export interface JkSerialDriverOptions {
  /** The byte link to the BMS (115200 Bd); the driver opens and closes it. */
  link: Link<Uint8Array>;
  /** Time between the starts of two poll cycles, ms (default 1000). */
  pollIntervalMs?: number;
  /** Time allowed for the reply, ms (default 800, or 80 % of a shorter poll interval); must be < pollIntervalMs. */
  replyTimeoutMs?: number;
  /** Consecutive cycles without a reply after which the link is closed and reopened (default 3). */
  maxSilentCycles?: number;
  /** First reopen delay, ms (default 500); doubles up to `reconnectMaxMs`. */
  reconnectMinMs?: number;
  /** Longest reopen delay, ms (default 10 000). */
  reconnectMaxMs?: number;
  /** Wall clock for snapshot timestamps (default Date.now). */
  now?: () => number;
}

/** A read-all reply, not the echo of our own request and not another command's answer. */
function isReadAllReply(frame: Uint8Array): boolean {
  return (
    frame.length >= JK_SERIAL_MIN_FRAME &&
    frame[8] === JkSerialCommand.readAll &&
    frame[10] !== JkSerialFrameType.request
  );
}

/** BmsDriver for JK boards on their GPS / TTL (or RS485 adapter) port. */
export class JkSerialDriver extends PolledBusDriver {
  readonly family = 'jk-serial';
  readonly replyTimeoutMs: number;

  constructor(opts: JkSerialDriverOptions) {
    const pollIntervalMs = opts.pollIntervalMs ?? 1000;
    super(
      new RequestBus({
        link: opts.link,
        framer: new JkSerialFramer(),
        maxSilentRequests: opts.maxSilentCycles ?? 3,
        ...(opts.reconnectMinMs !== undefined ? { reconnectMinMs: opts.reconnectMinMs } : {}),
        ...(opts.reconnectMaxMs !== undefined ? { reconnectMaxMs: opts.reconnectMaxMs } : {}),
      }),
      { pollIntervalMs, now: opts.now },
    );
    this.replyTimeoutMs = opts.replyTimeoutMs ?? Math.min(800, Math.round(pollIntervalMs * 0.8));
    if (!(this.replyTimeoutMs > 0 && this.replyTimeoutMs < pollIntervalMs)) {
      throw new RangeError(
        `replyTimeoutMs (${this.replyTimeoutMs}) must be > 0 and < pollIntervalMs (${pollIntervalMs})`,
      );
    }
  }

  protected async poll(): Promise<BatterySnapshot> {
    const frame = await this.bus.request(encodeReadAllRequest(), {
      timeoutMs: this.replyTimeoutMs,
      isReply: isReadAllReply,
    });
    return toSnapshot(decodeReadAllReply(frame), this.now());
  }
}
