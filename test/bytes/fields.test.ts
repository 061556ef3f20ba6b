import { describe, expect, test } from 'vitest';
import { put16 } from '../../src/bytes/fields.js';

const put = (value: number, signed: boolean, bigEndian = false) => {
  const out = new Uint8Array(4);
  put16(out, 1, value, signed, bigEndian);
  return [...out];
};

describe('put16', () => {
  test('little-endian by default, big-endian on request, at the offset, rounded', () => {
    expect(put(0x1234, false)).toEqual([0, 0x34, 0x12, 0]);
    expect(put(0x1234, false, true)).toEqual([0, 0x12, 0x34, 0]);
    expect(put(552.4, false)).toEqual([0, 0x28, 0x02, 0]);
  });

  test('signed values in two’s complement; out of range clamped, never wrapped; NaN as 0', () => {
    expect(put(-301, true)).toEqual([0, 0xd3, 0xfe, 0]);
    expect(put(-5, false)).toEqual([0, 0, 0, 0]);
    expect(put(70_000, false)).toEqual([0, 0xff, 0xff, 0]);
    expect(put(40_000, true)).toEqual([0, 0xff, 0x7f, 0]);
    expect(put(-40_000, true)).toEqual([0, 0x00, 0x80, 0]);
    expect(put(Number.NaN, true)).toEqual([0, 0, 0, 0]);
  });
});
