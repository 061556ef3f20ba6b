/** Member BatteryState builders for the bank tests: LFP packs, 3.45 V/cell CVL, 2.9 V/cell low voltage. */
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { type BatteryState, type ChargeLimits, type Health, noAlarms } from '../../src/domain/battery-state.js';

export interface MemberSpec {
  /** Cells in series (default 8). */
  cells?: number;
  /** Voltage of every cell (default 3.3 V); `cellVoltages` overrides it. */
  cellV?: number;
  cellVoltages?: number[];
  current?: number;
  soc?: number;
  /** Installed capacity, Ah (default 100). */
  capacity?: number;
  health?: Health;
  chargeFet?: boolean;
  dischargeFet?: boolean;
  serial?: string;
  temps?: number[];
  /** Own CCL / DCL (default 50 / 60 A). */
  ccl?: number;
  dcl?: number;
  /** Per-cell CVL (default 3.45 V). */
  cvlPerCell?: number;
  snapshot?: Partial<BatterySnapshot>;
  limits?: Partial<ChargeLimits>;
}

/** A member state as the battery monitor would produce it. */
export function member(id: string, spec: MemberSpec = {}): BatteryState {
  const n = spec.cells ?? 8;
  const cells = spec.cellVoltages ?? Array.from({ length: n }, () => spec.cellV ?? 3.3);
  const capacity = spec.capacity ?? 100;
  const soc = spec.soc ?? 50;
  const health = spec.health ?? 'online';
  const snapshot: BatterySnapshot = {
    timestampMs: 1_000_000,
    voltage: Math.round(cells.reduce((a, b) => a + b, 0) * 1000) / 1000,
    current: spec.current ?? 0,
    soc,
    soh: 100,
    capacityInstalled: capacity,
    capacityRemaining: (capacity * soc) / 100,
    cellVoltages: cells,
    cellCount: cells.length,
    temperatures: (spec.temps ?? [25]).map((celsius, i) => ({ name: `T${i + 1}`, celsius })),
    chargeFet: spec.chargeFet ?? true,
    dischargeFet: spec.dischargeFet ?? true,
    protection: {},
    identity: { serial: spec.serial ?? `SN-${id}` },
    ...spec.snapshot,
  };
  const online = health === 'online';
  const chargeOpen = spec.chargeFet === false;
  const dischargeOpen = spec.dischargeFet === false;
  const limits: ChargeLimits = {
    chargeVoltage: Math.round(cells.length * (spec.cvlPerCell ?? 3.45) * 1000) / 1000,
    batteryLowVoltage: Math.round(cells.length * 2.9 * 1000) / 1000,
    chargeCurrent: online && !chargeOpen ? (spec.ccl ?? 50) : 0,
    dischargeCurrent: online && !dischargeOpen ? (spec.dcl ?? 60) : 0,
    chargeReason: !online
      ? health === 'offline'
        ? 'offline'
        : 'data stale'
      : chargeOpen
        ? 'charge FET off'
        : 'config maximum',
    dischargeReason: !online
      ? health === 'offline'
        ? 'offline'
        : 'data stale'
      : dischargeOpen
        ? 'discharge FET off'
        : 'config maximum',
    ...spec.limits,
  };
  const alarms = noAlarms();
  alarms.BmsCable = health === 'offline' ? 2 : health === 'stale' ? 1 : 0;
  return {
    id,
    health,
    snapshot,
    limits,
    alarms,
    connection: `Serial ${id}`,
    productName: 'JBD BMS',
    lastValidMs: 1_000_000,
  };
}
