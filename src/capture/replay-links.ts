/**
 * The links of a replay: the interfaces the real links implement (Link<Uint8Array>, CanLink, BleLink, the console
 * link of network batteries), played
 * by a recorded device (./replay-player.ts). Replay has no device, so this is the one place where a stand-in
 * takes a link's part outside the tests: everything above the link (framers, drivers, decoders, monitor,
 * D-Bus service) is the production code, unchanged.
 */
import { LinkError } from '../domain/errors.js';
import type { BleAdvertisement, BleCharacteristicInfo, BleEvent, BleLink, BlePeer } from '../links/ble/ble-link.js';
import { normalizeAddress } from '../links/ble/ble-link.js';
import type { CanFilter, CanFrame, CanLink } from '../links/can/can-frame.js';
import { matchesFilters } from '../links/can/can-frame.js';
import type { Link } from '../links/link.js';
import type { ReplayFrame } from './capture-reader.js';
import type { RequestPlayer, TimelinePlayer } from './replay-player.js';

/** A serial port of the capture: requests written are answered by the recording. */
export class ReplayByteLink implements Link<Uint8Array> {
  readonly description: string;
  private opened = false;
  private dataListener: ((m: Uint8Array) => void) | undefined;
  private readonly closeListeners: ((reason: Error) => void)[] = [];

  constructor(
    private readonly player: RequestPlayer,
    description: string,
  ) {
    this.description = `replay of ${description}`;
  }

  get isOpen(): boolean {
    return this.opened;
  }

  async open(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    this.player.attach({
      rx: (bytes) => this.dataListener?.(bytes),
      lost: () => this.lose('the recorded connection ended'),
    });
  }

  async send(message: Uint8Array): Promise<void> {
    if (!this.opened) throw new LinkError(`${this.description} is not open`);
    this.player.request(message);
  }

  async close(): Promise<void> {
    if (!this.opened) return;
    this.opened = false;
    this.player.detach();
  }

  onData(listener: (message: Uint8Array) => void): void {
    this.dataListener = listener;
  }

  onClose(listener: (reason: Error) => void): void {
    this.closeListeners.push(listener);
  }

  private lose(why: string): void {
    if (!this.opened) return;
    this.opened = false;
    this.player.detach();
    for (const l of this.closeListeners) {
      try {
        l(new LinkError(why));
      } catch {
        // listeners never throw into the player
      }
    }
  }
}

/** A CAN interface of the capture: the recorded frames arrive at their times; what is sent is only counted. */
export class ReplayCanLink implements CanLink {
  readonly description: string;
  readonly sent: CanFrame[] = [];
  private opened = false;
  private filters: readonly CanFilter[] = [];
  private dataListener: ((m: CanFrame) => void) | undefined;

  constructor(
    private readonly player: TimelinePlayer,
    description: string,
  ) {
    this.description = `replay of ${description}`;
  }

  get isOpen(): boolean {
    return this.opened;
  }

  setFilters(filters: readonly CanFilter[]): void {
    this.filters = filters;
  }

  async open(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    this.player.attach({
      rx: (_bytes, frame: ReplayFrame) => {
        if (frame.can && matchesFilters(frame.can, this.filters)) this.dataListener?.(frame.can);
      },
    });
  }

  async send(message: CanFrame): Promise<void> {
    if (!this.opened) throw new LinkError(`${this.description} is not open`);
    // Bounded: a keep-alive every second for hours must not grow without end.
    if (this.sent.length < 10_000) this.sent.push(message);
    this.player.request(message.data);
  }

  async close(): Promise<void> {
    if (!this.opened) return;
    this.opened = false;
    this.player.detach();
  }

  onData(listener: (message: CanFrame) => void): void {
    this.dataListener = listener;
  }

  onClose(_listener: (reason: Error) => void): void {
    // A recording never loses its interface.
  }
}

/** One Bluetooth adapter of the capture: connect(address) reaches the recorded BMS of that address. */
export class ReplayBleLink implements BleLink {
  readonly description = 'replay BLE adapter';
  private readonly players = new Map<string, RequestPlayer>();

  /** The recorded BMS at `address`. */
  add(address: string, player: RequestPlayer): void {
    this.players.set(normalizeAddress(address), player);
  }

  async powerOn(): Promise<void> {}

  async scan(): Promise<BleAdvertisement[]> {
    return [];
  }

  async connect(address: string): Promise<BlePeer> {
    const player = this.players.get(normalizeAddress(address));
    if (!player) throw new LinkError(`no BMS at ${address} in the capture`);
    return new ReplayBlePeer(normalizeAddress(address), player);
  }

  onEvent(_listener: (event: BleEvent) => void): void {}

  async close(): Promise<void> {}
}

class ReplayBlePeer implements BlePeer {
  private notify: ((value: Uint8Array) => void) | undefined;
  private disconnectListener: ((reason: string) => void) | undefined;
  private connected = true;

  constructor(
    readonly address: string,
    private readonly player: RequestPlayer,
  ) {
    player.attach({
      rx: (bytes) => this.notify?.(bytes),
      lost: () => {
        if (!this.connected) return;
        this.connected = false;
        this.player.detach();
        this.disconnectListener?.('the recorded connection ended');
      },
    });
  }

  async discover(_service: string, characteristics: readonly string[]): Promise<BleCharacteristicInfo[]> {
    return characteristics.map((uuid) => ({ uuid, properties: ['notify', 'write'] }));
  }

  async subscribe(_characteristic: string, listener: (value: Uint8Array) => void): Promise<void> {
    this.notify = listener;
  }

  async write(_characteristic: string, data: Uint8Array): Promise<void> {
    if (!this.connected) throw new LinkError(`${this.address}: not connected`);
    this.player.request(data);
  }

  async disconnect(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    this.player.detach();
  }

  onDisconnect(listener: (reason: string) => void): void {
    this.disconnectListener = listener;
  }
}

/**
 * A network battery's console of the capture (BlueNova's websocket): the recorded lines arrive at their times,
 * one message each, as the websocket delivered them. "Connected" when played, closed when the recording ends.
 */
export class ReplayConsoleLink {
  readonly description: string;
  private readonly decoder = new TextDecoder();
  private attached = false;
  private readonly dataListeners: ((message: string) => void)[] = [];
  private readonly openListeners: (() => void)[] = [];
  private readonly closeListeners: ((reason: Error) => void)[] = [];

  constructor(
    private readonly player: TimelinePlayer,
    description: string,
  ) {
    this.description = `replay of ${description}`;
  }

  get isOpen(): boolean {
    return this.attached;
  }

  connect(): void {
    if (this.attached) return;
    this.attached = true;
    this.player.attach({
      rx: (bytes) => {
        const line = this.decoder.decode(bytes);
        for (const l of this.dataListeners) {
          try {
            l(line);
          } catch {
            // listeners never throw into the player
          }
        }
      },
      lost: () => this.lose(),
    });
    for (const l of this.openListeners) l();
  }

  async close(): Promise<void> {
    if (!this.attached) return;
    this.attached = false;
    this.player.detach();
  }

  onData(listener: (message: string) => void): void {
    this.dataListeners.push(listener);
  }

  onOpen(listener: () => void): void {
    this.openListeners.push(listener);
  }

  onClose(listener: (reason: Error) => void): void {
    this.closeListeners.push(listener);
  }

  onRetry(_listener: (reason: Error, retryInMs: number) => void): void {
    // A recording is never retried.
  }

  private lose(): void {
    if (!this.attached) return;
    this.attached = false;
    this.player.detach();
    for (const l of this.closeListeners) {
      try {
        l(new LinkError('the recorded connection ended'));
      } catch {
        // listeners never throw into the player
      }
    }
  }
}
