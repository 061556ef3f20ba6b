/**
 * `batterybank replay`: a capture through the same family drivers and decoders, on replay links.
 *
 *   capture file(s) ─► CaptureSession ─► players (one per port / BLE address / CAN interface) ─► replay links
 *        ─► family driver (registries) ─► snapshots printed          (printSnapshots)
 *        ─► composition root: monitor · policy · BatteryService   (--dbus: the live service, startService)
 *
 * Driver timing (poll interval, reply timeout) is divided by `speed`; the drivers' clock is the session's, so
 * health, charge control and snapshot timestamps run in recorded time.
 */
import type { BmsDriver } from '../bms/driver.js';
import { type BankConfig, type BatteryConfig, type Config, parseConfig } from '../config.js';
import type { BatterySnapshot } from '../domain/battery-snapshot.js';
import type { LinkFactories } from '../main.js';
import type { CaptureHeader } from './capture-file.js';
import type { CaptureSession, ReplayFrame } from './capture-reader.js';
import { DriverFactory } from './driver-factory.js';
import { ReplayBleLink, ReplayByteLink, ReplayCanLink, ReplayConsoleLink } from './replay-links.js';
import { emptyStats, type PlayerStats, ReplayClock, RequestPlayer, TimelinePlayer } from './replay-player.js';

/** The channel a battery's frames travel on: batteries on one port or CAN interface share it. */
function channelOf(h: CaptureHeader): string {
  const c = h.config;
  if (h.link.kind === 'ble' && c.ble) return `ble:${c.ble.mac.toLowerCase()}`;
  if (h.link.kind === 'ws' && c.net) return `ws:${c.net.url}`;
  if (h.link.kind === 'can' && c.can) {
    const e = c.can.endpoint;
    return e.kind === 'socketcan' ? `can:${e.iface}` : `can:${e.path}`;
  }
  return `${h.link.kind}:${c.port}`;
}

export interface ReplaySetup {
  clock: ReplayClock;
  /** The batteries replayed, their timing divided by the speed. */
  batteries: BatteryConfig[];
  headers: CaptureHeader[];
  /** The replay links, for the composition root (--dbus) and the driver factory (printing). */
  links: Required<LinkFactories>;
  /** Resolves when every channel has played everything. */
  done(): Promise<void>;
  stats(): PlayerStats;
  stop(): void;
}

export interface ReplayOptions {
  speed: number;
  /** Only this battery (default: all of the capture). */
  battery?: string | undefined;
}

/** Poll interval and reply timeout divided by the speed (at least 20 / 10 ms real, the timeout below the interval). */
export function scaleTiming(cfg: BatteryConfig, speed: number): BatteryConfig {
  const poll = Math.max(20, Math.round(cfg.pollIntervalMs / speed));
  const reply = Math.min(poll - 5, Math.max(10, Math.round(cfg.replyTimeoutMs / speed)));
  return { ...cfg, pollIntervalMs: poll, replyTimeoutMs: reply };
}

/** Throws Error naming what is missing (no batteries, unknown battery, nothing replayable). */
export function setUpReplay(session: CaptureSession, opts: ReplayOptions): ReplaySetup {
  let headers = session.headers;
  if (opts.battery !== undefined) {
    headers = headers.filter((h) => h.battery === opts.battery);
    if (headers.length === 0) {
      throw new Error(
        `no battery "${opts.battery}" in the capture (it has ${session.headers.map((h) => h.battery).join(', ') || 'none'})`,
      );
    }
  }
  const replayable = headers;
  if (replayable.length === 0) throw new Error('the capture has no battery header');
  const clock = new ReplayClock(session.startT, opts.speed);
  const ids = new Set(replayable.map((h) => h.battery));
  const byChannel = new Map<string, CaptureHeader[]>();
  for (const h of replayable) byChannel.set(channelOf(h), [...(byChannel.get(channelOf(h)) ?? []), h]);
  const players = new Map<string, RequestPlayer | TimelinePlayer>();
  for (const [key, group] of byChannel) {
    const members = new Set(group.map((h) => h.battery));
    if (key.startsWith('ws:')) {
      // A console pushes its lines: they arrive at their recorded times, nothing is asked.
      players.set(
        key,
        new TimelinePlayer(
          clock,
          session.frames.filter((f) => members.has(f.battery)),
        ),
      );
    } else if (key.startsWith('can:')) {
      // Every battery on a CAN bus hears every frame: the one that captured the most has the bus's traffic.
      const counts = new Map<string, ReplayFrame[]>();
      for (const f of session.frames)
        if (members.has(f.battery)) counts.set(f.battery, [...(counts.get(f.battery) ?? []), f]);
      const frames = [...counts.values()].sort((a, b) => b.length - a.length)[0] ?? [];
      players.set(key, new TimelinePlayer(clock, frames));
    } else {
      const frames = session.frames.filter((f) => members.has(f.battery));
      const pollMs = Math.max(...group.map((h) => h.config.pollIntervalMs));
      players.set(key, new RequestPlayer(clock, frames, { gapMs: Math.max(3000, 3 * pollMs) }));
    }
  }
  const headerOf = new Map(replayable.map((h) => [h.battery, h]));
  const player = (cfg: BatteryConfig) => {
    const h = headerOf.get(cfg.id);
    const p = h ? players.get(channelOf(h)) : undefined;
    if (!p) throw new Error(`battery ${cfg.id} is not in the capture`);
    return { p, h: h as CaptureHeader };
  };
  /** One replay link per channel, made on first use: batteries on one port or interface share it. */
  const linkPer = <L>(make: (p: RequestPlayer | TimelinePlayer, description: string) => L) => {
    const made = new Map<string, L>();
    return (cfg: BatteryConfig): L => {
      const { p, h } = player(cfg);
      const key = channelOf(h);
      let link = made.get(key);
      if (!link) {
        link = make(p, h.link.description);
        made.set(key, link);
      }
      return link;
    };
  };
  const serialLink = linkPer((p, d) => new ReplayByteLink(p as RequestPlayer, d));
  const canLink = linkPer((p, d) => new ReplayCanLink(p as TimelinePlayer, d));
  const netLink = linkPer((p, d) => new ReplayConsoleLink(p as TimelinePlayer, d));
  const bleLink = new ReplayBleLink();
  for (const h of replayable) {
    if (h.link.kind === 'ble' && h.config.ble)
      bleLink.add(h.config.ble.mac, players.get(channelOf(h)) as RequestPlayer);
  }
  const batteries = replayable.map((h) => scaleTiming(h.config, opts.speed));
  const byPort = (path: string) => {
    const cfg = batteries.find((b) => !b.ble && !b.can && b.port === path);
    if (!cfg) throw new Error(`no battery on ${path} in the capture`);
    return serialLink(cfg);
  };
  const byEndpoint = (e: { kind: string; iface?: string; path?: string }) => {
    const cfg = batteries.find(
      (b) =>
        b.can &&
        b.can.endpoint.kind === e.kind &&
        (b.can.endpoint.kind === 'socketcan' ? b.can.endpoint.iface === e.iface : b.can.endpoint.path === e.path),
    );
    if (!cfg) throw new Error('no battery on this CAN interface in the capture');
    return canLink(cfg);
  };
  const byUrl = (url: string) => {
    const cfg = batteries.find((b) => b.net?.url === url);
    if (!cfg) throw new Error(`no battery at ${url} in the capture`);
    return netLink(cfg);
  };
  const all = [...players.values()];
  return {
    clock,
    batteries: batteries.filter((b) => ids.has(b.id)),
    headers: replayable,
    links: {
      serial: (port) => byPort(port.path),
      can: (endpoint) => byEndpoint(endpoint),
      ble: () => bleLink,
      network: (endpoint) => byUrl(endpoint.url),
    },
    done: async () => {
      await Promise.all(all.map((p) => p.done()));
    },
    stats: () => {
      const sum = emptyStats();
      for (const p of all) for (const k of Object.keys(sum) as (keyof PlayerStats)[]) sum[k] += p.stats[k];
      return sum;
    },
    stop: () => {
      for (const p of all) p.stop();
    },
  };
}

export interface ReplayedSnapshot {
  battery: string;
  snapshot: BatterySnapshot;
}

/**
 * Replay and hand out every snapshot the drivers make (print mode). Resolves when the capture has been played
 * (plus `graceMs` real for the last poll to finish), with the snapshots in order.
 */
export async function replaySnapshots(
  session: CaptureSession,
  opts: ReplayOptions & {
    onSnapshot?: (s: ReplayedSnapshot) => void;
    onEvent?: (battery: string, level: string, message: string) => void;
    graceMs?: number;
    signal?: AbortSignal;
  },
): Promise<{ snapshots: ReplayedSnapshot[]; stats: PlayerStats }> {
  const setup = setUpReplay(session, opts);
  // The same replay links as --dbus gives the composition root.
  const factory = new DriverFactory(setup.links, setup.clock.now);
  const snapshots: ReplayedSnapshot[] = [];
  const drivers: BmsDriver[] = [];
  for (const h of setup.headers) {
    const cfg = setup.batteries.find((b) => b.id === h.battery) as BatteryConfig;
    const driver = factory.create(cfg, h.family);
    driver.onSnapshot((snapshot) => {
      const s = { battery: h.battery, snapshot };
      snapshots.push(s);
      opts.onSnapshot?.(s);
    });
    driver.onEvent((e) => opts.onEvent?.(h.battery, e.level, e.message));
    drivers.push(driver);
  }
  for (const d of drivers) d.start();
  const aborted = new Promise<void>((resolve) => opts.signal?.addEventListener('abort', () => resolve()));
  await Promise.race([setup.done(), aborted]);
  await new Promise((r) => setTimeout(r, opts.graceMs ?? 100));
  setup.stop();
  await Promise.all(drivers.map((d) => d.stop()));
  return { snapshots, stats: setup.stats() };
}

/** A snapshot without its timestamp, for comparing a replay with its recording. */
export function withoutTime(s: BatterySnapshot): Omit<BatterySnapshot, 'timestampMs'> {
  const { timestampMs: _t, ...rest } = s;
  return rest;
}

/**
 * How many replayed snapshots equal the recorded ones, per battery in order (timestamps aside). JSON is the
 * measure: that is what the capture holds.
 */
export function compareSnapshots(
  recorded: readonly { b: string; snap: BatterySnapshot }[],
  replayed: readonly ReplayedSnapshot[],
): { recorded: number; replayed: number; same: number; firstDifference?: string } {
  const key = (s: BatterySnapshot) => JSON.stringify(withoutTime(JSON.parse(JSON.stringify(s)) as BatterySnapshot));
  const rec = new Map<string, string[]>();
  for (const r of recorded) rec.set(r.b, [...(rec.get(r.b) ?? []), key(r.snap)]);
  const rep = new Map<string, string[]>();
  for (const r of replayed) rep.set(r.battery, [...(rep.get(r.battery) ?? []), key(r.snapshot)]);
  let same = 0;
  let firstDifference: string | undefined;
  for (const [b, list] of rec) {
    const other = rep.get(b) ?? [];
    for (let i = 0; i < Math.min(list.length, other.length); i++) {
      if (list[i] === other[i]) same++;
      else
        firstDifference ??= `${b} snapshot ${i + 1}: recorded ${list[i]?.slice(0, 200)} … replayed ${other[i]?.slice(0, 200)}`;
    }
  }
  return {
    recorded: recorded.length,
    replayed: replayed.length,
    same,
    ...(firstDifference ? { firstDifference } : {}),
  };
}

/** The Config the composition root runs for a replay (--dbus): the capture's batteries, nothing else. */
export function replayConfig(setup: ReplaySetup): Config {
  // Every default (telemetry off, no bank) from a minimal config; then the captured batteries as they were.
  const base = parseConfig([{ file: '(replay)', text: '[battery.replay]\nprotocol = jbd\nport = /dev/null\n' }]);
  const productId = setup.headers.find((h) => h.productId !== undefined)?.productId;
  return {
    ...base,
    general: { ...base.general, ...(productId !== undefined ? { productId } : {}), capture: undefined },
    batteries: setup.batteries.map((b) => ({ ...b, capture: undefined })),
    bank: replayedBank(setup),
  };
}

/** The captured bank, when every one of its members is replayed (not with --battery picking one of them). */
export function replayedBank(setup: Pick<ReplaySetup, 'headers' | 'batteries'>): BankConfig | undefined {
  const bank = setup.headers.find((h) => h.bank !== undefined)?.bank;
  if (!bank) return undefined;
  const ids = new Set(setup.batteries.map((b) => b.id));
  return bank.topology.members.every((m) => ids.has(m)) ? bank : undefined;
}
