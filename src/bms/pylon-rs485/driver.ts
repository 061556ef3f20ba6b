/**
 * Pylontech / Seplos V2 driver: one driver per pack (one battery section = one address); the packs on one RS485 port
 * are units of one SerialBus, so their requests never collide and a silent pack only costs its own timeouts.
 *
 *   every pollIntervalMs, per pack:  0x42 analog values → [0x44 alarms] → [0x92 limits, Pylontech] → [0x51 once]
 *
 * 0x42 is required for a snapshot; the bracketed reads are optional and backed off after a failure (firmwares that
 * lack them cost one timeout now and then). Link handling (open, back-off, reopen) is the bus's.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import type { Link } from '../../links/link.js';
import { type BusChannel, type BusLineOptions, SerialBus } from '../../links/serial-bus.js';
import { type BusOrLink, busFrom, defaultReplyTimeoutMs, OptionalRequest, PolledDriver } from '../driver.js';
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

/** The shared line of one Pylontech or Seplos RS485 port ("~…\r" framing): one per port and protocol. */
export function createPylonBus(link: Link<Uint8Array>, line: BusLineOptions = {}): SerialBus {
  return new SerialBus({ ...line, link, framer: new PylonFramer() });
}

/** Options of {@link PylonRs485Driver}. */
export interface PylonRs485DriverOptions extends BusOrLink {
  protocol: PylonProtocol;
  /** Pack address (ADR): Pylontech 2 = first pack, 3, 4 …; Seplos the DIP address 0–15. */
  address: number;
  /** Time between the starts of two polls of this pack, ms (default 1000). */
  pollIntervalMs?: number;
  /** Time allowed for each reply, ms (default 500, or 80 % of a shorter poll interval); must be < pollIntervalMs. */
  replyTimeoutMs?: number;
  /** Wall clock for snapshot timestamps, ms since epoch (default Date.now). */
  now?: () => number;
}

/** Driver for one pack on a Pylontech-protocol RS485 bus. */
export class PylonRs485Driver extends PolledDriver {
  readonly family: PylonProtocol;
  readonly address: number;

  private readonly alarms = new OptionalRequest();
  private readonly limits = new OptionalRequest();
  private identity = new OptionalRequest();
  private info: PylonManufacturerInfo | undefined;

  constructor(opts: PylonRs485DriverOptions) {
    if (!Number.isInteger(opts.address) || opts.address < 0 || opts.address > 0xfe) {
      throw new RangeError(`address must be an integer 0–254, got ${opts.address}`);
    }
    const pollIntervalMs = opts.pollIntervalMs ?? 1000;
    super(busFrom(opts, createPylonBus), {
      pollIntervalMs,
      replyTimeoutMs: opts.replyTimeoutMs ?? defaultReplyTimeoutMs(pollIntervalMs, 500),
      now: opts.now,
    });
    this.family = opts.protocol;
    this.address = opts.address;
  }

  protected override get subject(): string {
    return `pack ${this.address}`;
  }

  protected override onConnected(): void {
    this.info = undefined;
    this.identity = new OptionalRequest();
  }

  protected async readSnapshot(channel: BusChannel): Promise<BatterySnapshot> {
    const analogInfo = await this.read(channel, PylonCommand.analogValues);
    return this.family === 'pylontech'
      ? await this.pylontechSnapshot(channel, analogInfo)
      : await this.seplosSnapshot(channel, analogInfo);
  }

  private async pylontechSnapshot(channel: BusChannel, analogInfo: Uint8Array): Promise<BatterySnapshot> {
    const analog = pylontech.decodeAnalogValues(analogInfo, 'single').modules[0] as pylontech.PylontechModule;
    const alarms = await this.readOptional(channel, this.alarms, PylonCommand.alarmInfo, pylontech.decodeAlarmInfo);
    const management = await this.readOptional(
      channel,
      this.limits,
      PylonCommand.chargeManagement,
      pylontech.decodeChargeManagement,
    );
    await this.readIdentity(channel);
    return pylontech.toSnapshot({ analog, alarms, management, info: this.info }, this.now());
  }

  private async seplosSnapshot(channel: BusChannel, analogInfo: Uint8Array): Promise<BatterySnapshot> {
    const telemetry = seplos.decodeTelemetry(analogInfo);
    const alarms = await this.readOptional(channel, this.alarms, PylonCommand.alarmInfo, seplos.decodeAlarms);
    await this.readIdentity(channel);
    return seplos.toSnapshot({ telemetry, alarms, info: this.info }, this.now());
  }

  /** 0x51 once per connection; retried with back-off after a failure. */
  private async readIdentity(channel: BusChannel): Promise<void> {
    if (this.info !== undefined) return;
    this.info = await this.readOptional(channel, this.identity, PylonCommand.manufacturerInfo, decodeManufacturerInfo);
    if (this.info !== undefined) {
      this.emit(
        'info',
        `pack ${this.address}: ${this.info.deviceName || '(no name)'} software ${this.info.softwareVersion}`,
      );
    }
  }

  private readOptional<T>(
    channel: BusChannel,
    gate: OptionalRequest,
    command: number,
    decode: (info: Uint8Array) => T,
  ): Promise<T | undefined> {
    return this.optional(gate, `pack ${this.address}: CID2 0x${command.toString(16)}`, async () =>
      decode(await this.read(channel, command)),
    );
  }

  /** One request to this pack; resolves with the INFO of its OK reply. */
  private async read(channel: BusChannel, command: number): Promise<Uint8Array> {
    const address = this.address;
    const info =
      this.family === 'pylontech' ? pylontech.requestInfo(command, address) : seplos.requestInfo(command, address);
    const frame = await this.request(channel, encodeRequest({ address, command, info }), (f) => {
      const d = tryDecodeFrame(f);
      // A reply from this pack: not another pack's, not our own request echoed by a half-duplex adapter.
      return d !== undefined && d.address === address && d.cid1 === PYLON_CID1_LFP && isReturnCode(d.cid2);
    });
    return requireReplyInfo(decodeFrame(frame), address);
  }
}
