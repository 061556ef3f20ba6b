/**
 * Capture → replay over Bluetooth LE with the real stacks: BlueZ's controller emulator (btvirt), bleno
 * peripherals running our JBD and JK simulators, our noble-backed BleLink and the BLE drivers from the registry.
 * The replay plays the recorded BMS behind a replay BleLink: the same BleByteLink, framers and drivers run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { JBD_BLE_PROFILE } from '../../src/bms/jbd/ble-driver.js';
import { JK_BLE_PROFILE } from '../../src/bms/jk-ble/driver.js';
import { NobleBleLink } from '../../src/links/ble/noble-link.js';
import { JkBleSimulator } from '../../src/sim/ble-jk-simulator.js';
import { BlePeripheral } from '../../src/sim/ble-peripheral.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { BtvirtLab, type Controller } from '../support/btvirt.js';
import { captureLive, expectSameOnReplay, realLinks } from './capture-rig.js';

const dir = mkdtempSync(join(tmpdir(), 'ble-round-trip-'));

describe('BLE over btvirt', () => {
  let lab: BtvirtLab;
  let central: Controller;
  let ble: NobleBleLink;
  const stops: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    lab = await BtvirtLab.start();
    central = await lab.controller();
    ble = new NobleBleLink({ uartPort: central.port });
    await ble.powerOn(10_000);
  }, 30_000);

  afterAll(async () => {
    for (const s of stops.reverse()) await s();
    await ble?.close();
    await lab?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function peripheral(
    name: string,
    profile: typeof JBD_BLE_PROFILE,
    device: Parameters<typeof BlePeripheral.start>[1],
  ): Promise<string> {
    const ctl = await lab.controller();
    const p = await BlePeripheral.start({ name, profile, uartPort: ctl.port }, device);
    stops.push(
      () => p.stop(),
      () => ctl.kill(),
    );
    return p.address;
  }

  const links = { ...realLinks, ble: () => ble };

  test('JBD (polled, 20-byte notifications): capture → replay gives the same snapshots', async () => {
    const address = await peripheral('xiaoxiang BMS', JBD_BLE_PROFILE, new JbdSimulator({ cells: 8, seed: 21 }));
    const text =
      `[battery.shed]\nprotocol = jbd\nmac = ${address}\nble_backend = noble\nble_hci_uart = ${central.port}\n` +
      'poll_interval = 0.5\nreply_timeout = 0.4\n';
    const { live, session } = await captureLive(dir, 'jbd-ble', text, 5, undefined, links);
    expect(session.headers.map((h) => [h.battery, h.family, h.link.kind])).toEqual([['shed', 'jbd', 'ble']]);
    const { stats } = await expectSameOnReplay(live, session, 2);
    expect(stats.matched).toBeGreaterThanOrEqual(10);
  }, 60_000);

  test('JK (two commands, then a stream of records): capture → replay gives the same snapshots', async () => {
    const address = await peripheral(
      'JK_B2A8S20P',
      JK_BLE_PROFILE,
      new JkBleSimulator({ cells: 8, seed: 22, streamIntervalMs: 250 }),
    );
    const text = `[battery.van]\nprotocol = jk-ble\nmac = ${address}\nble_backend = noble\nble_hci_uart = ${central.port}\n`;
    const { live, session } = await captureLive(dir, 'jk-ble', text, 6, undefined, links);
    expect(session.headers.map((h) => [h.battery, h.family, h.link.kind])).toEqual([['van', 'jk-ble', 'ble']]);
    // Two commands written, then records streamed without further requests.
    expect(session.frames.filter((f) => f.dir === 'tx')).toHaveLength(2);
    expect(session.frames.filter((f) => f.dir === 'rx').length).toBeGreaterThanOrEqual(7);
    const { stats } = await expectSameOnReplay(live, session, 2);
    expect(stats.matched).toBe(2);
    expect(stats.lost).toBe(0);
  }, 60_000);
});
