/** A scriptable BleLink for unit tests: connects instantly (or fails / hangs), records writes, lets tests notify. */
import { LinkError } from '../../src/domain/errors.js';
import type {
  BleAdvertisement,
  BleCharacteristicInfo,
  BleEvent,
  BleLink,
  BlePeer,
} from '../../src/links/ble/ble-link.js';

export class FakePeer implements BlePeer {
  readonly writes: Uint8Array[] = [];
  connected = true;
  private notifyListener: ((v: Uint8Array) => void) | undefined;
  private readonly disconnectListeners: ((r: string) => void)[] = [];
  /** Called with each write (e.g. to answer it). */
  onWrite: ((data: Uint8Array, peer: FakePeer) => void) | undefined;

  constructor(readonly address: string) {}

  async discover(_service: string, characteristics: readonly string[]): Promise<BleCharacteristicInfo[]> {
    return characteristics.map((uuid) => ({ uuid, properties: ['notify', 'write', 'writeWithoutResponse'] }));
  }

  async subscribe(_c: string, listener: (value: Uint8Array) => void): Promise<void> {
    this.notifyListener = listener;
  }

  async write(_c: string, data: Uint8Array): Promise<void> {
    if (!this.connected) throw new LinkError('not connected');
    this.writes.push(data);
    this.onWrite?.(data, this);
  }

  async disconnect(): Promise<void> {
    this.connected = false;
  }

  onDisconnect(listener: (reason: string) => void): void {
    this.disconnectListeners.push(listener);
  }

  notify(bytes: Uint8Array): void {
    if (this.connected) this.notifyListener?.(bytes);
  }

  /** The peer drops the connection. */
  remoteDisconnect(reason = 'HCI reason 0x13'): void {
    if (!this.connected) return;
    this.connected = false;
    for (const l of this.disconnectListeners) l(reason);
  }
}

export class FakeBle implements BleLink {
  readonly description = 'BLE fake';
  readonly peers: FakePeer[] = [];
  connectAttempts: number[] = [];
  /** Next attempts fail with this message (consumed one per attempt). */
  failures: string[] = [];
  /** Attempts hang until aborted or timed out. */
  hang = false;
  connectDelayMs = 0;
  onPeer: ((peer: FakePeer) => void) | undefined;
  advertisements: BleAdvertisement[] = [];

  async powerOn(): Promise<void> {}

  async scan(_o: { durationMs: number }, onDevice?: (a: BleAdvertisement) => void): Promise<BleAdvertisement[]> {
    for (const a of this.advertisements) onDevice?.(a);
    return this.advertisements;
  }

  async connect(address: string, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<BlePeer> {
    this.connectAttempts.push(Date.now());
    const failure = this.failures.shift();
    if (this.hang || this.connectDelayMs > 0) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(
          () => (this.hang ? reject(new LinkError(`connect to ${address} timed out`)) : resolve()),
          this.hang ? opts.timeoutMs : this.connectDelayMs,
        );
        opts.signal?.addEventListener('abort', () => {
          clearTimeout(t);
          reject(new LinkError('cancelled'));
        });
      });
    }
    if (failure !== undefined) throw new LinkError(failure);
    const peer = new FakePeer(address);
    this.peers.push(peer);
    this.onPeer?.(peer);
    return peer;
  }

  onEvent(_l: (e: BleEvent) => void): void {}

  async close(): Promise<void> {}

  get last(): FakePeer | undefined {
    return this.peers[this.peers.length - 1];
  }
}

export async function until(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Cut `bytes` into notifications of `size` bytes. */
export function chunks(bytes: Uint8Array, size = 20): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}
