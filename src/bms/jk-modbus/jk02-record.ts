/**
 * The JK "JK02" 300-byte record (`55 AA EB 90`): what JK-PB inverter BMSes send over RS485 after a trigger
 * write, and what JK-B…A…S smart boards send over BLE. One decoder for both links. Pure.
 * Sources: protocols.md §2.2 / §2.3 (our notes on syssi/esphome-jk-bms docs/protocol-design-ble.md and
 * mr-manuel/venus-os_dbus-serialbattery bms-docs/JKBMS-PB.md), checked against the real frames in
 * test/fixtures/jk/. Notes in docs/protocols/jk.md.
 *
 * Record: 55 AA EB 90 | type (01 settings, 02 cell info, 03 device info) | counter | data … | sum8
 * sum8 = Σ bytes 0 … 298 & 0xFF, at byte 299. All multi-byte values little-endian.
 * Two layouts: JK02_32S (JK-PB and hardware ≥ 11: 32 cell slots) and JK02_24S (hardware < 11: 24 slots;
 * every field after the cell block sits 16 bytes earlier, after the resistance block 32 bytes earlier).
 *
 * Cell info (type 02), frame offsets:
 *   32S  24S  Len Field                         Scale
 *   6    6    2×n cell voltages (32 / 24 slots)  u16 mV
 *   70   54   4   enabled-cell bitmask          bit0 = cell 1
 *   74   58   2   average cell voltage          u16 mV
 *   76   60   2   cell voltage delta            u16 mV
 *   78   62   1+1 max / min cell (0-based)
 *   80   64   2×n cell wire resistances         u16 mΩ
 *   144  134  2   MOSFET temperature            s16 0.1 °C
 *   150  118  4   pack voltage                  u32 mV
 *   154  122  4   power                         u32 mW (no sign: we use V × I)
 *   158  126  4   current                       s32 mA, + = charging
 *   162  130  2   temperature 1                 s16 0.1 °C
 *   164  132  2   temperature 2                 s16 0.1 °C
 *   166  136  4/2 alarm bits (32S u32, 24S u16) ALARM_BITS
 *   170  138  2   balance current               s16 mA
 *   172  140  1   balancing: 0 off, 1 charging, 2 discharging
 *   173  141  1   SoC %
 *   174  142  4   remaining capacity            s32 mAh
 *   178  146  4   nominal capacity              u32 mAh
 *   182  150  4   cycles                        u32
 *   186  154  4   total cycle capacity          u32 mAh
 *   190  158  1   SoH %
 *   194  162  4   running time                  u32 s
 *   198  166  1   charge FET on
 *   199  167  1   discharge FET on
 * Settings (type 01, both layouts, u32 / s32): 6 smart sleep mV, 10 cell UVP mV, 14 UVP recovery, 18 cell OVP,
 *   22 OVP recovery, 26 balance trigger delta, 30 SoC-100 % mV, 34 SoC-0 % mV, 38 request-charge mV,
 *   42 request-float mV, 46 power-off mV, 50 max charge current mA, 62 max discharge current mA,
 *   78 max balance current mA, 82–110 temperature limits 0.1 °C (signed), 114 cell count,
 *   118 / 122 / 126 charge / discharge / balance switches, 130 nominal capacity mAh, 138 balance start mV.
 * Device info (type 03): 6 model (16 ASCII), 22 hardware (8), 30 software (8), 38 uptime s (u32),
 *   42 power-on count (u32), 46 device name (16), 78 production date YYMMDD (8), 86 serial number (11).
 */
import { ByteReader } from '../../bytes/byte-reader.js';
import { sum8 } from '../../bytes/checksum.js';
import type { BatteryIdentity, ProtectionFlags } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';

/** Record length. */
export const JK02_RECORD_LENGTH = 300;
/** First four bytes of every record. */
export const JK02_HEADER = Uint8Array.of(0x55, 0xaa, 0xeb, 0x90);

/** Record type (byte 4). */
export const Jk02RecordType = { settings: 0x01, cellInfo: 0x02, deviceInfo: 0x03 } as const;

/** Field layout: JK-PB boards always send 32S. */
export type Jk02Layout = 'jk02-32s' | 'jk02-24s';

/** Cell info in SI units. */
export interface Jk02CellInfo {
  /** Voltages of the enabled cells, V, cell 1 first. */
  cellVoltages: number[];
  /** Enabled-cell bitmask as sent. */
  enabledCells: number;
  averageCellVoltage: number;
  deltaCellVoltage: number;
  /** Cell wire resistances of the enabled cells, Ω. */
  wireResistances: number[];
  mosTemperature: number;
  voltage: number;
  /** A, + = charging. */
  current: number;
  /** Temperature sensors 1 and 2, °C. */
  temperatures: [number, number];
  alarms: number;
  /** Balancer current, A. */
  balanceCurrent: number;
  /** 0 off, 1 charge balancing, 2 discharge balancing. */
  balancing: number;
  soc: number;
  /** Ah. */
  capacityRemaining: number;
  /** Ah. */
  capacityNominal: number;
  cycles: number;
  /** Charge throughput, Ah. */
  totalCycleCapacity: number;
  soh: number;
  runtimeSeconds: number;
  chargeFet: boolean;
  dischargeFet: boolean;
}

/** The settings we use (all values in SI units). */
export interface Jk02Settings {
  smartSleepVoltage: number;
  cellUnderVoltageProtection: number;
  cellUnderVoltageRecovery: number;
  cellOverVoltageProtection: number;
  cellOverVoltageRecovery: number;
  balanceTriggerVoltage: number;
  /** Per-cell voltage the BMS asks chargers for (0 = not set / firmware without it), V. */
  requestChargeVoltage: number;
  /** Per-cell float voltage the BMS asks for (0 = not set), V. */
  requestFloatVoltage: number;
  powerOffVoltage: number;
  maxChargeCurrent: number;
  maxDischargeCurrent: number;
  maxBalanceCurrent: number;
  chargeOverTemperature: number;
  chargeOverTemperatureRecovery: number;
  dischargeOverTemperature: number;
  dischargeOverTemperatureRecovery: number;
  chargeUnderTemperature: number;
  chargeUnderTemperatureRecovery: number;
  mosOverTemperature: number;
  mosOverTemperatureRecovery: number;
  cellCount: number;
  chargeSwitch: boolean;
  dischargeSwitch: boolean;
  balanceSwitch: boolean;
  /** Ah. */
  nominalCapacity: number;
  balanceStartVoltage: number;
}

/** Device info strings. */
export interface Jk02DeviceInfo {
  model: string;
  hardwareVersion: string;
  softwareVersion: string;
  uptimeSeconds: number;
  powerOnCount: number;
  deviceName: string;
  /** As sent, `YYMMDD`. */
  productionDate: string;
  serialNumber: string;
}

/** One checked, decoded record. */
export type Jk02Record =
  | { type: 'cell-info'; counter: number; cellInfo: Jk02CellInfo }
  | { type: 'settings'; counter: number; settings: Jk02Settings }
  | { type: 'device-info'; counter: number; deviceInfo: Jk02DeviceInfo };

/** Alarm bit → snapshot flags (bits 0–15 mean the same in both layouts; 16+ only exist in 32S). */
export const ALARM_BITS: readonly (readonly [number, keyof ProtectionFlags])[] = [
  [2, 'internalFailure'], // cell count mismatch
  [3, 'frontEndError'], // current sensor failure
  [4, 'cellOverVoltage'],
  [5, 'packOverVoltage'],
  [6, 'chargeOverCurrent'],
  [7, 'shortCircuit'], // short circuit while charging
  [8, 'chargeOverTemperature'],
  [9, 'chargeUnderTemperature'],
  [10, 'frontEndError'], // internal communication with the measuring chip
  [11, 'cellUnderVoltage'],
  [12, 'packUnderVoltage'],
  [13, 'dischargeOverCurrent'],
  [14, 'shortCircuit'], // short circuit while discharging
  [15, 'dischargeOverTemperature'],
  [16, 'internalFailure'], // charge MOSFET failure
  [17, 'internalFailure'], // discharge MOSFET failure
  [20, 'internalFailure'], // discharge switch-on failed
  [22, 'internalFailure'], // temperature sensor failure
];

/** Offsets that differ between the layouts (see the table on top). */
interface CellInfoOffsets {
  slots: number;
  enabled: number;
  resistances: number;
  mos: number;
  voltage: number;
  current: number;
  t1: number;
  t2: number;
  alarms: number;
  alarmBytes: 2 | 4;
  balanceCurrent: number;
}

const OFFSETS: Record<Jk02Layout, CellInfoOffsets> = {
  'jk02-32s': {
    slots: 32,
    enabled: 70,
    resistances: 80,
    mos: 144,
    voltage: 150,
    current: 158,
    t1: 162,
    t2: 164,
    alarms: 166,
    alarmBytes: 4,
    balanceCurrent: 170,
  },
  'jk02-24s': {
    slots: 24,
    enabled: 54,
    resistances: 64,
    mos: 134,
    voltage: 118,
    current: 126,
    t1: 130,
    t2: 132,
    alarms: 136,
    alarmBytes: 2,
    balanceCurrent: 138,
  },
};

function hex(b: number): string {
  return b.toString(16).padStart(2, '0').toUpperCase();
}

/** Complete record at `at` with a right checksum. */
export function isValidRecordAt(bytes: Uint8Array, at: number): boolean {
  if (bytes.length - at < JK02_RECORD_LENGTH) return false;
  for (let k = 0; k < 4; k++) if (bytes[at + k] !== JK02_HEADER[k]) return false;
  return sum8(bytes, at, at + JK02_RECORD_LENGTH - 1) === bytes[at + JK02_RECORD_LENGTH - 1];
}

/** Check header, length and checksum of exactly one record. Throws FrameError. */
export function checkRecord(raw: Uint8Array): void {
  for (let k = 0; k < 4 && k < raw.length; k++) {
    if (raw[k] !== JK02_HEADER[k]) {
      throw new FrameError('bad-header', `byte ${k} is ${hex(raw[k] as number)}, a JK02 record starts 55 AA EB 90`);
    }
  }
  if (raw.length < JK02_RECORD_LENGTH) throw new FrameError('truncated', `${raw.length} bytes, a JK02 record has 300`);
  if (raw.length > JK02_RECORD_LENGTH) throw new FrameError('bad-length', `${raw.length} bytes, a JK02 record has 300`);
  const want = sum8(raw, 0, JK02_RECORD_LENGTH - 1);
  const got = raw[JK02_RECORD_LENGTH - 1] as number;
  if (got !== want) throw new FrameError('bad-checksum', `checksum 0x${hex(got)} != computed 0x${hex(want)}`);
}

/** Decode one 300-byte record. Throws FrameError ('bad-header' for a type other than 1, 2, 3). */
export function decodeRecord(raw: Uint8Array, layout: Jk02Layout = 'jk02-32s'): Jk02Record {
  checkRecord(raw);
  const counter = raw[5] as number;
  switch (raw[4]) {
    case Jk02RecordType.cellInfo:
      return { type: 'cell-info', counter, cellInfo: decodeCellInfo(raw, layout) };
    case Jk02RecordType.settings:
      return { type: 'settings', counter, settings: decodeSettings(raw) };
    case Jk02RecordType.deviceInfo:
      return { type: 'device-info', counter, deviceInfo: decodeDeviceInfo(raw) };
    default:
      throw new FrameError('bad-header', `record type 0x${hex(raw[4] as number)} is not 01, 02 or 03`);
  }
}

/** Cell info fields of a checked type-02 record. */
export function decodeCellInfo(raw: Uint8Array, layout: Jk02Layout = 'jk02-32s'): Jk02CellInfo {
  const o = OFFSETS[layout];
  const r = new ByteReader(raw);
  // The 32S tail sits 16 bytes (cells) plus 16 bytes (resistances) after the 24S one.
  const tail = layout === 'jk02-32s' ? 32 : 0;
  const enabledCells = r.u32le(o.enabled);
  const slots: number[] = [];
  for (let i = 0; i < o.slots; i++) if ((enabledCells >>> i) & 1) slots.push(i);
  if (enabledCells === 0) {
    // Some firmwares leave the mask empty: fall back to the slots that carry a voltage.
    for (let i = 0; i < o.slots; i++) if (r.u16le(6 + 2 * i) !== 0) slots.push(i);
  }
  const alarms = o.alarmBytes === 4 ? r.u32le(o.alarms) : r.u16le(o.alarms);
  return {
    cellVoltages: slots.map((i) => r.u16le(6 + 2 * i) / 1000),
    enabledCells,
    averageCellVoltage: r.u16le(o.enabled + 4) / 1000,
    deltaCellVoltage: r.u16le(o.enabled + 6) / 1000,
    wireResistances: slots.map((i) => r.u16le(o.resistances + 2 * i) / 1000),
    mosTemperature: r.s16le(o.mos) / 10,
    voltage: r.u32le(o.voltage) / 1000,
    current: zero(r.s32le(o.current) / 1000),
    temperatures: [r.s16le(o.t1) / 10, r.s16le(o.t2) / 10],
    alarms,
    balanceCurrent: zero(r.s16le(o.balanceCurrent) / 1000),
    balancing: r.u8(140 + tail),
    soc: r.u8(141 + tail),
    capacityRemaining: r.s32le(142 + tail) / 1000,
    capacityNominal: r.u32le(146 + tail) / 1000,
    cycles: r.u32le(150 + tail),
    totalCycleCapacity: r.u32le(154 + tail) / 1000,
    soh: r.u8(158 + tail),
    runtimeSeconds: r.u32le(162 + tail),
    chargeFet: r.u8(166 + tail) !== 0,
    dischargeFet: r.u8(167 + tail) !== 0,
  };
}

/** Settings fields of a checked type-01 record (same offsets in both layouts). */
export function decodeSettings(raw: Uint8Array): Jk02Settings {
  const r = new ByteReader(raw);
  const mv = (at: number) => r.u32le(at) / 1000;
  const ma = (at: number) => r.u32le(at) / 1000;
  const dc = (at: number) => r.s32le(at) / 10;
  return {
    smartSleepVoltage: mv(6),
    cellUnderVoltageProtection: mv(10),
    cellUnderVoltageRecovery: mv(14),
    cellOverVoltageProtection: mv(18),
    cellOverVoltageRecovery: mv(22),
    balanceTriggerVoltage: mv(26),
    requestChargeVoltage: mv(38),
    requestFloatVoltage: mv(42),
    powerOffVoltage: mv(46),
    maxChargeCurrent: ma(50),
    maxDischargeCurrent: ma(62),
    maxBalanceCurrent: ma(78),
    chargeOverTemperature: dc(82),
    chargeOverTemperatureRecovery: dc(86),
    dischargeOverTemperature: dc(90),
    dischargeOverTemperatureRecovery: dc(94),
    chargeUnderTemperature: dc(98),
    chargeUnderTemperatureRecovery: dc(102),
    mosOverTemperature: dc(106),
    mosOverTemperatureRecovery: dc(110),
    cellCount: r.u32le(114),
    chargeSwitch: r.u32le(118) !== 0,
    dischargeSwitch: r.u32le(122) !== 0,
    balanceSwitch: r.u32le(126) !== 0,
    nominalCapacity: r.u32le(130) / 1000,
    balanceStartVoltage: mv(138),
  };
}

/** Device info fields of a checked type-03 record. */
export function decodeDeviceInfo(raw: Uint8Array): Jk02DeviceInfo {
  const r = new ByteReader(raw);
  return {
    model: r.ascii(6, 16),
    hardwareVersion: r.ascii(22, 8),
    softwareVersion: r.ascii(30, 8),
    uptimeSeconds: r.u32le(38),
    powerOnCount: r.u32le(42),
    deviceName: r.ascii(46, 16),
    productionDate: r.ascii(78, 8),
    serialNumber: r.ascii(86, 11),
  };
}

/** Alarm word → snapshot flags; every flag the word can express is set true or false. */
export function protectionFlags(alarms: number): ProtectionFlags {
  const flags: ProtectionFlags = {};
  for (const [bit, name] of ALARM_BITS) flags[name] = (flags[name] ?? false) || ((alarms >>> bit) & 1) === 1;
  return flags;
}

/** `YYMMDD` → ISO date, or undefined when it is not a date. */
export function productionDateIso(yymmdd: string): string | undefined {
  const m = /^(\d{2})(\d{2})(\d{2})$/.exec(yymmdd);
  if (!m) return undefined;
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  return `20${m[1]}-${m[2]}-${m[3]}`;
}

// ---- device side (simulators; never ground truth in tests) ----------------------------------------------

/** Device side: header, type and counter of an empty record (checksum added by finishRecord). */
function newRecord(type: number, counter: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(JK02_RECORD_LENGTH);
  bytes.set(JK02_HEADER, 0);
  bytes[4] = type;
  bytes[5] = counter & 0xff;
  return { bytes, view: new DataView(bytes.buffer) };
}

function finishRecord(bytes: Uint8Array): Uint8Array {
  bytes[JK02_RECORD_LENGTH - 1] = sum8(bytes, 0, JK02_RECORD_LENGTH - 1);
  return bytes;
}

/** Device side: a 32S cell-info record. Cells beyond 32 are refused. */
export function encodeCellInfoRecord(c: Jk02CellInfo, counter = 0): Uint8Array {
  if (c.cellVoltages.length > 32) throw new RangeError('a JK02_32S record has 32 cell slots');
  const { bytes, view: v } = newRecord(Jk02RecordType.cellInfo, counter);
  const u16 = (at: number, x: number) => v.setUint16(at, clampInt(Math.round(x), 0, 0xffff), true);
  const s16 = (at: number, x: number) => v.setInt16(at, clampInt(Math.round(x), -0x8000, 0x7fff), true);
  const u32 = (at: number, x: number) => v.setUint32(at, clampInt(Math.round(x), 0, 0xffffffff), true);
  const s32 = (at: number, x: number) => v.setInt32(at, clampInt(Math.round(x), -0x80000000, 0x7fffffff), true);
  let mask = 0;
  c.cellVoltages.forEach((cell, i) => {
    u16(6 + 2 * i, cell * 1000);
    mask |= 1 << i;
  });
  c.wireResistances.forEach((ohm, i) => {
    if (i < 32) u16(80 + 2 * i, ohm * 1000);
  });
  u32(70, mask >>> 0);
  u16(74, c.averageCellVoltage * 1000);
  u16(76, c.deltaCellVoltage * 1000);
  const volts = c.cellVoltages;
  if (volts.length > 0) {
    bytes[78] = volts.indexOf(Math.max(...volts));
    bytes[79] = volts.indexOf(Math.min(...volts));
  }
  s16(144, c.mosTemperature * 10);
  u32(150, c.voltage * 1000);
  u32(154, Math.abs(c.voltage * c.current) * 1000);
  s32(158, c.current * 1000);
  s16(162, c.temperatures[0] * 10);
  s16(164, c.temperatures[1] * 10);
  u32(166, c.alarms >>> 0);
  s16(170, c.balanceCurrent * 1000);
  bytes[172] = c.balancing & 0xff;
  bytes[173] = clampInt(Math.round(c.soc), 0, 100);
  s32(174, c.capacityRemaining * 1000);
  u32(178, c.capacityNominal * 1000);
  u32(182, c.cycles);
  u32(186, c.totalCycleCapacity * 1000);
  bytes[190] = clampInt(Math.round(c.soh), 0, 100);
  u32(194, c.runtimeSeconds);
  bytes[198] = c.chargeFet ? 1 : 0;
  bytes[199] = c.dischargeFet ? 1 : 0;
  // Temperature-sensor presence (MOSFET, T1, T2), as JK-PB boards report it.
  bytes[214] = 0x07;
  return finishRecord(bytes);
}

/** Device side: a settings record. */
export function encodeSettingsRecord(s: Jk02Settings, counter = 0): Uint8Array {
  const { bytes, view: v } = newRecord(Jk02RecordType.settings, counter);
  const u32 = (at: number, x: number) => v.setUint32(at, clampInt(Math.round(x), 0, 0xffffffff), true);
  const s32 = (at: number, x: number) => v.setInt32(at, clampInt(Math.round(x), -0x80000000, 0x7fffffff), true);
  u32(6, s.smartSleepVoltage * 1000);
  u32(10, s.cellUnderVoltageProtection * 1000);
  u32(14, s.cellUnderVoltageRecovery * 1000);
  u32(18, s.cellOverVoltageProtection * 1000);
  u32(22, s.cellOverVoltageRecovery * 1000);
  u32(26, s.balanceTriggerVoltage * 1000);
  u32(38, s.requestChargeVoltage * 1000);
  u32(42, s.requestFloatVoltage * 1000);
  u32(46, s.powerOffVoltage * 1000);
  u32(50, s.maxChargeCurrent * 1000);
  u32(62, s.maxDischargeCurrent * 1000);
  u32(78, s.maxBalanceCurrent * 1000);
  s32(82, s.chargeOverTemperature * 10);
  s32(86, s.chargeOverTemperatureRecovery * 10);
  s32(90, s.dischargeOverTemperature * 10);
  s32(94, s.dischargeOverTemperatureRecovery * 10);
  s32(98, s.chargeUnderTemperature * 10);
  s32(102, s.chargeUnderTemperatureRecovery * 10);
  s32(106, s.mosOverTemperature * 10);
  s32(110, s.mosOverTemperatureRecovery * 10);
  u32(114, s.cellCount);
  u32(118, s.chargeSwitch ? 1 : 0);
  u32(122, s.dischargeSwitch ? 1 : 0);
  u32(126, s.balanceSwitch ? 1 : 0);
  u32(130, s.nominalCapacity * 1000);
  u32(138, s.balanceStartVoltage * 1000);
  return finishRecord(bytes);
}

/** Device side: a device-info record. */
export function encodeDeviceInfoRecord(d: Jk02DeviceInfo, counter = 0): Uint8Array {
  const { bytes, view: v } = newRecord(Jk02RecordType.deviceInfo, counter);
  const ascii = (at: number, len: number, text: string) => {
    for (let k = 0; k < len && k < text.length; k++) bytes[at + k] = text.charCodeAt(k) & 0x7f;
  };
  ascii(6, 16, d.model);
  ascii(22, 8, d.hardwareVersion);
  ascii(30, 8, d.softwareVersion);
  v.setUint32(38, clampInt(Math.round(d.uptimeSeconds), 0, 0xffffffff), true);
  v.setUint32(42, clampInt(Math.round(d.powerOnCount), 0, 0xffffffff), true);
  ascii(46, 16, d.deviceName);
  ascii(78, 8, d.productionDate);
  // The serial number field holds 10 characters and a NUL on the boards we have seen.
  ascii(86, 10, d.serialNumber);
  return finishRecord(bytes);
}

/** −0 (from 0 / 1000 of a negative zero, or a rounded −0.0004) reads as 0. */
function zero(v: number): number {
  return v === 0 ? 0 : v;
}

function clampInt(v: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, v));
}

/** The snapshot identity of a JK board from its device-info record (JK-PB over RS485, JK02/JK04 over BLE). */
export function jk02Identity(about: Jk02DeviceInfo | undefined): BatteryIdentity {
  const productionDate = about ? productionDateIso(about.productionDate) : undefined;
  return {
    manufacturer: 'JK',
    ...(about?.model ? { model: about.model } : {}),
    ...(about?.serialNumber ? { serial: about.serialNumber } : {}),
    ...(about?.softwareVersion ? { firmware: about.softwareVersion } : {}),
    ...(about?.hardwareVersion ? { hardware: about.hardwareVersion } : {}),
    ...(productionDate ? { productionDate } : {}),
  };
}
