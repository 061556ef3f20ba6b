/**
 * Pylon LV CAN: the real frames quoted and decoded in protocols.md §4.3 (Seplos → Venus GX, Pylontech sample
 * set, Discover via Lynx II, Pytes in Victron mode), the contract suite, and the driver against a simulated
 * battery over a real USB-CAN-A pty.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { decodeCanText } from '../../src/bms/pylon-can/can-decode.js';
import { PylonCanDriver } from '../../src/bms/pylon-can/driver.js';
import {
  applyPylonCan,
  decodePylonCanFrame,
  type PylonCanState,
  pylonSnapshot,
} from '../../src/bms/pylon-can/protocol.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { CanBus } from '../../src/links/can/can-bus.js';
import { parseCanLog } from '../../src/links/can/can-frame.js';
import { UsbCanALink } from '../../src/links/can/usbcan-a-link.js';
import { encodeFixed } from '../../src/links/can/usbcan-a-protocol.js';
import { CanSimulator, DEFAULT_PYLON } from '../../src/sim/can-simulators.js';
import { UsbCanADevice } from '../../src/sim/usbcan-device.js';
import { closeAllPairs, openPair, waitFor } from '../support/pty.js';
import { describeBmsFamily, expectFrameError } from './contract.js';
import { canFamily, std } from './pylon-can-family.js';

const seplos = parseCanLog(`
305 [8] 00 00 00 00 00 00 00 00
307 [8] 12 34 56 78 56 49 43 00
351 [8] 43 02 E8 03 9E 07 D0 01
355 [8] 3C 00 64 00 84 17 00 00
356 [8] 61 14 D3 FE EB 00 1A 00
35A [8] AA AA AA 02 AA AA AA 02
35E [8] 53 48 45 6E 65 72 67 79
35F [8] 00 00 10 04 30 01 00 00
373 [8] B9 0C C2 0C 27 01 28 01
`);

const pylontech = {
  f351: std(0x351, '14 02 74 0E 74 0E CC 01'),
  f355: std(0x355, '1A 00 64 00'),
  f356: std(0x356, '02 13 00 00 4A 01'),
  f359: std(0x359, '00 00 00 00 0A 50 4E'),
  f35c: std(0x35c, 'C0 00'),
  f35e: std(0x35e, '50 59 4C 4F 4E 20 20 20'),
};

const pylonGoldens = [
  ...seplos
    .filter((f) => f.id !== 0x305 && f.id !== 0x307)
    .map((frame) => ({ name: `Seplos ${frame.id.toString(16)}`, frame })),
  ...Object.entries(pylontech).map(([k, frame]) => ({ name: `Pylontech ${k.slice(1)}`, frame })),
  { name: 'Discover 351', frame: std(0x351, '2E 02 04 0B 04 0B B0 01') },
  { name: 'Discover 354', frame: std(0x354, '2C 01 BA 00') },
  { name: 'Discover 355', frame: std(0x355, '3E 00 64 00') },
  { name: 'Discover 35A', frame: std(0x35a, 'AB AA FE AF AA FA FF') },
  { name: 'Pytes 351', frame: std(0x351, '14 02 FA 00 FA 00 BD 01') },
  { name: 'Deye 356 (USB-CAN-A capture)', frame: std(0x356, '96 14 8B 00 82 00 00 00') },
];

describe('Pylon CAN decoding of real frames (protocols.md §4.3)', () => {
  test('Seplos → Venus GX set (A)', () => {
    const state: PylonCanState = {};
    for (const f of seplos) if (f.id !== 0x305 && f.id !== 0x307) applyPylonCan(state, decodePylonCanFrame(f));
    expect(state.limits).toEqual({
      chargeVoltage: 57.9,
      chargeCurrent: 100,
      dischargeCurrent: 195,
      dischargeVoltage: 46.4,
    });
    expect(state.soc).toBe(60.2);
    expect(state.soh).toBe(100);
    expect(state.voltage).toBe(52.17);
    expect(state.current).toBe(-30.1);
    expect(state.temperature).toBe(23.5);
    expect(state.manufacturer).toBe('SHEnergy');
    expect(state.capacityOnline).toBe(304);
    expect(state.cellMinVoltage).toBe(3.257);
    expect(state.cellMaxVoltage).toBe(3.266);
    expect(state.cellMinTemperature).toBe(21.85);
    expect(state.cellMaxTemperature).toBe(22.85);
    // 35A all OK: every supported pair reads "inactive".
    expect(Object.values(state.alarms35a ?? {}).every((v) => v === false)).toBe(true);
    const s = pylonSnapshot(state, 1000);
    expect(s).toMatchObject({
      timestampMs: 1000,
      voltage: 52.17,
      current: -30.1,
      soc: 60.2,
      soh: 100,
      capacityInstalled: 304,
      temperatures: [{ name: 'battery', celsius: 23.5 }],
      identity: { manufacturer: 'SHEnergy' },
      bmsLimits: { chargeVoltage: 57.9, chargeCurrent: 100, dischargeCurrent: 195, dischargeVoltage: 46.4 },
    });
    expect(s.power).toBeCloseTo(52.17 * -30.1, 2);
    expect(s.capacityRemaining).toBeCloseTo(183, 0);
  });

  test('Pylontech sample set (B)', () => {
    expect(decodePylonCanFrame(pylontech.f351)).toEqual({
      limits: { chargeVoltage: 53.2, chargeCurrent: 370, dischargeCurrent: 370, dischargeVoltage: 46 },
    });
    expect(decodePylonCanFrame(pylontech.f355)).toEqual({ soc: 26, soh: 100 });
    expect(decodePylonCanFrame(pylontech.f356)).toEqual({ voltage: 48.66, current: 0, temperature: 33 });
    const p = decodePylonCanFrame(pylontech.f359);
    expect(p.modules).toBe(10);
    expect(p.warnings).toEqual([]);
    expect(Object.values(p.protection ?? {}).every((v) => v === false)).toBe(true);
    expect(decodePylonCanFrame(pylontech.f35c).requests).toMatchObject({ chargeEnable: true, dischargeEnable: true });
    expect(decodePylonCanFrame(pylontech.f35e)).toEqual({ manufacturer: 'PYLON' });
  });

  test('Discover via Lynx II (C): capacity frame, mixed 35A pairs, and its 0.1 V voltage deviation', () => {
    expect(decodePylonCanFrame(std(0x351, '2E 02 04 0B 04 0B B0 01')).limits).toEqual({
      chargeVoltage: 55.8,
      chargeCurrent: 282,
      dischargeCurrent: 282,
      dischargeVoltage: 43.2,
    });
    expect(decodePylonCanFrame(std(0x354, '2C 01 BA 00'))).toEqual({ capacityInstalled: 300, capacityRemaining: 186 });
    expect(decodePylonCanFrame(std(0x355, '3E 00 64 00'))).toEqual({ soc: 62, soh: 100 });
    const f356 = std(0x356, '0A 02 11 FF BE 00');
    expect(decodePylonCanFrame(f356)).toEqual({ voltage: 5.22, current: -23.9, temperature: 19 });
    expect(decodePylonCanFrame(f356, { voltageScale: 0.1 })).toEqual({
      voltage: 52.2,
      current: -23.9,
      temperature: 19,
    });
    // AB = 10 10 10 11: general n/s, high V ok, low V ok, high T ok; no alarm active anywhere.
    const a = decodePylonCanFrame(std(0x35a, 'AB AA FE AF AA FA FF')).alarms35a ?? {};
    expect(Object.values(a).some((v) => v === true)).toBe(false);
    expect(decodePylonCanFrame(std(0x35e, '44 49 53 43 4F 56 45 52'))).toEqual({ manufacturer: 'DISCOVER' });
  });

  test('Pytes in Victron mode (D) and Deye 0x356 (E)', () => {
    expect(decodePylonCanFrame(std(0x351, '14 02 FA 00 FA 00 BD 01')).limits).toEqual({
      chargeVoltage: 53.2,
      chargeCurrent: 25,
      dischargeCurrent: 25,
      dischargeVoltage: 44.5,
    });
    expect(decodePylonCanFrame(std(0x356, '96 14 8B 00 82 00 00 00'))).toEqual({
      voltage: 52.7,
      current: 13.9,
      temperature: 13,
    });
  });

  test('protection and alarm bits of 0x359, and 0x35A active pairs', () => {
    const p = decodePylonCanFrame(std(0x359, '9E 09 9E 09 01 50 4E'));
    expect(p.protection).toEqual({
      cellOverVoltage: true,
      cellUnderVoltage: true,
      chargeOverTemperature: true,
      dischargeOverTemperature: true,
      chargeUnderTemperature: true,
      dischargeUnderTemperature: true,
      dischargeOverCurrent: true,
      chargeOverCurrent: true,
      internalFailure: true,
    });
    expect(p.warnings).toEqual([
      'high voltage',
      'low voltage',
      'high temperature',
      'low temperature',
      'high discharge current',
      'high charge current',
      'internal communication',
    ]);
    // pair 1 (high V) = 01 → active; pair 10 (short circuit, byte 2 bits 4–5) = 01 → active.
    const a = decodePylonCanFrame(std(0x35a, 'A6 AA 9A AA AA AA AA AA')).alarms35a;
    expect(a?.packOverVoltage).toBe(true);
    expect(a?.shortCircuit).toBe(true);
    expect(a?.packUnderVoltage).toBe(false);
  });

  test('0x35C with charging disabled makes the charge current limit 0 A', () => {
    const state: PylonCanState = {};
    applyPylonCan(state, decodePylonCanFrame(pylontech.f351));
    applyPylonCan(state, decodePylonCanFrame(std(0x35c, '40 00')));
    const s = pylonSnapshot(state, 0);
    expect(s.bmsLimits).toEqual({ chargeVoltage: 53.2, chargeCurrent: 0, dischargeCurrent: 370, dischargeVoltage: 46 });
    expect(s.chargeFet).toBe(false);
    expect(s.dischargeFet).toBe(true);
  });

  test('short frames: first fields required, optional tails tolerated', () => {
    expect(decodePylonCanFrame(std(0x351, '14 02 74 0E 74 0E'))).toEqual({
      limits: { chargeVoltage: 53.2, chargeCurrent: 370, dischargeCurrent: 370 },
    });
    expectFrameError(() => decodePylonCanFrame(std(0x351, '14 02 74')), 'bad-length');
    expectFrameError(() => decodePylonCanFrame(std(0x356, '02')), 'bad-length');
    expectFrameError(() => decodePylonCanFrame(std(0x305, '00')), 'unexpected-reply');
  });
});

describeBmsFamily(
  canFamily('pylon-can', pylonGoldens, (f) => decodePylonCanFrame(f), [
    {
      name: '0x351 with 3 data bytes',
      bytes: encodeFixed(std(0x351, '14 02 74')),
      code: 'bad-length',
    },
  ]),
);

describe('PylonCanDriver with a simulated battery over a USB-CAN-A pty', () => {
  afterEach(closeAllPairs);

  test('snapshots with the BMS limits, and the 0x305 keep-alive towards the battery', async () => {
    const pair = await openPair();
    const device = new UsbCanADevice(pair.device);
    const bus = new CanBus(new UsbCanALink({ path: pair.driverPath, bitrate: 500_000 }));
    const driver = new PylonCanDriver({ bus, keepAliveMs: 50 });
    const snapshots: BatterySnapshot[] = [];
    driver.onSnapshot((s) => snapshots.push(s));
    driver.start();
    await waitFor(() => device.speedCode !== undefined, 3000, 'setup command');
    expect(device.speedCode).toBe(0x03);
    const sim = new CanSimulator(device, { family: 'pylon-can', periodMs: 50 });
    sim.start();
    try {
      await waitFor(() => snapshots.length >= 3, 5000, 'three snapshots');
      await waitFor(() => device.received.some((f) => f.id === 0x305), 3000, 'keep-alive 0x305');
    } finally {
      sim.stop();
      await driver.stop();
    }
    const s = snapshots.at(-1) as BatterySnapshot;
    expect(s.voltage).toBe(DEFAULT_PYLON.voltage);
    expect(s.soc).toBe(DEFAULT_PYLON.soc);
    expect(s.identity.manufacturer).toBe('PYLON');
    expect(s.bmsLimits).toEqual({
      chargeVoltage: 53.2,
      chargeCurrent: 74,
      dischargeCurrent: 100,
      dischargeVoltage: 46,
    });
    expect(device.received.find((f) => f.id === 0x305)?.data).toEqual(new Uint8Array(8));
  });
});

describe('decodeCanText (the decode hook)', () => {
  test('candump text of each family', () => {
    expect(decodeCanText('351#1402740E740ECC01\n# comment\n\n305#0000000000000000', 'pylon-can')).toEqual([
      {
        frame: '351#1402740E740ECC01',
        values: { limits: { chargeVoltage: 53.2, chargeCurrent: 370, dischargeCurrent: 370, dischargeVoltage: 46 } },
      },
      { frame: '305#0000000000000000' },
    ]);
    expect(decodeCanText('(0.001) RX0 444 [8] A4 01 88 13 63 63 00 F9', 'byd-atto3')).toEqual([
      { frame: '444#A4018813636300F9', values: { voltage: 420, current: 0, soh: 99, soc: 99 } },
    ]);
    expect(decodeCanText('364#0200000002000000', 'deye-can')[0]?.values).toEqual({
      kind: 'array',
      part: { packCount: 2 },
    });
    expect(decodeCanText('351#14', 'pylon-can')[0]?.error).toMatch(/bad-length/);
    expect(decodeCanText('nonsense', 'pylon-can')[0]?.error).toMatch(/not a CAN frame/);
  });
});
