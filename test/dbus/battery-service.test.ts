import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as dbus from 'dbus-next';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_PRODUCT_ID } from '../../src/dbus/battery-paths.js';
import { BatteryService } from '../../src/dbus/battery-service.js';
import { createLogger } from '../../src/log.js';
import { BUSITEM, BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
import { type FakeLocalSettings, type SettingsStore, startFakeLocalSettings } from '../support/fake-localsettings.js';
import { batteryState, snapshot } from './battery-state-fixture.js';

const run = promisify(execFile);

let daemon: DbusDaemon;
let client: BusClient;
const cleanups: (() => Promise<void> | void)[] = [];

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

const serviceName = (id: string) => `com.victronenergy.battery.batterybank_${id}`;
const instancePath = (id: string) => `/Settings/Devices/batterybank_${id}/ClassAndVrmInstance`;
const namePath = (id: string) => `/Settings/Devices/batterybank_${id}/CustomName`;

async function startSettings(store?: SettingsStore): Promise<FakeLocalSettings> {
  const settings = await startFakeLocalSettings(daemon.address, store);
  cleanups.push(() => settings.stop());
  return settings;
}

async function startBattery(id: string, deviceInstance = 1, propertiesChanged?: boolean) {
  const lines: string[] = [];
  const service = await BatteryService.create({
    ...(propertiesChanged !== undefined ? { propertiesChanged } : {}),
    id,
    serviceName: serviceName(id),
    cellCount: 4,
    productId: DEFAULT_PRODUCT_ID,
    deviceInstance,
    processName: 'dbus-batterybank',
    processVersion: '0.1.0',
    logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }),
    busAddress: daemon.address,
    callTimeoutMs: 2000,
  });
  cleanups.push(() => service.close());
  return { service, lines };
}

/** Record the NameOwnerChanged signals of `name` from now on. */
async function ownerChanges(name: string): Promise<dbus.Message[]> {
  await client.addMatch(
    `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${name}'`,
  );
  return client.record((m) => m.member === 'NameOwnerChanged' && m.body[0] === name);
}

describe('BatteryService', () => {
  test('two services get battery:1 and battery:2 from localsettings, and a restart keeps the same instance', async () => {
    const settings = await startSettings();
    const a = await startBattery('alloc_a', 1);
    const b = await startBattery('alloc_b', 1);
    expect(a.service.deviceInstance).toBe(1);
    expect(b.service.deviceInstance).toBe(2);
    expect(plain(await client.getValue(serviceName('alloc_a'), '/DeviceInstance'))).toBe(1);
    expect(plain(await client.getValue(serviceName('alloc_b'), '/DeviceInstance'))).toBe(2);
    expect(settings.get(instancePath('alloc_a'))).toBe('battery:1');
    expect(settings.get(instancePath('alloc_b'))).toBe('battery:2');

    await b.service.close();
    const again = await startBattery('alloc_b', 1);
    expect(again.service.deviceInstance).toBe(2);
    expect(plain(await client.getValue(serviceName('alloc_b'), '/DeviceInstance'))).toBe(2);
    expect(again.lines.join('\n')).toContain('localsettings granted battery:2');
  });

  test('update() publishes the state; another client reads values and types with GetItems', async () => {
    const { service } = await startBattery('publish');
    service.update(batteryState());
    const items = await client.getItems(serviceName('publish'));
    expect(items['/Connected']?.Value).toMatchObject({ signature: 'i', value: 1 });
    expect(items['/Dc/0/Voltage']?.Value).toMatchObject({ signature: 'd', value: 13.3 });
    expect(items['/Dc/0/Voltage']?.Text.value).toBe('13.30V');
    expect(items['/Soc']?.Value).toMatchObject({ signature: 'd', value: 87.5 });
    expect(items['/ProductId']?.Value).toMatchObject({ signature: 'i', value: 0xba6b });
    expect(items['/ProductId']?.Text.value).toBe('0xBA6B');
    expect(items['/ProductName']?.Value).toMatchObject({ signature: 's', value: 'JBD BMS' });
    expect(items['/Mgmt/Connection']?.Value).toMatchObject({ signature: 's', value: 'Serial ttyUSB0' });
    expect(items['/System/MinVoltageCellId']?.Value).toMatchObject({ signature: 's', value: 'C3' });
    expect(items['/Voltages/Cell4']?.Value).toMatchObject({ signature: 'd', value: 3.335 });
    expect(items['/Info/ChargeMode']?.Value).toMatchObject({ signature: 'ai', value: [] });
    expect(items['/Alarms/BmsCable']?.Value).toMatchObject({ signature: 'i', value: 0 });
  });

  test('a service starts with /Connected 0 until the first update', async () => {
    await startBattery('fresh');
    const items = await client.getItems(serviceName('fresh'));
    expect(plain(items['/Connected']?.Value)).toBe(0);
    expect(plain(items['/DeviceInstance']?.Value)).toBe(1);
    expect(plain(items['/Dc/0/Voltage']?.Value)).toBeUndefined();
  });

  test('an update with one changed reading sends one ItemsChanged carrying only that path', async () => {
    const { service } = await startBattery('diff');
    const name = serviceName('diff');
    service.update(batteryState());
    await client.addMatch(`type='signal',sender='${name}',interface='${BUSITEM}',member='ItemsChanged'`);
    const owner = await client.nameOwner(name);
    const seen = client.record((m) => m.member === 'ItemsChanged' && m.sender === owner);
    service.update(batteryState({ snapshot: snapshot({ soh: 97 }) }));
    service.update(batteryState({ snapshot: snapshot({ soh: 97 }) }));
    await client.syncWith(name);
    expect(seen).toHaveLength(1);
    expect(Object.keys(seen[0]?.body[0])).toEqual(['/Soh']);
  });

  test.each([
    { setting: undefined, perPath: 0 },
    { setting: true, perPath: 2 },
  ])(
    'PropertiesChanged per path: $perPath with propertiesChanged = $setting (ItemsChanged always)',
    async ({ setting, perPath }) => {
      const id = `pc${perPath}`;
      const { service } = await startBattery(id, 1, setting);
      const name = serviceName(id);
      service.update(batteryState());
      await client.addMatch(`type='signal',sender='${name}',interface='${BUSITEM}'`);
      const owner = await client.nameOwner(name);
      const seen = client.record((m) => m.sender === owner && m.interface === BUSITEM);
      service.update(batteryState({ snapshot: snapshot({ soh: 96, soc: 51 }) }));
      await client.syncWith(name);
      expect(seen.filter((m) => m.member === 'ItemsChanged')).toHaveLength(1);
      const perPathSignals = seen.filter((m) => m.member === 'PropertiesChanged');
      expect(perPathSignals).toHaveLength(perPath);
      if (perPath > 0) expect(perPathSignals.map((m) => m.path).sort()).toEqual(['/Soc', '/Soh']);
    },
  );

  test('going offline publishes /Connected 0, invalid measurements and zero limits', async () => {
    const { service } = await startBattery('offline');
    const name = serviceName('offline');
    service.update(batteryState());
    const state = batteryState({ health: 'offline' });
    state.limits = { ...state.limits, chargeCurrent: 0, dischargeCurrent: 0 };
    state.alarms = { ...state.alarms, BmsCable: 2 };
    service.update(state);
    const items = await client.getItems(name);
    expect(plain(items['/Connected']?.Value)).toBe(0);
    expect(items['/Dc/0/Voltage']?.Value).toMatchObject({ signature: 'ai', value: [] });
    expect(items['/Soc']?.Text.value).toBe('---');
    expect(items['/Info/MaxChargeCurrent']?.Value).toMatchObject({ signature: 'd', value: 0 });
    expect(items['/Info/MaxDischargeCurrent']?.Value).toMatchObject({ signature: 'd', value: 0 });
    expect(plain(items['/Alarms/BmsCable']?.Value)).toBe(2);
  });

  test('a /CustomName written by a client is accepted, published and saved in localsettings', async () => {
    const settings = await startSettings();
    const { service } = await startBattery('rename');
    const name = serviceName('rename');
    expect(await client.setValue(name, '/CustomName', new dbus.Variant('s', 'Shed'))).toBe(0);
    await eventually(() => settings.get(namePath('rename')) === 'Shed');
    expect(service.customName).toBe('Shed');
    service.update(batteryState());
    expect(plain(await client.getValue(name, '/CustomName'))).toBe('Shed');
    expect(await client.setValue(name, '/CustomName', new dbus.Variant('i', 3))).not.toBe(0);
    expect(await client.setValue(name, '/Soc', new dbus.Variant('d', 10))).not.toBe(0);
  });

  test('a name changed in localsettings (the GUI) appears on /CustomName', async () => {
    const settings = await startSettings();
    const { service } = await startBattery('guiname');
    settings.set(namePath('guiname'), 'Garage');
    await eventually(async () => plain(await client.getValue(serviceName('guiname'), '/CustomName')) === 'Garage');
    expect(service.customName).toBe('Garage');
  });

  test('a stored name is published from the start', async () => {
    const store: SettingsStore = new Map([
      [namePath('stored'), { type: 's', value: 'Boathouse', default: '' }],
      [instancePath('stored'), { type: 's', value: 'battery:12', default: 'battery:1' }],
    ]);
    await startSettings(store);
    const { service } = await startBattery('stored', 1);
    expect(service.deviceInstance).toBe(12);
    const items = await client.getItems(serviceName('stored'));
    expect(plain(items['/CustomName']?.Value)).toBe('Boathouse');
    expect(plain(items['/DeviceInstance']?.Value)).toBe(12);
  });

  test('a VRM instance changed in localsettings re-registers the service with the new /DeviceInstance', async () => {
    const settings = await startSettings();
    const { service } = await startBattery('move', 1);
    const name = serviceName('move');
    const changes = await ownerChanges(name);
    settings.set(instancePath('move'), 'battery:7');
    await eventually(() => changes.length >= 2);
    await service.settled();
    expect(changes.map((m) => m.body[2] === '')).toEqual([true, false]);
    expect(service.deviceInstance).toBe(7);
    expect(plain(await client.getValue(name, '/DeviceInstance'))).toBe(7);
  });

  test('without localsettings the configured instance is used; when it appears the service re-registers with the granted one', async () => {
    const { service, lines } = await startBattery('late', 3);
    const name = serviceName('late');
    expect(lines.join('\n')).toContain('no localsettings: using configured instance 3');
    expect(plain(await client.getValue(name, '/DeviceInstance'))).toBe(3);
    // A rename while localsettings is away is kept and saved once it appears.
    expect(await client.setValue(name, '/CustomName', new dbus.Variant('s', 'Early'))).toBe(0);

    const changes = await ownerChanges(name);
    // Another device already holds battery:3, so localsettings grants battery:4.
    const store: SettingsStore = new Map([
      [instancePath('other'), { type: 's', value: 'battery:3', default: 'battery:3' }],
    ]);
    const settings = await startSettings(store);
    await eventually(() => service.deviceInstance === 4 && changes.length >= 2);
    await service.settled();
    expect(changes.map((m) => m.body[2] === '')).toEqual([true, false]);
    expect(plain(await client.getValue(name, '/DeviceInstance'))).toBe(4);
    expect(settings.get(instancePath('late'))).toBe('battery:4');
    await eventually(() => settings.get(namePath('late')) === 'Early');
  });

  test('close() publishes /Connected 0 before it releases the name', async () => {
    const { service } = await startBattery('term');
    const name = serviceName('term');
    service.update(batteryState());
    await client.addMatch(`type='signal',sender='${name}',interface='${BUSITEM}',member='ItemsChanged'`);
    await ownerChanges(name);
    const owner = await client.nameOwner(name);
    const seen = client.record(
      (m) =>
        (m.member === 'ItemsChanged' && m.sender === owner) || (m.member === 'NameOwnerChanged' && m.body[0] === name),
    );
    await service.close();
    await eventually(() => seen.length >= 2);
    expect(seen[0]?.member).toBe('ItemsChanged');
    expect(plain(seen[0]?.body[0]['/Connected'].Value)).toBe(0);
    expect(seen[1]?.member).toBe('NameOwnerChanged');
    expect(seen[1]?.body[2]).toBe('');
    expect(await client.nameOwner(name)).toBeUndefined();
  });

  test('dbus-send --system --print-reply reads /Soc', async () => {
    const { service } = await startBattery('smoke');
    service.update(batteryState());
    const { stdout } = await run(
      'dbus-send',
      ['--system', '--print-reply', `--dest=${serviceName('smoke')}`, '/Soc', 'com.victronenergy.BusItem.GetValue'],
      { env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: daemon.address } },
    );
    expect(stdout).toMatch(/variant\s+double 87\.5/);
  });
});
