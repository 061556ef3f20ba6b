/** JK BLE: command encoding, reassembly of real records cut into 20-byte notifications, the streaming driver. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DriverEvent } from '../../src/bms/driver.js';
import { JkBleDriver } from '../../src/bms/jk-ble/driver.js';
import {
  decodeCommand,
  encodeCommand,
  JkBleCommand,
  JkBleFramer,
  variantFromHardware,
} from '../../src/bms/jk-ble/protocol.js';
import { decodeCellInfo, decodeDeviceInfo } from '../../src/bms/jk-modbus/jk02-record.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { chunks, FakeBle, until } from './fake-ble.js';

const DIR = join(import.meta.dirname, '../fixtures/jk-ble');

/** The records of a vector file (one per line, `0x55 0xAA …` or `55 AA …`), as sent (some are 301/320 bytes). */
function records(file: string): Uint8Array[] {
  return readFileSync(join(DIR, file), 'utf8')
    .split('\n')
    .filter((l) => /^(0x)?55\s/i.test(l))
    .map((l) => Uint8Array.from(l.trim().split(/\s+/), (t) => Number.parseInt(t.replace(/^0x/i, ''), 16)));
}

function reassemble(recs: Uint8Array[], size = 20): Uint8Array[] {
  const framer = new JkBleFramer();
  return recs.flatMap((r) => chunks(r, size).flatMap((c) => framer.push(c)));
}

describe('JK BLE commands', () => {
  it('encodes the device info request of protocols.md §2.2', () => {
    const c = encodeCommand(JkBleCommand.deviceInfo);
    expect(c.length).toBe(20);
    expect([...c.subarray(0, 6)]).toEqual([0xaa, 0x55, 0x90, 0xeb, 0x97, 0x00]);
    expect(c[19]).toBe(0x11);
    expect(decodeCommand(c)).toEqual({ cmd: 0x97, len: 0, value: 0 });
    const bad = c.slice();
    bad[19] = 0;
    expect(decodeCommand(bad)).toBeUndefined();
  });

  it('picks the layout from the hardware version', () => {
    expect(variantFromHardware('11.XW')).toBe('jk02-32s');
    expect(variantFromHardware('10.XG')).toBe('jk02-24s');
    expect(variantFromHardware('7.X')).toBe('jk02-24s');
    expect(variantFromHardware('3.0')).toBe('jk04');
    expect(variantFromHardware('')).toBe('jk02-24s');
  });
});

describe('JkBleFramer on real records (golden)', () => {
  it('JK-B2A24S20P 10.07 (JK02_24S): 24 cells, 78.735 V, SOC 85 %', () => {
    const recs = reassemble(records('JK-B2A24S20P-10.07-BLE-JK02.txt'));
    expect(recs.map((r) => r[4])).toEqual([3, 1, 2]);
    const about = decodeDeviceInfo(recs[0] as Uint8Array);
    expect(about.hardwareVersion).toBe('10.XG');
    const c = decodeCellInfo(recs[2] as Uint8Array, variantFromHardware(about.hardwareVersion) as 'jk02-24s');
    expect(c.cellVoltages.length).toBe(24);
    expect(Math.min(...c.cellVoltages)).toBeCloseTo(3.279, 3);
    expect(Math.max(...c.cellVoltages)).toBeCloseTo(3.285, 3);
    expect(c.voltage).toBeCloseTo(78.735, 3);
    expect(c.current).toBe(0);
    expect(c.soc).toBe(85);
    expect(c.capacityRemaining).toBeCloseTo(42.804, 3);
    expect(c.capacityNominal).toBeCloseTo(50, 3);
    expect(c.temperatures).toEqual([20.7, 20.7]);
    expect(c.mosTemperature).toBeCloseTo(23.4, 1);
    expect(c.chargeFet).toBe(true);
    expect(c.dischargeFet).toBe(false);
  });

  it('JK-B2A8S20P 11.17 (JK02_32S): 8 cells, 26.381 V, SOC 69 %', () => {
    const recs = reassemble(records('JK-B2A8S20P-11.17-BLE-JK02_32S.txt'));
    const about = decodeDeviceInfo(recs.find((r) => r[4] === 3) as Uint8Array);
    expect(variantFromHardware(about.hardwareVersion)).toBe('jk02-32s');
    const c = decodeCellInfo(recs.find((r) => r[4] === 2) as Uint8Array, 'jk02-32s');
    expect(c.cellVoltages.length).toBe(8);
    expect(c.voltage).toBeCloseTo(26.381, 3);
    expect(c.soc).toBe(69);
    expect(c.capacityRemaining).toBeCloseTo(69.554, 3);
    expect(c.capacityNominal).toBeCloseTo(100, 3);
    expect(c.chargeFet && c.dischargeFet).toBe(true);
  });

  it('JK-BD6A17S6P 7.1.0H: 301/320-byte records with padding, 16 cells, +3.045 A, 111 cycles', () => {
    const raw = records('JK-BD6A17S6P-7.1.0H-BLE-JK02.txt');
    const recs = reassemble(raw);
    expect(recs.length).toBe(raw.length);
    const c = decodeCellInfo(recs.find((r) => r[4] === 2) as Uint8Array, 'jk02-24s');
    expect(c.cellVoltages.length).toBe(16);
    expect(c.voltage).toBeCloseTo(51.715, 3);
    expect(c.current).toBeCloseTo(3.045, 3);
    expect(c.soc).toBe(30);
    expect(c.cycles).toBe(111);
    expect(c.runtimeSeconds).toBe(15_967_430);
  });

  it('reassembles at any notification size and resynchronises after garbage and lost notifications', () => {
    const recs = records('JK-B2A24S20P-10.07-BLE-JK02.txt');
    for (const size of [1, 7, 20, 182, 244, 512]) expect(reassemble(recs, size).length).toBe(3);
    const framer = new JkBleFramer();
    const out: Uint8Array[] = [];
    const [info, settings, cells] = recs as [Uint8Array, Uint8Array, Uint8Array];
    // garbage, a record missing one notification, then complete records
    out.push(...framer.push(Uint8Array.of(1, 2, 3, 0x55, 0xaa)));
    const cut = chunks(settings);
    cut.splice(5, 1);
    for (const c of cut) out.push(...framer.push(c));
    for (const c of chunks(info)) out.push(...framer.push(c));
    for (const c of chunks(cells)) out.push(...framer.push(c));
    expect(out.map((r) => r[4])).toEqual([3, 2]);
    expect(framer.discarded).toBeGreaterThan(0);
    expect(framer.pending).toBeLessThan(4);
  });

  it('never buffers more than two maximum records of noise', () => {
    const framer = new JkBleFramer();
    const noise = new Uint8Array(5000).fill(0x55);
    expect(framer.push(noise)).toEqual([]);
    expect(framer.pending).toBeLessThanOrEqual(640);
  });
});

describe('JkBleDriver over a fake BLE link', () => {
  function setUp(file: string) {
    const recs = records(file);
    const ble = new FakeBle();
    ble.onPeer = (peer) => {
      peer.onWrite = (data) => {
        const cmd = decodeCommand(data)?.cmd;
        const send = (type: number) => {
          for (const r of recs.filter((x) => x[4] === type)) for (const c of chunks(r)) peer.notify(c);
        };
        if (cmd === JkBleCommand.deviceInfo) setTimeout(() => send(3), 1);
        if (cmd === JkBleCommand.cellInfo)
          setTimeout(() => {
            send(1);
            send(2);
          }, 1);
      };
    };
    const driver = new JkBleDriver({ ble, address: 'C8:47:8C:00:00:01', now: () => 1000 });
    const snapshots: BatterySnapshot[] = [];
    const events: DriverEvent[] = [];
    driver.onSnapshot((s) => snapshots.push(s));
    driver.onEvent((e) => events.push(e));
    return { ble, driver, snapshots, events };
  }

  it('asks for device info, picks JK02_32S from hardware 11.XW, and turns each cell info record into a snapshot', async () => {
    const { ble, driver, snapshots } = setUp('JK-B2A8S20P-11.17-BLE-JK02_32S.txt');
    driver.start();
    await until(() => snapshots.length >= 1, 2000, 'snapshot');
    const s = snapshots[0] as BatterySnapshot;
    expect(s.voltage).toBeCloseTo(26.381, 3);
    expect(s.soc).toBe(69);
    expect(s.cellVoltages?.length).toBe(8);
    expect(s.identity?.hardware).toBe('11.XW');
    expect(s.identity?.manufacturer).toBe('JK');
    expect(ble.last?.writes.map((w) => w[4])).toEqual([0x97, 0x96]);
    await driver.stop();
  });

  it('JK02_24S from hardware 10.XG', async () => {
    const { driver, snapshots } = setUp('JK-B2A24S20P-10.07-BLE-JK02.txt');
    driver.start();
    await until(() => snapshots.length >= 1, 2000, 'snapshot');
    expect(snapshots[0]?.voltage).toBeCloseTo(78.735, 3);
    expect(snapshots[0]?.cellVoltages?.length).toBe(24);
    await driver.stop();
  });

  it('JK04 from hardware 3.0: float cell info records become voltage-only snapshots', async () => {
    const { driver, snapshots, events } = setUp('JK-B2A16S-3.3.0-BLE-JK04.txt');
    driver.start();
    await until(() => snapshots.length >= 63, 2000, 'JK04 snapshots');
    const s = snapshots[0] as BatterySnapshot;
    expect(s.voltage).toBe(53.8);
    expect(s.cellCount).toBe(16);
    expect(s.cellVoltages?.[0]).toBe(3.3674);
    expect(s.current).toBeUndefined();
    expect(s.identity?.model).toBe('JK-B2A16S');
    expect(s.identity?.hardware).toBe('3.0');
    expect(events.some((e) => /layout jk04/.test(e.message))).toBe(true);
    expect(events.filter((e) => e.level === 'error' || e.level === 'warn')).toEqual([]);
    await driver.stop();
  });

  it('reconnects after a remote disconnect and asks for the stream again', async () => {
    const { ble, driver, snapshots } = setUp('JK-B2A8S20P-11.17-BLE-JK02_32S.txt');
    driver.start();
    await until(() => snapshots.length >= 1, 2000, 'snapshot');
    ble.last?.remoteDisconnect();
    await until(() => ble.peers.length === 2 && snapshots.length >= 2, 5000, 'reconnect');
    expect(ble.last?.writes.map((w) => w[4])).toContain(0x96);
    await driver.stop();
  });
});
