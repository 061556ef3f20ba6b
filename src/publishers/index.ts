/**
 * Telemetry beyond the GX, in one place for the composition root: config sections, their defaults, and one
 * factory that starts the enabled sinks behind a single isolated Sink.
 *
 *   config.ts:  import from './publishers/telemetry-config.js' (no network libraries, no module cycle)
 *   main.ts:    const telemetry = createTelemetry(config.telemetry, { logger, version });
 *               monitor.onState((s) => telemetry.publish(s, extras)); … await telemetry.close();
 */
import type { Logger } from '../log.js';
import { createHttpSink } from './http/http-sink.js';
import { createMqttSink } from './mqtt/mqtt-sink.js';
import { createPostgresSink } from './postgres/postgres-sink.js';
import { fanOut, type Sink, type SinkStats } from './sink.js';
import type { TelemetryConfig } from './telemetry-config.js';

export type { RawFrame, Sink, SinkStats, StateExtras } from './sink.js';
export * from './telemetry-config.js';

export interface TelemetryOptions {
  logger: Logger;
  version: string;
  now?: () => number;
}

/**
 * Start every enabled sink (none enabled: a no-op sink). Returns at once; connections are made in the
 * background. The result's publish/frame never block or throw; close() never rejects.
 */
export function createTelemetry(
  cfg: TelemetryConfig,
  opts: TelemetryOptions,
): Sink & { readonly sinks: readonly Sink[] } {
  const sinks: Sink[] = [];
  const now = opts.now ? { now: opts.now } : {};
  if (cfg.mqtt.enabled) {
    sinks.push(createMqttSink({ config: cfg.mqtt, logger: opts.logger.child('mqtt'), version: opts.version, ...now }));
  }
  if (cfg.postgres.enabled) {
    sinks.push(createPostgresSink({ config: cfg.postgres, logger: opts.logger.child('postgres'), ...now }));
  }
  if (cfg.http.enabled) {
    const others = [...sinks];
    sinks.push(
      createHttpSink({
        config: cfg.http,
        logger: opts.logger.child('http'),
        version: opts.version,
        ...now,
        sinkStats: () => {
          const out: Record<string, SinkStats> = {};
          for (const s of others) {
            const st = s.stats?.();
            if (st) out[s.name] = st;
          }
          return out;
        },
      }),
    );
  }
  return fanOut(sinks, opts.logger);
}
