/**
 * The inverter output: the bank (or one battery) presented to a non-Victron inverter on its own CAN bus, as a
 * Pylon LV battery or a BYD Battery-Box Premium HVS.
 *
 *   source() ─latest BatteryState─► inverterView (freshness, gates, caps) ─► pylon-lv / byd-hvs ─► CanBus.send
 *   CanBus ─inverter frames─► keep-alive / watchdog / BYD hello ─► status (D-Bus /Inverter/*, HTTP /api/inverter)
 *
 * Every frame is built from the source's state read at the moment of sending and re-checked against the clock,
 * so a bank that goes silent is advertised with CCL = DCL = 0 in the very next frame, whether or not anything
 * else noticed. The CanBus reopens a lost link by itself; until then sends just fail and are counted. Nothing
 * here throws out of a timer or a frame callback.
 */

import type { BatteryState } from '../domain/battery-state.js';
import { errorMessage } from '../domain/errors.js';
import type { CanBus } from '../links/can/can-bus.js';
import type { CanFrame } from '../links/can/can-frame.js';
import type { Logger } from '../log.js';
import { BydHvsStateMachine, encodeByd110 } from './byd-hvs.js';
import type { InverterConfig, InverterProtocol } from './inverter-config.js';
import { type InverterValues, inverterView } from './inverter-view.js';
import { encodePylonLv, isPylonInverterFrame, PYLON_LV_PERIOD_MS, pylonInverterBrand } from './pylon-lv.js';

/** The D-Bus paths the source's service gets, and their types (fixed, victron-dbus.md §7). */
export const INVERTER_PATH_TYPES = {
  '/Inverter/Protocol': 's',
  '/Inverter/Connected': 'i',
  '/Inverter/LastSeen': 'i',
} as const satisfies Record<string, 'd' | 'i' | 's'>;

/** What the output advertises now (the subset shown in the status). */
export type AdvertisedValues = Pick<
  InverterValues,
  | 'chargeVoltage'
  | 'dischargeVoltage'
  | 'chargeCurrent'
  | 'dischargeCurrent'
  | 'chargeEnable'
  | 'dischargeEnable'
  | 'soc'
  | 'voltage'
  | 'current'
  | 'chargeBlocked'
  | 'dischargeBlocked'
>;

export interface InverterStatus {
  protocol: InverterProtocol;
  /** The CAN link (`SocketCAN can1`, `USB-CAN-A /dev/ttyUSB1`). */
  link: string;
  /** What is presented: `bank house`, `battery a`. */
  source: string;
  /** The CAN link is open. */
  linkUp: boolean;
  /** The inverter's frames arrived within the watchdog time. */
  connected: boolean;
  /** ms since epoch of the last inverter frame; undefined = never. */
  lastSeenMs: number | undefined;
  inverterBrand: string | undefined;
  /** BYD: `waiting` for the inverter, `running`, `stopped` by the watchdog. Pylon sends always: `running`. */
  phase: 'waiting' | 'running' | 'stopped';
  framesSent: number;
  sendFailures: number;
  /** BYD hello sets sent. */
  hellos: number;
  advertised: AdvertisedValues;
}

export interface InverterOutputOptions {
  config: InverterConfig;
  bus: CanBus;
  /** The latest state of what is presented (the bank's or the battery's); read at every send. */
  source: () => BatteryState | undefined;
  /** Last valid data older than this is stale: limits 0 (the source's own stale threshold). */
  staleLimitMs: number;
  logger: Logger;
  now?: () => number;
  /** BYD: how often due frames are looked for, ms (default 100). */
  tickMs?: number;
  /** Called about once a second and on every change of connection, with the status. */
  onStatus?: (status: InverterStatus) => void;
}

function advertisedOf(v: InverterValues): AdvertisedValues {
  return {
    chargeVoltage: v.chargeVoltage,
    dischargeVoltage: v.dischargeVoltage,
    chargeCurrent: v.chargeCurrent,
    dischargeCurrent: v.dischargeCurrent,
    chargeEnable: v.chargeEnable,
    dischargeEnable: v.dischargeEnable,
    soc: v.soc,
    voltage: v.voltage,
    current: v.current,
    chargeBlocked: v.chargeBlocked,
    dischargeBlocked: v.dischargeBlocked,
  };
}

/** The BYD hello capacity: configured, else installed Ah × nominal voltage (3.2 V per LFP cell, else now). */
function bydCapacityKwh(cfg: InverterConfig, v: InverterValues): number {
  if (cfg.capacityKwh !== undefined) return cfg.capacityKwh;
  const nominal = v.cellsInSeries > 0 ? v.cellsInSeries * 3.2 : v.voltage;
  return (v.capacityInstalled * nominal) / 1000;
}

/** The D-Bus values of the status (LastSeen in whole seconds, invalid before the first inverter frame). */
export function inverterDbusValues(
  status: InverterStatus | undefined,
  nowMs: number,
): Record<keyof typeof INVERTER_PATH_TYPES, string | number | undefined> {
  return {
    '/Inverter/Protocol': status?.protocol,
    '/Inverter/Connected': status === undefined ? undefined : status.connected ? 1 : 0,
    '/Inverter/LastSeen':
      status?.lastSeenMs === undefined ? undefined : Math.max(0, Math.round((nowMs - status.lastSeenMs) / 1000)),
  };
}

/** The status as JSON for the HTTP API (times ISO, unknown null). */
export function inverterStatusJson(s: InverterStatus, nowMs: number): Record<string, unknown> {
  return {
    protocol: s.protocol,
    link: s.link,
    source: s.source,
    linkUp: s.linkUp,
    connected: s.connected,
    lastSeen: s.lastSeenMs === undefined ? null : new Date(s.lastSeenMs).toISOString(),
    lastSeenSeconds: s.lastSeenMs === undefined ? null : Math.max(0, Math.round((nowMs - s.lastSeenMs) / 100) / 10),
    inverterBrand: s.inverterBrand ?? null,
    phase: s.phase,
    framesSent: s.framesSent,
    sendFailures: s.sendFailures,
    hellos: s.hellos,
    advertised: s.advertised,
  };
}

export class InverterOutput {
  private readonly cfg: InverterConfig;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly byd: BydHvsStateMachine | undefined;
  private detach: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private nextAt = 0;
  private running = false;
  private linkUp = false;
  private lastSeenMs: number | undefined;
  private brand: string | undefined;
  private framesSent = 0;
  private sendFailures = 0;
  private last: InverterValues | undefined;
  private wasConnected = false;
  private lastPhase: InverterStatus['phase'] = 'waiting';
  private blockedLogged = '';
  private complained = new Set<string>();

  constructor(private readonly opts: InverterOutputOptions) {
    this.cfg = opts.config;
    this.now = opts.now ?? Date.now;
    this.log = opts.logger;
    if (this.cfg.protocol === 'byd-hvs') {
      this.byd = new BydHvsStateMachine({
        watchdogMs: this.cfg.watchdogMs,
        capacityKwh: (v) => bydCapacityKwh(this.cfg, v),
      });
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.detach = this.opts.bus.attach({
      frame: (f) => this.guard('frame', () => this.onFrame(f)),
      state: (up, reason) =>
        this.guard('state', () => {
          if (up === this.linkUp && up) return;
          this.linkUp = up;
          if (up) this.log.info(`${this.opts.bus.link.description} open: sending as ${this.protocolName()}`);
          else this.log.warn(`${this.opts.bus.link.description}: ${reason ?? 'closed'}; retrying`);
          this.opts.onStatus?.(this.status());
        }),
    });
    if (this.byd) {
      this.scheduleByd();
    } else {
      this.nextAt = this.now();
      this.schedulePylon();
    }
    this.statusTimer = setInterval(
      () =>
        this.guard('status', () => {
          const st = this.refresh();
          this.opts.onStatus?.(st);
        }),
      1000,
    );
    this.statusTimer.unref?.();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.statusTimer !== undefined) clearInterval(this.statusTimer);
    this.timer = undefined;
    this.statusTimer = undefined;
    // A last set with both limits 0, so the inverter stops at once instead of waiting for its own timeout.
    try {
      const now = this.now();
      const v: InverterValues = {
        ...this.values(now),
        chargeCurrent: 0,
        dischargeCurrent: 0,
        chargeEnable: false,
        dischargeEnable: false,
        forceCharge: false,
      };
      const frames = this.byd
        ? this.byd.state === 'running'
          ? [encodeByd110(v)]
          : []
        : encodePylonLv(v, { manufacturer: this.cfg.manufacturer, victronExtensions: this.cfg.victronExtensions });
      if (this.opts.bus.isOpen) await Promise.all(frames.map((f) => this.opts.bus.send(f)));
    } catch (e) {
      this.log.debug(`inverter: the last frames failed: ${errorMessage(e)}`);
    }
    const detach = this.detach;
    this.detach = undefined;
    await detach?.();
  }

  status(): InverterStatus {
    const now = this.now();
    const lastSeen = this.byd ? this.byd.lastSeen : this.lastSeenMs;
    // Never the source here: the status is read from D-Bus and HTTP callbacks, which must not fail with it.
    const values = this.last ?? inverterView(undefined, now, { staleLimitMs: this.opts.staleLimitMs });
    const connected = lastSeen !== undefined && now - lastSeen < this.cfg.watchdogMs;
    // The state machine notices the watchdog on its next tick; the status says it as soon as it is true.
    const phase = this.byd ? (this.byd.state === 'running' && !connected ? 'stopped' : this.byd.state) : 'running';
    return {
      protocol: this.cfg.protocol,
      link: this.opts.bus.link.description,
      source: `${this.cfg.source.kind} ${this.cfg.source.id}`,
      linkUp: this.linkUp,
      connected,
      lastSeenMs: lastSeen,
      inverterBrand: this.byd ? this.byd.inverter.brand : this.brand,
      phase,
      framesSent: this.framesSent,
      sendFailures: this.sendFailures,
      hellos: this.byd?.hellos ?? 0,
      advertised: advertisedOf(values),
    };
  }

  private protocolName(): string {
    return this.cfg.protocol === 'pylon' ? 'Pylon LV battery' : 'BYD Battery-Box Premium HVS';
  }

  private values(now: number): InverterValues {
    return inverterView(this.opts.source(), now, {
      staleLimitMs: this.opts.staleLimitMs,
      maxChargeCurrent: this.cfg.maxChargeCurrent,
      maxDischargeCurrent: this.cfg.maxDischargeCurrent,
    });
  }

  /** Fresh values for a send; logs when the limits become blocked or free again. */
  private current(now: number): InverterValues {
    const v = this.values(now);
    this.last = v;
    const blocked =
      v.chargeBlocked || v.dischargeBlocked
        ? `CCL ${v.chargeBlocked ? `0 (${v.chargeBlocked})` : 'ok'}, DCL ${v.dischargeBlocked ? `0 (${v.dischargeBlocked})` : 'ok'}`
        : '';
    if (blocked !== this.blockedLogged) {
      if (blocked && !v.usable) this.log.warn(`inverter: advertising ${blocked}`);
      else if (blocked) this.log.info(`inverter: advertising ${blocked}`);
      else this.log.info('inverter: advertising the policy limits again');
      this.blockedLogged = blocked;
    }
    return v;
  }

  private send(frames: readonly CanFrame[]): void {
    for (const f of frames) {
      this.opts.bus.send(f).then(
        (ok) => {
          if (ok) this.framesSent++;
          else this.sendFailures++;
        },
        () => {
          this.sendFailures++;
        },
      );
    }
  }

  private schedulePylon(): void {
    if (!this.running) return;
    const now = this.now();
    this.timer = setTimeout(
      () => {
        this.guard('send', () => {
          if (this.opts.bus.isOpen) {
            this.send(
              encodePylonLv(this.current(this.now()), {
                manufacturer: this.cfg.manufacturer,
                victronExtensions: this.cfg.victronExtensions,
              }),
            );
          }
        });
        // On a fixed 1 s grid: a late timer does not shift every later set.
        this.nextAt += PYLON_LV_PERIOD_MS;
        if (this.nextAt <= this.now()) this.nextAt = this.now() + PYLON_LV_PERIOD_MS;
        this.schedulePylon();
      },
      Math.max(0, this.nextAt - now),
    );
  }

  /** Wake at the next due frame, and at least every tickMs for the watchdog. */
  private scheduleByd(): void {
    if (!this.running) return;
    const tick = this.opts.tickMs ?? 100;
    const due = (this.byd as BydHvsStateMachine).nextDue();
    const wait = due === undefined ? tick : Math.min(tick, Math.max(0, due - this.now()));
    this.timer = setTimeout(() => {
      this.guard('tick', () => this.tickByd());
      this.scheduleByd();
    }, wait);
  }

  private tickByd(): void {
    const now = this.now();
    const frames = (this.byd as BydHvsStateMachine).tick(now, this.current(now));
    if (frames.length > 0 && this.opts.bus.isOpen) this.send(frames);
    this.refresh();
  }

  private onFrame(f: CanFrame): void {
    const now = this.now();
    if (this.byd) {
      const out = this.byd.receive(f, now, this.current(now));
      if (out.length > 0 && this.opts.bus.isOpen) this.send(out);
      if (!f.ext && f.id === 0x151 && f.data[0] === 0x01)
        this.log.info('the inverter asked who we are (0x151): hello sent');
    } else if (isPylonInverterFrame(f)) {
      this.lastSeenMs = now;
      this.brand = pylonInverterBrand(f) ?? this.brand;
    }
    this.refresh();
  }

  /** The status; on a change of connection or phase it is logged and reported at once. */
  private refresh(): InverterStatus {
    const s = this.status();
    if (s.connected === this.wasConnected && s.phase === this.lastPhase) return s;
    if (s.connected && !this.wasConnected) {
      this.log.info(`the inverter is talking on ${s.link}${s.inverterBrand ? ` (${s.inverterBrand})` : ''}`);
    } else if (!s.connected && this.wasConnected) {
      const silent = `no inverter frames for ${Math.round(this.cfg.watchdogMs / 1000)} s`;
      this.log.warn(s.phase === 'stopped' ? `${silent}: stopped sending until the inverter talks again` : silent);
    }
    this.wasConnected = s.connected;
    this.lastPhase = s.phase;
    this.opts.onStatus?.(s);
    return s;
  }

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!this.complained.has(what)) {
        this.complained.add(what);
        this.log.error(`inverter ${what} failed (reported once): ${errorMessage(e)}`);
      }
    }
  }
}
