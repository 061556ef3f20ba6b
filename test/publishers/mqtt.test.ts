/**
 * The MQTT publisher against a real mosquitto started by this file: discovery, state topics, rate limit,
 * teleperiod, availability and last will (publisher in a child process, SIGKILLed), broker restart, broker down
 * at start. Each test uses its own topic prefix so they do not see each other's retained messages.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { noAlarms } from '../../src/domain/battery-state.js';
import { type MqttConfig, parseMqttConfig } from '../../src/publishers/mqtt/config.js';
import { createMqttSink, type MqttSink } from '../../src/publishers/mqtt/mqtt-sink.js';
import { type Mosquitto, startMosquitto } from '../support/mosquitto.js';
import { freePort } from '../support/net.js';
import { bankState, batteryState, eventually, memoryLogger, Recorder, retained, sleep, snapshot } from './fixtures.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON and browser objects as they come over the wire
type Json = any;

let broker: Mosquitto;
const sinks: MqttSink[] = [];
const recorders: Recorder[] = [];

beforeAll(async () => {
  broker = await startMosquitto();
});

afterAll(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  await Promise.all(recorders.map((r) => r.close()));
  await broker?.close();
});

function config(prefix: string, overrides: Record<string, string> = {}, port = broker.port): MqttConfig {
  const values: Record<string, string> = {
    enabled: 'true',
    host: '127.0.0.1',
    port: String(port),
    topic: prefix,
    discovery_prefix: `ha_${prefix}`,
    min_interval: '0.2',
    reconnect: '0.3',
    client_id: `test_${prefix}_${Math.random().toString(16).slice(2, 8)}`,
    ...overrides,
  };
  return parseMqttConfig((k) => values[k], 'mqtt', 'test.ini');
}

function sink(cfg: MqttConfig, logger = memoryLogger()): MqttSink {
  const s = createMqttSink({ config: cfg, logger, version: 'test' });
  sinks.push(s);
  return s;
}

async function recorder(filter: string): Promise<Recorder> {
  const r = await Recorder.connect(broker.url, filter);
  recorders.push(r);
  return r;
}

/** `value_json.a.b[0].c` → the value at that path, or undefined when a step is missing. */
function at(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const step of path.split(/\.|\[(\d+)\]/).filter((s) => s !== undefined && s !== '')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[step];
  }
  return cur;
}

describe('Home Assistant discovery', () => {
  test('every entity of a battery and of a bank gets a retained config on one HA device each', async () => {
    const s = sink(config('disc'));
    const house = batteryState({ id: 'house' });
    const garage = batteryState({ id: 'garage', snapshot: snapshot({ current: 5 }) });
    s.publish(house);
    s.publish(garage);
    s.publish(bankState([house, garage], 'bank'), { chargeMode: 'Bulk' });
    const seen = await eventually(
      async () => {
        const r = await retained(broker.url, 'ha_disc/#', 300);
        return r.size >= 3 * 40 ? r : undefined;
      },
      8000,
      'discovery configs',
    );
    const configs = [...seen.entries()].map(([topic, text]) => ({
      topic,
      c: JSON.parse(text) as Record<string, Json>,
    }));
    const house_ = configs.filter((x) => x.topic.includes('/batterybank_house/'));
    const bank_ = configs.filter((x) => x.topic.includes('/batterybank_bank/'));
    expect(house_.length).toBeGreaterThanOrEqual(40);
    // One device per battery / bank.
    expect(new Set(house_.map((x) => JSON.stringify(x.c['device'].identifiers)))).toEqual(
      new Set([JSON.stringify(['batterybank_house'])]),
    );
    expect(bank_.every((x) => x.c['device'].identifiers[0] === 'batterybank_bank')).toBe(true);
    expect(house_[0]?.c['device']).toMatchObject({ model: 'JBD-SP04S034', serial_number: 'SN123', sw_version: '1.2' });

    const byObject = (list: typeof configs, object: string) =>
      list.find((x) => x.topic.endsWith(`/${object}/config`))?.c as Record<string, Json>;
    expect(byObject(house_, 'voltage')).toMatchObject({
      unique_id: 'batterybank_house_voltage',
      state_topic: 'disc/house/state',
      unit_of_measurement: 'V',
      device_class: 'voltage',
      state_class: 'measurement',
    });
    for (const object of [
      'current',
      'power',
      'soc',
      'soh',
      'cell_min',
      'cell_max',
      'cell_delta',
      'temperature_1',
      'temperature_2',
      'mos_temperature',
      'charge_voltage_limit',
      'charge_current_limit',
      'discharge_current_limit',
      'charge_mode',
    ]) {
      expect(byObject(house_, object), object).toBeDefined();
    }
    expect(byObject(house_, 'alarm_low_cell_voltage')).toMatchObject({ device_class: 'problem' });
    expect(seen.has('ha_disc/binary_sensor/batterybank_house/alarm_bms_cable/config')).toBe(true);
    expect(byObject(bank_, 'members_online')).toMatchObject({ json_attributes_topic: 'disc/bank/members' });
    // Measurements go unavailable with the battery; alarms and limits only with the driver.
    expect(byObject(house_, 'voltage')['availability']).toHaveLength(2);
    expect(byObject(house_, 'alarm_bms_cable')['availability']).toEqual([{ topic: 'disc/status' }]);

    // Every template reads a path that exists in the state JSON.
    const state = await eventually(async () => await retained(broker.url, 'disc/+/state', 200), 5000);
    for (const { topic, c } of configs) {
      const id = /batterybank_([a-z0-9_]+)\//.exec(topic)?.[1] as string;
      const json = JSON.parse(state.get(`disc/${id}/state`) as string);
      for (const m of String(c['value_template']).matchAll(
        /value_json\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+|\[\d+\])*)/g,
      )) {
        expect(at(json, m[1] as string), `${topic}: ${m[1]}`).not.toBeUndefined();
      }
    }
  });
});

describe('state topics', () => {
  test('state, cells, limits, alarms, connection and availability carry the battery', async () => {
    const rec = await recorder('st/#');
    const s = sink(config('st', { discovery: 'false' }));
    s.publish(batteryState({ id: 'house' }), { chargeMode: 'Absorption 12m', firmwareBuild: 7 });
    await eventually(() => rec.last('st/house/connection'), 5000, 'connection topic');
    const state = rec.json('st/house/state') as Record<string, Json>;
    expect(state).toMatchObject({
      id: 'house',
      kind: 'battery',
      health: 'online',
      connected: true,
      voltage: 26.4,
      current: -12.5,
      power: -330,
      soc: 61,
      soh: 97,
      extras: { firmwareBuild: 7 },
    });
    expect(rec.json('st/house/cells')).toMatchObject({
      count: 8,
      min: 3.297,
      max: 3.304,
      minCell: 'C7',
      maxCell: 'C4',
      delta: 0.007,
      balancingActive: true,
    });
    expect(rec.json('st/house/limits')).toMatchObject({
      chargeVoltage: 27.6,
      chargeCurrent: 50,
      dischargeCurrent: 60,
      chargeReason: 'config',
      chargeMode: 'Absorption 12m',
    });
    expect(rec.json('st/house/alarms')).toMatchObject({ LowVoltage: 0, BmsCable: 0, worst: 0, active: [] });
    expect(rec.json('st/house/connection')).toMatchObject({ health: 'online', connection: 'Serial ttyUSB0' });
    expect(rec.last('st/house/availability')?.text).toBe('online');
    expect(rec.last('st/status')?.text).toBe('online');
    expect(rec.last('st/house/state')?.retain).toBe(false); // live message; retained copies go to new subscribers
    expect((await retained(broker.url, 'st/house/state')).size).toBe(1);
  });

  test('changes are rate-limited to one message per topic per min_interval, the last value wins', async () => {
    const rec = await recorder('rl/#');
    const s = sink(config('rl', { discovery: 'false', min_interval: '0.5' }));
    s.publish(batteryState({ id: 'house' }));
    await eventually(() => rec.last('rl/house/state'), 5000);
    rec.clear();
    const t0 = Date.now();
    for (let i = 0; i < 40; i++) {
      s.publish(batteryState({ id: 'house', snapshot: snapshot({ current: i }) }));
      await sleep(25);
    }
    await sleep(700);
    const states = rec.on('rl/house/state');
    const elapsed = Date.now() - t0;
    expect(states.length).toBeLessThanOrEqual(Math.ceil(elapsed / 500) + 1);
    expect(states.length).toBeGreaterThanOrEqual(2);
    expect(JSON.parse(states.at(-1)?.text ?? '{}').current).toBe(39);
    // Unchanged parts are not repeated.
    expect(rec.on('rl/house/limits')).toHaveLength(0);
  });

  test('a component status (the inverter output) goes to <topic>/<name>, retained, on change and rate-limited', async () => {
    const rec = await recorder('cp/#');
    const s = sink(config('cp', { discovery: 'false', min_interval: '0.5' }));
    await eventually(() => rec.last('cp/status'), 5000);
    const status = (connected: boolean, soc: number) => ({
      protocol: 'pylon',
      connected,
      lastSeenMs: Number.NaN,
      advertised: { soc, chargeCurrent: 50 },
    });
    s.component('inverter', status(false, 60));
    await eventually(() => rec.last('cp/inverter'), 5000);
    const first = JSON.parse(rec.last('cp/inverter')?.text ?? '{}');
    // NaN is not JSON: it goes out as null.
    expect(first).toEqual({
      protocol: 'pylon',
      connected: false,
      lastSeenMs: null,
      advertised: { soc: 60, chargeCurrent: 50 },
    });
    // Ten calls within the interval: none sent then; the same status again later: nothing new.
    for (let i = 0; i < 10; i++) s.component('inverter', status(true, 61));
    await sleep(600);
    s.component('inverter', status(true, 61));
    await sleep(300);
    s.component('inverter', status(true, 61));
    await sleep(300);
    const all = rec.on('cp/inverter');
    expect(all).toHaveLength(2);
    expect(JSON.parse(all[1]?.text ?? '{}')).toMatchObject({ connected: true, advertised: { soc: 61 } });
    // Retained: a client that subscribes later gets it at once.
    const late = await recorder('cp/inverter');
    await eventually(() => late.last('cp/inverter'), 5000);
    expect(JSON.parse(late.last('cp/inverter')?.text ?? '{}').connected).toBe(true);
    // Names that are not a topic level are refused.
    s.component('a/b', status(true, 1));
    s.component('', status(true, 1));
    await sleep(300);
    expect(rec.messages.filter((m) => m.topic !== 'cp/status' && m.topic !== 'cp/inverter')).toEqual([]);
  });

  test('every teleperiod the full state goes out again even when nothing changed', async () => {
    const rec = await recorder('tp/#');
    const s = sink(config('tp', { discovery: 'false', teleperiod: '1' }));
    s.publish(batteryState({ id: 'house' }));
    await eventually(() => rec.last('tp/house/state'), 5000);
    await sleep(2300);
    expect(rec.on('tp/house/state').length).toBeGreaterThanOrEqual(3);
    expect(rec.on('tp/house/limits').length).toBeGreaterThanOrEqual(3);
  });

  test('an offline battery: availability offline, measurements null, BmsCable alarm, limits 0 with reason', async () => {
    const rec = await recorder('off/#');
    const s = sink(config('off', { discovery: 'false' }));
    s.publish(
      batteryState({
        id: 'house',
        health: 'offline',
        limits: {
          chargeVoltage: 27.6,
          chargeCurrent: 0,
          dischargeCurrent: 0,
          batteryLowVoltage: 23.2,
          chargeReason: 'offline',
          dischargeReason: 'offline',
        },
        alarms: { ...noAlarms(), BmsCable: 2 },
      }),
    );
    await eventually(() => rec.last('off/house/availability'), 5000);
    expect(rec.last('off/house/availability')?.text).toBe('offline');
    const state = await eventually(() => rec.json('off/house/state') as Record<string, Json>, 3000);
    expect(state).toMatchObject({ health: 'offline', connected: false, voltage: null, soc: null });
    expect(state['cells'].voltages).toEqual([]);
    expect(rec.json('off/house/alarms')).toMatchObject({ BmsCable: 2, worst: 2, active: ['BmsCable'] });
    expect(rec.json('off/house/limits')).toMatchObject({ chargeCurrent: 0, chargeReason: 'offline' });
  });

  test('publish is synchronous and cheap: 20 000 calls return in well under a second', () => {
    const s = sink(config('fast', { discovery: 'false' }));
    const state = batteryState({ id: 'house' });
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) s.publish(state);
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

describe('connection loss', () => {
  test('the last will says offline when the publisher process is killed', async () => {
    const rec = await recorder('will/#');
    const script = fileURLToPath(new URL('./child/mqtt-child.ts', import.meta.url));
    const viteNode = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url));
    const child: ChildProcess = spawn(process.execPath, [viteNode, script], {
      env: { ...process.env, MQTT_PORT: String(broker.port), MQTT_TOPIC: 'will' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      await eventually(() => out.includes('connected'), 20_000, 'the child to connect');
      await eventually(() => rec.last('will/status')?.text === 'online', 5000, 'status online');
      await eventually(() => rec.last('will/child/state'), 5000, 'the child state');
      const t0 = Date.now();
      child.kill('SIGKILL');
      await eventually(() => rec.last('will/status')?.text === 'offline', 5000, 'the last will');
      expect(Date.now() - t0).toBeLessThan(3000);
      // Retained, so Home Assistant started later sees every entity unavailable.
      expect((await retained(broker.url, 'will/status')).get('will/status')).toBe('offline');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 30_000);

  test('a broker restart: the publisher reconnects and republishes discovery and the current state', async () => {
    const logger = memoryLogger();
    const s = sink(config('rs'), logger);
    s.publish(batteryState({ id: 'house' }));
    await eventually(async () => (await retained(broker.url, 'ha_rs/#', 200)).size > 30, 5000, 'discovery');
    await broker.stop();
    // While the broker is away, publishing neither blocks nor throws, and the state moves on.
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) s.publish(batteryState({ id: 'house', snapshot: snapshot({ soc: 55 }) }));
    expect(performance.now() - t0).toBeLessThan(200);
    await sleep(500);
    await broker.start(); // no persistence: every retained message is gone
    const again = await eventually(
      async () => {
        const r = await retained(broker.url, '#', 300);
        return r.has('ha_rs/sensor/batterybank_house/voltage/config') && r.has('rs/house/state') ? r : undefined;
      },
      10_000,
      'republished discovery and state',
    );
    expect(JSON.parse(again.get('rs/house/state') as string).soc).toBe(55);
    expect(again.get('rs/status')).toBe('online');
    expect(logger.lines.join('\n')).toMatch(/lost the broker/);
    expect(s.stats().connected).toBe(true);
  }, 30_000);

  test('a broker that is down at start: the publisher runs, and connects once the broker appears', async () => {
    const port = await freePort();
    const s = sink(config('late', { discovery: 'false' }, port));
    for (let i = 0; i < 100; i++) s.publish(batteryState({ id: 'house' }));
    await sleep(800);
    expect(s.stats().connected).toBe(false);
    const late = await startMosquitto({ port });
    try {
      await eventually(() => s.stats().connected, 10_000, 'a late connect');
      s.publish(batteryState({ id: 'house', snapshot: snapshot({ soc: 70 }) }));
      const r = await eventually(
        async () => {
          const m = await retained(late.url, 'late/#', 200);
          return JSON.parse(m.get('late/house/state') ?? '{}').soc === 70 ? m : undefined;
        },
        5000,
        'state on the late broker',
      );
      expect(r.get('late/house/availability')).toBe('online');
    } finally {
      await s.close();
      await late.close();
    }
  }, 30_000);

  test('close() says offline on the status topic (a clean exit fires no last will)', async () => {
    const s = createMqttSink({ config: config('bye', { discovery: 'false' }), logger: memoryLogger(), version: 't' });
    s.publish(batteryState({ id: 'house' }));
    await eventually(() => s.stats().connected && s.stats().sent > 3, 5000);
    await s.close();
    expect((await retained(broker.url, 'bye/status')).get('bye/status')).toBe('offline');
    s.publish(batteryState({ id: 'house' })); // after close: ignored, no throw
  });
});
