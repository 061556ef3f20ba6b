/**
 * Runs a family simulator as a BLE peripheral with @stoprocent/bleno (a dev dependency: tests and the lab only).
 * Writes to the family's write characteristic go to the simulator; what it sends goes out as notifications of
 * the notify characteristic, cut to the negotiated size (20 bytes at the default ATT MTU), like a real BMS.
 *
 *   simulator.attach(transport) ◄── write (FF02 / FFE1 / FFF2)      transport.send(bytes) ──► notify chunks
 *
 * Controller: a kernel HCI device (`deviceId`) or HCI over a UART (`uartPort`, e.g. a btvirt pty).
 */
import type { BleGattProfile } from '../links/ble/ble-link.js';

/** What a family simulator needs of its transport (the same shape as the pty one). */
export interface BleSimTransport {
  send(bytes: Uint8Array): unknown;
  onData(listener: (chunk: Uint8Array) => void): void;
}

export interface BleSimDevice {
  attach(transport: BleSimTransport): void;
  detach(): void;
}

export interface BlePeripheralOptions {
  name: string;
  profile: BleGattProfile;
  uartPort?: string | undefined;
  deviceId?: number | undefined;
  /** Largest notification, bytes (default 20 — the default ATT MTU minus 3 — or less if the central allows less). */
  maxChunk?: number | undefined;
}

type Bleno = import('@stoprocent/bleno').Bleno;

/** A running simulated peripheral. */
export class BlePeripheral {
  /** Connections accepted / ended so far. */
  accepted = 0;
  disconnected = 0;
  private notify: ((data: Buffer) => void) | undefined;
  private readonly listeners: ((chunk: Uint8Array) => void)[] = [];
  private stopped = false;

  private constructor(
    private readonly bleno: Bleno,
    private readonly opts: BlePeripheralOptions,
    private readonly device: BleSimDevice,
  ) {}

  /** Start advertising `opts.name` with the family's service and serve `device`. */
  static async start(opts: BlePeripheralOptions, device: BleSimDevice): Promise<BlePeripheral> {
    const mod = (await import('@stoprocent/bleno')) as unknown as {
      default?: typeof import('@stoprocent/bleno');
    } & typeof import('@stoprocent/bleno');
    // Under Vite's interop the namespace carries everything; under plain Node (the CLI, bench) only
    // `withBindings` is a named export and Characteristic / PrimaryService live on the default export.
    const lib = typeof mod.Characteristic === 'function' ? mod : (mod.default as typeof import('@stoprocent/bleno'));
    const bleno =
      opts.uartPort !== undefined
        ? lib.withBindings('hci', {
            hciDriver: 'uart',
            bindParams: { uart: { port: opts.uartPort, baudRate: 1_000_000 } },
          })
        : lib.withBindings('hci', { deviceId: opts.deviceId ?? 0 });
    const p = new BlePeripheral(bleno, opts, device);
    await p.setUp(lib);
    return p;
  }

  private async setUp(lib: typeof import('@stoprocent/bleno')): Promise<void> {
    const { bleno, opts } = this;
    const { service, notify, write } = opts.profile;
    const onWrite = (data: Buffer) => {
      const bytes = new Uint8Array(data);
      for (const l of this.listeners) l(bytes);
    };
    const subscribe = (maxValueSize: number, update: (data: Buffer) => void) => {
      const max = Math.max(1, Math.min(opts.maxChunk ?? 20, maxValueSize));
      this.notify = (data) => {
        for (let at = 0; at < data.length; at += max) update(data.subarray(at, at + max));
      };
    };
    const characteristics =
      notify === write
        ? [
            new lib.Characteristic({
              uuid: notify,
              properties: ['notify', 'write', 'writeWithoutResponse'],
              onSubscribe: (_h, size, update) => subscribe(size, update),
              onUnsubscribe: () => {
                this.notify = undefined;
              },
              onWriteRequest: (_h, data, _o, _w, cb) => {
                cb(lib.Characteristic.RESULT_SUCCESS);
                onWrite(data);
              },
            }),
          ]
        : [
            new lib.Characteristic({
              uuid: notify,
              properties: ['notify'],
              onSubscribe: (_h, size, update) => subscribe(size, update),
              onUnsubscribe: () => {
                this.notify = undefined;
              },
            }),
            new lib.Characteristic({
              uuid: write,
              properties: ['write', 'writeWithoutResponse'],
              onWriteRequest: (_h, data, _o, _w, cb) => {
                cb(lib.Characteristic.RESULT_SUCCESS);
                onWrite(data);
              },
            }),
          ];
    bleno.on('accept', () => {
      this.accepted++;
    });
    bleno.on('disconnect', () => {
      this.disconnected++;
      this.notify = undefined;
      if (!this.stopped) bleno.startAdvertising(opts.name, [service]);
    });
    await bleno.waitForPoweredOnAsync(10_000);
    await bleno.setServicesAsync([new lib.PrimaryService({ uuid: service, characteristics })]);
    await bleno.startAdvertisingAsync(opts.name, [service]);
    this.device.attach({
      send: (bytes) => this.notify?.(Buffer.from(bytes)),
      onData: (listener) => {
        this.listeners.push(listener);
      },
    });
  }

  /** The controller's address (lower case). */
  get address(): string {
    return String(this.bleno.address).toLowerCase();
  }

  /** Drop the current connection from the peripheral side (the central sees a remote disconnect). */
  disconnect(): void {
    this.bleno.disconnect();
  }

  /** Stop serving and advertising. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.device.detach();
    try {
      this.bleno.disconnect();
      // A controller that is gone never confirms: do not wait for it.
      await Promise.race([
        this.bleno.stopAdvertisingAsync().catch(() => undefined),
        new Promise((r) => setTimeout(r, 500)),
      ]);
      this.bleno.stop();
    } catch {
      // best effort
    }
  }
}
