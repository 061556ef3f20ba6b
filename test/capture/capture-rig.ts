/**
 * Capture → replay round trips: the live drivers of a config with the capture tap on, the file read back and
 * replayed through the same family drivers, and the comparison of both snapshot sequences.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import type { BmsDriver } from '../../src/bms/driver.js';
import { CaptureWriter } from '../../src/capture/capture-file.js';
import { type CaptureSession, readCapture } from '../../src/capture/capture-reader.js';
import { attachCapture, linkKindOf } from '../../src/capture/capture-tap.js';
import { DriverFactory } from '../../src/capture/driver-factory.js';
import { compareSnapshots, replaySnapshots, withoutTime } from '../../src/capture/replay.js';
import { type BatteryConfig, parseConfig } from '../../src/config.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import type { LinkFactories } from '../../src/main.js';
import { waitFor } from '../support/pty.js';

/** Every link real (serial ports, USB-CAN-A adapters): the composition root's defaults. */
export const realLinks: LinkFactories = {};

/** Run the live drivers of `text`'s batteries with capture on until each has `n` snapshots; the file's session. */
export async function captureLive(
  dir: string,
  name: string,
  text: string,
  n: number,
  started?: () => void,
  links: LinkFactories = realLinks,
): Promise<{ live: Map<string, BatterySnapshot[]>; session: CaptureSession; file: string }> {
  const cfgs: BatteryConfig[] = parseConfig([{ file: `${name}.ini`, text }]).batteries;
  const file = join(dir, `${name}.jsonl`);
  const writer = new CaptureWriter({ path: file, maxBytes: 50_000_000, files: 1 });
  const factory = new DriverFactory(links);
  const live = new Map<string, BatterySnapshot[]>();
  const drivers: BmsDriver[] = [];
  const events: string[] = [];
  for (const cfg of cfgs) {
    const driver = factory.create(cfg, cfg.protocol);
    attachCapture(writer, driver, {
      battery: cfg.id,
      family: cfg.protocol,
      link: { kind: linkKindOf(cfg), description: cfg.port },
      config: cfg,
      version: 'test',
    });
    const list: BatterySnapshot[] = [];
    live.set(cfg.id, list);
    driver.onSnapshot((s) => list.push(s));
    driver.onEvent((e) => events.push(`${cfg.id} ${e.level}: ${e.message}`));
    drivers.push(driver);
  }
  for (const d of drivers) d.start();
  started?.();
  await waitFor(
    () => [...live.values()].every((l) => l.length >= n),
    20_000,
    `${n} live snapshots of each battery`,
  ).catch((e: unknown) => {
    throw new Error(
      `${(e as Error).message}; got ${[...live].map(([id, l]) => `${id}: ${l.length}`).join(', ')}; events:\n${events.slice(-20).join('\n')}`,
    );
  });
  await Promise.all(drivers.map((d) => d.stop()));
  await writer.close();
  return { live, session: await readCapture([file]), file };
}

/** JSON-normalised snapshots without timestamps (what a capture can hold). */
export const norm = (list: readonly BatterySnapshot[]) =>
  list.map((s) => JSON.parse(JSON.stringify(withoutTime(s))) as Record<string, unknown>);

export async function expectSameOnReplay(live: Map<string, BatterySnapshot[]>, session: CaptureSession, speed: number) {
  expect(session.badLines).toBe(0);
  const t0 = Date.now();
  const { snapshots, stats } = await replaySnapshots(session, { speed });
  const realMs = Date.now() - t0;
  for (const [id, list] of live) {
    const replayed = snapshots.filter((s) => s.battery === id).map((s) => s.snapshot);
    expect(norm(replayed), `battery ${id}`).toEqual(norm(list));
    // Timestamps are the recorded ones, within the event loop's jitter scaled by the speed.
    const drift = replayed.map((s, i) => Math.abs(s.timestampMs - (list[i] as BatterySnapshot).timestampMs));
    expect(Math.max(...drift), `battery ${id} timestamp drift`).toBeLessThan(1500);
  }
  // The capture's own snapshot records agree too.
  const cmp = compareSnapshots(session.snapshots, snapshots);
  expect(cmp.same).toBe(cmp.recorded);
  expect(stats.unmatched).toBe(0);
  return { stats, realMs, recordedMs: session.endT - session.startT };
}
