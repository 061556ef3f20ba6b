/**
 * Pylontech low-voltage batteries (US2000/US3000/US5000/UP2500 …) on the RS485 "~…\r" protocol: the INFO field table.
 * Framing is in protocol.ts. Pure. Source: Pylontech RS485 protocol V3.3 (protocols.md §8.3–8.4); real replies from
 * Frankkkkk/python-pylontech (test/fixtures/seplos-pylon-rs485/SOURCE.md); notes in docs/protocols/pylon-rs485.md.
 *
 * Requests: ADR = pack address (2 = first pack), INFO = 1 byte COMMAND = the same address (0xFF = all packs, 0x42 only).
 *
 * 0x42 analog values (big-endian):
 *   DATA FLAG (1) · COMMAND echo (1), or NUMBER OF MODULES (1) when COMMAND was 0xFF · then per module:
 *   M (1) · M × u16 cell mV · N (1) · N × u16 temperature 0.1 K (first = BMS board, then cell groups)
 *   s16 current 0.1 A (+ = charging) · u16 module voltage mV · u16 remaining mAh
 *   P (1) = user-defined items: 2 → u16 total capacity mAh · u16 cycles
 *                               4 → the same, then u24 remaining mAh · u24 total mAh (the u16 ones are then 0xFFFF)
 * 0x44 alarm info (single pack):
 *   DATA FLAG · COMMAND · M · M × cell alarm · N · N × temperature alarm · charge current alarm · module voltage alarm ·
 *   discharge current alarm · status 1–5 (alarm byte: 0 normal, 1 below lower limit, 2 above upper limit, 0xF0 other)
 *   status1: b0 module over-voltage · b1 cell under-voltage · b2 charge over-current · b4 discharge over-current ·
 *            b5 discharge over-temperature · b6 charge over-temperature · b7 module under-voltage
 *   status2: b0 pre-MOSFET · b1 charge MOSFET · b2 discharge MOSFET · b3 using battery power
 *   status3: b0 buzzer · b3 fully charged · b5 heater · b6 effective discharge current · b7 effective charge current
 *   status4/5: cell 1–8 / 9–16 failure bits
 * 0x47 system parameters: DATA FLAG · u16 cell high / low / under mV · u16 charge high / low temp 0.1 K ·
 *   s16 charge current 0.1 A · u16 module high / low / under mV · u16 discharge high / low temp 0.1 K · s16 discharge
 *   current 0.1 A
 * 0x92 charge/discharge management: COMMAND · u16 charge voltage limit mV · u16 discharge voltage limit mV ·
 *   s16 charge current limit 0.1 A · s16 discharge current limit 0.1 A (sent negative) · status: b7 charge enable,
 *   b6 discharge enable, b5 charge immediately 1, b4 charge immediately 2, b3 full charge request
 * 0x44 and 0x47 have no public capture: their layout is the V3.3 spec's as two independent implementations read it.
 */
import type { BatterySnapshot, ProtectionFlags } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import {
  celsiusToKelvinTenths,
  decodeFrame,
  InfoReader,
  InfoWriter,
  kelvinTenthsToCelsius,
  PYLON_CID1_LFP,
  PylonCommand,
  type PylonManufacturerInfo,
  tryDecodeFrame,
} from './protocol.js';

/** Address of the first (master) pack on a Pylontech stack. */
export const PYLONTECH_FIRST_ADDRESS = 2;
/** COMMAND value asking the master for all packs at once. */
export const PYLONTECH_ALL_PACKS = 0xff;

/** One module of a 0x42 reply. */
export interface PylontechModule {
  /** V, cell 1 first. */
  cellVoltages: number[];
  /** °C: the BMS board sensor first, then the cell-group sensors. */
  temperatures: number[];
  /** A, + = charging. */
  current: number;
  /** V. */
  voltage: number;
  /** Ah. */
  capacityRemaining: number;
  /** Ah. */
  capacityTotal: number;
  cycles: number;
}

/** A 0x42 reply. */
export interface PylontechAnalog {
  dataFlag: number;
  /** Single-pack reply: the pack address the request named; all-packs reply: undefined. */
  address: number | undefined;
  modules: PylontechModule[];
  /** INFO bytes the layout used (less than the INFO length when a firmware appends bytes we do not know). */
  consumed: number;
}

/** Alarm byte values of 0x44. */
export type AlarmLevel = 'normal' | 'low' | 'high' | 'other';

/** A 0x44 reply. */
export interface PylontechAlarms {
  dataFlag: number;
  address: number;
  cellAlarms: AlarmLevel[];
  temperatureAlarms: AlarmLevel[];
  chargeCurrentAlarm: AlarmLevel;
  moduleVoltageAlarm: AlarmLevel;
  dischargeCurrentAlarm: AlarmLevel;
  /** status1 … status5 as sent. */
  status: [number, number, number, number, number];
  chargeFet: boolean;
  dischargeFet: boolean;
  fullyCharged: boolean;
  consumed: number;
}

/** A 0x47 reply (limits in V, °C, A). */
export interface PylontechSystemParameters {
  dataFlag: number;
  cellHighVoltage: number;
  cellLowVoltage: number;
  cellUnderVoltage: number;
  chargeHighTemperature: number;
  chargeLowTemperature: number;
  chargeCurrentLimit: number;
  moduleHighVoltage: number;
  moduleLowVoltage: number;
  moduleUnderVoltage: number;
  dischargeHighTemperature: number;
  dischargeLowTemperature: number;
  dischargeCurrentLimit: number;
}

/** A 0x92 reply. */
export interface PylontechManagement {
  address: number;
  /** V. */
  chargeVoltageLimit: number;
  /** V. */
  dischargeVoltageLimit: number;
  /** A. */
  chargeCurrentLimit: number;
  /** A, as sent (Pylontech sends it negative). */
  dischargeCurrentLimit: number;
  chargeEnable: boolean;
  dischargeEnable: boolean;
  chargeImmediately1: boolean;
  chargeImmediately2: boolean;
  fullChargeRequest: boolean;
}

function readModule(r: InfoReader): PylontechModule {
  const m = r.u8();
  const cellVoltages: number[] = [];
  for (let i = 0; i < m; i++) cellVoltages.push(r.u16() / 1000);
  const n = r.u8();
  const temperatures: number[] = [];
  for (let i = 0; i < n; i++) temperatures.push(kelvinTenthsToCelsius(r.u16()));
  const current = r.s16() / 10;
  const voltage = r.u16() / 1000;
  let remaining = r.u16();
  const userDefined = r.u8();
  if (userDefined !== 2 && userDefined !== 4) {
    throw new FrameError('invalid-value', `user-defined item count ${userDefined}, expected 2 or 4`);
  }
  let total = r.u16();
  const cycles = r.u16();
  if (userDefined === 4) {
    // Packs above 65 Ah: the u16 fields read 0xFFFF and the real values follow as u24.
    remaining = r.u24();
    total = r.u24();
  }
  return {
    cellVoltages,
    temperatures,
    current,
    voltage,
    capacityRemaining: remaining / 1000,
    capacityTotal: total / 1000,
    cycles,
  };
}

/**
 * 0x42 INFO. `mode` says what the request asked: one pack (`single`, COMMAND = its address) or all packs (`all`,
 * COMMAND = 0xFF); the second INFO byte means the address or the module count accordingly. Throws FrameError.
 */
export function decodeAnalogValues(info: Uint8Array, mode: 'single' | 'all' = 'single'): PylontechAnalog {
  const r = new InfoReader(info);
  const dataFlag = r.u8();
  const second = r.u8();
  const count = mode === 'all' ? second : 1;
  if (count < 1) throw new FrameError('invalid-value', 'module count 0');
  const modules: PylontechModule[] = [];
  for (let i = 0; i < count; i++) modules.push(readModule(r));
  return { dataFlag, address: mode === 'single' ? second : undefined, modules, consumed: r.offset };
}

const ALARM_LEVELS: Readonly<Record<number, AlarmLevel>> = { 0: 'normal', 1: 'low', 2: 'high' };

function alarmLevel(v: number): AlarmLevel {
  return ALARM_LEVELS[v] ?? 'other';
}

/** 0x44 INFO (single pack). Throws FrameError. */
export function decodeAlarmInfo(info: Uint8Array): PylontechAlarms {
  const r = new InfoReader(info);
  const dataFlag = r.u8();
  const address = r.u8();
  const cellAlarms: AlarmLevel[] = [];
  for (let i = 0, m = r.u8(); i < m; i++) cellAlarms.push(alarmLevel(r.u8()));
  const temperatureAlarms: AlarmLevel[] = [];
  for (let i = 0, n = r.u8(); i < n; i++) temperatureAlarms.push(alarmLevel(r.u8()));
  const chargeCurrentAlarm = alarmLevel(r.u8());
  const moduleVoltageAlarm = alarmLevel(r.u8());
  const dischargeCurrentAlarm = alarmLevel(r.u8());
  const status: [number, number, number, number, number] = [r.u8(), r.u8(), r.u8(), r.u8(), r.u8()];
  return {
    dataFlag,
    address,
    cellAlarms,
    temperatureAlarms,
    chargeCurrentAlarm,
    moduleVoltageAlarm,
    dischargeCurrentAlarm,
    status,
    chargeFet: (status[1] & 0x02) !== 0,
    dischargeFet: (status[1] & 0x04) !== 0,
    fullyCharged: (status[2] & 0x08) !== 0,
    consumed: r.offset,
  };
}

/** 0x47 INFO. Throws FrameError. */
export function decodeSystemParameters(info: Uint8Array): PylontechSystemParameters {
  const r = new InfoReader(info);
  const dataFlag = r.u8();
  const mv = () => r.u16() / 1000;
  const temp = () => kelvinTenthsToCelsius(r.u16());
  const amps = () => r.s16() / 10;
  return {
    dataFlag,
    cellHighVoltage: mv(),
    cellLowVoltage: mv(),
    cellUnderVoltage: mv(),
    chargeHighTemperature: temp(),
    chargeLowTemperature: temp(),
    chargeCurrentLimit: amps(),
    moduleHighVoltage: mv(),
    moduleLowVoltage: mv(),
    moduleUnderVoltage: mv(),
    dischargeHighTemperature: temp(),
    dischargeLowTemperature: temp(),
    dischargeCurrentLimit: amps(),
  };
}

/** 0x92 INFO. Throws FrameError. */
export function decodeChargeManagement(info: Uint8Array): PylontechManagement {
  const r = new InfoReader(info);
  const address = r.u8();
  const chargeVoltageLimit = r.u16() / 1000;
  const dischargeVoltageLimit = r.u16() / 1000;
  const chargeCurrentLimit = r.s16() / 10;
  const dischargeCurrentLimit = r.s16() / 10;
  const s = r.u8();
  return {
    address,
    chargeVoltageLimit,
    dischargeVoltageLimit,
    chargeCurrentLimit,
    dischargeCurrentLimit,
    chargeEnable: (s & 0x80) !== 0,
    dischargeEnable: (s & 0x40) !== 0,
    chargeImmediately1: (s & 0x20) !== 0,
    chargeImmediately2: (s & 0x10) !== 0,
    fullChargeRequest: (s & 0x08) !== 0,
  };
}

/** status1 bit → protection flag. Cell over-voltage has no status bit (only the per-cell alarm byte). */
const STATUS1_BITS: readonly (readonly [number, keyof ProtectionFlags])[] = [
  [0, 'packOverVoltage'],
  [1, 'cellUnderVoltage'],
  [2, 'chargeOverCurrent'],
  [4, 'dischargeOverCurrent'],
  [5, 'dischargeOverTemperature'],
  [6, 'chargeOverTemperature'],
  [7, 'packUnderVoltage'],
];

/** 0x44 → protection flags (status1; status4/5 cell failures → internalFailure). */
export function protectionFlags(alarms: PylontechAlarms): ProtectionFlags {
  const flags: ProtectionFlags = {};
  for (const [bit, name] of STATUS1_BITS) flags[name] = (alarms.status[0] & (1 << bit)) !== 0;
  flags.internalFailure = alarms.status[3] !== 0 || alarms.status[4] !== 0;
  return flags;
}

/** A Pylontech reply recognised by its INFO layout alone (what the contract and autodetect see). */
export type PylontechReply =
  | { kind: 'analog'; value: PylontechAnalog }
  | { kind: 'management'; value: PylontechManagement };

/**
 * Recognise a reply INFO without knowing the request: an analog-values layout (single pack or all packs) that uses
 * the INFO exactly, or the 10-byte 0x92 layout. undefined when neither fits. Never throws.
 */
export function identifyReply(info: Uint8Array): PylontechReply | undefined {
  if (info.length === 10) return { kind: 'management', value: decodeChargeManagement(info) };
  for (const mode of ['single', 'all'] as const) {
    try {
      const value = decodeAnalogValues(info, mode);
      if (value.consumed === info.length) return { kind: 'analog', value };
    } catch {
      // another layout
    }
  }
  return undefined;
}

/** Decode a reply frame as far as possible without the request: frame checks, then identifyReply. Throws FrameError. */
export function decodeReply(raw: Uint8Array): { address: number; reply: PylontechReply | undefined } {
  const frame = decodeFrame(raw);
  if (frame.cid2 !== 0) throw new FrameError('bms-error', `return code 0x${frame.cid2.toString(16)}`);
  return { address: frame.address, reply: identifyReply(frame.info) };
}

/**
 * Is this a Pylontech reply? A valid frame, CID1 0x46, RTN 0, and an INFO in one of the layouts above. A Seplos 0x42
 * reply fails the analog layout (its user-defined count is 10). Never throws.
 */
export function probe(raw: Uint8Array): boolean {
  const frame = tryDecodeFrame(raw);
  if (frame === undefined || frame.cid1 !== PYLON_CID1_LFP || frame.cid2 !== 0) return false;
  return identifyReply(frame.info) !== undefined;
}

/** Decoded replies of one pack's poll cycle. Only `analog` is required. */
export interface PylontechReadings {
  analog: PylontechModule;
  alarms?: PylontechAlarms | undefined;
  management?: PylontechManagement | undefined;
  info?: PylonManufacturerInfo | undefined;
}

/**
 * One pack's replies → snapshot. The protocol has no SOC field: SOC = remaining / total, as Pylontech's own tools show
 * it. A disabled charge (discharge) in 0x92 becomes a requested current limit of 0.
 */
export function toSnapshot(readings: PylontechReadings, timestampMs: number): BatterySnapshot {
  const { analog: m, alarms, management: g, info } = readings;
  const [board, ...groups] = m.temperatures;
  const soc =
    m.capacityTotal > 0 ? Math.min(100, Math.round((1000 * m.capacityRemaining) / m.capacityTotal) / 10) : undefined;
  return {
    timestampMs,
    voltage: m.voltage,
    current: m.current,
    power: Math.round(m.voltage * m.current * 100) / 100,
    ...(soc !== undefined ? { soc } : {}),
    capacityRemaining: m.capacityRemaining,
    capacityInstalled: m.capacityTotal,
    cycles: m.cycles,
    cellCount: m.cellVoltages.length,
    ...(m.cellVoltages.length > 0 ? { cellVoltages: m.cellVoltages } : {}),
    temperatures: [
      ...(board !== undefined ? [{ name: 'BMS', celsius: board }] : []),
      ...groups.map((celsius, i) => ({ name: `T${i + 1}`, celsius })),
    ],
    ...(alarms !== undefined ? { chargeFet: alarms.chargeFet, dischargeFet: alarms.dischargeFet } : {}),
    protection: alarms !== undefined ? protectionFlags(alarms) : {},
    identity: {
      manufacturer: info?.manufacturer || 'Pylontech',
      ...(info?.deviceName ? { model: info.deviceName } : {}),
      ...(info?.softwareVersion ? { firmware: info.softwareVersion } : {}),
    },
    ...(g !== undefined
      ? {
          bmsLimits: {
            chargeVoltage: g.chargeVoltageLimit,
            dischargeVoltage: g.dischargeVoltageLimit,
            chargeCurrent: g.chargeEnable ? Math.abs(g.chargeCurrentLimit) : 0,
            dischargeCurrent: g.dischargeEnable ? Math.abs(g.dischargeCurrentLimit) : 0,
          },
        }
      : {}),
  };
}

// ---- requests --------------------------------------------------------------------------------------------------------

/** What a Pylontech pack is asked, with the INFO each request carries. */
export function requestInfo(command: number, address: number): Uint8Array {
  // 0x51 manufacturer info carries no COMMAND byte; every per-pack read does.
  return command === PylonCommand.manufacturerInfo ? new Uint8Array(0) : Uint8Array.of(address & 0xff);
}

// ---- device side (simulator) -------------------------------------------------------------------------------------------

function writeModule(w: InfoWriter, m: PylontechModule): void {
  w.u8(m.cellVoltages.length);
  for (const c of m.cellVoltages) w.u16(c * 1000);
  w.u8(m.temperatures.length);
  for (const t of m.temperatures) w.u16(celsiusToKelvinTenths(t));
  w.s16(m.current * 10);
  w.u16(m.voltage * 1000);
  // Like the real packs: above 65.535 Ah the u16 fields read 0xFFFF and u24 values follow (user-defined = 4).
  const big = m.capacityRemaining > 65.535 || m.capacityTotal > 65.535;
  w.u16(big ? 0xffff : m.capacityRemaining * 1000);
  w.u8(big ? 4 : 2);
  w.u16(big ? 0xffff : m.capacityTotal * 1000);
  w.u16(m.cycles);
  if (big) w.u24(m.capacityRemaining * 1000).u24(m.capacityTotal * 1000);
}

/** Device side: 0x42 INFO for one pack (`address`) or all packs (`address` undefined). */
export function encodeAnalogValues(modules: readonly PylontechModule[], address?: number, dataFlag = 0x11): Uint8Array {
  const w = new InfoWriter().u8(dataFlag).u8(address ?? modules.length);
  for (const m of modules) writeModule(w, m);
  return w.toBytes();
}

const ALARM_CODES: Readonly<Record<AlarmLevel, number>> = { normal: 0, low: 1, high: 2, other: 0xf0 };

/** Device side: 0x44 INFO. `status` is status1 … status5. */
export function encodeAlarmInfo(v: {
  dataFlag?: number;
  address: number;
  cellAlarms: readonly AlarmLevel[];
  temperatureAlarms: readonly AlarmLevel[];
  chargeCurrentAlarm: AlarmLevel;
  moduleVoltageAlarm: AlarmLevel;
  dischargeCurrentAlarm: AlarmLevel;
  status: readonly number[];
}): Uint8Array {
  const w = new InfoWriter()
    .u8(v.dataFlag ?? 0x11)
    .u8(v.address)
    .u8(v.cellAlarms.length);
  for (const a of v.cellAlarms) w.u8(ALARM_CODES[a]);
  w.u8(v.temperatureAlarms.length);
  for (const a of v.temperatureAlarms) w.u8(ALARM_CODES[a]);
  w.u8(ALARM_CODES[v.chargeCurrentAlarm])
    .u8(ALARM_CODES[v.moduleVoltageAlarm])
    .u8(ALARM_CODES[v.dischargeCurrentAlarm]);
  for (let i = 0; i < 5; i++) w.u8(v.status[i] ?? 0);
  return w.toBytes();
}

/** Device side: 0x47 INFO. */
export function encodeSystemParameters(v: PylontechSystemParameters): Uint8Array {
  return new InfoWriter()
    .u8(v.dataFlag)
    .u16(v.cellHighVoltage * 1000)
    .u16(v.cellLowVoltage * 1000)
    .u16(v.cellUnderVoltage * 1000)
    .u16(celsiusToKelvinTenths(v.chargeHighTemperature))
    .u16(celsiusToKelvinTenths(v.chargeLowTemperature))
    .s16(v.chargeCurrentLimit * 10)
    .u16(v.moduleHighVoltage * 1000)
    .u16(v.moduleLowVoltage * 1000)
    .u16(v.moduleUnderVoltage * 1000)
    .u16(celsiusToKelvinTenths(v.dischargeHighTemperature))
    .u16(celsiusToKelvinTenths(v.dischargeLowTemperature))
    .s16(v.dischargeCurrentLimit * 10)
    .toBytes();
}

/** Device side: 0x92 INFO. */
export function encodeChargeManagement(v: PylontechManagement): Uint8Array {
  const status =
    (v.chargeEnable ? 0x80 : 0) |
    (v.dischargeEnable ? 0x40 : 0) |
    (v.chargeImmediately1 ? 0x20 : 0) |
    (v.chargeImmediately2 ? 0x10 : 0) |
    (v.fullChargeRequest ? 0x08 : 0);
  return new InfoWriter()
    .u8(v.address)
    .u16(v.chargeVoltageLimit * 1000)
    .u16(v.dischargeVoltageLimit * 1000)
    .s16(v.chargeCurrentLimit * 10)
    .s16(v.dischargeCurrentLimit * 10)
    .u8(status)
    .toBytes();
}
