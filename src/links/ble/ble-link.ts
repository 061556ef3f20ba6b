/**
 * Bluetooth LE, seen from a BMS driver: one adapter (`BleLink`) that scans and connects, and one connected
 * peripheral (`BlePeer`) whose GATT characteristics are discovered, subscribed and written. Backends: noble
 * (raw HCI, a dedicated adapter or a UART HCI controller, ./noble-link.ts); BlueZ over D-Bus is the production
 * default in DECISIONS.md D5 (not implemented yet). Knows nothing about any BMS.
 *
 *   BleLink.scan ─► advertisements          BleLink.connect(address) ─► BlePeer
 *   BlePeer.discover(service, [chars]) ─► subscribe(notify, listener) / write(char, bytes) ─► disconnect
 *
 * A BLE stack does not always report a vanished peer (no supervision timeout on some controllers, test-lab.md
 * §4): whoever uses a BlePeer watches for silence itself (./ble-byte-link.ts).
 */

/** One advertisement seen during a scan. */
export interface BleAdvertisement {
  /** `aa:bb:cc:dd:ee:ff`, lower case. */
  address: string;
  /** Advertised local name ('' when none). */
  name: string;
  rssi: number;
  /** Advertised 16/128-bit service UUIDs, lower case, short form when 16-bit (`ff00`). */
  serviceUuids: string[];
  /** Manufacturer-specific data (company id first), when advertised. */
  manufacturerData?: Uint8Array | undefined;
  connectable: boolean;
}

/** The adapter. */
export interface BleLink {
  /** For logs, e.g. `BLE noble hci0`. */
  readonly description: string;
  /** Wait until the adapter is powered on. Rejects with a LinkError after `timeoutMs`. */
  powerOn(timeoutMs?: number): Promise<void>;
  /**
   * Scan for `durationMs`; `onDevice` gets each advertisement as it arrives (repeats included). Resolves with
   * the last advertisement of each address. `serviceUuids` filters (empty: everything).
   */
  scan(
    opts: { durationMs: number; serviceUuids?: readonly string[] | undefined },
    onDevice?: (adv: BleAdvertisement) => void,
  ): Promise<BleAdvertisement[]>;
  /**
   * Connect to `address`. Rejects with a LinkError after `timeoutMs` or when `signal` aborts (the attempt is
   * cancelled either way).
   */
  connect(address: string, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<BlePeer>;
  /** Adapter-level events (state changes, warnings) for the log. */
  onEvent(listener: (event: BleEvent) => void): void;
  /** Release the adapter; idempotent, never rejects. */
  close(): Promise<void>;
}

export interface BleEvent {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

/** A characteristic found by discover(). */
export interface BleCharacteristicInfo {
  uuid: string;
  properties: readonly string[];
}

/** One connected peripheral. */
export interface BlePeer {
  readonly address: string;
  /** Discover `service` and the characteristics of it. Rejects with a LinkError when the service is missing. */
  discover(service: string, characteristics: readonly string[]): Promise<BleCharacteristicInfo[]>;
  /** Enable notifications of a discovered characteristic; `listener` gets each notification value. */
  subscribe(characteristic: string, listener: (value: Uint8Array) => void): Promise<void>;
  /** Write to a discovered characteristic (write command when `withoutResponse`). Rejects with a LinkError. */
  write(characteristic: string, data: Uint8Array, withoutResponse: boolean): Promise<void>;
  /** Disconnect; idempotent, never rejects. No onDisconnect call for it. */
  disconnect(): Promise<void>;
  /** The peer went away (remote disconnect, link loss that the stack noticed). Called at most once. */
  onDisconnect(listener: (reason: string) => void): void;
}

/** GATT layout of one BMS family. */
export interface BleGattProfile {
  service: string;
  notify: string;
  write: string;
}

/** Normalise a UUID: lower case, no dashes, 16-bit Bluetooth base UUIDs shortened (`0000ff00-…` → `ff00`). */
export function normalizeUuid(uuid: string): string {
  const u = uuid.toLowerCase().replace(/-/g, '').replace(/^0x/, '');
  if (u.length === 32 && u.startsWith('0000') && u.endsWith('00001000800000805f9b34fb')) return u.slice(4, 8);
  return u;
}

/** Normalise a MAC address: lower case with colons. Throws RangeError for something else. */
export function normalizeAddress(address: string): string {
  const hex = address.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length !== 12) throw new RangeError(`not a Bluetooth address: ${address}`);
  return hex.match(/../g)?.join(':') ?? hex;
}
