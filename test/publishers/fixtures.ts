/** States, loggers and waiting helpers shared by the telemetry tests. */
import { connect, type MqttClient } from 'mqtt';
import type { BatteryState } from '../../src/domain/battery-state.js';
import { createLogger, type Logger } from '../../src/log.js';
import { batteryStateBuilders, PACK_24V } from '../support/battery-state.js';

/** BatteryState builders: a 24 V, 8-cell pack on the wall clock (test/support/battery-state.ts). */
export const { snapshot, limits, batteryState } = batteryStateBuilders(PACK_24V);

/** A bank-shaped state (BatteryState + members), as src/bank/aggregate.ts produces it. */
export function bankState(members: BatteryState[], id = 'bank'): BatteryState & { members: unknown[] } {
  const cells = members.flatMap((m) => m.snapshot?.cellVoltages ?? []);
  return {
    ...batteryState({
      id,
      productName: 'Battery bank',
      connection: `Bank ${members.length}p (${members.map((m) => m.id).join(', ')})`,
      snapshot: snapshot({
        current: members.reduce((a, m) => a + (m.snapshot?.current ?? 0), 0),
        cellVoltages: members[0]?.snapshot?.cellVoltages ?? [],
        balancing: members[0]?.snapshot?.balancing ?? [],
      }),
    }),
    members: members.map((m, i) => ({
      id: m.id,
      string: i,
      position: 0,
      health: m.health,
      connected: m.health !== 'offline',
      voltage: m.snapshot?.voltage,
      current: m.snapshot?.current,
      soc: m.snapshot?.soc,
      cellVoltages: m.snapshot?.cellVoltages ?? [],
      minCell: { value: Math.min(...cells), member: m.id, index: 1, id: `${m.id}:C1` },
      limits: m.limits,
      alarm: 0,
    })),
  };
}

/** A logger that keeps its lines (and optionally echoes them). */
export function memoryLogger(echo = false): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({
    level: 'debug',
    write: (l) => {
      lines.push(l);
      if (echo) process.stderr.write(`${l}\n`);
    },
  });
  return Object.assign(logger, { lines });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll until `fn` returns a truthy value; its value is returned. */
type Falsy = undefined | null | false | 0 | '';
export async function eventually<T>(
  fn: () => T | Falsy | Promise<T | Falsy>,
  timeoutMs: number,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await sleep(50);
  }
}

export interface Received {
  topic: string;
  text: string;
  retain: boolean;
  at: number;
}

/** An MQTT client that records everything under a filter (a test's view of the broker). */
export class Recorder {
  readonly messages: Received[] = [];
  private constructor(readonly client: MqttClient) {}

  static async connect(url: string, filter = '#'): Promise<Recorder> {
    const client = connect(url, { reconnectPeriod: 200, clientId: `rec_${Math.random().toString(16).slice(2)}` });
    const rec = new Recorder(client);
    client.on('message', (topic, payload, packet) => {
      rec.messages.push({ topic, text: payload.toString(), retain: packet.retain, at: Date.now() });
    });
    client.on('error', () => undefined);
    client.on('connect', () => {
      client.subscribe(filter, { qos: 1 });
    });
    await eventually(() => client.connected, 10_000, 'the recorder to connect');
    await client.subscribeAsync(filter, { qos: 1 });
    return rec;
  }

  /** Latest message on a topic. */
  last(topic: string): Received | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) if (this.messages[i]?.topic === topic) return this.messages[i];
    return undefined;
  }

  json<T = Record<string, unknown>>(topic: string): T | undefined {
    const m = this.last(topic);
    return m ? (JSON.parse(m.text) as T) : undefined;
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  clear(): void {
    this.messages.length = 0;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined);
  }
}

/** Read the retained messages under `filter` with a fresh client (what a new subscriber, e.g. HA, sees). */
export async function retained(url: string, filter: string, settleMs = 400): Promise<Map<string, string>> {
  const rec = await Recorder.connect(url, filter);
  await sleep(settleMs);
  await rec.close();
  const out = new Map<string, string>();
  for (const m of rec.messages) if (m.retain) out.set(m.topic, m.text);
  return out;
}
