/**
 * BlueNova LiFeYPO4 (BlueNova NG): the battery's Raspberry Pi serves the BMS console on a websocket
 * (`ws://<battery>:9000/ws/`), one text line per message. There is no request: we only listen.
 * Source: the seed project deonvdw/BlueNovaBatteryMonitor (shared/docs/protocols.md §7). No public capture
 * exists, so every line shape below is what that parser accepts, not what a battery was seen to print.
 *
 *   Line starts with                          Field (seed column)          Value after the prefix
 *   MCU ID:                                   MCU_ID                       hex u32
 *   --- PO PARAMS --- (i=                     N_UNITS                      int, units in parallel
 *   after assignRank() --> own rank =         UNIT_RANK                    int
 *   CellCount:                                CELL_COUNT                   int
 *   Cnn) T:            (nn = 01…)             CELL_nn_T, CELL_nn_V         `<°C>, V: <mV>`
 *   Vpack:                                    V_PACK                       mV
 *   Current:                                  I_PACK                       A (float; sign: see current_sign)
 *   Temp:                                     TEMP                         °C
 *   Vc_max: / Vc_min:                         V_CELL_MAX / V_CELL_MIN      mV
 *   SOC: / SOH:                               SOC / HEALTH                 int % / float %
 *   Errors: "                                 ERRORS                       text up to the closing quote (≤ 32)
 *   System_State: / Breaker:                  SYSTEM_STATE / BREAKER       text (≤ 32)
 *   Charge State:                             CHARGE_STATE                 first word (≤ 16)
 *   Vp_adc:                                   ADC_VP                       mV
 *   DEBUG: ADC[n]:     (n = 0…4)              ADC_n                        `<raw> = <mV>`
 *   INFO: BAD CRC / INFO: cellcomms parse FAIL / DEBUG: REJECT BAD          BAD_CRC / PARSE_FAIL / BAD_VCELL (counted)
 *   DEBUG: CALC PACK_CHARGE, STORE IN FLASH, then `Write EnergyOut: ` twice  ENERGY_OUT, then ENERGY_IN (float)
 *
 * {@link LINE_RULES} is the only description of these shapes: the parser matches with it and the simulator
 * (src/sim/bluenova-simulator.ts) prints with it. A full cycle is defined at {@link BlueNovaConsole}.
 * Pure: no I/O, no timers, no logger.
 */
import type { BatterySnapshot, ProtectionFlags, TemperatureReading } from '../../domain/battery-snapshot.js';

/** Every value a console line can carry, by rule key. Voltages already in V. */
export interface LineValues {
  mcuId: number;
  units: number;
  rank: number;
  cellCount: number;
  cell: { temperature: number; voltage: number };
  packVoltage: number;
  current: number;
  temperature: number;
  cellVoltageMax: number;
  cellVoltageMin: number;
  soc: number;
  soh: number;
  errors: string;
  systemState: string;
  breaker: string;
  chargeState: string;
  adcVp: number;
  adc: { raw: number; voltage: number };
  badCrc: true;
  parseFail: true;
  badVcell: true;
  energyMarker: true;
  energy: number;
}
export type RuleKey = keyof LineValues;

/** One line shape: prefix → field. `{i}` in the prefix is an index (cells 1…, ADC channels 0…). */
export interface LineRule<K extends RuleKey = RuleKey> {
  readonly key: K;
  /** The seed's column(s), for docs and the compatibility view. */
  readonly columns: string;
  readonly prefix: string;
  /** Indexed rules: range and zero-padded width of `{i}`. */
  readonly index?: { readonly min: number; readonly max: number; readonly digits: number };
  /** The value from the text after the prefix; undefined = malformed. */
  parse(rest: string): LineValues[K] | undefined;
  /** The text after the prefix for a value (the simulator's side). */
  format(value: LineValues[K]): string;
}

/** Most cells a BlueNova unit can report here (the seed stores 16; two digits allow up to 99). */
export const MAX_CELLS = 32;
const TEXT_MAX = 32;
const CHARGE_STATE_MAX = 16;

const INT = /^\s*([-+]?\d+)/;
const FLOAT = /^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)/;

function int(rest: string): number | undefined {
  const m = INT.exec(rest);
  return m ? Number(m[1]) : undefined;
}
function float(rest: string): number | undefined {
  const m = FLOAT.exec(rest);
  const v = m ? Number(m[1]) : Number.NaN;
  return Number.isFinite(v) ? v : undefined;
}
const millivolts = (rest: string): number | undefined => {
  const mv = int(rest);
  return mv === undefined ? undefined : mv / 1000;
};
const mv = (v: number): string => String(Math.round(v * 1000));
const text = (max: number) => (rest: string) => rest.trim().slice(0, max);
/** A float written as the firmware's printf would: short, no exponent. */
const dec = (v: number, digits: number): string => String(Number(v.toFixed(digits)));

function rule<K extends RuleKey>(r: LineRule<K>): LineRule<K> {
  return r;
}

const event = (key: 'badCrc' | 'parseFail' | 'badVcell' | 'energyMarker', columns: string, prefix: string) =>
  rule({ key, columns, prefix, parse: () => true as const, format: () => '' });

/** The rule table (order matters only where one prefix starts another; none do). */
export const LINE_RULES: readonly LineRule[] = [
  rule({
    key: 'mcuId',
    columns: 'MCU_ID',
    prefix: 'MCU ID: ',
    parse: (rest) => {
      const m = /^\s*(?:0x)?([0-9a-f]{1,8})\b/i.exec(rest);
      return m ? Number.parseInt(m[1] as string, 16) : undefined;
    },
    format: (v) => (v >>> 0).toString(16).toUpperCase().padStart(8, '0'),
  }),
  rule({
    key: 'units',
    columns: 'N_UNITS',
    prefix: '--- PO PARAMS --- (i=',
    parse: (rest) => {
      const n = int(rest);
      return n !== undefined && n >= 1 && n <= 64 ? n : undefined;
    },
    format: (v) => `${v}) ---`,
  }),
  rule({
    key: 'rank',
    columns: 'UNIT_RANK',
    prefix: 'after assignRank() --> own rank = ',
    parse: (rest) => {
      const n = int(rest);
      return n !== undefined && n >= 0 && n <= 64 ? n : undefined;
    },
    format: (v) => String(v),
  }),
  rule({
    key: 'cellCount',
    columns: 'CELL_COUNT',
    prefix: 'CellCount: ',
    parse: (rest) => {
      const n = int(rest);
      return n !== undefined && n >= 1 && n <= MAX_CELLS ? n : undefined;
    },
    format: (v) => String(v),
  }),
  rule({
    key: 'cell',
    columns: 'CELL_nn_T, CELL_nn_V',
    prefix: 'C{i}) T: ',
    index: { min: 1, max: MAX_CELLS, digits: 2 },
    parse: (rest) => {
      const m = /^\s*([-+]?\d+)\s*,\s*V:\s*(\d+)/.exec(rest);
      return m ? { temperature: Number(m[1]), voltage: Number(m[2]) / 1000 } : undefined;
    },
    format: (v) => `${Math.round(v.temperature)}, V: ${mv(v.voltage)}`,
  }),
  rule({ key: 'packVoltage', columns: 'V_PACK', prefix: 'Vpack: ', parse: millivolts, format: mv }),
  rule({ key: 'current', columns: 'I_PACK', prefix: 'Current: ', parse: float, format: (v) => dec(v, 2) }),
  rule({ key: 'temperature', columns: 'TEMP', prefix: 'Temp: ', parse: int, format: (v) => String(Math.round(v)) }),
  rule({ key: 'cellVoltageMax', columns: 'V_CELL_MAX', prefix: 'Vc_max: ', parse: millivolts, format: mv }),
  rule({ key: 'cellVoltageMin', columns: 'V_CELL_MIN', prefix: 'Vc_min: ', parse: millivolts, format: mv }),
  rule({
    key: 'soc',
    columns: 'SOC',
    prefix: 'SOC: ',
    parse: (rest) => {
      const n = int(rest);
      return n !== undefined && n >= 0 && n <= 100 ? n : undefined;
    },
    format: (v) => String(Math.round(v)),
  }),
  rule({
    key: 'soh',
    columns: 'HEALTH',
    prefix: 'SOH: ',
    parse: (rest) => {
      const n = float(rest);
      return n !== undefined && n >= 0 && n <= 100 ? n : undefined;
    },
    format: (v) => dec(v, 1),
  }),
  rule({
    key: 'errors',
    columns: 'ERRORS',
    prefix: 'Errors: "',
    parse: (rest) => {
      const end = rest.indexOf('"');
      return (end < 0 ? rest : rest.slice(0, end)).slice(0, TEXT_MAX);
    },
    format: (v) => `${v}"`,
  }),
  rule({
    key: 'systemState',
    columns: 'SYSTEM_STATE',
    prefix: 'System_State: ',
    parse: text(TEXT_MAX),
    format: String,
  }),
  rule({ key: 'breaker', columns: 'BREAKER', prefix: 'Breaker: ', parse: text(TEXT_MAX), format: String }),
  rule({
    key: 'chargeState',
    columns: 'CHARGE_STATE',
    prefix: 'Charge State: ',
    parse: (rest) => {
      const word = rest.trim().split(/\s+/)[0] ?? '';
      return word === '' ? undefined : word.slice(0, CHARGE_STATE_MAX);
    },
    format: String,
  }),
  rule({ key: 'adcVp', columns: 'ADC_VP', prefix: 'Vp_adc: ', parse: millivolts, format: mv }),
  rule({
    key: 'adc',
    columns: 'ADC_n',
    prefix: 'DEBUG: ADC[{i}]: ',
    index: { min: 0, max: 4, digits: 1 },
    parse: (rest) => {
      const m = /^\s*(\d+)\s*=\s*(\d+)/.exec(rest);
      return m ? { raw: Number(m[1]), voltage: Number(m[2]) / 1000 } : undefined;
    },
    format: (v) => `${Math.round(v.raw)} = ${mv(v.voltage)}`,
  }),
  event('badCrc', 'BAD_CRC', 'INFO: BAD CRC'),
  event('parseFail', 'PARSE_FAIL', 'INFO: cellcomms parse FAIL'),
  event('badVcell', 'BAD_VCELL', 'DEBUG: REJECT BAD '),
  event('energyMarker', 'ENERGY_OUT, ENERGY_IN', 'DEBUG: CALC PACK_CHARGE, STORE IN FLASH'),
  rule({
    key: 'energy',
    columns: 'ENERGY_OUT, ENERGY_IN',
    prefix: 'Write EnergyOut: ',
    parse: float,
    format: (v) => dec(v, 3),
  }),
];

/** The rule for `key` (every key has exactly one). */
export function ruleFor<K extends RuleKey>(key: K): LineRule<K> {
  const r = LINE_RULES.find((x) => x.key === key);
  if (r === undefined) throw new RangeError(`no BlueNova rule ${key}`);
  return r as unknown as LineRule<K>;
}

/** The console line for a value: what the simulator sends. `index` for indexed rules (cells from 1). */
export function formatLine<K extends RuleKey>(key: K, value: LineValues[K], index?: number): string {
  const r = ruleFor(key);
  let prefix = r.prefix;
  if (r.index) {
    if (index === undefined || !Number.isInteger(index) || index < r.index.min || index > r.index.max) {
      throw new RangeError(`${key} needs an index ${r.index.min}–${r.index.max}, got ${index}`);
    }
    prefix = prefix.replace('{i}', String(index).padStart(r.index.digits, '0'));
  }
  return prefix + r.format(value);
}

/** A line matched to its rule: the value, or undefined when the text after the prefix is malformed. */
export type ParsedLine = {
  [K in RuleKey]: { key: K; index: number | undefined; value: LineValues[K] | undefined; rule: LineRule<K> };
}[RuleKey];

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const MATCHERS = LINE_RULES.map((r) => {
  if (!r.index) return { r, literal: r.prefix, re: undefined };
  const [head, tail] = r.prefix.split('{i}') as [string, string];
  return { r, literal: head, re: new RegExp(`^${escapeRe(head)}(\\d{${r.index.digits}})${escapeRe(tail)}`) };
});

/**
 * Match one console line (trailing CR/LF and leading blanks ignored) against the rule table.
 * Undefined: no rule knows this line.
 */
export function parseLine(raw: string): ParsedLine | undefined {
  const line = raw.replace(/[\r\n]+$/, '').replace(/^\s+/, '');
  for (const { r, literal, re } of MATCHERS) {
    if (!line.startsWith(literal)) continue;
    if (re === undefined) {
      return { key: r.key, index: undefined, value: r.parse(line.slice(literal.length)), rule: r } as ParsedLine;
    }
    const m = re.exec(line);
    if (!m) continue;
    const index = Number(m[1]);
    const range = r.index as NonNullable<LineRule['index']>;
    if (index < range.min || index > range.max) return undefined;
    return { key: r.key, index, value: r.parse(line.slice(m[0].length)), rule: r } as ParsedLine;
  }
  return undefined;
}

/**
 * What an unknown line is remembered by: its start up to the first `:` or `=` (else its first 32 characters),
 * digits as `#`. So `C33) T: 25, V: 3300` and `C34) T: …` are one unknown shape, and free text is bounded.
 */
export function unknownLineKey(raw: string): string {
  const line = raw.trim();
  const cut = line.search(/[:=]/);
  const head = cut >= 0 ? line.slice(0, cut + 1) : line.slice(0, 32);
  return head.slice(0, 48).replace(/\d/g, '#');
}

/** Parser event counters (cumulative since the driver started; the compatibility view makes them per row). */
export interface BlueNovaCounters {
  badCrc: number;
  parseFail: number;
  badVcell: number;
}

/** Everything BlueNova reports that has no place in a BatterySnapshot. Undefined = not seen yet. */
export interface BlueNovaExtra {
  /** MCU ID (u32), the unit's identity. */
  mcuId?: number | undefined;
  /** N_UNITS: units in parallel, as this unit counts them. */
  units?: number | undefined;
  /** UNIT_RANK: this unit's rank among them. */
  rank?: number | undefined;
  cellCount?: number | undefined;
  /** TEMP, °C. */
  temperature?: number | undefined;
  /** ERRORS text as printed ('' = the line said nothing). */
  errors?: string | undefined;
  systemState?: string | undefined;
  breaker?: string | undefined;
  chargeState?: string | undefined;
  /** ENERGY_IN / ENERGY_OUT as printed (unit undocumented). */
  energyIn?: number | undefined;
  energyOut?: number | undefined;
  /** ADC_VP, V. */
  adcVp?: number | undefined;
  /** ADC_0…ADC_4, V (index = channel). */
  adc: (number | undefined)[];
  counters: BlueNovaCounters;
}

/** Words in ERRORS that mean "no error" (case-insensitive, whole text). */
const NO_ERROR = /^(|none|no errors?|ok|0|0x0+|-)$/i;

/** The ERRORS text as shown to a user: '' when it says "no error" ("None", "OK", "0" …), else the text. */
export function errorsText(errors: string | undefined): string | undefined {
  if (errors === undefined) return undefined;
  const e = errors.trim();
  return NO_ERROR.test(e) ? '' : e;
}

/**
 * BMS protection flags from the ERRORS text. The vocabulary is undocumented: only plain words are mapped
 * (over/under voltage, temperature, current, short); any other non-empty text that is not "none" is an
 * internal failure, so the GX shows an alarm and the first real log tells us the words.
 */
export function protectionFromErrors(errors: string | undefined): ProtectionFlags {
  if (errors === undefined) return {};
  const e = errors.trim();
  if (NO_ERROR.test(e)) return { internalFailure: false };
  const has = (re: RegExp) => re.test(e);
  const flags: ProtectionFlags = {};
  const cell = has(/cell/i);
  if (has(/over[\s_-]?volt|\bOVP?\b/i)) flags[cell ? 'cellOverVoltage' : 'packOverVoltage'] = true;
  if (has(/under[\s_-]?volt|\bUVP?\b|low[\s_-]?volt/i)) flags[cell ? 'cellUnderVoltage' : 'packUnderVoltage'] = true;
  if (has(/over[\s_-]?temp|\bOTP?\b|high[\s_-]?temp/i)) {
    flags.chargeOverTemperature = true;
    flags.dischargeOverTemperature = true;
  }
  if (has(/under[\s_-]?temp|\bUTP?\b|low[\s_-]?temp/i)) {
    flags.chargeUnderTemperature = true;
    flags.dischargeUnderTemperature = true;
  }
  if (has(/over[\s_-]?current|\bOCP?\b/i)) {
    flags.chargeOverCurrent = true;
    flags.dischargeOverCurrent = true;
  }
  if (has(/short/i)) flags.shortCircuit = true;
  if (Object.keys(flags).length === 0) flags.internalFailure = true;
  return flags;
}

/**
 * The breaker as FET state: a closed (on) breaker conducts both ways, an open (off, tripped) one neither.
 * Any other word: unknown.
 */
export function fetsFromBreaker(breaker: string | undefined): boolean | undefined {
  const b = breaker?.trim().toLowerCase() ?? '';
  if (/^(closed?|on|engaged)\b/.test(b)) return true;
  if (/^(open(ed)?|off|trip(ped)?)\b/.test(b)) return false;
  return undefined;
}

/** One full console cycle, decoded. */
export interface BlueNovaCycle {
  snapshot: BatterySnapshot;
  extra: BlueNovaExtra;
  /** Required lines that did not arrive in the cycle (it was closed by the next cell sweep instead). */
  missing: string[];
}

/** What one line did. */
export interface FeedResult {
  /** The line completed a cycle. */
  cycle?: BlueNovaCycle;
  /** The line matched no rule and its shape ({@link unknownLineKey}) is new (reported once each). */
  unknown?: string;
  /** The line had a known prefix but a value that did not parse; the rule key (reported once per rule). */
  malformed?: RuleKey;
  /** The line changed N_UNITS or UNIT_RANK (or the MCU ID). */
  identityChanged?: boolean;
}

export interface BlueNovaConsoleOptions {
  /** +1: `Current` is positive when charging (our convention); −1: the console prints the opposite. */
  currentSign?: 1 | -1;
  /** Distinct unknown shapes remembered (the rest are not reported). Default 200. */
  maxUnknown?: number;
}

const REQUIRED = ['packVoltage', 'current', 'soc'] as const;

/**
 * Folds console lines into snapshots.
 *
 * A **full cycle** is complete when, since the last snapshot, every cell 1…N (N = the `CellCount` line, or
 * else the highest cell of the previous sweep) and `Vpack`, `Current` and `SOC` have all arrived: the snapshot
 * goes out at once, with the latest value of every other line (Temp, SOH, Errors, … keep their last value).
 * If a firmware never prints one of the required lines, the next `C01` after a complete sweep closes the
 * cycle anyway (the console has come round) with what it had, provided it had `Vpack` and all cells; the
 * missing lines are named in `missing`. Before the first sweep is complete no snapshot is made.
 */
export class BlueNovaConsole {
  private readonly sign: 1 | -1;
  private readonly maxUnknown: number;
  private readonly unknownSeen = new Set<string>();
  private readonly malformedSeen = new Set<RuleKey>();
  private readonly cells: (number | undefined)[] = [];
  private readonly cellTemps: (number | undefined)[] = [];
  private readonly seen = new Set<string>();
  /** C01 lines since the last snapshot. */
  private sweeps = 0;
  /** Highest cell index since the last C01. */
  private sweepMax = 0;
  /** The cell count from the last complete sweep (used when no CellCount line has been seen). */
  private inferredCells: number | undefined;
  private energyNext: 'out' | 'in' | undefined;
  private readonly values: Partial<Record<'packVoltage' | 'current' | 'soc' | 'soh' | 'vcMax' | 'vcMin', number>> = {};
  readonly extra: BlueNovaExtra = { adc: [], counters: { badCrc: 0, parseFail: 0, badVcell: 0 } };

  constructor(opts: BlueNovaConsoleOptions = {}) {
    this.sign = opts.currentSign ?? 1;
    this.maxUnknown = opts.maxUnknown ?? 200;
  }

  /** Number of distinct unknown line shapes remembered. */
  get unknownCount(): number {
    return this.unknownSeen.size;
  }

  /** The cell count in use: the CellCount line, else the previous sweep's. */
  get cellCount(): number | undefined {
    return this.extra.cellCount ?? this.inferredCells;
  }

  /** Forget the cycle in progress (the connection was lost; values keep until replaced). */
  resetCycle(): void {
    this.seen.clear();
    this.sweeps = 0;
    this.sweepMax = 0;
    this.energyNext = undefined;
  }

  /** One console line. Never throws. `nowMs` stamps a snapshot it completes. */
  feed(raw: string, nowMs: number): FeedResult {
    const p = parseLine(raw);
    if (p === undefined) {
      const key = unknownLineKey(raw);
      if (key === '' || this.unknownSeen.has(key) || this.unknownSeen.size >= this.maxUnknown) return {};
      this.unknownSeen.add(key);
      return { unknown: key };
    }
    if (p.value === undefined) {
      if (this.malformedSeen.has(p.key)) return {};
      this.malformedSeen.add(p.key);
      return { malformed: p.key };
    }
    const x = this.extra;
    const out: FeedResult = {};
    const ident = (field: 'mcuId' | 'units' | 'rank', v: number) => {
      if (x[field] !== v) out.identityChanged = true;
      x[field] = v;
    };
    switch (p.key) {
      case 'mcuId':
      case 'units':
      case 'rank':
        ident(p.key, p.value);
        break;
      case 'cellCount':
        x.cellCount = p.value;
        this.cells.length = Math.min(this.cells.length, p.value);
        this.cellTemps.length = Math.min(this.cellTemps.length, p.value);
        break;
      case 'cell': {
        const i = p.index as number;
        if (i === 1) {
          const closed = this.onSweepStart(nowMs);
          if (closed) out.cycle = closed;
        }
        this.sweepMax = Math.max(this.sweepMax, i);
        this.cells[i - 1] = p.value.voltage;
        this.cellTemps[i - 1] = p.value.temperature;
        this.seen.add(`C${i}`);
        break;
      }
      case 'packVoltage':
      case 'current':
      case 'soc':
      case 'soh':
        this.values[p.key] = p.key === 'current' ? p.value * this.sign : p.value;
        this.seen.add(p.key);
        break;
      case 'cellVoltageMax':
        this.values.vcMax = p.value;
        break;
      case 'cellVoltageMin':
        this.values.vcMin = p.value;
        break;
      case 'temperature':
      case 'errors':
      case 'systemState':
      case 'breaker':
      case 'chargeState':
      case 'adcVp':
        (x as unknown as Record<string, unknown>)[p.key] = p.value;
        break;
      case 'adc':
        x.adc[p.index as number] = p.value.voltage;
        break;
      case 'badCrc':
      case 'parseFail':
      case 'badVcell':
        x.counters[p.key]++;
        break;
      case 'energyMarker':
        this.energyNext = 'out';
        break;
      case 'energy':
        // The seed: the first `Write EnergyOut:` after the marker is ENERGY_OUT, the second ENERGY_IN.
        if (this.energyNext === 'out') {
          x.energyOut = p.value;
          this.energyNext = 'in';
        } else if (this.energyNext === 'in') {
          x.energyIn = p.value;
          this.energyNext = undefined;
        }
        break;
    }
    if (out.cycle === undefined && this.complete()) out.cycle = this.emit(nowMs, []);
    return out;
  }

  /** All required lines of this cycle are in. */
  private complete(): boolean {
    const n = this.cellCount;
    if (n === undefined || n < 1) return false;
    if (!REQUIRED.every((k) => this.seen.has(k))) return false;
    for (let i = 1; i <= n; i++) if (!this.seen.has(`C${i}`)) return false;
    return true;
  }

  /** A new cell sweep begins: learn the cell count; close an overdue cycle. */
  private onSweepStart(nowMs: number): BlueNovaCycle | undefined {
    if (this.sweepMax > 0) this.inferredCells = this.sweepMax;
    this.sweepMax = 0;
    this.sweeps++;
    if (this.sweeps < 2) return undefined;
    // The console has come round without completing the required set: publish what we have.
    const n = this.cellCount;
    if (n === undefined || this.values.packVoltage === undefined) return undefined;
    for (let i = 0; i < n; i++) if (this.cells[i] === undefined) return undefined;
    const missing = REQUIRED.filter((k) => !this.seen.has(k)).map((k) => ruleFor(k).prefix.trim());
    const cycle = this.emit(nowMs, missing);
    this.sweeps = 1; // the C01 that closed it starts the next cycle
    return cycle;
  }

  private emit(nowMs: number, missing: string[]): BlueNovaCycle {
    const n = this.cellCount ?? 0;
    const cells = this.cells.slice(0, n) as number[];
    const temperatures: TemperatureReading[] = [];
    for (let i = 0; i < n; i++) {
      const t = this.cellTemps[i];
      if (t !== undefined) temperatures.push({ name: `C${String(i + 1).padStart(2, '0')}`, celsius: t });
    }
    if (this.extra.temperature !== undefined) temperatures.push({ name: 'Pack', celsius: this.extra.temperature });
    const fets = fetsFromBreaker(this.extra.breaker);
    const v = this.values;
    const snapshot: BatterySnapshot = {
      timestampMs: nowMs,
      ...(v.packVoltage !== undefined ? { voltage: v.packVoltage } : {}),
      ...(v.current !== undefined ? { current: v.current } : {}),
      ...(v.soc !== undefined ? { soc: v.soc } : {}),
      ...(v.soh !== undefined ? { soh: v.soh } : {}),
      cellVoltages: cells,
      cellCount: n,
      ...(v.vcMin !== undefined ? { cellVoltageMin: v.vcMin } : {}),
      ...(v.vcMax !== undefined ? { cellVoltageMax: v.vcMax } : {}),
      ...(temperatures.length > 0 ? { temperatures } : {}),
      ...(fets !== undefined ? { chargeFet: fets, dischargeFet: fets } : {}),
      protection: protectionFromErrors(this.extra.errors),
      identity: {
        manufacturer: 'BlueNova',
        model: 'BlueNova LiFeYPO4',
        ...(this.extra.mcuId !== undefined ? { serial: formatMcuId(this.extra.mcuId) } : {}),
      },
    };
    this.seen.clear();
    this.sweeps = 0;
    return { snapshot, extra: cloneExtra(this.extra), missing };
  }
}

/** The MCU ID as the console prints it (8 hex digits). */
export function formatMcuId(id: number): string {
  return ruleFor('mcuId').format(id);
}

function cloneExtra(x: BlueNovaExtra): BlueNovaExtra {
  return { ...x, adc: [...x.adc], counters: { ...x.counters } };
}
