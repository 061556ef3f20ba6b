import { describe, expect, test } from 'vitest';
import { byteSum, crc16Modbus, sum8, sumComplement16 } from '../../src/bytes/checksum.js';
import { hexBytes } from '../support/fixtures.js';

describe('sumComplement16 (JBD)', () => {
  // The worked examples of protocols.md §1.3; the frames are real captures (test/fixtures/jbd/).
  test.each<[string, string, number]>([
    ['the read request DD A5 03 00 FF FD 77', 'DD A5 03 00 FF FD 77', 0xfffd],
    [
      'the UART 4S basic-info reply',
      'DD 03 00 1D 06 18 00 00 01 F2 01 F4 00 00 2C 7C 00 00 00 00 00 00 80 64 03 04 03 0B 8B 0B 8A 0B 84 FA 8D 77',
      0xfa8d,
    ],
    ['the MOSFET write DD 5A E1 02 00 01 FF 1C 77', 'DD 5A E1 02 00 01 FF 1C 77', 0xff1c],
    ['the write ack DD E1 00 00 00 00 77, whose byte sum is 0', 'DD E1 00 00 00 00 77', 0x0000],
  ])('over bytes 2 … 3+len of %s gives its transmitted checksum', (_, text, expected) => {
    const frame = hexBytes(text);
    const end = 4 + (frame[3] as number);
    expect(sumComplement16(frame, 2, end)).toBe(expected);
    expect(((frame[end] as number) << 8) | (frame[end + 1] as number)).toBe(expected);
  });

  test('wraps when the byte sum passes 0xFFFF', () => {
    const bytes = new Uint8Array(300).fill(0xff); // Σ = 0x12AD4 → low 16 bits 0x2AD4
    expect(byteSum(bytes)).toBe(0x12ad4);
    expect(sumComplement16(bytes)).toBe(0x10000 - 0x2ad4);
  });

  test('byteSum covers the whole array by default and a half-open range when given', () => {
    const bytes = Uint8Array.of(1, 2, 3, 4);
    expect(byteSum(bytes)).toBe(10);
    expect(byteSum(bytes, 1)).toBe(9);
    expect(byteSum(bytes, 1, 3)).toBe(5);
    expect(byteSum(bytes, 2, 2)).toBe(0);
  });
});

describe('sum8 (JBD BLE auth)', () => {
  // FF AA cmd len data… sum8, with sum8 over cmd … data (real frames from communications2.txt).
  test.each<[string, number]>([
    ['ff:aa:15:06:30:30:30:30:30:30:3b', 0x3b],
    ['ff:aa:17:01:62:7a', 0x7a],
    ['ff:aa:18:06:f6:53:69:96:7f:f0:d5', 0xd5],
  ])('the auth frame %s ends in its low-byte sum', (text, expected) => {
    const frame = hexBytes(text);
    expect(sum8(frame, 2, frame.length - 1)).toBe(expected);
    expect(frame[frame.length - 1]).toBe(expected);
  });

  test('sum8 defaults to the whole array', () => {
    expect(sum8(Uint8Array.of(0xff, 0x02))).toBe(0x01);
  });
});

describe('crc16Modbus', () => {
  test('gives the catalogue check value 0x4B37 for the ASCII string 123456789', () => {
    expect(crc16Modbus(new TextEncoder().encode('123456789'))).toBe(0x4b37);
  });

  test('matches the CRCs, sent low byte first, of real JBD UP-series RS485 frames', () => {
    for (const text of [
      '01 78 10 00 10 A0 00 00 7F B2',
      '01 78 28 00 28 0F 00 0C 07 EA 00 06 00 06 00 11 00 06 00 38 BB BE',
    ]) {
      const frame = hexBytes(text);
      const n = frame.length;
      expect(crc16Modbus(frame, 0, n - 2)).toBe((frame[n - 2] as number) | ((frame[n - 1] as number) << 8));
    }
  });

  test('of an empty range is the initial value 0xFFFF, and a range limits the bytes covered', () => {
    const bytes = new TextEncoder().encode('xx123456789');
    expect(crc16Modbus(new Uint8Array(0))).toBe(0xffff);
    expect(crc16Modbus(bytes, 2)).toBe(0x4b37);
    expect(crc16Modbus(bytes, 2, 11)).toBe(0x4b37);
  });
});
