/**
 * The Pylon LV output encoder against the real captures of protocols.md §4.3 (A: a Seplos pack talking to a GX,
 * B: a Pylontech sample set) and against our own, independent Pylon CAN decoder.
 */
import { describe, expect, test } from 'vitest';
import { applyPylonCan, decodePylonCanFrame, type PylonCanState } from '../../src/bms/pylon-can/protocol.js';
import {
  encodePylonLv,
  isPylonInverterFrame,
  pylonAlarmFrameData,
  pylonInverterBrand,
  pylonProtectionBytes,
} from '../../src/inverter/pylon-lv.js';
import { type CanFrame, formatCanFrame, parseCanLine } from '../../src/links/can/can-frame.js';
import { NO_ALARMS, values } from './values.js';

const byId = (frames: CanFrame[], id: number): string => {
  const f = frames.find((x) => x.id === id);
  if (!f) throw new Error(`no 0x${id.toString(16)}`);
  return formatCanFrame(f);
};

describe('Pylon LV frames against the captures of protocols.md §4.3', () => {
  test('capture B (Pylontech sample set): every frame byte for byte', () => {
    // 351: 53.2 V / 370.0 A / 370.0 A / 46.0 V · 355: SOC 26 %, SOH 100 % · 356: 48.66 V, 0.0 A, 33.0 °C
    // 359: no flags, 10 modules, "PN" · 35C: charge + discharge enabled · 35E: "PYLON"
    const frames = encodePylonLv(
      values({
        chargeVoltage: 53.2,
        chargeCurrent: 370,
        dischargeCurrent: 370,
        dischargeVoltage: 46,
        soc: 26,
        soh: 100,
        voltage: 48.66,
        current: 0,
        temperature: 33,
        modules: { online: 10, offline: 0, blockingCharge: 0, blockingDischarge: 0 },
      }),
    );
    expect(frames.map(formatCanFrame)).toEqual([
      '351#1402740E740ECC01',
      '355#1A006400',
      '356#021300004A01',
      '359#000000000A504E',
      '35C#C000',
      '35E#50594C4F4E202020',
    ]);
  });

  test('capture A (Seplos to a GX, Victron extensions): 351, 355, 356 (first 6 bytes), 35A, 35F capacity, 370–373', () => {
    const frames = encodePylonLv(
      values({
        chargeVoltage: 57.9,
        chargeCurrent: 100,
        dischargeCurrent: 195,
        dischargeVoltage: 46.4,
        soc: 60.2,
        soh: 100,
        voltage: 52.17,
        current: -30.1,
        temperature: 23.5,
        capacityInstalled: 304,
        minCellVoltage: 3.257,
        maxCellVoltage: 3.266,
        minTemperature: 21.85,
        maxTemperature: 22.85,
        modules: { online: 1, offline: 0, blockingCharge: 0, blockingDischarge: 0 },
      }),
      { victronExtensions: true, name: 'CAN-SMARTBMS-BAT', manufacturer: 'SHEnergy' },
    );
    expect(byId(frames, 0x351)).toBe('351#4302E8039E07D001');
    expect(byId(frames, 0x355)).toBe('355#3C00640084170000');
    expect(byId(frames, 0x356)).toBe('356#6114D3FEEB00'); // capture: 61 14 D3 FE EB 00 (+ 1A 00 vendor bytes)
    expect(byId(frames, 0x35a)).toBe('35A#AAAAAA02AAAAAA02');
    expect(byId(frames, 0x35e)).toBe('35E#5348456E65726779');
    expect(byId(frames, 0x35f).slice(4 + 8, 4 + 12)).toBe('3001'); // bytes 4–5: 0x0130 = 304 Ah
    expect(byId(frames, 0x370)).toBe(`370#${Buffer.from('CAN-SMAR').toString('hex').toUpperCase()}`);
    expect(byId(frames, 0x371)).toBe(`371#${Buffer.from('TBMS-BAT').toString('hex').toUpperCase()}`);
    expect(byId(frames, 0x372)).toBe('372#0100000000000000');
    expect(byId(frames, 0x373)).toBe('373#B90CC20C27012801');
  });

  test('the captures parsed from their text give the same bytes (no transcription slip in the test)', () => {
    expect(formatCanFrame(parseCanLine('351 [8] 43 02 E8 03 9E 07 D0 01') as CanFrame)).toBe('351#4302E8039E07D001');
    expect(formatCanFrame(parseCanLine('373 [8] B9 0C C2 0C 27 01 28 01') as CanFrame)).toBe('373#B90CC20C27012801');
  });
});

describe('Pylon LV frames decoded by our own reader', () => {
  test('every advertised value comes back from decodePylonCanFrame', () => {
    const v = values({
      chargeVoltage: 55.2,
      chargeCurrent: 87.5,
      dischargeCurrent: 120,
      dischargeVoltage: 46.4,
      soc: 61,
      soh: 97,
      voltage: 53.12,
      current: -42.3,
      temperature: -5.5,
    });
    const state: PylonCanState = {};
    for (const f of encodePylonLv(v)) applyPylonCan(state, decodePylonCanFrame(f));
    expect(state).toMatchObject({
      limits: { chargeVoltage: 55.2, chargeCurrent: 87.5, dischargeCurrent: 120, dischargeVoltage: 46.4 },
      soc: 61,
      soh: 97,
      voltage: 53.12,
      current: -42.3,
      temperature: -5.5,
      modules: 1,
      manufacturer: 'PYLON',
      requests: { chargeEnable: true, dischargeEnable: true, forceCharge1: false },
    });
    expect(state.warnings).toEqual([]);
  });

  test('cleared enable bits and the force-charge request', () => {
    const blocked = encodePylonLv(values({ chargeCurrent: 0, chargeEnable: false, dischargeEnable: false }));
    expect(byId(blocked, 0x35c)).toBe('35C#0000');
    const force = encodePylonLv(values({ forceCharge: true }));
    expect(byId(force, 0x35c)).toBe('35C#E000');
    // A force-charge request never goes out while charging is not enabled.
    expect(byId(encodePylonLv(values({ forceCharge: true, chargeEnable: false })), 0x35c)).toBe('35C#4000');
  });

  test.each([
    { case: 'over-voltage protection', alarms: { highVoltage: 2 }, bytes: [0x02, 0, 0x02, 0] },
    { case: 'under-voltage warning only', alarms: { lowVoltage: 1 }, bytes: [0, 0, 0x04, 0] },
    { case: 'charge over-temperature', alarms: { highChargeTemperature: 2 }, bytes: [0x08, 0, 0x08, 0] },
    { case: 'low temperature', alarms: { lowTemperature: 2 }, bytes: [0x10, 0, 0x10, 0] },
    { case: 'short circuit → discharge OC', alarms: { shortCircuit: 2 }, bytes: [0x80, 0, 0x80, 0] },
    { case: 'charge over-current', alarms: { highChargeCurrent: 2 }, bytes: [0, 0x01, 0, 0x01] },
    { case: 'internal failure → system error', alarms: { internalFailure: 2 }, bytes: [0, 0x08, 0, 0] },
    { case: 'no data → communication fail', alarms: { communication: 2 }, bytes: [0, 0, 0, 0x08] },
  ] as const)('0x359 $case', ({ alarms, bytes }) => {
    const a = { ...NO_ALARMS, ...alarms };
    expect(pylonProtectionBytes(a)).toEqual(bytes);
    const decoded = decodePylonCanFrame({ id: 0x359, ext: false, data: Uint8Array.of(...bytes, 1, 0x50, 0x4e) });
    expect(decoded.modules).toBe(1);
  });

  test('0x35A: an alarm sets its pair and "general" to 01 and is read back as a protection flag', () => {
    const data = pylonAlarmFrameData({ ...NO_ALARMS, highVoltage: 2, cellImbalance: 1 });
    // byte 0: general 01, high V 01, low V 10, high T 10 → 0b10_10_01_01
    expect(data[0]).toBe(0b10100101);
    // warnings: general 01 (a level-1 exists), cell imbalance (pair 12, byte 7 bits 0–1) 01
    expect(data[4]).toBe(0b10101001);
    expect(data[7]).toBe(0b01);
    const decoded = decodePylonCanFrame({ id: 0x35a, ext: false, data });
    expect(decoded.alarms35a).toMatchObject({ packOverVoltage: true, packUnderVoltage: false });
  });

  test('values outside the fields are clamped, never wrapped, and NaN never reaches the wire', () => {
    const frames = encodePylonLv(
      values({ chargeCurrent: 5000, voltage: Number.NaN, current: -9999, chargeVoltage: -3, soc: 100 }),
    );
    const d351 = frames.find((f) => f.id === 0x351)?.data as Uint8Array;
    expect((d351[2] as number) | ((d351[3] as number) << 8)).toBe(0x7fff); // 3276.7 A, not a negative wrap
    expect((d351[0] as number) | ((d351[1] as number) << 8)).toBe(0);
    const d356 = frames.find((f) => f.id === 0x356)?.data as Uint8Array;
    expect([d356[0], d356[1]]).toEqual([0, 0]);
    expect((((d356[2] as number) | ((d356[3] as number) << 8)) << 16) >> 16).toBe(-0x8000);
  });

  test('a long manufacturer is cut to 8 characters, a short one padded with spaces', () => {
    expect(byId(encodePylonLv(values(), { manufacturer: 'DY' }), 0x35e)).toBe('35E#4459202020202020');
    expect(byId(encodePylonLv(values(), { manufacturer: 'ABCDEFGHIJ' }), 0x35e)).toBe('35E#4142434445464748');
  });

  test('the plain set has six frames, the Victron extensions add six more', () => {
    expect(encodePylonLv(values()).map((f) => f.id)).toEqual([0x351, 0x355, 0x356, 0x359, 0x35c, 0x35e]);
    expect(encodePylonLv(values(), { victronExtensions: true }).map((f) => f.id)).toEqual([
      0x351, 0x355, 0x356, 0x359, 0x35c, 0x35e, 0x35a, 0x35f, 0x370, 0x371, 0x372, 0x373,
    ]);
  });
});

describe('inverter frames on a Pylon bus', () => {
  test('0x305 (any payload) and 0x307 count as the inverter; 0x307 "VIC" names Victron', () => {
    const keepAlive = parseCanLine('305 [8] 00 00 00 00 00 00 00 00') as CanFrame;
    const vic = parseCanLine('307 [8] 12 34 56 78 56 49 43 00') as CanFrame;
    expect(isPylonInverterFrame(keepAlive)).toBe(true);
    expect(isPylonInverterFrame({ ...keepAlive, data: Uint8Array.of(1, 2) })).toBe(true);
    expect(isPylonInverterFrame(vic)).toBe(true);
    expect(isPylonInverterFrame({ id: 0x351, ext: false, data: new Uint8Array(8) })).toBe(false);
    expect(isPylonInverterFrame({ id: 0x305, ext: true, data: new Uint8Array(8) })).toBe(false);
    expect(pylonInverterBrand(vic)).toBe('Victron');
    expect(pylonInverterBrand(keepAlive)).toBeUndefined();
  });
});
