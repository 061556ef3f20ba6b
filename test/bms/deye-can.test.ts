/**
 * Deye rack CAN: the two real USB-CAN-A captures of protocols.md §5.2 (adapter bytes included), the per-pack frame
 * table of docs/protocols/deye-can.md (no licensed per-pack capture exists: those rows are checked against values
 * built from the table, marked so), the contract suite, and a two-pack rack over a real USB-CAN-A pty.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { DeyeCanDriver } from '../../src/bms/deye-can/driver.js';
import { decodeDeyeFrame, deyePackOf, deyePackSnapshot } from '../../src/bms/deye-can/protocol.js';
import { decodePylonCanFrame } from '../../src/bms/pylon-can/protocol.js';
import { fromHex } from '../../src/bytes/hex.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { CanBus } from '../../src/links/can/can-bus.js';
import { UsbCanALink } from '../../src/links/can/usbcan-a-link.js';
import { decodeUsbCanFrame, extractUsbCanFrames } from '../../src/links/can/usbcan-a-protocol.js';
import { CanSimulator, DEFAULT_DEYE_PACK } from '../../src/sim/can-simulators.js';
import { UsbCanADevice } from '../../src/sim/usbcan-device.js';
import { closeAllPairs, openPair, waitFor } from '../support/pty.js';
import { describeBmsFamily, expectFrameError } from './contract.js';
import { canFamily, std } from './pylon-can-family.js';

/** Real adapter bytes from the Deye seed's "Can bus analysis.txt" (protocols.md §5.2). */
const capture1 = fromHex('AA 55 01 01 01 56 03 00 00 08 96 14 8B 00 82 00 00 00 00 1B');
const capture2 = fromHex('AA 55 01 01 01 56 03 00 00 08 14 14 F3 02 AA 00 00 00 00 2B');

/** The rack decoder of the contract: Pylon set or Deye extras. */
function decodeRack(f: Parameters<typeof decodeDeyeFrame>[0]): unknown {
  try {
    return decodePylonCanFrame(f);
  } catch {
    return decodeDeyeFrame(f);
  }
}

describe('Deye frames', () => {
  test('the two real 0x356 adapter captures: 52.70 V +13.9 A 13.0 °C and 51.40 V +75.5 A 17.0 °C', () => {
    const { frames } = extractUsbCanFrames(Uint8Array.from([...capture1, 0x00, 0x13, ...capture2]));
    expect(frames).toHaveLength(2);
    const [a, b] = frames.map((raw) => decodePylonCanFrame(decodeUsbCanFrame(raw)));
    expect(a).toEqual({ voltage: 52.7, current: 13.9, temperature: 13 });
    expect(b).toEqual({ voltage: 51.4, current: 75.5, temperature: 17 });
  });

  test('per-pack ids: base + n', () => {
    expect(deyePackOf(0x150)).toEqual({ base: 0x150, pack: 0 });
    expect(deyePackOf(0x201)).toEqual({ base: 0x200, pack: 1 });
    expect(deyePackOf(0x55f)).toEqual({ base: 0x550, pack: 15 });
    expect(deyePackOf(0x351)).toBeUndefined();
  });

  test('table values (built from docs/protocols/deye-can.md, not a capture)', () => {
    // 0x151: 54.0 V, −1.0 A, SoC 100.0 %, SoH 100.0 %
    expect(decodeDeyeFrame(std(0x151, '1C 02 F6 FF E8 03 E8 03'))).toEqual({
      kind: 'pack',
      pack: 1,
      base: 0x150,
      part: { voltage: 54, current: -1, soc: 100, soh: 100 },
    });
    // 0x200: cells 3.381 / 3.373 V, 13.0 / 12.5 °C
    expect(decodeDeyeFrame(std(0x200, '35 0D 2D 0D 82 00 7D 00')).part).toEqual({
      cellMaxVoltage: 3.381,
      cellMinVoltage: 3.373,
      temperature1: 13,
      temperature2: 12.5,
    });
    expect(decodeDeyeFrame(std(0x250, '8C 00 00 00 00 00 64 00')).part).toEqual({
      mosTemperature: 14,
      currentLimit: 0,
      currentLimitMax: 100,
    });
    expect(decodeDeyeFrame(std(0x400, '00 03 00 00 00 00 00 00')).part).toEqual({ state: 0, cycles: 3 });
    expect(decodeDeyeFrame(std(0x550, 'F5 49 00 00 2F 3B 00 00')).part).toEqual({
      chargedKwh: 18.933,
      dischargedKwh: 15.151,
    });
    expect(decodeDeyeFrame(std(0x500, '56 37 2E 30 36 00 00 00')).part).toEqual({ firmware: 'V7.06' });
    expect(decodeDeyeFrame(std(0x364, '02 00 00 00 02 00 00 00'))).toEqual({ kind: 'array', part: { packCount: 2 } });
    expect(decodeDeyeFrame(std(0x363, '40 08 20 02'))).toEqual({
      kind: 'array',
      part: { capacity: 211.2, restingVoltage: 54.4 },
    });
    expect(decodeDeyeFrame(std(0x371, '00 00 08 07'))).toEqual({
      kind: 'array',
      part: { chargeCurrentLimit: 0, dischargeCurrentLimit: 180 },
    });
    expectFrameError(() => decodeDeyeFrame(std(0x150, '1C 02')), 'bad-length');
    expectFrameError(() => decodeDeyeFrame(std(0x123, '00')), 'unexpected-reply');
  });

  test('a pack snapshot', () => {
    const part = decodeDeyeFrame(std(0x150, '1C 02 0A 00 E8 03 E8 03')).part;
    expect(deyePackSnapshot(part as never, 7)).toMatchObject({
      timestampMs: 7,
      voltage: 54,
      current: 1,
      soc: 100,
      power: 54,
    });
  });
});

describeBmsFamily(
  canFamily(
    'deye-can',
    [
      { name: 'Deye 356 capture 1', frame: decodeUsbCanFrame(capture1) },
      { name: 'Deye 356 capture 2', frame: decodeUsbCanFrame(capture2) },
      { name: 'Deye 151 (table)', frame: std(0x151, '1C 02 F6 FF E8 03 E8 03') },
      { name: 'Deye 364 (table)', frame: std(0x364, '02 00 00 00 02 00 00 00') },
    ],
    decodeRack,
  ),
);

describe('DeyeCanDriver: a simulated two-pack rack over one USB-CAN-A pty', () => {
  afterEach(closeAllPairs);

  test('the rack and each pack as batteries on one shared bus', async () => {
    const pair = await openPair();
    const device = new UsbCanADevice(pair.device);
    const bus = new CanBus(new UsbCanALink({ path: pair.driverPath }));
    const rack = new DeyeCanDriver({ bus });
    const packs = [0, 1].map((pack) => new DeyeCanDriver({ bus, pack }));
    const got = new Map<DeyeCanDriver, BatterySnapshot[]>();
    for (const d of [rack, ...packs]) {
      got.set(d, []);
      d.onSnapshot((s) => got.get(d)?.push(s));
      d.start();
    }
    await waitFor(() => device.speedCode !== undefined, 3000, 'setup command');
    const sim = new CanSimulator(device, { family: 'deye-can', packs: 2, periodMs: 60 });
    sim.start();
    try {
      await waitFor(() => [...got.values()].every((l) => l.length >= 2), 5000, 'snapshots of rack and packs');
    } finally {
      sim.stop();
      for (const d of [rack, ...packs]) await d.stop();
    }
    const r = got.get(rack)?.at(-1) as BatterySnapshot;
    expect(r.identity.manufacturer).toBe('DY001');
    expect(r.capacityInstalled).toBe(200);
    expect(r.bmsLimits?.chargeVoltage).toBe(53.2);
    expect(rack.packCount).toBe(2);
    const p0 = got.get(packs[0] as DeyeCanDriver)?.at(-1) as BatterySnapshot;
    const p1 = got.get(packs[1] as DeyeCanDriver)?.at(-1) as BatterySnapshot;
    expect(p0.soc).toBe(DEFAULT_DEYE_PACK.soc);
    expect(p1.soc).toBe(DEFAULT_DEYE_PACK.soc - 1);
    expect(p0.voltage).toBe(DEFAULT_DEYE_PACK.voltage);
    expect(p0.cycles).toBe(DEFAULT_DEYE_PACK.cycles);
    expect(p0.mosTemperature).toBe(DEFAULT_DEYE_PACK.mosTemperature);
    expect(p0.temperatures).toEqual([
      { name: 'T1', celsius: 21.5 },
      { name: 'T2', celsius: 22 },
    ]);
  });
});
