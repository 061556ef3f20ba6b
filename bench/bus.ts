/**
 * D-Bus side of the live runs: a private dbus-daemon whose pid we know (so its CPU can be read too), and the
 * measuring client, a plain dbus-next connection that knows nothing of src/dbus.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as dbus from 'dbus-next';

/** Venus's system-bus policy: anyone may own, call and receive (the `eavesdrop` allow is what lets replies and
 * signals through a `system`-type bus without the stock deny rules). */
const BUS_CONFIG = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`;

export interface BenchBus {
  readonly address: string;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after 2 s; resolves once the daemon has exited. */
  stop(): Promise<void>;
}

/** Start dbus-daemon on a socket in `dir` (the caller removes the dir). */
export async function startBenchBus(dir: string, onChild: (child: ChildProcess) => void): Promise<BenchBus> {
  const conf = join(dir, 'bus.conf');
  writeFileSync(conf, BUS_CONFIG.replace('@SOCKET@', join(dir, 'bus.sock')));
  const child = spawn('dbus-daemon', ['--config-file', conf, '--nofork', '--nopidfile', '--print-address=1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onChild(child);
  const exited = new Promise<void>((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res();
    else child.once('exit', () => res());
  });
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`dbus-daemon did not start in 5 s: ${err}`)), 5000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl > 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl).trim());
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start dbus-daemon (install the dbus-daemon package): ${e.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dbus-daemon exited with ${code}: ${err}`));
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('dbus-daemon has no pid');
  return {
    address,
    pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const guard = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(guard);
      }
    },
  };
}

/** Plain value of a BusItem variant; undefined for Victron's invalid (an empty array). */
function plain(v: unknown): unknown {
  const value = v instanceof dbus.Variant ? (v.value as unknown) : v;
  return Array.isArray(value) && value.length === 0 ? undefined : value;
}

export type ItemValues = Map<string, unknown>;

/** The measuring client. Listeners get the receive time taken first thing in the message handler. */
export class Observer {
  private readonly itemsListeners: ((sender: string, items: ItemValues, t: number) => void)[] = [];
  private readonly ownerListeners: ((name: string, owner: string, t: number) => void)[] = [];

  private constructor(
    private readonly bus: dbus.MessageBus,
    private readonly now: () => number,
  ) {
    bus.on('message', (msg: dbus.Message) => {
      const t = this.now();
      if (msg.type !== dbus.MessageType.SIGNAL) return;
      if (msg.member === 'ItemsChanged' && msg.path === '/') {
        const body = msg.body[0] as Record<string, { Value?: unknown }> | undefined;
        const items: ItemValues = new Map();
        for (const [path, entry] of Object.entries(body ?? {})) items.set(path, plain(entry?.Value));
        for (const l of this.itemsListeners) l(msg.sender ?? '', items, t);
      } else if (msg.member === 'NameOwnerChanged' && msg.sender === 'org.freedesktop.DBus') {
        const [name, , owner] = msg.body as [string, string, string];
        for (const l of this.ownerListeners) l(name, owner, t);
      }
    });
  }

  static async connect(address: string, now: () => number): Promise<Observer> {
    const bus = dbus.sessionBus({ busAddress: address });
    bus.on('error', () => undefined); // the daemon is stopped under us at the end
    await new Promise<void>((resolve, reject) => {
      bus.once('connect', () => resolve());
      bus.once('error', reject);
    });
    const o = new Observer(bus, now);
    await o.addMatch("type='signal',interface='com.victronenergy.BusItem',member='ItemsChanged',path='/'");
    await o.addMatch("type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'");
    return o;
  }

  onItemsChanged(listener: (sender: string, items: ItemValues, t: number) => void): void {
    this.itemsListeners.push(listener);
  }

  onNameOwnerChanged(listener: (name: string, owner: string, t: number) => void): void {
    this.ownerListeners.push(listener);
  }

  /** GetItems on `/` of `service`: path → plain value. */
  async getItems(service: string): Promise<ItemValues> {
    const reply = await this.bus.call(
      new dbus.Message({
        destination: service,
        path: '/',
        interface: 'com.victronenergy.BusItem',
        member: 'GetItems',
      }),
    );
    const body = reply?.body[0] as Record<string, { Value?: unknown }> | undefined;
    const items: ItemValues = new Map();
    for (const [path, entry] of Object.entries(body ?? {})) items.set(path, plain(entry?.Value));
    return items;
  }

  private async addMatch(rule: string): Promise<void> {
    await this.bus.call(
      new dbus.Message({
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'AddMatch',
        signature: 's',
        body: [rule],
      }),
    );
  }

  close(): void {
    this.bus.disconnect();
  }
}
