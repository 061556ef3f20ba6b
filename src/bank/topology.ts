/**
 * How the members of a bank are wired: parallel strings of batteries in series (docs/bank.md).
 *
 *   [bank]
 *   batteries = a, b, c, d
 *   topology  = 2s2p          → strings a+b and c+d, the two strings in parallel
 *   series    = a+b, c+d      → the same, spelled out (then `topology` is optional)
 *
 * Parsing is strict: a bank wired differently from what we model gets the wrong limits, so anything ambiguous
 * is an error with a message naming the key, the value and what was expected. Pure; no config file access.
 */

/** A bank wiring we refuse: unknown member, member used twice, wrong count, unreadable topology, … */
export class TopologyError extends Error {
  override readonly name = 'TopologyError';
}

/** The wiring of a bank. Member ids are config battery ids (`[battery.<id>]`), never serial numbers. */
export interface Topology {
  /**
   * The parallel strings; each lists its members in series order (the order cells are numbered in).
   * A plain parallel bank has one member per string; a series bank has one string.
   */
  readonly strings: readonly (readonly string[])[];
  /** All members, string by string, in order. */
  readonly members: readonly string[];
  /** Batteries in series per string (the longest string when strings differ): /System/BatteriesSeries. */
  readonly seriesCount: number;
  /** Strings in parallel: /System/BatteriesParallel. */
  readonly parallelCount: number;
  /** `2s2p`, or the strings spelled out (`a+b, c`) when they are not all the same length. */
  readonly label: string;
}

/** The `[bank]` keys as the config reader splits them (comma lists already split, or not: both work). */
export interface TopologySpec {
  batteries?: readonly string[];
  topology?: string;
  series?: readonly string[];
}

/** Largest batteries-per-string or strings count we accept (a sanity bound, not an electrical one). */
export const MAX_TOPOLOGY_DIMENSION = 64;

/** Build a Topology from strings that were already checked. */
function build(strings: readonly (readonly string[])[]): Topology {
  const seriesCount = Math.max(...strings.map((s) => s.length));
  const regular = strings.every((s) => s.length === seriesCount);
  return {
    strings: strings.map((s) => [...s]),
    members: strings.flat(),
    seriesCount,
    parallelCount: strings.length,
    label: regular ? `${seriesCount}s${strings.length}p` : strings.map((s) => s.join('+')).join(', '),
  };
}

/** A single battery with no `[bank]` section: a bank of one. */
export function bankOfOne(id: string): Topology {
  return build([[id]]);
}

/** Split comma lists (the reader may or may not have done it) and trim; empty entries are reported. */
function splitList(key: string, values: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of values) {
    for (const part of raw.split(',')) {
      const name = part.trim();
      if (name === '') {
        throw new TopologyError(`[bank] ${key} = ${JSON.stringify(values.join(', '))}: empty battery name in the list`);
      }
      out.push(name);
    }
  }
  return out;
}

function checkKnown(key: string, ids: readonly string[], knownIds: readonly string[]): void {
  const known = new Set(knownIds);
  for (const id of ids) {
    if (!known.has(id)) {
      const list = knownIds.length > 0 ? knownIds.join(', ') : 'none';
      throw new TopologyError(
        `[bank] ${key}: "${id}" is not a configured battery (configured: ${list}); add a [battery.${id}] section or fix the name`,
      );
    }
  }
}

function checkUnique(key: string, ids: readonly string[]): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) {
      throw new TopologyError(
        `[bank] ${key}: battery "${id}" is listed twice; each battery can sit in the bank only once`,
      );
    }
    seen.add(id);
  }
}

type Shape = { kind: 'grid'; series: number; parallel: number } | { kind: 'series' } | { kind: 'parallel' };

const SHAPE_HELP =
  'expected <n>s<m>p such as 2s2p (n batteries in series per string, m strings in parallel), 4s, 3p, "series" or "parallel"';

function parseShape(text: string): Shape {
  const t = text.trim().toLowerCase();
  if (t === 'series') return { kind: 'series' };
  if (t === 'parallel') return { kind: 'parallel' };
  const m = /^(?:(\d{1,3})\s*s)?\s*(?:(\d{1,3})\s*p)?$/.exec(t);
  if (m === null || (m[1] === undefined && m[2] === undefined)) {
    const hint = /^\d+\s*p\s*\d+\s*s$/.test(t) ? ' (write the series count first: 2s2p, not 2p2s)' : '';
    throw new TopologyError(`[bank] topology = ${JSON.stringify(text)}: ${SHAPE_HELP}${hint}`);
  }
  const series = Number(m[1] ?? 1);
  const parallel = Number(m[2] ?? 1);
  for (const [n, what] of [
    [series, 'batteries in series'],
    [parallel, 'strings in parallel'],
  ] as const) {
    if (n < 1 || n > MAX_TOPOLOGY_DIMENSION) {
      throw new TopologyError(
        `[bank] topology = ${JSON.stringify(text)}: ${what} must be 1–${MAX_TOPOLOGY_DIMENSION}, got ${n}`,
      );
    }
  }
  return { kind: 'grid', series, parallel };
}

/** Resolve `series`/`parallel` words against the member count. */
function resolveShape(shape: Shape, count: number): { series: number; parallel: number } {
  if (shape.kind === 'series') return { series: count, parallel: 1 };
  if (shape.kind === 'parallel') return { series: 1, parallel: count };
  return shape;
}

/**
 * Parse the `[bank]` keys into a Topology.
 *
 * - `series = a+b, c+d`: explicit strings (the strings are in parallel); `batteries` and `topology`, when also
 *   given, must agree with it.
 * - `topology = NsMp` with `batteries = …`: consecutive groups of N batteries form the strings. Without
 *   `batteries`, the configured batteries are used in config order, but only when the grouping cannot matter
 *   (one string, or one battery per string).
 * - No `topology` and no `series`: exactly one battery is a bank of one; more is an error (we never guess a
 *   wiring).
 *
 * @param knownIds the configured battery ids, in config order.
 * @throws TopologyError with a message naming the key, the value and what was expected.
 */
export function parseTopology(spec: TopologySpec, knownIds: readonly string[]): Topology {
  const batteries =
    spec.batteries !== undefined && spec.batteries.length > 0 ? splitList('batteries', spec.batteries) : undefined;
  const seriesSpec = spec.series?.filter((s) => s.trim() !== '');
  const topologyText = spec.topology?.trim() ? spec.topology : undefined;
  if (batteries !== undefined) {
    checkKnown('batteries', batteries, knownIds);
    checkUnique('batteries', batteries);
  }

  if (seriesSpec !== undefined && seriesSpec.length > 0) {
    const strings = splitList('series', seriesSpec).map((str) => {
      const members = str.split('+').map((m) => m.trim());
      if (members.some((m) => m === '')) {
        throw new TopologyError(`[bank] series: "${str}" has an empty battery name; write strings as a+b, c+d`);
      }
      return members;
    });
    const all = strings.flat();
    checkKnown('series', all, knownIds);
    checkUnique('series', all);
    if (batteries !== undefined) {
      const inSeries = new Set(all);
      const inBatteries = new Set(batteries);
      const missing = batteries.filter((b) => !inSeries.has(b));
      const extra = all.filter((b) => !inBatteries.has(b));
      if (missing.length > 0 || extra.length > 0) {
        const parts = [
          missing.length > 0 ? `in batteries but not in series: ${missing.join(', ')}` : '',
          extra.length > 0 ? `in series but not in batteries: ${extra.join(', ')}` : '',
        ].filter(Boolean);
        throw new TopologyError(`[bank] batteries and series disagree (${parts.join('; ')})`);
      }
    }
    if (topologyText !== undefined) {
      const { series, parallel } = resolveShape(parseShape(topologyText), all.length);
      const fits = strings.length === parallel && strings.every((s) => s.length === series);
      if (!fits) {
        throw new TopologyError(
          `[bank] topology = ${JSON.stringify(topologyText)} does not match series = ${strings.map((s) => s.join('+')).join(', ')} ` +
            `(${strings.length} string(s) of ${strings.map((s) => s.length).join('/')} batteries); drop topology or make them agree`,
        );
      }
    }
    return build(strings);
  }

  if (topologyText !== undefined) {
    const shape = parseShape(topologyText);
    let members = batteries;
    if (members === undefined) {
      const ambiguous = shape.kind === 'grid' && shape.series > 1 && shape.parallel > 1;
      if (ambiguous) {
        throw new TopologyError(
          `[bank] topology = ${JSON.stringify(topologyText)} needs batteries = … listing the batteries string by string ` +
            `(which batteries are in series with which matters), or series = a+b, c+d`,
        );
      }
      members = [...knownIds];
    }
    const { series, parallel } = resolveShape(shape, members.length);
    if (members.length !== series * parallel) {
      throw new TopologyError(
        `[bank] topology = ${JSON.stringify(topologyText)} needs ${series * parallel} batteries ` +
          `(${series} in series × ${parallel} in parallel); ${batteries !== undefined ? 'batteries lists' : 'configured are'} ` +
          `${members.length}: ${members.join(', ') || 'none'}`,
      );
    }
    if (members.length === 0) throw new TopologyError('[bank] no battery in the bank: list them in batteries = …');
    const strings: string[][] = [];
    for (let p = 0; p < parallel; p++) strings.push(members.slice(p * series, (p + 1) * series));
    return build(strings);
  }

  const members = batteries ?? [...knownIds];
  if (members.length === 0) {
    throw new TopologyError('[bank] no battery configured: add a section such as [battery.house]');
  }
  if (members.length > 1) {
    throw new TopologyError(
      `[bank] ${members.length} batteries (${members.join(', ')}) but no topology: add topology = <n>s<m>p ` +
        `(e.g. ${members.length}p for all in parallel, ${members.length}s for all in series) or series = a+b, c+d`,
    );
  }
  return build([members]);
}

/** Result of checking the members' cell counts (and chemistries) against the wiring. */
export interface MemberValidation {
  /** No errors. Unknown cell counts are not errors (they are known after the first reply). */
  readonly ok: boolean;
  /** Human-readable problems; any one makes the bank unusable (limits 0). */
  readonly errors: readonly string[];
  /** Cells per member, in topology order; undefined = not known yet. */
  readonly members: readonly { readonly id: string; readonly cells: number | undefined }[];
  /** Total cells in series per string; undefined when a member of the string is not known yet. */
  readonly stringCells: readonly (number | undefined)[];
  /** Members whose cell count is not known yet. */
  readonly unknown: readonly string[];
}

/** Own-property lookup: ids such as `constructor` must not find Object.prototype members. */
export function lookup<T>(table: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return table !== undefined && Object.hasOwn(table, key) ? table[key] : undefined;
}

/**
 * Check that the members can be wired as the topology says.
 * - Series members may have any cell counts (an 8s and a 16s in series are fine); they are reported per member.
 * - Strings in parallel must have the same total cells in series, or the lower string is over-charged by the
 *   higher one.
 * - All members must share one chemistry, when chemistries are known (LFP and NMC have different voltage
 *   windows: one CVL cannot fit both).
 *
 * @param cellCounts cells per member id; missing or undefined = not known yet.
 * @param chemistries chemistry per member id (`LFP`, `NMC`, …, compared case-insensitively); optional.
 */
export function validateMembers(
  topology: Topology,
  cellCounts: Readonly<Record<string, number | undefined>>,
  chemistries?: Readonly<Record<string, string | undefined>>,
): MemberValidation {
  const errors: string[] = [];
  const unknown: string[] = [];
  const members = topology.members.map((id) => {
    const cells = lookup(cellCounts, id);
    if (cells === undefined) {
      unknown.push(id);
      return { id, cells: undefined };
    }
    if (!Number.isInteger(cells) || cells < 1 || cells > 1024) {
      errors.push(`battery ${id}: cell count ${cells} is not a whole number of cells`);
      unknown.push(id);
      return { id, cells: undefined };
    }
    return { id, cells };
  });
  const cellsOf = new Map(members.map((m) => [m.id, m.cells]));
  const stringCells = topology.strings.map((s) => {
    let total = 0;
    for (const id of s) {
      const c = cellsOf.get(id);
      if (c === undefined) return undefined;
      total += c;
    }
    return total;
  });
  const known = stringCells
    .map((cells, i) => ({ cells, i }))
    .filter((x): x is { cells: number; i: number } => x.cells !== undefined);
  const first = known[0];
  if (first !== undefined && known.some((k) => k.cells !== first.cells)) {
    const list = known.map((k) => `string ${k.i + 1} (${topology.strings[k.i]?.join('+')}) has ${k.cells}`).join(', ');
    errors.push(`strings in parallel must have the same number of cells in series: ${list}`);
  }
  if (chemistries !== undefined) {
    const named = topology.members
      .map((id) => ({ id, chem: lookup(chemistries, id)?.trim() }))
      .filter((x): x is { id: string; chem: string } => x.chem !== undefined && x.chem !== '');
    const kinds = new Set(named.map((x) => x.chem.toUpperCase()));
    if (kinds.size > 1) {
      errors.push(
        `members mix chemistries (${named.map((x) => `${x.id} ${x.chem}`).join(', ')}); one bank needs one chemistry`,
      );
    }
  }
  return { ok: errors.length === 0, errors, members, stringCells, unknown };
}
