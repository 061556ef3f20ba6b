/**
 * A byte link over a serial device (USB-serial adapter, RS485 dongle, UART, or a pseudo-terminal in tests).
 *
 * Serial facts this class is built around (test-lab.md §1, DECISIONS.md D3):
 * - a vanished peer is reported either by a `'close'` event (with `disconnected`) or by nothing at all until
 *   the next write fails with EIO (then `'error'` and `'close'`, sometimes twice). So a write error is treated
 *   as a disconnect, and the owner must still run a reply timeout / watchdog of its own;
 * - a write callback on a port that has already closed never fires, so `send()` checks the state first and
 *   every pending send is rejected when the port goes away;
 * - after an unplug, `open()` fails with ENOENT until the device is back: the owner retries with back-off.
 */
import { basename } from 'node:path';
import { SerialPort } from 'serialport';
import { errorMessage, LinkError } from '../domain/errors.js';
import type { Link } from './link.js';
import { mainThreadBinding } from './serial-binding.js';

/** Reads and writes on the event loop instead of a pool thread (./serial-binding.ts). */
const BINDING = mainThreadBinding();

/** Options of {@link SerialLink}. */
export interface SerialLinkOptions {
  /** Device path, e.g. `/dev/ttyUSB0` (a symlink is fine). */
  path: string;
  /** Baud rate; 9600 unless the BMS was configured otherwise. */
  baudRate?: number;
}

/** Longest we wait for the OS to close a port before we consider it closed anyway. */
const CLOSE_GUARD_MS = 2000;

/** `Link<Uint8Array>` over the npm `serialport` package (8N1, no flow control). */
export class SerialLink implements Link<Uint8Array> {
  readonly description: string;
  readonly path: string;
  readonly baudRate: number;

  /** The open port; undefined while closed. Events of any other (older) port object are ignored. */
  private port: SerialPort | undefined;
  private opening: Promise<void> | undefined;
  /** Bumped by close(), so an open() that completes afterwards knows it is no longer wanted. */
  private generation = 0;
  private readonly dataListeners: ((message: Uint8Array) => void)[] = [];
  private readonly closeListeners: ((reason: Error) => void)[] = [];
  /** Rejecters of sends whose write callback has not fired yet. */
  private readonly pendingSends = new Set<(reason: Error) => void>();

  constructor(opts: SerialLinkOptions) {
    this.path = opts.path;
    this.baudRate = opts.baudRate ?? 9600;
    this.description = `Serial ${basename(opts.path)}`;
  }

  get isOpen(): boolean {
    return this.port !== undefined;
  }

  open(): Promise<void> {
    if (this.port !== undefined) return Promise.resolve();
    if (this.opening !== undefined) return this.opening;
    const generation = this.generation;
    const attempt = this.openPort(generation).finally(() => {
      if (this.opening === attempt) this.opening = undefined;
    });
    this.opening = attempt;
    return attempt;
  }

  private async openPort(generation: number): Promise<void> {
    let port: SerialPort;
    try {
      // SerialPort spreads its options over the detected binding, so `binding` replaces it (its type hides it).
      const options = { path: this.path, baudRate: this.baudRate, autoOpen: false, binding: BINDING };
      port = new SerialPort(options as ConstructorParameters<typeof SerialPort>[0]);
    } catch (e) {
      // Bad options (e.g. an unsupported baud rate) throw synchronously.
      throw new LinkError(`cannot open ${this.path}: ${errorMessage(e)}`, { cause: e });
    }
    this.attachHandlers(port);
    try {
      await new Promise<void>((resolve, reject) => {
        port.open((err) => (err ? reject(err) : resolve()));
      });
    } catch (e) {
      throw new LinkError(`cannot open ${this.path}: ${errorMessage(e)}`, { cause: e });
    }
    if (generation !== this.generation) {
      // close() was called while the OS was opening the device: honour it.
      await closePort(port);
      throw new LinkError(`${this.path} was closed while opening`);
    }
    this.port = port;
  }

  private attachHandlers(port: SerialPort): void {
    port.on('data', (chunk: Buffer) => {
      if (this.port !== port) return;
      const bytes = new Uint8Array(chunk);
      for (const listener of this.dataListeners) {
        try {
          listener(bytes);
        } catch {
          // A receiver's bug must not become an uncaught exception inside serialport's stream machinery.
        }
      }
    });
    // An 'error' listener must stay attached for the port's whole life: an EventEmitter 'error' without one
    // throws, and serialport can emit errors (EIO, EBADF) even after it has reported 'close'.
    port.on('error', (err: Error) => {
      this.lost(port, new LinkError(`${this.description}: ${err.message}`, { cause: err }));
    });
    port.on('close', (err?: Error) => {
      const why = err ? err.message : 'closed by the operating system';
      this.lost(port, new LinkError(`${this.description}: ${why}`, err ? { cause: err } : undefined));
    });
  }

  /** The current port went away without close(): forget it, fail pending sends, tell the owner once. */
  private lost(port: SerialPort, reason: Error): void {
    if (this.port !== port) return;
    this.port = undefined;
    this.failPendingSends(reason);
    void closePort(port);
    for (const listener of this.closeListeners) {
      try {
        listener(reason);
      } catch {
        // Same rule as for data: nothing escapes an event handler.
      }
    }
  }

  private failPendingSends(reason: Error): void {
    const rejecters = [...this.pendingSends];
    this.pendingSends.clear();
    for (const reject of rejecters) reject(reason);
  }

  send(message: Uint8Array): Promise<void> {
    const port = this.port;
    if (port === undefined) return Promise.reject(new LinkError(`${this.description} is not open`));
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (reason: Error) => {
        if (settled) return;
        settled = true;
        reject(reason);
      };
      this.pendingSends.add(fail);
      const data = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
      try {
        // The write callback fires once the bytes are in the kernel's tty buffer. We deliberately do not
        // call drain(): tcdrain() runs on a libuv pool thread and can block it forever on a pty nobody reads.
        port.write(data, (err) => {
          this.pendingSends.delete(fail);
          if (settled) return;
          if (err) {
            const reason = new LinkError(`${this.description}: write failed: ${err.message}`, { cause: err });
            fail(reason);
            // A failed write is how a silently vanished device shows itself: treat it as a disconnect.
            this.lost(port, reason);
            return;
          }
          settled = true;
          resolve();
        });
      } catch (e) {
        this.pendingSends.delete(fail);
        fail(new LinkError(`${this.description}: write failed: ${errorMessage(e)}`, { cause: e }));
      }
    });
  }

  async close(): Promise<void> {
    this.generation++;
    const port = this.port;
    this.port = undefined;
    this.failPendingSends(new LinkError(`${this.description} was closed`));
    if (port !== undefined) await closePort(port);
    // An open() still in flight closes its own port when it sees the new generation; wait for that, so that
    // after close() no handle of ours is left.
    const opening = this.opening;
    if (opening !== undefined) await opening.catch(() => undefined);
  }

  onData(listener: (message: Uint8Array) => void): void {
    this.dataListeners.push(listener);
  }

  onClose(listener: (reason: Error) => void): void {
    this.closeListeners.push(listener);
  }
}

/** Close a port, ignoring every error; resolves even if serialport never calls back. */
function closePort(port: SerialPort): Promise<void> {
  if (!port.isOpen) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const guard = setTimeout(resolve, CLOSE_GUARD_MS);
    try {
      port.close(() => {
        clearTimeout(guard);
        resolve();
      });
    } catch {
      clearTimeout(guard);
      resolve();
    }
  });
}
