#!/usr/bin/env node
/**
 * `batterybank` — the command line. Every command is a thin shell over the modules; exit status 2 means
 * bad usage or bad config, 1 a runtime failure.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureCommand } from './capture/capture-command.js';
import { replayCommand } from './capture/replay-command.js';
import { DECODE_FAMILIES, decodeHex } from './cli/decode.js';
import { probeCommand } from './cli/probe.js';
import { scanCommand } from './cli/scan.js';
import { ConfigError, loadConfig, parseConfig } from './config.js';
import { formatStatusTable, readBatteryStatus, StatusReader } from './dbus/status-reader.js';
import { startPrivateBus } from './demo/private-bus.js';
import { renderBattery } from './demo/status-view.js';
import { createLogger, isLogLevel, type LogLevel } from './log.js';
import { startService } from './main.js';
import { simulateCommand } from './sim/simulate-command.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGE_ROOT = resolve(HERE, '..');

export function version(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const USAGE = `usage: batterybank <command> [options]

commands:
  run --config FILE [--log-level L]     run the driver service (what daemontools starts on the GX)
  simulate <family> [--cells N] [--addresses 1,2] [--seed N] [--link PATH] [--can vcan0]
                                        a simulated BMS on a new pseudo-terminal; first line: PTY <path>
  simulate bluenova [--listen 127.0.0.1:9000] [--units N] [--cells N]
                                        simulated BlueNova units on local websockets; first lines: WS <url>
  decode <family> HEX...                decode captured frames, one JSON object per frame
                                        (bluenova: console lines, e.g. decode bluenova "Vpack: 52920")
  probe PORT [--all-addresses]          which BMS answers on PORT, and the config lines for it
  scan [--seconds N] [--backend bluez|noble] [--adapter hciN] [--hci-uart PATH] [--all]
                                        Bluetooth devices that look like a BMS, and the config lines
  status                                table of every com.victronenergy.battery.* on the bus
  replay FILE... [--speed N] [--battery ID] [--dbus [--bus ADDRESS] [--hold]]
                                        a capture through the drivers again: one JSON line per snapshot, or
                                        (--dbus) published as the live service
  capture --protocol F (--port P [--address N] [--baud B] | --can-port P | --can IF | --mac M | --host H)
          [--seconds 60] [--out FILE]   run one battery's driver with capture on, for a bug report
  demo [--cells N] [--seconds N]        private bus + simulated JBD + driver + live view (npm start)
  --version, --help

families: ${DECODE_FAMILIES.join(', ')}
`;

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  options: Map<string, string | true>;
}

function parseArgs(argv: readonly string[], valued: readonly string[]): Parsed {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (eq > 0) options.set(name, a.slice(eq + 1));
      else if (valued.includes(name)) {
        const v = argv[i + 1];
        if (v === undefined) throw new UsageError(`--${name} needs a value`);
        options.set(name, v);
        i++;
      } else options.set(name, true);
    } else positional.push(a);
  }
  return { positional, options };
}

function intOption(p: Parsed, name: string, min: number, max: number): number | undefined {
  const v = p.options.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number ${min}–${max}`);
  }
  return n;
}

function logLevelOption(p: Parsed): LogLevel | undefined {
  const v = p.options.get('log-level');
  if (v === undefined) return undefined;
  if (v === true || !isLogLevel(v)) throw new UsageError('--log-level must be debug, info, warn or error');
  return v;
}

/** Resolves when SIGINT or SIGTERM arrives. */
function untilSignal(): Promise<string> {
  return new Promise((res) => {
    const on = (sig: string) => () => res(sig);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

async function cmdRun(p: Parsed): Promise<number> {
  const file = p.options.get('config');
  if (typeof file !== 'string') throw new UsageError('run needs --config FILE');
  const config = loadConfig(file, join(PACKAGE_ROOT, 'config.default.ini'));
  const level = logLevelOption(p) ?? config.general.logLevel;
  const logger = createLogger({ level, timestamps: process.stdout.isTTY === true });
  const running = startService({
    config,
    logger,
    version: version(),
    stateFile: join(dirname(resolve(file)), 'batterybank-state.json'),
    detectCacheFile: join(dirname(resolve(file)), 'autodetect-cache.json'),
    onFatal: (reason) => {
      logger.error(`${reason.message}; exiting so the supervisor restarts the driver`);
      process.exit(1);
    },
  });
  const sig = await untilSignal();
  logger.info(`${sig}: publishing disconnect and stopping`);
  await running.stop();
  return 0;
}

async function cmdSimulate(p: Parsed): Promise<number> {
  const family = p.positional[1];
  if (!family) throw new UsageError('simulate needs a family, e.g. `simulate jbd`');
  const cells = intOption(p, 'cells', 1, 32);
  const seed = intOption(p, 'seed', 0, 2 ** 32 - 1);
  const units = intOption(p, 'units', 1, 16);
  const listen = p.options.get('listen');
  const link = p.options.get('link');
  const addrOpt = p.options.get('addresses');
  let addresses: number[] | undefined;
  if (addrOpt !== undefined) {
    addresses = typeof addrOpt === 'string' ? addrOpt.split(',').map((a) => Number(a.trim())) : [];
    if (addresses.length === 0 || addresses.some((a) => !Number.isInteger(a) || a < 0 || a > 255)) {
      throw new UsageError('--addresses must be a comma-separated list of pack addresses, e.g. 1,2,3');
    }
  }
  const sim = await simulateCommand(
    {
      family,
      ...(cells !== undefined ? { cells } : {}),
      ...(addresses !== undefined ? { addresses } : {}),
      ...(typeof p.options.get('can') === 'string' ? { can: p.options.get('can') as string } : {}),
      ...(seed !== undefined ? { seed } : {}),
      ...(typeof link === 'string' ? { link } : {}),
      ...(units !== undefined ? { units } : {}),
      ...(typeof listen === 'string' ? { listen } : {}),
    },
    (line) => process.stdout.write(`${line}\n`),
  );
  await untilSignal();
  await sim.close();
  return 0;
}

function cmdDecode(p: Parsed): number {
  const family = p.positional[1];
  const hex = p.positional.slice(2);
  if (!family || hex.length === 0)
    throw new UsageError('decode needs a family and hex bytes, e.g. `decode jbd DDA50300FFFD77`');
  const { records, error } = decodeHex(family, hex);
  for (const r of records) process.stdout.write(`${JSON.stringify(r)}\n`);
  if (error) {
    process.stderr.write(`decode ${family}: ${error}\n`);
    return 1;
  }
  return 0;
}

async function cmdProbe(p: Parsed): Promise<number> {
  const port = p.positional[1];
  if (!port) throw new UsageError('probe needs a port, e.g. `probe /dev/ttyUSB0`');
  return probeCommand(port, { allAddresses: p.options.has('all-addresses') }, (line) =>
    process.stdout.write(`${line}\n`),
  );
}

async function cmdScan(p: Parsed): Promise<number> {
  const seconds = intOption(p, 'seconds', 1, 600) ?? 10;
  const backend = p.options.get('backend');
  if (backend !== undefined && backend !== 'bluez' && backend !== 'noble')
    throw new UsageError('--backend is bluez or noble');
  const adapter = p.options.get('adapter');
  const uart = p.options.get('hci-uart');
  const found = await scanCommand({
    durationMs: seconds * 1000,
    ...(backend ? { backend } : {}),
    ...(typeof adapter === 'string' ? { adapter } : {}),
    ...(typeof uart === 'string' ? { hciUart: uart } : {}),
    all: p.options.has('all'),
    print: (line) => process.stdout.write(`${line}\n`),
  });
  return found.length > 0 ? 0 : 1;
}

async function cmdStatus(): Promise<number> {
  const records = await readBatteryStatus();
  process.stdout.write(
    `${records.length ? formatStatusTable(records) : 'no com.victronenergy.battery.* service on the bus'}\n`,
  );
  return 0;
}

async function cmdDemo(p: Parsed): Promise<number> {
  const cells = intOption(p, 'cells', 1, 32) ?? 16;
  const seconds = intOption(p, 'seconds', 1, 86_400);
  const tty = process.stdout.isTTY === true;
  const out = (s: string) => process.stdout.write(`${s}\n`);
  let bus: { address: string; stop(): void } | undefined;
  if (!process.env.DBUS_SYSTEM_BUS_ADDRESS) {
    bus = await startPrivateBus();
    process.env.DBUS_SYSTEM_BUS_ADDRESS = bus.address;
    out(`started a private dbus-daemon: ${bus.address}`);
  } else out(`using the bus at DBUS_SYSTEM_BUS_ADDRESS=${process.env.DBUS_SYSTEM_BUS_ADDRESS}`);

  let ptyPath = '';
  const sim = await simulateCommand({ family: 'jbd', cells }, (line) => {
    if (line.startsWith('PTY ')) ptyPath = line.slice(4);
    out(line);
  });
  const config = parseConfig([
    {
      file: '(demo)',
      text: `[battery.demo]\nprotocol = jbd\nport = ${ptyPath}\ncustom_name = Demo JBD battery\n`,
    },
  ]);
  const recent: string[] = [];
  const logger = createLogger({
    level: 'info',
    write: (line) => {
      recent.push(line);
      if (recent.length > 6) recent.shift();
      if (!tty) out(line);
    },
  });
  const running = startService({
    config,
    logger,
    version: version(),
    onFatal: (reason) => {
      process.stderr.write(`fatal: ${reason.message}\n`);
      process.exit(1);
    },
  });
  const reader = await StatusReader.open();
  const draw = async () => {
    const records = await reader.readAll();
    const lines: string[] = [`dbus-batterybank ${version()} demo — ${new Date().toLocaleTimeString()} — Ctrl-C stops`];
    for (const r of records)
      lines.push('', ...(r.error ? [`${r.service}: ${r.error}`] : renderBattery(r.service, r.items)));
    if (records.length === 0) lines.push('', 'waiting for the battery service…');
    if (tty) {
      lines.push('', 'log:', ...recent.map((l) => `  ${l}`));
      process.stdout.write(`\x1b[2J\x1b[H${lines.join('\n')}\n`);
    } else out(lines.join('\n'));
  };
  const timer = setInterval(() => {
    draw().catch((e: unknown) => logger.warn(`status view: ${(e as Error).message}`));
  }, 1000);
  const stopAfter = seconds ? new Promise<string>((r) => setTimeout(() => r('time'), seconds * 1000)) : undefined;
  await Promise.race([untilSignal(), ...(stopAfter ? [stopAfter] : [])]);
  clearInterval(timer);
  await draw().catch(() => undefined);
  await running.stop();
  await reader.close();
  await sim.close();
  bus?.stop();
  out('demo stopped');
  return 0;
}

/** An AbortSignal that fires on SIGINT or SIGTERM. */
function signalAbort(): AbortSignal {
  const ac = new AbortController();
  void untilSignal().then(() => ac.abort());
  return ac.signal;
}

async function cmdReplay(p: Parsed): Promise<number> {
  const files = p.positional.slice(1);
  if (files.length === 0) throw new UsageError('replay needs a capture file, e.g. `replay batterybank-capture.jsonl`');
  const speedText = p.options.get('speed');
  const speed = speedText === undefined ? 1 : Number(speedText);
  if (speedText === true || !(speed > 0 && speed <= 1000))
    throw new UsageError('--speed must be a number > 0 and ≤ 1000');
  const battery = p.options.get('battery');
  const bus = p.options.get('bus');
  if (battery === true || bus === true) throw new UsageError('--battery and --bus need a value');
  const level = logLevelOption(p) ?? 'warn';
  return replayCommand({
    files,
    speed,
    battery,
    dbus: p.options.has('dbus'),
    busAddress: bus,
    hold: p.options.has('hold'),
    version: version(),
    logger: createLogger({ level, write: (line) => process.stderr.write(`${line}\n`) }),
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    signal: signalAbort(),
  });
}

async function cmdCapture(p: Parsed): Promise<number> {
  const protocol = p.options.get('protocol');
  if (typeof protocol !== 'string')
    throw new UsageError('capture needs --protocol, e.g. `capture --port /dev/ttyUSB0 --protocol jbd`');
  const str = (name: string) => {
    const v = p.options.get(name);
    if (v === true) throw new UsageError(`--${name} needs a value`);
    return v;
  };
  const where = ['port', 'can', 'can-port', 'mac', 'host'].filter((k) => p.options.has(k));
  if (where.length !== 1)
    throw new UsageError('capture needs exactly one of --port, --can-port, --can, --mac or --host');
  const poll = p.options.get('poll-interval');
  const summary = await captureCommand({
    protocol,
    port: str('port'),
    can: str('can'),
    canPort: str('can-port'),
    mac: str('mac'),
    host: str('host'),
    backend: str('backend'),
    adapter: str('adapter'),
    hciUart: str('hci-uart'),
    address: intOption(p, 'address', 0, 255),
    baudRate: intOption(p, 'baud', 300, 4_000_000),
    ...(typeof poll === 'string' ? { pollInterval: Number(poll) } : {}),
    seconds: intOption(p, 'seconds', 1, 86_400) ?? 60,
    out: str('out'),
    version: version(),
    print: (line) => process.stdout.write(`${line}\n`),
    signal: signalAbort(),
  });
  return summary.rx > 0 ? 0 : 1;
}

export async function main(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, [
    'config',
    'log-level',
    'cells',
    'seed',
    'link',
    'seconds',
    'addresses',
    'backend',
    'adapter',
    'hci-uart',
    'speed',
    'battery',
    'bus',
    'port',
    'protocol',
    'address',
    'baud',
    'out',
    'can',
    'can-port',
    'mac',
    'host',
    'poll-interval',
    'listen',
    'units',
  ]);
  if (p.options.has('version')) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const cmd = p.positional[0];
  if (!cmd || p.options.has('help') || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd ? 0 : 2;
  }
  switch (cmd) {
    case 'run':
      return cmdRun(p);
    case 'simulate':
      return cmdSimulate(p);
    case 'decode':
      return cmdDecode(p);
    case 'probe':
      return cmdProbe(p);
    case 'scan':
      return cmdScan(p);
    case 'status':
      return cmdStatus();
    case 'demo':
      return cmdDemo(p);
    case 'replay':
      return cmdReplay(p);
    case 'capture':
      return cmdCapture(p);
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

/** True when run as a program; realpath so a symlinked install (the `batterybank` bin link) still counts. */
function invokedDirectly(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return resolve(arg) === fileURLToPath(import.meta.url);
  }
}
if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof UsageError) {
        process.stderr.write(`batterybank: ${e.message}\n\n${USAGE}`);
        process.exit(2);
      }
      if (e instanceof ConfigError) {
        process.stderr.write(`batterybank: config error: ${e.message}\n`);
        process.exit(2);
      }
      process.stderr.write(`batterybank: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
