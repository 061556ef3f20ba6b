/**
 * `batterybank replay FILE… [--speed N] [--battery ID] [--dbus [--bus ADDRESS] [--hold]]`: a capture through the
 * drivers again. Prints one JSON line per snapshot; with --dbus the composition root publishes it as the live
 * service (monitor, charge control, alarms, BatteryService) on the system bus or `--bus`.
 */
import type { Logger } from '../log.js';
import { startService } from '../main.js';
import { type CaptureSession, readCapture } from './capture-reader.js';
import { compareSnapshots, type ReplayedSnapshot, replayConfig, replaySnapshots, setUpReplay } from './replay.js';

export interface ReplayCommandOptions {
  files: readonly string[];
  speed: number;
  battery?: string | undefined;
  dbus: boolean;
  busAddress?: string | undefined;
  /** --dbus: keep the service up after the end until `signal` aborts. */
  hold: boolean;
  version: string;
  logger: Logger;
  /** Snapshot lines. */
  out: (line: string) => void;
  /** Summary and problems. */
  err: (line: string) => void;
  signal?: AbortSignal | undefined;
}

function snapshotLine(s: ReplayedSnapshot): string {
  return JSON.stringify({
    battery: s.battery,
    time: new Date(s.snapshot.timestampMs).toISOString(),
    snapshot: s.snapshot,
  });
}

function describeSession(session: CaptureSession, err: (line: string) => void): void {
  const seconds = Math.round((session.endT - session.startT) / 100) / 10;
  err(
    `capture of ${new Date(session.startT).toISOString()}: ${session.headers
      .map((h) => `${h.battery} (${h.family} on ${h.link.description})`)
      .join(', ')}; ${session.frames.length} frames, ${session.snapshots.length} snapshots over ${seconds} s`,
  );
  if (session.badLines > 0) {
    err(`${session.badLines} unreadable line(s) skipped:`);
    for (const p of session.problems) err(`  ${p}`);
  }
  for (const f of session.skippedFiles) err(`skipped ${f}: not part of session ${session.session}`);
}

/** Exit status: 0 replayed, 1 nothing replayable. */
export async function replayCommand(o: ReplayCommandOptions): Promise<number> {
  const session = await readCapture(o.files);
  describeSession(session, o.err);
  const only = (b: string) => o.battery === undefined || b === o.battery;
  const recorded = session.snapshots.filter((s) => only(s.b));
  const aborted = new Promise<void>((resolve) => o.signal?.addEventListener('abort', () => resolve()));
  let replayed: ReplayedSnapshot[];
  let stats: ReturnType<ReturnType<typeof setUpReplay>['stats']>;
  if (!o.dbus) {
    const r = await replaySnapshots(session, {
      speed: o.speed,
      battery: o.battery,
      onSnapshot: (s) => o.out(snapshotLine(s)),
      onEvent: (b, level, message) => {
        if (level !== 'debug') o.err(`${b}: ${level}: ${message}`);
      },
      ...(o.signal ? { signal: o.signal } : {}),
    });
    replayed = r.snapshots;
    stats = r.stats;
  } else {
    const setup = setUpReplay(session, { speed: o.speed, battery: o.battery });
    let fatal: Error | undefined;
    const config = replayConfig(setup);
    const captured = setup.headers.find((h) => h.bank !== undefined)?.bank;
    if (config.bank) o.err(`bank ${config.bank.id} (${config.bank.topology.label}) is published from its members`);
    else if (captured) o.err(`bank ${captured.id} is not published: not all of its members are replayed`);
    const running = startService({
      config,
      logger: o.logger,
      version: o.version,
      ...(o.busAddress !== undefined ? { busAddress: o.busAddress } : {}),
      now: setup.clock.now,
      links: setup.links,
      onFatal: (reason) => {
        fatal = reason;
        setup.stop();
      },
    });
    replayed = [];
    for (const b of running.batteries) {
      let last: number | undefined;
      b.monitor.onState((state) => {
        const s = state.snapshot;
        if (!s || s.timestampMs === last) return;
        last = s.timestampMs;
        const r = { battery: b.id, snapshot: s };
        replayed.push(r);
        o.out(JSON.stringify({ ...JSON.parse(snapshotLine(r)), health: state.health, limits: state.limits }));
      });
    }
    await Promise.race([setup.done(), aborted]);
    // The last update reaches the bus before anything is torn down.
    await new Promise((r) => setTimeout(r, 300));
    stats = setup.stats();
    if (o.hold && !fatal && !o.signal?.aborted) {
      o.err('replay finished; the service stays on the bus until Ctrl-C');
      await aborted;
    }
    setup.stop();
    await running.stop();
    if (fatal) {
      o.err(`replay: ${fatal.message}`);
      return 1;
    }
  }
  const cmp = o.dbus ? undefined : compareSnapshots(recorded, replayed);
  o.err(
    `replayed ${replayed.length} snapshots at speed ${o.speed}` +
      (cmp ? ` (${cmp.recorded} recorded, ${cmp.same} the same)` : ` (${recorded.length} recorded)`) +
      `; requests matched ${stats.matched}, unanswered ${stats.unmatched + stats.early}, recorded but not asked ${stats.skipped}; ` +
      `${stats.delivered} frames played`,
  );
  if (cmp?.firstDifference) o.err(`first difference: ${cmp.firstDifference}`);
  return 0;
}
