/**
 * The status page in headless chromium, fed by real parts: two simulated JBD BMSes on pseudo-terminals → our
 * serial link and JBD driver → battery monitors → the bank aggregate → the HTTP sink → the page over SSE.
 * Screenshots (phone and desktop) go to test-artifacts/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { aggregateBank } from '../../src/bank/aggregate.js';
import { parseTopology } from '../../src/bank/topology.js';
import { BatteryMonitor } from '../../src/battery/battery-monitor.js';
import { JbdDriver } from '../../src/bms/jbd/driver.js';
import { DEFAULT_CHARGE } from '../../src/config.js';
import type { BatteryState } from '../../src/domain/battery-state.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { DEFAULT_CHARGE_CONTROL_CONFIG } from '../../src/policy/charge-control-config.js';
import { parseHttpConfig } from '../../src/publishers/http/config.js';
import { createHttpSink, type HttpSink } from '../../src/publishers/http/http-sink.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { runSimulatorOnPty, type SimulatorOnPty } from '../../src/sim/pty.js';
import { eventually, memoryLogger } from '../publishers/fixtures.js';
import { type Chromium, launchChromium } from '../support/chromium.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON and browser objects as they come over the wire
type Json = any;

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

const HELD = {
  voltage: 26.4,
  current: -12.5,
  capacityRemaining: 61.2,
  capacityNominal: 100,
  soc: 61,
  cycles: 42,
  cells: [3.301, 3.302, 3.299, 3.304, 3.298, 3.3, 3.297, 3.299],
  temperatures: [21.5, 23.1],
  balanceBits: 0b1000,
  protectionBits: 0,
  chargeFet: true,
  dischargeFet: true,
};

interface Member {
  sim: JbdSimulator;
  pty: SimulatorOnPty;
  driver: JbdDriver;
  monitor: BatteryMonitor;
}

let dir: string;
let sink: HttpSink;
let browser: Chromium;
const members: Member[] = [];

async function member(id: string, seed: number, values: Partial<typeof HELD>): Promise<Member> {
  const sim = new JbdSimulator({ cells: 8, temperatureSensors: 2, seed });
  sim.setValues({ ...HELD, ...values });
  const pty = await runSimulatorOnPty({ simulator: sim, link: join(dir, `tty_${id}`) });
  const driver = new JbdDriver({ link: new SerialLink({ path: pty.path }), pollIntervalMs: 250, replyTimeoutMs: 200 });
  const monitor = new BatteryMonitor({
    id,
    connection: `Serial tty_${id}`,
    productName: 'JBD BMS',
    timing: { pollIntervalMs: 250, staleAfterMs: 3000 },
    charge: DEFAULT_CHARGE,
    // Recovery after a 0 is held 30 s by default (unit-tested); 1 s here so the page can show it come back.
    control: {
      ...DEFAULT_CHARGE_CONTROL_CONFIG,
      charge: { ...DEFAULT_CHARGE_CONTROL_CONFIG.charge, recoveryHoldSec: 1, recoveryRate: 0 },
    },
    now: Date.now,
  });
  driver.onSnapshot((s) => monitor.ingest(s));
  return { sim, pty, driver, monitor };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'status-page-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  sink = createHttpSink({
    config: parseHttpConfig(
      (k) => ({ enabled: 'true', listen: '127.0.0.1:0', event_interval: '0.25', history_step: '1' })[k],
    ),
    logger: memoryLogger(),
    version: 'test',
  });
  await sink.ready();
  const a = await member('a', 1, {});
  const b = await member('b', 2, {
    current: -10.5,
    soc: 64,
    cells: [3.31, 3.309, 3.311, 3.308, 3.31, 3.312, 3.309, 3.31],
    balanceBits: 0,
  });
  members.push(a, b);
  const topology = parseTopology({ topology: '2p', batteries: ['a', 'b'] }, ['a', 'b']);
  const latest = new Map<string, BatteryState>();
  for (const m of members) {
    m.monitor.onState((s) => {
      sink.publish(s);
      latest.set(s.id, s);
      const bank = aggregateBank(latest, topology, { id: 'house', connection: 'Bank 2p (a, b)' });
      sink.publish(bank, { chargeMode: 'Bulk' });
    });
    m.monitor.start();
    m.driver.start();
  }
  browser = await launchChromium();
  await eventually(() => members.every((m) => m.monitor.state.health === 'online'), 10_000, 'both batteries online');
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const m of members) {
    m.monitor.stop();
    await m.driver.stop();
    await m.pty.close();
  }
  await sink?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const text = (page: Page, field: string) => page.locator(`[data-field="${field}"]`).first().textContent();

async function waitText(page: Page, field: string, expected: string | RegExp, timeout = 8000): Promise<void> {
  await page.waitForFunction(
    ([f, e, isRe]) => {
      const t = (globalThis as Json).document.querySelector(`[data-field="${f}"]`)?.textContent ?? '';
      return isRe ? new RegExp(e as string).test(t) : t === e;
    },
    [field, expected instanceof RegExp ? expected.source : expected, expected instanceof RegExp] as const,
    { timeout },
  );
}

describe('status page', () => {
  test('shows the bank: values, every cell as a bar with min/max/balancing marked, limits, members, alarms', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(sink.url as string);
    await waitText(page, 'health', 'online');
    expect(await page.locator('#title').textContent()).toBe('Bank house');
    await waitText(page, 'current', '-23.0 A');
    expect(await text(page, 'soc')).toMatch(/^6\d %$/);
    expect(await text(page, 'voltage')).toMatch(/^26\.\d\d V$/);
    expect(await text(page, 'charge-mode')).toBe('Bulk');
    expect(await text(page, 'ccl')).toMatch(/^\d+\.\d A$/);
    // 16 cells (8 per member), the lowest is a's cell 7, the highest b's cell 6.
    await page.waitForFunction(() => (globalThis as Json).document.querySelectorAll('#cells .cell').length === 16);
    expect(await page.locator('#cells .cell.min').getAttribute('data-cell')).toBe('7');
    expect(await page.locator('#cells .cell.max').getAttribute('data-cell')).toBe('14');
    expect(await page.locator('#cells .cell.bal').count()).toBe(1);
    expect(await page.locator('#members tbody tr').count()).toBe(2);
    expect(await page.locator('#members tbody tr[data-member="b"] td').nth(4).textContent()).toBe('64 %');
    expect(await page.locator('#alarms li').first().textContent()).toBe('No alarms');
    // Tabs: one per battery and the bank; a battery tab shows its own 8 cells.
    expect(await page.locator('#tabs button').count()).toBe(3);
    await page.locator('#tabs button[data-id="a"]').click();
    await page.waitForFunction(() => (globalThis as Json).document.querySelectorAll('#cells .cell').length === 8);
    await waitText(page, 'cell-delta', '7 mV');
    expect(await page.locator('#cells .cell.bal').getAttribute('data-cell')).toBe('4');
    expect(await page.locator('#members-section').isHidden()).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });

  test('updates live over server-sent events: SoC, a cell over-voltage stopping the charge and its alarm', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${sink.url}/`);
    await page.locator('#tabs button[data-id="a"]').click();
    await waitText(page, 'soc', '61 %');
    const before = Number(await page.locator('body').getAttribute('data-updates'));
    const a = members[0] as Member;
    a.sim.setValues({ soc: 57 });
    await waitText(page, 'soc', '57 %');
    a.sim.setValues({ cells: [...HELD.cells.slice(0, 7), 3.62] });
    await waitText(page, 'ccl', '0.0 A');
    expect(await text(page, 'ccl-reason')).toMatch(/cell over-voltage/);
    await page.waitForSelector('#alarms li[data-alarm="HighCellVoltage"]');
    expect(await page.locator('#alarms li[data-alarm="HighCellVoltage"]').textContent()).toBe(
      'High cell voltage — alarm',
    );
    expect(Number(await page.locator('body').getAttribute('data-updates'))).toBeGreaterThan(before);
    a.sim.setValues({ cells: HELD.cells, soc: 61 });
    await waitText(page, 'ccl', '50.0 A');
    await page.close();
  });

  test('draws the chart and fits a phone screen; screenshots saved to test-artifacts/', async () => {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(sink.url as string);
    await waitText(page, 'health', 'online');
    await page.waitForTimeout(600);
    const inked = await page.evaluate(() => {
      const c = (globalThis as Json).document.getElementById('chart');
      const data: Uint8ClampedArray = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if ((data[i] ?? 0) > 0) n++;
      return n;
    });
    expect(inked).toBeGreaterThan(500);
    const overflow = await page.evaluate(() => {
      const g = globalThis as Json;
      return g.document.documentElement.scrollWidth - g.innerWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.screenshot({ path: join(ARTIFACTS, 'status-page-desktop.png'), fullPage: true });
    await page.close();
  });
});
