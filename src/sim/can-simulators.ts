/**
 * Simulated CAN batteries: each emits its family's frames at the real rates over any CanLink (SocketCAN vcan in
 * the UML tests, the adapter side of a USB-CAN-A pty on the host). Values drift a little, deterministically.
 */
import { type BydValues, encodeBydFrames } from '../bms/byd-atto3/protocol.js';
import { type BydPolledValues, encodeBydPidReply } from '../bms/byd-atto3/uds.js';
import { type DeyePackValues, encodeDeyeArray, encodeDeyePack } from '../bms/deye-can/protocol.js';
import { encodePylonCanSet, type PylonCanValues } from '../bms/pylon-can/protocol.js';
import type { CanFrame } from '../links/can/can-frame.js';

/**
 * Where a simulator sends: a CanLink, or anything with the same send(). A simulated BYD pack also answers UDS
 * polls: frames reach it through `onData` (a CanLink) or, for the USB-CAN-A device, its `received` list.
 */
export interface CanSender {
  send(frame: CanFrame): Promise<void>;
  onData?(listener: (frame: CanFrame) => void): void;
  readonly received?: readonly CanFrame[];
}

export type CanSimFamily = 'pylon-can' | 'deye-can' | 'byd-atto3';

/** Real transmit periods, ms: Pylon/Deye send their set once a second; the BYD pack broadcasts every 100 ms. */
export const CAN_SIM_PERIOD_MS: Readonly<Record<CanSimFamily, number>> = {
  'pylon-can': 1000,
  'deye-can': 1000,
  'byd-atto3': 100,
};

export const DEFAULT_PYLON: PylonCanValues = {
  chargeVoltage: 53.2,
  chargeCurrent: 74,
  dischargeCurrent: 100,
  dischargeVoltage: 46,
  soc: 76,
  soh: 100,
  voltage: 52.17,
  current: -12.5,
  temperature: 23.5,
  modules: 2,
  chargeEnable: true,
  dischargeEnable: true,
  manufacturer: 'PYLON',
};

export const DEFAULT_DEYE_PACK: DeyePackValues = {
  voltage: 53.2,
  current: 6.4,
  soc: 81.5,
  soh: 100,
  cellMax: 3.331,
  cellMin: 3.322,
  temperature1: 21.5,
  temperature2: 22,
  mosTemperature: 24,
  cycles: 37,
};

export const DEFAULT_BYD: BydValues = {
  voltage: 402.3,
  current: -15.2,
  soc: 64.3,
  soh: 99,
  temperatureMin: 18,
  temperatureMax: 23,
};

/** What the simulated BYD pack answers to the UDS polls on 0x7E7 (protocols.md §6.2). */
export const DEFAULT_BYD_POLLED: BydPolledValues = {
  soc: 64,
  voltage: 402,
  current: -15.2,
  chargePowerLimit: 45_000,
  dischargePowerLimit: 90_000,
  cellVoltageMin: 3.187,
  cellVoltageMax: 3.201,
  cellTemperatureMin: 18,
  cellTemperatureMax: 23,
  cellTemperatureAverage: 20,
};

/** The frames of one transmit period (`tick` counts periods; values drift with it). */
export function canSimFrames(family: CanSimFamily, tick: number, packs = 2): CanFrame[] {
  const wobble = Math.sin(tick / 5);
  switch (family) {
    case 'pylon-can':
      return encodePylonCanSet({ ...DEFAULT_PYLON, current: Math.round((DEFAULT_PYLON.current + wobble) * 10) / 10 });
    case 'deye-can': {
      const values = Array.from({ length: packs }, (_, n) => ({
        ...DEFAULT_DEYE_PACK,
        soc: DEFAULT_DEYE_PACK.soc - n,
        current: Math.round((DEFAULT_DEYE_PACK.current + wobble) * 10) / 10,
      }));
      const total = values.reduce((a, v) => a + v.current, 0);
      return [
        ...encodePylonCanSet({
          ...DEFAULT_PYLON,
          manufacturer: 'DY001',
          modules: packs,
          current: Math.round(total * 10) / 10,
          voltage: DEFAULT_DEYE_PACK.voltage,
        }),
        ...encodeDeyeArray(values, 100 * packs),
        ...values.flatMap((v, n) => encodeDeyePack(n, v)),
      ];
    }
    case 'byd-atto3':
      return encodeBydFrames({ ...DEFAULT_BYD, current: Math.round((DEFAULT_BYD.current + wobble) * 10) / 10 });
  }
}

export interface CanSimulatorOptions {
  family: CanSimFamily;
  /** Deye packs (default 2). */
  packs?: number;
  /** Override the transmit period, ms (tests speed it up). */
  periodMs?: number;
}

/** Sends one period's frames at once, every period, until stopped. Send failures (link down) are skipped. */
export class CanSimulator {
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  /** Requests heard and not answered yet (BYD UDS polls). */
  private readonly requests: CanFrame[] = [];
  private receivedSeen = 0;
  private listening = false;
  /** Periods sent. */
  sent = 0;
  /** UDS polls answered (BYD). */
  answered = 0;

  constructor(
    private readonly link: CanSender,
    private readonly opts: CanSimulatorOptions,
  ) {}

  start(): void {
    if (this.timer !== undefined) return;
    if (this.opts.family === 'byd-atto3' && !this.listening && this.link.onData !== undefined) {
      this.listening = true;
      this.link.onData((f) => {
        if (this.timer !== undefined) this.requests.push(f);
      });
    }
    void this.emitOnce();
    this.timer = setInterval(() => void this.emitOnce(), this.opts.periodMs ?? CAN_SIM_PERIOD_MS[this.opts.family]);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  async emitOnce(): Promise<void> {
    const frames = canSimFrames(this.opts.family, this.tick++, this.opts.packs ?? 2);
    if (this.opts.family === 'byd-atto3') frames.push(...this.udsReplies());
    try {
      for (const f of frames) await this.link.send(f);
      this.sent++;
    } catch {
      // a dead link: the next period tries again
    }
  }

  /** The pack answers the polls heard since the last period, one reply each (within one period, 100 ms). */
  private udsReplies(): CanFrame[] {
    const received = this.link.received;
    if (received !== undefined) {
      this.requests.push(...received.slice(this.receivedSeen));
      this.receivedSeen = received.length;
    }
    const replies: CanFrame[] = [];
    for (const r of this.requests.splice(0)) {
      const reply = encodeBydPidReply(r, DEFAULT_BYD_POLLED);
      if (reply !== undefined) replies.push(reply);
    }
    this.answered += replies.length;
    return replies;
  }
}
