/**
 * CanLink over a Waveshare USB-CAN-A adapter: a CH340 serial port at 2 000 000 Bd speaking the framing of
 * usbcan-a-protocol.ts. On open it sends the setup command for the bit rate (250 or 500 kbit/s for batteries),
 * then frames flow both ways. The serial side (unplug, EIO, reopen) is SerialLink's.
 */
import { errorMessage, LinkError } from '../../domain/errors.js';
import type { Link } from '../link.js';
import { SerialLink } from '../serial-link.js';
import { type CanFilter, type CanFrame, type CanLink, checkCanFrame, matchesFilters } from './can-frame.js';
import {
  decodeUsbCanFrame,
  encodeSetup,
  encodeVariable,
  extractUsbCanFrames,
  USBCAN_A_BAUD,
  USBCAN_SPEEDS,
} from './usbcan-a-protocol.js';

export interface UsbCanALinkOptions {
  /** Serial device, e.g. `/dev/ttyUSB0`. */
  path: string;
  /** CAN bit rate, default 500 000 (Pylon, Deye, BYD); 250 000 for some packs. */
  bitrate?: number;
  /** Serial speed, default 2 000 000. */
  baudRate?: number;
  filters?: readonly CanFilter[];
  /** The byte link to use instead of a SerialLink on `path` (tests). */
  byteLink?: Link<Uint8Array>;
}

/** Longest undecodable tail kept between reads (a frame is at most 20 bytes). */
const MAX_PENDING = 64;

export class UsbCanALink implements CanLink {
  readonly description: string;
  readonly bitrate: number;
  private readonly bytes: Link<Uint8Array>;
  private filters: readonly CanFilter[];
  private pending: Uint8Array = new Uint8Array(0);
  private dataListener: ((frame: CanFrame) => void) | undefined;
  private readonly closeListeners: ((reason: Error) => void)[] = [];

  constructor(opts: UsbCanALinkOptions) {
    this.bitrate = opts.bitrate ?? 500_000;
    if (!USBCAN_SPEEDS.has(this.bitrate)) {
      throw new RangeError(`USB-CAN-A bit rate ${this.bitrate} is not supported (250000 or 500000 for batteries)`);
    }
    this.bytes = opts.byteLink ?? new SerialLink({ path: opts.path, baudRate: opts.baudRate ?? USBCAN_A_BAUD });
    this.filters = opts.filters ?? [];
    this.description = `USB-CAN-A ${this.bytes.description.replace(/^Serial /, '')} ${this.bitrate / 1000} kbit/s`;
    this.bytes.onData((chunk) => this.receive(chunk));
    this.bytes.onClose((reason) => {
      this.pending = new Uint8Array(0);
      for (const l of this.closeListeners) {
        try {
          l(reason);
        } catch {
          // a listener's failure must not break the link
        }
      }
    });
  }

  get isOpen(): boolean {
    return this.bytes.isOpen;
  }

  async open(): Promise<void> {
    if (this.bytes.isOpen) return;
    this.pending = new Uint8Array(0);
    await this.bytes.open();
    try {
      await this.bytes.send(encodeSetup(this.bitrate));
    } catch (e) {
      await this.bytes.close();
      throw e instanceof LinkError ? e : new LinkError(`USB-CAN-A setup failed: ${errorMessage(e)}`);
    }
  }

  async send(frame: CanFrame): Promise<void> {
    try {
      checkCanFrame(frame);
    } catch (e) {
      throw new LinkError(errorMessage(e));
    }
    await this.bytes.send(encodeVariable(frame));
  }

  close(): Promise<void> {
    this.pending = new Uint8Array(0);
    return this.bytes.close();
  }

  setFilters(filters: readonly CanFilter[]): void {
    this.filters = [...filters];
  }

  onData(listener: (frame: CanFrame) => void): void {
    this.dataListener = listener;
  }

  onClose(listener: (reason: Error) => void): void {
    this.closeListeners.push(listener);
  }

  private receive(chunk: Uint8Array): void {
    let buf: Uint8Array;
    if (this.pending.length === 0) buf = chunk;
    else {
      buf = new Uint8Array(this.pending.length + chunk.length);
      buf.set(this.pending);
      buf.set(chunk, this.pending.length);
    }
    const { frames, rest } = extractUsbCanFrames(buf);
    this.pending = rest.length > MAX_PENDING ? rest.slice(rest.length - MAX_PENDING) : rest;
    for (const raw of frames) {
      const frame = decodeUsbCanFrame(raw);
      if (!matchesFilters(frame, this.filters)) continue;
      try {
        this.dataListener?.(frame);
      } catch {
        // the receiver's failure must not break the link
      }
    }
  }
}
