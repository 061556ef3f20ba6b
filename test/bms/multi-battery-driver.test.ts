/**
 * The registry and the BusPool as the composition root uses them: one driver per battery section, the batteries of
 * one port sharing one SerialBus. End to end on real ptys with the family simulators on the other ends.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DalyDriver } from '../../src/bms/daly/driver.js';
import type { BmsDriver, DriverEvent } from '../../src/bms/driver.js';
import type { JkPbDriver } from '../../src/bms/jk-modbus/driver.js';
import { BusPool, FAMILIES, findFamily, resolveAddress } from '../../src/bms/registry.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { PylonRs485Simulator } from '../../src/sim/pylon-rs485-simulator.js';
import { driverTestScope } from '../support/driver-rig.js';
import { waitFor } from '../support/pty.js';

const { dir, cleanups } = driverTestScope();

const family = (id: string) => {
  const f = findFamily(id);
  if (f === undefined) throw new Error(`no family ${id}`);
  return f;
};
const settings = { pollIntervalMs: 400, replyTimeoutMs: 150, now: Date.now };
const serialPool = () => new BusPool((port) => new SerialLink(port));

describe('the family registry', () => {
  it('lists every serial family with its product name, baud rate and addressing', () => {
    expect(
      FAMILIES.map((f) => ({ id: f.id, productName: f.productName, baudRate: f.baudRate, addressing: f.addressing })),
    ).toEqual([
      { id: 'jbd', productName: 'JBD BMS', baudRate: 9600, addressing: 'none' },
      { id: 'jk-serial', productName: 'JK BMS', baudRate: 115200, addressing: 'none' },
      { id: 'jk-modbus', productName: 'JK-PB BMS', baudRate: 115200, addressing: { min: 1, max: 15, default: 1 } },
      { id: 'daly', productName: 'Daly BMS', baudRate: 9600, addressing: 'none' },
      {
        id: 'pylontech',
        productName: 'Pylontech battery',
        baudRate: 115200,
        addressing: { min: 0, max: 254, default: 2 },
      },
      { id: 'seplos', productName: 'Seplos BMS', baudRate: 9600, addressing: { min: 0, max: 15, default: 0 } },
    ]);
    expect(family('daly').options).toEqual([
      expect.objectContaining({ key: 'host_address', default: 0x40, choices: [0x40, 0x80] }),
    ]);
  });

  it('resolves addresses: the family default, a value in range, and refuses the rest', () => {
    expect(resolveAddress(family('jk-modbus'), undefined)).toBe(1);
    expect(resolveAddress(family('jk-modbus'), 15)).toBe(15);
    expect(resolveAddress(family('pylontech'), undefined)).toBe(2);
    expect(resolveAddress(family('seplos'), undefined)).toBe(0);
    expect(resolveAddress(family('jbd'), undefined)).toBeUndefined();
    expect(() => resolveAddress(family('jk-modbus'), 16)).toThrow(RangeError);
    expect(() => resolveAddress(family('seplos'), 1.5)).toThrow(RangeError);
    expect(() => resolveAddress(family('jbd'), 1)).toThrow(/has no bus address/);
  });

  it('makes drivers on a link of their own or on a shared bus, with the address and options of the section', () => {
    const link = new SerialLink({ path: '/nonexistent' });
    const jbd = family('jbd').createDriver(link, settings);
    expect(jbd.family).toBe('jbd');
    const pool = serialPool();
    const pb = family('jk-modbus');
    const p5 = pb.createDriver(pool.bus(pb, { path: '/dev/null-pb', address: 5 }), { ...settings, address: 5 });
    expect((p5 as JkPbDriver).address).toBe(5);
    expect((p5 as JkPbDriver).bus.gapMs).toBe(50);
    const daly = family('daly');
    const uart = daly.createDriver(link, { ...settings, options: { host_address: 0x80 } }) as DalyDriver;
    expect(uart.hostAddress).toBe(0x80);
    expect((daly.createDriver(link, settings) as DalyDriver).hostAddress).toBe(0x40);
    expect(() => daly.createDriver(link, { ...settings, options: { host_address: 0x41 } })).toThrow(RangeError);
    expect(() => pb.createDriver(link, { ...settings, address: 0 })).toThrow(RangeError);
  });
});

describe('BusPool', () => {
  it('hands out one bus per port to the batteries of one protocol, and another bus for another port', () => {
    const pool = serialPool();
    const pylon = family('pylontech');
    const a = pool.bus(pylon, { path: '/dev/ttyA', address: 2, owner: 'p2' });
    const b = pool.bus(pylon, { path: '/dev/ttyA', address: 3, owner: 'p3' });
    const c = pool.bus(pylon, { path: '/dev/ttyB', owner: 'p-other' });
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(pool.buses).toHaveLength(2);
    expect(a.description).toBe('Serial ttyA');
    expect((a.link as SerialLink).baudRate).toBe(115200);
  });

  it('refuses a second protocol or baud rate on a port, a taken address, and two single-device batteries on a port', () => {
    const pool = serialPool();
    pool.bus(family('pylontech'), { path: '/dev/ttyA', owner: 'house' });
    expect(() => pool.bus(family('seplos'), { path: '/dev/ttyA', address: 1, owner: 'shed' })).toThrow(
      /shed: port \/dev\/ttyA is already used by house with protocol pylontech at 115200 Bd/,
    );
    expect(() => pool.bus(family('pylontech'), { path: '/dev/ttyA', baudRate: 9600, address: 3 })).toThrow(
      /already used by house/,
    );
    expect(() => pool.bus(family('pylontech'), { path: '/dev/ttyA', address: 2, owner: 'garage' })).toThrow(
      'garage: address 2 on port /dev/ttyA is already used by house',
    );
    pool.bus(family('jbd'), { path: '/dev/ttyB', owner: 'van' });
    expect(() => pool.bus(family('jbd'), { path: '/dev/ttyB', owner: 'boat' })).toThrow(
      /boat: port \/dev\/ttyB already carries van, and protocol jbd has no bus address/,
    );
    expect(() => pool.bus(family('jk-modbus'), { path: '/dev/ttyC', address: 16 })).toThrow(RangeError);
  });
});

interface Battery {
  id: string;
  driver: BmsDriver;
  snapshots: BatterySnapshot[];
  events: DriverEvent[];
}

describe('batteries of two families on two ports at once (ptys + simulators)', () => {
  it('a JBD on one port and two Pylontech packs on another each deliver their own values through one pool', async () => {
    const jbdPath = join(dir, 'jbd');
    const pylonPath = join(dir, 'pylon');
    const jbdSim = new JbdSimulator({ seed: 4 });
    jbdSim.setValues({ current: -2.5, soc: 71, cells: [3.301, 3.302, 3.303, 3.304] });
    const pylonSim = new PylonRs485Simulator({
      protocol: 'pylontech',
      packs: [{ address: 2 }, { address: 3 }],
      seed: 6,
    });
    for (const a of [2, 3]) {
      pylonSim.pack(a).setValues({ ...pylonSim.pack(a).values(), current: a === 2 ? 3.5 : -1.5 });
    }
    const sims: SimulatorOnPty[] = [
      await runSimulatorOnPty({ simulator: jbdSim, link: jbdPath }),
      await runSimulatorOnPty({ simulator: pylonSim, link: pylonPath }),
    ];
    const links: SerialLink[] = [];
    const pool = new BusPool((port) => {
      const link = new SerialLink(port);
      links.push(link);
      return link;
    });
    const sections = [
      { id: 'van', protocol: 'jbd', port: jbdPath, address: undefined },
      { id: 'rack2', protocol: 'pylontech', port: pylonPath, address: 2 },
      { id: 'rack3', protocol: 'pylontech', port: pylonPath, address: 3 },
    ];
    const batteries: Battery[] = sections.map((s) => {
      const f = family(s.protocol);
      const bus = pool.bus(f, { path: s.port, address: s.address, owner: s.id });
      const driver = f.createDriver(bus, { ...settings, address: s.address });
      const b: Battery = { id: s.id, driver, snapshots: [], events: [] };
      driver.onSnapshot((x) => b.snapshots.push(x));
      driver.onEvent((e) => b.events.push(e));
      return b;
    });
    cleanups.push(async () => {
      for (const b of batteries) await b.driver.stop();
      for (const s of sims) await s.close();
    });
    expect(pool.buses).toHaveLength(2);
    expect(links.map((l) => l.baudRate)).toEqual([9600, 115200]);
    for (const b of batteries) b.driver.start();
    await waitFor(() => batteries.every((b) => b.snapshots.length >= 3), 10_000, 'three snapshots per battery');

    const [van, rack2, rack3] = batteries as [Battery, Battery, Battery];
    for (const s of van.snapshots) {
      expect(s.current).toBe(-2.5);
      expect(s.soc).toBe(71);
      expect(s.cellVoltages).toEqual([3.301, 3.302, 3.303, 3.304]);
      expect(s.identity.manufacturer).toBe('JBD');
    }
    for (const [b, a] of [
      [rack2, 2],
      [rack3, 3],
    ] as const) {
      const v = pylonSim.pack(a).values();
      for (const s of b.snapshots) {
        expect(s.current).toBe(v.current);
        expect(s.voltage).toBe(v.voltage);
        expect(s.cellVoltages).toEqual(v.cells);
        expect(s.identity.manufacturer).toBe('PYLON');
      }
    }
    for (const b of batteries) expect(b.events.filter((e) => e.level === 'warn')).toEqual([]);

    // Stopping one pack leaves its neighbour polling on the shared port; the last one closes it.
    await rack2.driver.stop();
    const n3 = rack3.snapshots.length;
    await waitFor(() => rack3.snapshots.length >= n3 + 2, 5000, 'rack 3 alone');
    expect(links[1]?.isOpen).toBe(true);
    for (const b of batteries) await b.driver.stop();
    expect(links.every((l) => !l.isOpen)).toBe(true);
  });
});
