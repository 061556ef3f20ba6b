import * as dbus from 'dbus-next';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_PRODUCT_ID } from '../../src/dbus/battery-paths.js';
import { BatteryService } from '../../src/dbus/battery-service.js';
import { formatStatusTable, readBatteryStatus, StatusReader, type StatusRecord } from '../../src/dbus/status-reader.js';
import { createLogger } from '../../src/log.js';
import { eventually } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
import { batteryState, snapshot } from './battery-state-fixture.js';

let daemon: DbusDaemon;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  daemon = await startDbusDaemon();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await daemon?.stop();
});

async function startBattery(id: string, deviceInstance: number) {
  const service = await BatteryService.create({
    id,
    serviceName: `com.victronenergy.battery.batterybank_${id}`,
    cellCount: 4,
    productId: DEFAULT_PRODUCT_ID,
    deviceInstance,
    processName: 'dbus-batterybank',
    processVersion: '0.1.0',
    logger: createLogger({ level: 'error', write: () => {} }),
    busAddress: daemon.address,
  });
  cleanups.push(() => service.close());
  return service;
}

async function openReader(callTimeoutMs = 2000) {
  const reader = await StatusReader.open({ busAddress: daemon.address, callTimeoutMs });
  cleanups.push(() => reader.close());
  return reader;
}

describe('StatusReader', () => {
  test('lists only battery services and reads their items as plain values', async () => {
    const house = await startBattery('house', 1);
    house.update(batteryState());
    await startBattery('shed', 2); // never updated: disconnected, values invalid
    const other = dbus.sessionBus({ busAddress: daemon.address });
    other.on('error', () => {});
    await other.requestName('com.victronenergy.solarcharger.tty1', 0);
    cleanups.push(() => other.disconnect());

    const records = await readBatteryStatus({ busAddress: daemon.address });
    expect(records.map((r) => r.service)).toEqual([
      'com.victronenergy.battery.batterybank_house',
      'com.victronenergy.battery.batterybank_shed',
    ]);
    const [h, s] = records;
    expect(h?.items['/Soc']).toBe(87.5);
    expect(h?.items['/Connected']).toBe(1);
    expect(h?.items['/ProductName']).toBe('JBD BMS');
    expect(h?.items['/System/MinVoltageCellId']).toBe('C3');
    expect(s?.items['/Connected']).toBe(0);
    expect(s?.items['/Soc']).toBeUndefined();
    expect('/Soc' in (s?.items ?? {})).toBe(true);
  });

  test('a service that does not answer is reported with an error instead of hanging', async () => {
    const silent = dbus.sessionBus({ busAddress: daemon.address });
    silent.on('error', () => {});
    silent.addMethodHandler(() => true);
    await silent.requestName('com.victronenergy.battery.silent', 0);
    cleanups.push(() => silent.disconnect());
    const reader = await openReader(200);
    const [record] = await reader.readAll();
    expect(record?.service).toBe('com.victronenergy.battery.silent');
    expect(record?.error).toMatch(/no reply/);
  });

  test('subscribe() calls back with the changed values of each ItemsChanged, until unsubscribed', async () => {
    const service = await startBattery('live', 3);
    service.update(batteryState());
    const reader = await openReader();
    const changes: Record<string, unknown>[] = [];
    const unsubscribe = await reader.subscribe('com.victronenergy.battery.batterybank_live', (c) => changes.push(c));
    service.update(batteryState({ snapshot: snapshot({ soc: 50, capacityRemaining: 50 }) }));
    await eventually(() => changes.length === 1);
    expect(changes[0]).toMatchObject({ '/Soc': 50, '/Capacity': 50, '/ConsumedAmphours': -50 });
    expect(Object.keys(changes[0] ?? {})).not.toContain('/Dc/0/Voltage');

    await unsubscribe();
    service.update(batteryState({ snapshot: snapshot({ soc: 40 }) }));
    // The reader stays quiet: read something through it as a barrier, then check.
    await reader.read('com.victronenergy.battery.batterybank_live');
    await new Promise((r) => setTimeout(r, 50));
    expect(changes).toHaveLength(1);
  });
});

describe('formatStatusTable', () => {
  const records: StatusRecord[] = [
    {
      service: 'com.victronenergy.battery.batterybank_house',
      items: {
        '/CustomName': 'House',
        '/ProductName': 'JBD BMS',
        '/Connected': 1,
        '/Dc/0/Voltage': 53.214,
        '/Dc/0/Current': -12.34,
        '/Soc': 87.5,
        '/Info/MaxChargeVoltage': 56.8,
        '/Info/MaxChargeCurrent': 100,
        '/Info/MaxDischargeCurrent': 150,
        '/System/MinCellVoltage': 3.301,
        '/System/MaxCellVoltage': 3.335,
      },
    },
    {
      service: 'com.victronenergy.battery.batterybank_shed',
      items: { '/CustomName': '', '/ProductName': 'Daly BMS', '/Connected': 0, '/Dc/0/Voltage': undefined },
    },
    { service: 'com.victronenergy.battery.silent', items: {}, error: 'no reply in 200 ms' },
  ];

  test('prints one aligned row per service with the key values', () => {
    const lines = formatStatusTable(records).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^SERVICE\s+NAME\s+CONN\s+V\s+A\s+SOC%\s+CVL\/CCL\/DCL\s+CELL MIN\/MAX V$/);
    expect(lines[1]).toMatch(
      /^batterybank_house\s+House\s+yes\s+53\.21\s+-12\.3\s+88\s+56\.80\/100\/150\s+3\.301\/3\.335$/,
    );
    // No custom name: the product name; invalid values: '-'.
    expect(lines[2]).toMatch(/^batterybank_shed\s+Daly BMS\s+no\s+-\s+-\s+-\s+-\/-\/-\s+-\/-$/);
    expect(lines[3]).toMatch(/^silent\s+error: no reply in 200 ms$/);
    // Columns line up: every row has its NAME column at the same offset.
    const nameAt = lines[0]?.indexOf('NAME');
    expect(lines[1]?.indexOf('House')).toBe(nameAt);
    expect(lines[2]?.indexOf('Daly BMS')).toBe(nameAt);
  });

  test('says so when there is no battery service', () => {
    expect(formatStatusTable([])).toBe('no battery services on the bus');
  });
});
