/**
 * BYD Atto 3 pack: the real CAN log of test/fixtures/byd (Battery-Emulator's CI log, GPL-3.0, SOURCE.md), the
 * contract suite, and the driver against a simulated pack over a real USB-CAN-A pty.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { BydAtto3Driver } from '../../src/bms/byd-atto3/driver.js';
import { type BydState, bydSnapshot, decodeBydFrame, isBydId } from '../../src/bms/byd-atto3/protocol.js';
import {
  BYD_FLOW_CONTROL,
  BYD_POLLED_PIDS,
  BydIsoTpReceiver,
  bydPidRequest,
  bydRequestedPid,
  decodeBydUdsPayload,
  encodeBydPidReply,
} from '../../src/bms/byd-atto3/uds.js';
import { decodePylonCanFrame } from '../../src/bms/pylon-can/protocol.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { CanBus } from '../../src/links/can/can-bus.js';
import { type CanFrame, type CanLink, parseCanLog } from '../../src/links/can/can-frame.js';
import { UsbCanALink } from '../../src/links/can/usbcan-a-link.js';
import { encodeFixed } from '../../src/links/can/usbcan-a-protocol.js';
import { CanSimulator, DEFAULT_BYD, DEFAULT_BYD_POLLED } from '../../src/sim/can-simulators.js';
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

describe('BYD Atto 3 UDS polling (SPEC EXAMPLES: protocols.md §6.2 formats, values made up — no capture exists)', () => {
  const hex = (s: string) => Uint8Array.from(s.split(' ').map((b) => Number.parseInt(b, 16)));
  const reply = (s: string) => decodeBydUdsPayload(new BydIsoTpReceiver().accept(hex(s)).payload as Uint8Array);

  test('the real log holds no UDS reply (0x7EF) and no 0x43D / 0x446: nothing to golden-test there', () => {
    expect(log.filter((f) => [0x7e7, 0x7ef, 0x43d, 0x446].includes(f.id))).toEqual([]);
  });

  test('request on 0x7E7: 03 22 <PID hi> <PID lo> 00 00 00 00; flow control 30 08 05 00 …', () => {
    expect(bydPidRequest(0x002b)).toEqual({ id: 0x7e7, ext: false, data: hex('03 22 00 2B 00 00 00 00') });
    expect(bydRequestedPid(bydPidRequest(0x0031))).toBe(0x0031);
    expect(bydRequestedPid(BYD_FLOW_CONTROL)).toBeUndefined();
    expect(BYD_FLOW_CONTROL).toEqual({ id: 0x7e7, ext: false, data: hex('30 08 05 00 00 00 00 00') });
    expect(BYD_POLLED_PIDS).toEqual([0x05, 0x08, 0x09, 0x0a, 0x0e, 0x2b, 0x2d, 0x2f, 0x31, 0x32]);
  });

  test('single-frame replies on 0x7EF: 62 <PID> <value LE>', () => {
    expect(reply('05 62 00 2B 73 0C 00 00')).toEqual({ cellVoltageMin: 3.187 });
    expect(reply('05 62 00 2D 81 0C 00 00')).toEqual({ cellVoltageMax: 3.201 });
    expect(reply('04 62 00 05 40 00 00 00')).toEqual({ polledSoc: 64 });
    expect(reply('05 62 00 08 92 01 00 00')).toEqual({ polledVoltage: 402 });
    expect(reply('05 62 00 09 B8 12 00 00')).toEqual({ polledCurrent: -20.8 });
    expect(reply('05 62 00 0A C2 01 00 00')).toEqual({ chargePowerLimit: 45_000 });
    expect(reply('05 62 00 0E 84 03 00 00')).toEqual({ dischargePowerLimit: 90_000 });
    expect(reply('04 62 00 2F 3A 00 00 00')).toEqual({ cellTemperatureMin: 18 });
    expect(reply('04 62 00 31 3F 00 00 00')).toEqual({ cellTemperatureMax: 23 });
    expect(reply('04 62 00 32 3C 00 00 00')).toEqual({ cellTemperatureAverage: 20 });
    expect(reply('05 62 01 6C 01 02 00 00')).toEqual({});
    expect(reply('03 7F 22 31 00 00 00 00')).toEqual({});
  });

  test('the simulated pack answers every polled PID with what the decoder reads back', () => {
    const state = {};
    for (const pid of BYD_POLLED_PIDS) {
      const r = encodeBydPidReply(bydPidRequest(pid), DEFAULT_BYD_POLLED) as CanFrame;
      expect(r.id).toBe(0x7ef);
      Object.assign(state, decodeBydUdsPayload(new BydIsoTpReceiver().accept(r.data).payload as Uint8Array));
    }
    const p = DEFAULT_BYD_POLLED;
    expect(state).toEqual({
      polledSoc: p.soc,
      polledVoltage: p.voltage,
      polledCurrent: p.current,
      chargePowerLimit: p.chargePowerLimit,
      dischargePowerLimit: p.dischargePowerLimit,
      cellVoltageMin: p.cellVoltageMin,
      cellVoltageMax: p.cellVoltageMax,
      cellTemperatureMin: p.cellTemperatureMin,
      cellTemperatureMax: p.cellTemperatureMax,
      cellTemperatureAverage: p.cellTemperatureAverage,
    });
  });

  test('a multi-frame reply asks for flow control and is reassembled', () => {
    const rx = new BydIsoTpReceiver();
    expect(rx.accept(hex('10 09 62 00 2B 73 0C 00'))).toEqual({ flowControl: true });
    expect(rx.accept(hex('21 00 00 00 00 00 00 00'))).toEqual({ payload: hex('62 00 2B 73 0C 00 00 00 00') });
    expect(decodeBydUdsPayload(hex('62 00 2B 73 0C 00 00 00 00'))).toEqual({ cellVoltageMin: 3.187 });
  });

  test('malformed ISO-TP frames are FrameErrors', () => {
    expectFrameError(() => new BydIsoTpReceiver().accept(hex('21 00 00 00 00 00 00 00')), 'unexpected-reply');
    expectFrameError(() => new BydIsoTpReceiver().accept(hex('00 62 00 2B 73 0C 00 00')), 'bad-length');
    expectFrameError(() => new BydIsoTpReceiver().accept(hex('30 08 05 00 00 00 00 00')), 'unexpected-reply');
    const rx = new BydIsoTpReceiver();
    rx.accept(hex('10 09 62 00 2B 73 0C 00'));
    expectFrameError(() => rx.accept(hex('22 00 00 00 00 00 00 00')), 'unexpected-reply');
    expectFrameError(() => decodeBydUdsPayload(hex('62 00 2B')), 'bad-length');
    expectFrameError(() => decodeBydUdsPayload(hex('50 01')), 'unexpected-reply');
  });

  test('polled values fill the snapshot where the broadcast is missing; cell min/max become its extremes', () => {
    const state: BydState = { polledSoc: 64, polledVoltage: 402, polledCurrent: -15.2, cellVoltageMin: 3.187 };
    Object.assign(state, { cellVoltageMax: 3.201, cellTemperatureMin: 18, cellTemperatureMax: 23 });
    expect(bydSnapshot(state, 7)).toEqual({
      timestampMs: 7,
      voltage: 402,
      current: -15.2,
      power: -6110.4,
      soc: 64,
      cellCount: 126,
      cellVoltageMin: 3.187,
      cellVoltageMax: 3.201,
      temperatures: [
        { name: 'cell min', celsius: 18 },
        { name: 'cell max', celsius: 23 },
      ],
      protection: {},
      identity: { manufacturer: 'BYD', model: 'Atto 3 pack' },
    });
    // With the real log's broadcast frames folded in, the broadcast values win.
    for (const f of log) if (isBydId(f.id)) Object.assign(state, decodeBydFrame(f));
    expect(bydSnapshot(state, 7)).toMatchObject({ voltage: 420, current: 0, soc: 99.2 });
  });
});

/** A CanLink stub: records what is sent, lets the test inject frames. */
function stubLink() {
  let listener: ((f: CanFrame) => void) | undefined;
  const sent: CanFrame[] = [];
  const link: CanLink = {
    description: 'stub',
    isOpen: true,
    open: async () => {},
    close: async () => {},
    send: async (f) => {
      sent.push(f);
    },
    onData: (l) => {
      listener = l;
    },
    onClose: () => {},
    setFilters: () => {},
  };
  return { link, sent, inject: (f: CanFrame) => listener?.(f) };
}

describe('BydAtto3Driver UDS handling (stub link; SPEC EXAMPLE frames)', () => {
  test('answers a first frame with flow control and folds the reassembled reply into its values', async () => {
    const { link, sent, inject } = stubLink();
    const driver = new BydAtto3Driver({ bus: new CanBus(link), pollMs: 0 });
    driver.start();
    try {
      const frame = (s: string): CanFrame => ({
        id: 0x7ef,
        ext: false,
        data: Uint8Array.from(s.split(' ').map((b) => Number.parseInt(b, 16))),
      });
      inject(frame('10 09 62 00 2D 81 0C 00'));
      await waitFor(() => sent.length > 0, 1000, 'flow control');
      expect(sent).toEqual([BYD_FLOW_CONTROL]);
      inject(frame('21 00 00 00 00 00 00 00'));
      inject(frame('05 62 00 2B 73 0C 00 00'));
      expect(driver.values).toMatchObject({ cellVoltageMin: 3.187, cellVoltageMax: 3.201 });
    } finally {
      await driver.stop();
    }
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
    const driver = new BydAtto3Driver({ bus, pollMs: 0 });
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

  test("polls every PID over 0x7E7 and folds the simulated pack's 0x7EF replies in", async () => {
    const pair = await openPair();
    const device = new UsbCanADevice(pair.device, 'fixed');
    const bus = new CanBus(new UsbCanALink({ path: pair.driverPath, bitrate: 250_000 }));
    const driver = new BydAtto3Driver({ bus, pollMs: 20 });
    const snapshots: BatterySnapshot[] = [];
    driver.onSnapshot((s) => snapshots.push(s));
    driver.start();
    await waitFor(() => device.speedCode !== undefined, 3000, 'setup command');
    const sim = new CanSimulator(device, { family: 'byd-atto3', periodMs: 50 });
    sim.start();
    try {
      await waitFor(() => driver.values.cellTemperatureAverage !== undefined && sim.answered >= 12, 5000, 'replies');
      await waitFor(() => snapshots.length >= 2, 3000, 'snapshots');
    } finally {
      sim.stop();
      await driver.stop();
    }
    const pids = new Set(device.received.map((f) => bydRequestedPid(f)));
    for (const pid of BYD_POLLED_PIDS) expect(pids.has(pid)).toBe(true);
    const p = DEFAULT_BYD_POLLED;
    expect(driver.values).toMatchObject({
      polledSoc: p.soc,
      polledVoltage: p.voltage,
      polledCurrent: p.current,
      chargePowerLimit: p.chargePowerLimit,
      dischargePowerLimit: p.dischargePowerLimit,
      cellVoltageMin: p.cellVoltageMin,
      cellVoltageMax: p.cellVoltageMax,
      cellTemperatureMin: p.cellTemperatureMin,
      cellTemperatureMax: p.cellTemperatureMax,
      cellTemperatureAverage: p.cellTemperatureAverage,
    });
    // The broadcast (0.1 V / 0.1 % resolution) still sets the snapshot's voltage and SoC.
    const s = snapshots.at(-1) as BatterySnapshot;
    expect(s.voltage).toBe(DEFAULT_BYD.voltage);
    expect(s.soc).toBe(DEFAULT_BYD.soc);
  });
});
