/**
 * Device side of a Daly BMS speaking the classic "A5" protocol, for tests and for `batterybank simulate daly`.
 *
 * Requests are found with the protocol module's framer and answered with its device-side encoders, so the bytes are
 * what a Daly board sends: one 13-byte frame per request, ⌈cells/3⌉ frames for 0x95 (all 16 with `allCellFrames`, as
 * the BLE boards do) and ⌈sensors/7⌉ for 0x96. Host address 0x40 and 0x80 are both served. The pack is the LiFePO4
 * model below (also used by the Pylontech / Seplos simulator): current wanders between charge and discharge, SoC
 * integrates it, cells follow an LFP open-circuit curve plus IR drop and a small spread, temperatures drift.
 *
 * API mirrors JbdSimulator: knobs `silent`, `garbage`, `split`, `latencyMs`; `values()`, `setValues()` (forced values
 * stop drifting until `release()`), `advance()`, `stats`, `attach()` / `detach()`, `respond()`.
 */
import {
  DALY_BMS_ADDRESS,
  DALY_START,
  DalyCommand,
  DalyFramer,
  decodeFrame,
  encodeBalanceState,
  encodeCellExtremes,
  encodeCellVoltageFrames,
  encodeFailureStatus,
  encodeFetStatus,
  encodePackStatus,
  encodeReply,
  encodeStatusInfo,
  encodeTemperatureExtremes,
  encodeTemperatureFrames,
} from '../bms/daly/protocol.js';
import { extremes } from '../domain/battery-snapshot.js';
import { round } from '../domain/round.js';
import { DriftClock, MAX_GAP_S, stepThrough } from './drift.js';
import { lfpOpenCircuitVoltage } from './jbd-simulator.js';
import { createRandom, type Random } from './random.js';
import { SimDevice, type SimTransport } from './sim-device.js';

// ---- the pack model shared by the Daly and Pylontech/Seplos simulators ------------------------------------------------

/** What the pack model produces, at full precision (simulators round to their wire resolution). */
export interface PackModelView {
  /** A, + = charging. */
  current: number;
  /** %. */
  soc: number;
  /** Ah. */
  capacityRemaining: number;
  /** V per cell. */
  cells: number[];
  /** °C per sensor. */
  temperatures: number[];
  cycles: number;
}

/** Options of {@link PackModel}. */
export interface PackModelOptions {
  cells: number;
  sensors: number;
  capacityAh: number;
  rnd: Random;
  /** Largest |current| the load and charger draw, A (default 6). */
  maxCurrentA?: number;
}

/** Cell internal resistance, Ω. */
const CELL_RESISTANCE_OHM = 0.0015;

/**
 * A LiFePO4 pack whose state moves slowly and plausibly. Deterministic for a given Random and sequence of steps.
 * `chargeAllowed` / `dischargeAllowed` model open FETs: the current in that direction goes to zero.
 */
export class PackModel {
  readonly capacityAh: number;
  chargeAllowed = true;
  dischargeAllowed = true;
  /** Hold the current at this value (a test's forced current), or undefined to let it wander. */
  heldCurrent: number | undefined;

  private readonly rnd: Random;
  private readonly maxCurrent: number;
  private soc: number;
  private current: number;
  private target: number;
  private temps: number[];
  private readonly tempBase: number[];
  private readonly cellBias: number[];
  private cellOffsets: number[];
  private dischargedAh = 0;
  private cycles: number;

  constructor(opts: PackModelOptions) {
    this.rnd = opts.rnd;
    this.capacityAh = opts.capacityAh;
    this.maxCurrent = opts.maxCurrentA ?? 6;
    this.soc = this.rnd.range(55, 75);
    this.current = this.rnd.range(-this.maxCurrent / 2, this.maxCurrent / 2);
    this.target = this.current;
    this.tempBase = Array.from({ length: opts.sensors }, () => this.rnd.range(21, 27));
    this.temps = this.tempBase.map((t) => t + this.rnd.range(-1, 1));
    this.cellBias = Array.from({ length: opts.cells }, () => this.rnd.range(-0.005, 0.005));
    this.cellOffsets = [...this.cellBias];
    this.cycles = this.rnd.int(5, 150);
  }

  /** Set the state of charge (a test's starting point), %. */
  setSoc(percent: number): void {
    this.soc = clamp(percent, 0, 100);
  }

  /** Advance by `seconds`, in steps of at most 5 s; gaps beyond an hour are cut to an hour. */
  advance(seconds: number): void {
    stepThrough(Math.min(MAX_GAP_S, seconds), (dt) => this.step(dt));
  }

  view(): PackModelView {
    const ocv = lfpOpenCircuitVoltage(this.soc);
    return {
      current: this.current,
      soc: this.soc,
      capacityRemaining: (this.soc / 100) * this.capacityAh,
      cells: this.cellOffsets.map((o) => ocv + this.current * CELL_RESISTANCE_OHM + o),
      temperatures: [...this.temps],
      cycles: this.cycles,
    };
  }

  private step(dt: number): void {
    const rnd = this.rnd;
    const max = this.maxCurrent;
    if (this.heldCurrent !== undefined) {
      this.current = this.heldCurrent;
    } else {
      // A new load / charge situation every few minutes; turn round before empty or full (SoC stays in 30–92 %).
      if (rnd.next() < dt / 240) this.target = rnd.range(-max, max);
      if (this.soc > 90 && this.target > 0) this.target = -rnd.range(max / 6, max);
      if (this.soc < 32 && this.target < 0) this.target = rnd.range(max / 6, max);
      this.current += (this.target - this.current) * Math.min(1, dt / 20);
      this.current += rnd.gaussian() * 0.05 * Math.sqrt(dt);
      this.current = clamp(this.current, -1.7 * max, 1.7 * max);
    }
    if (!this.chargeAllowed && this.current > 0) this.current = 0;
    if (!this.dischargeAllowed && this.current < 0) this.current = 0;
    const ah = (this.current * dt) / 3600;
    this.soc = clamp(this.soc + (100 * ah) / this.capacityAh, 0, 100);
    if (ah < 0) {
      this.dischargedAh -= ah;
      if (this.dischargedAh >= this.capacityAh) {
        this.dischargedAh -= this.capacityAh;
        this.cycles++;
      }
    }
    this.temps = this.temps.map((t, i) => {
      const base = (this.tempBase[i] ?? 25) + Math.abs(this.current) * 0.15;
      return clamp(t + (base - t) * Math.min(1, dt / 600) + rnd.gaussian() * 0.02 * Math.sqrt(dt), 15, 35);
    });
    this.cellOffsets = this.cellOffsets.map((o, i) => {
      const bias = this.cellBias[i] ?? 0;
      return clamp(o + (bias - o) * Math.min(1, dt / 300) + rnd.gaussian() * 0.0002 * Math.sqrt(dt), -0.012, 0.012);
    });
  }
}

/** Cells above the mean by 4 mV bleed while charging above 50 % SoC (what balancers on these boards do). */
export function balancingFlags(cells: readonly number[], current: number, soc: number): boolean[] {
  const mean = cells.reduce((a, b) => a + b, 0) / Math.max(1, cells.length);
  return cells.map((c) => current > 0.5 && soc > 50 && c > mean + 0.004);
}

// ---- the Daly simulator -----------------------------------------------------------------------------------------------

/** The simulated Daly pack at wire resolution (V 0.1, A 0.1, SOC 0.1 %, cells 1 mV, °C 1, Ah 0.001). */
export interface DalySimValues {
  voltage: number;
  /** A, + = charging. */
  current: number;
  /** %. */
  soc: number;
  capacityRemaining: number;
  cycles: number;
  /** V; the length is the cell count. */
  cells: number[];
  /** °C; the length is the sensor count. */
  temperatures: number[];
  /** One flag per cell. */
  balancing: boolean[];
  chargeFet: boolean;
  dischargeFet: boolean;
  /** 0x98 bit bytes 0–6 (see FAILURE_BITS in the protocol module). */
  failureBits: number[];
  faultCode: number;
}

/** Options of {@link DalySimulator}. */
export interface DalySimulatorOptions {
  /** Cells in series, 1–48 (default 16). */
  cells?: number;
  /** Temperature sensors, 0–16 (default 2). */
  temperatureSensors?: number;
  /** Nominal capacity, Ah (default 100). */
  capacityAh?: number;
  /** Answer 0x95 with all 16 frames, as the BLE boards do, instead of ⌈cells/3⌉. */
  allCellFrames?: boolean;
  /** Seed for a deterministic run. */
  seed?: number;
  /** Clock driving the drift, ms (default Date.now). */
  now?: () => number;
  /** State of charge to start from, % (default: random 55–75). */
  initialSoc?: number;
}

/** Counters, for tests and the CLI. */
export interface DalySimStats {
  /** Valid request frames seen, per data id. */
  requests: Record<number, number>;
  /** Reply frames queued for writing (a 6-frame 0x95 reply counts 6). */
  replies: number;
}

/** A simulated Daly BMS serving the classic protocol on a byte transport. */
export class DalySimulator {
  /** Stop answering (a BMS asleep, a broken RX wire). */
  silent = false;
  /** Write a few random bytes (never 0xA5) before every reply. */
  garbage = false;
  /** Write replies in random 1–6 byte chunks, 1–4 ms apart. */
  split = false;
  /** Delay before each reply, ms. */
  latencyMs = 0;
  allCellFrames: boolean;

  private readonly rnd: Random;
  private readonly model: PackModel;
  private readonly cellCount: number;
  private readonly sensorCount: number;
  private forced: Partial<DalySimValues> = {};
  private readonly clock: DriftClock;
  private heartbeat = 0;
  private readonly device: SimDevice;
  private readonly stats_: DalySimStats = { requests: {}, replies: 0 };

  constructor(opts: DalySimulatorOptions = {}) {
    const cells = opts.cells ?? 16;
    if (!Number.isInteger(cells) || cells < 1 || cells > 48) throw new RangeError(`cells must be 1–48, got ${cells}`);
    const sensors = opts.temperatureSensors ?? 2;
    if (!Number.isInteger(sensors) || sensors < 0 || sensors > 16) {
      throw new RangeError(`temperatureSensors must be 0–16, got ${sensors}`);
    }
    this.cellCount = cells;
    this.sensorCount = sensors;
    this.allCellFrames = opts.allCellFrames ?? false;
    this.rnd = createRandom(opts.seed);
    this.clock = new DriftClock(opts.now ?? Date.now);
    this.model = new PackModel({ cells, sensors, capacityAh: opts.capacityAh ?? 100, rnd: this.rnd });
    this.device = new SimDevice({
      rnd: this.rnd,
      knobs: this,
      framer: new DalyFramer(),
      noise: { avoid: (b) => b === DALY_START, step: 1 },
    });
    if (opts.initialSoc !== undefined) this.model.setSoc(opts.initialSoc);
  }

  /** The values the next replies will carry (after the drift up to now). */
  values(): DalySimValues {
    this.advanceToNow();
    return this.current();
  }

  /** Force values; they stay until release(). Forcing `cells` also sets `voltage` unless that is forced too. */
  setValues(values: Partial<DalySimValues>): void {
    this.advanceToNow();
    if (values.cells !== undefined && values.cells.length !== this.cellCount) {
      throw new RangeError(`this simulator has ${this.cellCount} cells`);
    }
    if (values.temperatures !== undefined && values.temperatures.length !== this.sensorCount) {
      throw new RangeError(`this simulator has ${this.sensorCount} temperature sensors`);
    }
    this.forced = { ...this.forced, ...values };
    this.applyFetsToModel();
    if (values.current !== undefined) this.model.heldCurrent = values.current;
  }

  /** Let forced fields drift again (all of them when no keys are given). */
  release(...keys: (keyof DalySimValues)[]): void {
    const all = keys.length === 0;
    const next: Partial<DalySimValues> = {};
    for (const [k, v] of Object.entries(this.forced) as [keyof DalySimValues, never][]) {
      if (!all && !keys.includes(k)) next[k] = v;
    }
    this.forced = next;
    if (this.forced.current === undefined) this.model.heldCurrent = undefined;
    this.applyFetsToModel();
  }

  /** Advance the simulated pack by `seconds`. */
  advance(seconds: number): void {
    this.model.advance(seconds);
  }

  get stats(): DalySimStats {
    return { requests: { ...this.stats_.requests }, replies: this.stats_.replies };
  }

  /** Serve requests arriving on `transport` (replaces any previous one). */
  attach(transport: SimTransport): void {
    this.device.attach(transport, (frame) => this.receive(frame));
  }

  /** Stop serving: forget the transport and cancel pending delayed writes. */
  detach(): void {
    this.device.detach();
  }

  /**
   * The reply frames to one request frame (empty for a frame that is not a read request or a data id the board does
   * not answer). Exposed so tests can check replies without any transport.
   */
  respond(request: Uint8Array): Uint8Array[] {
    let frame: ReturnType<typeof decodeFrame>;
    try {
      frame = decodeFrame(request);
    } catch {
      return [];
    }
    if (frame.address === DALY_BMS_ADDRESS) return []; // another board's reply, not a request
    this.advanceToNow();
    const v = this.current();
    this.heartbeat = (this.heartbeat + 1) & 0xff;
    const one = (payload: Uint8Array) => [encodeReply(frame.dataId, payload)];
    switch (frame.dataId) {
      case DalyCommand.packStatus:
        return one(encodePackStatus({ voltage: v.voltage, gatherVoltage: 0, current: v.current, soc: v.soc }));
      case DalyCommand.cellExtremes: {
        const e = extremes(v.cells);
        if (e === undefined) return [];
        return one(
          encodeCellExtremes({
            maxCellVoltage: e.max,
            maxCellNumber: e.maxIndex,
            minCellVoltage: e.min,
            minCellNumber: e.minIndex,
          }),
        );
      }
      case DalyCommand.temperatureExtremes: {
        const e = extremes(v.temperatures);
        if (e === undefined) return [];
        return one(
          encodeTemperatureExtremes({
            maxTemperature: e.max,
            maxSensor: e.maxIndex,
            minTemperature: e.min,
            minSensor: e.minIndex,
          }),
        );
      }
      case DalyCommand.fetStatus:
        return one(
          encodeFetStatus({
            state: v.current > 0.05 ? 'charging' : v.current < -0.05 ? 'discharging' : 'idle',
            chargeFet: v.chargeFet,
            dischargeFet: v.dischargeFet,
            heartbeat: this.heartbeat,
            capacityRemaining: v.capacityRemaining,
          }),
        );
      case DalyCommand.statusInfo:
        return one(
          encodeStatusInfo({
            cellCount: v.cells.length,
            temperatureSensorCount: v.temperatures.length,
            chargerPresent: v.current > 0.05,
            loadPresent: v.current < -0.05,
            dio: 0,
            cycles: v.cycles,
          }),
        );
      case DalyCommand.cellVoltages: {
        const count = this.allCellFrames ? 16 : undefined;
        return encodeCellVoltageFrames(v.cells, count).map((p) => encodeReply(DalyCommand.cellVoltages, p));
      }
      case DalyCommand.temperatures:
        return encodeTemperatureFrames(v.temperatures).map((p) => encodeReply(DalyCommand.temperatures, p));
      case DalyCommand.balanceState:
        return one(encodeBalanceState(v.balancing));
      case DalyCommand.failureStatus:
        return one(encodeFailureStatus(v.failureBits, v.faultCode));
      default:
        return [];
    }
  }

  private receive(frame: Uint8Array): void {
    const id = frame[2] as number;
    if (frame[1] === DALY_BMS_ADDRESS) return;
    this.stats_.requests[id] = (this.stats_.requests[id] ?? 0) + 1;
    if (this.silent) return;
    const replies = this.respond(frame);
    if (replies.length === 0) return;
    const block = new Uint8Array(replies.reduce((n, r) => n + r.length, 0));
    let at = 0;
    for (const r of replies) {
      block.set(r, at);
      at += r.length;
    }
    this.stats_.replies += replies.length;
    // The knobs as they are when the request arrives.
    this.device.write(block, { garbage: this.garbage, split: this.split, latencyMs: this.latencyMs });
  }

  private advanceToNow(): void {
    const gapS = this.clock.elapsedS();
    if (gapS > 0) this.model.advance(gapS);
  }

  /** The model at wire resolution, with forced values on top and derived values following them. */
  private current(): DalySimValues {
    const m = this.model.view();
    const f = this.forced;
    const cells = f.cells ?? m.cells.map((c) => round(c, 3));
    const current = f.current ?? round(m.current, 1);
    const soc = f.soc ?? round(m.soc, 1);
    return {
      voltage:
        f.voltage ??
        round(
          cells.reduce((a, b) => a + b, 0),
          1,
        ),
      current,
      soc,
      capacityRemaining: f.capacityRemaining ?? round(m.capacityRemaining, 3),
      cycles: f.cycles ?? m.cycles,
      cells,
      temperatures: f.temperatures ?? m.temperatures.map((t) => Math.round(t)),
      balancing: f.balancing ?? balancingFlags(cells, current, soc),
      chargeFet: f.chargeFet ?? true,
      dischargeFet: f.dischargeFet ?? true,
      failureBits: f.failureBits ?? [0, 0, 0, 0, 0, 0, 0],
      faultCode: f.faultCode ?? 0,
    };
  }

  private applyFetsToModel(): void {
    this.model.chargeAllowed = this.forced.chargeFet ?? true;
    this.model.dischargeAllowed = this.forced.dischargeFet ?? true;
  }
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}
