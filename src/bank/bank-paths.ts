/**
 * The bank-only D-Bus values: path → value, for the D-Bus layer to publish next to the ordinary battery paths
 * (`toDbusValues(bank, info)`), overriding the paths that mean something else for a bank. Pure.
 *
 *   /System/NrOfBatteries, /System/BatteriesSeries, /System/BatteriesParallel, /System/NrOfModules*
 *   /System/{Min,Max}CellVoltage + /System/{Min,Max}VoltageCellId            ids name the member: `b2:C7`
 *   /System/{Min,Max}CellTemperature + /System/{Min,Max}TemperatureCellId    `b2:T1`
 *   /Voltages/Cell<n>, /Balances/Cell<n>       all cells across the bank, string by string, member by member
 *   /Voltages/<member>/Cell<k>                 per member
 *   /Batteries/<member>/{Voltage,Current,Soc,Connected,…}
 *
 * A path table must be fixed when the service is created (victron-dbus.md §7), so the cell positions come from
 * a BankLayout built once, not from whichever members answer now: a member going offline leaves its positions
 * invalid instead of shifting every later cell.
 */
import type { BankState, MemberSummary } from './aggregate.js';
import { lookup, type Topology } from './topology.js';

/** Where each member's cells sit in the bank's cell list. */
export interface BankLayout {
  readonly members: readonly { readonly id: string; readonly cells: number }[];
}

/** D-Bus type of a bank path: double, int32, string (matches the D-Bus layer's DbusType). */
export type BankPathType = 'd' | 'i' | 's';

/** A published value; undefined = invalid. Numbers are always finite. */
export type BankPathValue = number | string | undefined;

/**
 * The cell layout, fixed for the life of the service: members in topology order with their cell counts.
 * Build it once every member's count is known (config or first reply); an unknown count gives that member no
 * cell paths.
 */
export function bankLayout(topology: Topology, cellCounts: Readonly<Record<string, number | undefined>>): BankLayout {
  return {
    members: topology.members.map((id) => {
      const n = lookup(cellCounts, id);
      return { id, cells: n !== undefined && Number.isInteger(n) && n > 0 ? n : 0 };
    }),
  };
}

/** Total cells across the bank: the number of /Voltages/Cell<n> paths. */
export function bankCellCount(layout: BankLayout): number {
  return layout.members.reduce((a, m) => a + m.cells, 0);
}

/** Per-member paths under /Batteries/<id>/ and their types. */
const MEMBER_PATHS = {
  Connected: 'i',
  Health: 's',
  String: 'i',
  Position: 'i',
  ProductName: 's',
  Serial: 's',
  Voltage: 'd',
  Current: 'd',
  Power: 'd',
  Soc: 'd',
  Soh: 'd',
  Capacity: 'd',
  InstalledCapacity: 'd',
  Temperature: 'd',
  NrOfCells: 'i',
  MinCellVoltage: 'd',
  MaxCellVoltage: 'd',
  MinVoltageCellId: 's',
  MaxVoltageCellId: 's',
  AllowToCharge: 'i',
  AllowToDischarge: 'i',
  MaxChargeVoltage: 'd',
  MaxChargeCurrent: 'd',
  MaxDischargeCurrent: 'd',
  ChargeLimitation: 's',
  DischargeLimitation: 's',
  ChargeShare: 'd',
  DischargeShare: 'd',
  Alarm: 'i',
} as const satisfies Record<string, BankPathType>;

type MemberPath = keyof typeof MEMBER_PATHS;

const SYSTEM_PATHS = {
  '/System/NrOfBatteries': 'i',
  '/System/BatteriesSeries': 'i',
  '/System/BatteriesParallel': 'i',
  '/System/NrOfModulesOnline': 'i',
  '/System/NrOfModulesOffline': 'i',
  '/System/NrOfModulesBlockingCharge': 'i',
  '/System/NrOfModulesBlockingDischarge': 'i',
  '/System/NrOfCellsPerBattery': 'i',
  '/System/MinCellVoltage': 'd',
  '/System/MaxCellVoltage': 'd',
  '/System/MinVoltageCellId': 's',
  '/System/MaxVoltageCellId': 's',
  '/System/MinCellTemperature': 'd',
  '/System/MaxCellTemperature': 'd',
  '/System/MinTemperatureCellId': 's',
  '/System/MaxTemperatureCellId': 's',
  '/Voltages/Sum': 'd',
  '/Voltages/Diff': 'd',
  '/Balancing': 'i',
} as const satisfies Record<string, BankPathType>;

/** Every path bankPathValues() fills for this layout, with its D-Bus type (add these to the path table). */
export function bankPathTypes(layout: BankLayout): Record<string, BankPathType> {
  const out: Record<string, BankPathType> = { ...SYSTEM_PATHS };
  const total = bankCellCount(layout);
  for (let n = 1; n <= total; n++) out[`/Voltages/Cell${n}`] = 'd';
  for (let n = 1; n <= total; n++) out[`/Balances/Cell${n}`] = 'i';
  for (const m of layout.members) {
    for (let k = 1; k <= m.cells; k++) out[`/Voltages/${m.id}/Cell${k}`] = 'd';
    for (const [name, type] of Object.entries(MEMBER_PATHS)) out[`/Batteries/${m.id}/${name}`] = type;
  }
  return out;
}

const bit = (b: boolean | undefined): number | undefined => (b === undefined ? undefined : b ? 1 : 0);

function memberValues(m: MemberSummary): Record<MemberPath, BankPathValue> {
  const l = m.limits;
  return {
    Connected: m.connected ? 1 : 0,
    Health: m.health,
    String: m.string + 1,
    Position: m.position + 1,
    ProductName: m.productName,
    Serial: m.serial,
    Voltage: m.voltage,
    Current: m.current,
    Power: m.power,
    Soc: m.soc,
    Soh: m.soh,
    Capacity: m.capacityRemaining,
    InstalledCapacity: m.capacityInstalled,
    Temperature: m.temperature,
    NrOfCells: m.cellCount,
    MinCellVoltage: m.minCell?.value,
    MaxCellVoltage: m.maxCell?.value,
    MinVoltageCellId: m.minCell ? `C${m.minCell.index}` : undefined,
    MaxVoltageCellId: m.maxCell ? `C${m.maxCell.index}` : undefined,
    AllowToCharge: m.connected ? bit(!m.blockingCharge) : undefined,
    AllowToDischarge: m.connected ? bit(!m.blockingDischarge) : undefined,
    MaxChargeVoltage: l.chargeVoltage,
    MaxChargeCurrent: l.chargeCurrent,
    MaxDischargeCurrent: l.dischargeCurrent,
    ChargeLimitation: l.chargeReason,
    DischargeLimitation: l.dischargeReason,
    ChargeShare: m.chargeShare * 100,
    DischargeShare: m.dischargeShare * 100,
    Alarm: m.alarm,
  };
}

/**
 * Values for every path of `bankPathTypes(layout)` (undefined = invalid). Publish them after
 * `toDbusValues(bank, { cellCount: bankCellCount(layout), modules: bank.counts.modules, … })` so they win
 * for the paths both fill (cell lists and ids, /System/*, /Voltages/Sum and /Voltages/Diff).
 */
export function bankPathValues(bank: BankState, layout: BankLayout): Record<string, BankPathValue> {
  const c = bank.counts;
  const perMember = layout.members.map((m) => m.cells);
  const common = perMember[0];
  const summaries = new Map(bank.members.map((m) => [m.id, m]));

  // Sum of cells per connected string (≈ its voltage), averaged over strings: the parallel analogue of the
  // single-battery /Voltages/Sum. A string with a missing cell gives no sum rather than a short one.
  const stringSums: number[] = [];
  for (const s of bank.strings) {
    if (!s.present) continue;
    const cells = s.members.flatMap((id) => summaries.get(id)?.cellVoltages ?? [undefined]);
    if (cells.length > 0 && cells.every((v): v is number => v !== undefined)) {
      stringSums.push(cells.reduce((a, b) => a + b, 0));
    }
  }
  const connectedBalancing = bank.members.flatMap((m) => (m.connected ? m.balancing : []));

  const out: Record<string, BankPathValue> = {
    '/System/NrOfBatteries': c.batteries,
    '/System/BatteriesSeries': c.series,
    '/System/BatteriesParallel': c.parallel,
    '/System/NrOfModulesOnline': c.modules.online,
    '/System/NrOfModulesOffline': c.modules.offline,
    '/System/NrOfModulesBlockingCharge': c.modules.blockingCharge,
    '/System/NrOfModulesBlockingDischarge': c.modules.blockingDischarge,
    '/System/NrOfCellsPerBattery':
      common !== undefined && common > 0 && perMember.every((n) => n === common) ? common : undefined,
    '/System/MinCellVoltage': bank.minCell?.value,
    '/System/MaxCellVoltage': bank.maxCell?.value,
    '/System/MinVoltageCellId': bank.minCell?.id,
    '/System/MaxVoltageCellId': bank.maxCell?.id,
    '/System/MinCellTemperature': bank.minTemperature?.value,
    '/System/MaxCellTemperature': bank.maxTemperature?.value,
    '/System/MinTemperatureCellId': bank.minTemperature?.id,
    '/System/MaxTemperatureCellId': bank.maxTemperature?.id,
    '/Voltages/Sum': stringSums.length > 0 ? stringSums.reduce((a, b) => a + b, 0) / stringSums.length : undefined,
    '/Voltages/Diff': bank.minCell && bank.maxCell ? bank.maxCell.value - bank.minCell.value : undefined,
    '/Balancing': connectedBalancing.some((b) => b === true)
      ? 1
      : connectedBalancing.length > 0 && connectedBalancing.every((b) => b === false)
        ? 0
        : undefined,
  };

  let n = 0;
  for (const lm of layout.members) {
    const m = summaries.get(lm.id);
    const live = m?.connected === true;
    for (let k = 1; k <= lm.cells; k++) {
      n++;
      const v = live ? m.cellVoltages[k - 1] : undefined;
      out[`/Voltages/Cell${n}`] = v;
      out[`/Balances/Cell${n}`] = live && v !== undefined ? bit(m.balancing[k - 1]) : undefined;
      out[`/Voltages/${lm.id}/Cell${k}`] = v;
    }
    const values = m ? memberValues(m) : undefined;
    for (const name of Object.keys(MEMBER_PATHS) as MemberPath[]) {
      out[`/Batteries/${lm.id}/${name}`] = values?.[name];
    }
  }

  // Invalid, never NaN or Infinity.
  for (const [path, value] of Object.entries(out)) {
    if (typeof value === 'number' && !Number.isFinite(value)) out[path] = undefined;
  }
  return out;
}
