/**
 * WebSocketLink against real websocket servers on localhost (npm ws): messages in and out, the reconnect
 * back-off sequence with the server killed and restarted on its port (reset only after a connection that
 * delivered data), the no-data watchdog, the connect timeout, a wrong path, and a clean close.
 */

import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { LinkError } from '../../src/domain/errors.js';
import { DEFAULT_BACKOFF_MS, WebSocketLink } from '../../src/links/websocket-link.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface TestServer {
  wss: WebSocketServer;
  port: number;
  clients: WebSocket[];
  closes: number[];
  received: string[];
  stop(): Promise<void>;
}

function serve(port = 0, onConnection?: (ws: WebSocket) => void): Promise<TestServer> {
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port, path: '/ws/' });
    const s: TestServer = {
      wss,
      port: 0,
      clients: [],
      closes: [],
      received: [],
      stop: () =>
        new Promise<void>((r) => {
          for (const c of wss.clients) c.terminate();
          wss.close(() => r());
        }),
    };
    wss.once('error', reject);
    wss.on('listening', () => {
      s.port = (wss.address() as AddressInfo).port;
      resolve(s);
    });
    wss.on('connection', (ws) => {
      s.clients.push(ws);
      ws.on('message', (d) => s.received.push(d.toString()));
      ws.on('close', (code) => s.closes.push(code));
      onConnection?.(ws);
    });
  });
}

function link(url: string, opts: Partial<ConstructorParameters<typeof WebSocketLink>[0]> = {}): WebSocketLink {
  const l = new WebSocketLink({ url, ...opts });
  cleanups.push(() => l.close());
  return l;
}

describe('WebSocketLink', () => {
  test('each text message arrives as one message; binary is ignored; send reaches the server', async () => {
    const srv = await serve(0, (ws) => {
      ws.send('CellCount: 16');
      ws.send(Buffer.from([1, 2, 3]), { binary: true });
      ws.send('SOC: 55');
    });
    cleanups.push(() => srv.stop());
    const l = link(`ws://127.0.0.1:${srv.port}/ws/`);
    const got: string[] = [];
    l.onData((m) => got.push(m));
    l.onData(() => {
      throw new Error('a broken receiver');
    });
    await l.open();
    expect(l.isOpen).toBe(true);
    await until(() => got.length === 2, 2000, 'two messages');
    expect(got).toEqual(['CellCount: 16', 'SOC: 55']);
    await l.send('hello');
    await until(() => srv.received.length === 1, 2000, 'the server to receive');
    expect(srv.received).toEqual(['hello']);
  });

  test('the default back-off is the seed monitor’s 1,1,2,2,3,3,5,5,10,10,30,60 s, then 60 s on', () => {
    const l = new WebSocketLink({ url: 'ws://127.0.0.1:1/ws/' });
    expect(DEFAULT_BACKOFF_MS).toEqual([1, 1, 2, 2, 3, 3, 5, 5, 10, 10, 30, 60].map((s) => s * 1000));
    expect(Array.from({ length: 14 }, (_, i) => l.backoffAfter(i + 1) / 1000)).toEqual([
      1, 1, 2, 2, 3, 3, 5, 5, 10, 10, 30, 60, 60, 60,
    ]);
    expect(() => new WebSocketLink({ url: 'ws://x/', backoffMs: [] })).toThrow(RangeError);
  });

  test('server killed: retries follow the back-off in order; restarted: reconnects; killed again: back-off starts over', async () => {
    const unit = 25;
    const backoffMs = [1, 1, 2, 2, 3, 3, 5, 5, 10, 10, 30, 60].map((s) => s * unit);
    let srv = await serve(0, (ws) => ws.send('Vpack: 53000'));
    const port = srv.port;
    const l = link(`ws://127.0.0.1:${port}/ws/`, { backoffMs, noDataTimeoutMs: 0 });
    const retries: { at: number; wait: number }[] = [];
    const opens: number[] = [];
    const closes: string[] = [];
    const data: string[] = [];
    l.onRetry((_r, wait) => retries.push({ at: Date.now(), wait }));
    l.onOpen(() => opens.push(Date.now()));
    l.onClose((r) => closes.push(r.message));
    l.onData((m) => data.push(m));
    l.connect();
    await until(() => data.length === 1, 2000, 'first data');
    await srv.stop();
    await until(() => retries.length >= 9, 5000, 'nine retries');
    expect(closes).toHaveLength(1);
    const waits = retries.map((r) => r.wait);
    expect(waits.slice(0, 9)).toEqual(backoffMs.slice(0, 9));
    // Each attempt happens one wait after the previous failure (refused at once on localhost).
    for (let i = 1; i < 9; i++) {
      const gap = (retries[i]?.at ?? 0) - (retries[i - 1]?.at ?? 0);
      expect(gap, `gap before retry ${i + 1}`).toBeGreaterThanOrEqual((waits[i - 1] ?? 0) - 5);
      expect(gap, `gap before retry ${i + 1}`).toBeLessThan((waits[i - 1] ?? 0) + 150);
    }
    srv = await serve(port, (ws) => ws.send('Vpack: 53001'));
    cleanups.push(() => srv.stop());
    await until(() => data.length === 2, 5000, 'data after the restart');
    expect(opens).toHaveLength(2);
    const before = retries.length;
    await srv.stop();
    await until(() => retries.length >= before + 2, 3000, 'retries after the second kill');
    expect(retries.slice(before, before + 2).map((r) => r.wait)).toEqual([unit, unit]);
  });

  test('a connection that delivers nothing is dropped by the watchdog and does not reset the back-off', async () => {
    const srv = await serve(0); // accepts, says nothing
    cleanups.push(() => srv.stop());
    const backoffMs = [30, 60, 90];
    const l = link(`ws://127.0.0.1:${srv.port}/ws/`, { backoffMs, noDataTimeoutMs: 150 });
    const closes: { at: number; why: string }[] = [];
    const waits: number[] = [];
    let openedAt = 0;
    l.onOpen(() => {
      openedAt = Date.now();
    });
    l.onClose((r) => closes.push({ at: Date.now(), why: r.message }));
    l.onRetry((_r, w) => waits.push(w));
    l.connect();
    await until(() => closes.length >= 3, 3000, 'three watchdog drops');
    expect(closes[0]?.why).toMatch(/no data for 0\.15 s/);
    expect(waits.slice(0, 3)).toEqual([30, 60, 90]);
    expect(srv.clients.length).toBeGreaterThanOrEqual(3);
    expect(openedAt).toBeGreaterThan(0);
  });

  test('data keeps the watchdog quiet', async () => {
    let timer: NodeJS.Timeout | undefined;
    const srv = await serve(0, (ws) => {
      timer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('SOC: 1'), 40);
    });
    cleanups.push(() => {
      clearInterval(timer);
      return srv.stop();
    });
    const l = link(`ws://127.0.0.1:${srv.port}/ws/`, { noDataTimeoutMs: 150 });
    const closes: string[] = [];
    l.onClose((r) => closes.push(r.message));
    l.connect();
    await sleep(600);
    expect(closes).toEqual([]);
    expect(l.isOpen).toBe(true);
  });

  test('a server that accepts TCP but never answers the upgrade: open() rejects after the connect timeout', async () => {
    const sockets: Socket[] = [];
    const tcp: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          tcp.close(() => r());
        }),
    );
    const port = (tcp.address() as AddressInfo).port;
    const l = link(`ws://127.0.0.1:${port}/ws/`, { connectTimeoutMs: 200 });
    const t0 = Date.now();
    const err = await l.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LinkError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(180);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(l.isOpen).toBe(false);
  });

  test('a wrong path is refused by the server: open() rejects naming the HTTP status', async () => {
    const srv = await serve(0);
    cleanups.push(() => srv.stop());
    const l = link(`ws://127.0.0.1:${srv.port}/other/`);
    await expect(l.open()).rejects.toThrow(/HTTP 400|HTTP 404|closed during|socket hang up|Unexpected server response/);
  });

  test('close() ends the connection with a closing handshake and stops reconnecting; idempotent', async () => {
    const srv = await serve(0, (ws) => ws.send('x'));
    const port = srv.port;
    const l = link(`ws://127.0.0.1:${port}/ws/`, { backoffMs: [20] });
    const closes: string[] = [];
    l.onClose((r) => closes.push(r.message));
    l.connect();
    await until(() => srv.clients.length === 1, 2000, 'a connection');
    await l.close();
    await l.close();
    expect(l.isOpen).toBe(false);
    await until(() => srv.closes.length === 1, 2000, 'the server to see the close');
    expect(srv.closes).toEqual([1000]);
    expect(closes).toEqual([]); // close() is not a loss
    await sleep(150);
    expect(srv.clients).toHaveLength(1); // no reconnect after close()
    await srv.stop();
    await expect(l.send('late')).rejects.toBeInstanceOf(LinkError);
  });
});
