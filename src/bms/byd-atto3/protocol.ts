/**
 * BYD Atto 3 (60 kWh, 126S LFP) pack broadcast frames, listen-only. Pure. protocols.md §6.2, docs/protocols/byd.md.
 * 500 kbit/s, 11-bit ids. Frames with a checksum carry chk = ~(Σ bytes 0..6) & 0xFF in byte 7.
 *
 *   0x444 bytes 0–1 LE & 0x0FFF pack voltage V | 2–3 LE current, offset 5000, 0.1 A (+ = charge) | 4 SoH % | 5 SoC %
 *   0x438 bytes 5–6 LE pack voltage 0.1 V
 *   0x447 0 coldest sensor # | 1 min temp (v − 40 °C) | 2 hottest sensor # | 3 max temp | 4–5 LE & 0x0FFF SoC 0.1 %
 *         | 6 average temp (v − 40 °C)
 *   0x43A insulation resistance (bytes 2–3 LE)
 * The polled UDS values (uds.ts) fill the same snapshot fields where the broadcast is missing; cell min/max and
 * the power limits stay in BydState (the snapshot model has no field for them; not all 126 cells are known).
 * Contactor control (the "vehicle" keep-alive 0x12D / 0x441 that closes the contactors) is out of scope: this
 * family only reads a pack that something else keeps awake.
 */

import { u16le } from '../../bytes/fields.js';
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import { round } from '../../domain/round.js';
import type { CanFrame } from '../../links/can/can-frame.js';

export const BydId = { status: 0x444, voltage: 0x438, temperatures: 0x447, insulation: 0x43a } as const;
const CHECKED: ReadonlySet<number> = new Set(Object.values(BydId));

export function isBydId(id: number): boolean {
  return CHECKED.has(id);
}

export function bydChecksum(data: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < 7; i++) s += data[i] ?? 0;
  return ~s & 0xff;
}

export interface BydState {
  voltage?: number;
  /** 0x438 voltage, 0.1 V resolution (preferred over 0x444's whole volts). */
  voltagePrecise?: number;
  current?: number;
  soh?: number;
  soc?: number;
  socPrecise?: number;
  temperatureMin?: number;
  temperatureMax?: number;
  temperatureAverage?: number;
  coldestSensor?: number;
  hottestSensor?: number;
  insulation?: number;
  // ---- polled over UDS (uds.ts) ----
  /** PID 0x0005, whole %. */
  polledSoc?: number;
  /** PID 0x0008, whole V. */
  polledVoltage?: number;
  /** PID 0x0009, A, + = charge. */
  polledCurrent?: number;
  /** PID 0x000A / 0x000E, allowed charge / discharge power, W. */
  chargePowerLimit?: number;
  dischargePowerLimit?: number;
  /** PID 0x002B / 0x002D, lowest / highest cell voltage, V (cell numbers are not in these replies). */
  cellVoltageMin?: number;
  cellVoltageMax?: number;
  /** PID 0x002F / 0x0031 / 0x0032, cell temperatures, °C. */
  cellTemperatureMin?: number;
  cellTemperatureMax?: number;
  cellTemperatureAverage?: number;
}

/** Decode one broadcast frame. Throws FrameError: other id, not 8 bytes, bad checksum. */
export function decodeBydFrame(frame: CanFrame): BydState {
  if (frame.ext || !isBydId(frame.id)) {
    throw new FrameError('unexpected-reply', `0x${frame.id.toString(16)} is not a decoded BYD Atto 3 frame`);
  }
  const d = frame.data;
  if (d.length !== 8) throw new FrameError('bad-length', `0x${frame.id.toString(16)} has ${d.length} bytes, not 8`);
  if (bydChecksum(d) !== d[7]) throw new FrameError('bad-checksum', `0x${frame.id.toString(16)} checksum mismatch`);
  switch (frame.id) {
    case BydId.status:
      return {
        voltage: (u16le(d, 0) as number) & 0x0fff,
        current: round(((u16le(d, 2) as number) - 5000) * 0.1, 1),
        soh: d[4] as number,
        soc: d[5] as number,
      };
    case BydId.voltage:
      return { voltagePrecise: round((u16le(d, 5) as number) * 0.1, 1) };
    case BydId.temperatures:
      return {
        coldestSensor: d[0] as number,
        temperatureMin: (d[1] as number) - 40,
        hottestSensor: d[2] as number,
        temperatureMax: (d[3] as number) - 40,
        socPrecise: round(((u16le(d, 4) as number) & 0x0fff) * 0.1, 1),
        temperatureAverage: (d[6] as number) - 40,
      };
    default:
      return { insulation: u16le(d, 2) as number };
  }
}

export function bydSnapshot(s: BydState, timestampMs: number): BatterySnapshot {
  const out: BatterySnapshot = { timestampMs, protection: {}, identity: { manufacturer: 'BYD', model: 'Atto 3 pack' } };
  const v = s.voltagePrecise ?? s.voltage ?? s.polledVoltage;
  if (v !== undefined) out.voltage = v;
  const current = s.current ?? s.polledCurrent;
  if (current !== undefined) out.current = current;
  if (v !== undefined && current !== undefined) out.power = round(v * current, 1);
  const soc = s.socPrecise ?? s.soc ?? s.polledSoc;
  if (soc !== undefined) out.soc = soc;
  if (s.soh !== undefined) out.soh = s.soh;
  const temps = [];
  if (s.temperatureMin !== undefined)
    temps.push({ name: `min (sensor ${s.coldestSensor})`, celsius: s.temperatureMin });
  if (s.temperatureMax !== undefined)
    temps.push({ name: `max (sensor ${s.hottestSensor})`, celsius: s.temperatureMax });
  if (s.temperatureAverage !== undefined) temps.push({ name: 'average', celsius: s.temperatureAverage });
  // The polled cell temperatures stand in for 0x447 only when the broadcast is missing (same quantities).
  if (temps.length === 0) {
    if (s.cellTemperatureMin !== undefined) temps.push({ name: 'cell min', celsius: s.cellTemperatureMin });
    if (s.cellTemperatureMax !== undefined) temps.push({ name: 'cell max', celsius: s.cellTemperatureMax });
    if (s.cellTemperatureAverage !== undefined) temps.push({ name: 'cell average', celsius: s.cellTemperatureAverage });
  }
  if (temps.length > 0) out.temperatures = temps;
  if (s.cellVoltageMin !== undefined) out.cellVoltageMin = s.cellVoltageMin;
  if (s.cellVoltageMax !== undefined) out.cellVoltageMax = s.cellVoltageMax;
  out.cellCount = 126;
  return out;
}

// ---- pack side (simulator) ---------------------------------------------------------------------------------

export interface BydValues {
  voltage: number;
  current: number;
  soc: number;
  soh: number;
  temperatureMin: number;
  temperatureMax: number;
}

function sealed(id: number, bytes: number[]): CanFrame {
  const data = Uint8Array.from(bytes.slice(0, 7).concat([0]));
  data[7] = bydChecksum(data);
  return { id, ext: false, data };
}

/** 0x444, 0x438 and 0x447 for the values. */
export function encodeBydFrames(v: BydValues): CanFrame[] {
  const volts = Math.round(v.voltage) & 0x0fff;
  const cur = Math.round(v.current * 10 + 5000);
  const dv = Math.round(v.voltage * 10);
  const soc = Math.round(v.soc * 10) & 0x0fff;
  const avg = Math.round((v.temperatureMin + v.temperatureMax) / 2) + 40;
  return [
    sealed(BydId.status, [volts & 0xff, volts >> 8, cur & 0xff, cur >> 8, v.soh, Math.round(v.soc), 0]),
    sealed(BydId.voltage, [0x55, 0x55, 0x01, 0, 0, dv & 0xff, dv >> 8]),
    sealed(BydId.temperatures, [1, v.temperatureMin + 40, 2, v.temperatureMax + 40, soc & 0xff, soc >> 8, avg]),
  ];
}
