/** The shared JSON payload and the sink plumbing (fan-out isolation, bounded queue). */
import { describe, expect, test } from 'vitest';
import { noAlarms } from '../../src/domain/battery-state.js';
import { jsonSafe, kindOf, stableJson, statePayload } from '../../src/publishers/payload.js';
import { BoundedQueue, fanOut, rateLimitedLog, type Sink } from '../../src/publishers/sink.js';
import { bankState, batteryState, memoryLogger, snapshot } from './fixtures.js';

describe('statePayload', () => {
  test('carries measurements, cells with min/max/delta, limits with reasons, alarms, identity', () => {
    const p = statePayload(batteryState(), { chargeMode: 'Float' }, Date.UTC(2024, 0, 1));
    expect(p).toMatchObject({
      id: 'house',
      kind: 'battery',
      time: '2024-01-01T00:00:00.000Z',
      voltage: 26.4,
      power: -330,
      temperatureMin: 21.5,
      temperatureMax: 23.1,
      cells: { count: 8, min: 3.297, minCell: 'C7', max: 3.304, maxCell: 'C4', delta: 0.007, average: 3.3 },
      limits: { chargeVoltage: 27.6, chargeMode: 'Float', chargeReason: 'config' },
      identity: { serial: 'SN123' },
      extras: {},
    });
    expect(p.alarms.active).toEqual([]);
  });

  test('offline: every measurement null, limits and alarms kept', () => {
    const p = statePayload(batteryState({ health: 'offline', alarms: { ...noAlarms(), BmsCable: 2 } }));
    for (const k of ['voltage', 'current', 'power', 'soc', 'soh', 'capacityRemaining', 'mosTemperature'] as const) {
      expect(p[k], k).toBeNull();
    }
    expect(p.cells.voltages).toEqual([]);
    expect(p.temperatures).toEqual([]);
    expect(p.limits.chargeVoltage).toBe(27.6);
    expect(p.alarms).toMatchObject({ BmsCable: 2, worst: 2, active: ['BmsCable'] });
  });

  test('never NaN: non-finite readings become null; unknown is null, not a missing key', () => {
    const p = statePayload(
      batteryState({
        snapshot: snapshot({
          voltage: Number.NaN,
          current: Number.POSITIVE_INFINITY,
          soh: undefined,
          cellVoltages: [3.3, Number.NaN],
        }),
      }),
    );
    expect(p.voltage).toBeNull();
    expect(p.current).toBeNull();
    expect(p.soh).toBeNull();
    expect(p.cells.voltages).toEqual([3.3, null]);
    expect(JSON.stringify(p)).not.toMatch(/NaN|Infinity/);
    expect('soh' in JSON.parse(JSON.stringify(p))).toBe(true);
  });

  test('a bank is recognised by its members (or extras.kind) and gets member summaries and counts', () => {
    const a = batteryState({ id: 'a' });
    const b = batteryState({ id: 'b', health: 'offline' });
    const p = statePayload(bankState([a, b]));
    expect(p.kind).toBe('bank');
    expect(p.members?.map((m) => [m.id, m.health, m.connected])).toEqual([
      ['a', 'online', true],
      ['b', 'offline', false],
    ]);
    expect(p.bank).toEqual({ batteries: 2, online: 1, offline: 1, problems: [] });
    expect(kindOf(batteryState(), { kind: 'bank' })).toBe('bank');
    expect(kindOf(batteryState(), { members: [] })).toBe('bank');
    expect(kindOf(batteryState())).toBe('battery');
  });

  test('extras are made JSON-safe and bounded', () => {
    const circular: Record<string, unknown> = { a: 1 };
    circular['self'] = circular;
    const p = statePayload(batteryState(), {
      when: new Date(0),
      fn: () => 1,
      map: new Map([['k', Number.NaN]]),
      bytes: new Uint8Array([0xdd, 0x77]),
      circular,
    });
    expect(p.extras).toMatchObject({ when: '1970-01-01T00:00:00.000Z', map: { k: null }, bytes: 'dd77' });
    expect('fn' in p.extras).toBe(false);
    expect(() => JSON.stringify(p)).not.toThrow();
    expect(jsonSafe('x'.repeat(10_000))).toHaveLength(4097);
  });

  test('stableJson ignores the time stamp (change detection)', () => {
    const s = batteryState();
    expect(stableJson(statePayload(s, undefined, 1))).toBe(stableJson(statePayload(s, undefined, 2)));
  });
});

describe('fanOut', () => {
  test('a throwing sink never stops the others nor reaches the caller; it is logged once', async () => {
    const got: string[] = [];
    const bad: Sink = {
      name: 'bad',
      publish() {
        throw new Error('boom');
      },
      frame() {
        throw new Error('boom');
      },
      close: () => Promise.reject(new Error('boom')),
    };
    const good: Sink = {
      name: 'good',
      publish: (s) => got.push(s.id),
      frame: (id) => got.push(`frame ${id}`),
      stats: () => ({ connected: true, sent: 1, dropped: 2, queued: 3 }),
      close: async () => undefined,
    };
    const logger = memoryLogger();
    const all = fanOut([bad, good], logger);
    all.publish(batteryState());
    all.publish(batteryState());
    all.frame?.('house', { time: 0, direction: 'rx', hex: '' });
    expect(got).toEqual(['house', 'house', 'frame house']);
    expect(logger.lines.filter((l) => /bad: publish threw/.test(l))).toHaveLength(1);
    expect(all.stats?.()).toEqual({ connected: true, sent: 1, dropped: 2, queued: 3 });
    await expect(all.close()).resolves.toBeUndefined();
  });
});

describe('BoundedQueue', () => {
  test('keeps at most capacity entries, drops the oldest and counts them', () => {
    const q = new BoundedQueue<number>(3);
    for (let i = 0; i < 5000; i++) q.push(i);
    expect(q.length).toBe(3);
    expect(q.dropped).toBe(4997);
    expect(q.toArray()).toEqual([4997, 4998, 4999]);
    expect(q.first(2)).toEqual([4997, 4998]);
    expect(q.shift()).toBe(4997);
    expect(q.peek()).toBe(4998);
  });
});

describe('rateLimitedLog', () => {
  test('writes at most once per period and reports how many were suppressed', () => {
    let t = 0;
    const lines: string[] = [];
    const log = rateLimitedLog(
      (m) => lines.push(m),
      1000,
      () => t,
    );
    log('a');
    log('b');
    log('c');
    t = 1000;
    log('d');
    expect(lines).toEqual(['a', 'd (2 similar messages suppressed)']);
  });
});
