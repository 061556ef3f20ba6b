/** Plain-text table for the terminal: fixed columns, right-aligned values, a verdict beside each target. */

export interface Row {
  section: string;
  measure: string;
  value: string;
  target?: string;
  /** true = meets the target, false = misses it, undefined = no target. */
  met?: boolean | undefined;
}

export function renderTable(rows: readonly Row[]): string {
  const head = { section: '#', measure: 'measure', value: 'value', target: 'target', verdict: '' };
  const cells = rows.map((r) => ({
    section: r.section,
    measure: r.measure,
    value: r.value,
    target: r.target ?? '',
    verdict: r.met === undefined ? '' : r.met ? 'ok' : 'MISSED',
  }));
  const all = [head, ...cells];
  const w = {
    section: Math.max(...all.map((c) => c.section.length)),
    measure: Math.max(...all.map((c) => c.measure.length)),
    value: Math.max(...all.map((c) => c.value.length)),
    target: Math.max(...all.map((c) => c.target.length)),
    verdict: Math.max(...all.map((c) => c.verdict.length)),
  };
  const line = (c: typeof head, alignValue: 'left' | 'right') =>
    [
      c.section.padEnd(w.section),
      c.measure.padEnd(w.measure),
      alignValue === 'right' ? c.value.padStart(w.value) : c.value.padEnd(w.value),
      c.target.padEnd(w.target),
      c.verdict,
    ]
      .join('  ')
      .trimEnd();
  const rule = [w.section, w.measure, w.value, w.target, w.verdict]
    .map((n) => '─'.repeat(n))
    .join('  ')
    .trimEnd();
  const out = [line(head, 'left'), rule];
  let last = '';
  for (const c of cells) {
    if (last !== '' && c.section !== last) out.push('');
    last = c.section;
    out.push(line(c, 'right'));
  }
  return out.join('\n');
}
