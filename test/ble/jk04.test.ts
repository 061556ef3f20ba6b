/** JK04 (JK-B2A16S, hardware 3.0, firmware 3.3.0): golden decode of the real capture, and rejections. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeJk04CellInfo, jk04ToSnapshot } from '../../src/bms/jk-ble/jk04-record.js';
import { JkBleFramer, variantFromHardware } from '../../src/bms/jk-ble/protocol.js';
import { decodeDeviceInfo } from '../../src/bms/jk-modbus/jk02-record.js';
import { FrameError } from '../../src/domain/errors.js';
import { chunks } from './fake-ble.js';

const FILE = join(import.meta.dirname, '../fixtures/jk-ble/JK-B2A16S-3.3.0-BLE-JK04.txt');

/** All records of the capture, cut into 20-byte notifications and reassembled. */
function capture(): Uint8Array[] {
  const raw = readFileSync(FILE, 'utf8')
    .split('\n')
    .filter((l) => /^0x55\s/i.test(l))
    .map((l) => Uint8Array.from(l.trim().split(/\s+/), (t) => Number.parseInt(t, 16)));
  const framer = new JkBleFramer();
  return raw.flatMap((r) => chunks(r, 20).flatMap((c) => framer.push(c)));
}

const recs = capture();
const cellRecords = recs.filter((r) => r[4] === 2);
const byCounter = (counter: number, nth = 0) => cellRecords.filter((r) => r[5] === counter)[nth] as Uint8Array;

function frameErrorCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof FrameError ? e.code : `not a FrameError: ${String(e)}`;
  }
  return undefined;
}

/** Recompute the sum8 at byte 299 after an edit. */
function resum(r: Uint8Array): Uint8Array {
  let s = 0;
  for (let i = 0; i < 299; i++) s += r[i] as number;
  r[299] = s & 0xff;
  return r;
}

describe('JK04 real capture (golden)', () => {
  it('reassembles all 65 records: 63 cell info, 1 settings, 1 device info (hardware 3.0 → JK04)', () => {
    expect(recs.length).toBe(65);
    expect(cellRecords.length).toBe(63);
    const about = decodeDeviceInfo(recs.find((r) => r[4] === 3) as Uint8Array);
    expect(about.model).toBe('JK-B2A16S');
    expect(about.hardwareVersion).toBe('3.0');
    expect(about.softwareVersion).toBe('3.3.0');
    expect(variantFromHardware(about.hardwareVersion)).toBe('jk04');
  });

  it('first cell info record (counter 0x7C): 16 cells, 53.800 V, not balancing', () => {
    const c = decodeJk04CellInfo(cellRecords[0] as Uint8Array);
    expect(c.enabledCells).toBe(0xffff);
    expect(c.cellVoltages).toEqual([
      3.3674, 3.3571, 3.3571, 3.36, 3.3644, 3.363, 3.3659, 3.3674, 3.36, 3.3615, 3.3644, 3.3615, 3.36, 3.3659, 3.36,
      3.3615,
    ]);
    expect(c.wireResistances).toEqual([
      0.1593, 0.1337, 0.1453, 0.1461, 0.1005, 0.1002, 0.1265, 0.1143, 0.1001, 0.1053, 0.1027, 0.1265, 0.1257, 0.1234,
      0.1212, 0.1189,
    ]);
    expect(c.averageCellVoltage).toBe(3.3625);
    expect(c.deltaCellVoltage).toBe(0.0103);
    expect(c.maxCellIndex).toBe(0);
    expect(c.minCellIndex).toBe(2);
    expect(c.balancing).toBe(0);
    expect(c.balanceCurrent).toBe(0);
    expect(c.voltage).toBe(53.8);
    expect(c.uptimeSeconds).toBe(1_934_407);
  });

  it('a discharge-balancing record (counter 0x98): −1.501 A, max cell index 8, min cell index 0', () => {
    const c = decodeJk04CellInfo(byCounter(0x98));
    expect(c.cellVoltages).toEqual([
      3.3512, 3.3571, 3.3541, 3.3556, 3.3571, 3.3556, 3.3556, 3.3571, 3.3571, 3.3556, 3.3556, 3.3556, 3.3556, 3.3541,
      3.3541, 3.3527,
    ]);
    expect(c.averageCellVoltage).toBe(3.3552);
    expect(c.deltaCellVoltage).toBe(0.0059);
    expect(c.maxCellIndex).toBe(8);
    expect(c.minCellIndex).toBe(0);
    expect(c.balancing).toBe(2);
    expect(c.balanceCurrent).toBeCloseTo(-1.501, 3);
    expect(c.voltage).toBe(53.684);
    expect(c.uptimeSeconds).toBe(1_873_791);
  });

  it('every cell info record is self-consistent (average, delta, pack voltage, balance current sign)', () => {
    for (const r of cellRecords) {
      const c = decodeJk04CellInfo(r);
      expect(c.cellVoltages.length).toBe(16);
      const sum = c.cellVoltages.reduce((a, b) => a + b, 0);
      expect(Math.abs(sum / 16 - c.averageCellVoltage)).toBeLessThan(0.001);
      expect(Math.abs(Math.max(...c.cellVoltages) - Math.min(...c.cellVoltages) - c.deltaCellVoltage)).toBeLessThan(
        0.0035, // the BMS samples delta apart from the cells: up to two ~1.5 mV ADC steps off
      );
      expect(Math.abs(sum - c.voltage)).toBeLessThan(0.02);
      expect(
        c.balancing === 0 ? c.balanceCurrent === 0 : c.balancing === 1 ? c.balanceCurrent > 0 : c.balanceCurrent < 0,
      ).toBe(true);
    }
  });

  it('becomes a voltage-only snapshot with the device identity', () => {
    const about = decodeDeviceInfo(recs.find((r) => r[4] === 3) as Uint8Array);
    const s = jk04ToSnapshot(decodeJk04CellInfo(cellRecords[0] as Uint8Array), about, 1000);
    expect(s.voltage).toBe(53.8);
    expect(s.cellCount).toBe(16);
    expect(s.cellVoltages?.[0]).toBe(3.3674);
    expect(s.current).toBeUndefined();
    expect(s.soc).toBeUndefined();
    expect(s.protection).toEqual({});
    expect(s.identity).toEqual({ manufacturer: 'JK', model: 'JK-B2A16S', firmware: '3.3.0', hardware: '3.0' });
  });
});

describe('JK04 rejections', () => {
  const good = () => (cellRecords[0] as Uint8Array).slice();
  const rows: [string, () => Uint8Array, string][] = [
    ['truncated (299 bytes)', () => good().subarray(0, 299), 'truncated'],
    ['truncated (header only)', () => good().subarray(0, 6), 'truncated'],
    ['too long (301 bytes)', () => Uint8Array.of(...good(), 0), 'bad-length'],
    [
      'bad checksum',
      () => {
        const r = good();
        r[299] = ((r[299] as number) + 1) & 0xff;
        return r;
      },
      'bad-checksum',
    ],
    [
      'cell byte flipped (checksum no longer matches)',
      () => {
        const r = good();
        r[6] = (r[6] as number) ^ 0x01;
        return r;
      },
      'bad-checksum',
    ],
    [
      'bad header',
      () => {
        const r = good();
        r[2] = 0x00;
        return r;
      },
      'bad-header',
    ],
    ['settings record, not cell info', () => recs.find((r) => r[4] === 1) as Uint8Array, 'unexpected-reply'],
    [
      'NaN cell voltage (checksum fixed)',
      () => {
        const r = good();
        r.set([0x00, 0x00, 0xc0, 0x7f], 6);
        return resum(r);
      },
      'invalid-value',
    ],
  ];
  for (const [name, make, code] of rows) {
    it(`${name} → ${code}`, () => {
      expect(frameErrorCode(() => decodeJk04CellInfo(make()))).toBe(code);
    });
  }
});
