/**
 * JK-B…A…S smart BMS over Bluetooth LE. Not polled: after 0x97 (device info) and 0x96 (settings, then a
 * stream of cell info records every ~0.5–1 s) the BMS keeps sending, and each cell info record is a snapshot.
 *
 *   connect ─► 0x97 ─► device info (picks JK02_24S / JK02_32S / JK04 from the hardware version)
 *           ─► 0x96 ─► settings, cell info, cell info, …           (a silent BMS: the link's no-data watchdog)
 *
 * The connection manager is the BleByteLink's (gate, timeout, back-off with jitter, watchdog, vesmart); this
 * driver reopens the link whenever it closes, forever. JK BLE streams, so it always keeps the connection
 * (`ble_mode = poll` is treated as keep-connected). JK04 (hardware 2.x/3.x, float values) cell info is decoded by
 * ./jk04-record.ts into voltage-only snapshots (no current, SoC or temperatures in JK04); its settings are ignored.
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { errorMessage, FrameError } from '../../domain/errors.js';
import type { BleByteLink } from '../../links/ble/ble-byte-link.js';
import { type BleDriverOptions, bleByteLink } from '../../links/ble/ble-driver-options.js';
import type { BleGattProfile } from '../../links/ble/ble-link.js';
import type { BmsDriver, DriverEvent, WireFrame } from '../driver.js';
import {
  decodeCellInfo,
  decodeDeviceInfo,
  decodeSettings,
  type Jk02DeviceInfo,
  Jk02RecordType,
  type Jk02Settings,
} from '../jk-modbus/jk02-record.js';
import { toSnapshot } from '../jk-modbus/protocol.js';
import { decodeJk04CellInfo, jk04ToSnapshot } from './jk04-record.js';
import { encodeCommand, JkBleCommand, JkBleFramer, type JkBleVariant, variantFromHardware } from './protocol.js';

export const JK_BLE_PROFILE: BleGattProfile = { service: 'ffe0', notify: 'ffe1', write: 'ffe1' };

export interface JkBleDriverOptions extends BleDriverOptions {
  /** How long to wait for the device info record before assuming JK02_24S, ms (default 3000). */
  deviceInfoTimeoutMs?: number | undefined;
  /** Layout when the device info does not come (default jk02-24s). */
  defaultVariant?: JkBleVariant | undefined;
}

export class JkBleDriver implements BmsDriver {
  readonly family = 'jk-ble';
  readonly link: BleByteLink;

  private readonly now: () => number;
  private readonly deviceInfoTimeoutMs: number;
  private readonly defaultVariant: JkBleVariant;
  private readonly framer = new JkBleFramer();
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private about: Jk02DeviceInfo | undefined;
  private settings: Jk02Settings | undefined;
  private variant: JkBleVariant | undefined;
  private deviceInfoWaiter: (() => void) | undefined;
  private lastDecodeError = '';
  private readonly snapshotListeners: ((s: BatterySnapshot) => void)[] = [];
  private readonly eventListeners: ((e: DriverEvent) => void)[] = [];
  private readonly frameListeners: ((f: WireFrame) => void)[] = [];

  constructor(
    opts: JkBleDriverOptions,
    link: BleByteLink = bleByteLink({ ...opts, mode: 'keep-connected' }, JK_BLE_PROFILE),
  ) {
    this.link = link;
    this.now = opts.now ?? Date.now;
    this.deviceInfoTimeoutMs = opts.deviceInfoTimeoutMs ?? 3000;
    this.defaultVariant = opts.defaultVariant ?? 'jk02-24s';
    link.onEvent((e) => this.emit(e.level, e.message));
    link.onData((chunk) => this.received(chunk));
    link.onClose(() => this.wake?.());
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    this.deviceInfoWaiter?.();
    await this.link.close();
    await this.loop;
  }

  onSnapshot(listener: (snapshot: BatterySnapshot) => void): void {
    this.snapshotListeners.push(listener);
  }

  onEvent(listener: (event: DriverEvent) => void): void {
    this.eventListeners.push(listener);
  }

  onFrame(listener: (frame: WireFrame) => void): void {
    this.frameListeners.push(listener);
  }

  /** Connect, start the stream, wait for the link to close; again, until stopped. */
  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.link.open();
        if (!this.running) break;
        this.framer.reset();
        const closed = new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        await this.send(encodeCommand(JkBleCommand.deviceInfo));
        if (this.variant === undefined) await this.waitForDeviceInfo();
        if (this.variant === undefined) {
          this.variant = this.defaultVariant;
          this.emit('warn', `no device info from the BMS: assuming layout ${this.variant}`);
        }
        await this.send(encodeCommand(JkBleCommand.cellInfo));
        await closed;
      } catch (e) {
        if (!this.running) break;
        this.emit('debug', `JK BLE: ${errorMessage(e)}`);
        // The link backs off between attempts; this only keeps a broken backend from spinning.
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 100);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      } finally {
        this.wake = undefined;
      }
    }
  }

  private waitForDeviceInfo(): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, this.deviceInfoTimeoutMs);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.deviceInfoWaiter = () => {
        this.deviceInfoWaiter = undefined;
        done();
      };
    });
  }

  private async send(bytes: Uint8Array): Promise<void> {
    this.tap('tx', bytes);
    await this.link.send(bytes);
  }

  private received(chunk: Uint8Array): void {
    let records: Uint8Array[];
    try {
      records = this.framer.push(chunk);
    } catch (e) {
      this.emit('error', `JK BLE framer: ${errorMessage(e)}`);
      return;
    }
    for (const record of records) {
      this.tap('rx', record);
      try {
        this.record(record);
        this.lastDecodeError = '';
      } catch (e) {
        const msg = errorMessage(e);
        this.emit(
          msg === this.lastDecodeError ? 'debug' : e instanceof FrameError ? 'warn' : 'error',
          `bad record: ${msg}`,
        );
        this.lastDecodeError = msg;
      }
    }
  }

  private record(raw: Uint8Array): void {
    switch (raw[4]) {
      case Jk02RecordType.deviceInfo: {
        const about = decodeDeviceInfo(raw);
        const variant = variantFromHardware(about.hardwareVersion);
        if (this.about?.serialNumber !== about.serialNumber || this.variant !== variant) {
          this.emit(
            'info',
            `BMS ${about.model} hw ${about.hardwareVersion} sw ${about.softwareVersion}, layout ${variant}`,
          );
        }
        this.about = about;
        this.variant = variant;
        this.deviceInfoWaiter?.();
        return;
      }
      case Jk02RecordType.settings:
        if (this.variant === 'jk04') return;
        this.settings = decodeSettings(raw);
        return;
      case Jk02RecordType.cellInfo: {
        const variant = this.variant ?? this.defaultVariant;
        const snapshot =
          variant === 'jk04'
            ? jk04ToSnapshot(decodeJk04CellInfo(raw), this.about, this.now())
            : toSnapshot(
                { status: decodeCellInfo(raw, variant), settings: this.settings, about: this.about },
                this.now(),
              );
        for (const l of this.snapshotListeners) {
          try {
            l(snapshot);
          } catch (e) {
            this.emit('error', `snapshot listener failed: ${errorMessage(e)}`);
          }
        }
        return;
      }
      default:
        this.emit('debug', `record type 0x${(raw[4] ?? 0).toString(16)} ignored`);
    }
  }

  private tap(direction: WireFrame['direction'], bytes: Uint8Array): void {
    for (const l of this.frameListeners) {
      try {
        l({ time: this.now(), direction, bytes });
      } catch {
        // telemetry must not disturb the stream
      }
    }
  }

  private emit(level: DriverEvent['level'], message: string): void {
    for (const l of this.eventListeners) {
      try {
        l({ level, message });
      } catch {
        // logging must not stop the driver
      }
    }
  }
}
