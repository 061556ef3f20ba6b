/**
 * The virtual bank: member BatteryStates + topology → one BatteryState for the bank (docs/bank.md). Pure.
 *
 *   member states ──► per member (sanitised) ──► per series string ──► parallel of strings ──► BankState
 *
 * Each member's own policy has already produced its limits; the bank never lets any member exceed them:
 * - series string: voltage sum, current mean (members must agree), capacity and SoC of the weakest member,
 *   cells concatenated, FETs ANDed, CCL/DCL the lowest member limit, CVL cells × lowest per-cell CVL;
 * - parallel strings: voltage mean (spread check), current and capacity sums, capacity-weighted SoC,
 *   CCL/DCL = min over conducting strings of limit / share, CVL min, BatteryLowVoltage max.
 * Health rules: an offline member is taken as disconnected (its string drops out of sums and limits, the bank
 * stays up with BmsCable = 1); a stale member may still be connected with limit 0, so it blocks the bank;
 * an online member with an open FET takes no current in that direction, so its string drops out of that
 * direction's sharing. Every number out is finite or undefined.
 */
import type { BatterySnapshot, ProtectionFlags, TemperatureReading } from '../domain/battery-snapshot.js';
import { PROTECTION_FLAG_NAMES } from '../domain/battery-snapshot.js';
import {
  ALARM_NAMES,
  type AlarmLevel,
  type Alarms,
  type BatteryState,
  type ChargeLimits,
  type Health,
  noAlarms,
} from '../domain/battery-state.js';
import {
  type CurrentSharing,
  type SeriesMemberVoltages,
  safeLimit,
  sharedCurrentLimit,
  stringChargeVoltage,
  stringLowVoltage,
} from './bank-limits.js';
import { lookup, type Topology, validateMembers } from './topology.js';

/** Tunables of the aggregation; every field has a default (DEFAULT_BANK_OPTIONS). */
export interface BankOptions {
  /** Bank id for the BatteryState (`[bank] name`), `[a-z0-9_]`. Default `bank`. */
  id?: string;
  /** /ProductName. Default `Battery bank`. */
  productName?: string;
  /** /Mgmt/Connection. Default `Bank 2s2p (a, b, c, d)`. */
  connection?: string;
  /** How current divides between parallel strings. Default `capacity`. */
  sharing?: CurrentSharing;
  /** Cells per member from the config, for members that have not reported yet (CVL scaling, validation). */
  cellCounts?: Readonly<Record<string, number | undefined>>;
  /** Chemistry per member (`LFP`, …); mixed chemistries make the bank unusable. */
  chemistries?: Readonly<Record<string, string | undefined>>;
  /** Series members whose currents differ by more than max(this, relative × |I|) raise a warning. Default 5 A. */
  seriesCurrentDeviationA?: number;
  /** Relative part of the series current check. Default 0.2 (20 %). */
  seriesCurrentDeviationRelative?: number;
  /** Parallel strings whose voltages differ by more than this × cells in series raise a warning. Default 0.05 V. */
  parallelVoltageSpreadPerCell?: number;
}

/** Defaults of BankOptions. */
export const DEFAULT_BANK_OPTIONS = {
  id: 'bank',
  productName: 'Battery bank',
  sharing: 'capacity',
  seriesCurrentDeviationA: 5,
  seriesCurrentDeviationRelative: 0.2,
  parallelVoltageSpreadPerCell: 0.05,
} as const satisfies BankOptions;

/** One cell or sensor with the member it belongs to: id `b2:C7` (cell 7 of battery b2) or `b2:T1`. */
export interface CellRef {
  readonly value: number;
  readonly member: string;
  /** 1-based position within the member (cell number, or sensor position). */
  readonly index: number;
  readonly id: string;
}

/** /System/NrOfModules* counts (same shape as the D-Bus layer's ModuleCounts). */
export interface ModuleCounts {
  /** Members not offline (stale members still count: they have not gone away yet). */
  online: number;
  offline: number;
  /** Members not offline whose own CCL is 0 or whose charge FET is open. */
  blockingCharge: number;
  /** Members not offline whose own DCL is 0 or whose discharge FET is open. */
  blockingDischarge: number;
}

/** Counts for /System/NrOfBatteries, /System/BatteriesSeries, /System/BatteriesParallel and the module counts. */
export interface BankCounts {
  batteries: number;
  series: number;
  parallel: number;
  modules: ModuleCounts;
}

/** What the bank shows about one member (`/Batteries/<id>/…`). Measurements are undefined while offline. */
export interface MemberSummary {
  readonly id: string;
  /** 0-based string index and position in the string. */
  readonly string: number;
  readonly position: number;
  readonly health: Health;
  /** Not offline. */
  readonly connected: boolean;
  readonly productName: string | undefined;
  readonly serial: string | undefined;
  /** Cells in series (known even while offline, from the last snapshot or the config). */
  readonly cellCount: number | undefined;
  /** Cell voltages in order; a non-finite reading is undefined at its position. Empty while offline. */
  readonly cellVoltages: readonly (number | undefined)[];
  readonly balancing: readonly (boolean | undefined)[];
  readonly voltage: number | undefined;
  readonly current: number | undefined;
  readonly power: number | undefined;
  readonly soc: number | undefined;
  readonly soh: number | undefined;
  readonly capacityRemaining: number | undefined;
  readonly capacityInstalled: number | undefined;
  /** Mean of the member's temperature sensors, °C. */
  readonly temperature: number | undefined;
  readonly minCell: CellRef | undefined;
  readonly maxCell: CellRef | undefined;
  readonly chargeFet: boolean | undefined;
  readonly dischargeFet: boolean | undefined;
  /** The member's own limits (sanitised: currents finite ≥ 0, voltages finite or undefined). */
  readonly limits: ChargeLimits;
  readonly blockingCharge: boolean;
  readonly blockingDischarge: boolean;
  /** Fraction of the bank charge current this member carries under the sharing model (0 = none). */
  readonly chargeShare: number;
  /** Fraction of the bank discharge current this member carries under the sharing model (0 = none). */
  readonly dischargeShare: number;
  /** Worst alarm level of the member. */
  readonly alarm: AlarmLevel;
}

/** What the bank shows about one series string. */
export interface StringSummary {
  readonly index: number;
  readonly members: readonly string[];
  /** Every member is connected (not offline): the string's measurements count. */
  readonly present: boolean;
  /** Total cells in series; undefined while a member's count is unknown. */
  readonly cells: number | undefined;
  readonly voltage: number | undefined;
  readonly current: number | undefined;
  readonly chargeVoltage: number | undefined;
  readonly chargeConducting: boolean;
  readonly dischargeConducting: boolean;
  readonly chargeLimit: number;
  readonly dischargeLimit: number;
  readonly chargeShare: number;
  readonly dischargeShare: number;
}

/** The bank: a BatteryState (so the battery D-Bus mapping applies) plus what only a bank has. */
export interface BankState extends BatteryState {
  readonly topology: Topology;
  readonly counts: BankCounts;
  readonly members: readonly MemberSummary[];
  readonly strings: readonly StringSummary[];
  readonly minCell: CellRef | undefined;
  readonly maxCell: CellRef | undefined;
  readonly minTemperature: CellRef | undefined;
  readonly maxTemperature: CellRef | undefined;
  /** Cells in series of the bank (equal for every string when valid); undefined while unknown. */
  readonly cellsInSeries: number | undefined;
  /** Human-readable problems (misconfiguration, series current disagreement, parallel voltage spread). */
  readonly problems: readonly string[];
}

// ───────────────────────────── helpers ─────────────────────────────

const fin = (v: number | undefined): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** All defined, else undefined (one unknown member makes the aggregate unknown, not silently smaller). */
function allKnown(xs: readonly (number | undefined)[]): number[] | undefined {
  return xs.every((x): x is number => x !== undefined) ? (xs as number[]) : undefined;
}

function mean(xs: readonly number[]): number | undefined {
  return xs.length === 0 ? undefined : sum(xs) / xs.length;
}

/** AND of reported flags: false if any is false, true if some are true, undefined if none reported. */
function andFlags(flags: readonly (boolean | undefined)[]): boolean | undefined {
  if (flags.some((f) => f === false)) return false;
  return flags.some((f) => f === true) ? true : undefined;
}

function alarmLevel(v: unknown): AlarmLevel {
  return v === 2 ? 2 : v === 1 ? 1 : 0;
}

function sanitizeLimits(l: ChargeLimits | undefined, health: Health): ChargeLimits {
  if (l === undefined) {
    return {
      chargeVoltage: undefined,
      batteryLowVoltage: undefined,
      chargeCurrent: 0,
      dischargeCurrent: 0,
      chargeReason: health === 'offline' ? 'offline' : 'no limits',
      dischargeReason: health === 'offline' ? 'offline' : 'no limits',
    };
  }
  const v = (x: number | undefined) => (x !== undefined && Number.isFinite(x) && x > 0 ? x : undefined);
  return {
    chargeVoltage: v(l.chargeVoltage),
    batteryLowVoltage: v(l.batteryLowVoltage),
    chargeCurrent: safeLimit(l.chargeCurrent),
    dischargeCurrent: safeLimit(l.dischargeCurrent),
    chargeReason: l.chargeReason,
    dischargeReason: l.dischargeReason,
  };
}

/** One member, sanitised; `live` values are undefined unless the member is connected. */
interface View {
  readonly id: string;
  readonly string: number;
  readonly position: number;
  readonly state: BatteryState | undefined;
  readonly health: Health;
  readonly present: boolean;
  readonly live: BatterySnapshot | undefined;
  readonly cells: number | undefined;
  readonly cellValues: readonly (number | undefined)[];
  readonly balancing: readonly (boolean | undefined)[];
  readonly voltage: number | undefined;
  readonly current: number | undefined;
  readonly power: number | undefined;
  readonly soc: number | undefined;
  readonly soh: number | undefined;
  readonly remaining: number | undefined;
  readonly installed: number | undefined;
  readonly temperatures: readonly TemperatureReading[];
  readonly chargeFet: boolean | undefined;
  readonly dischargeFet: boolean | undefined;
  readonly limits: ChargeLimits;
}

function cellCountOf(s: BatterySnapshot | undefined, configured: number | undefined): number | undefined {
  const fromCells = s?.cellVoltages?.length;
  const n = fromCells !== undefined && fromCells > 0 ? fromCells : s?.cellCount;
  if (n !== undefined && Number.isInteger(n) && n > 0) return n;
  return configured !== undefined && Number.isInteger(configured) && configured > 0 ? configured : undefined;
}

function viewOf(
  id: string,
  string: number,
  position: number,
  state: BatteryState | undefined,
  cfgCells: number | undefined,
): View {
  const health: Health = state?.health ?? 'offline';
  const present = state !== undefined && health !== 'offline';
  const live = present ? state.snapshot : undefined;
  const cellValues = (live?.cellVoltages ?? []).map(fin);
  const cellsAll = allKnown(cellValues);
  const installed = fin(live?.capacityInstalled);
  const soc = fin(live?.soc);
  const remaining =
    fin(live?.capacityRemaining) ??
    (soc !== undefined && installed !== undefined ? fin((soc / 100) * installed) : undefined);
  const voltage =
    fin(live?.voltage) ?? (cellsAll !== undefined && cellsAll.length > 0 ? fin(sum(cellsAll)) : undefined);
  const current = fin(live?.current);
  const power =
    fin(live?.power) ?? (voltage !== undefined && current !== undefined ? fin(voltage * current) : undefined);
  return {
    id,
    string,
    position,
    state,
    health,
    present,
    live,
    cells: cellCountOf(state?.snapshot, cfgCells),
    cellValues,
    balancing: cellValues.map((_, i) => live?.balancing?.[i]),
    voltage,
    current,
    power,
    soc,
    soh: fin(live?.soh),
    remaining,
    installed,
    temperatures: (live?.temperatures ?? []).filter((t) => Number.isFinite(t.celsius)),
    chargeFet: live?.chargeFet,
    dischargeFet: live?.dischargeFet,
    limits: sanitizeLimits(state?.limits, health),
  };
}

type Direction = 'charge' | 'discharge';

interface DirectionResult {
  conducting: boolean;
  limit: number;
  reason: string;
}

/**
 * Whether a series string takes current in one direction, and its limit. An offline member breaks the string
 * (taken as disconnected); an online member with its FET open blocks the direction, so the string takes none.
 * A stale member's FET report is not trusted: it counts as conducting, with its own limit (already 0).
 */
function stringDirection(members: readonly View[], dir: Direction): DirectionResult {
  const offline = members.find((m) => !m.present);
  if (offline !== undefined) return { conducting: false, limit: 0, reason: `${offline.id}: offline` };
  const open = members.find(
    (m) => m.health === 'online' && (dir === 'charge' ? m.chargeFet : m.dischargeFet) === false,
  );
  if (open !== undefined) return { conducting: false, limit: 0, reason: `${open.id}: ${dir} FET off` };
  let limit = Number.POSITIVE_INFINITY;
  let reason = '';
  for (const m of members) {
    const own = dir === 'charge' ? m.limits.chargeCurrent : m.limits.dischargeCurrent;
    if (own < limit) {
      limit = own;
      reason = `${m.id}: ${dir === 'charge' ? m.limits.chargeReason : m.limits.dischargeReason}`;
    }
  }
  return { conducting: true, limit: Number.isFinite(limit) ? limit : 0, reason };
}

function extremeOf(refs: readonly CellRef[]): { min: CellRef | undefined; max: CellRef | undefined } {
  let min: CellRef | undefined;
  let max: CellRef | undefined;
  for (const r of refs) {
    if (min === undefined || r.value < min.value) min = r;
    if (max === undefined || r.value > max.value) max = r;
  }
  return { min, max };
}

function cellRefs(m: View): CellRef[] {
  const out: CellRef[] = [];
  m.cellValues.forEach((v, i) => {
    if (v !== undefined) out.push({ value: v, member: m.id, index: i + 1, id: `${m.id}:C${i + 1}` });
  });
  return out;
}

function temperatureRefs(m: View): CellRef[] {
  return m.temperatures.map((t, i) => ({ value: t.celsius, member: m.id, index: i + 1, id: `${m.id}:${t.name}` }));
}

// ───────────────────────────── aggregation ─────────────────────────────

/**
 * Aggregate member states into the bank's state. Members missing from `members` count as offline.
 * @param members member BatteryStates, by config id (a Map, or a list whose entries carry `id`).
 */
export function aggregateBank(
  members: ReadonlyMap<string, BatteryState> | readonly BatteryState[],
  topology: Topology,
  options: BankOptions = {},
): BankState {
  // Field by field: an explicit `undefined` in options must not erase a default.
  const opt = {
    id: options.id ?? DEFAULT_BANK_OPTIONS.id,
    productName: options.productName ?? DEFAULT_BANK_OPTIONS.productName,
    connection: options.connection,
    sharing: options.sharing ?? DEFAULT_BANK_OPTIONS.sharing,
    cellCounts: options.cellCounts,
    chemistries: options.chemistries,
    seriesCurrentDeviationA: options.seriesCurrentDeviationA ?? DEFAULT_BANK_OPTIONS.seriesCurrentDeviationA,
    seriesCurrentDeviationRelative:
      options.seriesCurrentDeviationRelative ?? DEFAULT_BANK_OPTIONS.seriesCurrentDeviationRelative,
    parallelVoltageSpreadPerCell:
      options.parallelVoltageSpreadPerCell ?? DEFAULT_BANK_OPTIONS.parallelVoltageSpreadPerCell,
  };
  const byId = new Map<string, BatteryState>();
  if (members instanceof Map) for (const [k, v] of members) byId.set(k, v);
  else for (const s of members as readonly BatteryState[]) if (!byId.has(s.id)) byId.set(s.id, s);

  const strings = topology.strings.map((ids, si) =>
    ids.map((id, pi) => viewOf(id, si, pi, byId.get(id), lookup(opt.cellCounts, id))),
  );
  const views = strings.flat();
  const connected = views.filter((m) => m.present);
  const problems: string[] = [];
  let internalFailure: AlarmLevel = 0;

  // Wiring check from what the members report now (or the config, before they report).
  const validation = validateMembers(topology, Object.fromEntries(views.map((m) => [m.id, m.cells])), opt.chemistries);
  if (!validation.ok) {
    problems.push(...validation.errors);
    internalFailure = 2;
  }

  // ── per series string ──
  const perString = strings.map((ms, index) => {
    const present = ms.every((m) => m.present);
    const voltage = present ? allKnown(ms.map((m) => m.voltage)) : undefined;
    const currents = ms.map((m) => m.current).filter((c): c is number => c !== undefined);
    const current = present ? mean(currents) : undefined;
    if (present && currents.length > 1) {
      const spread = Math.max(...currents) - Math.min(...currents);
      const allowed = Math.max(
        opt.seriesCurrentDeviationA,
        opt.seriesCurrentDeviationRelative * Math.max(...currents.map(Math.abs)),
      );
      if (spread > allowed) {
        problems.push(
          `series members disagree on current (${ms.map((m) => `${m.id} ${m.current?.toFixed(1) ?? '?'} A`).join(', ')}): ` +
            'check the current sensors and that nothing is connected between them',
        );
        internalFailure = Math.max(internalFailure, 1) as AlarmLevel;
      }
    }
    const installed = allKnown(ms.map((m) => m.installed));
    const remaining = allKnown(ms.map((m) => m.remaining));
    const socs = allKnown(ms.map((m) => m.soc));
    const powers = allKnown(ms.map((m) => m.power));
    const voltages: SeriesMemberVoltages[] = ms.map((m) => ({
      chargeVoltage: m.limits.chargeVoltage,
      lowVoltage: m.limits.batteryLowVoltage,
      cells: m.cells,
      voltage: m.present ? m.voltage : undefined,
    }));
    return {
      index,
      members: ms,
      present,
      cells: validation.stringCells[index],
      voltage: voltage !== undefined ? fin(sum(voltage)) : undefined,
      current: fin(current),
      power: present && powers !== undefined ? fin(sum(powers)) : undefined,
      installed: present && installed !== undefined ? Math.min(...installed) : undefined,
      remaining: present && remaining !== undefined ? Math.min(...remaining) : undefined,
      soc: present && socs !== undefined ? Math.min(...socs) : undefined,
      cvl: stringChargeVoltage(voltages),
      blv: stringLowVoltage(voltages),
      charge: stringDirection(ms, 'charge'),
      discharge: stringDirection(ms, 'discharge'),
    };
  });
  const present = perString.filter((s) => s.present);

  // ── parallel of strings: measurements ──
  const stringVoltages = present.map((s) => s.voltage).filter((v): v is number => v !== undefined);
  const cellsInSeries = validation.ok ? validation.stringCells.find((c) => c !== undefined) : undefined;
  if (stringVoltages.length > 1 && cellsInSeries !== undefined) {
    const spread = Math.max(...stringVoltages) - Math.min(...stringVoltages);
    if (spread > opt.parallelVoltageSpreadPerCell * cellsInSeries) {
      problems.push(
        `parallel strings disagree on voltage by ${spread.toFixed(2)} V ` +
          `(${present.map((s) => `${s.members.map((m) => m.id).join('+')} ${s.voltage?.toFixed(2) ?? '?'} V`).join(', ')}): ` +
          'check cables, fuses and the voltage readings',
      );
      internalFailure = Math.max(internalFailure, 1) as AlarmLevel;
    }
  }
  const bankVoltage = mean(stringVoltages);
  const currents = allKnown(present.map((s) => s.current));
  const bankCurrent = present.length > 0 && currents !== undefined ? sum(currents) : undefined;
  const powers = allKnown(present.map((s) => s.power));
  const bankPower = present.length > 0 && powers !== undefined ? sum(powers) : undefined;
  const installedAll = allKnown(present.map((s) => s.installed));
  const remainingAll = allKnown(present.map((s) => s.remaining));
  const withSoc = present.filter((s) => s.soc !== undefined);
  const socWeights = allKnown(withSoc.map((s) => s.installed));
  const weightTotal = socWeights !== undefined ? sum(socWeights) : 0;
  const bankSoc =
    withSoc.length === 0
      ? undefined
      : socWeights !== undefined && weightTotal > 0
        ? sum(withSoc.map((s, i) => (s.soc as number) * (socWeights[i] ?? 0))) / weightTotal
        : mean(withSoc.map((s) => s.soc as number));

  // ── limits ──
  const sharing: CurrentSharing = opt.sharing;
  const chargeShared = sharedCurrentLimit(
    perString.map((s) => ({ conducting: s.charge.conducting, limit: s.charge.limit, capacity: s.installed })),
    sharing,
  );
  const dischargeShared = sharedCurrentLimit(
    perString.map((s) => ({ conducting: s.discharge.conducting, limit: s.discharge.limit, capacity: s.installed })),
    sharing,
  );
  const cvls = perString.map((s) => s.cvl).filter((v): v is number => v !== undefined);
  const blvs = perString.map((s) => s.blv).filter((v): v is number => v !== undefined);
  const chargeVoltage = cvls.length > 0 ? Math.min(...cvls) : undefined;
  const batteryLowVoltage = blvs.length > 0 ? Math.max(...blvs) : undefined;

  const reasonOf = (dir: Direction, shared: typeof chargeShared): string => {
    const results = perString.map((s) => (dir === 'charge' ? s.charge : s.discharge));
    if (shared.limiting === undefined) {
      const why = results.map((r) => r.reason).join('; ');
      return topology.parallelCount > 1 ? `no string can ${dir}: ${why}` : why;
    }
    const base = results[shared.limiting]?.reason ?? '';
    if (topology.parallelCount === 1) return base;
    const n = results.filter((r) => r.conducting).length;
    return `${base} (${n}/${topology.parallelCount} strings${shared.capacityUnknown ? ', capacity unknown' : ''})`;
  };
  let chargeCurrent = chargeShared.current;
  let dischargeCurrent = dischargeShared.current;
  let chargeReason = reasonOf('charge', chargeShared);
  let dischargeReason = reasonOf('discharge', dischargeShared);
  if (!validation.ok) {
    chargeCurrent = 0;
    dischargeCurrent = 0;
    chargeReason = `bank misconfigured: ${validation.errors[0]}`;
    dischargeReason = chargeReason;
  } else if (chargeVoltage === undefined && chargeCurrent > 0) {
    // Without a CVL the chargers fall back to their own settings: never allow charging then.
    chargeCurrent = 0;
    chargeReason = 'charge voltage unknown';
  }
  const limits: ChargeLimits = {
    chargeVoltage,
    batteryLowVoltage,
    chargeCurrent,
    dischargeCurrent,
    chargeReason,
    dischargeReason,
  };

  // ── health, alarms, counts ──
  const health: Health =
    present.length === 0
      ? 'offline'
      : present.some((s) => s.members.some((m) => m.health === 'stale'))
        ? 'stale'
        : 'online';
  const alarms: Alarms = noAlarms();
  for (const m of connected) {
    for (const name of ALARM_NAMES) {
      alarms[name] = Math.max(alarms[name], alarmLevel(m.state?.alarms[name])) as AlarmLevel;
    }
  }
  alarms.BmsCable = health === 'offline' ? 2 : views.some((m) => m.health !== 'online') ? 1 : 0;
  alarms.InternalFailure = Math.max(alarms.InternalFailure, internalFailure) as AlarmLevel;

  const blockingCharge = (m: View) => m.present && (m.limits.chargeCurrent <= 0 || m.chargeFet === false);
  const blockingDischarge = (m: View) => m.present && (m.limits.dischargeCurrent <= 0 || m.dischargeFet === false);
  const counts: BankCounts = {
    batteries: views.length,
    series: topology.seriesCount,
    parallel: topology.parallelCount,
    modules: {
      online: connected.length,
      offline: views.length - connected.length,
      blockingCharge: views.filter(blockingCharge).length,
      blockingDischarge: views.filter(blockingDischarge).length,
    },
  };

  // ── extremes, snapshot ──
  const cellExt = extremeOf(connected.flatMap(cellRefs));
  const tempExt = extremeOf(connected.flatMap(temperatureRefs));
  const snapshots = connected.map((m) => m.live).filter((s): s is BatterySnapshot => s !== undefined);
  const protection: ProtectionFlags = {};
  for (const flag of PROTECTION_FLAG_NAMES) {
    const reported = snapshots.map((s) => s.protection[flag]).filter((f): f is boolean => f !== undefined);
    if (reported.length > 0) protection[flag] = reported.some(Boolean);
  }
  const cellsConcat = connected.flatMap((m) => m.cellValues.filter((v): v is number => v !== undefined));
  const balancingConcat = connected.flatMap((m) =>
    m.cellValues.flatMap((v, i) => (v === undefined ? [] : [m.balancing[i]])),
  );
  const sohs = connected.map((m) => m.soh).filter((v): v is number => v !== undefined);
  const cycles = connected.map((m) => fin(m.live?.cycles)).filter((v): v is number => v !== undefined);
  const mos = connected.map((m) => fin(m.live?.mosTemperature)).filter((v): v is number => v !== undefined);
  const snapshot: BatterySnapshot | undefined =
    snapshots.length === 0
      ? undefined
      : {
          timestampMs: Math.max(...snapshots.map((s) => (Number.isFinite(s.timestampMs) ? s.timestampMs : 0))),
          voltage: fin(bankVoltage),
          current: fin(bankCurrent),
          power: fin(bankPower),
          soc: fin(bankSoc),
          soh: sohs.length > 0 ? Math.min(...sohs) : undefined,
          capacityRemaining: present.length > 0 && remainingAll !== undefined ? fin(sum(remainingAll)) : undefined,
          capacityInstalled: present.length > 0 && installedAll !== undefined ? fin(sum(installedAll)) : undefined,
          cycles: cycles.length > 0 ? Math.max(...cycles) : undefined,
          cellVoltages: cellsConcat,
          balancing: balancingConcat.every((b): b is boolean => b !== undefined) ? balancingConcat : undefined,
          cellCount: cellsInSeries,
          temperatures: connected.flatMap((m) =>
            m.temperatures.map((t) => ({ name: `${m.id}:${t.name}`, celsius: t.celsius })),
          ),
          mosTemperature: mos.length > 0 ? Math.max(...mos) : undefined,
          chargeFet: andFlags(connected.map((m) => m.chargeFet)),
          dischargeFet: andFlags(connected.map((m) => m.dischargeFet)),
          protection,
          identity: {},
        };

  const memberSummaries: MemberSummary[] = views.map((m) => {
    const ext = extremeOf(cellRefs(m));
    const temps = m.temperatures.map((t) => t.celsius);
    let alarm: AlarmLevel = 0;
    for (const name of ALARM_NAMES) alarm = Math.max(alarm, alarmLevel(m.state?.alarms[name])) as AlarmLevel;
    return {
      id: m.id,
      string: m.string,
      position: m.position,
      health: m.health,
      connected: m.present,
      productName: m.state?.productName,
      serial: m.state?.snapshot?.identity.serial,
      cellCount: m.cells,
      cellVoltages: m.cellValues,
      balancing: m.balancing,
      voltage: m.voltage,
      current: m.current,
      power: m.power,
      soc: m.soc,
      soh: m.soh,
      capacityRemaining: m.remaining,
      capacityInstalled: m.installed,
      temperature: mean(temps),
      minCell: ext.min,
      maxCell: ext.max,
      chargeFet: m.chargeFet,
      dischargeFet: m.dischargeFet,
      limits: m.limits,
      blockingCharge: blockingCharge(m),
      blockingDischarge: blockingDischarge(m),
      chargeShare: chargeShared.shares[m.string] ?? 0,
      dischargeShare: dischargeShared.shares[m.string] ?? 0,
      alarm,
    };
  });
  const stringSummaries: StringSummary[] = perString.map((s) => ({
    index: s.index,
    members: s.members.map((m) => m.id),
    present: s.present,
    cells: s.cells,
    voltage: s.voltage,
    current: s.current,
    chargeVoltage: s.cvl,
    chargeConducting: s.charge.conducting,
    dischargeConducting: s.discharge.conducting,
    chargeLimit: s.charge.limit,
    dischargeLimit: s.discharge.limit,
    chargeShare: chargeShared.shares[s.index] ?? 0,
    dischargeShare: dischargeShared.shares[s.index] ?? 0,
  }));

  const lastValid = views.map((m) => fin(m.state?.lastValidMs)).filter((v): v is number => v !== undefined);
  return {
    id: opt.id,
    health,
    snapshot,
    limits,
    alarms,
    connection: opt.connection ?? `Bank ${topology.label} (${topology.members.join(', ')})`,
    productName: opt.productName,
    lastValidMs: lastValid.length > 0 ? Math.max(...lastValid) : undefined,
    topology,
    counts,
    members: memberSummaries,
    strings: stringSummaries,
    minCell: cellExt.min,
    maxCell: cellExt.max,
    minTemperature: tempExt.min,
    maxTemperature: tempExt.max,
    cellsInSeries,
    problems,
  };
}
