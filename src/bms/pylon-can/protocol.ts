/**
 * Pylon-compatible low-voltage CAN (battery → inverter), with the Victron/SMA extensions. Pure: no I/O.
 * protocols.md §4; docs/protocols/pylon-can.md. 11-bit ids, 500 kbit/s, all fields little-endian, the battery
 * sends its set once a second. DLCs vary between vendors: short frames are decoded as far as they go.
 *
 *   0x351 CVL u16 0.1 V | CCL s16 0.1 A | DCL s16 0.1 A | DVL u16 0.1 V (optional)
 *   0x355 SoC u16 % | SoH u16 % | SoC u16 0.01 % (optional)
 *   0x356 voltage s16 0.01 V | current s16 0.1 A (+ = charge) | temperature s16 0.1 °C (optional)
 *   0x359 protection bytes 0–1 | alarm bytes 2–3 | modules u8 | "PN"
 *   0x35A alarms (bytes 0–3) and warnings (4–7), 2 bits each: 01 active, 10 ok, 00/11 not supported
 *   0x35C bit7 charge enable, bit6 discharge enable, bit5 force charge I, bit4 force charge II, bit3 full charge
 *   0x35E manufacturer ASCII · 0x35F bytes 4–5 online capacity Ah · 0x370/0x371 BMS name ASCII
 *   0x373 min/max cell mV, min/max cell temperature K · 0x379 installed capacity Ah
 */

import { asciiOf, put16, s16le, u16le } from '../../bytes/fields.js';
import type { BatterySnapshot, BmsRequestedLimits, ProtectionFlags } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import { round } from '../../domain/round.js';
import type { CanFrame } from '../../links/can/can-frame.js';

export const PylonCanId = {
  limits: 0x351,
  capacity: 0x354,
  soc: 0x355,
  measurements: 0x356,
  protection: 0x359,
  alarms: 0x35a,
  requests: 0x35c,
  manufacturer: 0x35e,
  info: 0x35f,
  name1: 0x370,
  name2: 0x371,
  extremes: 0x373,
  installed: 0x379,
  keepAlive: 0x305,
  victron: 0x307,
} as const;

export interface PylonRequests {
  chargeEnable: boolean;
  dischargeEnable: boolean;
  forceCharge1: boolean;
  forceCharge2: boolean;
  fullCharge: boolean;
}

/** What a Pylon battery has said so far (each frame fills its part). */
export interface PylonCanState {
  limits?: BmsRequestedLimits;
  soc?: number;
  soh?: number;
  voltage?: number;
  current?: number;
  temperature?: number;
  /** Protection flags from 0x359 bytes 0–1. */
  protection?: ProtectionFlags;
  /** Warnings from 0x359 bytes 2–3 (names). */
  warnings?: string[];
  modules?: number;
  /** Protection flags from 0x35A alarm pairs. */
  alarms35a?: ProtectionFlags;
  requests?: PylonRequests;
  manufacturer?: string;
  name?: string;
  name1?: string;
  name2?: string;
  capacityOnline?: number;
  capacityInstalled?: number;
  capacityRemaining?: number;
  cellMinVoltage?: number;
  cellMaxVoltage?: number;
  cellMinTemperature?: number;
  cellMaxTemperature?: number;
}

export interface PylonDecodeOptions {
  /** Scale of the 0x356 voltage, V per unit: 0.01 (spec), 0.1 for vendors such as Discover. */
  voltageScale?: number;
}

function need(frame: CanFrame, n: number, what: string): void {
  if (frame.data.length < n) {
    throw new FrameError('bad-length', `0x${frame.id.toString(16)} ${what} needs ${n} bytes, got ${frame.data.length}`);
  }
}

const bit = (v: number | undefined, b: number): boolean => v !== undefined && (v & (1 << b)) !== 0;

/** 0x35A 2-bit pair `index` (0-based, in the alarm bytes 0–3): true active, false ok, undefined unsupported. */
function pair(data: Uint8Array, index: number): boolean | undefined {
  const byte = data[index >> 2];
  if (byte === undefined) return undefined;
  const v = (byte >> ((index & 3) * 2)) & 3;
  return v === 1 ? true : v === 2 ? false : undefined;
}

/** The ids this family decodes. */
export function isPylonCanId(id: number): boolean {
  return (
    (id >= 0x351 &&
      id <= 0x35f &&
      id !== 0x352 &&
      id !== 0x353 &&
      id !== 0x357 &&
      id !== 0x358 &&
      id !== 0x35b &&
      id !== 0x35d) ||
    id === 0x370 ||
    id === 0x371 ||
    id === 0x373 ||
    id === 0x379
  );
}

/**
 * Decode one frame into the part of the state it carries. Throws FrameError for a frame of another id
 * (`unexpected-reply`), an extended id, or one too short for its first fields (`bad-length`).
 */
export function decodePylonCanFrame(frame: CanFrame, opts: PylonDecodeOptions = {}): PylonCanState {
  if (frame.ext || !isPylonCanId(frame.id)) {
    throw new FrameError('unexpected-reply', `0x${frame.id.toString(16)} is not a Pylon CAN frame`);
  }
  const d = frame.data;
  switch (frame.id) {
    case PylonCanId.limits: {
      need(frame, 6, 'limits');
      const limits: BmsRequestedLimits = {
        chargeVoltage: round((u16le(d, 0) as number) * 0.1, 1),
        chargeCurrent: round((s16le(d, 2) as number) * 0.1, 1),
        dischargeCurrent: round((s16le(d, 4) as number) * 0.1, 1),
      };
      const dvl = u16le(d, 6);
      if (dvl !== undefined && dvl > 0) limits.dischargeVoltage = round(dvl * 0.1, 1);
      return { limits };
    }
    case PylonCanId.capacity: {
      need(frame, 4, 'capacity');
      return { capacityInstalled: u16le(d, 0) as number, capacityRemaining: u16le(d, 2) as number };
    }
    case PylonCanId.soc: {
      need(frame, 4, 'SoC');
      const hires = u16le(d, 4);
      const soc = hires !== undefined && hires > 0 && hires <= 10_000 ? round(hires / 100, 2) : (u16le(d, 0) as number);
      return { soc, soh: u16le(d, 2) as number };
    }
    case PylonCanId.measurements: {
      need(frame, 4, 'measurements');
      const scale = opts.voltageScale ?? 0.01;
      const out: PylonCanState = {
        voltage: round((s16le(d, 0) as number) * scale, 2),
        current: round((s16le(d, 2) as number) * 0.1, 1),
      };
      const t = s16le(d, 4);
      if (t !== undefined) out.temperature = round(t * 0.1, 1);
      return out;
    }
    case PylonCanId.protection: {
      need(frame, 4, 'protection');
      const [p0, p1, a0, a1] = [d[0], d[1], d[2], d[3]];
      const protection: ProtectionFlags = {
        cellOverVoltage: bit(p0, 1),
        cellUnderVoltage: bit(p0, 2),
        chargeOverTemperature: bit(p0, 3),
        dischargeOverTemperature: bit(p0, 3),
        chargeUnderTemperature: bit(p0, 4),
        dischargeUnderTemperature: bit(p0, 4),
        dischargeOverCurrent: bit(p0, 7),
        chargeOverCurrent: bit(p1, 0),
        internalFailure: bit(p1, 3),
      };
      const warnings: string[] = [];
      const names: [number | undefined, number, string][] = [
        [a0, 1, 'high voltage'],
        [a0, 2, 'low voltage'],
        [a0, 3, 'high temperature'],
        [a0, 4, 'low temperature'],
        [a0, 7, 'high discharge current'],
        [a1, 0, 'high charge current'],
        [a1, 3, 'internal communication'],
      ];
      for (const [byte, b, name] of names) if (bit(byte, b)) warnings.push(name);
      const out: PylonCanState = { protection, warnings };
      if (d[4] !== undefined) out.modules = d[4];
      return out;
    }
    case PylonCanId.alarms: {
      need(frame, 4, 'alarms');
      const flags: ProtectionFlags = {};
      const set = (key: keyof ProtectionFlags, index: number) => {
        const v = pair(d, index);
        if (v !== undefined) flags[key] = v;
      };
      set('packOverVoltage', 1);
      set('packUnderVoltage', 2);
      set('dischargeOverTemperature', 3);
      set('dischargeUnderTemperature', 4);
      set('chargeOverTemperature', 5);
      set('chargeUnderTemperature', 6);
      set('dischargeOverCurrent', 7);
      set('chargeOverCurrent', 8);
      set('shortCircuit', 10);
      set('internalFailure', 11);
      return { alarms35a: flags };
    }
    case PylonCanId.requests: {
      need(frame, 1, 'requests');
      const r = d[0] as number;
      return {
        requests: {
          chargeEnable: bit(r, 7),
          dischargeEnable: bit(r, 6),
          forceCharge1: bit(r, 5),
          forceCharge2: bit(r, 4),
          fullCharge: bit(r, 3),
        },
      };
    }
    case PylonCanId.manufacturer: {
      const m = asciiOf(d);
      return m === undefined ? {} : { manufacturer: m };
    }
    case PylonCanId.info: {
      const cap = u16le(d, 4);
      return cap === undefined || cap === 0 ? {} : { capacityOnline: cap };
    }
    case PylonCanId.name1:
    case PylonCanId.name2: {
      const s = asciiOf(d);
      if (s === undefined) return {};
      return frame.id === PylonCanId.name1 ? { name1: s } : { name2: s };
    }
    case PylonCanId.extremes: {
      need(frame, 4, 'cell extremes');
      const out: PylonCanState = {
        cellMinVoltage: (u16le(d, 0) as number) / 1000,
        cellMaxVoltage: (u16le(d, 2) as number) / 1000,
      };
      const tmin = u16le(d, 4);
      const tmax = u16le(d, 6);
      if (tmin !== undefined) out.cellMinTemperature = round(tmin - 273.15, 2);
      if (tmax !== undefined) out.cellMaxTemperature = round(tmax - 273.15, 2);
      return out;
    }
    case PylonCanId.installed: {
      need(frame, 2, 'installed capacity');
      return { capacityInstalled: u16le(d, 0) as number };
    }
    default:
      // Ids the family knows but does not use (0x352, 0x35B, 0x35D … are excluded by isPylonCanId).
      return {};
  }
}

/** Merge a decoded part into the state (names of 0x370/0x371 joined). */
export function applyPylonCan(state: PylonCanState, part: PylonCanState): void {
  Object.assign(state, part);
  if (part.name1 !== undefined || part.name2 !== undefined) {
    state.name = `${state.name1 ?? ''}${state.name2 ?? ''}`.trim() || undefined;
    if (state.name === undefined) delete state.name;
  }
}

function mergeFlags(a: ProtectionFlags | undefined, b: ProtectionFlags | undefined): ProtectionFlags {
  const out: ProtectionFlags = { ...(a ?? {}) };
  for (const [k, v] of Object.entries(b ?? {}) as [keyof ProtectionFlags, boolean | undefined][]) {
    if (v === undefined) continue;
    out[k] = (out[k] ?? false) || v;
  }
  return out;
}

/**
 * The snapshot of what the battery has said. The limits honour 0x35C: a cleared charge (discharge) enable bit
 * makes the charge (discharge) current limit 0 A, as inverters treat it.
 */
export function pylonSnapshot(state: PylonCanState, timestampMs: number): BatterySnapshot {
  const s: BatterySnapshot = { timestampMs, protection: mergeFlags(state.protection, state.alarms35a), identity: {} };
  if (state.voltage !== undefined) s.voltage = state.voltage;
  if (state.current !== undefined) s.current = state.current;
  if (state.voltage !== undefined && state.current !== undefined) s.power = round(state.voltage * state.current, 2);
  if (state.soc !== undefined) s.soc = state.soc;
  if (state.soh !== undefined) s.soh = state.soh;
  if (state.temperature !== undefined) s.temperatures = [{ name: 'battery', celsius: state.temperature }];
  const installed = state.capacityInstalled ?? state.capacityOnline;
  if (installed !== undefined) s.capacityInstalled = installed;
  if (state.capacityRemaining !== undefined) s.capacityRemaining = state.capacityRemaining;
  else if (installed !== undefined && state.soc !== undefined)
    s.capacityRemaining = round((installed * state.soc) / 100, 1);
  if (state.manufacturer !== undefined) s.identity.manufacturer = state.manufacturer;
  if (state.name !== undefined) s.identity.model = state.name;
  if (state.limits !== undefined) {
    const limits: BmsRequestedLimits = { ...state.limits };
    if (state.requests !== undefined) {
      if (!state.requests.chargeEnable) limits.chargeCurrent = 0;
      if (!state.requests.dischargeEnable) limits.dischargeCurrent = 0;
    }
    s.bmsLimits = limits;
  }
  if (state.requests !== undefined) {
    s.chargeFet = state.requests.chargeEnable;
    s.dischargeFet = state.requests.dischargeEnable;
  }
  return s;
}

// ---- battery side (simulators) ----------------------------------------------------------------------------

/** What a simulated Pylon battery sends. */
export interface PylonCanValues {
  chargeVoltage: number;
  chargeCurrent: number;
  dischargeCurrent: number;
  dischargeVoltage: number;
  soc: number;
  soh: number;
  voltage: number;
  current: number;
  temperature: number;
  modules: number;
  chargeEnable: boolean;
  dischargeEnable: boolean;
  manufacturer: string;
}

/** The once-a-second set: 0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E. */
export function encodePylonCanSet(v: PylonCanValues): CanFrame[] {
  const f351 = new Uint8Array(8);
  put16(f351, 0, v.chargeVoltage * 10, false);
  put16(f351, 2, v.chargeCurrent * 10, true);
  put16(f351, 4, v.dischargeCurrent * 10, true);
  put16(f351, 6, v.dischargeVoltage * 10, false);
  const f355 = new Uint8Array(6);
  put16(f355, 0, Math.round(v.soc), false);
  put16(f355, 2, v.soh, false);
  put16(f355, 4, v.soc * 100, false);
  const f356 = new Uint8Array(6);
  put16(f356, 0, v.voltage * 100, true);
  put16(f356, 2, v.current * 10, true);
  put16(f356, 4, v.temperature * 10, true);
  const f359 = Uint8Array.of(0, 0, 0, 0, v.modules, 0x50, 0x4e);
  const f35c = Uint8Array.of((v.chargeEnable ? 0x80 : 0) | (v.dischargeEnable ? 0x40 : 0), 0);
  const name = new Uint8Array(8).fill(0x20);
  for (let i = 0; i < Math.min(8, v.manufacturer.length); i++) name[i] = v.manufacturer.charCodeAt(i) & 0x7f;
  return [
    { id: 0x351, ext: false, data: f351 },
    { id: 0x355, ext: false, data: f355 },
    { id: 0x356, ext: false, data: f356 },
    { id: 0x359, ext: false, data: f359 },
    { id: 0x35c, ext: false, data: f35c },
    { id: 0x35e, ext: false, data: name },
  ];
}

/** The inverter keep-alive the battery waits for (0x305, 8 zero bytes). */
export const PYLON_KEEPALIVE: CanFrame = { id: 0x305, ext: false, data: new Uint8Array(8) };
