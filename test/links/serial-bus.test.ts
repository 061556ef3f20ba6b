/**
 * SerialBus on its own: the scheduling (fair order, fixed grids, no overlap, gaps), the silence watchdog and the
 * back-off, over an in-memory line whose device answers each unit by name (or not); and the unplug / re-plug of a
 * real pty with the JBD simulator on the other end.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, encodeReadRequest, JbdFramer, JbdRegister } from '../../src/bms/jbd/protocol.js';
import { LinkError } from '../../src/domain/errors.js';
import type { Link } from '../../src/links/link.js';
import type { Framer } from '../../src/links/request.js';
import {
  type BusChannel,
  type BusEvent,
  type BusUnit,
  type PollOutcome,
  SerialBus,
} from '../../src/links/serial-bus.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { JbdSimulator } from '../../src/sim/jbd-simulator.js';
import { runSimulatorOnPty } from '../../src/sim/pty.js';
import { closeAllPairs, removeDir, sleep, tempLinkDir, waitFor } from '../support/pty.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (s: string) => new TextEncoder().encode(s);

/** Frames are lines. */
class LineFramer implements Framer {
  private buffer = '';
  push(chunk: Uint8Array): Uint8Array[] {
    this.buffer += text(chunk);
    const parts = this.buffer.split('\n');
    this.buffer = parts.pop() ?? '';
    return parts.map(bytes);
  }
  reset(): void {
    this.buffer = '';
  }
}

/** The device on the line: answers the line `name` with `name` after `replyAfterMs`, unless `silent` has it. */
class MemoryLink implements Link<Uint8Array> {
  readonly description = 'Memory line';
  isOpen = false;
  /** The adapter is plugged in (open() succeeds). */
  present = true;
  opens = 0;
  /** The next send fails with a LinkError, without a close event. */
  failNextSend = false;
  readonly silent = new Set<string>();
  readonly replyAfterMs = new Map<string, number>();
  /** [name, time] of each request the device received, and of each reply it sent. */
  readonly requests: [string, number][] = [];
  readonly replies: [string, number][] = [];
  private readonly dataListeners: ((m: Uint8Array) => void)[] = [];
  private readonly closeListeners: ((e: Error) => void)[] = [];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  async open(): Promise<void> {
    if (!this.present) throw new LinkError('cannot open memory line: ENOENT');
    if (!this.isOpen) this.opens++;
    this.isOpen = true;
  }

  async send(message: Uint8Array): Promise<void> {
    if (!this.isOpen) throw new LinkError('memory line is not open');
    if (this.failNextSend) {
      this.failNextSend = false;
      throw new LinkError('write failed: EIO');
    }
    const name = text(message).trim();
    this.requests.push([name, performance.now()]);
    if (this.silent.has(name)) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.isOpen) return;
      this.replies.push([name, performance.now()]);
      for (const l of this.dataListeners) l(bytes(`${name}\n`));
    }, this.replyAfterMs.get(name) ?? 2);
    this.timers.add(timer);
  }

  async close(): Promise<void> {
    this.isOpen = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** The adapter vanishes and says so. */
  unplug(): void {
    this.present = false;
    if (!this.isOpen) return;
    void this.close();
    for (const l of this.closeListeners) l(new LinkError('device disconnected'));
  }

  onData(listener: (message: Uint8Array) => void): void {
    this.dataListeners.push(listener);
  }

  onClose(listener: (reason: Error) => void): void {
    this.closeListeners.push(listener);
  }
}

interface Poll {
  unit: string;
  start: number;
  end: number;
  outcome: PollOutcome | 'link-error';
}

/** Polls of every unit, in start order, and how many ran at once at most. */
class Recorder {
  readonly polls: Poll[] = [];
  active = 0;
  maxActive = 0;
  of(name: string): Poll[] {
    return this.polls.filter((p) => p.unit === name);
  }
}

/** A unit that asks for its own name `requests` times per poll. */
class TestUnit implements BusUnit {
  readonly events: BusEvent[] = [];
  connects = 0;
  constructor(
    readonly name: string,
    readonly pollIntervalMs: number,
    private readonly rec: Recorder,
    private readonly timeoutMs = 50,
    private readonly requests = 1,
  ) {}

  async poll(channel: BusChannel): Promise<PollOutcome> {
    const poll: Poll = { unit: this.name, start: performance.now(), end: 0, outcome: 'silent' };
    this.rec.polls.push(poll);
    this.rec.active++;
    this.rec.maxActive = Math.max(this.rec.maxActive, this.rec.active);
    try {
      for (let i = 0; i < this.requests; i++) {
        await channel.request(bytes(`${this.name}\n`), {
          timeoutMs: this.timeoutMs,
          isReply: (f) => text(f) === this.name,
        });
      }
      poll.outcome = 'answered';
    } catch (e) {
      if (e instanceof LinkError) {
        poll.outcome = 'link-error';
        throw e;
      }
      poll.outcome = 'silent';
    } finally {
      this.rec.active--;
      poll.end = performance.now();
    }
    return poll.outcome === 'answered' ? 'answered' : 'silent';
  }

  connected(): void {
    this.connects++;
  }

  busEvent(event: BusEvent): void {
    this.events.push(event);
  }
}

const messages = (events: BusEvent[]) => events.map((e) => e.message).join('\n');

const buses: SerialBus[] = [];
const attached: [SerialBus, BusUnit][] = [];
afterEach(async () => {
  for (const [bus, unit] of attached.splice(0)) await bus.detach(unit);
  buses.length = 0;
  await closeAllPairs();
});

function rig(opts: Partial<ConstructorParameters<typeof SerialBus>[0]> = {}) {
  const link = new MemoryLink();
  const rec = new Recorder();
  const bus = new SerialBus({ link, framer: new LineFramer(), reconnectMinMs: 20, reconnectMaxMs: 80, ...opts });
  buses.push(bus);
  const unit = (name: string, intervalMs: number, timeoutMs = 50, requests = 1) => {
    const u = new TestUnit(name, intervalMs, rec, timeoutMs, requests);
    bus.attach(u);
    attached.push([bus, u]);
    return u;
  };
  return { link, rec, bus, unit };
}

describe('SerialBus scheduling', () => {
  it('polls every unit once per interval in attach order, each on a fixed grid that does not drift', async () => {
    const r = rig();
    for (const name of ['A', 'B', 'C']) r.link.replyAfterMs.set(name, 4);
    r.unit('A', 250);
    r.unit('B', 250);
    r.unit('C', 250);
    await waitFor(() => r.rec.of('C').length >= 6, 8000, 'six cycles');
    const order = r.rec.polls.slice(0, 18).map((p) => p.unit);
    expect(order.join('')).toBe('ABC'.repeat(6));
    // Each cycle costs ~15 ms of polling; a scheduler that waits an interval after each cycle would be 75 ms late
    // by the sixth cycle. On the grid, the sixth poll of A starts 1250 ms after the first. (250 ms slots, so a
    // loaded CI machine does not make a slot overrun and get skipped, which is the designed behaviour.)
    const a = r.rec.of('A').map((p) => p.start);
    const first = a[0] as number;
    a.slice(0, 6).forEach((t, k) => {
      expect(Math.abs(t - first - k * 250)).toBeLessThan(70);
    });
    expect(r.rec.maxActive).toBe(1);
    expect(r.link.opens).toBe(1);
  });

  it('a silent unit delays the others by its own reply timeout only, and never reopens the line', async () => {
    const r = rig();
    r.link.silent.add('S');
    const a = r.unit('A', 300);
    r.unit('S', 300, 100);
    r.unit('B', 300);
    await waitFor(() => r.rec.of('B').length >= 5, 8000, 'five polls of B');
    const as = r.rec.of('A');
    const bs = r.rec.of('B');
    for (let k = 0; k < 5; k++) {
      const wait = (bs[k] as Poll).start - (as[k] as Poll).start;
      // A's own poll (~2 ms) and S's timeout (100 ms), nothing more.
      expect(wait).toBeGreaterThanOrEqual(95);
      expect(wait).toBeLessThan(180);
    }
    for (let k = 1; k < 5; k++) expect((as[k] as Poll).start - (as[k - 1] as Poll).start).toBeGreaterThan(240);
    expect(r.rec.of('S').every((p) => p.outcome === 'silent')).toBe(true);
    expect(r.bus.stats.timeouts).toBe(r.rec.of('S').length);
    expect(r.link.opens).toBe(1);
    expect(messages(a.events)).not.toMatch(/reopening/);
  });

  it('polls never overlap, and a poll that overruns its interval skips the missed slots instead of bunching up', async () => {
    const r = rig();
    r.link.replyAfterMs.set('SLOW', 120);
    r.unit('SLOW', 50, 200);
    r.unit('FAST', 50);
    await sleep(1000);
    expect(r.rec.maxActive).toBe(1);
    const slow = r.rec.of('SLOW').map((p) => p.start);
    // ~120 ms per slow poll on a 50 ms grid: a poll every third slot, about 7 in a second, never back to back.
    expect(slow.length).toBeGreaterThanOrEqual(4);
    expect(slow.length).toBeLessThanOrEqual(9);
    for (let k = 1; k < slow.length; k++) expect((slow[k] as number) - (slow[k - 1] as number)).toBeGreaterThan(100);
    // FAST gets its turn between every two SLOW polls.
    const order = r.rec.polls.map((p) => p.unit).join(',');
    expect(order).not.toMatch(/SLOW,SLOW/);
  });

  it('units with different poll intervals are each polled at their own rate', async () => {
    const r = rig();
    r.unit('QUICK', 40);
    r.unit('CALM', 200);
    await sleep(1000);
    const quick = r.rec.of('QUICK').length;
    const calm = r.rec.of('CALM').length;
    expect(calm).toBeGreaterThanOrEqual(4);
    expect(calm).toBeLessThanOrEqual(6);
    expect(quick / calm).toBeGreaterThan(3.5);
    expect(quick / calm).toBeLessThan(6.5);
  });

  it('keeps the gap between the end of one transaction and the start of the next', async () => {
    const r = rig({ gapMs: 30 });
    r.unit('A', 100, 50, 2);
    r.unit('B', 100, 50, 2);
    await waitFor(() => r.link.requests.length >= 12, 5000, 'twelve requests');
    for (let i = 1; i < 12; i++) {
      const [, sent] = r.link.requests[i] as [string, number];
      const [, answered] = r.link.replies[i - 1] as [string, number];
      expect(sent - answered).toBeGreaterThanOrEqual(28);
    }
  });

  it('polls a unit attached while the bus sleeps at once, and finishes a detached unit at once', async () => {
    const r = rig();
    r.link.replyAfterMs.set('C', 300);
    const a = r.unit('A', 1000);
    await waitFor(() => r.rec.of('A').length >= 1 && r.rec.active === 0, 2000, 'the first poll of A');
    const attachedAt = performance.now();
    r.unit('B', 1000);
    await waitFor(() => r.rec.of('B').length >= 1, 2000, 'the first poll of B');
    expect((r.rec.of('B')[0] as Poll).start - attachedAt).toBeLessThan(50);
    const c = r.unit('C', 1000, 500);
    await waitFor(() => r.rec.of('C').length >= 1, 2000, 'C polling');
    const detachAt = performance.now();
    await r.bus.detach(c);
    expect(performance.now() - detachAt).toBeLessThan(100);
    expect(r.rec.of('C')[0]?.outcome).toBe('link-error');
    // Detaching one unit is not a line failure.
    expect(messages(a.events)).not.toMatch(/reopening|send failed/);
    expect(r.bus.userCount).toBe(2);
    expect(r.link.isOpen).toBe(true);
  });

  it('the last detach closes the link, stops polling and leaves no timer behind', async () => {
    const baseline = process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    const r = rig({ gapMs: 20 });
    const a = r.unit('A', 60);
    const b = r.unit('B', 60);
    await waitFor(() => r.rec.of('B').length >= 3, 3000, 'polls');
    await r.bus.detach(a);
    await r.bus.detach(b);
    await r.bus.detach(b); // idempotent
    expect(r.bus.userCount).toBe(0);
    expect(r.link.isOpen).toBe(false);
    expect(r.bus.isOpen).toBe(false);
    const polls = r.rec.polls.length;
    expect(process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length).toBeLessThanOrEqual(baseline);
    await sleep(200);
    expect(r.rec.polls.length).toBe(polls);
    // And it starts again.
    r.bus.attach(a);
    await waitFor(() => r.rec.polls.length > polls, 2000, 'polling after a new attach');
    expect(r.link.opens).toBe(2);
  });
});

describe('SerialBus line handling', () => {
  it('reopens the line when no unit answered for maxSilentCycles polls each, and polls again when they answer', async () => {
    const r = rig({ reconnectMinMs: 200, reconnectMaxMs: 400 });
    r.link.silent.add('A');
    r.link.silent.add('B');
    const a = r.unit('A', 60, 20);
    const b = r.unit('B', 60, 20);
    await waitFor(() => /reopening/.test(messages(a.events)), 3000, 'the watchdog');
    expect(messages(a.events)).toContain(
      'no reply from any device in 3 consecutive cycles, 6 requests in a row: reopening Memory line in 200 ms',
    );
    expect(r.rec.of('A')).toHaveLength(3);
    expect(r.rec.of('B')).toHaveLength(3);
    expect(messages(b.events)).toContain('reopening');
    await waitFor(() => r.link.opens >= 2 && a.connects >= 2, 2000, 'the reopen');
    r.link.silent.clear();
    await waitFor(() => r.rec.of('B').at(-1)?.outcome === 'answered', 2000, 'answers again');
  });

  it('retries a failing open with back-off doubling to the maximum, reports it once at warn, and resets after success', async () => {
    const r = rig();
    r.link.present = false;
    const a = r.unit('A', 50);
    await waitFor(() => a.events.filter((e) => e.message.startsWith('cannot open')).length >= 5, 3000, 'failed opens');
    const opens = a.events.filter((e) => e.message.startsWith('cannot open'));
    expect(opens.map((e) => /retrying in (\d+) ms/.exec(e.message)?.[1])).toEqual(['20', '40', '80', '80', '80']);
    expect(opens.map((e) => e.level)).toEqual(['warn', 'debug', 'debug', 'debug', 'debug']);
    r.link.present = true;
    await waitFor(() => r.rec.of('A').some((p) => p.outcome === 'answered'), 2000, 'a poll');
    expect(a.events.find((e) => e.message === 'Memory line open')?.level).toBe('info');
    // After a good poll the next trouble is news again, and the back-off starts over.
    a.events.length = 0;
    r.link.unplug();
    await waitFor(() => a.events.some((e) => e.message.startsWith('cannot open')), 2000, 'a failed reopen');
    expect(a.events[0]).toEqual({
      level: 'warn',
      message: 'Memory line lost: device disconnected; reopening in 20 ms',
    });
    expect(a.events.find((e) => e.message.startsWith('cannot open'))?.level).toBe('warn');
    r.link.present = true;
    const before = r.rec.polls.length;
    await waitFor(() => r.rec.polls.slice(before).some((p) => p.outcome === 'answered'), 2000, 'polls after re-plug');
  });

  it('takes a write that fails without a close event for a lost line and reopens it', async () => {
    const r = rig();
    const a = r.unit('A', 50);
    await waitFor(() => r.rec.of('A').some((p) => p.outcome === 'answered'), 2000, 'a poll');
    r.link.failNextSend = true;
    await waitFor(() => /send failed/.test(messages(a.events)), 2000, 'the failed write');
    expect(messages(a.events)).toMatch(/send failed: write failed: EIO: reopening Memory line in 20 ms/);
    await waitFor(() => r.link.opens >= 2, 2000, 'the reopen');
    const before = r.rec.polls.length;
    await waitFor(() => r.rec.polls.slice(before).some((p) => p.outcome === 'answered'), 2000, 'polls again');
  });
});

describe('SerialBus on a real pty', () => {
  const dir = tempLinkDir();
  afterAll(() => removeDir(dir));

  /** Reads JBD basic info; answered when the simulator replies. */
  class JbdUnit implements BusUnit {
    readonly events: BusEvent[] = [];
    answered = 0;
    readonly pollIntervalMs = 150;
    async poll(channel: BusChannel): Promise<PollOutcome> {
      try {
        const frame = await channel.request(encodeReadRequest(JbdRegister.basicInfo), {
          timeoutMs: 100,
          isReply: (f) => f[1] === JbdRegister.basicInfo,
        });
        decodeFrame(frame);
        this.answered++;
        return 'answered';
      } catch (e) {
        if (e instanceof LinkError) throw e;
        return 'silent';
      }
    }
    connected(): void {}
    busEvent(event: BusEvent): void {
      this.events.push(event);
    }
  }

  it('reopens the port after the adapter is unplugged and resumes after the re-plug, twice', async () => {
    const path = join(dir, 'bus-0');
    const running = await runSimulatorOnPty({ simulator: new JbdSimulator({ seed: 2 }), link: path });
    const link = new SerialLink({ path });
    const bus = new SerialBus({ link, framer: new JbdFramer(), reconnectMinMs: 100, reconnectMaxMs: 400 });
    const unit = new JbdUnit();
    bus.attach(unit);
    attached.push([bus, unit]);
    try {
      for (let round = 0; round < 2; round++) {
        await waitFor(() => unit.answered >= 2, 5000, 'replies before the unplug');
        await running.unplug();
        await waitFor(() => /lost|cannot open|consecutive cycles/.test(messages(unit.events)), 5000, 'the loss');
        await waitFor(() => messages(unit.events).includes('cannot open'), 5000, 'a failed reopen');
        const before = unit.answered;
        await sleep(300);
        expect(unit.answered).toBe(before);
        expect(link.isOpen).toBe(false);
        await running.replug();
        await waitFor(() => unit.answered >= before + 2, 5000, 'replies after the re-plug');
        expect(bus.isOpen).toBe(true);
        unit.answered = 0;
        unit.events.length = 0;
      }
    } finally {
      await bus.detach(unit);
      await running.close();
    }
    expect(link.isOpen).toBe(false);
  });
});
