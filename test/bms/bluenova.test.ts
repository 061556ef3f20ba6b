/**
 * BlueNova console parser: one test per line shape of the rule table (protocols.md §7), the cycle accumulator
 * (what a full cycle is), unknown lines reported once per shape, the Errors and Breaker mappings, and fuzzing.
 * No real capture exists: the lines here are written by hand in the documented shapes.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  BlueNovaConsole,
  type BlueNovaCycle,
  errorsText,
  fetsFromBreaker,
  formatLine,
  LINE_RULES,
  type LineValues,
  parseLine,
  protectionFromErrors,
  type RuleKey,
  unknownLineKey,
} from '../../src/bms/bluenova/protocol.js';

describe('one rule per line shape', () => {
  const rows: { line: string; key: RuleKey; index?: number; value: unknown }[] = [
    { line: 'MCU ID: 1A2B3C4D', key: 'mcuId', value: 0x1a2b3c4d },
    { line: 'MCU ID: 0xdeadbeef', key: 'mcuId', value: 0xdeadbeef },
    { line: '--- PO PARAMS --- (i=3) ---', key: 'units', value: 3 },
    { line: 'after assignRank() --> own rank = 2', key: 'rank', value: 2 },
    { line: 'CellCount: 16', key: 'cellCount', value: 16 },
    { line: 'C01) T: 25, V: 3312', key: 'cell', index: 1, value: { temperature: 25, voltage: 3.312 } },
    { line: 'C16) T: -3, V: 2999', key: 'cell', index: 16, value: { temperature: -3, voltage: 2.999 } },
    { line: 'Vpack: 52992', key: 'packVoltage', value: 52.992 },
    { line: 'Current: -12.50', key: 'current', value: -12.5 },
    { line: 'Current: 3', key: 'current', value: 3 },
    { line: 'Temp: 24', key: 'temperature', value: 24 },
    { line: 'Vc_max: 3315', key: 'cellVoltageMax', value: 3.315 },
    { line: 'Vc_min: 3308', key: 'cellVoltageMin', value: 3.308 },
    { line: 'SOC: 87', key: 'soc', value: 87 },
    { line: 'SOH: 98.5', key: 'soh', value: 98.5 },
    { line: 'Errors: "None"', key: 'errors', value: 'None' },
    { line: 'Errors: ""', key: 'errors', value: '' },
    { line: `Errors: "${'X'.repeat(40)}"`, key: 'errors', value: 'X'.repeat(32) },
    { line: 'System_State: RUNNING', key: 'systemState', value: 'RUNNING' },
    { line: 'Breaker: CLOSED', key: 'breaker', value: 'CLOSED' },
    { line: 'Charge State: Bulk charging now', key: 'chargeState', value: 'Bulk' },
    { line: 'Charge State: ABSORPTIONABSORPTION', key: 'chargeState', value: 'ABSORPTIONABSORP' },
    { line: 'Vp_adc: 52990', key: 'adcVp', value: 52.99 },
    { line: 'DEBUG: ADC[0]: 2048 = 1650', key: 'adc', index: 0, value: { raw: 2048, voltage: 1.65 } },
    { line: 'DEBUG: ADC[4]: 12 = 9', key: 'adc', index: 4, value: { raw: 12, voltage: 0.009 } },
    { line: 'INFO: BAD CRC', key: 'badCrc', value: true },
    { line: 'INFO: cellcomms parse FAIL', key: 'parseFail', value: true },
    { line: 'DEBUG: REJECT BAD VCELL C05 65535', key: 'badVcell', value: true },
    { line: 'DEBUG: CALC PACK_CHARGE, STORE IN FLASH', key: 'energyMarker', value: true },
    { line: 'Write EnergyOut: 1234.567', key: 'energy', value: 1234.567 },
  ];

  test.each(rows)('$line → $key', ({ line, key, index, value }) => {
    const p = parseLine(line);
    expect(p?.key).toBe(key);
    expect(p?.index).toBe(index);
    expect(p?.value).toEqual(value);
  });

  test('every rule of the table has a row above (a new rule needs its own test)', () => {
    const tested = new Set(rows.map((r) => r.key));
    expect(LINE_RULES.map((r) => r.key).filter((k) => !tested.has(k))).toEqual([]);
  });

  test('trailing CR/LF and leading blanks are ignored', () => {
    expect(parseLine('  SOC: 55\r\n')?.value).toBe(55);
  });

  test.each([
    ['Vpack: abc', 'packVoltage'],
    ['SOC: 150', 'soc'],
    ['C02) T: hot, V: 3300', 'cell'],
    ['CellCount: 0', 'cellCount'],
    ['Charge State:    ', 'chargeState'],
    ['MCU ID: zz', 'mcuId'],
  ])('%s has a known prefix but no value (malformed)', (line, key) => {
    const p = parseLine(line);
    expect(p?.key).toBe(key);
    expect(p?.value).toBeUndefined();
  });

  test.each(['C00) T: 25, V: 3300', 'C33) T: 25, V: 3300', 'DEBUG: ADC[5]: 1 = 1', 'Hello', ''])(
    '%j matches no rule',
    (line) => {
      expect(parseLine(line)).toBeUndefined();
    },
  );

  test('the simulator side prints what the parser reads back (formatLine ∘ parse round trip)', () => {
    const samples: { [K in RuleKey]: { value: LineValues[K]; index?: number } } = {
      mcuId: { value: 0xfeed0001 },
      units: { value: 3 },
      rank: { value: 1 },
      cellCount: { value: 8 },
      cell: { value: { temperature: 21, voltage: 3.287 }, index: 7 },
      packVoltage: { value: 26.301 },
      current: { value: -7.25 },
      temperature: { value: 19 },
      cellVoltageMax: { value: 3.401 },
      cellVoltageMin: { value: 3.2 },
      soc: { value: 42 },
      soh: { value: 97.5 },
      errors: { value: 'Cell over voltage' },
      systemState: { value: 'STANDBY' },
      breaker: { value: 'OPEN' },
      chargeState: { value: 'Float' },
      adcVp: { value: 26.3 },
      adc: { value: { raw: 100, voltage: 0.08 }, index: 2 },
      badCrc: { value: true },
      parseFail: { value: true },
      badVcell: { value: true },
      energyMarker: { value: true },
      energy: { value: 12.5 },
    };
    for (const r of LINE_RULES) {
      const s = samples[r.key] as { value: never; index?: number };
      const line = formatLine(r.key, s.value, s.index);
      expect(line.startsWith(r.prefix.split('{i}')[0] as string)).toBe(true);
      const p = parseLine(line);
      expect(p?.key, line).toBe(r.key);
      expect(p?.value, line).toEqual(s.value);
    }
    expect(() => formatLine('cell', { temperature: 1, voltage: 3 })).toThrow(RangeError);
  });
});

/** A console cycle in the documented shapes. */
function cycle(o: { cells?: number[]; current?: number; soc?: number; withCount?: boolean; withSoc?: boolean } = {}) {
  const cells = o.cells ?? [3.301, 3.302, 3.303, 3.304];
  const lines = [
    'System_State: RUNNING',
    'Breaker: CLOSED',
    'Charge State: Bulk',
    'Errors: "None"',
    ...(o.withCount === false ? [] : [`CellCount: ${cells.length}`]),
    ...cells.map((v, i) => `C${String(i + 1).padStart(2, '0')}) T: ${20 + i}, V: ${Math.round(v * 1000)}`),
    `Vpack: ${Math.round(cells.reduce((a, b) => a + b, 0) * 1000)}`,
    `Current: ${o.current ?? 4.5}`,
    'Temp: 23',
    ...(o.withSoc === false ? [] : [`SOC: ${o.soc ?? 66}`]),
    'SOH: 99.0',
  ];
  return lines;
}

function feedAll(c: BlueNovaConsole, lines: string[], t0 = 1000): BlueNovaCycle[] {
  const out: BlueNovaCycle[] = [];
  lines.forEach((l, i) => {
    const r = c.feed(l, t0 + i);
    if (r.cycle) out.push(r.cycle);
  });
  return out;
}

describe('cycle accumulation', () => {
  test('a full cycle (all cells of CellCount, Vpack, Current, SOC) gives one snapshot at its last required line', () => {
    const c = new BlueNovaConsole();
    const lines = cycle();
    const socAt = lines.findIndex((l) => l.startsWith('SOC:'));
    const got: { at: number; cycle: BlueNovaCycle }[] = [];
    lines.forEach((l, i) => {
      const r = c.feed(l, 5000 + i);
      if (r.cycle) got.push({ at: i, cycle: r.cycle });
    });
    expect(got).toHaveLength(1);
    expect(got[0]?.at).toBe(socAt);
    const s = got[0]?.cycle.snapshot;
    expect(s?.timestampMs).toBe(5000 + socAt);
    expect(s?.cellVoltages).toEqual([3.301, 3.302, 3.303, 3.304]);
    expect(s?.cellCount).toBe(4);
    expect(s?.voltage).toBeCloseTo(13.21, 6);
    expect(s?.current).toBe(4.5);
    expect(s?.soc).toBe(66);
    expect(s?.soh).toBeUndefined(); // SOH comes after SOC in this cycle: it is in the next snapshot
    expect(s?.temperatures?.map((t) => t.name)).toEqual(['C01', 'C02', 'C03', 'C04', 'Pack']);
    expect(s?.temperatures?.map((t) => t.celsius)).toEqual([20, 21, 22, 23, 23]);
    expect(s?.chargeFet).toBe(true);
    expect(s?.dischargeFet).toBe(true);
    expect(s?.protection).toEqual({ internalFailure: false });
    expect(got[0]?.cycle.missing).toEqual([]);
    expect(got[0]?.cycle.extra).toMatchObject({ systemState: 'RUNNING', breaker: 'CLOSED', chargeState: 'Bulk' });
    // The next cycle carries the SOH of the first.
    const next = feedAll(c, cycle({ soc: 65 }));
    expect(next).toHaveLength(1);
    expect(next[0]?.snapshot.soh).toBe(99);
    expect(next[0]?.snapshot.soc).toBe(65);
  });

  test('half a cycle gives nothing; a cycle that starts mid-way completes once every required line has come', () => {
    const c = new BlueNovaConsole();
    const lines = cycle();
    const mid = lines.findIndex((l) => l.startsWith('C03'));
    expect(feedAll(c, lines.slice(mid))).toHaveLength(0); // C01, C02 never seen
    expect(feedAll(c, lines.slice(0, mid))).toHaveLength(1); // now they have
  });

  test('without a CellCount line the cell count is learnt from the first sweep: first snapshot at the next C01', () => {
    const c = new BlueNovaConsole();
    const first = cycle({ withCount: false });
    expect(feedAll(c, first)).toHaveLength(0);
    expect(c.cellCount).toBeUndefined();
    const r = c.feed('C01) T: 20, V: 3301', 9000);
    expect(c.cellCount).toBe(4);
    expect(r.cycle?.snapshot.cellVoltages).toEqual([3.301, 3.302, 3.303, 3.304]);
    expect(r.cycle?.missing).toEqual([]);
    // From then on one snapshot per cycle, at its SOC line.
    const rest = cycle({ withCount: false, soc: 70 }).filter((l) => !l.startsWith('C01'));
    const more = feedAll(c, rest);
    expect(more).toHaveLength(1);
    expect(more[0]?.snapshot.soc).toBe(70);
    expect(feedAll(c, cycle({ withCount: false }))).toHaveLength(1);
  });

  test('a firmware without a SOC line: the next C01 closes the cycle, named as missing', () => {
    const c = new BlueNovaConsole();
    expect(feedAll(c, cycle({ withSoc: false }))).toHaveLength(0);
    const closed = feedAll(c, cycle({ withSoc: false }));
    expect(closed).toHaveLength(1);
    expect(closed[0]?.missing).toEqual(['SOC:']);
    expect(closed[0]?.snapshot.soc).toBeUndefined();
    expect(closed[0]?.snapshot.voltage).toBeCloseTo(13.21, 6);
    // One per cycle after that.
    expect(feedAll(c, cycle({ withSoc: false }))).toHaveLength(1);
    expect(feedAll(c, cycle({ withSoc: false }))).toHaveLength(1);
  });

  test('current_sign = -1 flips the printed current', () => {
    const c = new BlueNovaConsole({ currentSign: -1 });
    expect(feedAll(c, cycle({ current: 12.5 }))[0]?.snapshot.current).toBe(-12.5);
  });

  test('a shorter CellCount drops the cells above it', () => {
    const c = new BlueNovaConsole();
    feedAll(c, cycle());
    const three = feedAll(c, cycle({ cells: [3.2, 3.21, 3.22] }));
    expect(three[0]?.snapshot.cellVoltages).toEqual([3.2, 3.21, 3.22]);
  });

  test('identity, energy (out first, then in, only after the marker), ADCs and counters go into the extra record', () => {
    const c = new BlueNovaConsole();
    const r1 = c.feed('MCU ID: 00C0FFEE', 1);
    expect(r1.identityChanged).toBe(true);
    expect(c.feed('MCU ID: 00C0FFEE', 2).identityChanged).toBeUndefined();
    c.feed('--- PO PARAMS --- (i=2)', 3);
    c.feed('after assignRank() --> own rank = 1', 4);
    c.feed('Write EnergyOut: 5.5', 5); // no marker: ignored
    c.feed('DEBUG: CALC PACK_CHARGE, STORE IN FLASH', 6);
    c.feed('Write EnergyOut: 100.25', 7);
    c.feed('Write EnergyOut: 200.5', 8);
    c.feed('Write EnergyOut: 300', 9); // a third: ignored
    c.feed('Vp_adc: 13210', 10);
    c.feed('DEBUG: ADC[3]: 4000 = 3222', 11);
    for (const l of ['INFO: BAD CRC', 'INFO: BAD CRC', 'INFO: cellcomms parse FAIL', 'DEBUG: REJECT BAD V'])
      c.feed(l, 12);
    const [cyc] = feedAll(c, cycle());
    expect(cyc?.extra).toMatchObject({
      mcuId: 0xc0ffee,
      units: 2,
      rank: 1,
      energyOut: 100.25,
      energyIn: 200.5,
      adcVp: 13.21,
      temperature: 23,
      cellCount: 4,
      counters: { badCrc: 2, parseFail: 1, badVcell: 1 },
    });
    expect(cyc?.extra.adc[3]).toBe(3.222);
    expect(cyc?.snapshot.identity).toEqual({
      manufacturer: 'BlueNova',
      model: 'BlueNova LiFeYPO4',
      serial: '00C0FFEE',
    });
    // The cycle's extra is a copy: later lines do not change a delivered cycle.
    c.feed('INFO: BAD CRC', 99);
    expect(cyc?.extra.counters.badCrc).toBe(2);
  });

  test('Errors and Breaker reach the snapshot as protection flags and FET state', () => {
    const c = new BlueNovaConsole();
    const lines = cycle().map((l) =>
      l.startsWith('Errors') ? 'Errors: "Cell over voltage"' : l.startsWith('Breaker') ? 'Breaker: OPEN' : l,
    );
    const [cyc] = feedAll(c, lines);
    expect(cyc?.snapshot.protection).toEqual({ cellOverVoltage: true });
    expect(cyc?.snapshot.chargeFet).toBe(false);
    expect(cyc?.snapshot.dischargeFet).toBe(false);
  });

  test('a lost connection drops the cycle in progress', () => {
    const c = new BlueNovaConsole();
    const lines = cycle();
    const socAt = lines.findIndex((l) => l.startsWith('SOC:'));
    feedAll(c, lines.slice(0, socAt));
    c.resetCycle();
    expect(feedAll(c, lines.slice(socAt))).toHaveLength(0);
  });
});

describe('unknown lines', () => {
  test('each unknown shape is reported once; digits do not make a new shape', () => {
    const c = new BlueNovaConsole();
    expect(c.feed('WIFI: connected to HomeNet', 1).unknown).toBe('WIFI:');
    expect(c.feed('WIFI: connected to OtherNet', 2).unknown).toBeUndefined();
    expect(c.feed('C33) T: 25, V: 3300', 3).unknown).toBe('C##) T:');
    expect(c.feed('C34) T: 25, V: 3300', 4).unknown).toBeUndefined();
    expect(c.feed('Booting kernel 5', 5).unknown).toBe('Booting kernel #');
    expect(c.unknownCount).toBe(3);
  });

  test('a malformed line of a known rule is reported once per rule, never as unknown', () => {
    const c = new BlueNovaConsole();
    expect(c.feed('Vpack: ???', 1)).toEqual({ malformed: 'packVoltage' });
    expect(c.feed('Vpack: !!!', 2)).toEqual({});
    expect(c.feed('SOC: x', 3)).toEqual({ malformed: 'soc' });
  });

  test('memory is bounded: after maxUnknown shapes no more are remembered or reported', () => {
    const c = new BlueNovaConsole({ maxUnknown: 5 });
    const reported = Array.from({ length: 20 }, (_, i) =>
      c.feed(`line ${'abcdefghijklmnopqrstuvwxyz'[i]}: x`, i),
    ).filter((r) => r.unknown !== undefined).length;
    expect(reported).toBe(5);
    expect(c.unknownCount).toBe(5);
  });

  test('unknownLineKey: up to the first ":" or "=", else 32 characters, digits as #', () => {
    expect(unknownLineKey('  RTC = 2024-01-01 ')).toBe('RTC =');
    expect(unknownLineKey('x'.repeat(50))).toBe('x'.repeat(32));
    expect(unknownLineKey('   ')).toBe('');
  });
});

describe('Errors text and Breaker word', () => {
  test.each([
    ['None', { internalFailure: false }],
    ['', { internalFailure: false }],
    ['no errors', { internalFailure: false }],
    ['Cell over voltage', { cellOverVoltage: true }],
    ['Pack OV', { packOverVoltage: true }],
    ['Cell under-voltage', { cellUnderVoltage: true }],
    ['Over temperature', { chargeOverTemperature: true, dischargeOverTemperature: true }],
    ['Low temp', { chargeUnderTemperature: true, dischargeUnderTemperature: true }],
    ['Over current', { chargeOverCurrent: true, dischargeOverCurrent: true }],
    ['Short circuit', { shortCircuit: true }],
    ['E17 cellcomms', { internalFailure: true }],
  ])('Errors "%s" → %j', (text, flags) => {
    expect(protectionFromErrors(text)).toEqual(flags);
  });

  test('no Errors line yet: no flags at all', () => {
    expect(protectionFromErrors(undefined)).toEqual({});
    expect(errorsText(undefined)).toBeUndefined();
    expect(['None', ' ok ', '0', 'no errors', ''].map(errorsText)).toEqual(['', '', '', '', '']);
    expect(errorsText(' E42 cellcomms ')).toBe('E42 cellcomms');
  });

  test.each([
    ['CLOSED', true],
    ['on', true],
    ['OPEN', false],
    ['Tripped', false],
    ['off', false],
    ['UNKNOWN', undefined],
    [undefined, undefined],
  ])('Breaker %s → FETs %s', (word, fets) => {
    expect(fetsFromBreaker(word)).toBe(fets);
  });
});

describe('fuzz: the parser never throws, whatever arrives', () => {
  const prefixes = LINE_RULES.map((r) => r.prefix.replace('{i}', '01').replace('ADC[01]', 'ADC[1]'));

  test('random text, known prefixes with random tails, and mixed cycles', () => {
    const line = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.tuple(fc.constantFrom(...prefixes), fc.string({ maxLength: 40 })).map(([p, t]) => p + t),
      fc.tuple(fc.constantFrom(...prefixes), fc.double()).map(([p, n]) => p + String(n)),
      fc.constantFrom(...cycle()),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 300 }), fc.constantFrom<1 | -1>(1, -1), (lines, sign) => {
        const c = new BlueNovaConsole({ currentSign: sign });
        lines.forEach((l, i) => {
          const r = c.feed(l, i);
          if (r.cycle) {
            const s = r.cycle.snapshot;
            for (const v of [s.voltage, s.current, s.soc, s.soh, ...(s.cellVoltages ?? [])]) {
              if (v !== undefined) expect(Number.isFinite(v)).toBe(true);
            }
            expect(s.cellVoltages?.length).toBe(s.cellCount);
          }
        });
        expect(c.unknownCount).toBeLessThanOrEqual(200);
      }),
      { numRuns: 300 },
    );
  });
});
