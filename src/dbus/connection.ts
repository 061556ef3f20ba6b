/**
 * One connection to the D-Bus system bus, with the dbus-next faults worked around (DECISIONS.md D2,
 * venus-platform.md §3, test-lab.md §2):
 *
 * - calls without an interface field (velib's VeDbusItemImport sends them) are answered as BusItem calls;
 * - every method call times out, because on a dead bus a pending call never settles;
 * - the death of the bus connection is detected on the private `_connection` ('end' / 'error'), because
 *   `MessageBus` itself emits nothing when the daemon goes away;
 * - match rules are added and removed by us (dbus-next's own refcounting never removes them).
 *
 * This module and its siblings are the only place that imports dbus-next.
 */
import type { EventEmitter } from 'node:events';
import * as dbus from 'dbus-next';
import { errorMessage, TimeoutError } from '../domain/errors.js';

/** The interface every Victron value object implements. */
export const BUSITEM_INTERFACE = 'com.victronenergy.BusItem';

/** Members velib and Qt answer without an interface field; we default those to BusItem. */
const BUSITEM_MEMBERS = new Set(['GetValue', 'GetText', 'SetValue', 'GetItems', 'GetDescription']);

const DBUS_NAME = 'org.freedesktop.DBus';
const DBUS_PATH = '/org/freedesktop/DBus';

/** Default timeout of every method call, ms (a dead bus never answers). */
export const DEFAULT_CALL_TIMEOUT_MS = 5000;

/** A method call, without the bookkeeping fields of a dbus-next Message. */
export interface MethodCall {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

/** Options of DbusConnection.open(). */
export interface OpenBusOptions {
  /** Bus address; when absent the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else the Venus default socket). */
  busAddress?: string;
  /** Timeout of every method call, ms. */
  callTimeoutMs?: number;
  /** How long to wait for the bus to accept the connection (the Hello reply), ms. */
  connectTimeoutMs?: number;
}

/** The parts of dbus-next's MessageBus its types leave out. */
interface BusInternals {
  name: string | null;
  _connection: EventEmitter & { stream?: { cork?: () => void; uncork?: () => void } };
  _methodReturnHandlers: Record<number, unknown>;
}

function internals(bus: dbus.MessageBus): BusInternals {
  return bus as unknown as BusInternals;
}

/**
 * An open bus connection. One connection hosts at most one exported service: two services on one
 * connection collide on object path `/` (dbus-serialbattery #410).
 */
export class DbusConnection {
  private lostReason: Error | undefined;
  private closing = false;
  private readonly lostListeners: ((reason: Error) => void)[] = [];
  /** Set by BusItemService so that a second service on this connection is refused. */
  hostsService = false;

  private constructor(
    /** The dbus-next bus. Only for src/dbus/*. */
    readonly bus: dbus.MessageBus,
    /** Our unique name on the bus (":1.42"). */
    readonly uniqueName: string,
    readonly callTimeoutMs: number,
  ) {
    const conn = internals(bus)._connection;
    conn.on('end', () => this.markLost(new Error('the D-Bus daemon closed the connection')));
    conn.on('error', (err: unknown) => this.markLost(err instanceof Error ? err : new Error(String(err))));
    // MessageBus re-emits connection errors as its own 'error'; without a listener that would crash the process.
    bus.on('error', (err: unknown) => this.markLost(err instanceof Error ? err : new Error(String(err))));
  }

  /** Open a connection and wait until the bus has accepted it. Rejects when it cannot connect in time. */
  static async open(opts: OpenBusOptions = {}): Promise<DbusConnection> {
    const bus = opts.busAddress ? dbus.sessionBus({ busAddress: opts.busAddress }) : dbus.systemBus();
    // Install the interface-less-call fix before anything can be exported.
    bus.addMethodHandler((msg: dbus.Message) => {
      if (!msg.interface && BUSITEM_MEMBERS.has(msg.member)) msg.interface = BUSITEM_INTERFACE;
      return false; // not handled here: let the exported objects answer
    });
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new TimeoutError(`D-Bus: no answer from the bus within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onError = (err: unknown) => {
        cleanup();
        reject(new Error(`D-Bus: cannot connect: ${errorMessage(err)}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        bus.removeListener('connect', onConnect);
        bus.removeListener('error', onError);
      };
      bus.on('connect', onConnect);
      bus.on('error', onError);
    }).catch((err: unknown) => {
      // Swallow the errors a half-open connection may still emit, then drop it.
      bus.on('error', () => {});
      try {
        bus.disconnect();
      } catch {
        // the stream may never have opened
      }
      throw err;
    });
    const name = internals(bus).name;
    if (!name) throw new Error('D-Bus: connected without a unique name');
    return new DbusConnection(bus, name, opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
  }

  /** True once the bus connection died (not after close()). */
  get isLost(): boolean {
    return this.lostReason !== undefined;
  }

  /** Neither closed nor lost: calls and signals can go out. */
  get isOpen(): boolean {
    return !this.closing && this.lostReason === undefined;
  }

  /**
   * Call once per listener: it runs once when the bus connection dies (daemon gone, socket error). Registered
   * after the fact, it runs at once. Not called for close().
   */
  onLost(listener: (reason: Error) => void): void {
    if (this.lostReason) listener(this.lostReason);
    else this.lostListeners.push(listener);
  }

  /** Method call with a timeout. Rejects with TimeoutError, or with dbus-next's DBusError on an error reply. */
  async call(call: MethodCall, timeoutMs = this.callTimeoutMs): Promise<dbus.Message> {
    if (!this.isOpen) throw new Error(`D-Bus: connection ${this.closing ? 'closed' : 'lost'}`);
    const msg = new dbus.Message({
      destination: call.destination,
      path: call.path,
      interface: call.interface,
      member: call.member,
      signature: call.signature ?? '',
      body: call.body ?? [],
    });
    const reply = this.bus.call(msg);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // Drop dbus-next's pending handler so a call that never settles does not stay in its table forever.
        if (msg.serial !== null) delete internals(this.bus)._methodReturnHandlers[msg.serial];
        reject(new TimeoutError(`D-Bus: ${call.destination} ${call.path} ${call.member}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
    });
    try {
      const result = await Promise.race([reply, timeout]);
      if (result === null) throw new Error(`D-Bus: ${call.member}: no reply message`);
      return result;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Call a method of the bus daemon itself (ListNames, GetNameOwner, AddMatch, …). */
  callBus(member: string, signature = '', body: unknown[] = []): Promise<dbus.Message> {
    return this.call({ destination: DBUS_NAME, path: DBUS_PATH, interface: DBUS_NAME, member, signature, body });
  }

  /** Add a match rule. Do it once per subscription, never per read. */
  async addMatch(rule: string): Promise<void> {
    await this.callBus('AddMatch', 's', [rule]);
  }

  /** Remove a match rule added with addMatch (no-op once the connection is gone). */
  async removeMatch(rule: string): Promise<void> {
    if (!this.isOpen) return;
    await this.callBus('RemoveMatch', 's', [rule]);
  }

  /** Unique name owning `name`, or undefined when nobody owns it. */
  async getNameOwner(name: string): Promise<string | undefined> {
    try {
      const reply = await this.callBus('GetNameOwner', 's', [name]);
      return String(reply.body[0]);
    } catch (err) {
      if (isDbusError(err, 'org.freedesktop.DBus.Error.NameHasNoOwner')) return undefined;
      throw err;
    }
  }

  /** Receive every incoming signal (after a matching rule was added). Returns the unsubscribe function. */
  onSignal(listener: (msg: dbus.Message) => void): () => void {
    const handler = (msg: dbus.Message) => {
      if (msg.type === dbus.MessageType.SIGNAL) listener(msg);
    };
    this.bus.on('message', handler);
    return () => {
      this.bus.removeListener('message', handler);
    };
  }

  /**
   * Send a message that expects no reply (signals). Never throws: a dead connection is reported through
   * onLost instead.
   */
  send(msg: dbus.Message): void {
    if (!this.isOpen) return;
    try {
      this.bus.send(msg);
    } catch (err) {
      this.markLost(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Send several messages in one socket write: dbus-next writes every message on its own, and on a GX CPU the
   * syscalls of one ItemsChanged plus a PropertiesChanged per path were half the driver's CPU (npm run bench).
   */
  batch(fn: () => void): void {
    const stream = internals(this.bus)._connection.stream;
    stream?.cork?.();
    try {
      fn();
    } finally {
      stream?.uncork?.();
    }
  }

  /** Disconnect. Idempotent; does not fire onLost. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    try {
      this.bus.disconnect();
    } catch {
      // already gone
    }
  }

  private markLost(reason: Error): void {
    if (this.closing || this.lostReason) return;
    this.lostReason = reason;
    for (const listener of this.lostListeners.splice(0)) listener(reason);
  }
}

/** True when `err` is a D-Bus error reply with the given name. */
export function isDbusError(err: unknown, name?: string): boolean {
  return err instanceof dbus.DBusError && (name === undefined || err.type === name);
}
