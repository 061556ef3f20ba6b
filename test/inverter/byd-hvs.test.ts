/**
 * BYD Battery-Box Premium HVS output: the layouts of protocols.md §6.1 (big-endian, voltage limits 2.0 V inwards)
 * and the inverter-driven state machine with a fake clock (hello only on request, 2/10/60 s periods, watchdog).
 */
import { describe, expect, test } from 'vitest';
import {
  BYD_PERIODS_MS,
  BydHvsStateMachine,
  encodeByd1D0,
  encodeByd110,
  encodeByd150,
  encodeByd190,
  encodeByd210,
  encodeBydHello,
} from '../../src/inverter/byd-hvs.js';
import { type CanFrame, formatCanFrame } from '../../src/links/can/can-frame.js';
import { values } from './values.js';

const hv = values({
  chargeVoltage: 403.2,
  dischargeVoltage: 340.2,
  chargeCurrent: 25.5,
  dischargeCurrent: 30,
  soc: 61.25,
  soh: 98,
  voltage: 380.4,
  current: -12.3,
  temperature: 21.5,
  minTemperature: -1.5,
  maxTemperature: 23,
  capacityInstalled: 50,
  capacityRemaining: 30.6,
});

const f = (id: number, hex: string): CanFrame => ({
  id,
  ext: false,
  data: Uint8Array.from(hex.match(/../g)?.map((h) => Number.parseInt(h, 16)) ?? []),
});

describe('BYD HVS layouts (big-endian)', () => {
  test('0x110: CVL − 2.0 V, DVL + 2.0 V, DCL, CCL in 0.1 units', () => {
    // 403.2 − 2.0 = 401.2 V = 0x0FAC; 340.2 + 2.0 = 342.2 V = 0x0D5E; 30.0 A = 0x012C; 25.5 A = 0x00FF
    expect(formatCanFrame(encodeByd110(hv))).toBe('110#0FAC0D5E012C00FF');
  });

  test('0x110: a voltage window that closes after the offset allows no current', () => {
    const narrow = encodeByd110({ ...hv, chargeVoltage: 350, dischargeVoltage: 346.5 });
    expect(formatCanFrame(narrow).slice(-8)).toBe('00000000');
    expect(formatCanFrame(encodeByd110({ ...hv, chargeVoltage: 0 })).slice(-8)).toBe('00000000');
  });

  test('0x150: SoC and SoH in 0.01 %, remaining and full Ah', () => {
    // 61.25 % = 6125 = 0x17ED; 98 % = 9800 = 0x2648; 30.6 Ah → 31 = 0x001F; 50 Ah = 0x0032
    expect(formatCanFrame(encodeByd150(hv))).toBe('150#17ED2648001F0032');
  });

  test('0x1D0: voltage, signed current, temperature, then 03 08', () => {
    // 380.4 V = 3804 = 0x0EDC; −12.3 A = −123 = 0xFF85; 21.5 °C = 215 = 0x00D7
    expect(formatCanFrame(encodeByd1D0(hv))).toBe('1D0#0EDCFF8500D70308');
  });

  test('0x210: highest then lowest temperature, signed', () => {
    // 23.0 °C = 230 = 0x00E6; −1.5 °C = −15 = 0xFFF1
    expect(formatCanFrame(encodeByd210(hv))).toBe('210#00E6FFF100000000');
  });

  test('0x190: the healthy alarm frame', () => {
    expect(formatCanFrame(encodeByd190())).toBe('190#0000030000000000');
  });

  test('the hello: 0x250 with firmware 3.29 and the capacity, 0x290, "BYD" and "Battery-Box Premium HVS"', () => {
    const hello = encodeBydHello(18.4).map(formatCanFrame);
    expect(hello).toEqual([
      '250#0329006600B80209', // 18.4 kWh = 184 = 0x00B8
      '290#063710D900000000',
      '2D0#0042594400000000', // seq 0, "BYD", NUL
      '3D0#0042617474657279', // seq 0, "Battery"
      '3D0#012D426F78205072', // seq 1, "-Box Pr"
      '3D0#02656D69756D2048', // seq 2, "emium H"
      '3D0#0356530000000000', // seq 3, "VS", NUL
    ]);
    const text = encodeBydHello(1)
      .filter((x) => x.id === 0x3d0)
      .map((x) => String.fromCharCode(...x.data.slice(1)))
      .join('')
      .replace(/\0+$/, '');
    expect(text).toBe('Battery-Box Premium HVS');
  });
});

describe('BydHvsStateMachine', () => {
  const sm = (watchdogMs = 60_000) => new BydHvsStateMachine({ watchdogMs, capacityKwh: () => 18.4 });
  const ids = (frames: CanFrame[]) => frames.map((x) => x.id);
  const hello = f(0x151, '0100000000000000');

  test('silent until the inverter is heard; nothing else on the bus starts it', () => {
    const m = sm();
    expect(m.tick(0, hv)).toEqual([]);
    expect(m.receive(f(0x351, '0000000000000000'), 100, hv)).toEqual([]);
    expect(m.tick(5000, hv)).toEqual([]);
    expect(m.state).toBe('waiting');
    expect(m.connected(5000)).toBe(false);
  });

  test('0x151 b0 = 1 → the hello set, then the whole periodic set at once', () => {
    const m = sm();
    const out = m.receive(hello, 1000, hv);
    expect(ids(out)).toEqual([0x250, 0x290, 0x2d0, 0x3d0, 0x3d0, 0x3d0, 0x3d0, 0x110, 0x150, 0x1d0, 0x210, 0x190]);
    expect(m.hellos).toBe(1);
    expect(m.state).toBe('running');
  });

  test('the hello goes out only on request: other inverter frames start the periodic set without it', () => {
    const m = sm();
    const out = m.receive(f(0x091, '0EDC000000D70000'), 0, hv);
    expect(ids(out)).toEqual([0x110, 0x150, 0x1d0, 0x210, 0x190]);
    expect(m.inverter.voltage).toBe(380.4);
    const later: number[] = [];
    for (let t = 100; t <= 30_000; t += 100) {
      if (t % 5000 === 0) m.receive(f(0x0d1, '0264000000000000'), t, hv);
      later.push(...ids(m.tick(t, hv)));
    }
    expect(later).not.toContain(0x250);
    expect(later).not.toContain(0x3d0);
    expect(m.hellos).toBe(0);
    expect(m.inverter.soc).toBe(61.2);
  });

  test('periods: 0x110 every 2 s, 0x150/0x1D0/0x210 every 10 s, 0x190 every 60 s, on a fixed grid', () => {
    const m = sm(120_000);
    const sent = new Map<number, number[]>();
    const note = (t: number, frames: CanFrame[]) => {
      for (const x of frames) sent.set(x.id, [...(sent.get(x.id) ?? []), t]);
    };
    note(0, m.receive(hello, 0, hv));
    for (let t = 100; t <= 120_000; t += 100) {
      // Inverter traffic may itself release what is due: it is sent then, never twice.
      if (t % 20_000 === 0) note(t, m.receive(f(0x111, '6700000000000000'), t, hv));
      note(t, m.tick(t, hv));
    }
    const gaps = (id: number) => {
      const ts = sent.get(id) ?? [];
      return [...new Set(ts.slice(1).map((t, i) => t - (ts[i] as number)))];
    };
    expect(gaps(0x110)).toEqual([BYD_PERIODS_MS.limits]);
    expect(gaps(0x150)).toEqual([BYD_PERIODS_MS.state]);
    expect(gaps(0x1d0)).toEqual([BYD_PERIODS_MS.state]);
    expect(gaps(0x210)).toEqual([BYD_PERIODS_MS.state]);
    expect(gaps(0x190)).toEqual([BYD_PERIODS_MS.alarms]);
    expect(sent.get(0x110)?.length).toBe(61);
  });

  test('a late tick sends what is due once and keeps the grid', () => {
    const m = sm();
    m.receive(hello, 0, hv);
    expect(ids(m.tick(2350, hv))).toEqual([0x110]);
    expect(ids(m.tick(3900, hv))).toEqual([]);
    expect(ids(m.tick(4000, hv))).toEqual([0x110]);
    expect(m.nextDue()).toBe(6000);
  });

  test('watchdog: 60 s without 0x019/0x091/0x0D1/0x111/0x151 stops every frame; traffic resumes them', () => {
    const m = sm(60_000);
    m.receive(hello, 0, hv);
    for (let t = 100; t < 60_000; t += 100) m.tick(t, hv);
    expect(m.connected(59_900)).toBe(true);
    expect(m.tick(60_000, hv)).toEqual([]);
    expect(m.state).toBe('stopped');
    expect(m.connected(60_000)).toBe(false);
    for (let t = 60_100; t < 80_000; t += 100) expect(m.tick(t, hv)).toEqual([]);
    expect(m.nextDue()).toBeUndefined();
    const back = m.receive(f(0x019, '0000000000000000'), 80_000, hv);
    expect(ids(back)).toEqual([0x110, 0x150, 0x1d0, 0x210, 0x190]);
    expect(m.state).toBe('running');
    expect(m.lastSeen).toBe(80_000);
  });

  test('0x151 b0 = 0 carries the inverter brand', () => {
    const m = sm();
    m.receive(f(0x151, `00${Buffer.from('GOODWE').toString('hex')}00`), 0, hv);
    expect(m.inverter.brand).toBe('GOODWE');
  });

  test('extended-id or foreign frames are ignored and do not feed the watchdog', () => {
    const m = sm(1000);
    m.receive(hello, 0, hv);
    m.receive({ id: 0x151, ext: true, data: new Uint8Array(8) }, 900, hv);
    m.receive(f(0x305, '0000000000000000'), 900, hv);
    expect(m.lastSeen).toBe(0);
    expect(m.tick(1000, hv)).toEqual([]);
    expect(m.state).toBe('stopped');
  });
});
