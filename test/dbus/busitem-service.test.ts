import * as dbus from 'dbus-next';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  BusItemService,
  NameNotAcquiredError,
  type PathTable,
  SET_VALUE_OK,
  SET_VALUE_READ_ONLY,
} from '../../src/dbus/busitem-service.js';
import { DbusConnection } from '../../src/dbus/connection.js';
import type { DbusValue } from '../../src/dbus/values.js';
import { BUSITEM, BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';

const PATHS: PathTable = {
  '/DeviceInstance': { type: 'i' },
  '/ProductId': { type: 'i' },
  '/ProductName': { type: 's' },
  '/Dc/0/Voltage': { type: 'd', text: (v) => `${Number(v).toFixed(2)}V` },
  '/Dc/0/Current': { type: 'd' },
  '/Soc': {
    type: 'd',
    writable: true,
    validate: (v) => v === undefined || (typeof v === 'number' && v >= 0 && v <= 100),
  },
  '/CustomName': { type: 's', writable: true },
  '/TimeToGo': { type: 'd' },
};

const INITIAL: Record<string, DbusValue> = {
  '/DeviceInstance': 3,
  '/ProductId': 0xba6b,
  '/ProductName': 'Test BMS',
  '/Dc/0/Voltage': 52,
  '/Dc/0/Current': -4.5,
  '/Soc': 80,
  '/CustomName': '',
};

let daemon: DbusDaemon;
let client: BusClient;
const cleanups: (() => Promise<void> | void)[] = [];
let serial = 0;

beforeAll(async () => {
  daemon = await startDbusDaemon();
  client = await BusClient.connect(daemon.address);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  client?.close();
  await daemon?.stop();
});

async function startService(opts: { onWrite?: (path: string, value: DbusValue) => void } = {}) {
  const name = `com.victronenergy.battery.unit${++serial}`;
  const connection = await DbusConnection.open({ busAddress: daemon.address });
  const service = await BusItemService.create({ connection, name, paths: PATHS, initial: INITIAL, ...opts });
  cleanups.push(() => service.close());
  return { name, service, connection };
}

function recordSignals(member: string, sender?: string) {
  return client.record((m) => m.member === member && m.interface === BUSITEM && (!sender || m.sender === sender));
}

async function watch(name: string, member: string) {
  await client.addMatch(`type='signal',sender='${name}',interface='${BUSITEM}',member='${member}'`);
  const owner = await client.nameOwner(name);
  return recordSignals(member, owner);
}

describe('BusItemService', () => {
  test('GetItems returns every path with its declared type, value and text', async () => {
    const { name } = await startService();
    const items = await client.getItems(name);
    expect(Object.keys(items).sort()).toEqual(Object.keys(PATHS).sort());
    expect(items['/DeviceInstance']?.Value.signature).toBe('i');
    expect(items['/DeviceInstance']?.Value.value).toBe(3);
    // 52 is a whole number but the path is declared 'd'
    expect(items['/Dc/0/Voltage']?.Value.signature).toBe('d');
    expect(items['/Dc/0/Voltage']?.Value.value).toBe(52);
    expect(items['/Dc/0/Voltage']?.Text.value).toBe('52.00V');
    expect(items['/ProductName']?.Value).toMatchObject({ signature: 's', value: 'Test BMS' });
    expect(items['/ProductId']?.Text.value).toBe('0xBA6B');
    expect(items['/TimeToGo']?.Value).toMatchObject({ signature: 'ai', value: [] });
    expect(items['/TimeToGo']?.Text.value).toBe('---');
  });

  test('a leaf answers GetValue with a variant and GetText with a plain string', async () => {
    const { name } = await startService();
    const v = await client.getValue(name, '/Dc/0/Current');
    expect(v).toMatchObject({ signature: 'd', value: -4.5 });
    const reply = await client.call(name, '/Dc/0/Current', 'GetText');
    expect(reply.signature).toBe('s');
    expect(reply.body[0]).toBe('-4.5');
    expect(await client.getText(name, '/TimeToGo')).toBe('---');
  });

  test('nodes and the root answer GetValue with relative keys and GetText with a variant holding a{ss}', async () => {
    const { name } = await startService();
    const dc = await client.getValue(name, '/Dc');
    expect(dc.signature).toBe('a{sv}');
    expect(Object.keys(dc.value).sort()).toEqual(['0/Current', '0/Voltage']);
    const dc0 = await client.getValue(name, '/Dc/0');
    expect(plain(dc0.value.Voltage)).toBe(52);
    expect(dc0.value.Voltage.signature).toBe('d');
    const root = await client.getValue(name, '/');
    expect(Object.keys(root.value)).toContain('Dc/0/Voltage');
    expect(Object.keys(root.value)).toContain('DeviceInstance');
    expect(Object.keys(root.value).some((k) => k.startsWith('/'))).toBe(false);

    const text = await client.call(name, '/Dc/0', 'GetText');
    expect(text.signature).toBe('v');
    const textVariant = text.body[0] as dbus.Variant;
    expect(textVariant.signature).toBe('a{ss}');
    expect(textVariant.value).toEqual({ Voltage: '52.00V', Current: '-4.5' });
    const rootText = (await client.call(name, '/', 'GetText')).body[0] as dbus.Variant;
    expect(rootText.signature).toBe('a{ss}');
    expect(rootText.value['TimeToGo']).toBe('---');
  });

  test('one update emits exactly one ItemsChanged on / carrying only the changed paths, with absolute keys', async () => {
    const { name, service } = await startService();
    const seen = await watch(name, 'ItemsChanged');
    const changed = service.update({
      '/Dc/0/Voltage': 52.1,
      '/Dc/0/Current': 10,
      '/Soc': 80,
      '/ProductName': 'Test BMS',
    });
    expect(changed.sort()).toEqual(['/Dc/0/Current', '/Dc/0/Voltage']);
    await client.syncWith(name);
    expect(seen).toHaveLength(1);
    const msg = seen[0];
    expect(msg?.path).toBe('/');
    const items = msg?.body[0] as Record<string, { Value: dbus.Variant; Text: dbus.Variant }>;
    expect(Object.keys(items).sort()).toEqual(['/Dc/0/Current', '/Dc/0/Voltage']);
    expect(items['/Dc/0/Voltage']?.Value).toMatchObject({ signature: 'd', value: 52.1 });
    expect(items['/Dc/0/Voltage']?.Text.value).toBe('52.10V');

    // Nothing changed: nothing is sent.
    expect(service.update({ '/Dc/0/Voltage': 52.1 })).toEqual([]);
    service.set('/Soc', 81);
    await client.syncWith(name);
    expect(seen).toHaveLength(2);
    expect(Object.keys(seen[1]?.body[0] ?? {})).toEqual(['/Soc']);
  });

  test('each changed leaf sends PropertiesChanged with Value and Text on its own path', async () => {
    const { name, service } = await startService();
    const seen = await watch(name, 'PropertiesChanged');
    service.update({ '/Dc/0/Voltage': 53.25, '/ProductName': 'Renamed' });
    await client.syncWith(name);
    expect(seen.map((m) => m.path).sort()).toEqual(['/Dc/0/Voltage', '/ProductName']);
    const voltage = seen.find((m) => m.path === '/Dc/0/Voltage');
    expect(voltage?.body[0].Value).toMatchObject({ signature: 'd', value: 53.25 });
    expect(voltage?.body[0].Text).toMatchObject({ signature: 's', value: '53.25V' });
  });

  test('a path keeps its D-Bus type when its value crosses a whole number', async () => {
    const { name, service } = await startService();
    const seen = await watch(name, 'ItemsChanged');
    for (const v of [52.1, 53, 52.0, 52.9]) {
      service.set('/Dc/0/Voltage', v);
      const got = await client.getValue(name, '/Dc/0/Voltage');
      expect(got).toMatchObject({ signature: 'd', value: v });
    }
    await client.syncWith(name);
    expect(seen.map((m) => m.body[0]['/Dc/0/Voltage'].Value.signature)).toEqual(['d', 'd', 'd', 'd']);
  });

  test('non-finite numbers and undefined are published as the invalid value ai []', async () => {
    const { name, service } = await startService();
    const seen = await watch(name, 'ItemsChanged');
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, undefined]) {
      service.set('/Dc/0/Voltage', 52.5);
      service.set('/Dc/0/Voltage', bad);
      expect(service.get('/Dc/0/Voltage')).toBeUndefined();
      expect(await client.getValue(name, '/Dc/0/Voltage')).toMatchObject({ signature: 'ai', value: [] });
    }
    await client.syncWith(name);
    const invalids = seen.filter((m) => m.body[0]['/Dc/0/Voltage'].Value.signature === 'ai');
    expect(invalids).toHaveLength(3);
    expect(invalids[0]?.body[0]['/Dc/0/Voltage'].Text.value).toBe('---');
  });

  test('SetValue on a read-only path returns non-zero and leaves the value unchanged', async () => {
    const writes: string[] = [];
    const { name, service } = await startService({ onWrite: (p) => writes.push(p) });
    const code = await client.setValue(name, '/Dc/0/Voltage', new dbus.Variant('d', 1));
    expect(code).toBe(SET_VALUE_READ_ONLY);
    expect(service.get('/Dc/0/Voltage')).toBe(52);
    expect(plain(await client.getValue(name, '/Dc/0/Voltage'))).toBe(52);
    expect(writes).toEqual([]);
  });

  test.each([
    { case: 'a string written to a double path', path: '/Soc', value: new dbus.Variant('s', '55') },
    { case: 'a double written to a string path', path: '/CustomName', value: new dbus.Variant('d', 1.5) },
    { case: 'a value refused by validate', path: '/Soc', value: new dbus.Variant('d', 150) },
  ])('SetValue with $case returns non-zero and changes nothing', async ({ path, value }) => {
    const writes: string[] = [];
    const { name, service } = await startService({ onWrite: (p) => writes.push(p) });
    const before = service.get(path);
    const code = await client.setValue(name, path, value);
    expect(code).not.toBe(SET_VALUE_OK);
    expect(service.get(path)).toBe(before);
    expect(plain(await client.getValue(name, path))).toBe(before);
    expect(writes).toEqual([]);
  });

  test('SetValue on a writable path stores the value, signals it and calls onWrite', async () => {
    const writes: [string, DbusValue][] = [];
    const { name, service } = await startService({ onWrite: (p, v) => writes.push([p, v]) });
    const seen = await watch(name, 'ItemsChanged');
    expect(await client.setValue(name, '/Soc', new dbus.Variant('d', 55.5))).toBe(SET_VALUE_OK);
    expect(service.get('/Soc')).toBe(55.5);
    // An integer written to a double path is accepted and stays a double on the bus.
    expect(await client.setValue(name, '/Soc', new dbus.Variant('i', 60))).toBe(SET_VALUE_OK);
    expect(await client.getValue(name, '/Soc')).toMatchObject({ signature: 'd', value: 60 });
    expect(await client.setValue(name, '/CustomName', new dbus.Variant('s', 'House'))).toBe(SET_VALUE_OK);
    await client.syncWith(name);
    expect(writes).toEqual([
      ['/Soc', 55.5],
      ['/Soc', 60],
      ['/CustomName', 'House'],
    ]);
    expect(seen.map((m) => Object.keys(m.body[0]))).toEqual([['/Soc'], ['/Soc'], ['/CustomName']]);
  });

  test('a write of an empty array sets a writable path invalid', async () => {
    const { name, service } = await startService();
    expect(await client.setValue(name, '/Soc', new dbus.Variant('ai', []))).toBe(SET_VALUE_OK);
    expect(service.get('/Soc')).toBeUndefined();
  });

  test('method calls without an interface field are answered as BusItem calls', async () => {
    const { name, service } = await startService();
    const value = await client.call(name, '/Dc/0/Voltage', 'GetValue', { iface: null });
    expect(value.body[0]).toMatchObject({ signature: 'd', value: 52 });
    const text = await client.call(name, '/Dc/0/Voltage', 'GetText', { iface: null });
    expect(text.body[0]).toBe('52.00V');
    const set = await client.call(name, '/Soc', 'SetValue', {
      iface: null,
      signature: 'v',
      body: [new dbus.Variant('d', 42)],
    });
    expect(set.body[0]).toBe(SET_VALUE_OK);
    expect(service.get('/Soc')).toBe(42);
    const items = await client.call(name, '/', 'GetItems', { iface: null });
    expect(Object.keys(items.body[0])).toContain('/Soc');
  });

  test('the name is claimed only after every path is exported: a scan on NameOwnerChanged finds /DeviceInstance', async () => {
    const name = `com.victronenergy.battery.unit${++serial}`;
    await client.addMatch(
      `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${name}'`,
    );
    let scan: Promise<unknown> | undefined;
    // Like DbusMonitor: GetItems the moment the name appears, from inside the signal handler.
    client.bus.on('message', (m: dbus.Message) => {
      if (m.member === 'NameOwnerChanged' && m.body[0] === name && m.body[2] && !scan) {
        scan = client.getItems(name).catch((err: unknown) => err);
      }
    });
    const connection = await DbusConnection.open({ busAddress: daemon.address });
    const service = await BusItemService.create({ connection, name, paths: PATHS, initial: INITIAL });
    cleanups.push(() => service.close());
    await eventually(() => scan !== undefined);
    const items = (await scan) as Record<string, { Value: dbus.Variant }>;
    expect(items['/DeviceInstance']?.Value).toMatchObject({ signature: 'i', value: 3 });
  });

  test('introspection lists the child nodes and the BusItem members', async () => {
    const { name } = await startService();
    const intro = (path: string) =>
      client
        .call(name, path, 'Introspect', { iface: 'org.freedesktop.DBus.Introspectable' })
        .then((r) => String(r.body[0]));
    const root = await intro('/');
    expect(root).toContain('<node name="Dc"/>');
    expect(root).toContain('<interface name="com.victronenergy.BusItem">');
    expect(root).toContain('<method name="GetItems">');
    expect(root).toContain('<signal name="ItemsChanged">');
    const leaf = await intro('/Dc/0/Voltage');
    expect(leaf).toContain('<method name="SetValue">');
    expect(leaf).toContain('<signal name="PropertiesChanged">');
    expect(await intro('/Dc')).toContain('<node name="0"/>');
  });

  test('creating a service whose name is already owned fails with NameNotAcquiredError', async () => {
    const { name } = await startService();
    const connection = await DbusConnection.open({ busAddress: daemon.address });
    await expect(BusItemService.create({ connection, name, paths: PATHS })).rejects.toBeInstanceOf(
      NameNotAcquiredError,
    );
    expect(connection.isOpen).toBe(false);
  });

  test('a second service on the same connection is refused', async () => {
    const { connection } = await startService();
    await expect(
      BusItemService.create({ connection, name: `com.victronenergy.battery.unit${++serial}`, paths: PATHS }),
    ).rejects.toThrow(/one service per connection/);
  });

  test('update() with a path outside the table throws', async () => {
    const { service } = await startService();
    expect(() => service.update({ '/Not/In/Table': 1 })).toThrow(/not in the path table/);
  });

  test('reregister() releases the name, applies the values off the bus and claims the name again', async () => {
    const { name, service } = await startService();
    await client.addMatch(
      `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${name}'`,
    );
    const owners: { owner: string; instance: unknown }[] = [];
    client.bus.on('message', (m: dbus.Message) => {
      if (m.member !== 'NameOwnerChanged' || m.body[0] !== name) return;
      owners.push({ owner: m.body[2], instance: undefined });
      const entry = owners[owners.length - 1];
      if (m.body[2] && entry) {
        void client.getValue(name, '/DeviceInstance').then((v) => {
          entry.instance = plain(v);
        });
      }
    });
    await service.reregister({ '/DeviceInstance': 9 });
    await eventually(() => owners.length === 2 && owners[1]?.instance !== undefined);
    expect(owners[0]?.owner).toBe('');
    expect(owners[1]?.instance).toBe(9);
    expect(service.isRegistered).toBe(true);
  });

  test('close() releases the name and disconnects', async () => {
    const { name, service, connection } = await startService();
    expect(await client.nameOwner(name)).toBe(connection.uniqueName);
    await service.close();
    expect(await client.nameOwner(name)).toBeUndefined();
    expect(connection.isOpen).toBe(false);
  });
});
