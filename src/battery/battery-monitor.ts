/**
 * One battery's live state: driver snapshots in, BatteryState out.
 *
 *   driver ──snapshot──► ingest() ─┐
 *   1 s tick ──────────► tick() ───┴─► health · policy · alarms ──► onState listeners (publishers)
 *
 * Pure pieces (healthOf, chargePolicy, computeAlarms) do the work; this class only keeps the last snapshot
 * and the clock. A snapshot is passed on at once (reply → D-Bus latency), the tick only moves health.
 */
import type { ChargeConfig } from '../config.js';
import { type BatterySnapshot, deriveSnapshot } from '../domain/battery-snapshot.js';
import type { BatteryState, Health } from '../domain/battery-state.js';
import { type HealthTiming, healthOf, staleThresholdMs } from '../domain/health.js';
import { computeAlarms } from '../policy/alarms.js';
import {
  type ChargeState,
  chargeControl,
  freshChargeState,
  parseChargeState,
  serializeChargeState,
} from '../policy/charge-control.js';
import type { ChargeControlConfig } from '../policy/charge-control-config.js';
import {
  estimateSoc,
  freshSocEstimatorState,
  parseSocEstimatorState,
  type SocEstimatorState,
  serializeSocEstimatorState,
  socEstimatorConfig,
} from '../policy/soc-estimator.js';

export interface BatteryMonitorOptions {
  id: string;
  connection: string;
  productName: string;
  timing: HealthTiming;
  /** Alarm thresholds. */
  charge: ChargeConfig;
  /** Charge-control settings. */
  control: ChargeControlConfig;
  now: () => number;
  /** Saved policy state (serializeChargeState / serializeSocEstimatorState text) from the last run. */
  saved?: { charge?: string | undefined; soc?: string | undefined };
  /** Receives the policy state to keep for the next start (at once on a mode change, else at most every minute). */
  persist?: (saved: { charge: string; soc: string }) => void;
  /** How often health is re-evaluated without new data (default 1000 ms). */
  tickMs?: number;
}

export class BatteryMonitor {
  private snapshot: BatterySnapshot | undefined;
  private lastValidMs: number | undefined;
  private cellCount: number | undefined;
  private current: BatteryState;
  private readonly stateListeners: ((s: BatteryState) => void)[] = [];
  private readonly healthListeners: ((h: Health, prev: Health) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chargeState: ChargeState;
  private socState: SocEstimatorState;
  private lastPersistMs = Number.NEGATIVE_INFINITY;
  /** When the state was last evaluated (the timer skips a tick right after one). */
  private lastUpdateMs = Number.NEGATIVE_INFINITY;
  private lastPersistKey = '';

  constructor(private readonly opts: BatteryMonitorOptions) {
    this.opts = { ...opts };
    this.chargeState = opts.saved?.charge ? parseChargeState(opts.saved.charge) : freshChargeState();
    this.socState = opts.saved?.soc ? parseSocEstimatorState(opts.saved.soc) : freshSocEstimatorState();
    this.current = this.compute();
  }

  get state(): BatteryState {
    return this.current;
  }

  /** The link or product became known later (protocol = auto): shown from the next update on. */
  setIdentity(connection: string, productName: string): void {
    this.opts.connection = connection;
    this.opts.productName = productName;
    this.update();
  }

  /** A fresh snapshot from the driver. */
  ingest(raw: BatterySnapshot): void {
    let s = deriveSnapshot(raw);
    // A single missed 0x04 reply must not zero the limits: carry the cells of a recent snapshot forward.
    const prev = this.snapshot;
    if (
      s.cellVoltages === undefined &&
      prev?.cellVoltages !== undefined &&
      s.timestampMs - prev.timestampMs <= staleThresholdMs(this.opts.timing)
    ) {
      s = { ...s, cellVoltages: prev.cellVoltages, balancing: s.balancing ?? prev.balancing };
    }
    this.snapshot = s;
    this.lastValidMs = s.timestampMs;
    if (s.cellVoltages?.length) this.cellCount = s.cellVoltages.length;
    else if (s.cellCount) this.cellCount ??= s.cellCount;
    this.update();
  }

  /** Re-evaluate health (called by the timer; public for tests with a fake clock). */
  tick(): void {
    this.update();
  }

  start(): void {
    if (this.timer) return;
    const tickMs = this.opts.tickMs ?? 1000;
    // The timer exists for time alone (health turning stale/offline, timers of the policy): right after a
    // snapshot was evaluated it would only repeat that evaluation (and the bank's, and the D-Bus diff), so it
    // re-evaluates only when nothing did for almost a whole period. Health changes are seen no later: once the
    // data stops, every tick runs.
    this.timer = setInterval(() => {
      if (this.opts.now() - this.lastUpdateMs >= tickMs * 0.9) this.tick();
    }, tickMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  onState(listener: (s: BatteryState) => void): void {
    this.stateListeners.push(listener);
  }

  onHealthChange(listener: (h: Health, prev: Health) => void): void {
    this.healthListeners.push(listener);
  }

  /** One evaluation: health, then charge control (stateful, pure), then the optional SoC estimate, then alarms. */
  private compute(): BatteryState {
    const now = this.opts.now();
    const health = healthOf(this.lastValidMs, now, this.opts.timing);
    const control = this.opts.control;
    let snapshot = this.snapshot;
    let socBms: number | undefined;
    // With soc_calculation the policy sees the driver's SoC (the last estimate), the BMS's stays on /SocBms.
    if (control.socCalculation && snapshot && health !== 'offline') {
      socBms = snapshot.soc;
      const estimated = this.socState.soc ?? snapshot.soc;
      if (estimated !== undefined) snapshot = { ...snapshot, soc: Math.round(estimated * 10) / 10 };
    }
    const r = chargeControl({ snapshot, health, cellCount: this.cellCount }, this.chargeState, control, now);
    this.chargeState = r.state;
    if (control.socCalculation) {
      const est = estimateSoc(
        { snapshot: this.snapshot, health, enteredFloat: r.events.enteredFloat },
        this.socState,
        socEstimatorConfig(control, this.opts.timing.staleAfterMs),
        now,
      );
      this.socState = est.state;
    }
    this.maybePersist(now);
    return {
      id: this.opts.id,
      health,
      snapshot,
      limits: r.limits,
      alarms: computeAlarms(snapshot, health, this.opts.charge),
      connection: this.opts.connection,
      productName: this.opts.productName,
      lastValidMs: this.lastValidMs,
      ...(socBms !== undefined ? { socBms } : {}),
    };
  }

  /** The absorption timer moves every second: save at once only when the mode changes, else once a minute. */
  private maybePersist(now: number): void {
    const persist = this.opts.persist;
    if (!persist) return;
    const key = `${this.chargeState.mode}/${this.chargeState.socResetDue}/${this.chargeState.transitionVoltage !== null}`;
    if (key === this.lastPersistKey && now - this.lastPersistMs < 60_000) return;
    this.lastPersistKey = key;
    this.lastPersistMs = now;
    persist({ charge: serializeChargeState(this.chargeState), soc: serializeSocEstimatorState(this.socState) });
  }

  private update(): void {
    const prev = this.current.health;
    this.lastUpdateMs = this.opts.now();
    this.current = this.compute();
    if (this.current.health !== prev) for (const l of this.healthListeners) safe(() => l(this.current.health, prev));
    for (const l of this.stateListeners) safe(() => l(this.current));
  }
}

/** A failing listener (one sink) must never stop the others or the poll loop. */
function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // Listeners log their own failures; nothing may escape into the data path.
  }
}
