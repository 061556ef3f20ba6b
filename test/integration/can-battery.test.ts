/**
 * A CAN battery on the real chain: a simulated Pylon-type battery behind a USB-CAN-A adapter on a pty →
 * config `protocol = pylon-can`, `can_port` → composition root → D-Bus. (SocketCAN is exercised in the
 * User-Mode-Linux guest, test/can/uml.test.ts.)
 */
import { afterAll, expect, test } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { type Running, startService } from '../../src/main.js';
import { CanSimulator, DEFAULT_PYLON } from '../../src/sim/can-simulators.js';
import { UsbCanADevice } from '../../src/sim/usbcan-device.js';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';
import { closeAllPairs, openPair } from '../support/pty.js';

let daemon: DbusDaemon | undefined;
let client: BusClient | undefined;
let running: Running | undefined;
let sim: CanSimulator | undefined;

afterAll(async () => {
  sim?.stop();
  await running?.stop();
  await closeAllPairs();
  client?.close();
  await daemon?.stop();
});

test('a Pylon CAN battery on a USB-CAN-A adapter is published with its values and never above its own limits', async () => {
  daemon = await startDbusDaemon();
  client = await BusClient.connect(daemon.address);
  const pair = await openPair();
  const device = new UsbCanADevice(pair.device);
  const text = `[battery.rack]\nprotocol = pylon-can\ncan_port = ${pair.driverPath}\nstale_after = 3\n`;
  running = startService({
    config: parseConfig([{ file: 'can.ini', text }]),
    logger: createLogger({ level: 'warn', write: () => undefined }),
    version: 'test',
    busAddress: daemon.address,
    onFatal: (e) => {
      throw e;
    },
  });
  await eventually(() => device.speedCode !== undefined, 5000);
  sim = new CanSimulator(device, { family: 'pylon-can', periodMs: 200 });
  sim.start();
  const svc = 'com.victronenergy.battery.batterybank_rack';
  const items = async () => {
    try {
      const raw = await (client as BusClient).getItems(svc);
      return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plain(v.Value)]));
    } catch {
      return {} as Record<string, unknown>;
    }
  };
  await eventually(async () => (await items())['/Connected'] === 1, 8000);
  const v = await items();
  expect(v['/Soc']).toBe(DEFAULT_PYLON.soc);
  expect(Math.abs((v['/Dc/0/Voltage'] as number) - DEFAULT_PYLON.voltage)).toBeLessThan(0.05);
  expect(v['/ProductName']).toBe('Pylon CAN battery');
  // No cell voltages on Pylon CAN: the BMS manages its cells, its own CVL is used and its currents are the
  // ceiling (here the configured 50/60 A are lower than the battery's 74/100 A).
  expect(v['/Info/MaxChargeVoltage']).toBe(DEFAULT_PYLON.chargeVoltage);
  expect(v['/Info/MaxChargeCurrent']).toBe(50);
  expect(v['/Info/MaxDischargeCurrent']).toBe(60);
  expect(v['/Info/ChargeMode']).toBe('BMS managed');
  expect(v['/Mgmt/Connection']).toMatch(/USB-CAN-A|ttys|pts/i);
}, 30_000);
