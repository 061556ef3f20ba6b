/**
 * JBD driver: the poll sequence (protocols.md §1.8) as one unit of a SerialBus, one snapshot per complete poll.
 *
 *   every pollIntervalMs:  0x03 basic info → 0x04 cells [→ 0x05 model, until it has been read once per connection]
 *
 * Garbage and split replies are the framer's job; a silent BMS costs a timeout event and no snapshot; a decode error
 * costs an event and no snapshot. The line (open, reopen with back-off after a loss or a run of silent cycles, close
 * on stop) is the bus's: a JBD board has no bus address, so its bus has this one unit.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import type { Link } from '../../links/link.js';
import type { BusChannel, BusLineOptions } from '../../links/serial-bus.js';
import { SerialBus } from '../../links/serial-bus.js';
import { type BusOrLink, busFrom, defaultReplyTimeoutMs, OptionalRequest, PolledDriver } from '../driver.js';
import {
  decodeBasicInfo,
  decodeCellVoltages,
  decodeFrame,
  decodeHardwareVersion,
  encodeReadRequest,
  JBD_MIN_FRAME,
  JbdFramer,
  JbdRegister,
  requirePayload,
  toSnapshot,
} from './protocol.js';

/** The line of one JBD board. */
export function createJbdBus(link: Link<Uint8Array>, line: BusLineOptions = {}): SerialBus {
  return new SerialBus({ ...line, link, framer: new JbdFramer() });
}

/** Options of {@link JbdDriver}: a bus, or a link (then the line options shape the bus made for it). */
export interface JbdDriverOptions extends BusOrLink {
  /** Time between the starts of two poll cycles, ms (default 1000). */
  pollIntervalMs?: number;
  /** Time allowed for each reply, ms (default 800, or 80 % of a shorter poll interval); must be < pollIntervalMs. */
  replyTimeoutMs?: number;
  /** Wall clock for snapshot timestamps, ms since epoch (default Date.now). */
  now?: () => number;
}

/** Polls one JBD BMS. */
export class JbdDriver extends PolledDriver {
  readonly family = 'jbd';

  private model: string | undefined;
  private modelRead = new OptionalRequest();

  constructor(opts: JbdDriverOptions) {
    const pollIntervalMs = opts.pollIntervalMs ?? 1000;
    super(busFrom(opts, createJbdBus), {
      pollIntervalMs,
      replyTimeoutMs: opts.replyTimeoutMs ?? defaultReplyTimeoutMs(pollIntervalMs, 800),
      now: opts.now,
    });
  }

  protected override onConnected(): void {
    this.model = undefined;
    this.modelRead = new OptionalRequest();
  }

  protected async readSnapshot(channel: BusChannel): Promise<BatterySnapshot> {
    const basic = decodeBasicInfo(await this.read(channel, JbdRegister.basicInfo));
    const cells = decodeCellVoltages(await this.read(channel, JbdRegister.cellVoltages));
    if (this.model === undefined) {
      // 0x05 never blocks 0x03/0x04: after a failure it is retried on later cycles, spaced out.
      const model = await this.optional(this.modelRead, 'model (0x05)', async () =>
        decodeHardwareVersion(await this.read(channel, JbdRegister.hardwareVersion)),
      );
      if (model !== undefined) {
        this.model = model;
        this.emit('info', `BMS model ${model || '(empty)'}`);
      }
    }
    return toSnapshot({ basic, cells, model: this.model }, this.now());
  }

  /** One request; resolves with the payload of an OK reply to `register`. */
  private async read(channel: BusChannel, register: number): Promise<Uint8Array> {
    const frame = await this.request(
      channel,
      encodeReadRequest(register),
      (f) => f.length >= JBD_MIN_FRAME && f[1] === register && (f[2] === 0x00 || f[2] === 0x80),
    );
    return requirePayload(decodeFrame(frame), register);
  }
}
