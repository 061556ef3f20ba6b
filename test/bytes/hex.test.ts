import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { fromHex, toHex } from '../../src/bytes/hex.js';

describe('hex', () => {
  test.each<[string, string]>([
    ['plain', 'dda50300fffd77'],
    ['spaced upper case', 'DD A5 03 00 FF FD 77'],
    ['colon separated', 'DD:A5:03:00:FF:FD:77'],
    ['0x-prefixed and comma separated', '0xDD, 0xA5, 0x03, 0x00, 0xFF, 0xFD, 0x77'],
    ['spread over lines', 'DD A5\n03 00\tFF FD\r\n77'],
  ])('fromHex reads %s text', (_, text) => {
    expect(fromHex(text)).toEqual(Uint8Array.of(0xdd, 0xa5, 0x03, 0x00, 0xff, 0xfd, 0x77));
  });

  test('fromHex of an empty string is an empty array', () => {
    expect(fromHex('')).toEqual(new Uint8Array(0));
  });

  test.each<[string, string]>([
    ['an odd number of digits', 'DD A5 0'],
    ['masked bytes', 'DD 04 00 XX'],
    ['dot separators', 'DD.A5'],
    ['a minus sign', '-1'],
  ])('fromHex refuses %s', (_, text) => {
    expect(() => fromHex(text)).toThrow(/not a hex byte string/);
  });

  test('toHex writes upper-case pairs separated by a space unless told otherwise', () => {
    const bytes = Uint8Array.of(0x00, 0x0f, 0xa5, 0xff);
    expect(toHex(bytes)).toBe('00 0F A5 FF');
    expect(toHex(bytes, ':')).toBe('00:0F:A5:FF');
    expect(toHex(bytes, '')).toBe('000FA5FF');
    expect(toHex(new Uint8Array(0))).toBe('');
  });

  test('fromHex(toHex(bytes)) gives back any byte array, whatever the separator', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(' ', ':', '', ', '), (bytes, sep) => {
        expect(fromHex(toHex(bytes, sep))).toEqual(bytes);
      }),
      { seed: 11, numRuns: 200 },
    );
  });
});
