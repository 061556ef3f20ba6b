/**
 * A small stand-in for Victron's localsettings (com.victronenergy.settings), written for CI where the real
 * Python service is not installed. The real localsettings runs against our driver in the acceptance harness
 * (shared/acceptance); this one implements only what victron-dbus.md §4 describes and the driver uses:
 *
 * - com.victronenergy.Settings.AddSettings(aa{sv}) → aa{sv} on `/` (paths under /Settings/) or on a group
 *   (relative paths); an existing setting keeps its value; type from the default's signature (i, d → f, s);
 * - ClassAndVrmInstance under /Settings/Devices: a taken "class:N" becomes the next free N of that class, both
 *   on AddSettings and on SetValue;
 * - BusItem GetValue / GetText / SetValue (0, or -1 on a type error) on settings, PropertiesChanged
 *   {Value, Text} on every change, GetItems on `/`.
 *
 * Test support only: it uses dbus-next directly, which src/ outside src/dbus must not.
 */
import * as dbus from 'dbus-next';

const BUSITEM = 'com.victronenergy.BusItem';
const SETTINGS = 'com.victronenergy.Settings';
const NAME = 'com.victronenergy.settings';
const DEVICES = '/Settings/Devices/';

type SettingType = 'i' | 'f' | 's';
interface Setting {
  type: SettingType;
  value: number | string;
  default: number | string;
}

/** Settings by absolute path; pass the same store to a restarted fake to keep its "settings.xml". */
export type SettingsStore = Map<string, Setting>;

export interface FakeLocalSettings {
  readonly store: SettingsStore;
  /** Current value of a setting (absolute path), undefined if absent. */
  get(path: string): number | string | undefined;
  /** Change a setting as the GUI would (SetValue rules, PropertiesChanged). Returns the SetValue code. */
  set(path: string, value: number | string): number;
  /** Leave the bus (the store survives). */
  stop(): Promise<void>;
}

function parseClassInstance(value: unknown): { cls: string; n: number } | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^([^:]+):(\d+)$/.exec(value);
  return m?.[1] && m[2] ? { cls: m[1], n: Number(m[2]) } : undefined;
}

function isClassAndVrmInstance(path: string): boolean {
  return path.startsWith(DEVICES) && path.endsWith('/ClassAndVrmInstance');
}

function wrap(s: Setting): dbus.Variant {
  return new dbus.Variant(s.type === 'f' ? 'd' : s.type, s.value);
}

/** Start the fake on the bus at `address` and claim com.victronenergy.settings. */
export async function startFakeLocalSettings(
  address: string,
  store: SettingsStore = new Map(),
): Promise<FakeLocalSettings> {
  const bus = dbus.sessionBus({ busAddress: address });
  bus.on('error', () => {}); // the test may kill the bus under us

  /** Next free "class:N" at or above the requested N, not counting `self`'s own value. */
  const freeInstance = (cls: string, n: number, self: string): string => {
    const taken = new Set<string>();
    for (const [p, s] of store) if (p !== self && isClassAndVrmInstance(p)) taken.add(String(s.value));
    let i = n;
    while (taken.has(`${cls}:${i}`)) i++;
    return `${cls}:${i}`;
  };

  const signalChange = (path: string, s: Setting) => {
    bus.send(
      dbus.Message.newSignal(path, BUSITEM, 'PropertiesChanged', 'a{sv}', [
        { Value: wrap(s), Text: new dbus.Variant('s', String(s.value)) },
      ]),
    );
  };

  const setValue = (path: string, raw: unknown): number => {
    const s = store.get(path);
    if (!s) return -1;
    let value: number | string;
    if (s.type === 's') {
      if (typeof raw !== 'string') return -1;
      value = raw;
      if (isClassAndVrmInstance(path)) {
        const ci = parseClassInstance(raw);
        if (!ci) return -1;
        value = freeInstance(ci.cls, ci.n, path);
      }
    } else {
      const n = typeof raw === 'bigint' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n)) return -1;
      value = s.type === 'i' ? Math.trunc(n) : n;
    }
    if (value !== s.value) {
      s.value = value;
      signalChange(path, s);
    }
    return 0;
  };

  const addSetting = (group: string, def: Record<string, dbus.Variant>): Record<string, dbus.Variant> => {
    const rel = def.path?.value;
    const result: Record<string, dbus.Variant> = {};
    const fail = (code: number) => ({ ...result, error: new dbus.Variant('i', code) });
    if (typeof rel !== 'string' || rel === '') return fail(-4);
    result.path = new dbus.Variant('s', rel);
    const full = group === '/' ? rel : `${group}/${rel.replace(/^\//, '')}`;
    if (!full.startsWith('/Settings/')) return fail(-9);
    if (full.includes('/_')) return fail(-2);
    const sig = def.default?.signature;
    const type: SettingType | undefined =
      sig === 'i' || sig === 'x' ? 'i' : sig === 'd' ? 'f' : sig === 's' ? 's' : undefined;
    if (!type || !def.default) return fail(-3);
    const dflt = type === 's' ? String(def.default.value) : Number(def.default.value);
    const existing = store.get(full);
    if (existing) {
      if (existing.type !== type) return fail(-5);
      existing.default = dflt;
      return { ...result, error: new dbus.Variant('i', 0), value: wrap(existing) };
    }
    let value = dflt;
    if (isClassAndVrmInstance(full)) {
      const ci = parseClassInstance(dflt);
      if (!ci) return fail(-6);
      value = freeInstance(ci.cls, ci.n, full);
    }
    const s: Setting = { type, value, default: dflt };
    store.set(full, s);
    signalChange(full, s);
    return { ...result, error: new dbus.Variant('i', 0), value: wrap(s) };
  };

  // localsettings always has /Settings/Devices (created at start, never removed); other groups exist once a
  // setting lives under them.
  const isGroup = (path: string) =>
    path === '/' ||
    path === '/Settings' ||
    path === '/Settings/Devices' ||
    [...store.keys()].some((p) => p.startsWith(`${path}/`));

  const reply = (msg: dbus.Message, signature: string, body: unknown[]) => {
    bus.send(dbus.Message.newMethodReturn(msg, signature, body));
    return true;
  };

  bus.addMethodHandler((msg: dbus.Message) => {
    const iface = msg.interface || BUSITEM; // velib-style calls carry no interface
    const path = msg.path;
    if (iface === SETTINGS && msg.member === 'AddSettings' && msg.signature === 'aa{sv}' && isGroup(path)) {
      const defs = (msg.body[0] ?? []) as Record<string, dbus.Variant>[];
      return reply(msg, 'aa{sv}', [defs.map((d) => addSetting(path, d))]);
    }
    if (iface !== BUSITEM) return false;
    const s = store.get(path);
    switch (msg.member) {
      case 'GetValue':
        if (s) return reply(msg, 'v', [wrap(s)]);
        if (isGroup(path)) {
          const prefix = path === '/' ? '/' : `${path}/`;
          const values: Record<string, dbus.Variant> = {};
          for (const [p, x] of store) if (p.startsWith(prefix)) values[p.slice(prefix.length)] = wrap(x);
          return reply(msg, 'v', [new dbus.Variant('a{sv}', values)]);
        }
        return false;
      case 'GetText':
        return s ? reply(msg, 's', [String(s.value)]) : false;
      case 'SetValue':
        return s && msg.signature === 'v'
          ? reply(msg, 'i', [setValue(path, (msg.body[0] as dbus.Variant).value)])
          : false;
      case 'GetItems': {
        if (path !== '/') return false;
        const items: Record<string, Record<string, dbus.Variant>> = {};
        for (const [p, x] of store) items[p] = { Value: wrap(x), Text: new dbus.Variant('s', String(x.value)) };
        return reply(msg, 'a{sa{sv}}', [items]);
      }
      default:
        return false;
    }
  });

  const code = await bus.requestName(NAME, dbus.NameFlag.DO_NOT_QUEUE);
  if (code !== dbus.RequestNameReply.PRIMARY_OWNER) throw new Error(`fake localsettings: ${NAME} taken (${code})`);

  return {
    store,
    get: (path) => store.get(path)?.value,
    set: (path, value) => setValue(path, value),
    async stop() {
      try {
        await bus.releaseName(NAME);
      } catch {
        // bus gone
      }
      bus.disconnect();
    },
  };
}
