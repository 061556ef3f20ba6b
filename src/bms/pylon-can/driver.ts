/** Pylon LV CAN battery driver: listens to the battery's set, answers with the inverter keep-alive 0x305. */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import type { CanFrame } from '../../links/can/can-frame.js';
import { type CanDriverOptions, CanListenDriver } from './listen-driver.js';
import {
  applyPylonCan,
  decodePylonCanFrame,
  isPylonCanId,
  PYLON_KEEPALIVE,
  PylonCanId,
  type PylonCanState,
  type PylonDecodeOptions,
  pylonSnapshot,
} from './protocol.js';

export interface PylonCanDriverOptions extends CanDriverOptions, PylonDecodeOptions {}

export class PylonCanDriver extends CanListenDriver {
  readonly family = 'pylon-can';
  private readonly state: PylonCanState = {};
  private readonly decodeOpts: PylonDecodeOptions;

  constructor(opts: PylonCanDriverOptions) {
    super({ ...opts, keepAliveMs: opts.keepAliveMs ?? 1000 });
    this.decodeOpts = opts.voltageScale === undefined ? {} : { voltageScale: opts.voltageScale };
  }

  protected override keepAliveFrame(): CanFrame {
    return PYLON_KEEPALIVE;
  }

  protected receive(frame: CanFrame): BatterySnapshot | undefined {
    if (frame.ext || !isPylonCanId(frame.id)) return undefined;
    applyPylonCan(this.state, decodePylonCanFrame(frame, this.decodeOpts));
    // 0x356 (measurements) completes a set: every battery sends it, once a second.
    return frame.id === PylonCanId.measurements ? pylonSnapshot(this.state, this.now()) : undefined;
  }
}
