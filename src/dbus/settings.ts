/**
 * Client of Victron's localsettings (com.victronenergy.settings) for one device (victron-dbus.md §4):
 *
 *   /Settings/Devices/<uniqueId>/ClassAndVrmInstance   s  "battery:<N>"  → /DeviceInstance
 *   /Settings/Devices/<uniqueId>/CustomName            s  ""             ↔ /CustomName
 *
 * AddSettings never overwrites an existing value, so it runs at every start (and whenever localsettings
 * (re)appears); localsettings picks the next free instance of the class when the preferred one is taken. The
 * user may change either setting in the GUI: localsettings then sends PropertiesChanged, which we follow.
 */
import * as dbus from 'dbus-next';
import { errorMessage } from '../domain/errors.js';
import type { Logger } from '../log.js';
import { BUSITEM_INTERFACE, type DbusConnection } from './connection.js';
import { fromVariant } from './values.js';

/** Victron's localsettings service. */
export const SETTINGS_SERVICE = 'com.victronenergy.settings';
const SETTINGS_INTERFACE = 'com.victronenergy.Settings';
const DEVICES_GROUP = '/Settings/Devices';

/** Options of DeviceSettings.start(). */
export interface DeviceSettingsOptions {
  connection: DbusConnection;
  /** The device's group under /Settings/Devices, e.g. "batterybank_house". */
  uniqueId: string;
  /** Device class of ClassAndVrmInstance ("battery"). */
  deviceClass: string;
  /** Instance asked for (the configured one); localsettings may grant another. */
  preferredInstance: number;
  /** Default of the CustomName setting (the configured `custom_name`); a name stored earlier wins. */
  defaultCustomName?: string;
  logger: Logger;
  /** The granted instance differs from the last one reported (registration, or a change in the GUI). */
  onInstanceChanged?: (instance: number) => void;
  /** The stored custom name differs from the last one reported. */
  onCustomNameChanged?: (name: string) => void;
}

/** Parse "battery:3" → 3 for the given class; undefined when it does not parse. */
export function parseClassAndVrmInstance(value: unknown, deviceClass: string): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^([^:]+):(\d+)$/.exec(value);
  if (!m || m[1] !== deviceClass) return undefined;
  return Number(m[2]);
}

/** Persistent device settings in localsettings. Create with {@link DeviceSettings.start}. */
export class DeviceSettings {
  private owner: string | undefined;
  private grantedInstance: number | undefined;
  private storedName: string | undefined;
  /** A name written while localsettings was absent: written on the next registration. */
  private pendingName: string | undefined;
  private registering: Promise<void> = Promise.resolve();
  private stopSignals: (() => void) | undefined;
  private closed = false;
  private readonly instancePath: string;
  private readonly namePath: string;
  private readonly rules: string[];

  private constructor(private readonly opts: DeviceSettingsOptions) {
    if (!/^[A-Za-z0-9_]+$/.test(opts.uniqueId)) throw new Error(`settings: invalid unique id ${opts.uniqueId}`);
    this.instancePath = `${DEVICES_GROUP}/${opts.uniqueId}/ClassAndVrmInstance`;
    this.namePath = `${DEVICES_GROUP}/${opts.uniqueId}/CustomName`;
    this.rules = [
      `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${SETTINGS_SERVICE}'`,
      `type='signal',sender='${SETTINGS_SERVICE}',interface='${BUSITEM_INTERFACE}',member='PropertiesChanged',path_namespace='${DEVICES_GROUP}/${opts.uniqueId}'`,
    ];
  }

  /**
   * Subscribe (once) to localsettings' appearance and to changes of our two settings, then register if
   * localsettings is on the bus. Resolves either way: check `available`. When localsettings appears later,
   * registration happens then and the granted instance is reported through onInstanceChanged.
   */
  static async start(opts: DeviceSettingsOptions): Promise<DeviceSettings> {
    const settings = new DeviceSettings(opts);
    const conn = opts.connection;
    settings.stopSignals = conn.onSignal((msg) => settings.onSignal(msg));
    for (const rule of settings.rules) await conn.addMatch(rule);
    settings.owner = await conn.getNameOwner(SETTINGS_SERVICE);
    if (settings.owner) await settings.register();
    return settings;
  }

  /** localsettings is on the bus and our settings are registered. */
  get available(): boolean {
    return this.owner !== undefined && this.grantedInstance !== undefined;
  }

  /** The instance localsettings granted; undefined until registered. */
  get instance(): number | undefined {
    return this.grantedInstance;
  }

  /** The stored custom name; undefined until registered. */
  get customName(): string | undefined {
    return this.storedName;
  }

  /** Resolves when any registration under way has finished (tests, orderly shutdown). */
  settled(): Promise<void> {
    return this.registering;
  }

  /**
   * Persist a custom name (the user wrote /CustomName on our service). Without localsettings the name is kept
   * and written when it appears. Resolves true when localsettings accepted it now.
   */
  async writeCustomName(name: string): Promise<boolean> {
    this.storedName = name;
    if (!this.owner) {
      this.pendingName = name;
      return false;
    }
    try {
      const reply = await this.opts.connection.call({
        destination: SETTINGS_SERVICE,
        path: this.namePath,
        interface: BUSITEM_INTERFACE,
        member: 'SetValue',
        signature: 'v',
        body: [stringVariant(name)],
      });
      const code = Number(reply.body[0]);
      if (code !== 0) this.opts.logger.warn(`localsettings refused CustomName "${name}" (SetValue returned ${code})`);
      return code === 0;
    } catch (err) {
      this.pendingName = name;
      this.opts.logger.warn(`cannot save CustomName: ${errorMessage(err)}`);
      return false;
    }
  }

  /** Drop the match rules and stop following changes (the connection stays open). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopSignals?.();
    for (const rule of this.rules) {
      try {
        await this.opts.connection.removeMatch(rule);
      } catch {
        // the connection may be gone already; the rules go with it
      }
    }
  }

  private register(): Promise<void> {
    this.registering = this.registering.then(() => this.doRegister());
    return this.registering;
  }

  private async doRegister(): Promise<void> {
    if (this.closed || !this.owner) return;
    const { connection, uniqueId, deviceClass, preferredInstance, logger } = this.opts;
    try {
      // Called on /Settings/Devices with relative paths: the group localsettings allocates instances in.
      const reply = await connection.call({
        destination: SETTINGS_SERVICE,
        path: DEVICES_GROUP,
        interface: SETTINGS_INTERFACE,
        member: 'AddSettings',
        signature: 'aa{sv}',
        body: [
          [
            {
              path: stringVariant(`${uniqueId}/ClassAndVrmInstance`),
              default: stringVariant(`${deviceClass}:${preferredInstance}`),
            },
            {
              path: stringVariant(`${uniqueId}/CustomName`),
              default: stringVariant(this.opts.defaultCustomName ?? ''),
            },
          ],
        ],
      });
      const results = (reply.body[0] ?? []) as Record<string, dbus.Variant>[];
      const [instanceResult, nameResult] = results;
      const errorOf = (r: Record<string, dbus.Variant> | undefined) => (r?.error ? fromVariant(r.error) : undefined);
      if (errorOf(instanceResult) !== 0 || errorOf(nameResult) !== 0) {
        logger.warn(
          `localsettings AddSettings errors: ClassAndVrmInstance ${String(errorOf(instanceResult))}, CustomName ${String(errorOf(nameResult))}`,
        );
      }
      const instance = parseClassAndVrmInstance(
        instanceResult?.value ? fromVariant(instanceResult.value) : undefined,
        deviceClass,
      );
      if (instance === undefined) {
        logger.warn(`localsettings returned no usable ${this.instancePath}`);
      } else {
        this.acceptInstance(instance);
      }
      const name = nameResult?.value ? fromVariant(nameResult.value) : undefined;
      if (this.pendingName !== undefined) {
        const pending = this.pendingName;
        this.pendingName = undefined;
        if (pending !== name) await this.writeCustomName(pending);
      } else if (typeof name === 'string') {
        this.acceptName(name);
      }
    } catch (err) {
      logger.warn(`localsettings registration failed: ${errorMessage(err)}`);
    }
  }

  private acceptInstance(instance: number): void {
    if (instance === this.grantedInstance) return;
    this.grantedInstance = instance;
    this.opts.onInstanceChanged?.(instance);
  }

  private acceptName(name: string): void {
    if (name === this.storedName) return;
    this.storedName = name;
    this.opts.onCustomNameChanged?.(name);
  }

  private onSignal(msg: dbus.Message): void {
    if (this.closed) return;
    if (msg.member === 'NameOwnerChanged' && msg.interface === 'org.freedesktop.DBus') {
      const [name, , newOwner] = msg.body as [string, string, string];
      if (name !== SETTINGS_SERVICE) return;
      if (newOwner) {
        this.opts.logger.info('localsettings appeared: registering device settings');
        this.owner = newOwner;
        void this.register();
      } else {
        this.opts.logger.warn('localsettings left the bus');
        this.owner = undefined;
      }
      return;
    }
    if (msg.member !== 'PropertiesChanged' || msg.interface !== BUSITEM_INTERFACE) return;
    if (!this.owner || msg.sender !== this.owner) return;
    const changes = (msg.body[0] ?? {}) as Record<string, dbus.Variant>;
    if (!changes.Value) return; // entries without Value are ignored, like velib does
    const value = fromVariant(changes.Value);
    if (msg.path === this.instancePath) {
      const instance = parseClassAndVrmInstance(value, this.opts.deviceClass);
      if (instance !== undefined) this.acceptInstance(instance);
    } else if (msg.path === this.namePath && typeof value === 'string') {
      this.acceptName(value);
    }
  }
}

function stringVariant(s: string): dbus.Variant {
  return new dbus.Variant('s', s);
}
