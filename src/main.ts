/**
 * The composition root: the only place that builds concrete links, drivers, monitors and publishers.
 *
 *   config ─► for each [battery.<id>]:
 *     SerialLink ─► family driver ─snapshot─► BatteryMonitor (health · policy · alarms) ─state─► BatteryService
 *
 * A battery's D-Bus service is created once its cell count is known (first reply, usually < 0.5 s) or after
 * FIRST_DATA_WAIT_MS with the last known count, so the GX sees the battery (offline, limits 0) even when the
 * BMS is dead at start. If the BMS later reports a different cell count the service is registered anew.
 */

import { dirname, join } from 'node:path';
import { aggregateBank, type BankState } from './bank/aggregate.js';
import { type BankLayout, bankCellCount, bankLayout, bankPathTypes, bankPathValues } from './bank/bank-paths.js';
import { BatteryMonitor } from './battery/battery-monitor.js';
import { DetectCache, type Detection, detectOnPort } from './bms/autodetect.js';
import { type BleAdapter, BleLinkPool, findBleFamily } from './bms/ble-registry.js';
import { CanBusPool, type CanEndpoint, findCanFamily } from './bms/can-registry.js';
import type { BmsDriver } from './bms/driver.js';
import { findNetworkFamily, type NetworkDriver, type NetworkEndpoint } from './bms/network-registry.js';
import { type BmsFamily, BusPool, findFamily, type LinkFactory } from './bms/registry.js';
import { toHex } from './bytes/hex.js';
import { CAPTURE_FILE_NAME, CaptureWriter } from './capture/capture-file.js';
import { attachCapture, linkKindOf } from './capture/capture-tap.js';
import { AUTO_PROTOCOL, type BankConfig, type BatteryConfig, type Config, ConfigError } from './config.js';
import type { BatteryInfoExtras } from './dbus/battery-service.js';
import { BatteryService } from './dbus/battery-service.js';
import type { BatteryState } from './domain/battery-state.js';
import { errorMessage } from './domain/errors.js';
import { staleThresholdMs } from './domain/health.js';
import {
  INVERTER_PATH_TYPES,
  InverterOutput,
  type InverterStatus,
  inverterDbusValues,
  inverterStatusJson,
} from './inverter/inverter-output.js';
import type { BleLink } from './links/ble/ble-link.js';
import type { CanLink } from './links/can/can-frame.js';
import { SerialLink } from './links/serial-link.js';
import type { ConsoleLink } from './links/websocket-link.js';
import type { Logger } from './log.js';
import { createTelemetry, type Sink } from './publishers/index.js';
import { StateStore } from './state-store.js';

export const FIRST_DATA_WAIT_MS = 1500;

export interface RunOptions {
  config: Config;
  logger: Logger;
  version: string;
  /** D-Bus address; default the system bus (DBUS_SYSTEM_BUS_ADDRESS). */
  busAddress?: string;
  /** Where the state file lives; none = nothing persisted. */
  stateFile?: string;
  /** Where `protocol = auto` remembers what it found per port; none = detect from scratch every start. */
  detectCacheFile?: string;
  now?: () => number;
  /** Called when the process must exit (the bus connection died): daemontools restarts us. */
  onFatal: (reason: Error) => void;
  /** Links in place of the real ones (`batterybank replay` plays a capture through them). */
  links?: LinkFactories | undefined;
}

/** Makers of the links of serial ports, CAN interfaces and Bluetooth adapters. */
export interface LinkFactories {
  serial?: LinkFactory;
  can?: (endpoint: CanEndpoint) => CanLink;
  ble?: (adapter: BleAdapter) => BleLink;
  /** Network batteries (BlueNova's console): the link to an endpoint instead of a websocket. */
  network?: (endpoint: NetworkEndpoint) => ConsoleLink;
}

export interface RunningBattery {
  readonly id: string;
  readonly monitor: BatteryMonitor;
  readonly service: BatteryService | undefined;
}

export interface Running {
  readonly batteries: readonly RunningBattery[];
  /** The bank's last aggregated state, when a [bank] is configured. */
  readonly bank: BankState | undefined;
  /** The inverter output's status, when an [inverter] is configured. */
  readonly inverter: InverterStatus | undefined;
  /** Publish a clean disconnect (/Connected 0), release the names, stop polling. Never rejects. */
  stop(): Promise<void>;
}

function serviceName(id: string): string {
  return `com.victronenergy.battery.batterybank_${id}`;
}

/** What every published service (a battery's or the bank's) is created with. */
function serviceOptions(
  opts: RunOptions,
  cfg: { id: string; deviceInstance: number; customName: string },
  log: Logger,
): Omit<Parameters<typeof BatteryService.create>[0], 'cellCount'> {
  return {
    id: cfg.id,
    serviceName: serviceName(cfg.id),
    productId: opts.config.general.productId,
    deviceInstance: cfg.deviceInstance,
    ...(cfg.customName ? { customName: cfg.customName } : {}),
    processName: 'dbus-batterybank',
    processVersion: opts.version,
    ...(opts.config.general.dbusPropertiesChanged ? { propertiesChanged: true } : {}),
    logger: log.child('dbus'),
    ...(opts.busAddress !== undefined ? { busAddress: opts.busAddress } : {}),
  };
}

function extrasOf(state: BatteryState): BatteryInfoExtras {
  const id = state.snapshot?.identity;
  return {
    ...(id?.firmware ? { firmwareVersion: id.firmware } : {}),
    ...(id?.model ? { hardwareVersion: id.model } : {}),
    ...(id?.serial ? { serial: id.serial } : {}),
  };
}

/** `protocol = auto`: retry detection after this long, doubling up to the max, forever. */
const DETECT_RETRY_MIN_MS = 10_000;
const DETECT_RETRY_MAX_MS = 120_000;

const stringOr = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function describeLink(bus: { description: string }, address: number | undefined): string {
  return address === undefined ? bus.description : `${bus.description} address ${address}`;
}

class BatteryRunner implements RunningBattery {
  readonly id: string;
  readonly monitor: BatteryMonitor;
  service: BatteryService | undefined;
  private driver: BmsDriver | undefined;
  /** Network families (BlueNova): extra D-Bus paths and telemetry extras of their own. */
  private netDriver: NetworkDriver | undefined;
  private extraPaths: Readonly<Record<string, 'd' | 'i' | 's'>> | undefined;
  /** Set when this battery is what the [inverter] presents: its /Inverter/* paths. */
  inverterDbus: (() => Readonly<Record<string, string | number | undefined>>) | undefined;
  private cellCount: number | undefined;
  private creating: Promise<void> | undefined;
  private waitTimer: NodeJS.Timeout | undefined;
  private detectTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(
    private readonly cfg: BatteryConfig,
    private readonly opts: RunOptions,
    private readonly store: StateStore,
    private readonly log: Logger,
    private readonly pool: BusPool,
    private readonly canPool: CanBusPool,
    private readonly blePool: BleLinkPool,
    private readonly detectCache: DetectCache | undefined,
    private readonly telemetry: Sink & { readonly sinks: readonly Sink[] },
    /** Part of a published bank: 'member' publishes /Info/* invalid, 'hidden' publishes no service at all. */
    private readonly bankRole: 'none' | 'member' | 'hidden' = 'none',
    /** The capture file, when this battery has `capture = true`. */
    private readonly capture: CaptureWriter | undefined = undefined,
  ) {
    this.id = cfg.id;
    this.now = opts.now ?? Date.now;
    this.monitor = new BatteryMonitor({
      id: cfg.id,
      connection: `Serial ${cfg.port}`,
      productName: cfg.productName,
      timing: { pollIntervalMs: cfg.pollIntervalMs, staleAfterMs: cfg.staleAfterMs },
      charge: cfg.charge,
      control: cfg.control,
      now: this.now,
      // The charge cycle (mode, absorption timer, last SoC reset) survives a restart: no re-absorption.
      saved: {
        charge: stringOr(store.get(`${cfg.id}.chargeState`)),
        soc: stringOr(store.get(`${cfg.id}.socState`)),
      },
      persist: ({ charge, soc }) => {
        if (!store.set(`${cfg.id}.chargeState`, charge) || !store.set(`${cfg.id}.socState`, soc)) {
          log.warn('cannot write the state file: the charge cycle will restart in bulk after a restart');
        }
      },
    });
    const canFamily = findCanFamily(cfg.protocol);
    const bleFamily = cfg.ble ? findBleFamily(cfg.protocol) : undefined;
    const netFamily = cfg.net ? findNetworkFamily(cfg.protocol) : undefined;
    if (netFamily && cfg.net) {
      // N_UNITS is checked against the units of this family in the battery's bank (1 outside a bank).
      const bank = opts.config.bank?.topology.members;
      const sameFamily = (id: string) => opts.config.batteries.find((b) => b.id === id)?.protocol === cfg.protocol;
      const net = netFamily.createDriver(cfg.net, {
        now: this.now,
        staleAfterMs: cfg.staleAfterMs,
        options: cfg.options,
        configuredUnits: bank?.includes(cfg.id) ? bank.filter(sameFamily).length : 1,
        ...(opts.links?.network ? { link: opts.links.network(cfg.net) } : {}),
      });
      this.driver = net;
      this.netDriver = net;
      this.extraPaths = netFamily.dbusPaths;
      this.monitor.setIdentity(cfg.net.url, cfg.productName);
    } else if (bleFamily && cfg.ble) {
      const ble = this.blePool.link(cfg.ble.adapter);
      this.driver = bleFamily.createDriver(ble, {
        address: cfg.ble.mac,
        mode: cfg.ble.mode,
        pollIntervalMs: cfg.pollIntervalMs,
        replyTimeoutMs: cfg.replyTimeoutMs,
        staleAfterMs: cfg.staleAfterMs,
        now: this.now,
      });
      this.monitor.setIdentity(`BLE ${cfg.ble.mac}`, cfg.productName);
    } else if (canFamily && cfg.can) {
      const bus = this.canPool.bus(cfg.can.endpoint);
      this.driver = canFamily.createDriver(bus, { now: this.now, pack: cfg.can.pack, keepAlive: cfg.can.keepAlive });
      const where = cfg.can.pack !== undefined ? `${bus.link.description} pack ${cfg.can.pack}` : bus.link.description;
      this.monitor.setIdentity(where, cfg.productName);
    } else if (cfg.protocol !== AUTO_PROTOCOL) {
      const family = findFamily(cfg.protocol);
      if (!family) throw new ConfigError(`[battery.${cfg.id}] unknown protocol ${cfg.protocol}`);
      this.driver = this.makeDriver(family, cfg.baudRate, cfg.address);
    }
    const stored = store.get(`${cfg.id}.cellCount`);
    this.cellCount = typeof stored === 'number' && stored > 0 && stored <= 64 ? stored : undefined;
  }

  /** A driver on the port's shared bus (the pool refuses impossible sharing with a ConfigError-worthy message). */
  private makeDriver(family: BmsFamily, baudRate: number | undefined, address: number | undefined): BmsDriver {
    let bus: ReturnType<BusPool['bus']>;
    try {
      bus = this.pool.bus(family, {
        path: this.cfg.port,
        ...(baudRate !== undefined ? { baudRate } : {}),
        ...(address !== undefined ? { address } : {}),
        owner: `[battery.${this.cfg.id}]`,
      });
    } catch (e) {
      throw new ConfigError(errorMessage(e));
    }
    this.resolved = { family: family.id, baudRate: baudRate ?? family.baudRate, address };
    const driver = family.createDriver(bus, {
      address,
      pollIntervalMs: this.cfg.pollIntervalMs,
      replyTimeoutMs: this.cfg.replyTimeoutMs,
      now: this.now,
      options: this.cfg.options,
    });
    const shown = family.addressing === 'none' ? undefined : (address ?? family.addressing.default);
    this.monitor.setIdentity(
      describeLink(bus, shown),
      this.cfg.productName === 'Battery BMS' ? family.productName : this.cfg.productName,
    );
    return driver;
  }

  start(): void {
    this.monitor.onHealthChange((h, prev) => {
      const line = `battery is ${h} (was ${prev})`;
      if (h === 'online') this.log.info(line);
      else this.log.warn(`${line}${h === 'offline' ? ': /Connected = 0, limits 0' : ': limits 0 until data returns'}`);
    });
    this.monitor.onState((state) => {
      this.publish(state);
      // Telemetry sinks queue and return at once: a dead broker or database never delays D-Bus.
      this.telemetry.publish(state, this.netDriver?.telemetryExtras());
    });
    this.monitor.start();
    if (this.driver) this.startDriver(this.driver);
    else this.detect(DETECT_RETRY_MIN_MS);
    this.waitTimer = setTimeout(() => {
      if (!this.service && !this.creating && this.opts.config.general.dbus !== false) {
        this.log.warn(
          `no reply from the BMS on ${this.cfg.port} yet; publishing it as offline with ${this.cellCount ?? 0} cell paths`,
        );
        this.ensureService(this.cellCount ?? 0);
      }
    }, FIRST_DATA_WAIT_MS);
  }

  /** A serial battery's family, baud rate and address as they run (detected ones for `protocol = auto`). */
  private resolved: { family: string; baudRate: number; address: number | undefined } | undefined;

  private startDriver(driver: BmsDriver): void {
    driver.onEvent((e) => this.log[e.level](e.message));
    driver.onSnapshot((s) => this.monitor.ingest(s));
    if (this.capture) {
      const r = this.resolved;
      attachCapture(this.capture, driver, {
        battery: this.id,
        family: r?.family ?? this.cfg.protocol,
        link: {
          kind: linkKindOf(this.cfg),
          description: this.monitor.state.connection,
        },
        config: r ? { ...this.cfg, protocol: r.family, baudRate: r.baudRate, address: r.address } : this.cfg,
        productId: this.opts.config.general.productId,
        ...(this.bankRole !== 'none' && this.opts.config.bank ? { bank: this.opts.config.bank } : {}),
        version: this.opts.version,
      });
    }
    // Raw frames only when a sink keeps them (the HTTP API's last frames): otherwise no per-frame work at all.
    const frameSink = this.telemetry.frame?.bind(this.telemetry);
    if (frameSink && this.telemetry.sinks.length > 0) {
      driver.onFrame?.((f) =>
        frameSink(this.id, {
          time: f.time,
          direction: f.direction,
          hex: toHex(f.bytes),
          ...(f.request !== undefined ? { register: f.request } : {}),
        }),
      );
    }
    driver.start();
  }

  /** protocol = auto: find the BMS on the port (cached family first), then run its driver; retry while nothing answers. */
  private detect(retryMs: number): void {
    if (this.stopped) return;
    const started = this.now();
    detectOnPort({ path: this.cfg.port, ...(this.detectCache ? { cache: this.detectCache } : {}) })
      .then((found: Detection[]) => {
        if (this.stopped) return;
        const hit = found[0];
        const family = hit ? findFamily(hit.family) : undefined;
        if (!hit || !family) {
          this.log[retryMs === DETECT_RETRY_MIN_MS ? 'warn' : 'debug'](
            `autodetect: no known BMS answers on ${this.cfg.port}; trying again in ${retryMs / 1000} s`,
          );
          this.detectTimer = setTimeout(() => this.detect(Math.min(retryMs * 2, DETECT_RETRY_MAX_MS)), retryMs);
          return;
        }
        this.log.info(
          `autodetect: ${family.id} at ${hit.baudRate} Bd${hit.address !== undefined ? ` address ${hit.address}` : ''}` +
            `${hit.model ? ` (${hit.model})` : ''} on ${this.cfg.port} in ${this.now() - started} ms`,
        );
        this.driver = this.makeDriver(family, hit.baudRate, hit.address);
        this.startDriver(this.driver);
      })
      .catch((e: unknown) => {
        this.log.warn(`autodetect on ${this.cfg.port} failed: ${errorMessage(e)}; trying again in ${retryMs / 1000} s`);
        this.detectTimer = setTimeout(() => this.detect(Math.min(retryMs * 2, DETECT_RETRY_MAX_MS)), retryMs);
      });
  }

  private publish(state: BatteryState): void {
    const cells = state.snapshot?.cellVoltages?.length;
    if (cells && cells !== this.cellCount) {
      this.cellCount = cells;
      this.store.set(`${this.id}.cellCount`, cells);
    }
    const svc = this.service;
    if (svc && cells && cells !== this.serviceCells) {
      this.log.info(`the BMS reports ${cells} cells (service has ${this.serviceCells}): registering the service anew`);
      this.recreate(cells);
      return;
    }
    if (!svc) {
      if (cells) this.ensureService(cells);
      return;
    }
    try {
      svc.update(state, extrasOf(state), { ...this.netDriver?.dbusValues(), ...this.inverterDbus?.() });
    } catch (e) {
      this.log.error(`D-Bus update failed: ${errorMessage(e)}`);
    }
  }

  private serviceCells = 0;

  private ensureService(cellCount: number): void {
    if (this.creating || this.service || this.stopped || this.bankRole === 'hidden') return;
    if (this.opts.config.general.dbus === false) return;
    this.creating = this.create(cellCount).finally(() => {
      this.creating = undefined;
    });
  }

  private async create(cellCount: number): Promise<void> {
    try {
      const svc = await BatteryService.create({
        ...serviceOptions(this.opts, this.cfg, this.log),
        cellCount,
        ...(this.bankRole === 'member' ? { bankMember: true } : {}),
        ...(this.extraPaths || this.inverterDbus
          ? { extraPaths: { ...this.extraPaths, ...(this.inverterDbus ? INVERTER_PATH_TYPES : {}) } }
          : {}),
      });
      if (this.stopped) {
        await svc.close();
        return;
      }
      svc.onBusLost((reason) => this.opts.onFatal(reason));
      this.service = svc;
      this.serviceCells = cellCount;
      this.log.info(`published ${svc.serviceName} (instance ${svc.deviceInstance}, ${cellCount} cells)`);
      svc.update(this.monitor.state, extrasOf(this.monitor.state), {
        ...this.netDriver?.dbusValues(),
        ...this.inverterDbus?.(),
      });
    } catch (e) {
      // Cannot reach the bus or the name is taken: nothing to publish to, so daemontools must restart us.
      this.opts.onFatal(new Error(`cannot publish ${serviceName(this.id)}: ${errorMessage(e)}`));
    }
  }

  private recreate(cellCount: number): void {
    if (this.creating) return;
    const old = this.service;
    this.service = undefined;
    this.creating = (async () => {
      await old?.close();
      await this.create(cellCount);
    })().finally(() => {
      this.creating = undefined;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.waitTimer) clearTimeout(this.waitTimer);
    if (this.detectTimer) clearTimeout(this.detectTimer);
    this.monitor.stop();
    await this.creating?.catch(() => undefined);
    await this.service?.close().catch(() => undefined);
    this.service = undefined;
    await this.driver?.stop();
  }
}

/**
 * The virtual bank: member states in, one aggregated battery out. Recomputed once per event-loop turn however
 * many members changed (pure aggregateBank), published on its own service whose path table (cells of every
 * member, /Batteries/<member>/…) is fixed once every member's cell count is known.
 */
class BankRunner {
  private service: BatteryService | undefined;
  private layout: BankLayout | undefined;
  private creating: Promise<void> | undefined;
  private scheduled = false;
  private stopped = false;
  private problems = '';
  private waitTimer: NodeJS.Timeout | undefined;
  private last: BankState | undefined;
  /** Set when the bank is what the [inverter] presents: its /Inverter/* paths. */
  inverterDbus: (() => Readonly<Record<string, string | number | undefined>>) | undefined;

  constructor(
    private readonly cfg: BankConfig,
    private readonly members: readonly BatteryRunner[],
    private readonly opts: RunOptions,
    private readonly store: StateStore,
    private readonly log: Logger,
    private readonly telemetry: Sink,
  ) {}

  start(): void {
    for (const m of this.members) m.monitor.onState(() => this.schedule());
    this.waitTimer = setTimeout(() => this.ensureService(), FIRST_DATA_WAIT_MS);
    this.schedule();
  }

  private cellCounts(): Record<string, number | undefined> {
    const out: Record<string, number | undefined> = {};
    for (const m of this.members) {
      const live = m.monitor.state.snapshot?.cellVoltages?.length;
      const stored = this.store.get(`${m.id}.cellCount`);
      out[m.id] = live || (typeof stored === 'number' ? stored : undefined);
    }
    return out;
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.recompute();
    });
  }

  private recompute(): void {
    const states = new Map(this.members.map((m) => [m.id, m.monitor.state] as const));
    const counts = this.cellCounts();
    const bank = aggregateBank(states, this.cfg.topology, {
      id: this.cfg.id,
      sharing: this.cfg.sharing,
      cellCounts: counts,
      connection: `Bank ${this.cfg.topology.label} (${this.cfg.topology.members.join(', ')})`,
    });
    this.last = bank;
    const problems = bank.problems.join('; ');
    if (problems !== this.problems) {
      if (problems) this.log.warn(`bank: ${problems}`);
      else if (this.problems) this.log.info('bank: no problems any more');
      this.problems = problems;
    }
    this.telemetry.publish(bank, { kind: 'bank' });
    const layout = bankLayout(this.cfg.topology, counts);
    const complete = layout.members.every((m) => m.cells > 0);
    if (this.service && this.layout && JSON.stringify(layout) !== JSON.stringify(this.layout) && complete) {
      this.log.info('bank: member cell counts changed: registering the bank service anew');
      this.recreate();
      return;
    }
    if (!this.service) {
      if (complete) this.ensureService();
      return;
    }
    if (!this.layout) return;
    try {
      this.service.update(
        bank,
        { modules: bank.counts.modules },
        { ...bankPathValues(bank, this.layout), ...this.inverterDbus?.() },
      );
    } catch (e) {
      this.log.error(`bank D-Bus update failed: ${errorMessage(e)}`);
    }
  }

  private ensureService(): void {
    if (this.creating || this.service || this.stopped || this.opts.config.general.dbus === false) return;
    const layout = bankLayout(this.cfg.topology, this.cellCounts());
    this.creating = this.create(layout).finally(() => {
      this.creating = undefined;
    });
  }

  private recreate(): void {
    if (this.creating) return;
    const old = this.service;
    this.service = undefined;
    this.creating = (async () => {
      await old?.close();
      await this.create(bankLayout(this.cfg.topology, this.cellCounts()));
    })().finally(() => {
      this.creating = undefined;
    });
  }

  private async create(layout: BankLayout): Promise<void> {
    try {
      const svc = await BatteryService.create({
        ...serviceOptions(this.opts, this.cfg, this.log),
        cellCount: bankCellCount(layout),
        extraPaths: { ...bankPathTypes(layout), ...(this.inverterDbus ? INVERTER_PATH_TYPES : {}) },
      });
      if (this.stopped) {
        await svc.close();
        return;
      }
      svc.onBusLost((reason) => this.opts.onFatal(reason));
      this.service = svc;
      this.layout = layout;
      this.log.info(
        `published bank ${svc.serviceName} (${this.cfg.topology.label}, instance ${svc.deviceInstance}, ${bankCellCount(layout)} cells)`,
      );
      if (this.last) {
        const extra = { ...bankPathValues(this.last, layout), ...this.inverterDbus?.() };
        svc.update(this.last, { modules: this.last.counts.modules }, extra);
      }
    } catch (e) {
      this.opts.onFatal(new Error(`cannot publish ${serviceName(this.cfg.id)}: ${errorMessage(e)}`));
    }
  }

  get state(): BankState | undefined {
    return this.last;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.waitTimer) clearTimeout(this.waitTimer);
    await this.creating?.catch(() => undefined);
    await this.service?.close().catch(() => undefined);
    this.service = undefined;
  }
}

/** The capture file of the batteries with `capture = true` (docs/capture.md); none when no battery captures. */
function captureWriter(opts: RunOptions): CaptureWriter | undefined {
  const settings = opts.config.general.capture;
  if (!settings) return undefined;
  const dir = settings.dir ?? join(opts.stateFile ? dirname(opts.stateFile) : process.cwd(), 'captures');
  const path = join(dir, CAPTURE_FILE_NAME);
  const log = opts.logger.child('capture');
  const ids = opts.config.batteries.filter((b) => b.capture).map((b) => b.id);
  log.info(
    `capturing every frame of ${ids.join(', ')} to ${path} (rotated at ${settings.maxBytes} bytes, ${settings.files} files kept)`,
  );
  return new CaptureWriter({ path, maxBytes: settings.maxBytes, files: settings.files, warn: (m) => log.warn(m) });
}

/**
 * The [inverter] output: the bank (or one battery) presented on its own CAN bus. It reads the source's latest
 * state at every send; its status goes to the source's D-Bus service (/Inverter/*) and to telemetry (HTTP API).
 */
function createInverter(
  opts: RunOptions,
  canPool: CanBusPool,
  runners: readonly BatteryRunner[],
  bank: BankRunner | undefined,
  telemetry: Sink,
): InverterOutput {
  const cfg = opts.config.inverter as NonNullable<Config['inverter']>;
  const now = opts.now ?? Date.now;
  const isBank = cfg.source.kind === 'bank';
  const runner = runners.find((r) => r.id === cfg.source.id);
  const timings = opts.config.batteries
    .filter((b) => (isBank ? opts.config.bank?.topology.members.includes(b.id) : b.id === cfg.source.id))
    .map((b) => staleThresholdMs({ pollIntervalMs: b.pollIntervalMs, staleAfterMs: b.staleAfterMs }));
  const log = opts.logger.child('inverter');
  const output = new InverterOutput({
    config: cfg,
    bus: canPool.bus(cfg.endpoint),
    source: () => (isBank ? bank?.state : runner?.monitor.state),
    // The strictest member's: the bank's data is never older than what any member would accept.
    staleLimitMs: timings.length > 0 ? Math.min(...timings) : 3000,
    logger: log,
    now,
    onStatus: (s) => telemetry.component?.('inverter', inverterStatusJson(s, now())),
  });
  const dbus = () => inverterDbusValues(output.status(), now());
  if (isBank && bank) bank.inverterDbus = dbus;
  else if (runner) runner.inverterDbus = dbus;
  log.info(
    `presenting ${cfg.source.kind} ${cfg.source.id} as ${cfg.protocol === 'pylon' ? 'a Pylon LV battery' : 'a BYD Battery-Box Premium HVS'} on ${output.status().link}`,
  );
  return output;
}

/** Start every configured battery. Resolves at once; services appear as their data arrives. */
export function startService(opts: RunOptions): Running {
  const store = new StateStore(opts.stateFile);
  const pool = new BusPool(opts.links?.serial ?? ((port) => new SerialLink(port)));
  const canPool = new CanBusPool(opts.links?.can);
  const blePool = new BleLinkPool(opts.busAddress, opts.links?.ble);
  const capture = captureWriter(opts);
  const cache = opts.detectCacheFile ? new DetectCache(opts.detectCacheFile) : undefined;
  void cache?.load();
  // Every runner is built before any starts: a port-sharing conflict is a config error, not half a start.
  const telemetry = createTelemetry(opts.config.telemetry, {
    logger: opts.logger.child('telemetry'),
    version: opts.version,
  });
  const bankCfg = opts.config.bank;
  const inBank = new Set(bankCfg?.topology.members ?? []);
  const role = (id: string) => (!inBank.has(id) ? 'none' : bankCfg?.publishMembers ? 'member' : 'hidden');
  const runners = opts.config.batteries.map(
    (b) =>
      new BatteryRunner(
        b,
        opts,
        store,
        opts.logger.child(b.id),
        pool,
        canPool,
        blePool,
        cache,
        telemetry,
        role(b.id),
        b.capture ? capture : undefined,
      ),
  );
  const bank = bankCfg
    ? new BankRunner(
        bankCfg,
        runners.filter((r) => inBank.has(r.id)),
        opts,
        store,
        opts.logger.child(bankCfg.id),
        telemetry,
      )
    : undefined;
  const inverter = opts.config.inverter ? createInverter(opts, canPool, runners, bank, telemetry) : undefined;
  for (const r of runners) r.start();
  bank?.start();
  inverter?.start();
  opts.logger.info(
    `dbus-batterybank ${opts.version}: ${runners.length} batter${runners.length === 1 ? 'y' : 'ies'} (${opts.config.batteries
      .map((b) => `${b.id}: ${b.protocol} on ${b.port}${b.address !== undefined ? ` address ${b.address}` : ''}`)
      .join(', ')})`,
  );
  return {
    batteries: runners,
    get inverter() {
      return inverter?.status();
    },
    get bank() {
      return bank?.state;
    },
    stop: async () => {
      await inverter?.stop();
      await bank?.stop();
      await Promise.all(runners.map((r) => r.stop().catch(() => undefined)));
      await telemetry.close();
      await capture?.close();
    },
  };
}
