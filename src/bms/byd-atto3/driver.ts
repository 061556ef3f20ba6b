/**
 * BYD Atto 3 pack driver: listens to the broadcast frames and polls the UDS PIDs on 0x7E7 / 0x7EF round-robin
 * (one request per `pollMs`, default 200 ms, so every PID about every 2 s). A snapshot on each 0x444; polled
 * values fold into the state and reach the next one. No keep-alive, no contactor control.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import type { CanFrame } from '../../links/can/can-frame.js';
import { type CanDriverOptions, CanListenDriver } from '../pylon-can/listen-driver.js';
import { BydId, type BydState, bydSnapshot, decodeBydFrame, isBydId } from './protocol.js';
import {
  BYD_FLOW_CONTROL,
  BYD_POLLED_PIDS,
  BYD_UDS_REPLY_ID,
  BydIsoTpReceiver,
  bydPidRequest,
  decodeBydUdsPayload,
} from './uds.js';

/** One UDS request every this many ms. */
export const BYD_POLL_MS = 200;

export interface BydDriverOptions extends Omit<CanDriverOptions, 'keepAliveMs'> {
  /** Send one UDS request every this many ms (0 = listen only). Default BYD_POLL_MS. */
  pollMs?: number;
}

export class BydAtto3Driver extends CanListenDriver {
  readonly family = 'byd-atto3';
  private readonly state: BydState = {};
  private readonly isoTp = new BydIsoTpReceiver();
  private nextPid = 0;

  constructor(opts: BydDriverOptions) {
    super({ ...opts, keepAliveMs: opts.pollMs ?? BYD_POLL_MS });
  }

  /** Everything decoded so far, incl. what the snapshot model has no field for (cell min/max, power limits). */
  get values(): Readonly<BydState> {
    return { ...this.state };
  }

  /** The periodic frame of the base class: the next UDS request. */
  protected override keepAliveFrame(): CanFrame {
    const pid = BYD_POLLED_PIDS[this.nextPid % BYD_POLLED_PIDS.length] as number;
    this.nextPid = (this.nextPid + 1) % BYD_POLLED_PIDS.length;
    return bydPidRequest(pid);
  }

  protected receive(frame: CanFrame): BatterySnapshot | undefined {
    if (frame.ext) return undefined;
    if (frame.id === BYD_UDS_REPLY_ID) {
      const step = this.isoTp.accept(frame.data);
      if (step.flowControl) void this.bus.send(BYD_FLOW_CONTROL);
      if (step.payload !== undefined) Object.assign(this.state, decodeBydUdsPayload(step.payload));
      return undefined;
    }
    if (!isBydId(frame.id)) return undefined;
    Object.assign(this.state, decodeBydFrame(frame));
    return frame.id === BydId.status ? bydSnapshot(this.state, this.now()) : undefined;
  }
}
