/**
 * CAN families under the byte-oriented contract suite (test/bms/contract.ts). On the wire a CAN frame reaches us
 * as bytes only through a USB-CAN-A adapter, so the contract's "frame" is the adapter's fixed 20-byte frame
 * (the format of the Deye seed's real captures, protocols.md §5.2) around the captured CAN frame: extract is the
 * adapter framer, decode is adapter framing + the family decoder, probe is "exactly one frame this family decodes".
 * The CAN ids and data of every golden are real captures; only the Deye ones also have real adapter bytes.
 */
import type { CanFrame } from '../../src/links/can/can-frame.js';
import { decodeUsbCanFrame, encodeFixed, extractUsbCanFrames } from '../../src/links/can/usbcan-a-protocol.js';
import type { BadFrame, BmsFamilyUnderTest, GoldenFrame } from './contract.js';

export interface CanGolden {
  readonly name: string;
  readonly frame: CanFrame;
}

export function canFamily(
  id: string,
  goldens: readonly CanGolden[],
  decode: (frame: CanFrame) => unknown,
  badFrames: readonly BadFrame[] = [],
): BmsFamilyUnderTest {
  const goldenFrames: GoldenFrame[] = goldens.map((g) => ({ name: g.name, bytes: encodeFixed(g.frame) }));
  const first = goldenFrames[0]?.bytes ?? new Uint8Array(20);
  const badChecksum = first.slice();
  badChecksum[19] = ((badChecksum[19] as number) + 1) & 0xff;
  const badHeader = first.slice();
  badHeader[0] = 0xab;
  const family: BmsFamilyUnderTest = {
    id,
    goldenFrames,
    startBytes: [0xaa],
    extract: extractUsbCanFrames,
    decode: (bytes) => decode(decodeUsbCanFrame(bytes)),
    probe: (bytes) => {
      try {
        decode(decodeUsbCanFrame(bytes));
        return true;
      } catch {
        return false;
      }
    },
    badFrames: [
      { name: 'adapter checksum off by one', bytes: badChecksum, code: 'bad-checksum' },
      { name: 'first byte not 0xAA', bytes: badHeader, code: 'bad-header' },
      {
        name: 'a 0x123 frame of no battery',
        bytes: encodeFixed({ id: 0x123, ext: false, data: new Uint8Array(8) }),
        code: 'unexpected-reply',
      },
      {
        name: 'an extended-id frame',
        bytes: encodeFixed({ id: 0x18ff50e5, ext: true, data: new Uint8Array(8) }),
        code: 'unexpected-reply',
      },
      ...badFrames,
    ],
    requests: [],
  };
  return family;
}

/** `351#…` / `351: 14 02 …` shorthand used in the tests' tables. */
export function std(id: number, hex: string): CanFrame {
  const clean = hex.replace(/\s+/g, '');
  const data = new Uint8Array(clean.length / 2);
  for (let i = 0; i < data.length; i++) data[i] = Number.parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return { id, ext: false, data };
}
