/**
 * The JK04 cell-info record of old JK-B…A…S boards (hardware 2.x / 3.x, e.g. JK-B2A16S firmware 3.3.0) over BLE.
 * Same 300-byte frame as JK02 (55 AA EB 90 | type | counter | data | sum8, checked by checkRecord of
 * ../jk-modbus/jk02-record.ts), but the values are IEEE floats (protocols.md §2.2: "JK04 (HW 2.x/3.x, float32
 * values). All multi-byte values LE"). protocols.md gives no JK04 byte table; the offsets below were read off
 * the real capture test/fixtures/jk-ble/JK-B2A16S-3.3.0-BLE-JK04.txt (63 records) and checked against each
 * other: average = mean of the cells, delta = max − min, max/min index point at the extreme cells, pack
 * voltage ≈ Σ cells, balance-current sign follows the balancing action. Pure.
 *
 * Cell info (type 02), frame offsets, all LE:
 *   Off  Len   Field                          Type / unit
 *   6    4×24  cell voltages (24 slots)       f32 V (unused slots 0)
 *   102  4×24  cell wire resistances          f32 Ω
 *   198  4     (unknown, 0 in the capture)
 *   202  4     average cell voltage           f32 V
 *   206  4     cell voltage delta             f32 V
 *   210  4     (unknown, 0 in the capture)
 *   214  4     enabled-cell bitmask           u32, bit0 = cell 1 (0x0000FFFF = 16 cells)
 *   218  1     cell with the highest voltage  u8, 0-based
 *   219  1     cell with the lowest voltage   u8, 0-based
 *   220  1     balancing: 0 off, 1 charging, 2 discharging
 *   221  1     (unknown, always 1)
 *   222  4     balance current                f32 A (+ while 1, − while 2)
 *   230  8     pack voltage                   f64 V
 *   286  4     uptime                         u32 s
 * The rest (260–265, 290–297) changes but has no known meaning; the board (an active balancer) reports no
 * pack current, SoC, temperatures or FET states in this record. JK04 settings (type 01) are not decoded.
 */
import { ByteReader } from '../../bytes/byte-reader.js';
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { FrameError } from '../../domain/errors.js';
import { round } from '../../domain/round.js';
import { checkRecord, type Jk02DeviceInfo, Jk02RecordType, jk02Identity } from '../jk-modbus/jk02-record.js';

/** Cell slots in a JK04 record. */
export const JK04_CELL_SLOTS = 24;

/** A decoded JK04 cell-info record, SI units. */
export interface Jk04CellInfo {
  /** Voltages of the enabled cells, V (0.1 mV resolution), cell 1 first. */
  cellVoltages: number[];
  /** Enabled-cell bitmask as sent. */
  enabledCells: number;
  /** Cell wire resistances of the enabled cells, Ω (0.1 mΩ resolution). */
  wireResistances: number[];
  averageCellVoltage: number;
  deltaCellVoltage: number;
  /** 0-based. */
  maxCellIndex: number;
  /** 0-based. */
  minCellIndex: number;
  /** 0 off, 1 charge balancing, 2 discharge balancing. */
  balancing: number;
  /** Balancer current, A. */
  balanceCurrent: number;
  /** Pack voltage, V (1 mV resolution). */
  voltage: number;
  uptimeSeconds: number;
}

/** Decode one 300-byte JK04 cell-info record. Throws FrameError (truncated, bad-length, bad-header, bad-checksum, unexpected-reply, invalid-value). */
export function decodeJk04CellInfo(raw: Uint8Array): Jk04CellInfo {
  checkRecord(raw);
  const r = new ByteReader(raw);
  const type = r.u8(4);
  if (type !== Jk02RecordType.cellInfo) {
    throw new FrameError(
      'unexpected-reply',
      `record type 0x${type.toString(16).padStart(2, '0')}, JK04 cell info is 02`,
    );
  }
  const enabledCells = r.u32le(214);
  const cellVoltages: number[] = [];
  const wireResistances: number[] = [];
  for (let i = 0; i < JK04_CELL_SLOTS; i++) {
    if (((enabledCells >>> i) & 1) === 0) continue;
    cellVoltages.push(round(f32(r, 6 + 4 * i), 4));
    wireResistances.push(round(f32(r, 102 + 4 * i), 4));
  }
  const voltage = f64(r, 230);
  if (!Number.isFinite(voltage) || voltage < 0 || cellVoltages.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new FrameError('invalid-value', 'JK04 voltages are not finite non-negative floats: not a JK04 record?');
  }
  return {
    cellVoltages,
    enabledCells,
    wireResistances,
    averageCellVoltage: round(f32(r, 202), 4),
    deltaCellVoltage: round(f32(r, 206), 4),
    maxCellIndex: r.u8(218),
    minCellIndex: r.u8(219),
    balancing: r.u8(220),
    balanceCurrent: round(f32(r, 222), 3),
    voltage: round(voltage, 3),
    uptimeSeconds: r.u32le(286),
  };
}

/** A snapshot of what a JK04 board reports: voltages only (no current, SoC, temperatures, FETs or alarms). */
export function jk04ToSnapshot(
  cell: Jk04CellInfo,
  about: Jk02DeviceInfo | undefined,
  timestampMs: number,
): BatterySnapshot {
  return {
    timestampMs,
    voltage: cell.voltage,
    cellVoltages: cell.cellVoltages,
    cellCount: cell.cellVoltages.length,
    protection: {},
    identity: jk02Identity(about),
  };
}

function f32(r: ByteReader, offset: number): number {
  const b = r.slice(offset, 4);
  return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
}

function f64(r: ByteReader, offset: number): number {
  const b = r.slice(offset, 8);
  return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
}
