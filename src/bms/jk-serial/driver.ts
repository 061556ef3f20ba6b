/**
 * JK serial (`4E 57`) driver: one "read all" request per cycle, one snapshot per reply.
 *
 *   every pollIntervalMs:  read all (4E 57 … 06 03 00 …) → TLV reply → snapshot
 *
 * The line (open, reopen with back-off after a loss or a run of unanswered cycles, close on stop) is a SerialBus
 * with this driver as its only unit.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import type { Link } from '../../links/link.js';
import { type BusChannel, type BusLineOptions, SerialBus } from '../../links/serial-bus.js';
import { type BusOrLink, busFrom, defaultReplyTimeoutMs, PolledDriver } from '../driver.js';
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

/** The line of one JK board's GPS / TTL port. */
export function createJkSerialBus(link: Link<Uint8Array>, line: BusLineOptions = {}): SerialBus {
  return new SerialBus({ ...line, link, framer: new JkSerialFramer() });
}

/** Options of {@link JkSerialDriver}: a bus, or a link (115200 Bd; the line options shape the bus made for it). */
export interface JkSerialDriverOptions extends BusOrLink {
  /** Time between the starts of two poll cycles, ms (default 1000). */
  pollIntervalMs?: number;
  /** Time allowed for the reply, ms (default 800, or 80 % of a shorter poll interval); must be < pollIntervalMs. */
  replyTimeoutMs?: number;
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
export class JkSerialDriver extends PolledDriver {
  readonly family = 'jk-serial';

  constructor(opts: JkSerialDriverOptions) {
    const pollIntervalMs = opts.pollIntervalMs ?? 1000;
    super(busFrom(opts, createJkSerialBus), {
      pollIntervalMs,
      replyTimeoutMs: opts.replyTimeoutMs ?? defaultReplyTimeoutMs(pollIntervalMs, 800),
      now: opts.now,
    });
  }

  protected async readSnapshot(channel: BusChannel): Promise<BatterySnapshot> {
    const frame = await this.request(channel, encodeReadAllRequest(), isReadAllReply);
    return toSnapshot(decodeReadAllReply(frame), this.now());
  }
}
