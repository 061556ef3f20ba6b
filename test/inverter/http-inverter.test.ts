/** The inverter status in the HTTP API: /api/inverter (404 without one) and the `inverter` entry of /api/health. */
import { afterEach, expect, test } from 'vitest';
import { createLogger } from '../../src/log.js';
import { parseHttpConfig } from '../../src/publishers/http/config.js';
import { createHttpSink, type HttpSink } from '../../src/publishers/http/http-sink.js';
import { fanOut } from '../../src/publishers/sink.js';

let sink: HttpSink | undefined;
afterEach(async () => {
  await sink?.close();
  sink = undefined;
});

async function start(): Promise<string> {
  sink = createHttpSink({
    config: parseHttpConfig((k) => ({ enabled: 'true', listen: '127.0.0.1:0' })[k], 'http', 'test.ini'),
    logger: createLogger({ level: 'error', write: () => undefined }),
    version: 't',
  });
  await sink.ready();
  return sink.url as string;
}

test('no inverter: /api/inverter is 404 and /api/health has no inverter entry', async () => {
  const base = await start();
  const r = await fetch(`${base}/api/inverter`);
  expect(r.status).toBe(404);
  expect(await r.json()).toEqual({ error: 'no inverter' });
  const health = (await (await fetch(`${base}/api/health`)).json()) as Record<string, unknown>;
  expect(health.inverter).toBeUndefined();
});

test('the last status reported through the sinks (fanOut → component) is served, NaN as null', async () => {
  const base = await start();
  const all = fanOut([sink as HttpSink]);
  all.component?.('inverter', { protocol: 'pylon', connected: true, lastSeenSeconds: 1.5, odd: Number.NaN });
  all.component?.('inverter', { protocol: 'pylon', connected: false, lastSeenSeconds: 61, odd: Number.NaN });
  const body = await (await fetch(`${base}/api/inverter`)).json();
  expect(body).toEqual({ protocol: 'pylon', connected: false, lastSeenSeconds: 61, odd: null });
  const health = (await (await fetch(`${base}/api/health`)).json()) as Record<string, unknown>;
  expect(health.inverter).toEqual(body);
  expect(health.status).toBe('starting');
});
