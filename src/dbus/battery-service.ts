/**
 * One `com.victronenergy.battery.batterybank_<id>` service (one per battery or bank), on its own bus
 * connection:
 *
 *   BatteryState ──toDbusValues──► BusItemService (diff, one ItemsChanged per update)
 *   localsettings ◄─► DeviceSettings: /DeviceInstance (ClassAndVrmInstance) and /CustomName
 *
 * A change of the VRM instance (granted late, or changed by the user) re-registers the service: release the
 * name, change /DeviceInstance, claim the name again (identity never changes while on the bus).
 */
import type { BatteryState } from '../domain/battery-state.js';
import { errorMessage } from '../domain/errors.js';
import type { Logger } from '../log.js';
import { type BatteryInfo, batteryPathTable, toDbusValues } from './battery-paths.js';
import { BusItemService } from './busitem-service.js';
import { DbusConnection } from './connection.js';
import { DeviceSettings } from './settings.js';
import type { DbusValue } from './values.js';

/** Options of BatteryService.create(). */
export interface BatteryServiceOptions {
  /** Config id (`house`), `[a-z0-9_]`: the localsettings group is `batterybank_<id>`. */
  id: string;
  /** com.victronenergy.battery.batterybank_<id> */
  serviceName: string;
  /** Fixes the number of cell paths for the life of the service. */
  cellCount: number;
  productId: number;
  /** The configured instance: asked of localsettings, and used as is when localsettings is absent. */
  deviceInstance: number;
  /** The configured `custom_name`: the default of the localsettings entry, and used as is without localsettings. */
  customName?: string;
  processName: string;
  processVersion: string;
  logger: Logger;
  /** Bus address for tests; default: the system bus. */
  busAddress?: string;
  /** Timeout of every D-Bus method call, ms. */
  callTimeoutMs?: number;
  /** More paths beyond the battery table (a bank's /Batteries/<member>/…, /Voltages/<member>/Cell<n>). */
  extraPaths?: Readonly<Record<string, 'd' | 'i' | 's'>>;
  /**
   * Also send PropertiesChanged on each changed leaf (default false: one ItemsChanged per update, as velib does
   * for a `with service:` block, and what victron-dbus.md §2 says every Victron reader handles).
   */
  propertiesChanged?: boolean;
  /**
   * A member of a published bank: its /Info/* limits are published invalid, so DVCC takes the bank (the only
   * valid MaxChargeVoltage) as its BMS and never a single member.
   */
  bankMember?: boolean;
}

const BANK_MEMBER_INVALID = [
  '/Info/MaxChargeVoltage',
  '/Info/MaxChargeCurrent',
  '/Info/MaxDischargeCurrent',
  '/Info/BatteryLowVoltage',
  '/Info/ChargeRequest',
] as const;

/** What update() takes besides the state; everything else the service knows itself. */
export type BatteryInfoExtras = Partial<
  Pick<BatteryInfo, 'firmwareVersion' | 'hardwareVersion' | 'serial' | 'chargeMode' | 'allowToBalance' | 'modules'>
>;

const DEVICE_CLASS = 'battery';

function extraPathTable(
  types: Readonly<Record<string, 'd' | 'i' | 's'>> | undefined,
): Record<string, { type: 'd' | 'i' | 's' }> {
  return Object.fromEntries(Object.entries(types ?? {}).map(([p, type]) => [p, { type }]));
}

/** A battery service on the bus. */
export class BatteryService {
  private service: BusItemService | undefined;
  private settings: DeviceSettings | undefined;
  private instance: number;
  private name = '';
  private reregistering: Promise<void> = Promise.resolve();
  private readonly fatalListeners: ((reason: Error) => void)[] = [];
  private fatalReason: Error | undefined;
  private closed = false;

  private constructor(
    private readonly opts: BatteryServiceOptions,
    private readonly connection: DbusConnection,
  ) {
    this.instance = opts.deviceInstance;
    this.name = opts.customName ?? '';
    connection.onLost((reason) => this.fatal(reason));
  }

  /**
   * Connect, register the device settings (instance and custom name), export every path and claim the name.
   * Rejects when the bus cannot be reached or the name is taken.
   */
  static async create(opts: BatteryServiceOptions): Promise<BatteryService> {
    batteryPathTable(opts.cellCount); // validate the cell count before touching the bus
    const connection = await DbusConnection.open({
      ...(opts.busAddress !== undefined ? { busAddress: opts.busAddress } : {}),
      ...(opts.callTimeoutMs !== undefined ? { callTimeoutMs: opts.callTimeoutMs } : {}),
    });
    const self = new BatteryService(opts, connection);
    try {
      await self.start();
    } catch (err) {
      connection.close();
      throw err;
    }
    return self;
  }

  /** The well-known name on the bus. */
  get serviceName(): string {
    return this.opts.serviceName;
  }

  /** The /DeviceInstance currently published. */
  get deviceInstance(): number {
    const v = this.service?.get('/DeviceInstance');
    return typeof v === 'number' ? v : this.instance;
  }

  /** The /CustomName currently published ('' = none). */
  get customName(): string {
    return this.name;
  }

  /**
   * Publish a new state: every path is recomputed, compared with what is on the bus, and the changes go out
   * in one ItemsChanged. No-op after close().
   */
  update(
    state: BatteryState,
    extras: BatteryInfoExtras = {},
    extraValues: Readonly<Record<string, DbusValue>> = {},
  ): void {
    const service = this.service;
    if (!service || this.closed) return;
    const values = toDbusValues(state, {
      ...extras,
      processName: this.opts.processName,
      processVersion: this.opts.processVersion,
      productId: this.opts.productId,
      // The instance changes only through re-registration, never in a plain update.
      deviceInstance: this.deviceInstance,
      customName: this.name,
      cellCount: this.opts.cellCount,
    });
    if (this.opts.bankMember) for (const p of BANK_MEMBER_INVALID) values[p] = undefined;
    service.update({ ...values, ...extraValues });
  }

  /**
   * `listener` runs once when this service can no longer be on the bus: the bus connection died, or the name
   * could not be claimed again after a re-registration. The composition root should exit non-zero.
   */
  onBusLost(listener: (reason: Error) => void): void {
    if (this.fatalReason) listener(this.fatalReason);
    else this.fatalListeners.push(listener);
  }

  /** Resolves when a re-registration under way has finished (for tests and orderly shutdown). */
  async settled(): Promise<void> {
    await this.settings?.settled();
    await this.reregistering;
  }

  /** Publish /Connected = 0, then release the name and disconnect (clean TERM). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reregistering;
    this.service?.set('/Connected', 0);
    await this.settings?.close();
    if (this.service) await this.service.close();
    else this.connection.close();
  }

  private async start(): Promise<void> {
    const { logger } = this.opts;
    this.settings = await DeviceSettings.start({
      connection: this.connection,
      uniqueId: `batterybank_${this.opts.id}`,
      deviceClass: DEVICE_CLASS,
      preferredInstance: this.opts.deviceInstance,
      logger,
      onInstanceChanged: (instance) => this.onInstanceChanged(instance),
      onCustomNameChanged: (name) => this.onCustomNameChanged(name),
      ...(this.opts.customName ? { defaultCustomName: this.opts.customName } : {}),
    });
    if (this.settings.available) {
      logger.info(`localsettings granted ${DEVICE_CLASS}:${this.instance}`);
    } else {
      logger.info(`no localsettings: using configured instance ${this.instance}`);
    }
    const initial: Record<string, DbusValue> = {
      '/Mgmt/ProcessName': this.opts.processName,
      '/Mgmt/ProcessVersion': this.opts.processVersion,
      '/DeviceInstance': this.instance,
      '/ProductId': this.opts.productId,
      '/CustomName': this.name,
      '/Connected': 0, // until the first update() says otherwise
    };
    this.service = await BusItemService.create({
      connection: this.connection,
      name: this.opts.serviceName,
      paths: { ...batteryPathTable(this.opts.cellCount), ...extraPathTable(this.opts.extraPaths) },
      initial,
      logger,
      propertiesChanged: this.opts.propertiesChanged ?? false,
      onWrite: (path, value) => {
        if (path === '/CustomName') this.onCustomNameWritten(typeof value === 'string' ? value : '');
      },
    });
    logger.info(`registered ${this.opts.serviceName} as ${DEVICE_CLASS}:${this.deviceInstance}`);
  }

  private onInstanceChanged(instance: number): void {
    this.instance = instance;
    const service = this.service;
    // Before the service exists the new instance is simply the one it will be created with.
    if (!service || this.closed) return;
    this.reregistering = this.reregistering.then(async () => {
      if (this.closed || service.get('/DeviceInstance') === instance) return;
      this.opts.logger.info(`VRM instance is now ${instance}: re-registering ${this.opts.serviceName}`);
      try {
        await service.reregister({ '/DeviceInstance': instance });
      } catch (err) {
        this.fatal(new Error(`re-registration of ${this.opts.serviceName} failed: ${errorMessage(err)}`));
      }
    });
  }

  private onCustomNameChanged(name: string): void {
    this.name = name;
    this.service?.set('/CustomName', name);
  }

  private onCustomNameWritten(name: string): void {
    this.name = name;
    const settings = this.settings;
    if (!settings) return;
    void settings.writeCustomName(name).then((saved) => {
      if (!saved && !settings.available) this.opts.logger.info(`CustomName "${name}" kept until localsettings appears`);
    });
  }

  private fatal(reason: Error): void {
    if (this.closed || this.fatalReason) return;
    this.fatalReason = reason;
    this.opts.logger.error(`D-Bus: ${reason.message}`);
    for (const listener of this.fatalListeners.splice(0)) listener(reason);
  }
}
