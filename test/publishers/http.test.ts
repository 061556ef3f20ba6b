/**
 * The HTTP API contract: every endpoint's status, type and shape, the event stream, basic auth, and the
 * promises every sink keeps (cheap synchronous publish, bounded memory, never throwing).
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  decodeBasicInfo,
  encodeBasicInfo,
  encodeReadRequest,
  encodeResponse,
  type JbdBasicInfo,
  JbdRegister,
} from '../../src/bms/jbd/protocol.js';
import { toHex } from '../../src/bytes/hex.js';
import { noAlarms } from '../../src/domain/battery-state.js';
import { type HttpConfig, parseHttpConfig } from '../../src/publishers/http/config.js';
import { createHttpSink, type HttpSink } from '../../src/publishers/http/http-sink.js';
import { bankState, batteryState, eventually, memoryLogger, snapshot } from './fixtures.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON and browser objects as they come over the wire
type Json = any;

function config(values: Record<string, string> = {}): HttpConfig {
  const v: Record<string, string> = { enabled: 'true', listen: '127.0.0.1:0', event_interval: '0.2', ...values };
  return parseHttpConfig((k) => v[k], 'http', 'test.ini');
}

let sink: HttpSink;
let base: string;
const house = batteryState({ id: 'house' });
const garage = batteryState({
  id: 'garage',
  health: 'offline',
  alarms: { ...noAlarms(), BmsCable: 2 },
  limits: {
    chargeVoltage: 27.6,
    chargeCurrent: 0,
    dischargeCurrent: 0,
    batteryLowVoltage: 23.2,
    chargeReason: 'offline',
    dischargeReason: 'offline',
  },
});

beforeAll(async () => {
  sink = createHttpSink({
    config: config(),
    logger: memoryLogger(),
    version: '1.2.3',
    sinkStats: () => ({ mqtt: { connected: false, sent: 0, dropped: 5, queued: 0 } }),
  });
  await sink.ready();
  base = sink.url as string;
  sink.publish(house, { chargeMode: 'Bulk' });
  sink.publish(garage);
  sink.publish(bankState([house, garage]), { kind: 'bank' });
});

afterAll(async () => {
  await sink?.close();
});

async function get(path: string, init?: RequestInit): Promise<{ status: number; type: string; body: Json }> {
  const r = await fetch(base + path, init);
  const type = r.headers.get('content-type') ?? '';
  const body = type.startsWith('application/json') ? await r.json() : await r.text();
  return { status: r.status, type, body };
}

describe('JSON API', () => {
  test('GET /api/health names every battery, its health, and the counters of every sink', async () => {
    const { status, type, body } = await get('/api/health');
    expect(status).toBe(200);
    expect(type).toBe('application/json; charset=utf-8');
    expect(body).toMatchObject({ status: 'degraded', version: '1.2.3' });
    expect(body.batteries).toEqual([
      expect.objectContaining({ id: 'bank', kind: 'bank', health: 'online' }),
      expect.objectContaining({ id: 'garage', kind: 'battery', health: 'offline' }),
      expect.objectContaining({ id: 'house', kind: 'battery', health: 'online' }),
    ]);
    expect(body.sinks.mqtt).toEqual({ connected: false, sent: 0, dropped: 5, queued: 0 });
    expect(body.sinks.http.connected).toBe(true);
    expect(typeof body.uptimeSeconds).toBe('number');
  });

  test('GET /api/batteries lists the batteries (not the bank) with measurements, cells, limits and alarms', async () => {
    const { status, body } = await get('/api/batteries');
    expect(status).toBe(200);
    expect(body.map((b: { id: string }) => b.id)).toEqual(['garage', 'house']);
    const h = body[1];
    expect(h).toMatchObject({
      id: 'house',
      kind: 'battery',
      health: 'online',
      connected: true,
      voltage: 26.4,
      current: -12.5,
      soc: 61,
      cells: { count: 8, min: 3.297, minCell: 'C7', max: 3.304, maxCell: 'C4', delta: 0.007 },
      limits: { chargeCurrent: 50, dischargeCurrent: 60, chargeReason: 'config', chargeMode: 'Bulk' },
      alarms: { worst: 0, active: [] },
      identity: { serial: 'SN123' },
    });
    expect(h.cells.voltages).toHaveLength(8);
    expect(h.cells.balancing[3]).toBe(true);
    expect(Date.parse(h.time)).toBeGreaterThan(0);
  });

  test('an offline battery shows null measurements, zero limits with the reason, and BmsCable', async () => {
    const { body } = await get('/api/batteries/garage');
    expect(body).toMatchObject({
      health: 'offline',
      connected: false,
      voltage: null,
      soc: null,
      limits: { chargeCurrent: 0, chargeReason: 'offline' },
      alarms: { BmsCable: 2, worst: 2, active: ['BmsCable'] },
    });
  });

  test('GET /api/bank gives the bank with its member table; /api/batteries/<bank id> works too', async () => {
    const { status, body } = await get('/api/bank');
    expect(status).toBe(200);
    expect(body.kind).toBe('bank');
    expect(body.members.map((m: { id: string }) => m.id)).toEqual(['house', 'garage']);
    expect(body.members[1]).toMatchObject({ id: 'garage', health: 'offline', connected: false });
    expect(body.bank).toMatchObject({ batteries: 2, online: 1, offline: 1 });
    expect((await get('/api/batteries/bank')).body.id).toBe('bank');
  });

  test('unknown ids and paths are 404 JSON; other methods 405', async () => {
    expect(await get('/api/batteries/nope')).toMatchObject({ status: 404, body: { error: 'no battery nope' } });
    expect((await get('/api/nothing')).status).toBe(404);
    expect((await get('/api/batteries/..%2Fetc')).status).toBe(404);
    expect((await get('/api/batteries', { method: 'POST' })).status).toBe(405);
  });

  test('GET /api/batteries/<id>/frames keeps the last frame per register and direction, with decoded fields', async () => {
    const info: JbdBasicInfo = {
      voltage: 26.4,
      current: -12.5,
      capacityRemaining: 61.2,
      capacityNominal: 100,
      cycles: 42,
      productionDate: '2023-05-01',
      balanceBits: 8,
      protectionBits: 0,
      softwareVersion: '1.2',
      soc: 61,
      chargeFet: true,
      dischargeFet: true,
      cellCount: 8,
      temperatures: [21.5, 23.1],
    };
    const bytes = encodeResponse(JbdRegister.basicInfo, encodeBasicInfo(info));
    const t = Date.now();
    sink.frame('house', { time: t - 1000, direction: 'rx', register: 3, hex: 'old' });
    sink.frame('house', { time: t - 900, direction: 'tx', register: 3, hex: toHex(encodeReadRequest(3)) });
    sink.frame('house', {
      time: t,
      direction: 'rx',
      register: 3,
      hex: toHex(bytes),
      decoded: decodeBasicInfo(bytes.subarray(4, bytes.length - 3)) as unknown as Record<string, unknown>,
    });
    sink.frame('house', { time: t, direction: 'rx', register: 4, hex: 'dd 04 00 02 0c e4 ff 0e 77' });
    const { status, body } = await get('/api/batteries/house/frames');
    expect(status).toBe(200);
    expect(body.id).toBe('house');
    expect(body.frames.map((f: Json) => `${f.register}/${f.direction}`)).toEqual(['3/rx', '3/tx', '4/rx']);
    const reply = body.frames[0];
    expect(reply.hex).toBe(toHex(bytes));
    expect(reply.time).toBe(new Date(t).toISOString());
    expect(typeof reply.decoded).toBe('object');
    expect(body.frames[1].decoded).toBeNull();
    expect((await get('/api/batteries/nope/frames')).status).toBe(404);
  });

  test('GET /api/batteries/<id>/history gives [time, V, A, SoC] points', async () => {
    const { body } = await get('/api/batteries/house/history');
    expect(body.stepMs).toBe(5000);
    expect(body.points.length).toBeGreaterThanOrEqual(1);
    expect(body.points[0]).toEqual([expect.any(Number), 26.4, -12.5, 61]);
  });

  test('the status page and its assets are served with a strict content security policy', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(await page.text()).toMatch(/<script src="app\.js" defer><\/script>/);
    expect((await get('/app.js')).type).toMatch(/^text\/javascript/);
    expect((await get('/app.css')).type).toMatch(/^text\/css/);
  });
});

/** Read server-sent events from a fetch body until `until` returns true. */
async function readEvents(
  path: string,
  until: (events: { event: string; data: Json }[]) => boolean,
  timeoutMs: number,
  during?: () => void,
): Promise<{ event: string; data: Json }[]> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  const events: { event: string; data: Json }[] = [];
  try {
    const r = await fetch(base + path, { signal: ctrl.signal });
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    const dec = new TextDecoder();
    let buf = '';
    let started = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i = buf.indexOf('\n\n');
      while (i >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
        i = buf.indexOf('\n\n');
      }
      if (!started && events.length >= 3) {
        started = true;
        during?.();
      }
      if (until(events)) break;
    }
    ctrl.abort();
  } catch (e) {
    if ((e as Error).name !== 'AbortError') throw e;
  } finally {
    clearTimeout(timer);
  }
  return events;
}

describe('server-sent events', () => {
  test('a new client gets every state at once, then each change within the event interval', async () => {
    const t0 = Date.now();
    const events = await readEvents(
      '/api/events',
      (ev) => ev.some((e) => e.data.id === 'house' && e.data.soc === 42),
      5000,
      () => sink.publish(batteryState({ id: 'house', snapshot: snapshot({ soc: 42 }) })),
    );
    expect(events.slice(0, 3).map((e) => e.data.id)).toEqual(['bank', 'garage', 'house']);
    expect(events.every((e) => e.event === 'state')).toBe(true);
    expect(events.at(-1)?.data.soc).toBe(42);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe('basic authentication', () => {
  test('every path needs the configured user and password', async () => {
    const s = createHttpSink({
      config: config({ username: 'admin', password: 's3cret' }),
      logger: memoryLogger(),
      version: 't',
    });
    try {
      await s.ready();
      const none = await fetch(`${s.url}/api/health`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      const wrong = await fetch(`${s.url}/`, {
        headers: { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` },
      });
      expect(wrong.status).toBe(401);
      const ok = await fetch(`${s.url}/api/health`, {
        headers: { authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` },
      });
      expect(ok.status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('isolation', () => {
  test('publish and frame are synchronous and cheap: 20 000 calls in well under a second', () => {
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) {
      sink.publish(house);
      sink.frame('house', { time: Date.now(), direction: 'rx', register: i % 1000, hex: 'dd' });
    }
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  test('memory is bounded: at most 256 registers per battery are kept', async () => {
    const { body } = await get('/api/batteries/house/frames');
    expect(body.frames.length).toBeLessThanOrEqual(256);
  });

  test('a port already in use is logged and retried, never thrown', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const logger = memoryLogger();
    const s = createHttpSink({ config: config({ listen: `127.0.0.1:${port}` }), logger, version: 't' });
    try {
      s.publish(house);
      await eventually(() => logger.lines.some((l) => /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/.test(l)), 3000);
      expect(s.stats().connected).toBe(false);
    } finally {
      await s.close();
      blocker.close();
    }
  });
});
