/**
 * A generic Victron BusItem service (velib's VeDbusService) over a FIXED, typed path table
 * (victron-dbus.md §2, §7):
 *
 *   /                 GetValue → v(a{sv}), GetText → v(a{ss}), GetItems → a{sa{sv}}, signal ItemsChanged
 *   /Dc, /Dc/0 …      GetValue → v(a{sv}), GetText → v(a{ss})        (keys relative, no leading slash)
 *   /Dc/0/Voltage …   GetValue → v, GetText → s, SetValue(v) → i, signal PropertiesChanged
 *
 * Every object is exported before the name is requested, because Victron's monitors scan a service the moment
 * its name appears and never rescan one that lacked /DeviceInstance (pitfall 1).
 */
import * as dbus from 'dbus-next';
import type { Logger } from '../log.js';
import { BUSITEM_INTERFACE, type DbusConnection } from './connection.js';
import {
  acceptsVariant,
  type DbusType,
  type DbusValue,
  fromVariant,
  isInvalidVariant,
  normalizeValue,
  toVariant,
} from './values.js';

/** How one path is published. The type is declared, never inferred from the JS value (pitfall 5). */
export interface PathSpec {
  readonly type: DbusType;
  /** Clients may SetValue it (default: read-only). */
  readonly writable?: boolean;
  /** GetText for a valid value (default: the value as text; `/ProductId` as 0x%X). */
  readonly text?: (value: number | string) => string;
  /** Accept or refuse a client write (after the type check); `undefined` is a write of "invalid". */
  readonly validate?: (value: DbusValue) => boolean;
}

/** Absolute path ("/Dc/0/Voltage") → spec. Fixed for the life of the service. */
export type PathTable = Readonly<Record<string, PathSpec>>;

/** SetValue results, as velib returns them: anything but 0 is a failure to Victron clients. */
export const SET_VALUE_OK = 0;
export const SET_VALUE_READ_ONLY = 1;
export const SET_VALUE_REJECTED = 2;

/** Options of BusItemService.create(). */
export interface BusItemServiceOptions {
  /** The connection; the service takes it over (one service per connection) and close() disconnects it. */
  connection: DbusConnection;
  /** Well-known name, e.g. com.victronenergy.battery.batterybank_house. */
  name: string;
  paths: PathTable;
  /** Values at registration; every other path starts invalid. */
  initial?: Readonly<Record<string, DbusValue>>;
  /** A client wrote a writable path and the value was accepted. */
  onWrite?: (path: string, value: DbusValue) => void;
  /**
   * Also send PropertiesChanged on each changed leaf (default true here; BatteryService turns it off unless
   * `[general] dbus_properties_changed`). ItemsChanged is always sent.
   */
  propertiesChanged?: boolean;
  logger?: Logger;
}

/** Thrown when the bus does not make us the primary owner of the name. */
export class NameNotAcquiredError extends Error {
  override readonly name = 'NameNotAcquiredError';
}

interface Host {
  leafVariant(path: string): dbus.Variant;
  leafText(path: string): string;
  clientWrite(path: string, v: dbus.Variant): number;
  subtree(node: string): { values: Record<string, dbus.Variant>; texts: Record<string, string> };
  items(paths?: Iterable<string>): Record<string, Record<string, dbus.Variant>>;
}

// The exported objects. Their methods only delegate to the service; dbus-next generates Introspect from them.

class LeafObject extends dbus.interface.Interface {
  constructor(
    private readonly host: Host,
    private readonly path: string,
  ) {
    super(BUSITEM_INTERFACE);
  }
  GetValue(): dbus.Variant {
    return this.host.leafVariant(this.path);
  }
  GetText(): string {
    return this.host.leafText(this.path);
  }
  SetValue(v: dbus.Variant): number {
    return this.host.clientWrite(this.path, v);
  }
  PropertiesChanged(changes: Record<string, dbus.Variant>): Record<string, dbus.Variant> {
    return changes;
  }
}
LeafObject.configureMembers({
  methods: {
    GetValue: { outSignature: 'v' },
    GetText: { outSignature: 's' },
    SetValue: { inSignature: 'v', outSignature: 'i' },
  },
  signals: { PropertiesChanged: { signature: 'a{sv}' } },
});

class NodeObject extends dbus.interface.Interface {
  constructor(
    protected readonly host: Host,
    private readonly path: string,
  ) {
    super(BUSITEM_INTERFACE);
  }
  GetValue(): dbus.Variant {
    return new dbus.Variant('a{sv}', this.host.subtree(this.path).values);
  }
  // Node GetText returns a variant holding a{ss}, not a plain string (velib out_signature='v').
  GetText(): dbus.Variant {
    return new dbus.Variant('a{ss}', this.host.subtree(this.path).texts);
  }
}
NodeObject.configureMembers({
  methods: { GetValue: { outSignature: 'v' }, GetText: { outSignature: 'v' } },
});

class RootObject extends NodeObject {
  GetItems(): Record<string, Record<string, dbus.Variant>> {
    return this.host.items();
  }
  ItemsChanged(items: Record<string, Record<string, dbus.Variant>>): Record<string, Record<string, dbus.Variant>> {
    return items;
  }
}
RootObject.configureMembers({
  methods: {
    GetValue: { outSignature: 'v' },
    GetText: { outSignature: 'v' },
    GetItems: { outSignature: 'a{sa{sv}}' },
  },
  signals: { ItemsChanged: { signature: 'a{sa{sv}}' } },
});

/** A D-Bus object path other than "/": elements of [A-Za-z0-9_], no empty element, no trailing slash. */
const OBJECT_PATH = /^(\/[A-Za-z0-9_]+)+$/;

/** Intermediate nodes of a set of leaf paths: "/Dc/0/Voltage" gives "/Dc" and "/Dc/0". */
function nodesOf(paths: readonly string[]): string[] {
  const nodes = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 2; i < parts.length; i++) nodes.add(parts.slice(0, i).join('/'));
  }
  return [...nodes];
}

function defaultText(path: string, value: number | string): string {
  if (path === '/ProductId' && typeof value === 'number') return `0x${value.toString(16).toUpperCase()}`;
  return String(value);
}

/** A running BusItem service. Create with {@link BusItemService.create}. */
export class BusItemService {
  readonly name: string;
  private readonly connection: DbusConnection;
  private readonly specs: ReadonlyMap<string, PathSpec>;
  private readonly values = new Map<string, DbusValue>();
  private readonly leaves: string[];
  private readonly subtrees = new Map<string, string[]>();
  private readonly onWrite: ((path: string, value: DbusValue) => void) | undefined;
  private readonly propertiesChanged: boolean;
  private readonly logger: Logger | undefined;
  private owned = false;
  private closed = false;

  private constructor(opts: BusItemServiceOptions) {
    this.name = opts.name;
    this.connection = opts.connection;
    this.onWrite = opts.onWrite;
    this.propertiesChanged = opts.propertiesChanged ?? true;
    this.logger = opts.logger;
    const specs = new Map<string, PathSpec>();
    for (const [path, spec] of Object.entries(opts.paths)) {
      if (!OBJECT_PATH.test(path)) throw new Error(`BusItemService: invalid object path ${JSON.stringify(path)}`);
      specs.set(path, spec);
    }
    this.specs = specs;
    this.leaves = [...specs.keys()];
    const nodes = nodesOf(this.leaves);
    for (const node of nodes) {
      if (specs.has(node)) throw new Error(`BusItemService: ${node} is both a value and a node`);
      this.subtrees.set(
        node,
        this.leaves.filter((p) => p.startsWith(`${node}/`)),
      );
    }
    this.subtrees.set('/', this.leaves);
    for (const path of this.leaves) this.values.set(path, undefined);
    for (const [path, value] of Object.entries(opts.initial ?? {})) this.values.set(path, this.normalize(path, value));
  }

  /**
   * Export every path, every node and `/`, then request the name (DO_NOT_QUEUE). Rejects with
   * NameNotAcquiredError unless we became the primary owner; the connection is then closed.
   */
  static async create(opts: BusItemServiceOptions): Promise<BusItemService> {
    if (opts.connection.hostsService) throw new Error('BusItemService: one service per connection');
    const service = new BusItemService(opts);
    opts.connection.hostsService = true;
    service.exportAll();
    try {
      await service.claimName();
    } catch (err) {
      opts.connection.close();
      throw err;
    }
    return service;
  }

  /** True while we own the name. */
  get isRegistered(): boolean {
    return this.owned;
  }

  /** The current value of a path (undefined = invalid). Throws for a path not in the table. */
  get(path: string): DbusValue {
    this.spec(path);
    return this.values.get(path);
  }

  /** All current values, by absolute path. */
  snapshot(): Record<string, DbusValue> {
    return Object.fromEntries(this.values);
  }

  /** Set one path; same as update({[path]: value}). Returns whether it changed. */
  set(path: string, value: DbusValue): boolean {
    return this.update({ [path]: value }).length > 0;
  }

  /**
   * Set many paths at once. Values are normalized to the path's type (non-finite → invalid) and compared with
   * the current ones; if any changed, ONE ItemsChanged on `/` carries exactly those (absolute keys), plus (with
   * `propertiesChanged`) a PropertiesChanged on each changed leaf. Returns the changed paths. Throws for a path not in the table:
   * the set of paths is fixed (publish invalid rather than adding a path later).
   */
  update(values: Readonly<Record<string, DbusValue>>): string[] {
    const changed: string[] = [];
    for (const [path, raw] of Object.entries(values)) {
      const value = this.normalize(path, raw);
      if (this.values.get(path) === value) continue;
      this.values.set(path, value);
      changed.push(path);
    }
    if (changed.length > 0) this.signalChanges(changed);
    return changed;
  }

  /**
   * Leave the bus and come back: release the name, apply `values` (e.g. a new /DeviceInstance) while nobody
   * is watching, request the name again. Victron rule: never change identity while on the bus.
   */
  async reregister(values: Readonly<Record<string, DbusValue>>): Promise<void> {
    await this.releaseName();
    for (const [path, raw] of Object.entries(values)) this.values.set(path, this.normalize(path, raw));
    await this.claimName();
  }

  /** Release the name (if owned) and disconnect. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.connection.isOpen) await this.releaseName();
    } catch (err) {
      this.logger?.debug(`release ${this.name}: ${String(err)}`);
    } finally {
      this.connection.close();
    }
  }

  private async claimName(): Promise<void> {
    const reply = await this.connection.callBus('RequestName', 'su', [this.name, dbus.NameFlag.DO_NOT_QUEUE]);
    const code = Number(reply.body[0]);
    if (code !== dbus.RequestNameReply.PRIMARY_OWNER) {
      throw new NameNotAcquiredError(`D-Bus name ${this.name} not acquired (RequestName reply ${code})`);
    }
    this.owned = true;
  }

  private async releaseName(): Promise<void> {
    if (!this.owned) return;
    this.owned = false;
    await this.connection.callBus('ReleaseName', 's', [this.name]);
  }

  private exportAll(): void {
    const host: Host = {
      leafVariant: (p) => this.leafVariant(p),
      leafText: (p) => this.leafText(p),
      clientWrite: (p, v) => this.clientWrite(p, v),
      subtree: (n) => this.subtree(n),
      items: (paths) => this.items(paths),
    };
    const bus = this.connection.bus;
    bus.export('/', new RootObject(host, '/'));
    for (const node of this.subtrees.keys()) if (node !== '/') bus.export(node, new NodeObject(host, node));
    for (const path of this.leaves) bus.export(path, new LeafObject(host, path));
  }

  private spec(path: string): PathSpec {
    const spec = this.specs.get(path);
    if (!spec) throw new Error(`BusItemService ${this.name}: ${path} is not in the path table`);
    return spec;
  }

  private normalize(path: string, value: unknown): DbusValue {
    return normalizeValue(this.spec(path).type, value);
  }

  private leafVariant(path: string): dbus.Variant {
    return toVariant(this.spec(path).type, this.values.get(path));
  }

  private leafText(path: string): string {
    const value = this.values.get(path);
    if (value === undefined) return '---';
    const format = this.spec(path).text;
    try {
      return format ? format(value) : defaultText(path, value);
    } catch {
      return String(value);
    }
  }

  private subtree(node: string): { values: Record<string, dbus.Variant>; texts: Record<string, string> } {
    const prefix = node === '/' ? 1 : node.length + 1;
    const values: Record<string, dbus.Variant> = {};
    const texts: Record<string, string> = {};
    for (const path of this.subtrees.get(node) ?? []) {
      const key = path.slice(prefix);
      values[key] = this.leafVariant(path);
      texts[key] = this.leafText(path);
    }
    return { values, texts };
  }

  private entry(path: string): Record<string, dbus.Variant> {
    return { Value: this.leafVariant(path), Text: new dbus.Variant('s', this.leafText(path)) };
  }

  private items(paths: Iterable<string> = this.leaves): Record<string, Record<string, dbus.Variant>> {
    const out: Record<string, Record<string, dbus.Variant>> = {};
    for (const path of paths) out[path] = this.entry(path);
    return out;
  }

  private clientWrite(path: string, v: dbus.Variant): number {
    const spec = this.spec(path);
    if (!spec.writable) return SET_VALUE_READ_ONLY;
    let value: DbusValue;
    if (isInvalidVariant(v)) value = undefined;
    else if (acceptsVariant(spec.type, v)) value = normalizeValue(spec.type, fromVariant(v));
    else return SET_VALUE_REJECTED;
    if (spec.validate && !spec.validate(value)) return SET_VALUE_REJECTED;
    this.update({ [path]: value });
    if (this.onWrite) {
      try {
        this.onWrite(path, value);
      } catch (err) {
        this.logger?.warn(`write ${path}: ${String(err)}`);
      }
    }
    return SET_VALUE_OK;
  }

  private signalChanges(changed: readonly string[]): void {
    if (this.closed) return;
    this.connection.batch(() => {
      this.connection.send(
        dbus.Message.newSignal('/', BUSITEM_INTERFACE, 'ItemsChanged', 'a{sa{sv}}', [this.items(changed)]),
      );
      if (!this.propertiesChanged) return;
      for (const path of changed) {
        this.connection.send(
          dbus.Message.newSignal(path, BUSITEM_INTERFACE, 'PropertiesChanged', 'a{sv}', [this.entry(path)]),
        );
      }
    });
  }
}
