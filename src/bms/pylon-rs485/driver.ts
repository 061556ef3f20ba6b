/**
 * Pylontech / Seplos V2 driver: one driver per pack (one battery section = one address); packs on the same RS485 line
 * share one PolledBus, so their requests queue on one RequestChannel and never collide.
 *
 *   every pollIntervalMs, per pack:  0x42 analog values → [0x44 alarms] → [0x92 limits, Pylontech] → [0x51 once]
 *
 * 0x42 is required for a snapshot; the bracketed reads are optional and backed off after a failure (firmwares that
 * lack them cost one timeout now and then). A pack that stays silent costs only its own 0x42 timeout per cycle: the
 * other packs on the bus keep delivering. Link handling (open, back-off, reopen) is the bus's.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { errorMessage, isFrameError, LinkError, TimeoutError } from '../../domain/errors.js';
import type { Link } from '../../links/link.js';
import type { RequestChannel } from '../../links/request.js';
import type { BmsDriver, DriverEvent } from '../driver.js';
import { OptionalRequest, PolledBus, type PolledBusOptions, type PollOutcome } from './polled-bus.js';
import {
  decodeFrame,
  decodeManufacturerInfo,
  encodeRequest,
  isReturnCode,
  PYLON_CID1_LFP,
  PylonCommand,
  PylonFramer,
  type PylonManufacturerInfo,
  requireReplyInfo,
  tryDecodeFrame,
} from './protocol.js';
import * as pylontech from './pylontech.js';
import * as seplos from './seplos.js';

/** Which field table the packs speak. */
export type PylonProtocol = 'pylontech' | 'seplos';

/** Options of {@link createPylonBus}: everything of PolledBusOptions except the framer. */
export type PylonBusOptions = Omit<PolledBusOptions, 'framer'>;

/** A bus for Pylontech / Seplos packs on one RS485 link; pass it to each pack's driver. */
export function createPylonBus(opts: PylonBusOptions): PolledBus {
  return new PolledBus({ ...opts, framer: new PylonFramer() });
}

/** Options of {@link PylonRs485Driver}. */
export interface PylonRs485DriverOptions extends Partial<PylonBusOptions> {
  protocol: PylonProtocol;
  /** Pack address (ADR): Pylontech 2 = first pack, 3, 4 …; Seplos the DIP address 0–15. */
  address: number;
  /** Shared bus (several packs on one link). Without it, `link` is required and the driver makes its own bus. */
  bus?: PolledBus;
  /** Wall clock for snapshot timestamps, ms since epoch (default Date.now). */
  now?: () => number;
}

type Trouble = 'timeout' | 'decode';

/** Driver for one pack on a Pylontech-protocol RS485 bus. */
export class PylonRs485Driver implements BmsDriver {
  readonly family: PylonProtocol;
  readonly address: number;
  readonly bus: PolledBus;

  private readonly now: () => number;
  private readonly snapshotListeners: ((s: BatterySnapshot) => void)[] = [];
  private readonly eventListeners: ((e: DriverEvent) => void)[] = [];
  private readonly troubles = new Set<Trouble>();
  private readonly alarms = new OptionalRequest();
  private readonly limits = new OptionalRequest();
  private identity = new OptionalRequest();
  private info: PylonManufacturerInfo | undefined;
  private cycleNo = 0;
  private readonly unit = {
    poll: (channel: RequestChannel) => this.poll(channel),
    connected: () => this.connected(),
    busEvent: (level: DriverEvent['level'], message: string) => this.emit(level, message),
  };

  constructor(opts: PylonRs485DriverOptions) {
    if (!Number.isInteger(opts.address) || opts.address < 0 || opts.address > 0xfe) {
      throw new RangeError(`address must be an integer 0–254, got ${opts.address}`);
    }
    this.family = opts.protocol;
    this.address = opts.address;
    this.now = opts.now ?? Date.now;
    if (opts.bus !== undefined) {
      this.bus = opts.bus;
    } else {
      if (opts.link === undefined) throw new TypeError('PylonRs485Driver needs a bus or a link');
      this.bus = createPylonBus({ ...opts, link: opts.link });
    }
  }

  start(): void {
    this.bus.attach(this.unit);
  }

  async stop(): Promise<void> {
    await this.bus.detach(this.unit);
  }

  onSnapshot(listener: (snapshot: BatterySnapshot) => void): void {
    this.snapshotListeners.push(listener);
  }

  onEvent(listener: (event: DriverEvent) => void): void {
    this.eventListeners.push(listener);
  }

  private connected(): void {
    this.info = undefined;
    this.identity = new OptionalRequest();
    this.cycleNo = 0;
  }

  private async poll(channel: RequestChannel): Promise<PollOutcome> {
    this.cycleNo++;
    let answered = false;
    try {
      const analogInfo = await this.read(channel, PylonCommand.analogValues);
      answered = true;
      const snapshot =
        this.family === 'pylontech'
          ? await this.pylontechSnapshot(channel, analogInfo)
          : await this.seplosSnapshot(channel, analogInfo);
      if (this.troubles.size > 0) {
        this.troubles.clear();
        this.emit('info', `pack ${this.address} answering again`);
      }
      for (const listener of this.snapshotListeners) {
        try {
          listener(snapshot);
        } catch (e) {
          this.emit('error', `snapshot listener failed: ${errorMessage(e)}`);
        }
      }
      return 'answered';
    } catch (e) {
      if (e instanceof LinkError) throw e;
      if (e instanceof TimeoutError) {
        this.report('timeout', 'warn', `no reply from pack ${this.address}: ${e.message}`);
        return answered ? 'answered' : 'silent';
      }
      this.report(
        'decode',
        isFrameError(e) ? 'warn' : 'error',
        `bad reply from pack ${this.address}: ${errorMessage(e)}`,
      );
      return 'answered';
    }
  }

  private async pylontechSnapshot(channel: RequestChannel, analogInfo: Uint8Array): Promise<BatterySnapshot> {
    const analog = pylontech.decodeAnalogValues(analogInfo, 'single').modules[0] as pylontech.PylontechModule;
    const alarms = await this.optional(channel, this.alarms, PylonCommand.alarmInfo, pylontech.decodeAlarmInfo);
    const management = await this.optional(
      channel,
      this.limits,
      PylonCommand.chargeManagement,
      pylontech.decodeChargeManagement,
    );
    await this.readIdentity(channel);
    return pylontech.toSnapshot({ analog, alarms, management, info: this.info }, this.now());
  }

  private async seplosSnapshot(channel: RequestChannel, analogInfo: Uint8Array): Promise<BatterySnapshot> {
    const telemetry = seplos.decodeTelemetry(analogInfo);
    const alarms = await this.optional(channel, this.alarms, PylonCommand.alarmInfo, seplos.decodeAlarms);
    await this.readIdentity(channel);
    return seplos.toSnapshot({ telemetry, alarms, info: this.info }, this.now());
  }

  /** 0x51 once per connection; retried with back-off after a failure. */
  private async readIdentity(channel: RequestChannel): Promise<void> {
    if (this.info !== undefined) return;
    this.info = await this.optional(channel, this.identity, PylonCommand.manufacturerInfo, decodeManufacturerInfo);
    if (this.info !== undefined) {
      this.emit(
        'info',
        `pack ${this.address}: ${this.info.deviceName || '(no name)'} software ${this.info.softwareVersion}`,
      );
    }
  }

  /** An optional read: undefined when skipped or failed (a LinkError still propagates). */
  private async optional<T>(
    channel: RequestChannel,
    gate: OptionalRequest,
    command: number,
    decode: (info: Uint8Array) => T,
  ): Promise<T | undefined> {
    if (!gate.due(this.cycleNo)) return undefined;
    try {
      const value = decode(await this.read(channel, command));
      gate.succeeded();
      return value;
    } catch (e) {
      if (e instanceof LinkError) throw e;
      gate.failed(this.cycleNo);
      this.emit('debug', `pack ${this.address}: CID2 0x${command.toString(16)} not read: ${errorMessage(e)}`);
      return undefined;
    }
  }

  /** One request to this pack; resolves with the INFO of its OK reply. */
  private async read(channel: RequestChannel, command: number): Promise<Uint8Array> {
    const address = this.address;
    const info =
      this.family === 'pylontech' ? pylontech.requestInfo(command, address) : seplos.requestInfo(command, address);
    const frame = await channel.request(encodeRequest({ address, command, info }), {
      timeoutMs: this.bus.replyTimeoutMs,
      isReply: (f) => {
        const d = tryDecodeFrame(f);
        // A reply from this pack: not another pack's, not our own request echoed by a half-duplex adapter.
        return d !== undefined && d.address === address && d.cid1 === PYLON_CID1_LFP && isReturnCode(d.cid2);
      },
    });
    return requireReplyInfo(decodeFrame(frame), address);
  }

  private report(kind: Trouble, level: DriverEvent['level'], message: string): void {
    this.emit(this.troubles.has(kind) ? 'debug' : level, message);
    this.troubles.add(kind);
  }

  private emit(level: DriverEvent['level'], message: string): void {
    for (const listener of this.eventListeners) {
      try {
        listener({ level, message });
      } catch {
        // a logging failure must not stop polling
      }
    }
  }
}

/** Convenience for a single pack on its own link. */
export function createPylonRs485Driver(
  link: Link<Uint8Array>,
  opts: Omit<PylonRs485DriverOptions, 'link' | 'bus'>,
): PylonRs485Driver {
  return new PylonRs485Driver({ ...opts, link });
}
