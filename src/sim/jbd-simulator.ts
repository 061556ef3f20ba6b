/**
 * Device side of a JBD smart BMS, for tests and for `batterybank simulate jbd`.
 *
 * It parses requests with the protocol module's device-side helpers and answers with its encoders, so the
 * bytes are what a JBD board sends: 0x03 basic info, 0x04 cell voltages, 0x05 model, acks to writes (0xE1
 * switches the FETs like the real board). The pack is a LiFePO4 battery whose state moves slowly: current
 * wanders between charge and discharge, SoC integrates it (and turns round before empty or full), cells
 * follow an LFP open-circuit curve plus IR drop and a small per-cell spread, temperatures drift around
 * 20–30 °C, and cells above the mean show balancing while charging.
 *
 * Fault knobs for driver tests: `silent`, `garbage`, `split`, `latencyMs`, and `setValues()` to force any
 * value (forced values stop drifting until `release()`).
 */
import {
  decodeRequest,
  encodeBasicInfo,
  encodeCellVoltages,
  encodeHardwareVersion,
  encodeResponse,
  extractFrames,
  JBD_MAX_FRAME,
  JBD_READ,
  JBD_WRITE,
  JbdRegister,
  type JbdRequest,
} from '../bms/jbd/protocol.js';
import { IncrementalFramer } from '../bytes/framer.js';
import { round } from '../domain/round.js';
import { DriftClock, stepThrough } from './drift.js';
import { createRandom, type Random } from './random.js';
import { SimDevice, type SimTransport } from './sim-device.js';

export type { SimTransport };

/** The simulated pack, in the units the snapshot uses (V, A, Ah, %, °C), already at wire resolution. */
export interface JbdSimValues {
  /** Pack voltage, V (sum of the cells unless forced). */
  voltage: number;
  /** Current, A, + = charging. */
  current: number;
  /** Remaining capacity, Ah. */
  capacityRemaining: number;
  /** Nominal (full) capacity, Ah. */
  capacityNominal: number;
  /** State of charge, integer %. */
  soc: number;
  cycles: number;
  /** Cell voltages, V (1 mV resolution); the length is the cell count. */
  cells: number[];
  /** NTC temperatures, °C (0.1 °C resolution). */
  temperatures: number[];
  /** Balancing bit per cell, bit 0 = cell 1. */
  balanceBits: number;
  /** Protection bits as in register 0x03 offset 16 (bit 0 cell over-voltage, bit 12 FET software lock, …). */
  protectionBits: number;
  chargeFet: boolean;
  dischargeFet: boolean;
  /** Model string answered to 0x05. */
  model: string;
  /** `major.minor`, one digit each. */
  softwareVersion: string;
  /** ISO date. */
  productionDate: string;
}

/** Options of {@link JbdSimulator}. */
export interface JbdSimulatorOptions {
  /** Cells in series, 1–32 (default 16). */
  cells?: number;
  /** NTC sensors, 0–8 (default 3). */
  temperatureSensors?: number;
  /** Nominal capacity, Ah (default 100). */
  capacityAh?: number;
  /** Seed for a deterministic run (same seed, same requests, same time steps → same bytes). */
  seed?: number;
  /** Clock driving the drift, ms (default Date.now). */
  now?: () => number;
  /** Values to start from (they are not held: use setValues() to hold values). */
  initial?: Partial<JbdSimValues>;
}

/** Counters, for tests and the CLI. */
export interface JbdSimStats {
  /** Valid request frames seen, per register. */
  requests: Record<number, number>;
  /** Replies written. */
  replies: number;
}

/** Cell internal resistance, Ω: IR drop = current × R. */
const CELL_RESISTANCE_OHM = 0.0015;

/** A simulated JBD board: attach it to a transport (a pty's device end) or call respond() directly. */
export class JbdSimulator {
  /** Stop answering (a BMS asleep, a broken RX wire). */
  silent = false;
  /** Write a few random bytes before every reply. */
  garbage = false;
  /** Write replies in random 1–6 byte chunks, 1–4 ms apart. */
  split = false;
  /** Delay before each reply, ms. */
  latencyMs = 0;

  private readonly rnd: Random;
  private readonly state: JbdSimValues;
  /** Internal state at full precision; `state` holds the wire-resolution view. */
  private socExact: number;
  private currentExact: number;
  private currentTarget: number;
  private tempsExact: number[];
  private readonly tempBase: number[];
  private cellOffsets: number[];
  private cellBias: number[];
  private dischargedAh = 0;
  private readonly held = new Set<keyof JbdSimValues>();
  private readonly clock: DriftClock;

  private readonly device: SimDevice;
  private readonly requests: Record<number, number> = {};

  constructor(opts: JbdSimulatorOptions = {}) {
    const cellCount = opts.cells ?? 16;
    if (!Number.isInteger(cellCount) || cellCount < 1 || cellCount > 32) {
      throw new RangeError(`cells must be an integer 1–32, got ${cellCount}`);
    }
    const sensors = opts.temperatureSensors ?? 3;
    if (!Number.isInteger(sensors) || sensors < 0 || sensors > 8) {
      throw new RangeError(`temperatureSensors must be an integer 0–8, got ${sensors}`);
    }
    this.rnd = createRandom(opts.seed);
    this.clock = new DriftClock(opts.now ?? Date.now);
    const capacity = opts.capacityAh ?? 100;
    this.socExact = this.rnd.range(55, 75);
    this.currentExact = this.rnd.range(-3, 3);
    this.currentTarget = this.currentExact;
    this.tempBase = Array.from({ length: sensors }, () => this.rnd.range(21, 27));
    this.tempsExact = this.tempBase.map((t) => t + this.rnd.range(-1, 1));
    this.cellBias = Array.from({ length: cellCount }, () => this.rnd.range(-0.005, 0.005));
    this.cellOffsets = [...this.cellBias];
    this.state = {
      voltage: 0,
      current: 0,
      capacityRemaining: 0,
      capacityNominal: capacity,
      soc: 0,
      cycles: this.rnd.int(5, 150),
      cells: [],
      temperatures: [],
      balanceBits: 0,
      protectionBits: 0,
      chargeFet: true,
      dischargeFet: true,
      model: `JBD-SP25S003-L${cellCount}S-${Math.round(capacity)}A`.slice(0, 31),
      softwareVersion: '2.9',
      productionDate: '2023-05-17',
    };
    this.refresh();
    if (opts.initial) this.apply(opts.initial);
    // Any noise byte, 0xDD included: a stray start byte announcing a long frame is exactly what the framer must cope with.
    this.device = new SimDevice({
      rnd: this.rnd,
      knobs: this,
      framer: new IncrementalFramer((buffer) => extractFrames(buffer), { maxPending: JBD_MAX_FRAME }),
    });
  }

  /** The values the next reply will carry (after the drift up to now). */
  values(): JbdSimValues {
    this.advanceToNow();
    return this.copy();
  }

  /**
   * Force values (e.g. a cell over-voltage, a FET off, a hot sensor). Forced fields stop drifting until
   * released; values derived from them follow (forcing `cells` sets `voltage`, forcing `soc` sets
   * `capacityRemaining`) unless those are forced too.
   */
  setValues(values: Partial<JbdSimValues>): void {
    this.advanceToNow();
    this.apply(values);
    for (const key of Object.keys(values) as (keyof JbdSimValues)[]) this.held.add(key);
  }

  /** Let forced fields drift again (all of them when no keys are given). */
  release(...keys: (keyof JbdSimValues)[]): void {
    if (keys.length === 0) this.held.clear();
    for (const key of keys) this.held.delete(key);
  }

  /** Advance the simulated pack by `seconds` (tests use this instead of waiting). */
  advance(seconds: number): void {
    stepThrough(seconds, (dt) => this.step(dt));
    this.refresh();
  }

  get stats(): JbdSimStats {
    return { requests: { ...this.requests }, replies: this.device.replies };
  }

  /** Serve requests arriving on `transport` (replaces any previous one, e.g. after a re-plug). */
  attach(transport: SimTransport): void {
    this.device.attach(transport, (frame) => this.receive(frame));
  }

  /** Stop serving: forget the transport and cancel pending delayed writes. */
  detach(): void {
    this.device.detach();
  }

  /**
   * Answer one request (or none, for a frame that is not a request). Exposed so tests can check replies
   * without any transport.
   */
  respond(request: JbdRequest): Uint8Array | undefined {
    this.advanceToNow();
    if (request.op === JBD_READ) {
      switch (request.register) {
        case JbdRegister.basicInfo:
          return encodeResponse(JbdRegister.basicInfo, encodeBasicInfo(this.basicInfo()));
        case JbdRegister.cellVoltages:
          return encodeResponse(JbdRegister.cellVoltages, encodeCellVoltages(this.state.cells));
        case JbdRegister.hardwareVersion:
          return encodeResponse(JbdRegister.hardwareVersion, encodeHardwareVersion(this.state.model));
        default:
          // Registers we do not model (EEPROM parameters need factory mode anyway): the board's error status.
          return encodeResponse(request.register, new Uint8Array(0), 0x80);
      }
    }
    if (request.op === JBD_WRITE) {
      if (request.register === JbdRegister.mosfetControl && request.data.length >= 2) {
        const off = (request.data[1] as number) & 0x03;
        this.apply({
          chargeFet: (off & 0x01) === 0,
          dischargeFet: (off & 0x02) === 0,
          protectionBits: off === 0 ? this.state.protectionBits & ~(1 << 12) : this.state.protectionBits | (1 << 12),
        });
        for (const key of ['chargeFet', 'dischargeFet', 'protectionBits'] as const) this.held.add(key);
      }
      // Writes are acknowledged with an empty OK frame (checksum 00 00, as real boards send).
      return encodeResponse(request.register, new Uint8Array(0));
    }
    return undefined;
  }

  private receive(frame: Uint8Array): void {
    let request: JbdRequest;
    try {
      request = decodeRequest(frame);
    } catch {
      return; // a response frame or noise that happened to be well-formed: not for us
    }
    this.requests[request.register] = (this.requests[request.register] ?? 0) + 1;
    if (this.silent) return;
    const reply = this.respond(request);
    if (reply !== undefined) this.device.write(reply);
  }

  private basicInfo() {
    const s = this.state;
    return {
      voltage: s.voltage,
      current: s.current,
      capacityRemaining: s.capacityRemaining,
      capacityNominal: s.capacityNominal,
      cycles: s.cycles,
      productionDate: s.productionDate,
      balanceBits: s.balanceBits,
      protectionBits: s.protectionBits,
      softwareVersion: s.softwareVersion,
      soc: s.soc,
      chargeFet: s.chargeFet,
      dischargeFet: s.dischargeFet,
      cellCount: s.cells.length,
      temperatures: s.temperatures,
    };
  }

  private advanceToNow(): void {
    const gapS = this.clock.elapsedS();
    if (gapS > 0) this.advance(gapS);
  }

  /** Physics of one small step, at full precision. */
  private step(dt: number): void {
    const rnd = this.rnd;
    const held = this.held;
    if (!held.has('current')) {
      // A new load / charge situation every few minutes on average.
      if (rnd.next() < dt / 240) this.currentTarget = rnd.range(-6, 6);
      // Turn round before the pack gets near empty or full, so SoC wanders inside 30–92 %.
      if (this.socExact > 90 && this.currentTarget > 0) this.currentTarget = -rnd.range(1, 6);
      if (this.socExact < 32 && this.currentTarget < 0) this.currentTarget = rnd.range(1, 6);
      if (!this.state.chargeFet && this.currentTarget > 0) this.currentTarget = 0;
      if (!this.state.dischargeFet && this.currentTarget < 0) this.currentTarget = 0;
      this.currentExact += (this.currentTarget - this.currentExact) * Math.min(1, dt / 20);
      this.currentExact += rnd.gaussian() * 0.05 * Math.sqrt(dt);
      this.currentExact = clamp(this.currentExact, -10, 10);
    }
    const ah = (this.currentExact * dt) / 3600;
    if (!held.has('soc') && !held.has('capacityRemaining')) {
      this.socExact = clamp(this.socExact + (100 * ah) / this.state.capacityNominal, 0, 100);
    }
    if (!held.has('cycles') && ah < 0) {
      this.dischargedAh -= ah;
      if (this.dischargedAh >= this.state.capacityNominal) {
        this.dischargedAh -= this.state.capacityNominal;
        this.state.cycles++;
      }
    }
    if (!held.has('temperatures')) {
      this.tempsExact = this.tempsExact.map((t, i) => {
        const base = (this.tempBase[i] ?? 25) + Math.abs(this.currentExact) * 0.15;
        const next = t + (base - t) * Math.min(1, dt / 600) + rnd.gaussian() * 0.02 * Math.sqrt(dt);
        return clamp(next, 15, 35);
      });
    }
    if (!held.has('cells')) {
      this.cellOffsets = this.cellOffsets.map((o, i) => {
        const bias = this.cellBias[i] ?? 0;
        return clamp(o + (bias - o) * Math.min(1, dt / 300) + rnd.gaussian() * 0.0002 * Math.sqrt(dt), -0.012, 0.012);
      });
    }
  }

  /** Derive the wire-resolution view from the exact state, leaving forced fields alone. */
  private refresh(): void {
    const s = this.state;
    const held = this.held;
    if (!held.has('current')) s.current = round(this.currentExact, 2);
    if (!held.has('soc')) s.soc = Math.round(this.socExact);
    if (!held.has('capacityRemaining')) s.capacityRemaining = round((this.socExact / 100) * s.capacityNominal, 2);
    if (!held.has('temperatures')) s.temperatures = this.tempsExact.map((t) => round(t, 1));
    if (!held.has('cells')) {
      const ocv = lfpOpenCircuitVoltage(this.socExact);
      s.cells = this.cellOffsets.map((o) => round(ocv + this.currentExact * CELL_RESISTANCE_OHM + o, 3));
    }
    if (!held.has('voltage')) s.voltage = round(sum(s.cells), 2);
    if (!held.has('balanceBits')) {
      // The board bleeds the high cells while charging near the top of the plateau.
      const mean = sum(s.cells) / Math.max(1, s.cells.length);
      let bits = 0;
      if (this.currentExact > 0.5 && this.socExact > 50) {
        s.cells.forEach((c, i) => {
          if (c > mean + 0.004) bits |= 1 << i;
        });
      }
      s.balanceBits = bits >>> 0;
    }
  }

  /** Apply values to the state (and the exact state behind them), without holding them. */
  private apply(values: Partial<JbdSimValues>): void {
    const s = this.state;
    if (values.cells !== undefined) {
      if (values.cells.length < 1 || values.cells.length > 32) throw new RangeError('1–32 cells');
      s.cells = values.cells.map((c) => round(c, 3));
      if (values.cells.length !== this.cellOffsets.length) {
        this.cellBias = s.cells.map(() => 0);
        this.cellOffsets = s.cells.map(() => 0);
      }
      if (values.voltage === undefined) s.voltage = round(sum(s.cells), 2);
    }
    if (values.voltage !== undefined) s.voltage = round(values.voltage, 2);
    if (values.current !== undefined) {
      this.currentExact = values.current;
      this.currentTarget = values.current;
      s.current = round(values.current, 2);
    }
    if (values.capacityNominal !== undefined) s.capacityNominal = round(values.capacityNominal, 2);
    if (values.soc !== undefined) {
      this.socExact = clamp(values.soc, 0, 100);
      s.soc = Math.round(this.socExact);
      if (values.capacityRemaining === undefined) {
        s.capacityRemaining = round((this.socExact / 100) * s.capacityNominal, 2);
      }
    }
    if (values.capacityRemaining !== undefined) {
      s.capacityRemaining = round(values.capacityRemaining, 2);
      if (values.soc === undefined && s.capacityNominal > 0) {
        this.socExact = clamp((100 * values.capacityRemaining) / s.capacityNominal, 0, 100);
        s.soc = Math.round(this.socExact);
      }
    }
    if (values.temperatures !== undefined) {
      this.tempsExact = [...values.temperatures];
      s.temperatures = values.temperatures.map((t) => round(t, 1));
    }
    if (values.cycles !== undefined) s.cycles = values.cycles;
    if (values.balanceBits !== undefined) s.balanceBits = values.balanceBits >>> 0;
    if (values.protectionBits !== undefined) s.protectionBits = values.protectionBits & 0xffff;
    if (values.chargeFet !== undefined) s.chargeFet = values.chargeFet;
    if (values.dischargeFet !== undefined) s.dischargeFet = values.dischargeFet;
    if (values.model !== undefined) s.model = values.model.slice(0, 31);
    if (values.softwareVersion !== undefined) s.softwareVersion = values.softwareVersion;
    if (values.productionDate !== undefined) s.productionDate = values.productionDate;
  }

  private copy(): JbdSimValues {
    return { ...this.state, cells: [...this.state.cells], temperatures: [...this.state.temperatures] };
  }
}

/**
 * Resting cell voltage of LiFePO4 against SoC: steep below 10 % and above 90 %, the long flat plateau
 * (≈ 3.30–3.35 V) in between.
 */
export function lfpOpenCircuitVoltage(socPercent: number): number {
  const soc = clamp(socPercent, 0, 100);
  if (soc <= 10) return 2.9 + 0.03 * soc;
  if (soc <= 30) return 3.2 + 0.005 * (soc - 10);
  if (soc <= 90) return 3.3 + 0.0008 * (soc - 30);
  return 3.348 + 0.005 * (soc - 90);
}

function sum(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}
