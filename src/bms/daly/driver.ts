/**
 * Daly (classic "A5" protocol) driver: the poll sequence as one unit of a SerialBus, one snapshot per complete cycle.
 *
 *   every pollIntervalMs:  0x90 pack → 0x93 FETs/capacity → 0x94 status → 0x95 cells (⌈cells/3⌉ frames)
 *                          → [0x96 temperatures (⌈sensors/7⌉ frames)] → [0x97 balancing] → [0x98 failures]
 *
 * The first four are required for a snapshot; the bracketed ones are optional and backed off after a failure. The
 * multi-frame replies travel through the request channel as one block (DalyReplyFramer), expected frame count set
 * just before the request goes out. A Daly board has no bus address, so its bus has this one unit.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import type { Link } from '../../links/link.js';
import { type BusChannel, type BusLineOptions, SerialBus } from '../../links/serial-bus.js';
import { type BusOrLink, busFrom, defaultReplyTimeoutMs, OptionalRequest, PolledDriver } from '../driver.js';
import {
  assembleCellVoltages,
  assembleTemperatures,
  DALY_BMS_ADDRESS,
  DALY_FRAME_LENGTH,
  DALY_HOST_RS485,
  DALY_START,
  DalyCommand,
  type DalyFrame,
  DalyReplyFramer,
  decodeBalanceState,
  decodeCellVoltageFrame,
  decodeFailureStatus,
  decodeFetStatus,
  decodePackStatus,
  decodeReplyBlock,
  decodeStatusInfo,
  decodeTemperatureFrame,
  encodeRequest,
  framesFor,
  requirePayload,
  toSnapshot,
} from './protocol.js';

/** The line of one Daly board (its framer assembles multi-frame replies). */
export function createDalyBus(link: Link<Uint8Array>, line: BusLineOptions = {}): SerialBus {
  return new SerialBus({ ...line, link, framer: new DalyReplyFramer() });
}

/** Options of {@link DalyDriver}: a bus made by createDalyBus, or a link (the line options shape its bus). */
export interface DalyDriverOptions extends BusOrLink {
  /** Host address in requests: 0x40 on the RS485 / PC port (default), 0x80 on the UART / BLE port. */
  hostAddress?: number;
  /** Time between the starts of two poll cycles, ms (default 1000). */
  pollIntervalMs?: number;
  /** Time allowed for each reply, ms (default 500, or 80 % of a shorter poll interval); must be < pollIntervalMs. */
  replyTimeoutMs?: number;
  /** Wall clock for snapshot timestamps, ms since epoch (default Date.now). */
  now?: () => number;
}

/** Driver for one Daly BMS (classic protocol). */
export class DalyDriver extends PolledDriver {
  readonly family = 'daly';
  readonly hostAddress: number;

  private readonly framer: DalyReplyFramer;
  private readonly temperatures = new OptionalRequest();
  private readonly balance = new OptionalRequest();
  private readonly failures = new OptionalRequest();

  constructor(opts: DalyDriverOptions) {
    const pollIntervalMs = opts.pollIntervalMs ?? 1000;
    const bus = busFrom(opts, createDalyBus);
    super(bus, {
      pollIntervalMs,
      replyTimeoutMs: opts.replyTimeoutMs ?? defaultReplyTimeoutMs(pollIntervalMs, 500),
      now: opts.now,
    });
    if (!(bus.framer instanceof DalyReplyFramer))
      throw new TypeError('a Daly driver needs a bus made by createDalyBus');
    this.framer = bus.framer;
    this.hostAddress = opts.hostAddress ?? DALY_HOST_RS485;
  }

  protected async readSnapshot(channel: BusChannel): Promise<BatterySnapshot> {
    const pack = decodePackStatus(await this.readOne(channel, DalyCommand.packStatus));
    const fet = decodeFetStatus(await this.readOne(channel, DalyCommand.fetStatus));
    const status = decodeStatusInfo(await this.readOne(channel, DalyCommand.statusInfo));
    const cells =
      status.cellCount > 0
        ? assembleCellVoltages(
            (await this.readMany(channel, DalyCommand.cellVoltages, status.cellCount)).map(decodeCellVoltageFrame),
            status.cellCount,
          )
        : [];
    const temperatures =
      status.temperatureSensorCount > 0
        ? await this.optional(this.temperatures, 'temperatures (0x96)', async () => {
            const frames = await this.readMany(channel, DalyCommand.temperatures, status.temperatureSensorCount);
            return assembleTemperatures(frames.map(decodeTemperatureFrame), status.temperatureSensorCount);
          })
        : undefined;
    const balancing = await this.optional(this.balance, 'balancing (0x97)', async () =>
      decodeBalanceState(await this.readOne(channel, DalyCommand.balanceState)),
    );
    const failures = await this.optional(this.failures, 'failures (0x98)', async () =>
      decodeFailureStatus(await this.readOne(channel, DalyCommand.failureStatus)),
    );
    if (failures !== undefined && failures.active.length > 0) {
      this.emit('debug', `BMS failure bits: ${failures.active.join(', ')} (fault code ${failures.faultCode})`);
    }
    return toSnapshot({ pack, fet, status, cells, temperatures, balancing, failures }, this.now());
  }

  /** A single-frame request; resolves with the payload of its reply. */
  private async readOne(channel: BusChannel, dataId: number): Promise<Uint8Array> {
    const frames = await this.exchange(channel, dataId, 1);
    return requirePayload(frames[0] as DalyFrame, dataId);
  }

  /** A multi-frame request (0x95, 0x96) for `count` cells or sensors; resolves with the payloads in frame order. */
  private async readMany(channel: BusChannel, dataId: number, count: number): Promise<Uint8Array[]> {
    // A board that sent more frames than the count needs (the BLE-style "always 16") is waited for in full.
    const frameCount = Math.max(framesFor(dataId, count), Math.min(16, this.framer.highestFrameSeen(dataId)));
    const frames = await this.exchange(channel, dataId, frameCount);
    return frames.map((f) => requirePayload(f, dataId));
  }

  private async exchange(channel: BusChannel, dataId: number, frameCount: number): Promise<DalyFrame[]> {
    // The bus runs one request at a time and a Daly bus has one unit, so nothing else is in flight now: the
    // expectation set here belongs to this request. (A timeout resets the framer, which clears it.)
    if (frameCount > 1) this.framer.expectMultiFrame(dataId, frameCount);
    const block = await this.request(
      channel,
      encodeRequest(dataId, this.hostAddress),
      (f) =>
        f.length === frameCount * DALY_FRAME_LENGTH &&
        f[0] === DALY_START &&
        f[1] === DALY_BMS_ADDRESS &&
        f[2] === dataId,
    );
    return decodeReplyBlock(block);
  }
}
