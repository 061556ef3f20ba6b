/**
 * Daly (classic "A5" protocol) driver: runs the poll sequence over an injected byte link and emits one snapshot per
 * complete cycle.
 *
 *   every pollIntervalMs:  0x90 pack → 0x93 FETs/capacity → 0x94 status → 0x95 cells (⌈cells/3⌉ frames)
 *                          → [0x96 temperatures (⌈sensors/7⌉ frames)] → [0x97 balancing] → [0x98 failures]
 *
 * The first four are required for a snapshot; the bracketed ones are optional and backed off after a failure. The
 * multi-frame replies travel through the request channel as one block (DalyReplyFramer), expected frame count set
 * just before the request goes out. Link handling (open, back-off, reopen on silence) is PolledBus's, the same as
 * JbdDriver's; a Daly board has no bus address, so the bus has this one unit.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { errorMessage, isFrameError, LinkError, TimeoutError } from '../../domain/errors.js';
import type { Link } from '../../links/link.js';
import type { RequestChannel } from '../../links/request.js';
import type { BmsDriver, DriverEvent } from '../driver.js';
import { OptionalRequest, PolledBus, type PollOutcome } from '../pylon-rs485/polled-bus.js';
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

/** Options of {@link DalyDriver}. */
export interface DalyDriverOptions {
  /** The byte link to the BMS; the driver opens and closes it. */
  link: Link<Uint8Array>;
  /** Host address in requests: 0x40 on the RS485 / PC port (default), 0x80 on the UART / BLE port. */
  hostAddress?: number;
  /** Time between the starts of two poll cycles, ms (default 1000). */
  pollIntervalMs?: number;
  /** Time allowed for each reply, ms (default 500, or 80 % of a shorter poll interval); must be < pollIntervalMs. */
  replyTimeoutMs?: number;
  /** Consecutive cycles without any reply after which the link is closed and reopened (default 3). */
  maxSilentCycles?: number;
  /** First reopen delay, ms (default 500); doubles per failed attempt up to `reconnectMaxMs`. */
  reconnectMinMs?: number;
  /** Longest reopen delay, ms (default 10 000). */
  reconnectMaxMs?: number;
  /** Wall clock for snapshot timestamps, ms since epoch (default Date.now). */
  now?: () => number;
}

type Trouble = 'timeout' | 'decode';

/** Driver for one Daly BMS (classic protocol) on its own serial link. */
export class DalyDriver implements BmsDriver {
  readonly family = 'daly';
  readonly hostAddress: number;
  readonly bus: PolledBus;

  private readonly framer = new DalyReplyFramer();
  private readonly now: () => number;
  private readonly snapshotListeners: ((s: BatterySnapshot) => void)[] = [];
  private readonly eventListeners: ((e: DriverEvent) => void)[] = [];
  private readonly troubles = new Set<Trouble>();
  private readonly temperatures = new OptionalRequest();
  private readonly balance = new OptionalRequest();
  private readonly failures = new OptionalRequest();
  private cycleNo = 0;
  private readonly unit = {
    poll: (channel: RequestChannel) => this.poll(channel),
    connected: () => {
      this.cycleNo = 0;
    },
    busEvent: (level: DriverEvent['level'], message: string) => this.emit(level, message),
  };

  constructor(opts: DalyDriverOptions) {
    this.hostAddress = opts.hostAddress ?? DALY_HOST_RS485;
    this.now = opts.now ?? Date.now;
    this.bus = new PolledBus({ ...opts, framer: this.framer });
  }

  get pollIntervalMs(): number {
    return this.bus.pollIntervalMs;
  }

  get replyTimeoutMs(): number {
    return this.bus.replyTimeoutMs;
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

  private async poll(channel: RequestChannel): Promise<PollOutcome> {
    this.cycleNo++;
    let answered = false;
    try {
      const pack = decodePackStatus(await this.readOne(channel, DalyCommand.packStatus));
      answered = true;
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
          ? await this.optional(this.temperatures, async () => {
              const frames = await this.readMany(channel, DalyCommand.temperatures, status.temperatureSensorCount);
              return assembleTemperatures(frames.map(decodeTemperatureFrame), status.temperatureSensorCount);
            })
          : undefined;
      const balancing = await this.optional(this.balance, async () =>
        decodeBalanceState(await this.readOne(channel, DalyCommand.balanceState)),
      );
      const failures = await this.optional(this.failures, async () =>
        decodeFailureStatus(await this.readOne(channel, DalyCommand.failureStatus)),
      );
      if (failures !== undefined && failures.active.length > 0) {
        this.emit('debug', `BMS failure bits: ${failures.active.join(', ')} (fault code ${failures.faultCode})`);
      }
      const snapshot = toSnapshot({ pack, fet, status, cells, temperatures, balancing, failures }, this.now());
      if (this.troubles.size > 0) {
        this.troubles.clear();
        this.emit('info', 'BMS answering again');
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
        this.report('timeout', 'warn', `no reply from the BMS: ${e.message}`);
        return answered ? 'answered' : 'silent';
      }
      this.report('decode', isFrameError(e) ? 'warn' : 'error', `bad reply: ${errorMessage(e)}`);
      return 'answered';
    }
  }

  private async optional<T>(gate: OptionalRequest, read: () => Promise<T>): Promise<T | undefined> {
    if (!gate.due(this.cycleNo)) return undefined;
    try {
      const value = await read();
      gate.succeeded();
      return value;
    } catch (e) {
      if (e instanceof LinkError) throw e;
      gate.failed(this.cycleNo);
      this.emit('debug', `optional read not done: ${errorMessage(e)}`);
      return undefined;
    }
  }

  /** A single-frame request; resolves with the payload of its reply. */
  private async readOne(channel: RequestChannel, dataId: number): Promise<Uint8Array> {
    const frames = await this.request(channel, dataId, 1);
    return requirePayload(frames[0] as DalyFrame, dataId);
  }

  /** A multi-frame request (0x95, 0x96) for `count` cells or sensors; resolves with the payloads in frame order. */
  private async readMany(channel: RequestChannel, dataId: number, count: number): Promise<Uint8Array[]> {
    // A board that sent more frames than the count needs (the BLE-style "always 16") is waited for in full.
    const frameCount = Math.max(framesFor(dataId, count), Math.min(16, this.framer.highestFrameSeen(dataId)));
    const frames = await this.request(channel, dataId, frameCount);
    return frames.map((f) => requirePayload(f, dataId));
  }

  private async request(channel: RequestChannel, dataId: number, frameCount: number): Promise<DalyFrame[]> {
    const bytes = encodeRequest(dataId, this.hostAddress);
    // The channel runs one request at a time and this bus has one unit, so nothing else is in flight now: the
    // expectation set here belongs to this request. (A timeout resets the framer, which clears it.)
    if (frameCount > 1) this.framer.expectMultiFrame(dataId, frameCount);
    const block = await channel.request(bytes, {
      timeoutMs: this.bus.replyTimeoutMs,
      isReply: (f) =>
        f.length === frameCount * DALY_FRAME_LENGTH &&
        f[0] === DALY_START &&
        f[1] === DALY_BMS_ADDRESS &&
        f[2] === dataId,
    });
    return decodeReplyBlock(block);
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
