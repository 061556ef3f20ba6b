/**
 * BleLink over @stoprocent/noble (raw HCI). Loaded lazily: the package is optional and only this backend needs it.
 *
 *   adapter { deviceId: 0 }            → kernel HCI socket hci0 (a dedicated adapter; races bluetoothd otherwise)
 *   adapter { uartPort: '/dev/ttyX' }  → HCI over a UART (USB-serial HCI dongles, the btvirt test lab)
 *
 * Connect: the peripheral must have been seen advertising (noble needs its address type), so an unknown address
 * is scanned for first, inside the same timeout. On timeout the attempt is cancelled (LE Create Connection Cancel).
 */
import type { Characteristic, Noble, Peripheral } from '@stoprocent/noble';
import { errorMessage, LinkError } from '../../domain/errors.js';
import {
  type BleAdvertisement,
  type BleCharacteristicInfo,
  type BleEvent,
  type BleLink,
  type BlePeer,
  normalizeAddress,
  normalizeUuid,
} from './ble-link.js';

/** Which controller noble drives. */
export interface NobleAdapterOptions {
  /** Kernel HCI device number (hci0 = 0). */
  deviceId?: number | undefined;
  /** HCI over a serial port instead (H4), e.g. a pty from the btvirt lab or a USB-serial HCI dongle. */
  uartPort?: string | undefined;
  /** UART baud rate (default 1 000 000). */
  uartBaudRate?: number | undefined;
}

type NobleModule = typeof import('@stoprocent/noble');

async function loadNoble(): Promise<NobleModule> {
  try {
    const mod = (await import('@stoprocent/noble')) as NobleModule & { default?: NobleModule };
    return typeof mod.withBindings === 'function' ? mod : (mod.default as NobleModule);
  } catch (e) {
    throw new LinkError(`BLE backend noble is not available (npm package @stoprocent/noble): ${errorMessage(e)}`);
  }
}

export class NobleBleLink implements BleLink {
  readonly description: string;
  private readonly opts: NobleAdapterOptions;
  private noble: Noble | undefined;
  private loading: Promise<Noble> | undefined;
  private readonly seen = new Map<string, Peripheral>();
  private readonly eventListeners: ((e: BleEvent) => void)[] = [];
  private scanners = 0;
  private closed = false;

  constructor(opts: NobleAdapterOptions = {}) {
    this.opts = opts;
    this.description =
      opts.uartPort !== undefined ? `BLE noble uart ${opts.uartPort}` : `BLE noble hci${opts.deviceId ?? 0}`;
  }

  onEvent(listener: (event: BleEvent) => void): void {
    this.eventListeners.push(listener);
  }

  private emit(level: BleEvent['level'], message: string): void {
    for (const l of this.eventListeners) {
      try {
        l({ level, message });
      } catch {
        // logging must not disturb the stack
      }
    }
  }

  private instance(): Promise<Noble> {
    if (this.closed) return Promise.reject(new LinkError(`${this.description} is closed`));
    this.loading ??= loadNoble().then((mod) => {
      const { uartPort, deviceId } = this.opts;
      const noble =
        uartPort !== undefined
          ? mod.withBindings('hci', {
              hciDriver: 'uart',
              bindParams: { uart: { port: uartPort, baudRate: this.opts.uartBaudRate ?? 1_000_000 } },
            })
          : mod.withBindings('hci', { deviceId: deviceId ?? 0 });
      noble.setMaxListeners(100);
      noble.on('stateChange', (s: string) => this.emit('info', `${this.description}: adapter ${s}`));
      noble.on('warning', (w: unknown) => this.emit('warn', `${this.description}: ${String(w)}`));
      noble.on('discover', (p: Peripheral) => {
        if (p.address) this.seen.set(p.address.toLowerCase(), p);
      });
      this.noble = noble;
      return noble;
    });
    return this.loading;
  }

  async powerOn(timeoutMs = 10_000): Promise<void> {
    const noble = await this.instance();
    if (noble.state === 'poweredOn') return;
    try {
      await noble.waitForPoweredOnAsync(timeoutMs);
    } catch (e) {
      throw new LinkError(`${this.description}: adapter not powered on (${noble.state}): ${errorMessage(e)}`);
    }
  }

  async scan(
    opts: { durationMs: number; serviceUuids?: readonly string[] | undefined },
    onDevice?: (adv: BleAdvertisement) => void,
  ): Promise<BleAdvertisement[]> {
    await this.powerOn();
    const noble = await this.instance();
    const found = new Map<string, BleAdvertisement>();
    const listener = (p: Peripheral) => {
      const adv = toAdvertisement(p);
      found.set(adv.address, adv);
      try {
        onDevice?.(adv);
      } catch {
        // a consumer's error is not a scan error
      }
    };
    noble.on('discover', listener);
    try {
      await this.startScanning(noble);
      await new Promise((r) => setTimeout(r, opts.durationMs));
    } finally {
      noble.removeListener('discover', listener);
      await this.stopScanning(noble);
    }
    const filter = (opts.serviceUuids ?? []).map(normalizeUuid);
    const all = [...found.values()];
    return filter.length === 0 ? all : all.filter((a) => a.serviceUuids.some((u) => filter.includes(u)));
  }

  private async startScanning(noble: Noble): Promise<void> {
    this.scanners++;
    if (this.scanners === 1) await noble.startScanningAsync([], true);
  }

  private async stopScanning(noble: Noble): Promise<void> {
    this.scanners = Math.max(0, this.scanners - 1);
    if (this.scanners === 0) await noble.stopScanningAsync().catch(() => undefined);
  }

  async connect(address: string, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<BlePeer> {
    const addr = normalizeAddress(address);
    const deadline = Date.now() + opts.timeoutMs;
    const { signal } = opts;
    if (signal?.aborted) throw new LinkError(`connect to ${addr} cancelled`);
    await this.powerOn(opts.timeoutMs);
    const noble = await this.instance();
    const peripheral = this.seen.get(addr) ?? (await this.waitForAdvertisement(noble, addr, deadline, signal));
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const cancel = () => {
      try {
        peripheral.cancelConnect();
      } catch {
        // nothing to cancel
      }
    };
    const stopped = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => {
          cancel();
          reject(new LinkError(`connect to ${addr} timed out after ${opts.timeoutMs} ms`));
        },
        Math.max(1, deadline - Date.now()),
      );
      onAbort = () => {
        cancel();
        reject(new LinkError(`connect to ${addr} cancelled`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([peripheral.connectAsync(), stopped]);
    } catch (e) {
      throw e instanceof LinkError ? e : new LinkError(`connect to ${addr} failed: ${errorMessage(e)}`);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
    return new NoblePeer(addr, peripheral);
  }

  /** Scan until `addr` advertises, the deadline passes or `signal` aborts. */
  private async waitForAdvertisement(
    noble: Noble,
    addr: string,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<Peripheral> {
    let listener: ((p: Peripheral) => void) | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const found = new Promise<Peripheral>((resolve, reject) => {
        listener = (p: Peripheral) => {
          if (p.address?.toLowerCase() === addr) resolve(p);
        };
        noble.on('discover', listener);
        timer = setTimeout(
          () => reject(new LinkError(`${addr} not found (not advertising, or out of range)`)),
          Math.max(1, deadline - Date.now()),
        );
        onAbort = () => reject(new LinkError(`connect to ${addr} cancelled`));
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      await this.startScanning(noble);
      return await found;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      if (listener) noble.removeListener('discover', listener);
      await this.stopScanning(noble);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const noble = this.noble;
    if (!noble) return;
    try {
      await noble.stopScanningAsync().catch(() => undefined);
      (noble as unknown as { stop?: () => void }).stop?.();
    } catch {
      // closing is best effort
    }
  }
}

function toAdvertisement(p: Peripheral): BleAdvertisement {
  const a = p.advertisement;
  return {
    address: (p.address || p.id).toLowerCase(),
    name: a?.localName ?? '',
    rssi: p.rssi,
    serviceUuids: (a?.serviceUuids ?? []).map(normalizeUuid),
    ...(a?.manufacturerData ? { manufacturerData: new Uint8Array(a.manufacturerData) } : {}),
    connectable: p.connectable !== false,
  };
}

class NoblePeer implements BlePeer {
  readonly address: string;
  private readonly peripheral: Peripheral;
  private readonly chars = new Map<string, Characteristic>();
  private readonly disconnectListeners: ((reason: string) => void)[] = [];
  private ended = false;
  private readonly onPeripheralDisconnect = (reason: unknown) => {
    if (this.ended) return;
    this.ended = true;
    for (const c of this.chars.values()) c.removeAllListeners('data');
    const text = typeof reason === 'number' ? `HCI reason 0x${reason.toString(16).padStart(2, '0')}` : String(reason);
    for (const l of this.disconnectListeners) {
      try {
        l(text);
      } catch {
        // listeners never throw into noble
      }
    }
  };

  constructor(address: string, peripheral: Peripheral) {
    this.address = address;
    this.peripheral = peripheral;
    peripheral.once('disconnect', this.onPeripheralDisconnect);
  }

  onDisconnect(listener: (reason: string) => void): void {
    this.disconnectListeners.push(listener);
  }

  async discover(service: string, characteristics: readonly string[]): Promise<BleCharacteristicInfo[]> {
    const svc = normalizeUuid(service);
    const wanted = characteristics.map(normalizeUuid);
    let found: Characteristic[];
    try {
      ({ characteristics: found } = await this.peripheral.discoverSomeServicesAndCharacteristicsAsync([svc], wanted));
    } catch (e) {
      throw new LinkError(`${this.address}: GATT discovery failed: ${errorMessage(e)}`);
    }
    for (const c of found) this.chars.set(normalizeUuid(c.uuid), c);
    const missing = wanted.filter((u) => !this.chars.has(u));
    if (missing.length > 0) {
      throw new LinkError(`${this.address}: service ${svc} lacks characteristic(s) ${missing.join(', ')}`);
    }
    return found.map((c) => ({ uuid: normalizeUuid(c.uuid), properties: [...c.properties] }));
  }

  private char(uuid: string): Characteristic {
    const c = this.chars.get(normalizeUuid(uuid));
    if (!c) throw new LinkError(`${this.address}: characteristic ${uuid} not discovered`);
    return c;
  }

  async subscribe(characteristic: string, listener: (value: Uint8Array) => void): Promise<void> {
    const c = this.char(characteristic);
    c.on('data', (data: Buffer) => {
      try {
        listener(new Uint8Array(data.buffer, data.byteOffset, data.length));
      } catch {
        // listeners never throw into noble
      }
    });
    try {
      await c.subscribeAsync();
    } catch (e) {
      throw new LinkError(`${this.address}: subscribe to ${characteristic} failed: ${errorMessage(e)}`);
    }
  }

  async write(characteristic: string, data: Uint8Array, withoutResponse: boolean): Promise<void> {
    if (this.ended) throw new LinkError(`${this.address}: not connected`);
    const c = this.char(characteristic);
    try {
      await c.writeAsync(Buffer.from(data), withoutResponse);
    } catch (e) {
      throw new LinkError(`${this.address}: write to ${characteristic} failed: ${errorMessage(e)}`);
    }
  }

  async disconnect(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.peripheral.removeListener('disconnect', this.onPeripheralDisconnect);
    for (const c of this.chars.values()) c.removeAllListeners('data');
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      // A vanished peer never confirms the disconnect: do not wait for it forever.
      await Promise.race([
        this.peripheral.disconnectAsync(),
        new Promise((r) => {
          timer = setTimeout(r, 2000);
        }),
      ]);
    } catch {
      // already gone
    } finally {
      clearTimeout(timer);
    }
  }
}
