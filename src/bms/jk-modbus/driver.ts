/**
 * JK-PB driver: one instance per pack address; the packs of one RS485 bus share one RequestBus (one request
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
import { errorMessage, FrameError } from '../../domain/errors.js';
import type { Link } from '../../links/link.js';
import { RequestBus } from './bus.js';
import type { Jk02CellInfo, Jk02DeviceInfo, Jk02Settings } from './jk02-record.js';
import { PolledBusDriver } from './polling.js';
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

/** Options of {@link createJkPbBus}. */
export interface JkPbBusOptions {
  /** Pause between transactions, ms (default 50; JKBMS-PB.md saw address mix-ups below ~50 ms). */
  gapMs?: number;
  /** Consecutive requests nobody answered after which the port is reopened (default 6). */
  maxSilentRequests?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/** The shared line of one JK-PB RS485 bus: create one per port and hand it to every pack's driver. */
export function createJkPbBus(link: Link<Uint8Array>, opts: JkPbBusOptions = {}): RequestBus {
  return new RequestBus({
    link,
    framer: new JkPbFramer(),
    gapMs: opts.gapMs ?? 50,
    maxSilentRequests: opts.maxSilentRequests ?? 6,
    ...(opts.reconnectMinMs !== undefined ? { reconnectMinMs: opts.reconnectMinMs } : {}),
    ...(opts.reconnectMaxMs !== undefined ? { reconnectMaxMs: opts.reconnectMaxMs } : {}),
  });
}

/** Options of {@link JkPbDriver}. */
export interface JkPbDriverOptions {
  /** The bus of the port this pack is on (createJkPbBus), shared with the other packs' drivers. */
  bus: RequestBus;
  /** The pack's DIP address, 1–15. */
  address: number;
  /** Time between the starts of two poll cycles, ms (default 2000). */
  pollIntervalMs?: number;
  /** Time allowed for each reply, ms (default 500); must be < pollIntervalMs. */
  replyTimeoutMs?: number;
  /** Re-read the settings record every this many cycles (default 60). */
  settingsEveryCycles?: number;
  /** Wall clock for snapshot timestamps (default Date.now). */
  now?: () => number;
}

/** BmsDriver for one pack on a JK-PB RS485 bus. */
export class JkPbDriver extends PolledBusDriver {
  readonly family = 'jk-modbus';
  readonly address: number;
  readonly replyTimeoutMs: number;
  readonly settingsEveryCycles: number;

  private cycleNo = 0;
  private settings: Jk02Settings | undefined;
  private settingsCycle = Number.NEGATIVE_INFINITY;
  private about: Jk02DeviceInfo | undefined;
  private aboutFailures = 0;
  private aboutRetryCycle = 0;

  constructor(opts: JkPbDriverOptions) {
    const pollIntervalMs = opts.pollIntervalMs ?? 2000;
    super(opts.bus, { pollIntervalMs, now: opts.now });
    if (!Number.isInteger(opts.address) || opts.address < 1 || opts.address > JK_PB_MAX_ADDRESS) {
      throw new RangeError(`JK-PB address must be an integer 1–${JK_PB_MAX_ADDRESS}, got ${opts.address}`);
    }
    this.address = opts.address;
    this.replyTimeoutMs = opts.replyTimeoutMs ?? Math.min(500, Math.round(pollIntervalMs * 0.8));
    if (!(this.replyTimeoutMs > 0 && this.replyTimeoutMs < pollIntervalMs)) {
      throw new RangeError(
        `replyTimeoutMs (${this.replyTimeoutMs}) must be > 0 and < pollIntervalMs (${pollIntervalMs})`,
      );
    }
    this.settingsEveryCycles = Math.max(1, opts.settingsEveryCycles ?? 60);
  }

  protected override get label(): string {
    return `pack ${this.address}: `;
  }

  protected async poll(): Promise<BatterySnapshot> {
    this.cycleNo++;
    const status = await this.readStatus();
    await this.readAboutIfDue();
    await this.readSettingsIfDue();
    return toSnapshot({ status, settings: this.settings, about: this.about }, this.now());
  }

  private async readStatus(): Promise<Jk02CellInfo> {
    const record = await this.trigger(JkPbTrigger.status);
    if (record.type !== 'cell-info') throw new FrameError('unexpected-reply', `a ${record.type} record`);
    return record.cellInfo;
  }

  /** Once per driver; after a failure retried on later cycles, spaced out (2, 4 … 32 cycles). */
  private async readAboutIfDue(): Promise<void> {
    if (this.about !== undefined || this.cycleNo < this.aboutRetryCycle) return;
    try {
      const record = await this.trigger(JkPbTrigger.about);
      if (record.type !== 'device-info') throw new FrameError('unexpected-reply', `a ${record.type} record`);
      this.about = record.deviceInfo;
      const a = this.about;
      this.emit(
        'info',
        `${this.label}${a.model || 'JK-PB'} hw ${a.hardwareVersion} sw ${a.softwareVersion} serial ${a.serialNumber}`,
      );
    } catch (e) {
      this.aboutFailures++;
      this.aboutRetryCycle = this.cycleNo + Math.min(32, 2 ** this.aboutFailures);
      this.emit('debug', `${this.label}about record not read: ${errorMessage(e)}`);
    }
  }

  private async readSettingsIfDue(): Promise<void> {
    if (this.settings !== undefined && this.cycleNo - this.settingsCycle < this.settingsEveryCycles) return;
    try {
      const record = await this.trigger(JkPbTrigger.settings);
      if (record.type !== 'settings') throw new FrameError('unexpected-reply', `a ${record.type} record`);
      this.settings = record.settings;
      this.settingsCycle = this.cycleNo;
    } catch (e) {
      // Keep the last settings; without any, the snapshot takes cell count and capacity from the status record.
      this.emit('debug', `${this.label}settings record not read: ${errorMessage(e)}`);
    }
  }

  private async trigger(register: JkPbTriggerRegister) {
    const frame = await this.bus.request(encodeTriggerRequest(this.address, register), {
      timeoutMs: this.replyTimeoutMs,
      isReply: (f) => isTriggerReply(f, this.address, register),
    });
    const decoded = decodeFrame(frame);
    if (decoded.kind !== 'reply') throw new FrameError('unexpected-reply', `a ${decoded.kind} frame`);
    return decoded.record;
  }
}
