import * as dbus from 'dbus-next';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_PRODUCT_ID } from '../../src/dbus/battery-paths.js';
import { BatteryService } from '../../src/dbus/battery-service.js';
import { DbusConnection } from '../../src/dbus/connection.js';
import { TimeoutError } from '../../src/domain/errors.js';
import { createLogger } from '../../src/log.js';
import { BusClient, eventually } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
import { batteryState } from './battery-state-fixture.js';

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

/** A peer that owns `name` and swallows every method call without replying. */
async function startSilentPeer(address: string, name: string): Promise<dbus.MessageBus> {
  const bus = dbus.sessionBus({ busAddress: address });
  bus.on('error', () => {});
  bus.addMethodHandler(() => true);
  await bus.requestName(name, dbus.NameFlag.DO_NOT_QUEUE);
  return bus;
}

async function open(address = daemon.address, callTimeoutMs = 2000): Promise<DbusConnection> {
  const conn = await DbusConnection.open({ busAddress: address, callTimeoutMs });
  cleanups.push(() => conn.close());
  return conn;
}

describe('DbusConnection', () => {
  test('open() rejects when no bus listens at the address', async () => {
    await expect(DbusConnection.open({ busAddress: 'unix:path=/nonexistent/batterybank.sock' })).rejects.toThrow(
      /cannot connect/,
    );
  });

  test('without an address it opens the system bus named by DBUS_SYSTEM_BUS_ADDRESS', async () => {
    const saved = process.env.DBUS_SYSTEM_BUS_ADDRESS;
    process.env.DBUS_SYSTEM_BUS_ADDRESS = daemon.address;
    try {
      const conn = await DbusConnection.open();
      cleanups.push(() => conn.close());
      expect(conn.uniqueName).toMatch(/^:/);
      // The private daemon knows this connection: it is on the bus we pointed the variable at.
      expect(await client.nameOwner(conn.uniqueName)).toBe(conn.uniqueName);
    } finally {
      if (saved === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS;
      else process.env.DBUS_SYSTEM_BUS_ADDRESS = saved;
    }
  });

  test('call() rejects with TimeoutError when the peer never answers', async () => {
    const peer = await startSilentPeer(daemon.address, 'org.batterybank.Silent');
    cleanups.push(() => peer.disconnect());
    const conn = await open();
    await expect(
      conn.call({ destination: 'org.batterybank.Silent', path: '/', interface: 'org.example.X', member: 'Hang' }, 150),
    ).rejects.toBeInstanceOf(TimeoutError);
    // The connection is still usable afterwards.
    expect(await conn.getNameOwner('org.batterybank.Silent')).toMatch(/^:/);
  });

  test('an error reply rejects the call', async () => {
    const conn = await open();
    await expect(
      conn.call({ destination: 'org.batterybank.Nobody', path: '/', interface: 'org.example.X', member: 'Hi' }),
    ).rejects.toThrow(/ServiceUnknown|not provided|Nobody/);
    expect(await conn.getNameOwner('org.batterybank.Nobody')).toBeUndefined();
  });

  test('close() is not reported as a lost bus', async () => {
    const conn = await open();
    const lost: Error[] = [];
    conn.onLost((e) => lost.push(e));
    conn.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(lost).toEqual([]);
    expect(conn.isOpen).toBe(false);
    await expect(conn.callBus('ListNames')).rejects.toThrow(/closed/);
  });
});

describe('losing the bus', () => {
  test('a killed dbus-daemon is reported once through onLost and onBusLost; pending calls time out', async () => {
    const own = await startDbusDaemon();
    cleanups.push(() => own.stop());
    const peer = await startSilentPeer(own.address, 'org.batterybank.Silent');
    cleanups.push(() => peer.disconnect());
    const conn = await open(own.address, 300);
    const service = await BatteryService.create({
      id: 'lost',
      serviceName: 'com.victronenergy.battery.batterybank_lost',
      cellCount: 4,
      productId: DEFAULT_PRODUCT_ID,
      deviceInstance: 1,
      processName: 'dbus-batterybank',
      processVersion: '0.1.0',
      logger: createLogger({ level: 'error', write: () => {} }),
      busAddress: own.address,
      callTimeoutMs: 300,
    });
    cleanups.push(() => service.close());
    const connLost: Error[] = [];
    const serviceLost: Error[] = [];
    conn.onLost((e) => connLost.push(e));
    service.onBusLost((e) => serviceLost.push(e));

    // A call the peer never answers: on a dead bus it would never settle without our timeout.
    const pending = conn.call({
      destination: 'org.batterybank.Silent',
      path: '/',
      interface: 'org.example.X',
      member: 'Hang',
    });
    await own.kill();

    await eventually(() => connLost.length > 0 && serviceLost.length > 0);
    await expect(pending).rejects.toThrow();
    expect(conn.isLost).toBe(true);
    await expect(conn.callBus('ListNames')).rejects.toThrow(/lost/);
    // Updates after the loss are harmless no-ops rather than crashes.
    expect(() => service.update(batteryState())).not.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    expect(connLost).toHaveLength(1);
    expect(serviceLost).toHaveLength(1);
    // A listener registered late hears about it at once.
    const late: Error[] = [];
    service.onBusLost((e) => late.push(e));
    expect(late).toHaveLength(1);
  });
});
