/** BYD Atto 3 pack driver: listen-only (no keep-alive, no contactor control); a snapshot on each 0x444. */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import type { CanFrame } from '../../links/can/can-frame.js';
import { type CanDriverOptions, CanListenDriver } from '../pylon-can/listen-driver.js';
import { BydId, type BydState, bydSnapshot, decodeBydFrame, isBydId } from './protocol.js';

export class BydAtto3Driver extends CanListenDriver {
  readonly family = 'byd-atto3';
  private readonly state: BydState = {};

  constructor(opts: CanDriverOptions) {
    super({ ...opts, keepAliveMs: 0 });
  }

  protected receive(frame: CanFrame): BatterySnapshot | undefined {
    if (frame.ext || !isBydId(frame.id)) return undefined;
    Object.assign(this.state, decodeBydFrame(frame));
    return frame.id === BydId.status ? bydSnapshot(this.state, this.now()) : undefined;
  }
}
