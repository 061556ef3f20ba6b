/**
 * The MQTT publisher in its own process, for the last-will test: the test SIGKILLs this process, so the broker
 * sees the TCP connection die without a DISCONNECT and must publish the will.
 * Env: MQTT_PORT, MQTT_TOPIC. Prints `connected` once the broker accepted the connection.
 */
import { parseMqttConfig } from '../../../src/publishers/mqtt/config.js';
import { createMqttSink } from '../../../src/publishers/mqtt/mqtt-sink.js';
import { batteryState, memoryLogger } from '../fixtures.js';

const values: Record<string, string> = {
  enabled: 'true',
  host: '127.0.0.1',
  port: process.env['MQTT_PORT'] ?? '1883',
  topic: process.env['MQTT_TOPIC'] ?? 'batterybank',
  min_interval: '0.1',
  reconnect: '0.2',
  keepalive: '60',
  client_id: `child_${process.pid}`,
};
const sink = createMqttSink({
  config: parseMqttConfig((k) => values[k], 'mqtt', 'child.ini'),
  logger: memoryLogger(true),
  version: 'child',
});
let said = false;
setInterval(() => {
  sink.publish(batteryState({ id: 'child' }));
  if (!said && sink.stats().connected) {
    said = true;
    process.stdout.write('connected\n');
  }
}, 100);
