/**
 * Bluetooth batteries through the composition root: `protocol = jbd` with `mac = …` and `protocol = jk-ble`
 * on the default BlueZ backend → D-Bus. BlueZ is the stand-in of test/support/fake-bluez.ts on the private
 * bus (bluetoothd cannot run here); the real noble stack on BlueZ's controller emulator is tested in
 * test/ble/ble-stack.test.ts.
 */
import { afterAll, expect, test } from 'vitest';
import { JBD_BLE_PROFILE } from '../../src/bms/jbd/ble-driver.js';
import { JK_BLE_PROFILE } from '../../src/bms/jk-ble/driver.js';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { type Running, startService } from '../../src/main.js';
import { JkBleSimulator } from '../../src/sim/ble-jk-simulator.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
import { FakeBluez } from '../support/fake-bluez.js';

let daemon: DbusDaemon | undefined;
let bluez: FakeBluez | undefined;
let client: BusClient | undefined;
let running: Running | undefined;

afterAll(async () => {
  await running?.stop();
  client?.close();
  await bluez?.stop();
  await daemon?.stop();
});

test('a JBD and a JK BMS over Bluetooth are published with their values', async () => {
  daemon = await startDbusDaemon();
  bluez = await FakeBluez.start(daemon.address);
  const jbd = new JbdSimulator({ cells: 8, seed: 31 });
  jbd.setValues({ soc: 64 });
  bluez.addDevice({
    address: 'a4:c1:38:00:00:11',
    name: 'xiaoxiang BMS',
    rssi: -60,
    profile: JBD_BLE_PROFILE,
    sim: jbd,
  });
  const jk = new JkBleSimulator({ cells: 8, seed: 32, streamIntervalMs: 200 });
  bluez.addDevice({ address: 'c8:47:8c:00:00:12', name: 'JK_B2A8S20P', rssi: -55, profile: JK_BLE_PROFILE, sim: jk });
  client = await BusClient.connect(daemon.address);
  const text =
    '[battery.shed]\nprotocol = jbd\nmac = A4:C1:38:00:00:11\npoll_interval = 0.5\nreply_timeout = 0.4\n' +
    '[battery.van]\nprotocol = jk-ble\nmac = C8:47:8C:00:00:12\n';
  running = startService({
    config: parseConfig([{ file: 'ble.ini', text }]),
    logger: createLogger({ level: 'warn', write: () => undefined }),
    version: 'test',
    busAddress: daemon.address,
    onFatal: (e) => {
      throw e;
    },
  });
  const items = async (id: string) => {
    try {
      const raw = await (client as BusClient).getItems(`com.victronenergy.battery.batterybank_${id}`);
      return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plain(v.Value)]));
    } catch {
      return {} as Record<string, unknown>;
    }
  };
  await eventually(async () => (await items('shed'))['/Connected'] === 1, 10_000);
  await eventually(async () => (await items('van'))['/Connected'] === 1, 10_000);
  const shed = await items('shed');
  expect(shed['/Soc']).toBe(64);
  expect(shed['/System/NrOfCellsPerBattery']).toBe(8);
  expect(shed['/Mgmt/Connection']).toBe('BLE A4:C1:38:00:00:11');
  const van = await items('van');
  expect(van['/ProductName']).toBe('JK BMS');
  expect(van['/System/NrOfCellsPerBattery']).toBe(8);
}, 30_000);

test('eight JBD batteries over Bluetooth in one process, on one adapter', async () => {
  await running?.stop();
  running = undefined;
  const d = daemon as DbusDaemon;
  const b = bluez as FakeBluez;
  let text = '';
  for (let i = 0; i < 8; i++) {
    const sim = new JbdSimulator({ cells: 4, seed: 50 + i });
    sim.setValues({ soc: 40 + i });
    const mac = `a4:c1:38:00:01:${String(i).padStart(2, '0')}`;
    b.addDevice({ address: mac, name: `xiaoxiang ${i}`, rssi: -60 - i, profile: JBD_BLE_PROFILE, sim });
    text += `[battery.b${i}]\nprotocol = jbd\nmac = ${mac.toUpperCase()}\npoll_interval = 1\nreply_timeout = 0.8\n`;
  }
  running = startService({
    config: parseConfig([{ file: 'ble8.ini', text }]),
    logger: createLogger({ level: 'warn', write: () => undefined }),
    version: 'test',
    busAddress: d.address,
    onFatal: (e) => {
      throw e;
    },
  });
  const soc = async (i: number) => {
    try {
      const v = await (client as BusClient).getValue(`com.victronenergy.battery.batterybank_b${i}`, '/Soc');
      return plain(v);
    } catch {
      return undefined;
    }
  };
  for (let i = 0; i < 8; i++) await eventually(async () => (await soc(i)) === 40 + i, 20_000);
}, 60_000);
