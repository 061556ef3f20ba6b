/**
 * Deye rack driver. `pack` undefined: the whole rack as one battery, from the master's Pylon set plus the array
 * extras (snapshot on each 0x356). `pack = n`: pack n alone from its own frames (snapshot on each 0x150+n).
 * Several drivers share one CanBus, one per pack.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import type { CanFrame } from '../../links/can/can-frame.js';
import { type CanDriverOptions, CanListenDriver } from '../pylon-can/listen-driver.js';
import {
  applyPylonCan,
  decodePylonCanFrame,
  isPylonCanId,
  PYLON_KEEPALIVE,
  PylonCanId,
  type PylonCanState,
  pylonSnapshot,
} from '../pylon-can/protocol.js';
import {
  DEYE_MAX_PACKS,
  type DeyeArrayState,
  DeyePackBase,
  type DeyePackState,
  decodeDeyeFrame,
  deyePackOf,
  deyePackSnapshot,
  isDeyeExtraId,
} from './protocol.js';

export interface DeyeCanDriverOptions extends CanDriverOptions {
  /** Pack index on the bus (0 = first); undefined = the whole rack. */
  pack?: number;
}

export class DeyeCanDriver extends CanListenDriver {
  readonly family = 'deye-can';
  readonly pack: number | undefined;
  private readonly pylon: PylonCanState = {};
  private readonly array: DeyeArrayState = {};
  private readonly packState: DeyePackState = {};

  constructor(opts: DeyeCanDriverOptions) {
    // Only the rack driver plays the inverter's keep-alive; per-pack drivers listen.
    super({ ...opts, keepAliveMs: opts.keepAliveMs ?? (opts.pack === undefined ? 1000 : 0) });
    if (opts.pack !== undefined && !(Number.isInteger(opts.pack) && opts.pack >= 0 && opts.pack < DEYE_MAX_PACKS)) {
      throw new RangeError(`Deye pack must be 0…${DEYE_MAX_PACKS - 1}, got ${opts.pack}`);
    }
    this.pack = opts.pack;
  }

  protected override keepAliveFrame(): CanFrame {
    return PYLON_KEEPALIVE;
  }

  protected receive(frame: CanFrame): BatterySnapshot | undefined {
    if (frame.ext) return undefined;
    if (this.pack === undefined) {
      if (isPylonCanId(frame.id)) {
        applyPylonCan(this.pylon, decodePylonCanFrame(frame));
        if (frame.id !== PylonCanId.measurements) return undefined;
        const s = pylonSnapshot(this.pylon, this.now());
        if (this.array.capacity !== undefined) {
          s.capacityInstalled = this.array.capacity;
          if (s.soc !== undefined) s.capacityRemaining = Math.round(this.array.capacity * s.soc) / 100;
        }
        s.identity.manufacturer ??= 'Deye';
        return s;
      }
      if (deyePackOf(frame.id) === undefined && isDeyeExtraId(frame.id)) {
        const f = decodeDeyeFrame(frame);
        if (f.kind === 'array') Object.assign(this.array, f.part);
      }
      return undefined;
    }
    const at = deyePackOf(frame.id);
    if (at === undefined || at.pack !== this.pack) return undefined;
    const f = decodeDeyeFrame(frame);
    if (f.kind !== 'pack') return undefined;
    Object.assign(this.packState, f.part);
    return at.base === DeyePackBase.measurements ? deyePackSnapshot(this.packState, this.now()) : undefined;
  }

  /** The rack's pack count from 0x364, once heard. */
  get packCount(): number | undefined {
    return this.array.packCount;
  }
}
