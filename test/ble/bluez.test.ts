/** The BlueZ D-Bus backend against a BlueZ stand-in on a private dbus-daemon, with our simulators behind it. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DALY_BLE_PROFILE, DalyBleDriver } from '../../src/bms/daly/ble-driver.js';
import { JBD_BLE_PROFILE, JbdBleDriver } from '../../src/bms/jbd/ble-driver.js';
import { JK_BLE_PROFILE, JkBleDriver } from '../../src/bms/jk-ble/driver.js';
import { scanCommand } from '../../src/cli/scan.js';
import { BluezBleLink, devicePath } from '../../src/dbus/ble-bluez.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { JkBleSimulator } from '../../src/sim/ble-jk-simulator.js';
import { DalySimulator } from '../../src/sim/daly-simulator.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
import { FakeBluez } from '../support/fake-bluez.js';
import { until } from './fake-ble.js';

describe('BLE over BlueZ D-Bus (stand-in bluetoothd on a private bus)', () => {
  let daemon: DbusDaemon;
  let bluez: FakeBluez;
  let ble: BluezBleLink;
  const jbd = new JbdSimulator({ cells: 8, seed: 21 });
  const daly = new DalySimulator({ cells: 4, allCellFrames: true, seed: 22 });
  const jk = new JkBleSimulator({ cells: 8, seed: 23, streamIntervalMs: 200 });

  beforeAll(async () => {
    daemon = await startDbusDaemon();
    bluez = await FakeBluez.start(daemon.address);
    bluez.addDevice({
      address: 'a4:c1:38:00:00:01',
      name: 'xiaoxiang BMS',
      rssi: -61,
      profile: JBD_BLE_PROFILE,
      sim: jbd,
    });
    bluez.addDevice({
      address: 'a4:c1:38:00:00:02',
      name: 'DL-BLUEZ',
      rssi: -70,
      profile: DALY_BLE_PROFILE,
      sim: daly,
    });
    bluez.addDevice({ address: 'c8:47:8c:00:00:03', name: 'JK_B2A8S20P', rssi: -55, profile: JK_BLE_PROFILE, sim: jk });
    ble = new BluezBleLink({ adapter: 'hci0', busAddress: daemon.address });
  });

  afterAll(async () => {
    await ble?.close();
    await bluez?.stop();
    await daemon?.stop();
  });

  it('maps addresses to BlueZ object paths', () => {
    expect(devicePath('hci1', 'a4:c1:38:00:00:0a')).toBe('/org/bluez/hci1/dev_A4_C1_38_00_00_0A');
  });

  it('powers the adapter on and scans: names, RSSI, families and config lines', async () => {
    const lines: string[] = [];
    const found = await scanCommand({ ble, durationMs: 300, print: (l) => lines.push(l) });
    expect(found.map((f) => [f.name, f.family, f.rssi])).toEqual([
      ['JK_B2A8S20P', 'jk-ble', -55],
      ['xiaoxiang BMS', 'jbd', -61],
      ['DL-BLUEZ', 'daly', -70],
    ]);
    expect(lines).toContain('mac = a4:c1:38:00:00:01');
    expect(bluez.calls).toContain('org.bluez.Adapter1.StartDiscovery');
  });

  it('JBD: connect, notifications reassembled, snapshot equals the simulator; reconnect after a remote disconnect', async () => {
    jbd.setValues(jbd.values());
    const driver = new JbdBleDriver({ ble, address: 'A4:C1:38:00:00:01', pollIntervalMs: 300 });
    const snaps: BatterySnapshot[] = [];
    driver.onSnapshot((s) => snaps.push(s));
    driver.start();
    await until(() => snaps.length >= 1, 5000, 'JBD snapshot');
    const v = jbd.values();
    expect(snaps[0]?.voltage).toBeCloseTo(v.voltage, 2);
    expect(snaps[0]?.cellVoltages).toEqual(v.cells);
    expect(bluez.calls).toContain('org.bluez.GattCharacteristic1.StartNotify');
    const n = snaps.length;
    bluez.remoteDisconnect('a4:c1:38:00:00:01');
    await until(() => driver.link.stats.connects >= 2 && snaps.length > n + 1, 5000, 'JBD reconnect');
    await driver.stop();
  });

  it('Daly over BlueZ', async () => {
    daly.setValues(daly.values());
    const driver = new DalyBleDriver({ ble, address: 'a4:c1:38:00:00:02', pollIntervalMs: 400 });
    const snaps: BatterySnapshot[] = [];
    driver.onSnapshot((s) => snaps.push(s));
    driver.start();
    await until(() => snaps.length >= 1, 5000, 'Daly snapshot');
    expect(snaps[0]?.cellVoltages).toEqual(daly.values().cells);
    await driver.stop();
  });

  it('JK streams over BlueZ; a vanished peer trips the watchdog', async () => {
    jk.setValues(jk.values());
    const driver = new JkBleDriver({ ble, address: 'c8:47:8c:00:00:03', noDataTimeoutMs: 600 });
    const snaps: BatterySnapshot[] = [];
    driver.onSnapshot((s) => snaps.push(s));
    driver.start();
    await until(() => snaps.length >= 2, 5000, 'JK snapshots');
    expect(snaps[1]?.soc).toBe(jk.values().soc);
    expect(snaps[1]?.cellVoltages).toEqual(jk.values().cells);
    bluez.vanish('c8:47:8c:00:00:03');
    await until(() => driver.link.stats.watchdogTrips >= 1, 3000, 'watchdog');
    await driver.stop();
  });
});
