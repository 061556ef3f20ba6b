/**
 * The battery side of Pylon LV CAN: what we send an inverter that expects a Pylontech battery. Pure: no I/O.
 * protocols.md §4 (Pylon V1.2 plus the SMA/Victron additions). 11-bit ids, little-endian, once a second.
 *
 *   id     DLC  bytes                                                              scale
 *   0x351   8   CVL u16 | CCL s16 | DCL s16 | DVL u16                                0.1 V / 0.1 A
 *   0x355   4   SoC u16 % | SoH u16 %           (8 with extensions: + SoC u16 0.01 % at 4–5, as capture A)
 *   0x356   6   voltage s16 0.01 V | current s16 0.1 A (+ = charge) | temperature s16 0.1 °C
 *   0x359   7   protection b0 (1 OV, 2 UV, 3 OT, 4 UT, 7 discharge OC), b1 (0 charge OC, 3 system error),
 *               alarm b2 (1 high V, 2 low V, 3 high T, 4 low T, 7 discharge high I), b3 (0 charge high I,
 *               3 internal communication fail), b4 modules, b5–6 "PN"
 *   0x35C   2   b0: 7 charge enable, 6 discharge enable, 5 request force charge I
 *   0x35E   8   manufacturer ASCII, space padded ("PYLON   ": many inverters select their Pylon profile on it)
 *   with victron_extensions (Victron GX / SMA read them):
 *   0x35A   8   alarm pairs (bytes 0–3), warning pairs (4–7): 01 active, 10 ok; 13 pairs used
 *   0x35F   8   b0–1 model id 0, b2–3 firmware 0, b4–5 online capacity Ah
 *   0x370/1 8+8 BMS name ASCII (16 characters, NUL padded)
 *   0x372   8   modules online | blocking charge | blocking discharge | offline (u16 each)
 *   0x373   8   min cell mV | max cell mV | min temperature K | max temperature K (u16 each)
 *
 * Byte layouts are checked in test/inverter/pylon-lv.test.ts against the real captures A and B of protocols.md
 * §4.3 and against our independent decoder (src/bms/pylon-can/protocol.ts).
 */

import { put16 } from '../bytes/fields.js';
import type { CanFrame } from '../links/can/can-frame.js';
import type { InverterAlarms, InverterValues } from './inverter-view.js';

export interface PylonLvOptions {
  /** 0x35E, at most 8 ASCII characters (default "PYLON"). */
  manufacturer?: string;
  /** Add 0x35A, 0x35F, 0x370–0x373. */
  victronExtensions?: boolean;
  /** 0x370/0x371 BMS name (16 characters at most; default "batterybank"). */
  name?: string;
}

export const PYLON_LV_PERIOD_MS = 1000;
export const DEFAULT_PYLON_MANUFACTURER = 'PYLON';

/** Inverter → battery frames a Pylon battery listens for. */
export const PYLON_INVERTER_IDS = { keepAlive: 0x305, victron: 0x307 } as const;

function ascii(text: string, length: number, pad: number): Uint8Array {
  const out = new Uint8Array(length).fill(pad);
  for (let i = 0; i < Math.min(length, text.length); i++) {
    const c = text.charCodeAt(i);
    out[i] = c >= 0x20 && c <= 0x7e ? c : 0x3f;
  }
  return out;
}

const frame = (id: number, data: Uint8Array): CanFrame => ({ id, ext: false, data });

/** 0x359 bytes 0–3 from the alarm levels: protection bits for level 2, alarm bits for level ≥ 1. */
export function pylonProtectionBytes(a: InverterAlarms): [number, number, number, number] {
  const on = (cond: boolean, bit: number) => (cond ? 1 << bit : 0);
  const p = (l: number) => l === 2;
  const w = (l: number) => l >= 1;
  const ot = Math.max(a.highTemperature, a.highChargeTemperature);
  const ut = Math.max(a.lowTemperature, a.lowChargeTemperature);
  const dOc = Math.max(a.highDischargeCurrent, a.shortCircuit);
  return [
    on(p(a.highVoltage), 1) | on(p(a.lowVoltage), 2) | on(p(ot), 3) | on(p(ut), 4) | on(p(dOc), 7),
    on(p(a.highChargeCurrent), 0) | on(p(a.internalFailure), 3),
    on(w(a.highVoltage), 1) | on(w(a.lowVoltage), 2) | on(w(ot), 3) | on(w(ut), 4) | on(w(dOc), 7),
    on(w(a.highChargeCurrent), 0) | on(w(a.communication), 3),
  ];
}

/** The 12 SMA/Victron pairs of 0x35A after "general", in wire order. */
function alarmPairs(a: InverterAlarms): number[] {
  return [
    a.highVoltage,
    a.lowVoltage,
    a.highTemperature,
    a.lowTemperature,
    a.highChargeTemperature,
    a.lowChargeTemperature,
    a.highDischargeCurrent,
    a.highChargeCurrent,
    0, // contactor: nothing to report, "ok"
    a.shortCircuit,
    Math.max(a.internalFailure, a.communication),
    a.cellImbalance,
  ];
}

/**
 * 0x35A: alarms (level 2) in bytes 0–3, warnings (level 1) in bytes 4–7; 01 active, 10 ok, unused pairs 00.
 * Pair 0 ("general") is active when any pair of its half is.
 */
export function pylonAlarmFrameData(a: InverterAlarms): Uint8Array {
  const out = new Uint8Array(8);
  const pairs = alarmPairs(a);
  for (const [half, level] of [
    [0, 2],
    [4, 1],
  ] as const) {
    const active = pairs.map((l) => l === level);
    [active.some(Boolean), ...active].forEach((on, i) => {
      const byte = half + (i >> 2);
      out[byte] = (out[byte] as number) | ((on ? 0b01 : 0b10) << ((i & 3) * 2));
    });
  }
  return out;
}

/** The once-a-second set, in the order Pylon batteries send it. */
export function encodePylonLv(v: InverterValues, opts: PylonLvOptions = {}): CanFrame[] {
  const ext = opts.victronExtensions === true;
  const f351 = new Uint8Array(8);
  put16(f351, 0, v.chargeVoltage * 10, false);
  put16(f351, 2, v.chargeCurrent * 10, true);
  put16(f351, 4, v.dischargeCurrent * 10, true);
  put16(f351, 6, v.dischargeVoltage * 10, false);
  const f355 = new Uint8Array(ext ? 8 : 4);
  put16(f355, 0, v.soc, false);
  put16(f355, 2, v.soh, false);
  if (ext) put16(f355, 4, v.soc * 100, false);
  const f356 = new Uint8Array(6);
  put16(f356, 0, v.voltage * 100, true);
  put16(f356, 2, v.current * 10, true);
  put16(f356, 4, v.temperature * 10, true);
  const [p0, p1, a0, a1] = pylonProtectionBytes(v.alarms);
  const modules = Math.min(255, Math.max(0, v.modules.online));
  const f359 = Uint8Array.of(p0, p1, a0, a1, modules, 0x50, 0x4e);
  const f35c = Uint8Array.of(
    (v.chargeEnable ? 0x80 : 0) | (v.dischargeEnable ? 0x40 : 0) | (v.forceCharge && v.chargeEnable ? 0x20 : 0),
    0,
  );
  const frames = [
    frame(0x351, f351),
    frame(0x355, f355),
    frame(0x356, f356),
    frame(0x359, f359),
    frame(0x35c, f35c),
    frame(0x35e, ascii(opts.manufacturer ?? DEFAULT_PYLON_MANUFACTURER, 8, 0x20)),
  ];
  if (!ext) return frames;
  const f35f = new Uint8Array(8);
  put16(f35f, 4, v.capacityInstalled, false);
  const name = ascii(opts.name ?? 'batterybank', 16, 0);
  const f372 = new Uint8Array(8);
  put16(f372, 0, v.modules.online, false);
  put16(f372, 2, v.modules.blockingCharge, false);
  put16(f372, 4, v.modules.blockingDischarge, false);
  put16(f372, 6, v.modules.offline, false);
  const f373 = new Uint8Array(8);
  put16(f373, 0, v.minCellVoltage * 1000, false);
  put16(f373, 2, v.maxCellVoltage * 1000, false);
  // Kelvin as integers: 0 °C unknown is sent as 273 K, like any other reading.
  put16(f373, 4, v.minTemperature + 273.15, false);
  put16(f373, 6, v.maxTemperature + 273.15, false);
  frames.push(
    frame(0x35a, pylonAlarmFrameData(v.alarms)),
    frame(0x35f, f35f),
    frame(0x370, name.slice(0, 8)),
    frame(0x371, name.slice(8, 16)),
    frame(0x372, f372),
    frame(0x373, f373),
  );
  return frames;
}

/** Is this a frame an inverter sends to a Pylon battery (keep-alive 0x305, Victron 0x307)? */
export function isPylonInverterFrame(f: CanFrame): boolean {
  return !f.ext && (f.id === PYLON_INVERTER_IDS.keepAlive || f.id === PYLON_INVERTER_IDS.victron);
}

/** The inverter's brand when a frame names it: Victron's 0x307 carries "VIC" at bytes 4–6. */
export function pylonInverterBrand(f: CanFrame): string | undefined {
  if (f.ext || f.id !== PYLON_INVERTER_IDS.victron) return undefined;
  const d = f.data;
  return d[4] === 0x56 && d[5] === 0x49 && d[6] === 0x43 ? 'Victron' : undefined;
}
