/**
 * The capture writer on a real directory: size cap and rotation (every part replayable on its own), the bounded
 * queue, a failing disk; and the reader's tolerance of what a crash or a hand edit leaves behind.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { CaptureHeader } from '../../src/capture/capture-file.js';
import { CaptureWriter } from '../../src/capture/capture-file.js';
import { parseCapture } from '../../src/capture/capture-reader.js';
import { parseConfig } from '../../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'capture-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = parseConfig([{ file: 't.ini', text: '[battery.house]\nprotocol = jbd\nport = /dev/ttyUSB0\n' }])
  .batteries[0] as NonNullable<ReturnType<typeof parseConfig>['batteries'][0]>;

const header = {
  battery: 'house',
  family: 'jbd',
  link: { kind: 'serial' as const, description: 'Serial /dev/ttyUSB0' },
  config,
  version: 'test',
};

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('CaptureWriter', () => {
  test('rotates at the size cap, keeps the given number of files, and every file starts with the headers', async () => {
    const path = join(dir, 'rot', 'capture.jsonl');
    const w = new CaptureWriter({ path, maxBytes: 4000, files: 3, flushMs: 5 });
    w.addHeader(header);
    for (let i = 0; i < 300; i++) {
      w.record({ k: 'f', t: 1000 + i, b: 'house', d: i % 2 ? 'rx' : 'tx', hex: 'dd03000000fffd77', req: `${i}` });
      if (i % 20 === 19) await w.flush();
    }
    await w.close();
    expect(existsSync(path)).toBe(true);
    expect(existsSync(`${path}.1`)).toBe(true);
    expect(existsSync(`${path}.2`)).toBe(true);
    expect(existsSync(`${path}.3`)).toBe(false);
    expect(w.stats.rotations).toBeGreaterThanOrEqual(3);
    expect(w.stats.dropped).toBe(0);
    for (const p of [path, `${path}.1`, `${path}.2`]) {
      expect(statSync(p).size).toBeLessThanOrEqual(4000);
      const recs = lines(p);
      expect(recs[0]).toMatchObject({ k: 'h', v: 1, battery: 'house', family: 'jbd', session: w.session });
      expect(recs.slice(1).every((r) => r.k === 'f')).toBe(true);
    }
    // Parts count up, newest in the current file; the newest record is the last one written.
    const parts = [`${path}.2`, `${path}.1`, path].map((p) => (lines(p)[0] as { part: number }).part);
    expect(parts[0]).toBeLessThan(parts[1] as number);
    expect(parts[1]).toBeLessThan(parts[2] as number);
    expect(lines(path).at(-1)).toMatchObject({ req: '299' });
    // The rotated set read back (oldest first) is one session, in order, with no gaps inside the kept files.
    const s = parseCapture(
      [`${path}.2`, `${path}.1`, path].map((name) => ({ name, text: readFileSync(name, 'utf8') })),
    );
    expect(s.badLines).toBe(0);
    expect(s.headers).toHaveLength(1);
    const reqs = s.frames.map((f) => Number(f.req));
    expect(reqs.at(-1)).toBe(299);
    expect(reqs.every((r, i) => i === 0 || r === (reqs[i - 1] as number) + 1)).toBe(true);
  });

  test('a file of an earlier run is rotated away at the first write, not appended to', async () => {
    const path = join(dir, 'old.jsonl');
    writeFileSync(path, '{"k":"h","old":true}\n');
    const w = new CaptureWriter({ path, maxBytes: 100_000, files: 2, flushMs: 5 });
    w.addHeader(header);
    await w.close();
    expect(readFileSync(`${path}.1`, 'utf8')).toContain('"old":true');
    expect(lines(path)).toHaveLength(1);
    expect(lines(path)[0]).toMatchObject({ k: 'h', battery: 'house' });
  });

  test('a queue the disk cannot drain is bounded: records beyond one file size are dropped and counted', async () => {
    const path = join(dir, 'bounded.jsonl');
    const w = new CaptureWriter({ path, maxBytes: 10_000, files: 1, flushMs: 1000 });
    for (let i = 0; i < 1000; i++) w.record({ k: 'e', t: i, b: 'house', level: 'info', msg: 'x'.repeat(50) });
    expect(w.stats.dropped).toBeGreaterThan(800);
    await w.close();
    expect(w.stats.records + w.stats.dropped).toBe(1000);
    expect(statSync(path).size).toBeLessThanOrEqual(10_000);
  });

  test('a write error is reported once and switches the capture off; nothing throws to the caller', async () => {
    writeFileSync(join(dir, 'not-a-dir'), 'x');
    const warnings: string[] = [];
    const w = new CaptureWriter({
      path: join(dir, 'not-a-dir', 'capture.jsonl'),
      maxBytes: 10_000,
      files: 2,
      flushMs: 5,
      warn: (m) => warnings.push(m),
    });
    w.addHeader(header);
    await w.flush();
    for (let i = 0; i < 10; i++) w.record({ k: 'e', t: i, b: 'house', level: 'info', msg: 'after' });
    await w.flush();
    await w.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/capture to .*not-a-dir.* stopped/);
    expect(w.stats.failed).toBeDefined();
    expect(w.stats.dropped).toBeGreaterThanOrEqual(10);
    expect(w.stats.records).toBe(0);
  });

  test('bad settings are refused', () => {
    expect(() => new CaptureWriter({ path: join(dir, 'x'), maxBytes: 0, files: 1 })).toThrow(RangeError);
    expect(() => new CaptureWriter({ path: join(dir, 'x'), maxBytes: 10, files: 0 })).toThrow(RangeError);
  });
});

describe('parseCapture', () => {
  const h = (session: string, battery = 'house'): string =>
    JSON.stringify({
      k: 'h',
      v: 1,
      session,
      part: 0,
      t: 1000,
      ...header,
      battery,
    } satisfies CaptureHeader);

  test('garbage, a cut-off last line, unknown kinds and bad bytes are counted and named; the rest is read', () => {
    const text = [
      h('s1'),
      '{"k":"f","t":1001,"b":"house","d":"tx","hex":"dda50300fffd77","req":"dda50300fffd77"}',
      'this is not json',
      '{"k":"f","t":1002,"b":"house","d":"rx","hex":"zz"}',
      '{"k":"f","t":1003,"b":"other","d":"rx","hex":"00"}',
      '{"k":"q","t":1004}',
      '[1,2,3]',
      '{"k":"s","t":1005,"b":"house","snap":{"timestampMs":1005,"voltage":52.1}}',
      '{"k":"e","t":1006,"b":"house","level":"warn","msg":"no reply"}',
      '{"k":"f","t":1007,"b":"house","d":"rx","hex":"dd030000',
    ].join('\n');
    const s = parseCapture([{ name: 'c.jsonl', text }]);
    expect(s.frames.map((f) => f.t)).toEqual([1001]);
    expect(s.snapshots).toHaveLength(1);
    expect(s.events).toEqual([{ k: 'e', t: 1006, b: 'house', level: 'warn', msg: 'no reply' }]);
    expect(s.badLines).toBe(6);
    expect(s.problems).toEqual([
      expect.stringMatching(/^c\.jsonl:3: not a JSON record/),
      expect.stringMatching(/^c\.jsonl:4: bad frame bytes/),
      'c.jsonl:5: frame of battery "other" before its header',
      'c.jsonl:6: unknown record kind "q"',
      expect.stringMatching(/^c\.jsonl:7: not a JSON record \(not an object\)/),
      expect.stringMatching(/^c\.jsonl:10: not a JSON record/),
    ]);
  });

  test('parts of one session join in time order; a file of another session or without a header is left out', () => {
    const part0 = `${h('s1')}\n{"k":"f","t":1001,"b":"house","d":"tx","hex":"01"}\n`;
    const part1 = `${h('s1')}\n{"k":"f","t":1002,"b":"house","d":"rx","hex":"02"}\n`;
    const other = `${h('s2')}\n{"k":"f","t":5000,"b":"house","d":"rx","hex":"03"}\n`;
    const s = parseCapture([
      { name: 'a', text: part0 },
      { name: 'b', text: part1 },
      { name: 'c', text: other },
      { name: 'd', text: 'hello\n' },
    ]);
    expect(s.session).toBe('s1');
    expect(s.frames.map((f) => f.hex)).toEqual(['01', '02']);
    expect(s.skippedFiles).toEqual(['c', 'd']);
    expect(s.startT).toBe(1000);
    expect(s.endT).toBe(1002);
  });

  test('CAN frames keep id, ext and data; a newer layout version is refused', () => {
    const text = [
      h('s1'),
      '{"k":"f","t":1001,"b":"house","d":"rx","can":"18FF50E5#0102"}',
      '{"k":"f","t":1002,"b":"house","d":"rx","can":"351#1C0200000000E801"}',
      JSON.stringify({ ...JSON.parse(h('s1', 'b2')), v: 99 }),
    ].join('\n');
    const s = parseCapture([{ name: 'x', text }]);
    expect(s.frames.map((f) => f.can)).toEqual([
      { id: 0x18ff50e5, ext: true, data: Uint8Array.from([1, 2]) },
      { id: 0x351, ext: false, data: Uint8Array.from([0x1c, 0x02, 0, 0, 0, 0, 0xe8, 0x01]) },
    ]);
    expect(s.headers.map((x) => x.battery)).toEqual(['house']);
    expect(s.problems).toEqual([expect.stringMatching(/x:4: header of layout version 99/)]);
  });
});
