/**
 * Deye low-voltage battery rack CAN (master battery → inverter): the Pylon set (0x351 … 0x35E, see pylon-can)
 * plus array extras and per-pack frames, id + n for pack n (n = 0 first). Pure. docs/protocols/deye-can.md,
 * protocols.md §5.3. All fields little-endian, signed 16-bit unless noted.
 */

import { asciiOf, put16, s16le, s32le, u16le } from '../../bytes/fields.js';
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import { round } from '../../domain/round.js';
import type { CanFrame } from '../../links/can/can-frame.js';

/** Packs addressed by id + n. */
export const DEYE_MAX_PACKS = 16;

export const DeyePackBase = {
  measurements: 0x150,
  cells: 0x200,
  limits: 0x250,
  status: 0x400,
  boot: 0x500,
  energy: 0x550,
  serial1: 0x600,
  serial2: 0x650,
} as const;

export const DeyeArrayId = { extremes: 0x361, capacity: 0x363, status: 0x364, currentLimits: 0x371 } as const;

export interface DeyeArrayState {
  cellMaxVoltage?: number;
  cellMinVoltage?: number;
  temperatureMax?: number;
  temperatureMin?: number;
  capacity?: number;
  restingVoltage?: number;
  packCount?: number;
  chargeCurrentLimit?: number;
  dischargeCurrentLimit?: number;
}

export interface DeyePackState {
  voltage?: number;
  current?: number;
  soc?: number;
  soh?: number;
  cellMaxVoltage?: number;
  cellMinVoltage?: number;
  temperature1?: number;
  temperature2?: number;
  mosTemperature?: number;
  currentLimit?: number;
  currentLimitMax?: number;
  /** 0 idle/full, 1 charging, 2 discharging (byte 0 of 0x400+n). */
  state?: number;
  cycles?: number;
  chargedKwh?: number;
  dischargedKwh?: number;
  firmware?: string;
  serial1?: string;
  serial2?: string;
}

export type DeyeFrame =
  | { kind: 'array'; part: DeyeArrayState }
  | { kind: 'pack'; pack: number; base: number; part: DeyePackState };

function need(frame: CanFrame, n: number): void {
  if (frame.data.length < n) {
    throw new FrameError('bad-length', `0x${frame.id.toString(16)} needs ${n} bytes, got ${frame.data.length}`);
  }
}

/** The pack frame base and pack index of `id`, if it is one. */
export function deyePackOf(id: number): { base: number; pack: number } | undefined {
  for (const base of Object.values(DeyePackBase)) {
    if (id >= base && id < base + DEYE_MAX_PACKS) return { base, pack: id - base };
  }
  return undefined;
}

export function isDeyeExtraId(id: number): boolean {
  return deyePackOf(id) !== undefined || Object.values(DeyeArrayId).includes(id as 0x361);
}

/** Decode a Deye-specific frame (not the Pylon set). Throws FrameError for other ids or short frames. */
export function decodeDeyeFrame(frame: CanFrame): DeyeFrame {
  if (frame.ext) throw new FrameError('unexpected-reply', 'Deye uses 11-bit ids');
  const d = frame.data;
  switch (frame.id) {
    case DeyeArrayId.extremes:
      need(frame, 8);
      return {
        kind: 'array',
        part: {
          cellMaxVoltage: (u16le(d, 0) as number) / 1000,
          cellMinVoltage: (u16le(d, 2) as number) / 1000,
          temperatureMax: round((s16le(d, 4) as number) * 0.1, 1),
          temperatureMin: round((s16le(d, 6) as number) * 0.1, 1),
        },
      };
    case DeyeArrayId.capacity:
      need(frame, 4);
      return {
        kind: 'array',
        part: {
          capacity: round((u16le(d, 0) as number) * 0.1, 1),
          restingVoltage: round((u16le(d, 2) as number) * 0.1, 1),
        },
      };
    case DeyeArrayId.status:
      need(frame, 5);
      return { kind: 'array', part: { packCount: d[4] as number } };
    case DeyeArrayId.currentLimits:
      need(frame, 4);
      return {
        kind: 'array',
        part: {
          chargeCurrentLimit: round((s16le(d, 0) as number) * 0.1, 1),
          dischargeCurrentLimit: round((s16le(d, 2) as number) * 0.1, 1),
        },
      };
  }
  const at = deyePackOf(frame.id);
  if (at === undefined) throw new FrameError('unexpected-reply', `0x${frame.id.toString(16)} is not a Deye frame`);
  const { base, pack } = at;
  const out = (part: DeyePackState): DeyeFrame => ({ kind: 'pack', pack, base, part });
  switch (base) {
    case DeyePackBase.measurements:
      need(frame, 8);
      return out({
        voltage: round((u16le(d, 0) as number) * 0.1, 1),
        current: round((s16le(d, 2) as number) * 0.1, 1),
        soc: round((u16le(d, 4) as number) * 0.1, 1),
        soh: round((u16le(d, 6) as number) * 0.1, 1),
      });
    case DeyePackBase.cells:
      need(frame, 8);
      return out({
        cellMaxVoltage: (u16le(d, 0) as number) / 1000,
        cellMinVoltage: (u16le(d, 2) as number) / 1000,
        temperature1: round((s16le(d, 4) as number) * 0.1, 1),
        temperature2: round((s16le(d, 6) as number) * 0.1, 1),
      });
    case DeyePackBase.limits:
      need(frame, 8);
      return out({
        mosTemperature: round((s16le(d, 0) as number) * 0.1, 1),
        currentLimit: s16le(d, 4) as number,
        currentLimitMax: s16le(d, 6) as number,
      });
    case DeyePackBase.status:
      need(frame, 2);
      return out({ state: d[0] as number, cycles: d[1] as number });
    case DeyePackBase.energy:
      need(frame, 8);
      return out({ chargedKwh: (s32le(d, 0) as number) / 1000, dischargedKwh: (s32le(d, 4) as number) / 1000 });
    case DeyePackBase.boot: {
      const s = asciiOf(d);
      return out(s === undefined ? {} : { firmware: s });
    }
    default: {
      const s = asciiOf(d);
      if (s === undefined) return out({});
      return out(base === DeyePackBase.serial1 ? { serial1: s } : { serial2: s });
    }
  }
}

/** Snapshot of one pack from its own frames. */
export function deyePackSnapshot(p: DeyePackState, timestampMs: number): BatterySnapshot {
  const s: BatterySnapshot = { timestampMs, protection: {}, identity: { manufacturer: 'Deye' } };
  if (p.voltage !== undefined) s.voltage = p.voltage;
  if (p.current !== undefined) s.current = p.current;
  if (p.voltage !== undefined && p.current !== undefined) s.power = round(p.voltage * p.current, 2);
  if (p.soc !== undefined) s.soc = p.soc;
  if (p.soh !== undefined) s.soh = p.soh;
  if (p.cycles !== undefined) s.cycles = p.cycles;
  const temps = [];
  if (p.temperature1 !== undefined) temps.push({ name: 'T1', celsius: p.temperature1 });
  if (p.temperature2 !== undefined) temps.push({ name: 'T2', celsius: p.temperature2 });
  if (temps.length > 0) s.temperatures = temps;
  if (p.mosTemperature !== undefined) s.mosTemperature = p.mosTemperature;
  if (p.firmware !== undefined) s.identity.firmware = p.firmware;
  if (p.serial1 !== undefined || p.serial2 !== undefined) s.identity.serial = `${p.serial1 ?? ''}${p.serial2 ?? ''}`;
  return s;
}

// ---- battery side (simulator) ------------------------------------------------------------------------------

export interface DeyePackValues {
  voltage: number;
  current: number;
  soc: number;
  soh: number;
  cellMax: number;
  cellMin: number;
  temperature1: number;
  temperature2: number;
  mosTemperature: number;
  cycles: number;
}

/** Pack n's per-second frames 0x150+n, 0x200+n, 0x250+n, 0x400+n. */
export function encodeDeyePack(n: number, v: DeyePackValues): CanFrame[] {
  const m = new Uint8Array(8);
  put16(m, 0, v.voltage * 10, true);
  put16(m, 2, v.current * 10, true);
  put16(m, 4, v.soc * 10, true);
  put16(m, 6, v.soh * 10, true);
  const c = new Uint8Array(8);
  put16(c, 0, v.cellMax * 1000, true);
  put16(c, 2, v.cellMin * 1000, true);
  put16(c, 4, v.temperature1 * 10, true);
  put16(c, 6, v.temperature2 * 10, true);
  const l = new Uint8Array(8);
  put16(l, 0, v.mosTemperature * 10, true);
  put16(l, 6, 100, true);
  const st = Uint8Array.of(v.current > 0 ? 1 : v.current < 0 ? 2 : 0, v.cycles & 0xff, 0, 0, 0, 0, 0, 0);
  return [
    { id: DeyePackBase.measurements + n, ext: false, data: m },
    { id: DeyePackBase.cells + n, ext: false, data: c },
    { id: DeyePackBase.limits + n, ext: false, data: l },
    { id: DeyePackBase.status + n, ext: false, data: st },
  ];
}

/** Array extras 0x361, 0x363, 0x364 (pack count in byte 4). */
export function encodeDeyeArray(packs: readonly DeyePackValues[], capacityAh: number): CanFrame[] {
  const e = new Uint8Array(8);
  put16(e, 0, Math.max(...packs.map((p) => p.cellMax)) * 1000, true);
  put16(e, 2, Math.min(...packs.map((p) => p.cellMin)) * 1000, true);
  put16(e, 4, Math.max(...packs.map((p) => p.temperature1)) * 10, true);
  put16(e, 6, Math.min(...packs.map((p) => p.temperature1)) * 10, true);
  const cap = new Uint8Array(8);
  put16(cap, 0, capacityAh * 10, true);
  put16(cap, 2, 544, true);
  const st = Uint8Array.of(0, 0, 0, 0, packs.length, 0, 0, 0);
  return [
    { id: DeyeArrayId.extremes, ext: false, data: e },
    { id: DeyeArrayId.capacity, ext: false, data: cap },
    { id: DeyeArrayId.status, ext: false, data: st },
  ];
}
