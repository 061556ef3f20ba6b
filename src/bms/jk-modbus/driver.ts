/**
 * JK-PB driver: one instance per pack address; the packs of one RS485 port are units of one SerialBus (one request
 * in flight on the port, a pause between transactions, the link reopened only when nobody on it answers).
 *
 *   every pollIntervalMs:  status trigger (0x1620) → snapshot
 *                          [then about (0x161C) until it has been read once, and settings (0x161E) once and
 *                           every `settingsEveryCycles` cycles]
 *
 * Status goes first and alone decides the cycle, so a silent pack costs the bus one reply timeout per cycle,
 * not three; about and settings only add identity, cell count and capacity, and a failure there is retried
 * on later cycles without withholding the snapshot. A reply counts only when its acknowledgement carries this
 * pack's address and the register asked for, and the record type matches (isTriggerReply).
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import type { Link } from '../../links/link.js';
import { type BusChannel, type BusLineOptions, SerialBus } from '../../links/serial-bus.js';
import { type BusOrLink, busFrom, defaultReplyTimeoutMs, OptionalRequest, PolledDriver } from '../driver.js';
import type { Jk02CellInfo, Jk02DeviceInfo, Jk02Settings } from './jk02-record.js';
import {
  decodeFrame,
  encodeTriggerRequest,
  isTriggerReply,
  JK_PB_MAX_ADDRESS,
  JkPbFramer,
  JkPbTrigger,
  type JkPbTriggerRegister,
  toSnapshot,
} from './protocol.js';

/** Default line speed of a JK-PB RS485 port. */
export const JK_PB_BAUD_RATE = 115200;
/** Default pause between transactions: JKBMS-PB.md ("Bus Behaviour") saw address mix-ups below ~50 ms. */
export const JK_PB_GAP_MS = 50;

/** Options of {@link createJkPbBus}: the line options, the gap defaulting to {@link JK_PB_GAP_MS}. */
export type JkPbBusOptions = BusLineOptions;

/** The shared line of one JK-PB RS485 port: create one per port and hand it to every pack's driver. */
export function createJkPbBus(link: Link<Uint8Array>, opts: JkPbBusOptions = {}): SerialBus {
  return new SerialBus({ ...opts, gapMs: opts.gapMs ?? JK_PB_GAP_MS, link, framer: new JkPbFramer() });
}

/** Options of {@link JkPbDriver}. */
export interface JkPbDriverOptions extends BusOrLink {
  /** The pack's DIP address, 1–15. */
  address: number;
  /** Time between the starts of two poll cycles, ms (default 2000). */
  pollIntervalMs?: number;
  /** Time allowed for each reply, ms (default 500, or 80 % of a shorter poll interval); must be < pollIntervalMs. */
  replyTimeoutMs?: number;
  /** Re-read the settings record every this many cycles (default 60). */
  settingsEveryCycles?: number;
  /** Wall clock for snapshot timestamps (default Date.now). */
  now?: () => number;
}

/** BmsDriver for one pack on a JK-PB RS485 bus. */
export class JkPbDriver extends PolledDriver {
  readonly family = 'jk-modbus';
  readonly address: number;
  readonly settingsEveryCycles: number;

  private settings: Jk02Settings | undefined;
  private settingsCycle = Number.NEGATIVE_INFINITY;
  private about: Jk02DeviceInfo | undefined;
  private readonly aboutRead = new OptionalRequest();

  constructor(opts: JkPbDriverOptions) {
    if (!Number.isInteger(opts.address) || opts.address < 1 || opts.address > JK_PB_MAX_ADDRESS) {
      throw new RangeError(`JK-PB address must be an integer 1–${JK_PB_MAX_ADDRESS}, got ${opts.address}`);
    }
    const pollIntervalMs = opts.pollIntervalMs ?? 2000;
    super(busFrom(opts, createJkPbBus), {
      pollIntervalMs,
      replyTimeoutMs: opts.replyTimeoutMs ?? defaultReplyTimeoutMs(pollIntervalMs, 500),
      now: opts.now,
    });
    this.address = opts.address;
    this.settingsEveryCycles = Math.max(1, opts.settingsEveryCycles ?? 60);
  }

  protected override get label(): string {
    return `pack ${this.address}: `;
  }

  protected async readSnapshot(channel: BusChannel): Promise<BatterySnapshot> {
    const status = await this.readStatus(channel);
    if (this.about === undefined) {
      this.about = await this.optional(this.aboutRead, 'about record', () => this.readAbout(channel));
      const a = this.about;
      if (a !== undefined) {
        this.emit(
          'info',
          `${this.label}${a.model || 'JK-PB'} hw ${a.hardwareVersion} sw ${a.softwareVersion} serial ${a.serialNumber}`,
        );
      }
    }
    if (this.settings === undefined || this.cycleNo - this.settingsCycle >= this.settingsEveryCycles) {
      // Keep the last settings; without any, the snapshot takes cell count and capacity from the status record.
      const settings = await this.optional(undefined, 'settings record', () => this.readSettings(channel));
      if (settings !== undefined) {
        this.settings = settings;
        this.settingsCycle = this.cycleNo;
      }
    }
    return toSnapshot({ status, settings: this.settings, about: this.about }, this.now());
  }

  private async readStatus(channel: BusChannel): Promise<Jk02CellInfo> {
    const record = await this.trigger(channel, JkPbTrigger.status);
    if (record.type !== 'cell-info') throw new FrameError('unexpected-reply', `a ${record.type} record`);
    return record.cellInfo;
  }

  private async readAbout(channel: BusChannel): Promise<Jk02DeviceInfo> {
    const record = await this.trigger(channel, JkPbTrigger.about);
    if (record.type !== 'device-info') throw new FrameError('unexpected-reply', `a ${record.type} record`);
    return record.deviceInfo;
  }

  private async readSettings(channel: BusChannel): Promise<Jk02Settings> {
    const record = await this.trigger(channel, JkPbTrigger.settings);
    if (record.type !== 'settings') throw new FrameError('unexpected-reply', `a ${record.type} record`);
    return record.settings;
  }

  private async trigger(channel: BusChannel, register: JkPbTriggerRegister) {
    const frame = await this.request(channel, encodeTriggerRequest(this.address, register), (f) =>
      isTriggerReply(f, this.address, register),
    );
    const decoded = decodeFrame(frame);
    if (decoded.kind !== 'reply') throw new FrameError('unexpected-reply', `a ${decoded.kind} frame`);
    return decoded.record;
  }
}
