/**
 * `batterybank capture`: run one battery's real driver for a while with capture on, for a bug report. No D-Bus
 * service is published, so it runs beside (or instead of) the service on another port.
 *
 *   --port P --protocol F [--address N] [--baud B]          a serial BMS
 *   --can-port P | --can IFACE --protocol pylon-can …       a CAN battery (USB-CAN-A adapter or SocketCAN)
 *   --mac M --protocol jbd|daly|jk-ble [--backend noble …]  a Bluetooth BMS
 *   --host H --protocol bluenova                           a network battery (BlueNova's console websocket)
 */
import { resolve } from 'node:path';
import { type BatteryConfig, parseConfig } from '../config.js';
import { CaptureWriter } from './capture-file.js';
import { attachCapture, linkKindOf } from './capture-tap.js';
import { DriverFactory } from './driver-factory.js';

export interface CaptureCommandOptions {
  protocol: string;
  port?: string | undefined;
  address?: number | undefined;
  baudRate?: number | undefined;
  can?: string | undefined;
  canPort?: string | undefined;
  mac?: string | undefined;
  host?: string | undefined;
  backend?: string | undefined;
  adapter?: string | undefined;
  hciUart?: string | undefined;
  pollInterval?: number | undefined;
  seconds: number;
  /** Default: batterybank-capture-<protocol>-<time>.jsonl in the working directory. */
  out?: string | undefined;
  version: string;
  print: (line: string) => void;
  /** Ends the capture early (Ctrl-C). */
  signal?: AbortSignal | undefined;
}

/** The battery section the options describe, validated by the config parser (its errors name the key). */
function batteryConfig(o: CaptureCommandOptions): BatteryConfig {
  const lines = ['[battery.capture]', `protocol = ${o.protocol}`];
  if (o.mac) {
    lines.push(`mac = ${o.mac}`);
    if (o.backend) lines.push(`ble_backend = ${o.backend}`);
    if (o.adapter) lines.push(`adapter = ${o.adapter}`);
    if (o.hciUart) lines.push(`ble_hci_uart = ${o.hciUart}`);
  } else if (o.host) lines.push(`host = ${o.host}`);
  else if (o.can) lines.push(`can = ${o.can}`);
  else if (o.canPort) lines.push(`can_port = ${o.canPort}`);
  else if (o.port) lines.push(`port = ${o.port}`);
  if (o.address !== undefined) lines.push(`address = ${o.address}`);
  if (o.baudRate !== undefined) lines.push(`baud_rate = ${o.baudRate}`);
  if (o.pollInterval !== undefined) lines.push(`poll_interval = ${o.pollInterval}`);
  const cfg = parseConfig([{ file: '(capture options)', text: `${lines.join('\n')}\n` }]).batteries[0];
  if (!cfg) throw new Error('no battery');
  return cfg;
}

export interface CaptureSummary {
  file: string;
  tx: number;
  rx: number;
  snapshots: number;
  warnings: number;
}

export async function captureCommand(o: CaptureCommandOptions): Promise<CaptureSummary> {
  const cfg = batteryConfig(o);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = resolve(o.out ?? `batterybank-capture-${o.protocol}-${stamp}.jsonl`);
  // One file for the whole run: a capture for a bug report is never rotated away.
  const writer = new CaptureWriter({ path: file, maxBytes: 1_000_000_000, files: 1, warn: (m) => o.print(m) });
  const drivers = new DriverFactory();
  const driver = drivers.create(cfg, cfg.protocol);
  const summary: CaptureSummary = { file, tx: 0, rx: 0, snapshots: 0, warnings: 0 };
  const where = cfg.ble ? `BLE ${cfg.ble.mac}` : cfg.port;
  attachCapture(writer, driver, {
    battery: cfg.id,
    family: cfg.protocol,
    link: { kind: linkKindOf(cfg), description: where },
    config: cfg,
    version: o.version,
  });
  driver.onFrame?.((f) => {
    if (f.direction === 'tx') summary.tx++;
    else summary.rx++;
  });
  driver.onSnapshot(() => summary.snapshots++);
  driver.onEvent((e) => {
    if (e.level === 'warn' || e.level === 'error') {
      summary.warnings++;
      o.print(`${e.level}: ${e.message}`);
    }
  });
  o.print(`capturing ${cfg.protocol} on ${where} for ${o.seconds} s to ${file}`);
  driver.start();
  await new Promise<void>((done) => {
    const timer = setTimeout(done, o.seconds * 1000);
    o.signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      done();
    });
  });
  await driver.stop();
  await drivers.close();
  await writer.close();
  if (writer.stats.failed) o.print(`capture failed: ${writer.stats.failed}`);
  o.print(
    `captured ${summary.tx + summary.rx} frames (${summary.tx} sent, ${summary.rx} received), ${summary.snapshots} snapshots, ` +
      `${summary.warnings} warnings → ${file}`,
  );
  return summary;
}
