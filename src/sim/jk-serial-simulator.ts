/**
 * Device side of a JK BMS on its serial "GPS / TTL" port (`4E 57` frames, 115200 Bd), for tests and for a
 * simulate command. Requests are parsed with the protocol module's frame decoder and answered with its
 * encoder, so the bytes are what a JK-B board sends: a read-all request gets the full TLV reply.
 *
 * The pack behind it (JkPackModel, shared with the JK-PB simulator) is a LiFePO4 battery whose state moves
 * slowly: the current wanders between charge and discharge, SoC integrates it and turns round before empty or
 * full, cells follow the LFP open-circuit curve plus IR drop and a small per-cell spread, temperatures drift
 * around 20–30 °C, the MOSFETs run a little warmer under load, and the balancer runs while charging high.
 *
 * Fault knobs for driver tests: `silent`, `garbage`, `split`, `latencyMs`, and `setValues()` to force any
 * value (forced values stop drifting until `release()`).
 */
import {
  decodeRequest,
  encodeReadAllReply,
  extractFrames,
  JK_SERIAL_MAX_FRAME,
  JkSerialCommand,
  type JkSerialFrame,
} from '../bms/jk-serial/protocol.js';
import { IncrementalFramer } from '../bytes/framer.js';
import { round as roundTo } from '../domain/round.js';
import { DriftClock, stepThrough } from './drift.js';
import { lfpOpenCircuitVoltage } from './jbd-simulator.js';
import { createRandom, type Random } from './random.js';
import { SimDevice, type SimTransport, type SimWireKnobs } from './sim-device.js';

export type { SimTransport, SimWireKnobs };

// ---- the pack ------------------------------------------------------------------------------------------

/** The simulated pack in snapshot units (V, A + = charging, Ah, %, °C), at the resolution of the wire. */
export interface JkPackValues {
  /** Cell voltages, V (1 mV); the length is the cell count. */
  cells: number[];
  /** Pack voltage, V (the sum of the cells unless forced). */
  voltage: number;
  /** A, + = charging. */
  current: number;
  /** Integer %. */
  soc: number;
  /** Ah. */
  capacityRemaining: number;
  /** Ah. */
  capacityNominal: number;
  cycles: number;
  /** Charge throughput, Ah. */
  totalCycleCapacity: number;
  /** °C. */
  mosTemperature: number;
  /** Temperature sensors 1 and 2, °C. */
  temperatures: [number, number];
  chargeFet: boolean;
  dischargeFet: boolean;
  /** The balancer is bleeding high cells now. */
  balancing: boolean;
  /** Alarm / warning bits in the family's own layout (serial 0x8B word, JK02 alarm word). */
  alarms: number;
  /** Seconds since the BMS started. */
  runtimeSeconds: number;
}

/** Decimal digits each value family carries on the wire. */
export interface JkPackResolution {
  voltage: number;
  current: number;
  temperature: number;
  /** Capacities and throughput. */
  capacity: number;
}

/** Options of {@link JkPackModel}. */
export interface JkPackOptions {
  /** Cells in series, 1–32 (default 16). */
  cells?: number;
  /** Nominal capacity, Ah (default 100). */
  capacityAh?: number;
  /** Seed for a deterministic run. */
  seed?: number;
  /** Clock driving the drift, ms (default Date.now). */
  now?: () => number;
  /** Values to start from (not held: use setValues() to hold values). */
  initial?: Partial<JkPackValues>;
  resolution: JkPackResolution;
}

/** Cell internal resistance, Ω: IR drop = current × R. */
const CELL_RESISTANCE_OHM = 0.0012;

/** The physics behind both JK simulators: one pack, drifting slowly, values at wire resolution. */
export class JkPackModel {
  private readonly rnd: Random;
  private readonly res: JkPackResolution;
  private readonly state: JkPackValues;
  private readonly held = new Set<keyof JkPackValues>();
  private readonly clock: DriftClock;
  private socExact: number;
  private currentExact: number;
  private currentTarget: number;
  private tempsExact: [number, number];
  private readonly tempBase: [number, number];
  private mosExact: number;
  private cellBias: number[];
  private cellOffsets: number[];
  private dischargedAh = 0;
  private throughputExact: number;
  private runtimeExact: number;

  constructor(opts: JkPackOptions) {
    const cellCount = opts.cells ?? 16;
    if (!Number.isInteger(cellCount) || cellCount < 1 || cellCount > 32) {
      throw new RangeError(`cells must be an integer 1–32, got ${cellCount}`);
    }
    this.rnd = createRandom(opts.seed);
    this.res = opts.resolution;
    this.clock = new DriftClock(opts.now ?? Date.now);
    const capacity = opts.capacityAh ?? 100;
    this.socExact = this.rnd.range(55, 75);
    this.currentExact = this.rnd.range(-3, 3);
    this.currentTarget = this.currentExact;
    this.tempBase = [this.rnd.range(20, 26), this.rnd.range(20, 26)];
    this.tempsExact = [this.tempBase[0] + this.rnd.range(-1, 1), this.tempBase[1] + this.rnd.range(-1, 1)];
    this.mosExact = this.tempBase[0] + 4;
    this.cellBias = Array.from({ length: cellCount }, () => this.rnd.range(-0.004, 0.004));
    this.cellOffsets = [...this.cellBias];
    const cycles = this.rnd.int(3, 120);
    this.throughputExact = cycles * capacity + this.rnd.range(0, capacity);
    this.runtimeExact = this.rnd.int(100_000, 20_000_000);
    this.state = {
      cells: [],
      voltage: 0,
      current: 0,
      soc: 0,
      capacityRemaining: 0,
      capacityNominal: capacity,
      cycles,
      totalCycleCapacity: 0,
      mosTemperature: 0,
      temperatures: [0, 0],
      chargeFet: true,
      dischargeFet: true,
      balancing: false,
      alarms: 0,
      runtimeSeconds: 0,
    };
    this.refresh();
    if (opts.initial) this.apply(opts.initial);
  }

  /** The values of the next reply (after the drift up to now). */
  values(): JkPackValues {
    this.advanceToNow();
    return { ...this.state, cells: [...this.state.cells], temperatures: [...this.state.temperatures] };
  }

  /** Force values; forced fields stop drifting until released. Forcing `cells` sets `voltage`, `soc` sets `capacityRemaining`. */
  setValues(values: Partial<JkPackValues>): void {
    this.advanceToNow();
    this.apply(values);
    for (const key of Object.keys(values) as (keyof JkPackValues)[]) this.held.add(key);
  }

  /** Let forced fields drift again (all of them when no keys are given). */
  release(...keys: (keyof JkPackValues)[]): void {
    if (keys.length === 0) this.held.clear();
    for (const key of keys) this.held.delete(key);
  }

  /** Advance the pack by `seconds` (tests use this instead of waiting). */
  advance(seconds: number): void {
    stepThrough(seconds, (dt) => this.step(dt));
    this.refresh();
  }

  private advanceToNow(): void {
    const gapS = this.clock.elapsedS();
    if (gapS > 0) this.advance(gapS);
  }

  private step(dt: number): void {
    const { rnd, held } = this;
    if (!held.has('current')) {
      // A new load or charge situation every few minutes on average; turn round near empty and full.
      if (rnd.next() < dt / 240) this.currentTarget = rnd.range(-8, 8);
      if (this.socExact > 90 && this.currentTarget > 0) this.currentTarget = -rnd.range(1, 8);
      if (this.socExact < 30 && this.currentTarget < 0) this.currentTarget = rnd.range(1, 8);
      if (!this.state.chargeFet && this.currentTarget > 0) this.currentTarget = 0;
      if (!this.state.dischargeFet && this.currentTarget < 0) this.currentTarget = 0;
      this.currentExact += (this.currentTarget - this.currentExact) * Math.min(1, dt / 20);
      this.currentExact = clamp(this.currentExact + rnd.gaussian() * 0.05 * Math.sqrt(dt), -12, 12);
    }
    const ah = (this.currentExact * dt) / 3600;
    if (!held.has('soc') && !held.has('capacityRemaining')) {
      this.socExact = clamp(this.socExact + (100 * ah) / this.state.capacityNominal, 0, 100);
    }
    if (ah > 0 && !held.has('totalCycleCapacity')) this.throughputExact += ah;
    if (ah < 0 && !held.has('cycles')) {
      this.dischargedAh -= ah;
      if (this.dischargedAh >= this.state.capacityNominal) {
        this.dischargedAh -= this.state.capacityNominal;
        this.state.cycles++;
      }
    }
    if (!held.has('temperatures')) {
      const load = Math.abs(this.currentExact) * 0.15;
      this.tempsExact = this.tempsExact.map((t, i) => {
        const base = (this.tempBase[i] ?? 25) + load;
        return clamp(t + (base - t) * Math.min(1, dt / 600) + rnd.gaussian() * 0.02 * Math.sqrt(dt), 12, 38);
      }) as [number, number];
    }
    if (!held.has('mosTemperature')) {
      const base = this.tempBase[0] + 3 + Math.abs(this.currentExact) * 0.5;
      this.mosExact = clamp(this.mosExact + (base - this.mosExact) * Math.min(1, dt / 300), 12, 60);
    }
    if (!held.has('cells')) {
      this.cellOffsets = this.cellOffsets.map((o, i) => {
        const bias = this.cellBias[i] ?? 0;
        return clamp(o + (bias - o) * Math.min(1, dt / 300) + rnd.gaussian() * 0.0002 * Math.sqrt(dt), -0.01, 0.01);
      });
    }
    if (!held.has('runtimeSeconds')) this.runtimeExact += dt;
  }

  /** Wire-resolution view of the exact state; forced fields are left alone. */
  private refresh(): void {
    const { state: s, held, res } = this;
    if (!held.has('current')) s.current = round(this.currentExact, res.current);
    if (!held.has('soc')) s.soc = Math.round(this.socExact);
    if (!held.has('capacityRemaining')) {
      s.capacityRemaining = round((this.socExact / 100) * s.capacityNominal, res.capacity);
    }
    if (!held.has('totalCycleCapacity')) s.totalCycleCapacity = round(this.throughputExact, res.capacity);
    if (!held.has('temperatures')) {
      s.temperatures = [round(this.tempsExact[0], res.temperature), round(this.tempsExact[1], res.temperature)];
    }
    if (!held.has('mosTemperature')) s.mosTemperature = round(this.mosExact, res.temperature);
    if (!held.has('cells')) {
      const ocv = lfpOpenCircuitVoltage(this.socExact);
      s.cells = this.cellOffsets.map((o) => round(ocv + this.currentExact * CELL_RESISTANCE_OHM + o, 3));
    }
    if (!held.has('voltage')) s.voltage = round(sum(s.cells), res.voltage);
    if (!held.has('balancing')) s.balancing = this.currentExact > 0.5 && this.socExact > 60;
    if (!held.has('runtimeSeconds')) s.runtimeSeconds = Math.floor(this.runtimeExact);
  }

  private apply(values: Partial<JkPackValues>): void {
    const { state: s, res } = this;
    if (values.cells !== undefined) {
      if (values.cells.length < 1 || values.cells.length > 32) throw new RangeError('1–32 cells');
      s.cells = values.cells.map((c) => round(c, 3));
      if (values.cells.length !== this.cellOffsets.length) {
        this.cellBias = s.cells.map(() => 0);
        this.cellOffsets = s.cells.map(() => 0);
      }
      if (values.voltage === undefined) s.voltage = round(sum(s.cells), res.voltage);
    }
    if (values.voltage !== undefined) s.voltage = round(values.voltage, res.voltage);
    if (values.current !== undefined) {
      this.currentExact = values.current;
      this.currentTarget = values.current;
      s.current = round(values.current, res.current);
    }
    if (values.capacityNominal !== undefined) s.capacityNominal = round(values.capacityNominal, res.capacity);
    if (values.soc !== undefined) {
      this.socExact = clamp(values.soc, 0, 100);
      s.soc = Math.round(this.socExact);
      if (values.capacityRemaining === undefined) {
        s.capacityRemaining = round((this.socExact / 100) * s.capacityNominal, res.capacity);
      }
    }
    if (values.capacityRemaining !== undefined) {
      s.capacityRemaining = round(values.capacityRemaining, res.capacity);
      if (values.soc === undefined && s.capacityNominal > 0) {
        this.socExact = clamp((100 * values.capacityRemaining) / s.capacityNominal, 0, 100);
        s.soc = Math.round(this.socExact);
      }
    }
    if (values.temperatures !== undefined) {
      this.tempsExact = [...values.temperatures];
      s.temperatures = [round(values.temperatures[0], res.temperature), round(values.temperatures[1], res.temperature)];
    }
    if (values.mosTemperature !== undefined) {
      this.mosExact = values.mosTemperature;
      s.mosTemperature = round(values.mosTemperature, res.temperature);
    }
    if (values.totalCycleCapacity !== undefined) {
      this.throughputExact = values.totalCycleCapacity;
      s.totalCycleCapacity = round(values.totalCycleCapacity, res.capacity);
    }
    if (values.runtimeSeconds !== undefined) {
      this.runtimeExact = values.runtimeSeconds;
      s.runtimeSeconds = Math.floor(values.runtimeSeconds);
    }
    if (values.cycles !== undefined) s.cycles = values.cycles;
    if (values.chargeFet !== undefined) s.chargeFet = values.chargeFet;
    if (values.dischargeFet !== undefined) s.dischargeFet = values.dischargeFet;
    if (values.balancing !== undefined) s.balancing = values.balancing;
    if (values.alarms !== undefined) s.alarms = values.alarms >>> 0;
  }
}

// ---- the JK serial board -------------------------------------------------------------------------------

/** What the simulated serial board reports: the pack plus the board's identity. */
export interface JkSerialSimValues extends JkPackValues {
  /** `<hw>_S<sw>`, at most 15 characters. */
  softwareVersion: string;
  /** 0xBA, at most 24 characters (published as the serial). */
  manufacturerId: string;
  /** 0xB4, at most 8 characters. */
  deviceId: string;
  /** 0xB5, `YYMM`. */
  productionDate: string;
  /** 0xC0: 1 (current with a direction bit, as current boards) or 0 (offset 10000). */
  protocolVersion: number;
}

/** Options of {@link JkSerialSimulator}. */
export interface JkSerialSimulatorOptions {
  /** Cells in series, 1–32 (default 16). */
  cells?: number;
  /** Nominal capacity, whole Ah (default 100). */
  capacityAh?: number;
  seed?: number;
  now?: () => number;
  initial?: Partial<JkSerialSimValues>;
}

/** Counters, for tests and the CLI. */
export interface JkSerialSimStats {
  /** Valid request frames seen, per command byte. */
  requests: Record<number, number>;
  /** Replies written. */
  replies: number;
}

/** Serial wire resolution: 10 mV, 10 mA, 1 °C, 1 Ah. */
const SERIAL_RESOLUTION: JkPackResolution = { voltage: 2, current: 2, temperature: 0, capacity: 0 };

/** A JK-B board answering read-all requests on its GPS / TTL port. */
export class JkSerialSimulator {
  /** Stop answering (a BMS asleep, a broken RX wire). */
  silent = false;
  /** Write a few random bytes (never 0x4E) before every reply. */
  garbage = false;
  /** Write replies in random 1–6 byte chunks, 1–4 ms apart. */
  split = false;
  /** Delay before each reply, ms. */
  latencyMs = 0;

  private readonly pack: JkPackModel;
  private readonly wire: SimDevice;
  private readonly identity: Omit<JkSerialSimValues, keyof JkPackValues>;
  private readonly requests: Record<number, number> = {};

  constructor(opts: JkSerialSimulatorOptions = {}) {
    const rnd = createRandom(opts.seed === undefined ? undefined : opts.seed ^ 0x4e57);
    this.pack = new JkPackModel({
      ...(opts.cells !== undefined ? { cells: opts.cells } : {}),
      capacityAh: Math.round(opts.capacityAh ?? 100),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      ...(opts.now !== undefined ? { now: opts.now } : {}),
      ...(opts.initial !== undefined ? { initial: opts.initial } : {}),
      resolution: SERIAL_RESOLUTION,
    });
    const cells = this.pack.values().cells.length;
    this.identity = {
      softwareVersion: '10.XW_S10.07',
      manufacturerId: `JKSIM-B2A${cells}S20P-${String(rnd.int(0, 9999)).padStart(4, '0')}`.slice(0, 24),
      deviceId: 'JKSIM001',
      productionDate: '2401',
      protocolVersion: 1,
    };
    if (opts.initial) this.applyIdentity(opts.initial);
    this.wire = new SimDevice({
      rnd,
      knobs: this,
      framer: new IncrementalFramer((buffer) => extractFrames(buffer), { maxPending: JK_SERIAL_MAX_FRAME }),
      noise: { avoid: (b) => b === 0x4e, step: 0x61 },
    });
  }

  /** The values the next reply will carry. */
  values(): JkSerialSimValues {
    return { ...this.pack.values(), ...this.identity };
  }

  /** Force values (they stop drifting until release()). */
  setValues(values: Partial<JkSerialSimValues>): void {
    this.applyIdentity(values);
    this.pack.setValues(values);
  }

  /** Let forced values drift again (all of them when no keys are given). */
  release(...keys: (keyof JkPackValues)[]): void {
    this.pack.release(...keys);
  }

  /** Advance the pack by `seconds`. */
  advance(seconds: number): void {
    this.pack.advance(seconds);
  }

  get stats(): JkSerialSimStats {
    return { requests: { ...this.requests }, replies: this.wire.replies };
  }

  /** Serve requests arriving on `transport` (replaces any previous one, e.g. after a re-plug). */
  attach(transport: SimTransport): void {
    this.wire.attach(transport, (frame) => this.receive(frame));
  }

  /** Stop serving. */
  detach(): void {
    this.wire.detach();
  }

  /** The reply to one request frame, or undefined (only "read all" is answered). */
  respond(request: JkSerialFrame): Uint8Array | undefined {
    if (request.command !== JkSerialCommand.readAll) return undefined;
    const v = this.values();
    return encodeReadAllReply({
      cellVoltages: v.cells,
      mosTemperature: v.mosTemperature,
      temperatures: v.temperatures,
      voltage: v.voltage,
      current: v.current,
      soc: v.soc,
      cycles: v.cycles,
      totalCycleCapacity: v.totalCycleCapacity,
      warnings: v.alarms & 0xffff,
      status: (v.chargeFet ? 1 : 0) | (v.dischargeFet ? 2 : 0) | (v.balancing ? 4 : 0),
      capacity: v.capacityNominal,
      chargeSwitch: v.chargeFet,
      dischargeSwitch: v.dischargeFet,
      deviceId: v.deviceId,
      productionDate: v.productionDate,
      runtimeMinutes: Math.floor(v.runtimeSeconds / 60),
      softwareVersion: v.softwareVersion,
      manufacturerId: v.manufacturerId,
      protocolVersion: v.protocolVersion,
    });
  }

  private receive(frame: Uint8Array): void {
    let request: JkSerialFrame;
    try {
      request = decodeRequest(frame);
    } catch {
      return; // a reply (our own, echoed) or noise that happened to be well-formed
    }
    this.requests[request.command] = (this.requests[request.command] ?? 0) + 1;
    if (this.silent) return;
    const reply = this.respond(request);
    if (reply !== undefined) this.wire.write(reply);
  }

  private applyIdentity(v: Partial<JkSerialSimValues>): void {
    if (v.softwareVersion !== undefined) this.identity.softwareVersion = v.softwareVersion.slice(0, 15);
    if (v.manufacturerId !== undefined) this.identity.manufacturerId = v.manufacturerId.slice(0, 24);
    if (v.deviceId !== undefined) this.identity.deviceId = v.deviceId.slice(0, 8);
    if (v.productionDate !== undefined) this.identity.productionDate = v.productionDate.slice(0, 4);
    if (v.protocolVersion !== undefined) this.identity.protocolVersion = v.protocolVersion;
  }
}

function sum(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}

/** round(), with -0 reported as 0 (a display never shows "-0"). */
function round(v: number, digits: number): number {
  return roundTo(v, digits) || 0;
}
