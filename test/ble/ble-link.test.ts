/** The BLE connection manager over a fake adapter: gate, back-off, watchdog, vesmart pattern, poll mode. */
import { describe, expect, it } from 'vitest';
import { configLines, guessFamily, scanCommand } from '../../src/cli/scan.js';
import { AdapterGate, Backoff } from '../../src/links/ble/adapter-gate.js';
import { BleByteLink } from '../../src/links/ble/ble-byte-link.js';
import type { BleEvent } from '../../src/links/ble/ble-link.js';
import { normalizeAddress, normalizeUuid } from '../../src/links/ble/ble-link.js';
import { FakeBle, until } from './fake-ble.js';

const PROFILE = { service: 'ff00', notify: 'ff01', write: 'ff02' };

function link(ble: FakeBle, extra: Partial<ConstructorParameters<typeof BleByteLink>[0]> = {}) {
  const l = new BleByteLink({
    ble,
    address: 'AA-BB-CC-DD-EE-01',
    profile: PROFILE,
    gate: new AdapterGate(0),
    ...extra,
  });
  const events: BleEvent[] = [];
  const closes: Error[] = [];
  l.onEvent((e) => events.push(e));
  l.onClose((e) => closes.push(e));
  return { l, events, closes };
}

describe('helpers', () => {
  it('normalises UUIDs and addresses', () => {
    expect(normalizeUuid('0000FF00-0000-1000-8000-00805F9B34FB')).toBe('ff00');
    expect(normalizeUuid('FFE1')).toBe('ffe1');
    expect(normalizeAddress('AA-BB-CC-DD-EE-01')).toBe('aa:bb:cc:dd:ee:01');
    expect(() => normalizeAddress('nope')).toThrow(RangeError);
  });

  it('back-off doubles up to the cap, with jitter in [base/2, base]', () => {
    const lo = new Backoff(1000, 8000, () => 0);
    const hi = new Backoff(1000, 8000, () => 1);
    expect(lo.nextDelayMs()).toBe(0);
    const seen: [number, number][] = [];
    for (let i = 0; i < 6; i++) {
      lo.failed();
      hi.failed();
      seen.push([lo.nextDelayMs(), hi.nextDelayMs()]);
    }
    expect(seen).toEqual([
      [500, 1000],
      [1000, 2000],
      [2000, 4000],
      [4000, 8000],
      [4000, 8000],
      [4000, 8000],
    ]);
    lo.succeeded();
    expect(lo.nextDelayMs()).toBe(0);
  });

  it('the adapter gate runs one attempt at a time, starts spaced by staggerMs', async () => {
    const gate = new AdapterGate(30);
    let active = 0;
    let maxActive = 0;
    const starts: number[] = [];
    const attempt = (fail: boolean) =>
      gate.run(async () => {
        starts.push(Date.now());
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 10));
        active--;
        if (fail) throw new Error('x');
        return 1;
      });
    const results = await Promise.allSettled([attempt(false), attempt(true), attempt(false), attempt(false)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(maxActive).toBe(1);
    for (let i = 1; i < starts.length; i++) {
      expect((starts[i] as number) - (starts[i - 1] as number)).toBeGreaterThanOrEqual(28);
    }
  });

  it('guesses the family from the service, then the name, and writes config lines', () => {
    expect(guessFamily({ name: '', serviceUuids: ['ff00'] })).toBe('jbd');
    expect(guessFamily({ name: 'JK_B2A8S20P', serviceUuids: [] })).toBe('jk-ble');
    expect(guessFamily({ name: 'DL-40D63C21F0E5', serviceUuids: [] })).toBe('daly');
    expect(guessFamily({ name: 'phone', serviceUuids: ['180f'] })).toBeUndefined();
    const lines = configLines(
      {
        address: 'aa:bb:cc:dd:ee:01',
        name: 'xiaoxiang',
        rssi: -60,
        serviceUuids: ['ff00'],
        connectable: true,
        family: 'jbd',
      },
      { hciUart: '/dev/ttyUSB1' },
    );
    expect(
      configLines(
        { address: 'aa:bb:cc:dd:ee:02', name: '', rssi: -1, serviceUuids: [], connectable: true, family: 'daly' },
        { backend: 'noble', adapter: 'hci1' },
      ),
    ).toEqual([
      '[battery.ble_ddee02]',
      'protocol = daly',
      'mac = aa:bb:cc:dd:ee:02',
      'ble_backend = noble',
      'adapter = hci1',
    ]);
    expect(lines).toEqual([
      '[battery.ble_ddee01]',
      'protocol = jbd',
      'mac = aa:bb:cc:dd:ee:01',
      'ble_backend = noble',
      'ble_hci_uart = /dev/ttyUSB1',
      'custom_name = xiaoxiang',
    ]);
  });

  it('scanCommand lists only BMS-looking devices, strongest first', async () => {
    const ble = new FakeBle();
    ble.advertisements = [
      { address: 'aa:00:00:00:00:01', name: 'JK_B1', rssi: -80, serviceUuids: ['ffe0'], connectable: true },
      { address: 'aa:00:00:00:00:02', name: 'headphones', rssi: -40, serviceUuids: [], connectable: true },
      { address: 'aa:00:00:00:00:03', name: 'xiaoxiang', rssi: -50, serviceUuids: ['ff00'], connectable: true },
    ];
    const out: string[] = [];
    const r = await scanCommand({ ble, durationMs: 1, print: (l) => out.push(l) });
    expect(r.map((x) => x.name)).toEqual(['xiaoxiang', 'JK_B1']);
    expect(out.some((l) => l.includes('headphones'))).toBe(false);
    expect(out).toContain('protocol = jk-ble');
  });
});

describe('BleByteLink', () => {
  it('keep-connected: open connects and subscribes; writes go out; notifications come in; close disconnects', async () => {
    const ble = new FakeBle();
    const { l, closes } = link(ble);
    const got: number[] = [];
    l.onData((b) => got.push(...b));
    await l.open();
    expect(l.isOpen && l.isConnected).toBe(true);
    await l.send(Uint8Array.of(1, 2));
    expect([...(ble.last?.writes[0] ?? [])]).toEqual([1, 2]);
    ble.last?.notify(Uint8Array.of(9));
    expect(got).toEqual([9]);
    await l.close();
    expect(ble.last?.connected).toBe(false);
    expect(closes).toEqual([]);
    await expect(l.send(Uint8Array.of(1))).rejects.toThrow(/not open/);
  });

  it('a remote disconnect closes the link once, with the reason', async () => {
    const ble = new FakeBle();
    const { l, closes } = link(ble);
    await l.open();
    ble.last?.remoteDisconnect('HCI reason 0x13');
    expect(closes.length).toBe(1);
    expect(closes[0]?.message).toMatch(/0x13/);
    expect(l.isOpen).toBe(false);
    await l.open();
    expect(l.stats.connects).toBe(2);
    await l.close();
  });

  it('the no-data watchdog closes a connection that went silent (a vanished peer is never reported)', async () => {
    const ble = new FakeBle();
    const { l, events, closes } = link(ble, { noDataTimeoutMs: 120 });
    await l.open();
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 60));
      ble.last?.notify(Uint8Array.of(i));
    }
    expect(closes).toEqual([]);
    await until(() => closes.length === 1, 1000, 'watchdog');
    expect(l.stats.watchdogTrips).toBe(1);
    expect(events.some((e) => e.level === 'warn' && /no data for/.test(e.message))).toBe(true);
    expect(ble.last?.connected).toBe(false);
  });

  it('failed attempts back off with jitter; success resets; close cancels a pending attempt', async () => {
    const ble = new FakeBle();
    ble.failures = ['Connection Failed to be Established (0x3e)', 'again'];
    const { l, events } = link(ble, { backoffMinMs: 40, random: () => 1 });
    await expect(l.open()).rejects.toThrow(/0x3e/);
    await expect(l.open()).rejects.toThrow(/again/);
    await l.open();
    const [t0, t1, t2] = ble.connectAttempts as [number, number, number];
    expect(t1 - t0).toBeGreaterThanOrEqual(35);
    expect(t2 - t1).toBeGreaterThanOrEqual(75);
    expect(events.filter((e) => e.level === 'warn').length).toBe(1);
    await l.close();
    ble.hang = true;
    const { l: l2 } = link(ble, { connectTimeoutMs: 10_000 });
    const opening = l2.open();
    await until(() => ble.connectAttempts.length === 4, 1000, 'attempt');
    const t = Date.now();
    await l2.close();
    await expect(opening).rejects.toThrow();
    expect(Date.now() - t).toBeLessThan(500);
  });

  it('recognises the vesmart-server pattern (disconnect every ~60 s) and says so once', async () => {
    const ble = new FakeBle();
    const { l, events } = link(ble, { vesmartPeriodMs: 80, vesmartToleranceMs: 40 });
    for (let i = 0; i < 4; i++) {
      await l.open();
      await new Promise((r) => setTimeout(r, 80));
      ble.last?.remoteDisconnect();
    }
    const lines = events.filter((e) => /vesmart-server/.test(e.message));
    expect(lines.length).toBe(1);
    expect(lines[0]?.level).toBe('warn');
    expect(l.vesmartDetected).toBe(true);
  });

  it('does not call an irregular disconnect vesmart', async () => {
    const ble = new FakeBle();
    const { l, events } = link(ble, { vesmartPeriodMs: 200, vesmartToleranceMs: 20 });
    for (let i = 0; i < 3; i++) {
      await l.open();
      await new Promise((r) => setTimeout(r, 30));
      ble.last?.remoteDisconnect();
    }
    expect(events.some((e) => /vesmart/.test(e.message))).toBe(false);
  });

  it('poll mode connects on demand and drops the connection when idle, without closing the link', async () => {
    const ble = new FakeBle();
    const { l, closes } = link(ble, { mode: 'poll', idleDisconnectMs: 50 });
    await l.open();
    expect(l.isOpen).toBe(true);
    expect(ble.peers.length).toBe(0);
    await l.send(Uint8Array.of(1));
    expect(l.isConnected).toBe(true);
    await until(() => !l.isConnected, 1000, 'idle disconnect');
    expect(ble.peers[0]?.connected).toBe(false);
    await l.send(Uint8Array.of(2));
    expect(ble.peers.length).toBe(2);
    ble.last?.remoteDisconnect();
    expect(closes).toEqual([]);
    await l.close();
  });
});
