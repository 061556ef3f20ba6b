/**
 * USB-CAN-A: the adapter's serial framing, candump notation, and UsbCanALink on a real pty pair (the simulated
 * adapter on the master side, the real `serialport` at 2 000 000 Bd on the slave side).
 */
import { afterEach, describe, expect, test } from 'vitest';
import { fromHex, toHex } from '../../src/bytes/hex.js';
import { CanBus } from '../../src/links/can/can-bus.js';
import {
  type CanFrame,
  formatCanFrame,
  matchesFilters,
  parseCanLine,
  parseCanLog,
} from '../../src/links/can/can-frame.js';
import { UsbCanALink } from '../../src/links/can/usbcan-a-link.js';
import {
  decodeUsbCanFrame,
  encodeFixed,
  encodeSetup,
  encodeVariable,
  extractUsbCanFrames,
} from '../../src/links/can/usbcan-a-protocol.js';
import { UsbCanADevice } from '../../src/sim/usbcan-device.js';
import { expectFrameError } from '../bms/contract.js';
import { closeAllPairs, openPair, removeDir, tempLinkDir, waitFor } from '../support/pty.js';

const f356: CanFrame = { id: 0x356, ext: false, data: fromHex('96 14 8B 00 82 00 00 00') };

describe('candump notation', () => {
  test('cansend, candump -L, candump default and bracketed logs', () => {
    expect(parseCanLine('351#1C0200000000E801')).toEqual({
      id: 0x351,
      ext: false,
      data: fromHex('1C 02 00 00 00 00 E8 01'),
    });
    expect(parseCanLine('(1700000000.123456) can0 18FF50E5#0102')).toEqual({
      id: 0x18ff50e5,
      ext: true,
      data: fromHex('01 02'),
    });
    expect(parseCanLine('  vcan0  35E   [8]  56 49 43 54 52 4F 4E 20')).toEqual({
      id: 0x35e,
      ext: false,
      data: new TextEncoder().encode('VICTRON '),
    });
    expect(parseCanLine('(0.001) RX0 43a [8] 7E 0A 90 1A 00 00 00 CD')?.id).toBe(0x43a);
    expect(parseCanLine('123#R')).toEqual({ id: 0x123, ext: false, data: new Uint8Array(0), rtr: true });
    expect(parseCanLine('# a comment')).toBeUndefined();
    expect(parseCanLog('\n351#00\n\n# x\n355#0102\n')).toHaveLength(2);
    expectFrameError(() => parseCanLine('351 [8] 00 01'), 'bad-length');
    expectFrameError(() => parseCanLine('351#0'), 'invalid-value');
    expectFrameError(() => parseCanLine('hello'), 'invalid-value');
  });

  test('format round-trips', () => {
    for (const text of ['351#1C0200000000E801', '18FF50E5#01', '305#', '123#R', '001#FF']) {
      expect(formatCanFrame(parseCanLine(text) as CanFrame)).toBe(text);
    }
  });

  test('filters', () => {
    expect(matchesFilters(f356, [])).toBe(true);
    expect(matchesFilters(f356, [{ id: 0x350, mask: 0x7f0 }])).toBe(true);
    expect(matchesFilters(f356, [{ id: 0x150, mask: 0x7f0 }])).toBe(false);
    expect(matchesFilters(f356, [{ id: 0x356, mask: 0x7ff, ext: true }])).toBe(false);
  });
});

describe('USB-CAN-A framing', () => {
  test('setup commands for 500 and 250 kbit/s', () => {
    expect(toHex(encodeSetup(500_000))).toBe('AA 55 12 03 01 00 00 00 00 00 00 00 00 00 01 00 00 00 00 17');
    expect(toHex(encodeSetup(250_000))).toBe('AA 55 12 05 01 00 00 00 00 00 00 00 00 00 01 00 00 00 00 19');
    expect(() => encodeSetup(300_000)).toThrow(RangeError);
  });

  test('variable-length frames, standard and extended', () => {
    expect(toHex(encodeVariable(f356))).toBe('AA C8 56 03 96 14 8B 00 82 00 00 00 55');
    const ext: CanFrame = { id: 0x18ff50e5, ext: true, data: fromHex('01 02') };
    expect(toHex(encodeVariable(ext))).toBe('AA E2 E5 50 FF 18 01 02 55');
    expect(decodeUsbCanFrame(encodeVariable(ext))).toEqual(ext);
    expect(decodeUsbCanFrame(encodeVariable(f356))).toEqual(f356);
  });

  test('the real fixed-mode capture decodes, and our fixed encoder gives the same bytes', () => {
    const real = fromHex('AA 55 01 01 01 56 03 00 00 08 96 14 8B 00 82 00 00 00 00 1B');
    expect(decodeUsbCanFrame(real)).toEqual(f356);
    expect(toHex(encodeFixed(f356))).toBe(toHex(real));
  });

  test('resync: garbage, a broken frame, split input', () => {
    const good = encodeVariable(f356);
    const broken = encodeVariable(f356).slice();
    broken[broken.length - 1] = 0x00;
    const stream = Uint8Array.from([0x01, 0xaa, 0x13, ...broken, ...good, ...encodeFixed(f356), 0xaa, 0xc8, 0x56]);
    const { frames, rest } = extractUsbCanFrames(stream);
    expect(frames.map((f) => decodeUsbCanFrame(f))).toEqual([f356, f356]);
    expect(toHex(rest)).toBe('AA C8 56');
    expectFrameError(() => decodeUsbCanFrame(broken), 'bad-footer');
    expectFrameError(() => decodeUsbCanFrame(good.subarray(0, 5)), 'truncated');
  });
});

describe('UsbCanALink on a pty pair', () => {
  afterEach(closeAllPairs);

  test('setup on open, frames both ways, one byte at a time, filters', async () => {
    const pair = await openPair();
    const device = new UsbCanADevice(pair.device);
    const link = new UsbCanALink({ path: pair.driverPath });
    const got: CanFrame[] = [];
    link.onData((f) => got.push(f));
    await link.open();
    try {
      expect(link.description).toMatch(/^USB-CAN-A .* 500 kbit\/s$/);
      await waitFor(() => device.speedCode === 0x03, 3000, 'setup 500 kbit/s');
      await link.send({ id: 0x305, ext: false, data: new Uint8Array(8) });
      await link.send({ id: 0x1abcdef, ext: true, data: fromHex('01') });
      await waitFor(() => device.received.length === 2, 3000, 'frames at the adapter');
      expect(device.received.map(formatCanFrame)).toEqual(['305#0000000000000000', '01ABCDEF#01']);
      // The adapter's bytes arrive one at a time.
      for (const b of encodeVariable(f356)) await pair.device.send(Uint8Array.of(b));
      await device.send({ id: 0x123, ext: false, data: fromHex('AA 55') });
      await waitFor(() => got.length === 2, 3000, 'frames from the adapter');
      expect(got.map(formatCanFrame)).toEqual(['356#96148B0082000000', '123#AA55']);
      link.setFilters([{ id: 0x350, mask: 0x7f0 }]);
      await device.send({ id: 0x123, ext: false, data: fromHex('00') });
      await device.send(f356);
      await waitFor(() => got.length === 3, 3000, 'the filtered frame');
      expect(formatCanFrame(got[2] as CanFrame)).toBe('356#96148B0082000000');
      await expect(link.send({ id: 0x800, ext: false, data: new Uint8Array(0) })).rejects.toThrow(/out of range/);
    } finally {
      await link.close();
    }
  });

  test('unplug closes the link; the CanBus reopens it when the adapter is back', async () => {
    const dir = tempLinkDir();
    const path = `${dir}/ttyUSB0`;
    try {
      let pair = await openPair({ link: path });
      let device = new UsbCanADevice(pair.device);
      const bus = new CanBus(new UsbCanALink({ path, bitrate: 250_000 }), { reconnectMinMs: 50, reconnectMaxMs: 200 });
      const states: boolean[] = [];
      const got: CanFrame[] = [];
      const detach = bus.attach({ frame: (f) => got.push(f), state: (up) => states.push(up) });
      await waitFor(() => device.speedCode === 0x05, 3000, 'setup');
      await pair.close();
      // The unplug shows on the next write at the latest.
      await waitFor(
        () => {
          void bus.send(f356);
          return states.includes(false);
        },
        5000,
        'link lost',
      );
      pair = await openPair({ link: path });
      device = new UsbCanADevice(pair.device);
      await waitFor(() => device.speedCode === 0x05, 5000, 'setup after replug');
      await device.send(f356);
      await waitFor(() => got.length === 1, 3000, 'a frame after replug');
      expect(states.at(-1)).toBe(true);
      await detach();
    } finally {
      await removeDir(dir);
    }
  });
});
