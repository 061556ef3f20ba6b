/**
 * Real BLE stacks end to end (test-lab.md §4): BlueZ's controller emulator btvirt, bleno peripherals running
 * our family simulators, our noble-backed BleLink and the BLE drivers. One file: btvirt is one per machine.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DALY_BLE_PROFILE, DalyBleDriver } from '../../src/bms/daly/ble-driver.js';
import type { BmsDriver, DriverEvent } from '../../src/bms/driver.js';
import { JBD_BLE_PROFILE, JbdBleDriver } from '../../src/bms/jbd/ble-driver.js';
import { JK_BLE_PROFILE, JkBleDriver } from '../../src/bms/jk-ble/driver.js';
import { scanCommand } from '../../src/cli/scan.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { NobleBleLink } from '../../src/links/ble/noble-link.js';
import { JkBleSimulator } from '../../src/sim/ble-jk-simulator.js';
import { BlePeripheral } from '../../src/sim/ble-peripheral.js';
import { DalySimulator } from '../../src/sim/daly-simulator.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { BtvirtLab, btvirtAvailable, type Controller } from '../support/btvirt.js';

const available = btvirtAvailable();

/** Collects a driver's snapshots and events. */
function watch(driver: BmsDriver) {
  const snapshots: { at: number; s: BatterySnapshot }[] = [];
  const events: DriverEvent[] = [];
  driver.onSnapshot((s) => snapshots.push({ at: performance.now(), s }));
  driver.onEvent((e) => {
    events.push(e);
    if (process.env.BLE_DEBUG) console.log(`[${e.level}] ${e.message}`);
  });
  return { snapshots, events };
}

async function until(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!available)('BLE over btvirt (noble central, bleno peripherals)', () => {
  let lab: BtvirtLab;
  let central: Controller;
  let ble: NobleBleLink;
  const figures: string[] = [];

  beforeAll(async () => {
    lab = await BtvirtLab.start();
    central = await lab.controller();
    ble = new NobleBleLink({ uartPort: central.port });
    await ble.powerOn(10_000);
  });

  afterAll(async () => {
    await ble?.close();
    await lab?.stop();
    if (figures.length > 0) console.log(`BLE figures:\n  ${figures.join('\n  ')}`);
  });

  async function peripheral(
    name: string,
    profile: typeof JBD_BLE_PROFILE,
    device: Parameters<typeof BlePeripheral.start>[1],
  ) {
    const ctl = await lab.controller();
    const p = await BlePeripheral.start({ name, profile, uartPort: ctl.port }, device);
    return { ctl, p };
  }

  it('JBD: scan, connect, 20-byte notifications reassembled, snapshot equals the simulator, reconnect', async () => {
    const sim = new JbdSimulator({ cells: 8, temperatureSensors: 2, seed: 7 });
    sim.setValues(sim.values());
    const { ctl, p } = await peripheral('xiaoxiang BMS', JBD_BLE_PROFILE, sim);
    try {
      const found = await ble.scan({ durationMs: 600 });
      const adv = found.find((a) => a.name === 'xiaoxiang BMS');
      expect(adv?.serviceUuids).toContain('ff00');
      const driver = new JbdBleDriver({ ble, address: adv?.address ?? '', pollIntervalMs: 400, noDataTimeoutMs: 5000 });
      const { snapshots } = watch(driver);
      driver.start();
      await until(() => snapshots.length >= 1, 10_000, 'first JBD snapshot');
      const v = sim.values();
      const s = snapshots[0]?.s as BatterySnapshot;
      expect(s.voltage).toBeCloseTo(v.voltage, 2);
      expect(s.current).toBeCloseTo(v.current, 2);
      expect(s.soc).toBe(v.soc);
      expect(s.cellVoltages).toEqual(v.cells);
      expect(s.identity?.model).toBe(v.model);
      figures.push(`JBD connect ${driver.link.stats.lastConnectMs?.toFixed(0)} ms`);
      // the peripheral drops the connection: the link reconnects, snapshots resume
      const before = snapshots.length;
      p.disconnect();
      await until(() => driver.link.stats.connects >= 2 && snapshots.length > before + 1, 15_000, 'JBD reconnect');
      expect(driver.link.stats.lost).toBeGreaterThanOrEqual(1);
      await driver.stop();
    } finally {
      await p.stop();
      ctl.kill();
    }
  });

  it('Daly: 13-byte frames over notifications (all 16 cell frames), snapshot equals the simulator', async () => {
    const sim = new DalySimulator({ cells: 4, temperatureSensors: 2, allCellFrames: true, seed: 3 });
    sim.setValues(sim.values());
    const { ctl, p } = await peripheral('DL-40D63C21F0E5', DALY_BLE_PROFILE, sim);
    try {
      const driver = new DalyBleDriver({ ble, address: p.address, pollIntervalMs: 600, noDataTimeoutMs: 5000 });
      const { snapshots } = watch(driver);
      driver.start();
      await until(() => snapshots.length >= 1, 10_000, 'first Daly snapshot');
      const v = sim.values();
      const s = snapshots[0]?.s as BatterySnapshot;
      expect(s.voltage).toBeCloseTo(v.voltage, 1);
      expect(s.current).toBeCloseTo(v.current, 1);
      expect(s.soc).toBeCloseTo(v.soc, 1);
      expect(s.cellVoltages).toEqual(v.cells);
      expect(sim.stats.requests[0x95]).toBeGreaterThanOrEqual(1);
      figures.push(`Daly connect ${driver.link.stats.lastConnectMs?.toFixed(0)} ms`);
      await driver.stop();
    } finally {
      await p.stop();
      ctl.kill();
    }
  });

  it('JK: 0x97/0x96, 300-byte records from 20-byte notifications, snapshot equals the simulator; watchdog after a vanished peer', async () => {
    const sim = new JkBleSimulator({ cells: 8, seed: 5, streamIntervalMs: 300 });
    sim.setValues(sim.values());
    const { ctl, p } = await peripheral('JK_B2A8S20P', JK_BLE_PROFILE, sim);
    try {
      const driver = new JkBleDriver({ ble, address: p.address, noDataTimeoutMs: 1500, backoffMinMs: 200 });
      const { snapshots, events } = watch(driver);
      driver.start();
      await until(() => snapshots.length >= 4, 10_000, 'JK snapshots');
      const v = sim.values();
      const s = snapshots[3]?.s as BatterySnapshot;
      expect(s.voltage).toBeCloseTo(v.voltage, 2);
      expect(s.current).toBeCloseTo(v.current, 2);
      expect(s.soc).toBe(v.soc);
      expect(s.cellVoltages).toEqual(v.cells);
      expect(s.identity?.hardware).toBe('11.XW');
      expect(sim.commands[0x97]).toBe(1);
      expect(sim.commands[0x96]).toBe(1);
      // notification → snapshot latency: the record's first byte handed to bleno → snapshot delivered
      const lat = snapshots.slice(1).map((x) => {
        const sent = sim.sentAt.filter((t) => t <= x.at);
        return x.at - (sent[sent.length - 1] ?? x.at);
      });
      lat.sort((a, b) => a - b);
      figures.push(
        `JK connect ${driver.link.stats.lastConnectMs?.toFixed(0)} ms; record(300 B = 15 notifications) → snapshot p50 ${lat[Math.floor(lat.length / 2)]?.toFixed(1)} ms, max ${lat[lat.length - 1]?.toFixed(1)} ms`,
      );
      // the peripheral's controller vanishes (socat killed): btvirt reports nothing, the watchdog must
      const t0 = performance.now();
      ctl.kill();
      await until(() => driver.link.stats.watchdogTrips >= 1, 5000, 'watchdog');
      figures.push(
        `JK watchdog tripped ${(performance.now() - t0).toFixed(0)} ms after the peer vanished (timeout 1500 ms)`,
      );
      expect(events.some((e) => e.level === 'warn' && /no data for/.test(e.message))).toBe(true);
      await driver.stop();
    } finally {
      await p.stop();
      ctl.kill();
    }
  });

  it('scanCommand lists the BMSes advertising nearby, with family and config lines', async () => {
    const a = await peripheral('xiaoxiang 2', JBD_BLE_PROFILE, new JbdSimulator({ cells: 4, seed: 11 }));
    const b = await peripheral('DL-SECOND', DALY_BLE_PROFILE, new DalySimulator({ cells: 4, seed: 12 }));
    const c = await peripheral('JK_B2A24S15P', JK_BLE_PROFILE, new JkBleSimulator({ seed: 13 }));
    try {
      // A scan is a radio sample: repeat (up to 4 s in all) until every advertiser has been heard.
      let lines: string[] = [];
      let names: string[] = [];
      const want = ['xiaoxiang 2:jbd', 'DL-SECOND:daly', 'JK_B2A24S15P:jk-ble'];
      for (let i = 0; i < 4 && !want.every((w) => names.includes(w)); i++) {
        lines = [];
        const results = await scanCommand({ ble, durationMs: 1000, print: (l) => lines.push(l) });
        names = results.map((r) => `${r.name}:${r.family}`);
      }
      expect(names).toEqual(expect.arrayContaining(want));
      expect(lines).toContain(`mac = ${a.p.address}`);
      expect(lines).toContain(`mac = ${b.p.address}`);
      expect(lines).toContain('protocol = daly');
      expect(lines).toContain('protocol = jk-ble');
    } finally {
      for (const x of [a, b, c]) {
        await x.p.stop();
        x.ctl.kill();
      }
    }
  });
});
