/**
 * SocketCAN in a real kernel (run inside User-Mode-Linux by test/can/uml.test.ts; vcan0 and vcan1 are up):
 * our link against itself and against can-utils, link down/up, a burst, and the CAN drivers end to end.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { afterEach, describe, expect, test } from 'vitest';
import { BydAtto3Driver } from '../../src/bms/byd-atto3/driver.js';
import { DeyeCanDriver } from '../../src/bms/deye-can/driver.js';
import { PylonCanDriver } from '../../src/bms/pylon-can/driver.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { CanBus } from '../../src/links/can/can-bus.js';
import { type CanFrame, formatCanFrame } from '../../src/links/can/can-frame.js';
import { SocketCanLink } from '../../src/links/can/socketcan-link.js';
import { CanSimulator, DEFAULT_BYD, DEFAULT_DEYE_PACK, DEFAULT_PYLON } from '../../src/sim/can-simulators.js';
import { sleep, waitFor } from '../support/pty.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openLink(iface = 'vcan0'): Promise<{ link: SocketCanLink; got: CanFrame[] }> {
  const link = new SocketCanLink({ iface });
  const got: CanFrame[] = [];
  link.onData((f) => got.push(f));
  await link.open();
  cleanups.push(() => link.close());
  return { link, got };
}

function ip(...args: string[]): void {
  execFileSync('ip', ['link', 'set', ...args]);
}

describe('SocketCanLink on vcan0', () => {
  test('node → node', async () => {
    const a = await openLink();
    const b = await openLink();
    await a.link.send({ id: 0x351, ext: false, data: Uint8Array.of(0x14, 0x02, 0x74, 0x0e, 0x74, 0x0e, 0xcc, 0x01) });
    await waitFor(() => b.got.length === 1, 5000, 'the frame at b');
    expect(formatCanFrame(b.got[0] as CanFrame)).toBe('351#1402740E740ECC01');
    expect(a.got).toEqual([]); // no loopback to the sending socket
  });

  test('cansend → our link (29-bit id), with a filter', async () => {
    const b = await openLink();
    b.link.setFilters([{ id: 0x18ff50e5, mask: 0x1fffffff, ext: true }]);
    execFileSync('cansend', ['vcan0', '123#00']);
    execFileSync('cansend', ['vcan0', '18FF50E5#0102030405060708']);
    await waitFor(() => b.got.length >= 1, 5000, 'the cansend frame');
    await sleep(50);
    expect(b.got.map(formatCanFrame)).toEqual(['18FF50E5#0102030405060708']);
    expect(b.got[0]?.ext).toBe(true);
  });

  test('our link → candump', async () => {
    const a = await openLink();
    const dump: ChildProcess = spawn('candump', ['-L', '-n', '2', '-T', '10000', 'vcan0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    dump.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const closed = new Promise((r) => dump.on('close', r));
    await sleep(300); // candump binds its socket
    await a.link.send({ id: 0x35e, ext: false, data: new TextEncoder().encode('PYLON   ') });
    await a.link.send({ id: 0x1abcdef, ext: true, data: Uint8Array.of(1, 2) });
    await closed;
    expect(out).toMatch(/vcan0 35E#50594C4F4E202020/);
    expect(out).toMatch(/vcan0 01ABCDEF#0102/);
  });

  test('link down: the channel dies and the bus recreates it after link up; frames flow again', async () => {
    const link = new SocketCanLink({ iface: 'vcan0' });
    const bus = new CanBus(link, { reconnectMinMs: 50, reconnectMaxMs: 100 });
    const states: boolean[] = [];
    const got: CanFrame[] = [];
    const detach = bus.attach({ frame: (f) => got.push(f), state: (up) => states.push(up) });
    cleanups.push(async () => {
      ip('vcan0', 'up');
      await detach();
    });
    await waitFor(() => states.includes(true), 5000, 'bus open');
    execFileSync('cansend', ['vcan0', '356#01']);
    await waitFor(() => got.length === 1, 5000, 'frame before');
    ip('vcan0', 'down');
    await waitFor(() => states.includes(false), 5000, 'link lost');
    expect(link.isOpen).toBe(false);
    await sleep(300); // reopen attempts fail while down
    expect(link.isOpen).toBe(false);
    ip('vcan0', 'up');
    await waitFor(() => link.isOpen, 5000, 'reopened');
    expect(link.channelsCreated).toBe(2);
    execFileSync('cansend', ['vcan0', '356#02']);
    await waitFor(() => got.length === 2, 5000, 'frame after');
    expect(got.map(formatCanFrame)).toEqual(['356#01', '356#02']);
    expect(await bus.send({ id: 0x305, ext: false, data: new Uint8Array(8) })).toBe(true);
  });

  test('a burst of 3000 frames: all arrive, in order, and timers keep running', async () => {
    const a = await openLink();
    const b = await openLink();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    cleanups.push(() => clearInterval(timer));
    const n = 3000;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      sends.push(a.link.send({ id: 0x200, ext: false, data: Uint8Array.of(i & 0xff, (i >> 8) & 0xff) }));
    }
    const ticksAtQueue = ticks;
    await Promise.all(sends);
    await waitFor(() => b.got.length === n, 20_000, `${n} frames`);
    expect(b.got.every((f, i) => f.data[0] === (i & 0xff) && f.data[1] === ((i >> 8) & 0xff))).toBe(true);
    // The queue yielded: the 5 ms timer ran while the burst was being sent.
    expect(ticks - ticksAtQueue).toBeGreaterThan(0);
  });
});

describe('CAN drivers against simulators over vcan1', () => {
  async function simLink(): Promise<SocketCanLink> {
    const { link } = await openLink('vcan1');
    return link;
  }

  test('Pylon: snapshots, limits, and our 0x305 keep-alive on the bus', async () => {
    const simSide = await openLink('vcan1');
    const sim = new CanSimulator(simSide.link, { family: 'pylon-can', periodMs: 100 });
    const bus = new CanBus(new SocketCanLink({ iface: 'vcan1' }));
    const driver = new PylonCanDriver({ bus, keepAliveMs: 100 });
    const snaps: BatterySnapshot[] = [];
    driver.onSnapshot((s) => snaps.push(s));
    driver.start();
    sim.start();
    cleanups.push(async () => {
      sim.stop();
      await driver.stop();
    });
    await waitFor(() => snaps.length >= 2, 10_000, 'Pylon snapshots');
    await waitFor(() => simSide.got.some((f) => f.id === 0x305), 5000, 'keep-alive');
    expect(snaps.at(-1)).toMatchObject({
      voltage: DEFAULT_PYLON.voltage,
      soc: DEFAULT_PYLON.soc,
      identity: { manufacturer: 'PYLON' },
    });
    expect(snaps.at(-1)?.bmsLimits?.chargeVoltage).toBe(DEFAULT_PYLON.chargeVoltage);
  });

  test('Deye rack with two packs and a BYD pack share nothing but the kernel', async () => {
    const deyeSim = new CanSimulator(await simLink(), { family: 'deye-can', packs: 2, periodMs: 100 });
    const bus = new CanBus(new SocketCanLink({ iface: 'vcan1' }));
    const pack1 = new DeyeCanDriver({ bus, pack: 1 });
    const deyeSnaps: BatterySnapshot[] = [];
    pack1.onSnapshot((s) => deyeSnaps.push(s));
    const bydSim = new CanSimulator(await simLink(), { family: 'byd-atto3' });
    const bydBus = new CanBus(new SocketCanLink({ iface: 'vcan1' }));
    const byd = new BydAtto3Driver({ bus: bydBus });
    const bydSnaps: BatterySnapshot[] = [];
    byd.onSnapshot((s) => bydSnaps.push(s));
    for (const x of [pack1, byd, deyeSim, bydSim]) x.start();
    cleanups.push(async () => {
      deyeSim.stop();
      bydSim.stop();
      await pack1.stop();
      await byd.stop();
    });
    await waitFor(() => deyeSnaps.length >= 2 && bydSnaps.length >= 2, 10_000, 'Deye and BYD snapshots');
    expect(deyeSnaps.at(-1)?.soc).toBe(DEFAULT_DEYE_PACK.soc - 1);
    expect(bydSnaps.at(-1)?.voltage).toBe(DEFAULT_BYD.voltage);
  });
});
