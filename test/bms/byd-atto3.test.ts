/**
 * BYD Atto 3 pack: the real CAN log of test/fixtures/byd (Battery-Emulator's CI log, GPL-3.0, SOURCE.md), the
 * contract suite, and the driver against a simulated pack over a real USB-CAN-A pty.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { BydAtto3Driver } from '../../src/bms/byd-atto3/driver.js';
import { type BydState, bydSnapshot, decodeBydFrame, isBydId } from '../../src/bms/byd-atto3/protocol.js';
import { decodePylonCanFrame } from '../../src/bms/pylon-can/protocol.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { CanBus } from '../../src/links/can/can-bus.js';
import { parseCanLog } from '../../src/links/can/can-frame.js';
import { UsbCanALink } from '../../src/links/can/usbcan-a-link.js';
import { encodeFixed } from '../../src/links/can/usbcan-a-protocol.js';
import { CanSimulator, DEFAULT_BYD } from '../../src/sim/can-simulators.js';
import { UsbCanADevice } from '../../src/sim/usbcan-device.js';
import { readFixture } from '../support/fixtures.js';
import { closeAllPairs, openPair, waitFor } from '../support/pty.js';
import { describeBmsFamily, describeRefusalByOtherFamilies, expectFrameError } from './contract.js';
import { canFamily, std } from './pylon-can-family.js';

const log = parseCanLog(readFixture('byd/5_BydAtto3_base.txt'));
const byId = (id: number) => log.find((f) => f.id === id) ?? std(id, '');

describe('BYD Atto 3 frames of the real log', () => {
  test('the log holds the five frames', () => {
    expect(log.map((f) => f.id)).toEqual([0x438, 0x444, 0x43a, 0x447, 0x244]);
  });

  test('0x438: 420.0 V', () => {
    expect(decodeBydFrame(byId(0x438))).toEqual({ voltagePrecise: 420 });
  });

  test('0x444: 420 V, 0.0 A, SoH 99 %, SoC 99 %', () => {
    expect(decodeBydFrame(byId(0x444))).toEqual({ voltage: 420, current: 0, soh: 99, soc: 99 });
  });

  test('0x447: coldest sensor 9 at 8 °C, hottest sensor 1 at 24 °C, SoC 99.2 %, average 16 °C', () => {
    expect(decodeBydFrame(byId(0x447))).toEqual({
      coldestSensor: 9,
      temperatureMin: 8,
      hottestSensor: 1,
      temperatureMax: 24,
      socPrecise: 99.2,
      temperatureAverage: 16,
    });
  });

  test('0x43A: insulation 0x1A90', () => {
    expect(decodeBydFrame(byId(0x43a))).toEqual({ insulation: 0x1a90 });
  });

  test('the whole log makes one snapshot', () => {
    const state: BydState = {};
    for (const f of log) if (isBydId(f.id)) Object.assign(state, decodeBydFrame(f));
    expect(bydSnapshot(state, 5)).toEqual({
      timestampMs: 5,
      voltage: 420,
      current: 0,
      power: 0,
      soc: 99.2,
      soh: 99,
      cellCount: 126,
      temperatures: [
        { name: 'min (sensor 9)', celsius: 8 },
        { name: 'max (sensor 1)', celsius: 24 },
        { name: 'average', celsius: 16 },
      ],
      protection: {},
      identity: { manufacturer: 'BYD', model: 'Atto 3 pack' },
    });
  });

  test('a flipped bit fails the frame checksum; a short frame its length', () => {
    const bad = byId(0x444).data.slice();
    bad[3] = (bad[3] as number) ^ 1;
    expectFrameError(() => decodeBydFrame({ id: 0x444, ext: false, data: bad }), 'bad-checksum');
    expectFrameError(() => decodeBydFrame({ id: 0x444, ext: false, data: bad.subarray(0, 7) }), 'bad-length');
    expectFrameError(() => decodeBydFrame(byId(0x244)), 'unexpected-reply');
  });
});

const goldens = log.filter((f) => isBydId(f.id)).map((frame) => ({ name: `Atto 3 ${frame.id.toString(16)}`, frame }));
const badSum = byId(0x447).data.slice();
badSum[7] = (badSum[7] as number) ^ 0x80;
const bydFamily = canFamily('byd-atto3', goldens, (f) => decodeBydFrame(f), [
  {
    name: '0x447 with a bad BYD checksum',
    bytes: encodeFixed({ id: 0x447, ext: false, data: badSum }),
    code: 'bad-checksum',
  },
]);
describeBmsFamily(bydFamily);
describeRefusalByOtherFamilies(bydFamily, [
  bydFamily,
  canFamily('pylon-can', [{ name: 'x', frame: std(0x356, '96 14 8B 00 82 00 00 00') }], (f) => decodePylonCanFrame(f)),
]);

describe('BydAtto3Driver with a simulated pack over a USB-CAN-A pty (250 kbit/s setup)', () => {
  afterEach(closeAllPairs);

  test('snapshots at the pack rate, listen-only', async () => {
    const pair = await openPair();
    const device = new UsbCanADevice(pair.device, 'fixed');
    const bus = new CanBus(new UsbCanALink({ path: pair.driverPath, bitrate: 250_000 }));
    const driver = new BydAtto3Driver({ bus });
    const snapshots: BatterySnapshot[] = [];
    driver.onSnapshot((s) => snapshots.push(s));
    driver.start();
    await waitFor(() => device.speedCode !== undefined, 3000, 'setup command');
    expect(device.speedCode).toBe(0x05);
    const sim = new CanSimulator(device, { family: 'byd-atto3' });
    sim.start();
    try {
      await waitFor(() => snapshots.length >= 3, 5000, 'three snapshots');
    } finally {
      sim.stop();
      await driver.stop();
    }
    const s = snapshots.at(-1) as BatterySnapshot;
    expect(s.voltage).toBe(DEFAULT_BYD.voltage);
    expect(s.soc).toBe(DEFAULT_BYD.soc);
    expect(s.soh).toBe(DEFAULT_BYD.soh);
    expect(s.current).toBeLessThan(0);
    expect(device.received).toEqual([]);
  });
});
