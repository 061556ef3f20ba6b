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
import { BatteryMonitor } from './battery/battery-monitor.js';
import type { BmsDriver } from './bms/driver.js';
import { findFamily } from './bms/registry.js';
import type { BatteryConfig, Config } from './config.js';
import type { BatteryInfoExtras } from './dbus/battery-service.js';
import { BatteryService } from './dbus/battery-service.js';
import type { BatteryState } from './domain/battery-state.js';
import { errorMessage } from './domain/errors.js';
import { SerialLink } from './links/serial-link.js';
import type { Logger } from './log.js';
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
  now?: () => number;
  /** Called when the process must exit (the bus connection died): daemontools restarts us. */
  onFatal: (reason: Error) => void;
}

export interface RunningBattery {
  readonly id: string;
  readonly monitor: BatteryMonitor;
  readonly service: BatteryService | undefined;
}

export interface Running {
  readonly batteries: readonly RunningBattery[];
  /** Publish a clean disconnect (/Connected 0), release the names, stop polling. Never rejects. */
  stop(): Promise<void>;
}

function serviceName(id: string): string {
  return `com.victronenergy.battery.batterybank_${id}`;
}

function extrasOf(state: BatteryState): BatteryInfoExtras {
  const id = state.snapshot?.identity;
  return {
    ...(id?.firmware ? { firmwareVersion: id.firmware } : {}),
    ...(id?.model ? { hardwareVersion: id.model } : {}),
    ...(id?.serial ? { serial: id.serial } : {}),
  };
}

class BatteryRunner implements RunningBattery {
  readonly id: string;
  readonly monitor: BatteryMonitor;
  service: BatteryService | undefined;
  private readonly driver: BmsDriver;
  private cellCount: number | undefined;
  private creating: Promise<void> | undefined;
  private waitTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly cfg: BatteryConfig,
    private readonly opts: RunOptions,
    private readonly store: StateStore,
    private readonly log: Logger,
  ) {
    this.id = cfg.id;
    const now = opts.now ?? Date.now;
    const family = findFamily(cfg.protocol);
    if (!family) throw new Error(`unknown protocol ${cfg.protocol}`);
    const link = new SerialLink({ path: cfg.port, baudRate: cfg.baudRate });
    this.driver = family.createDriver(link, {
      pollIntervalMs: cfg.pollIntervalMs,
      replyTimeoutMs: cfg.replyTimeoutMs,
      now,
    });
    this.monitor = new BatteryMonitor({
      id: cfg.id,
      connection: link.description,
      productName: cfg.productName,
      timing: { pollIntervalMs: cfg.pollIntervalMs, staleAfterMs: cfg.staleAfterMs },
      charge: cfg.charge,
      now,
    });
    const stored = store.get(`${cfg.id}.cellCount`);
    this.cellCount = typeof stored === 'number' && stored > 0 && stored <= 64 ? stored : undefined;
  }

  start(): void {
    this.driver.onEvent((e) => this.log[e.level](e.message));
    this.driver.onSnapshot((s) => this.monitor.ingest(s));
    this.monitor.onHealthChange((h, prev) => {
      const line = `battery is ${h} (was ${prev})`;
      if (h === 'online') this.log.info(line);
      else this.log.warn(`${line}${h === 'offline' ? ': /Connected = 0, limits 0' : ': limits 0 until data returns'}`);
    });
    this.monitor.onState((state) => this.publish(state));
    this.monitor.start();
    this.driver.start();
    this.waitTimer = setTimeout(() => {
      if (!this.service && !this.creating) {
        this.log.warn(
          `no reply from the BMS on ${this.cfg.port} yet; publishing it as offline with ${this.cellCount ?? 0} cell paths`,
        );
        this.ensureService(this.cellCount ?? 0);
      }
    }, FIRST_DATA_WAIT_MS);
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
      svc.update(state, extrasOf(state));
    } catch (e) {
      this.log.error(`D-Bus update failed: ${errorMessage(e)}`);
    }
  }

  private serviceCells = 0;

  private ensureService(cellCount: number): void {
    if (this.creating || this.service || this.stopped) return;
    this.creating = this.create(cellCount).finally(() => {
      this.creating = undefined;
    });
  }

  private async create(cellCount: number): Promise<void> {
    try {
      const svc = await BatteryService.create({
        id: this.id,
        serviceName: serviceName(this.id),
        cellCount,
        productId: this.opts.config.general.productId,
        deviceInstance: this.cfg.deviceInstance,
        ...(this.cfg.customName ? { customName: this.cfg.customName } : {}),
        processName: 'dbus-batterybank',
        processVersion: this.opts.version,
        logger: this.log.child('dbus'),
        ...(this.opts.busAddress !== undefined ? { busAddress: this.opts.busAddress } : {}),
      });
      if (this.stopped) {
        await svc.close();
        return;
      }
      svc.onBusLost((reason) => this.opts.onFatal(reason));
      this.service = svc;
      this.serviceCells = cellCount;
      this.log.info(`published ${svc.serviceName} (instance ${svc.deviceInstance}, ${cellCount} cells)`);
      svc.update(this.monitor.state, extrasOf(this.monitor.state));
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
    this.monitor.stop();
    await this.creating?.catch(() => undefined);
    await this.service?.close().catch(() => undefined);
    this.service = undefined;
    await this.driver.stop();
  }
}

/** Start every configured battery. Resolves at once; services appear as their data arrives. */
export function startService(opts: RunOptions): Running {
  const store = new StateStore(opts.stateFile);
  const runners = opts.config.batteries.map((b) => new BatteryRunner(b, opts, store, opts.logger.child(b.id)));
  for (const r of runners) r.start();
  opts.logger.info(
    `dbus-batterybank ${opts.version}: ${runners.length} batter${runners.length === 1 ? 'y' : 'ies'} (${opts.config.batteries
      .map((b) => `${b.id}: ${b.protocol} on ${b.port}`)
      .join(', ')})`,
  );
  return {
    batteries: runners,
    stop: async () => {
      await Promise.all(runners.map((r) => r.stop().catch(() => undefined)));
    },
  };
}
