/**
 * The battery side of BYD Battery-Box Premium HVS CAN: what an HV hybrid inverter set to "BYD HVS" expects.
 * Pure: a state machine with an injected clock, inverter frames in, frames to send out. protocols.md §6.1
 * (facts from batgw's inverter/i_byd_can.c and Battery-Emulator). 11-bit ids, 500 kbit/s, BIG-endian.
 *
 *   inverter → battery   0x151 b0 = 1: "identify yourself" → the hello set; b0 = 0: b1–7 inverter brand ASCII
 *                        0x091 u16 inverter DC voltage 0.1 V | s16 current 0.1 A | s16 temperature 0.1 °C
 *                        0x0D1 u16 SoC 0.1 % as the inverter sees it · 0x111 u32 inverter time · 0x019 alive
 *   battery → inverter   hello: 0x250 03 29 00 66 <capacity u16 0.1 kWh> 02 09 · 0x290 06 37 10 D9 00 00 00 00
 *                               0x2D0 00 "BYD" · 0x3D0 ×4: b0 sequence 0–3, b1–7 "Battery-Box Premium HVS"
 *                        2 s:   0x110 max charge V 0.1 V | min discharge V 0.1 V | DCL 0.1 A | CCL 0.1 A
 *                        10 s:  0x150 SoC 0.01 % | SoH 0.01 % | remaining Ah | full Ah
 *                               0x1D0 voltage 0.1 V | current s16 0.1 A | temperature s16 0.1 °C | 03 08
 *                               0x210 max temperature s16 0.1 °C | min temperature s16 0.1 °C
 *                        60 s:  0x190 00 00 03 00 00 00 00 00 (no alarm layout is public: sent as "healthy";
 *                               faults reach the inverter as CCL/DCL 0 in 0x110)
 *
 * The voltage limits are moved 2.0 V inwards (CVL − 2.0, DVL + 2.0), as both batgw and Battery-Emulator do.
 * Nothing is sent before the inverter has been heard; any of 0x019, 0x091, 0x0D1, 0x111, 0x151 feeds the
 * watchdog, and after `watchdogMs` of silence the periodic frames stop until the inverter talks again. The hello
 * set goes out only when the inverter asks (0x151 b0 = 1), followed at once by every periodic frame.
 */

import { put16, u16be } from '../bytes/fields.js';
import type { CanFrame } from '../links/can/can-frame.js';
import type { InverterValues } from './inverter-view.js';

/** 2.0 V in 0.1 V units. */
export const BYD_VOLTAGE_OFFSET_DV = 20;
export const BYD_PERIODS_MS = { limits: 2000, state: 10_000, alarms: 60_000 } as const;
export const DEFAULT_BYD_WATCHDOG_MS = 60_000;
/** Frames whose arrival proves the inverter is alive. */
export const BYD_INVERTER_IDS = [0x019, 0x091, 0x0d1, 0x111, 0x151] as const;

const VENDOR = 'BYD';
const PRODUCT = 'Battery-Box Premium HVS';

const frame = (id: number, data: Uint8Array): CanFrame => ({ id, ext: false, data });

/** A NUL-terminated string over frames of `b0 = sequence, b1–7 = text` (as the genuine battery sends it). */
function stringFrames(id: number, text: string): CanFrame[] {
  const bytes = [...text].map((c) => c.charCodeAt(0) & 0x7f);
  bytes.push(0);
  const out: CanFrame[] = [];
  for (let seq = 0; seq * 7 < bytes.length; seq++) {
    const data = new Uint8Array(8);
    data[0] = seq;
    data.set(bytes.slice(seq * 7, seq * 7 + 7), 1);
    out.push(frame(id, data));
  }
  return out;
}

/** The hello set: 0x250 (firmware 3.29, capacity), 0x290, 0x2D0 "BYD", 0x3D0 × 4 "Battery-Box Premium HVS". */
export function encodeBydHello(capacityKwh: number): CanFrame[] {
  const f250 = Uint8Array.of(0x03, 0x29, 0x00, 0x66, 0, 0, 0x02, 0x09);
  put16(f250, 4, capacityKwh * 10, false, true);
  return [
    frame(0x250, f250),
    frame(0x290, Uint8Array.of(0x06, 0x37, 0x10, 0xd9, 0, 0, 0, 0)),
    ...stringFrames(0x2d0, VENDOR),
    ...stringFrames(0x3d0, PRODUCT),
  ];
}

/** 0x110: the limits, voltage limits 2.0 V inwards. Both currents 0 when the window closes. */
export function encodeByd110(v: InverterValues): CanFrame {
  const maxDv = Math.round(v.chargeVoltage * 10) - BYD_VOLTAGE_OFFSET_DV;
  const minDv = Math.round(v.dischargeVoltage * 10) + BYD_VOLTAGE_OFFSET_DV;
  // An empty or inverted window (limits unknown, or closer than 4 V) allows no current at all.
  const open = v.chargeVoltage > 0 && v.dischargeVoltage > 0 && maxDv > minDv;
  const d = new Uint8Array(8);
  put16(d, 0, Math.max(0, maxDv), false, true);
  put16(d, 2, minDv, false, true);
  put16(d, 4, open ? v.dischargeCurrent * 10 : 0, false, true);
  put16(d, 6, open ? v.chargeCurrent * 10 : 0, false, true);
  return frame(0x110, d);
}

/** 0x150: SoC and SoH 0.01 %, remaining and full capacity Ah. */
export function encodeByd150(v: InverterValues): CanFrame {
  const d = new Uint8Array(8);
  put16(d, 0, v.soc * 100, false, true);
  put16(d, 2, v.soh * 100, false, true);
  const remaining = v.capacityRemaining > 0 ? v.capacityRemaining : (v.capacityInstalled * v.soc) / 100;
  put16(d, 4, remaining, false, true);
  put16(d, 6, v.capacityInstalled, false, true);
  return frame(0x150, d);
}

/** 0x1D0: voltage 0.1 V, current 0.1 A (+ = charging, our convention), temperature 0.1 °C, 03 08. */
export function encodeByd1D0(v: InverterValues): CanFrame {
  const d = new Uint8Array(8);
  put16(d, 0, v.voltage * 10, false, true);
  put16(d, 2, v.current * 10, true, true);
  put16(d, 4, v.temperature * 10, true, true);
  d[6] = 0x03;
  d[7] = 0x08;
  return frame(0x1d0, d);
}

/** 0x210: highest and lowest temperature, 0.1 °C. */
export function encodeByd210(v: InverterValues): CanFrame {
  const d = new Uint8Array(8);
  put16(d, 0, v.maxTemperature * 10, true, true);
  put16(d, 2, v.minTemperature * 10, true, true);
  return frame(0x210, d);
}

/** 0x190: the "healthy" alarm frame. */
export function encodeByd190(): CanFrame {
  return frame(0x190, Uint8Array.of(0, 0, 0x03, 0, 0, 0, 0, 0));
}

/** What the inverter has told us. */
export interface BydInverterInfo {
  /** 0x151 b0 = 0: the inverter's brand. */
  brand?: string;
  /** 0x091: the inverter's DC voltage, V. */
  voltage?: number;
  /** 0x0D1: the SoC the inverter shows, %. */
  soc?: number;
}

export interface BydHvsOptions {
  watchdogMs?: number;
  /** The capacity announced in the hello (0x250), kWh. */
  capacityKwh: (values: InverterValues) => number;
}

export type BydHvsPhase = 'waiting' | 'running' | 'stopped';

/**
 * The inverter-side state machine. `receive` takes every frame from the bus (others are ignored) and returns
 * what must go out at once; `tick` returns the periodic frames due at `nowMs`. Neither throws.
 */
export class BydHvsStateMachine {
  private phase: BydHvsPhase = 'waiting';
  private lastSeenMs: number | undefined;
  private due = { limits: 0, state: 0, alarms: 0 };
  private readonly watchdogMs: number;
  readonly inverter: BydInverterInfo = {};
  /** Hello sets sent (0x151 requests answered). */
  hellos = 0;

  constructor(private readonly opts: BydHvsOptions) {
    this.watchdogMs = opts.watchdogMs ?? DEFAULT_BYD_WATCHDOG_MS;
  }

  get state(): BydHvsPhase {
    return this.phase;
  }

  get lastSeen(): number | undefined {
    return this.lastSeenMs;
  }

  /** The inverter spoke within the watchdog time. */
  connected(nowMs: number): boolean {
    return this.lastSeenMs !== undefined && nowMs - this.lastSeenMs < this.watchdogMs;
  }

  receive(f: CanFrame, nowMs: number, values: InverterValues): CanFrame[] {
    if (f.ext || !(BYD_INVERTER_IDS as readonly number[]).includes(f.id)) return [];
    this.lastSeenMs = nowMs;
    const d = f.data;
    if (f.id === 0x091) {
      const dv = u16be(d, 0);
      if (dv !== undefined) this.inverter.voltage = dv / 10;
    } else if (f.id === 0x0d1) {
      const soc = u16be(d, 0);
      if (soc !== undefined) this.inverter.soc = soc / 10;
    } else if (f.id === 0x151 && d[0] === 0x00) {
      const brand = String.fromCharCode(...d.slice(1).filter((b) => b >= 0x20 && b <= 0x7e)).trim();
      if (brand) this.inverter.brand = brand;
    }
    if (this.phase !== 'running') this.start(nowMs);
    if (f.id === 0x151 && d[0] === 0x01) {
      this.hellos++;
      // The genuine battery follows the hello with its whole periodic set: make everything due now.
      this.due = { limits: nowMs, state: nowMs, alarms: nowMs };
      return [...encodeBydHello(this.opts.capacityKwh(values)), ...this.tick(nowMs, values)];
    }
    return this.tick(nowMs, values);
  }

  /** The periodic frames due now; none before the inverter was heard or after the watchdog stopped us. */
  tick(nowMs: number, values: InverterValues): CanFrame[] {
    if (this.phase === 'running' && !this.connected(nowMs)) this.phase = 'stopped';
    if (this.phase !== 'running') return [];
    const out: CanFrame[] = [];
    if (nowMs >= this.due.limits) {
      out.push(encodeByd110(values));
      this.due.limits = next(this.due.limits, BYD_PERIODS_MS.limits, nowMs);
    }
    if (nowMs >= this.due.state) {
      out.push(encodeByd150(values), encodeByd1D0(values), encodeByd210(values));
      this.due.state = next(this.due.state, BYD_PERIODS_MS.state, nowMs);
    }
    if (nowMs >= this.due.alarms) {
      out.push(encodeByd190());
      this.due.alarms = next(this.due.alarms, BYD_PERIODS_MS.alarms, nowMs);
    }
    return out;
  }

  /** When tick() next has something to send (undefined while waiting or stopped). */
  nextDue(): number | undefined {
    if (this.phase !== 'running') return undefined;
    return Math.min(this.due.limits, this.due.state, this.due.alarms);
  }

  private start(nowMs: number): void {
    this.phase = 'running';
    this.due = { limits: nowMs, state: nowMs, alarms: nowMs };
  }
}

/** The next due time on the period's grid (no drift), skipping slots missed by a late tick. */
function next(due: number, period: number, nowMs: number): number {
  const n = due + period;
  return n > nowMs ? n : nowMs + period;
}
