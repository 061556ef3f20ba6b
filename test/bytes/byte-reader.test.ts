import { describe, expect, test } from 'vitest';
import { ByteReader } from '../../src/bytes/byte-reader.js';
import { expectFrameError } from '../bms/contract.js';

describe('ByteReader', () => {
  // Bytes chosen so that every width and sign gives a different, hand-checkable value.
  const bytes = Uint8Array.of(0xfe, 0xdc, 0xba, 0x98, 0x01, 0x02);
  const r = new ByteReader(bytes);

  test('reads unsigned and signed 8, 16 and 32-bit values in both byte orders', () => {
    expect(r.length).toBe(6);
    expect(r.u8(0)).toBe(0xfe);
    expect(r.u16be(0)).toBe(0xfedc);
    expect(r.s16be(0)).toBe(0xfedc - 0x10000);
    expect(r.u16le(0)).toBe(0xdcfe);
    expect(r.s16le(0)).toBe(0xdcfe - 0x10000);
    expect(r.u32be(0)).toBe(0xfedcba98);
    expect(r.s32be(0)).toBe(0xfedcba98 - 0x1_0000_0000);
    expect(r.u32le(0)).toBe(0x98badcfe);
    expect(r.s32le(0)).toBe(0x98badcfe - 0x1_0000_0000);
    expect(r.u16be(4)).toBe(0x0102);
    expect(r.s16be(4)).toBe(0x0102);
  });

  test('reads relative to a subarray view, not to the start of the underlying buffer', () => {
    const view = new ByteReader(bytes.subarray(4));
    expect(view.length).toBe(2);
    expect(view.u16be(0)).toBe(0x0102);
    expect(view.slice(0, 2)).toEqual(Uint8Array.of(0x01, 0x02));
    expectFrameError(() => view.u8(2), 'truncated');
  });

  test.each<[string, () => unknown]>([
    ['u8 one past the end', () => r.u8(6)],
    ['u16be reaching one byte past the end', () => r.u16be(5)],
    ['s16be reaching one byte past the end', () => r.s16be(5)],
    ['u16le reaching one byte past the end', () => r.u16le(5)],
    ['s16le reaching one byte past the end', () => r.s16le(5)],
    ['u32be reaching past the end', () => r.u32be(3)],
    ['s32be reaching past the end', () => r.s32be(3)],
    ['u32le reaching past the end', () => r.u32le(3)],
    ['s32le reaching past the end', () => r.s32le(3)],
    ['a negative offset', () => r.u8(-1)],
    ['a slice longer than the rest', () => r.slice(2, 5)],
    ['ascii text longer than the rest', () => r.ascii(0, 7)],
    ['any read from an empty buffer', () => new ByteReader(new Uint8Array(0)).u8(0)],
  ])('%s throws FrameError truncated', (_, read) => {
    expectFrameError(read, 'truncated');
  });

  test('slice returns the bytes in range and reads up to the last byte succeed', () => {
    expect(r.slice(2, 4)).toEqual(Uint8Array.of(0xba, 0x98, 0x01, 0x02));
    expect(r.slice(6, 0)).toEqual(new Uint8Array(0));
    expect(r.u8(5)).toBe(0x02);
  });

  test('ascii stops at the first NUL and trims surrounding spaces', () => {
    const text = new ByteReader(new TextEncoder().encode(' JBD \u0000A')); // 20 4A 42 44 20 00 41
    expect(text.ascii(0, 7)).toBe('JBD');
    expect(text.ascii(6, 1)).toBe('A');
    expect(text.ascii(5, 1)).toBe('');
  });
});
