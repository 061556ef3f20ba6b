/**
 * Seplos V2 BMS (1101-SPxx boards, "10E" boards on their RS485 port, Pace-style clones) on the RS485 "~…\r" protocol:
 * the INFO field table. Framing is in protocol.ts (the same as Pylontech's); what differs is the units (0.01 A, 0.01 V,
 * 0.01 Ah) and the layouts. Pure. Source: Seplos BMS Communication Protocol V2.0 (protocols.md §8.3); real replies from
 * syssi/esphome-seplos-bms (test/fixtures/seplos-pylon-rs485/SOURCE.md); notes in docs/protocols/pylon-rs485.md.
 *
 * Requests: ADR = DIP address 0–15; 0x42 and 0x44 carry INFO = that address, 0x47 and 0x51 carry no INFO.
 *
 * 0x42 telemetry (big-endian):
 *   DATA FLAG (1) · COMMAND GROUP (1) · M (1) · M × u16 cell mV · N (1) · N × u16 temperature 0.1 K
 *   (N = 6: cells 1–4, ambient, power/MOSFET) · s16 current 0.01 A (+ = charging) · u16 voltage 0.01 V ·
 *   u16 remaining 0.01 Ah · P (1) = custom items (10), in order: u16 capacity 0.01 Ah · u16 SOC 0.1 % ·
 *   u16 rated capacity 0.01 Ah · u16 cycles · u16 SOH 0.1 % · u16 port voltage 0.01 V · 4 × u16 reserved
 * 0x44 alarms: DATA FLAG · COMMAND GROUP · M · M × cell alarm · N · N × temperature alarm · current alarm ·
 *   voltage alarm · P (20) · alarm events 1–6 · on/off state · balancing 1 · balancing 2 · system state ·
 *   disconnection 1 · disconnection 2 · alarm events 7–8 · 6 reserved (bit tables: SEPLOS_ALARM_BITS)
 * 0x51 manufacturer info: 10 chars device name · u8 major · u8 minor · 20 chars (protocol.ts).
 * 0x44 has no public capture: its layout is the V2.0 document's.
 */
import type { BatterySnapshot, ProtectionFlags } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import {
  celsiusToKelvinTenths,
  decodeFrame,
  decodeManufacturerInfo,
  InfoReader,
  InfoWriter,
  kelvinTenthsToCelsius,
  PYLON_CID1_LFP,
  PylonCommand,
  type PylonManufacturerInfo,
  tryDecodeFrame,
} from './protocol.js';

/** A 0x42 reply in SI units. Fields after the custom-item count are undefined when a board sends fewer items. */
export interface SeplosTelemetry {
  dataFlag: number;
  commandGroup: number;
  /** V, cell 1 first. */
  cellVoltages: number[];
  /** °C, all sensors in order (cells first, then ambient and power when there are 6). */
  temperatures: number[];
  /** A, + = charging. */
  current: number;
  /** V. */
  voltage: number;
  /** Ah. */
  capacityRemaining: number;
  /** Full-charge capacity, Ah. */
  capacity: number | undefined;
  /** %, 0.1 % resolution. */
  soc: number | undefined;
  /** Rated (design) capacity, Ah. */
  ratedCapacity: number | undefined;
  cycles: number | undefined;
  /** %, 0.1 % resolution. */
  soh: number | undefined;
  /** Voltage at the pack terminals, V. */
  portVoltage: number | undefined;
  consumed: number;
}

/** A 0x44 reply. Alarm byte values: 0 normal, 1 below the lower limit, 2 above the upper limit, 0xF0 other. */
export interface SeplosAlarms {
  dataFlag: number;
  commandGroup: number;
  cellAlarms: number[];
  temperatureAlarms: number[];
  currentAlarm: number;
  voltageAlarm: number;
  /** The P bit bytes as sent (20 on the V2.0 boards). */
  bits: number[];
  chargeFet: boolean;
  dischargeFet: boolean;
  /** One flag per cell 1–16. */
  balancing: boolean[];
  consumed: number;
}

/** Positions of the named bytes inside SeplosAlarms.bits. */
export const SeplosAlarmByte = {
  event1: 0,
  event2: 1,
  event3: 2,
  event4: 3,
  event5: 4,
  event6: 5,
  onOff: 6,
  balancing1: 7,
  balancing2: 8,
  systemState: 9,
  disconnection1: 10,
  disconnection2: 11,
  event7: 12,
  event8: 13,
} as const;

/** Protection bits (the "protection" entries of the V2.0 bit table; "alarm" entries are warnings). [byte, bit, flag]. */
const PROTECTION_BITS: readonly (readonly [number, number, keyof ProtectionFlags])[] = [
  [SeplosAlarmByte.event2, 1, 'cellOverVoltage'],
  [SeplosAlarmByte.event2, 3, 'cellUnderVoltage'],
  [SeplosAlarmByte.event2, 5, 'packOverVoltage'],
  [SeplosAlarmByte.event2, 7, 'packUnderVoltage'],
  [SeplosAlarmByte.event3, 1, 'chargeOverTemperature'],
  [SeplosAlarmByte.event3, 3, 'chargeUnderTemperature'],
  [SeplosAlarmByte.event3, 5, 'dischargeOverTemperature'],
  [SeplosAlarmByte.event3, 7, 'dischargeUnderTemperature'],
  [SeplosAlarmByte.event5, 1, 'chargeOverCurrent'],
  [SeplosAlarmByte.event5, 3, 'dischargeOverCurrent'],
];

/** 0x42 INFO. Throws FrameError. */
export function decodeTelemetry(info: Uint8Array): SeplosTelemetry {
  const r = new InfoReader(info);
  const dataFlag = r.u8();
  const commandGroup = r.u8();
  const cellVoltages: number[] = [];
  for (let i = 0, m = r.u8(); i < m; i++) cellVoltages.push(r.u16() / 1000);
  const temperatures: number[] = [];
  for (let i = 0, n = r.u8(); i < n; i++) temperatures.push(kelvinTenthsToCelsius(r.u16()));
  const current = r.s16() / 100;
  const voltage = r.u16() / 100;
  const capacityRemaining = r.u16() / 100;
  const custom = r.u8();
  // Items in the documented order; a board that sends fewer leaves the rest undefined, more are skipped.
  const item = (k: number, scale: number): number | undefined => (custom > k ? r.u16() / scale : undefined);
  const capacity = item(0, 100);
  const soc = item(1, 10);
  const ratedCapacity = item(2, 100);
  const cycles = item(3, 1);
  const soh = item(4, 10);
  const portVoltage = item(5, 100);
  if (custom > 6) r.skip(2 * (custom - 6));
  return {
    dataFlag,
    commandGroup,
    cellVoltages,
    temperatures,
    current,
    voltage,
    capacityRemaining,
    capacity,
    soc,
    ratedCapacity,
    cycles,
    soh,
    portVoltage,
    consumed: r.offset,
  };
}

/** 0x44 INFO. Throws FrameError. */
export function decodeAlarms(info: Uint8Array): SeplosAlarms {
  const r = new InfoReader(info);
  const dataFlag = r.u8();
  const commandGroup = r.u8();
  const cellAlarms: number[] = [];
  for (let i = 0, m = r.u8(); i < m; i++) cellAlarms.push(r.u8());
  const temperatureAlarms: number[] = [];
  for (let i = 0, n = r.u8(); i < n; i++) temperatureAlarms.push(r.u8());
  const currentAlarm = r.u8();
  const voltageAlarm = r.u8();
  const bits: number[] = [];
  for (let i = 0, p = r.u8(); i < p; i++) bits.push(r.u8());
  if (bits.length <= SeplosAlarmByte.balancing2) {
    throw new FrameError('invalid-value', `${bits.length} alarm bit bytes, the V2.0 layout has 20`);
  }
  const onOff = bits[SeplosAlarmByte.onOff] ?? 0;
  const balance = ((bits[SeplosAlarmByte.balancing2] ?? 0) << 8) | (bits[SeplosAlarmByte.balancing1] ?? 0);
  return {
    dataFlag,
    commandGroup,
    cellAlarms,
    temperatureAlarms,
    currentAlarm,
    voltageAlarm,
    bits,
    dischargeFet: (onOff & 0x01) !== 0,
    chargeFet: (onOff & 0x02) !== 0,
    balancing: Array.from({ length: 16 }, (_, i) => (balance & (1 << i)) !== 0),
    consumed: r.offset,
  };
}

/** 0x44 → protection flags. Short circuit: "output short circuit protection" or its lockout; hardware faults → internal. */
export function protectionFlags(alarms: SeplosAlarms): ProtectionFlags {
  const b = (i: number) => alarms.bits[i] ?? 0;
  const flags: ProtectionFlags = {};
  for (const [byte, bit, name] of PROTECTION_BITS) flags[name] = (b(byte) & (1 << bit)) !== 0;
  flags.shortCircuit = (b(SeplosAlarmByte.event5) & 0xa0) !== 0;
  // Event 1 bits 0–2: voltage / temperature / current sensor faults of the acquisition front end.
  flags.frontEndError = (b(SeplosAlarmByte.event1) & 0x07) !== 0;
  // Event 1 bits 3–7: key switch, cell dropout, FET and current-limit switch faults; event 8 bits 0–1: EEPROM, RTC.
  flags.internalFailure = (b(SeplosAlarmByte.event1) & 0xf8) !== 0 || (b(SeplosAlarmByte.event8) & 0x03) !== 0;
  return flags;
}

/** A Seplos reply recognised by its INFO layout alone. */
export type SeplosReply =
  | { kind: 'telemetry'; value: SeplosTelemetry }
  | { kind: 'alarms'; value: SeplosAlarms }
  | { kind: 'manufacturerInfo'; value: PylonManufacturerInfo };

/**
 * Recognise a reply INFO without knowing the request: the telemetry layout with at least 6 custom items, the alarm
 * layout with 20 bit bytes, each using the INFO exactly, or the 32-byte manufacturer info with an ASCII device name.
 * undefined when none fits. Never throws.
 */
export function identifyReply(info: Uint8Array): SeplosReply | undefined {
  try {
    const value = decodeTelemetry(info);
    if (value.consumed === info.length && value.portVoltage !== undefined) return { kind: 'telemetry', value };
  } catch {
    // another layout
  }
  try {
    const value = decodeAlarms(info);
    if (value.consumed === info.length && value.bits.length === 20) return { kind: 'alarms', value };
  } catch {
    // another layout
  }
  if (info.length === 32 && isPrintable(info.subarray(0, 10)) && isPrintable(info.subarray(12))) {
    return { kind: 'manufacturerInfo', value: decodeManufacturerInfo(info) };
  }
  return undefined;
}

function isPrintable(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0 || (b >= 0x20 && b < 0x7f));
}

/** Decode a reply frame as far as possible without the request. Throws FrameError. */
export function decodeReply(raw: Uint8Array): { address: number; reply: SeplosReply | undefined } {
  const frame = decodeFrame(raw);
  if (frame.cid2 !== 0) throw new FrameError('bms-error', `return code 0x${frame.cid2.toString(16)}`);
  return { address: frame.address, reply: identifyReply(frame.info) };
}

/** Is this a Seplos V2 reply? A valid frame, CID1 0x46, RTN 0 and an INFO identifyReply knows. Never throws. */
export function probe(raw: Uint8Array): boolean {
  const frame = tryDecodeFrame(raw);
  if (frame === undefined || frame.cid1 !== PYLON_CID1_LFP || frame.cid2 !== 0) return false;
  return identifyReply(frame.info) !== undefined;
}

/** INFO of a Seplos request: the address for 0x42 / 0x44, nothing for 0x47 / 0x51 (as ESPHome and the V2.0 tables send). */
export function requestInfo(command: number, address: number): Uint8Array {
  return command === PylonCommand.analogValues || command === PylonCommand.alarmInfo
    ? Uint8Array.of(address & 0xff)
    : new Uint8Array(0);
}

/** Decoded replies of one pack's poll cycle. Only `telemetry` is required. */
export interface SeplosReadings {
  telemetry: SeplosTelemetry;
  alarms?: SeplosAlarms | undefined;
  info?: PylonManufacturerInfo | undefined;
}

/** One pack's replies → snapshot. With 6 sensors the last two are ambient and power (MOSFET) temperature. */
export function toSnapshot(readings: SeplosReadings, timestampMs: number): BatterySnapshot {
  const { telemetry: t, alarms, info } = readings;
  const named = t.temperatures.length === 6;
  const temps = t.temperatures.map((celsius, i) => ({
    name: named && i === 4 ? 'Ambient' : named && i === 5 ? 'MOS' : `T${i + 1}`,
    celsius,
  }));
  const cellCount = t.cellVoltages.length;
  return {
    timestampMs,
    voltage: t.voltage,
    current: t.current,
    power: Math.round(t.voltage * t.current * 100) / 100,
    ...(t.soc !== undefined ? { soc: t.soc } : {}),
    ...(t.soh !== undefined ? { soh: t.soh } : {}),
    capacityRemaining: t.capacityRemaining,
    ...(t.capacity !== undefined ? { capacityInstalled: t.capacity } : {}),
    ...(t.cycles !== undefined ? { cycles: t.cycles } : {}),
    cellCount,
    ...(cellCount > 0 ? { cellVoltages: t.cellVoltages } : {}),
    temperatures: named ? temps.filter((x) => x.name !== 'MOS') : temps,
    ...(named ? { mosTemperature: t.temperatures[5] } : {}),
    ...(alarms !== undefined
      ? {
          chargeFet: alarms.chargeFet,
          dischargeFet: alarms.dischargeFet,
          balancing: alarms.balancing.slice(0, cellCount),
        }
      : {}),
    protection: alarms !== undefined ? protectionFlags(alarms) : {},
    identity: {
      manufacturer: 'Seplos',
      ...(info?.deviceName ? { model: info.deviceName } : {}),
      ...(info?.softwareVersion ? { firmware: info.softwareVersion } : {}),
    },
  };
}

// ---- device side (simulator) -------------------------------------------------------------------------------------------

/** Device side: 0x42 INFO (10 custom items, reserved words 0, as the V2.0 boards send). */
export function encodeTelemetry(t: Omit<SeplosTelemetry, 'consumed'>): Uint8Array {
  const w = new InfoWriter().u8(t.dataFlag).u8(t.commandGroup).u8(t.cellVoltages.length);
  for (const c of t.cellVoltages) w.u16(c * 1000);
  w.u8(t.temperatures.length);
  for (const c of t.temperatures) w.u16(celsiusToKelvinTenths(c));
  w.s16(t.current * 100)
    .u16(t.voltage * 100)
    .u16(t.capacityRemaining * 100)
    .u8(10)
    .u16((t.capacity ?? 0) * 100)
    .u16((t.soc ?? 0) * 10)
    .u16((t.ratedCapacity ?? 0) * 100)
    .u16(t.cycles ?? 0)
    .u16((t.soh ?? 0) * 10)
    .u16((t.portVoltage ?? 0) * 100);
  for (let i = 0; i < 4; i++) w.u16(0);
  return w.toBytes();
}

/** Device side: 0x44 INFO. `bits` is padded with zeros to 20 bytes. */
export function encodeAlarms(a: {
  dataFlag?: number;
  commandGroup: number;
  cellAlarms: readonly number[];
  temperatureAlarms: readonly number[];
  currentAlarm?: number;
  voltageAlarm?: number;
  bits: readonly number[];
}): Uint8Array {
  const w = new InfoWriter()
    .u8(a.dataFlag ?? 0)
    .u8(a.commandGroup)
    .u8(a.cellAlarms.length);
  for (const v of a.cellAlarms) w.u8(v);
  w.u8(a.temperatureAlarms.length);
  for (const v of a.temperatureAlarms) w.u8(v);
  w.u8(a.currentAlarm ?? 0)
    .u8(a.voltageAlarm ?? 0)
    .u8(20);
  for (let i = 0; i < 20; i++) w.u8(a.bits[i] ?? 0);
  return w.toBytes();
}
