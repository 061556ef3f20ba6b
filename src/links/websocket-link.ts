/**
 * A text link over a websocket client (npm `ws`): one text message in = one message out to the receiver.
 * Built for consoles that push lines (BlueNova: `ws://<battery>:9000/ws/`), so besides the plain Link<string>
 * calls it can keep itself connected:
 *
 *   connect() ─► attempt ─ok─► open ── message ─► onData (watchdog re-armed)
 *                  │            │ drop / no data for noDataTimeoutMs / server close
 *                  ▼            ▼
 *              wait backoff[i] (i = failures since a connection that delivered data) ─► attempt …
 *
 * The default back-off is the BlueNova monitor's: 1, 1, 2, 2, 3, 3, 5, 5, 10, 10, 30, 60 s, then 60 s on.
 * It starts over only after a connection that delivered data, so a battery that accepts and stays silent
 * is not hammered. Nothing escapes a callback; close() ends every timer and socket.
 */
import type WebSocket from 'ws';
import { errorMessage, LinkError } from '../domain/errors.js';
import type { Link } from './link.js';

export const DEFAULT_BACKOFF_MS: readonly number[] = [1, 1, 2, 2, 3, 3, 5, 5, 10, 10, 30, 60].map((s) => s * 1000);

export interface WebSocketLinkOptions {
  /** `ws://host:port/path`. */
  url: string;
  /** Give up an attempt after this long, ms (default 5000). */
  connectTimeoutMs?: number;
  /** Drop an open connection that delivered nothing for this long, ms (default 30 000; 0 = never). */
  noDataTimeoutMs?: number;
  /** Waits between reconnect attempts, ms; the last repeats (default {@link DEFAULT_BACKOFF_MS}). */
  backoffMs?: readonly number[];
  /** Wait for the server's closing handshake this long before the socket is destroyed, ms (default 1000). */
  closeTimeoutMs?: number;
}

/**
 * What a driver of a console-pushing battery needs of its link: a WebSocketLink, or a recorded console in a
 * replay (src/capture/replay-links.ts).
 */
export type ConsoleLink = Pick<
  WebSocketLink,
  'description' | 'connect' | 'close' | 'onData' | 'onOpen' | 'onClose' | 'onRetry'
>;

export class WebSocketLink implements Link<string> {
  readonly description: string;
  readonly url: string;
  private readonly connectTimeoutMs: number;
  private readonly noDataTimeoutMs: number;
  private readonly backoff: readonly number[];
  private readonly closeTimeoutMs: number;

  private ws: WebSocket | undefined;
  private opening: Promise<void> | undefined;
  /** Bumped by close(): late events of older sockets and attempts are ignored. */
  private generation = 0;
  private keep = false;
  private failures = 0;
  private delivered = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly dataListeners: ((message: string) => void)[] = [];
  private readonly closeListeners: ((reason: Error) => void)[] = [];
  private readonly openListeners: (() => void)[] = [];
  private readonly retryListeners: ((reason: Error, retryInMs: number) => void)[] = [];

  constructor(opts: WebSocketLinkOptions) {
    this.url = opts.url;
    this.description = `Websocket ${opts.url}`;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.noDataTimeoutMs = opts.noDataTimeoutMs ?? 30_000;
    const backoff = opts.backoffMs ?? DEFAULT_BACKOFF_MS;
    if (backoff.length === 0 || backoff.some((ms) => !(ms >= 0))) {
      throw new RangeError('backoffMs must be a non-empty list of waits ≥ 0');
    }
    this.backoff = backoff;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 1000;
  }

  get isOpen(): boolean {
    return this.ws !== undefined;
  }

  /** The wait before the next attempt after `failures` failed ones (1 = the first wait). */
  backoffAfter(failures: number): number {
    const i = Math.min(Math.max(failures, 1), this.backoff.length) - 1;
    return this.backoff[i] as number;
  }

  /** One connection attempt. Resolves when open; rejects with a LinkError. */
  open(): Promise<void> {
    if (this.ws !== undefined) return Promise.resolve();
    if (this.opening !== undefined) return this.opening;
    const attempt = this.attempt(this.generation).finally(() => {
      if (this.opening === attempt) this.opening = undefined;
    });
    this.opening = attempt;
    return attempt;
  }

  /** Keep connected from now on: connect, and after every failure or drop wait the back-off and retry. */
  connect(): void {
    if (this.keep) return;
    this.keep = true;
    this.tryNow();
  }

  private tryNow(): void {
    this.retryTimer = undefined;
    if (!this.keep || this.ws !== undefined) return;
    this.open().catch((e: unknown) => {
      this.scheduleRetry(e instanceof Error ? e : new LinkError(errorMessage(e)));
    });
  }

  private scheduleRetry(reason: Error): void {
    if (!this.keep || this.retryTimer !== undefined) return;
    this.failures++;
    const wait = this.backoffAfter(this.failures);
    for (const l of this.retryListeners) safely(() => l(reason, wait));
    this.retryTimer = setTimeout(() => this.tryNow(), wait);
  }

  private async attempt(generation: number): Promise<void> {
    // `ws` loads with the first connection: a service without network batteries never carries it.
    const WebSocketClass = (await import('ws')).default;
    if (generation !== this.generation) throw new LinkError(`${this.url} was closed while connecting`);
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let ws: WebSocket;
      try {
        ws = new WebSocketClass(this.url, { handshakeTimeout: this.connectTimeoutMs, perMessageDeflate: false });
      } catch (e) {
        reject(new LinkError(`cannot connect to ${this.url}: ${errorMessage(e)}`, { cause: e }));
        return;
      }
      let guard: NodeJS.Timeout | undefined;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        ws.terminate();
        reject(new LinkError(`cannot connect to ${this.url}: ${e.message}`, { cause: e }));
      };
      // ws's handshakeTimeout covers the HTTP upgrade; this also covers a TCP connect that never completes.
      guard = setTimeout(
        () => fail(new Error(`no connection within ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
      // An 'error' listener stays for the socket's whole life: ws emits errors after close too.
      ws.on('error', (e: Error) => {
        if (!settled) fail(e);
        else this.lost(ws, new LinkError(`${this.description}: ${e.message}`, { cause: e }));
      });
      ws.on('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode} instead of a websocket`)));
      ws.on('close', (code: number, why: Buffer) => {
        if (!settled) fail(new Error(`closed during the handshake (${code})`));
        else
          this.lost(
            ws,
            new LinkError(
              `${this.description}: closed by the server (${code}${why.length ? ` ${why.toString()}` : ''})`,
            ),
          );
      });
      ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
        if (this.ws !== ws) return;
        this.armWatchdog(ws);
        this.delivered = true;
        const text = isBinary ? '' : rawToString(data);
        if (text === '') return;
        for (const l of this.dataListeners) safely(() => l(text));
      });
      ws.on('open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        if (generation !== this.generation) {
          // close() came while connecting: honour it, with a clean closing handshake (close() waits for it).
          void closeSocket(ws, this.closeTimeoutMs).then(() =>
            reject(new LinkError(`${this.url} was closed while connecting`)),
          );
          return;
        }
        this.ws = ws;
        this.delivered = false;
        this.armWatchdog(ws);
        for (const l of this.openListeners) safely(l);
        resolve();
      });
    });
  }

  private armWatchdog(ws: WebSocket): void {
    if (this.noDataTimeoutMs <= 0) return;
    if (this.watchdog !== undefined) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      ws.terminate();
      this.lost(ws, new LinkError(`${this.description}: no data for ${this.noDataTimeoutMs / 1000} s`));
    }, this.noDataTimeoutMs);
  }

  /** The open socket went away without close(): tell the owner once, then (when kept) retry. */
  private lost(ws: WebSocket, reason: Error): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    if (this.watchdog !== undefined) clearTimeout(this.watchdog);
    this.watchdog = undefined;
    if (this.delivered) this.failures = 0;
    for (const l of this.closeListeners) safely(() => l(reason));
    this.scheduleRetry(reason);
  }

  send(message: string): Promise<void> {
    const ws = this.ws;
    if (ws === undefined) return Promise.reject(new LinkError(`${this.description} is not open`));
    return new Promise<void>((resolve, reject) => {
      try {
        ws.send(message, (err) =>
          err ? reject(new LinkError(`${this.description}: send failed: ${err.message}`, { cause: err })) : resolve(),
        );
      } catch (e) {
        reject(new LinkError(`${this.description}: send failed: ${errorMessage(e)}`, { cause: e }));
      }
    });
  }

  /** Stop reconnecting and close the socket (a clean closing handshake, bounded). Never rejects. */
  async close(): Promise<void> {
    this.generation++;
    this.keep = false;
    this.failures = 0;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.watchdog !== undefined) clearTimeout(this.watchdog);
    this.watchdog = undefined;
    const ws = this.ws;
    this.ws = undefined;
    if (ws !== undefined) await closeSocket(ws, this.closeTimeoutMs);
    const opening = this.opening;
    if (opening !== undefined) await opening.catch(() => undefined);
  }

  onData(listener: (message: string) => void): void {
    this.dataListeners.push(listener);
  }

  onClose(listener: (reason: Error) => void): void {
    this.closeListeners.push(listener);
  }

  /** Called each time a connection opens. */
  onOpen(listener: () => void): void {
    this.openListeners.push(listener);
  }

  /** Called when an attempt failed or a connection dropped, with the wait before the next attempt. */
  onRetry(listener: (reason: Error, retryInMs: number) => void): void {
    this.retryListeners.push(listener);
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // A receiver's bug must not become an uncaught exception inside ws's event machinery.
  }
}

function rawToString(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function closeSocket(ws: WebSocket, timeoutMs: number): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const guard = setTimeout(() => {
      ws.terminate();
      resolve();
    }, timeoutMs);
    ws.once('close', () => {
      clearTimeout(guard);
      resolve();
    });
    try {
      ws.close(1000, 'bye');
    } catch {
      ws.terminate();
    }
  });
}
