/**
 * The JSON every telemetry sink publishes for one battery or bank: built from a BatteryState plus free-form
 * extras, so new fields (bank member summaries, charge mode, …) travel without changing any sink.
 *
 * Rules: unknown is `null` (never a missing key, never NaN); while the battery is `offline` every measurement is
 * `null` (the last valid values are not current) but limits, alarms and identity stay; numbers are rounded to
 * 4 decimals. A bank is recognised by `extras.kind === 'bank'` or by a `members` array on the state or extras.
 */
import { type BatterySnapshot, extremes } from '../domain/battery-snapshot.js';
import { ALARM_NAMES, type AlarmLevel, type BatteryState } from '../domain/battery-state.js';
import type { StateExtras } from './sink.js';

export type Kind = 'battery' | 'bank';

export interface CellsPayload {
  count: number | null;
  voltages: (number | null)[];
  balancing: (boolean | null)[];
  min: number | null;
  max: number | null;
  /** Cell id of the min / max: `C7` for a battery, `b2:C7` for a bank. */
  minCell: string | null;
  maxCell: string | null;
  delta: number | null;
  average: number | null;
  /** Any cell balancing now. */
  balancingActive: boolean | null;
}

export interface LimitsPayload {
  /** CVL, V. */
  chargeVoltage: number | null;
  /** CCL, A. */
  chargeCurrent: number;
  /** DCL, A. */
  dischargeCurrent: number;
  batteryLowVoltage: number | null;
  chargeReason: string;
  dischargeReason: string;
  /** From charge control (`limits.chargeMode` or `extras.chargeMode`), else null. */
  chargeMode: string | null;
}

export type AlarmsPayload = Record<string, AlarmLevel> & { worst: AlarmLevel; active: string[] };

export interface ConnectionPayload {
  health: BatteryState['health'];
  connected: boolean;
  connection: string;
  productName: string;
  lastValid: string | null;
}

export interface MemberPayload {
  id: string;
  health: string;
  connected: boolean;
  [key: string]: unknown;
}

export interface StatePayload {
  id: string;
  kind: Kind;
  /** When this payload was built, ISO. */
  time: string;
  health: BatteryState['health'];
  connected: boolean;
  productName: string;
  connection: string;
  /** Last valid reply, ISO. */
  lastValid: string | null;
  voltage: number | null;
  current: number | null;
  power: number | null;
  soc: number | null;
  soh: number | null;
  capacityRemaining: number | null;
  capacityInstalled: number | null;
  cycles: number | null;
  temperatures: { name: string; celsius: number }[];
  temperatureMin: number | null;
  temperatureMax: number | null;
  mosTemperature: number | null;
  chargeFet: boolean | null;
  dischargeFet: boolean | null;
  cells: CellsPayload;
  limits: LimitsPayload;
  alarms: AlarmsPayload;
  protection: Record<string, boolean>;
  identity: Record<string, string>;
  /** Bank only: one summary per member (id, health, voltage, current, soc, cells, limits, …). */
  members?: MemberPayload[];
  /** Bank only: counts and problems. */
  bank?: { batteries: number; online: number; offline: number; problems: string[] };
  /** Everything passed as extras that has no field above, JSON-safe. */
  extras: Record<string, unknown>;
}

/** Round to 4 decimals; non-finite → null. */
export function num(v: unknown): number | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  return Math.round(v * 1e4) / 1e4;
}

const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);
const iso = (ms: number | undefined): string | null =>
  ms !== undefined && Number.isFinite(ms) ? new Date(ms).toISOString() : null;

/**
 * A JSON-safe copy: non-finite numbers → null, functions/symbols dropped, Maps → objects, Sets/arrays → arrays,
 * Dates → ISO, depth and size bounded (a misbehaving extra cannot blow up a message).
 */
export function jsonSafe(v: unknown, depth = 0): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'number':
      return num(v);
    case 'string':
      return v.length > 4096 ? `${v.slice(0, 4096)}…` : v;
    case 'boolean':
      return v;
    case 'bigint':
      return Number(v);
    case 'object': {
      if (depth >= 8) return null;
      if (v instanceof Date) return Number.isFinite(v.getTime()) ? v.toISOString() : null;
      if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
      if (Array.isArray(v) || v instanceof Set) return [...v].slice(0, 1024).map((x) => jsonSafe(x, depth + 1));
      const entries = v instanceof Map ? [...v.entries()] : Object.entries(v as object);
      const out: Record<string, unknown> = {};
      for (const [k, x] of entries.slice(0, 256)) {
        if (typeof x === 'function' || typeof x === 'symbol' || x === undefined) continue;
        out[String(k)] = jsonSafe(x, depth + 1);
      }
      return out;
    }
    default:
      return null;
  }
}

/** Does this state describe a bank? */
export function kindOf(state: BatteryState, extras?: StateExtras): Kind {
  if (extras?.['kind'] === 'bank' || extras?.['kind'] === 'battery') return extras['kind'];
  const members = extras?.['members'] ?? (state as unknown as Record<string, unknown>)['members'];
  return Array.isArray(members) ? 'bank' : 'battery';
}

function cellsOf(snap: BatterySnapshot | undefined, state: BatteryState, kind: Kind): CellsPayload {
  const raw = snap?.cellVoltages ?? [];
  const voltages = raw.map(num);
  const finite = voltages.filter((x): x is number => x !== null);
  const ex = extremes(finite.length === raw.length ? finite : undefined);
  const bank = state as unknown as { minCell?: { id?: unknown; value?: unknown }; maxCell?: typeof bank.minCell };
  let min = ex?.min ?? (finite.length ? Math.min(...finite) : undefined);
  let max = ex?.max ?? (finite.length ? Math.max(...finite) : undefined);
  let minCell = ex ? `C${ex.minIndex}` : null;
  let maxCell = ex ? `C${ex.maxIndex}` : null;
  if (kind === 'bank' && snap !== undefined) {
    // The bank knows which member a cell belongs to.
    if (typeof bank.minCell?.id === 'string' && typeof bank.minCell.value === 'number') {
      minCell = bank.minCell.id;
      min = bank.minCell.value;
    }
    if (typeof bank.maxCell?.id === 'string' && typeof bank.maxCell.value === 'number') {
      maxCell = bank.maxCell.id;
      max = bank.maxCell.value;
    }
  }
  const balancing = raw.map((_, i) => bool(snap?.balancing?.[i]));
  const count = snap?.cellCount ?? (raw.length > 0 ? raw.length : undefined);
  return {
    count: num(count),
    voltages,
    balancing,
    min: num(min),
    max: num(max),
    minCell,
    maxCell,
    delta: min !== undefined && max !== undefined ? num(max - min) : null,
    average: finite.length ? num(finite.reduce((a, b) => a + b, 0) / finite.length) : null,
    balancingActive: snap?.balancing ? snap.balancing.some(Boolean) : null,
  };
}

/** Limits with reasons; `chargeMode` from charge control when it provides one. */
export function limitsOf(state: BatteryState, extras?: StateExtras): LimitsPayload {
  const l = state.limits as BatteryState['limits'] & { chargeMode?: unknown };
  const mode = extras?.['chargeMode'] ?? l.chargeMode;
  return {
    chargeVoltage: num(l.chargeVoltage),
    chargeCurrent: num(l.chargeCurrent) ?? 0,
    dischargeCurrent: num(l.dischargeCurrent) ?? 0,
    batteryLowVoltage: num(l.batteryLowVoltage),
    chargeReason: String(l.chargeReason ?? ''),
    dischargeReason: String(l.dischargeReason ?? ''),
    chargeMode: typeof mode === 'string' ? mode : null,
  };
}

export function alarmsOf(state: BatteryState): AlarmsPayload {
  const out: Record<string, AlarmLevel> = {};
  let worst: AlarmLevel = 0;
  const active: string[] = [];
  for (const name of ALARM_NAMES) {
    const raw = state.alarms?.[name];
    const level: AlarmLevel = raw === 2 ? 2 : raw === 1 ? 1 : 0;
    out[name] = level;
    if (level > worst) worst = level;
    if (level > 0) active.push(name);
  }
  return Object.assign(out, { worst, active }) as AlarmsPayload;
}

export function connectionOf(state: BatteryState): ConnectionPayload {
  return {
    health: state.health,
    connected: state.health !== 'offline',
    connection: state.connection,
    productName: state.productName,
    lastValid: iso(state.lastValidMs),
  };
}

const KNOWN_EXTRAS = new Set(['kind', 'members', 'chargeMode']);

/** Member summaries of a bank (from extras.members or BankState.members), JSON-safe. */
function membersOf(state: BatteryState, extras?: StateExtras): MemberPayload[] | undefined {
  const list = extras?.['members'] ?? (state as unknown as Record<string, unknown>)['members'];
  if (!Array.isArray(list)) return undefined;
  return list
    .filter((m): m is Record<string, unknown> => m !== null && typeof m === 'object' && typeof m.id === 'string')
    .map((m) => {
      const safe = jsonSafe(m) as Record<string, unknown>;
      const health = typeof m['health'] === 'string' ? m['health'] : 'offline';
      return { ...safe, id: m['id'] as string, health, connected: m['connected'] === true || health !== 'offline' };
    });
}

/** The full payload of one state. `nowMs` stamps `time`. */
export function statePayload(state: BatteryState, extras?: StateExtras, nowMs: number = Date.now()): StatePayload {
  const kind = kindOf(state, extras);
  const live = state.health === 'offline' ? undefined : state.snapshot;
  const temps = (live?.temperatures ?? [])
    .filter((t) => Number.isFinite(t.celsius))
    .map((t) => ({ name: t.name, celsius: num(t.celsius) as number }));
  const tv = temps.map((t) => t.celsius);
  const protection: Record<string, boolean> = {};
  for (const [k, v] of Object.entries(live?.protection ?? {})) if (typeof v === 'boolean') protection[k] = v;
  const identity: Record<string, string> = {};
  for (const [k, v] of Object.entries(state.snapshot?.identity ?? {})) if (typeof v === 'string') identity[k] = v;
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extras ?? {})) {
    if (KNOWN_EXTRAS.has(k) || v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    rest[k] = jsonSafe(v);
  }
  const members = kind === 'bank' ? membersOf(state, extras) : undefined;
  const out: StatePayload = {
    id: state.id,
    kind,
    time: new Date(nowMs).toISOString(),
    health: state.health,
    connected: state.health !== 'offline',
    productName: state.productName,
    connection: state.connection,
    lastValid: iso(state.lastValidMs),
    voltage: num(live?.voltage),
    current: num(live?.current),
    power: num(live?.power),
    soc: num(live?.soc),
    soh: num(live?.soh),
    capacityRemaining: num(live?.capacityRemaining),
    capacityInstalled: num(live?.capacityInstalled),
    cycles: num(live?.cycles),
    temperatures: temps,
    temperatureMin: tv.length ? Math.min(...tv) : null,
    temperatureMax: tv.length ? Math.max(...tv) : null,
    mosTemperature: num(live?.mosTemperature),
    chargeFet: bool(live?.chargeFet),
    dischargeFet: bool(live?.dischargeFet),
    cells: cellsOf(live, state, kind),
    limits: limitsOf(state, extras),
    alarms: alarmsOf(state),
    protection,
    identity,
    extras: rest,
  };
  if (members !== undefined) {
    out.members = members;
    const problems = (state as unknown as Record<string, unknown>)['problems'];
    out.bank = {
      batteries: members.length,
      online: members.filter((m) => m.connected).length,
      offline: members.filter((m) => !m.connected).length,
      problems: Array.isArray(problems) ? problems.filter((p): p is string => typeof p === 'string') : [],
    };
  }
  return out;
}

/** The payload without the fields that change on every call (for change detection). */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (k, v) => (k === 'time' ? undefined : v));
}
