/**
 * Device side of an RS485 bus with several Pylontech or Seplos V2 packs, each at its own address, for tests and for
 * `batterybank simulate pylontech|seplos`.
 *
 * Requests are found with the shared "~…\r" framer and answered with the field tables' device-side encoders: 0x42,
 * 0x44, 0x47 (Pylontech), 0x51, 0x92 (Pylontech); any other CID2 gets return code 0x04 (CID2 invalid). A request for an
 * address no pack has, or for a pack that is `silent`, gets no answer, as on a real bus. Pylontech's master (the first
 * pack) also answers 0x42 with COMMAND 0xFF for all packs. Each pack is the LiFePO4 PackModel of daly-simulator.ts.
 *
 * API mirrors JbdSimulator, per pack: `pack(address)` gives `silent`, `values()`, `setValues()`, `release()`; the bus
 * has `garbage`, `split`, `latencyMs`, `advance()`, `stats`, `attach()` / `detach()`, `respond()`.
 */
import {
  decodeFrame,
  encodeManufacturerInfo,
  encodeReply,
  PYLON_CID1_LFP,
  PYLON_EOI,
  PYLON_SOI,
  PylonCommand,
  PylonFramer,
} from '../bms/pylon-rs485/protocol.js';
import {
  encodeAlarmInfo,
  encodeAnalogValues,
  encodeChargeManagement,
  encodeSystemParameters,
  PYLONTECH_ALL_PACKS,
  PYLONTECH_FIRST_ADDRESS,
  type PylontechModule,
} from '../bms/pylon-rs485/pylontech.js';
import { encodeAlarms, encodeTelemetry, SeplosAlarmByte } from '../bms/pylon-rs485/seplos.js';
import { round } from '../domain/round.js';
import { balancingFlags, PackModel } from './daly-simulator.js';
import { DriftClock } from './drift.js';
import { createRandom, type Random } from './random.js';
import { SimDevice, type SimTransport } from './sim-device.js';

/** Which field table the simulated packs speak. */
export type PylonSimProtocol = 'pylontech' | 'seplos';

/** Limits a Pylontech pack asks for in 0x92. */
export interface PylonSimLimits {
  chargeVoltage: number;
  dischargeVoltage: number;
  chargeCurrent: number;
  /** Magnitude, A (sent negative, as real packs do). */
  dischargeCurrent: number;
  chargeEnable: boolean;
  dischargeEnable: boolean;
}

/**
 * One simulated pack at wire resolution for its protocol: Pylontech sends mV / mAh / 0.1 A, Seplos 0.01 V / 0.01 Ah /
 * 0.01 A / 0.1 %; both 1 mV cells and 0.1 °C temperatures.
 */
export interface PylonSimValues {
  /** V, cell 1 first. */
  cells: number[];
  /** °C. Pylontech: BMS board then 4 cell groups; Seplos: 4 cells, ambient, power (MOS). */
  temperatures: number[];
  /** A, + = charging. */
  current: number;
  /** V. */
  voltage: number;
  /** Ah. */
  capacityRemaining: number;
  /** Full capacity, Ah. */
  capacityTotal: number;
  /** %, what a decoder will show (Seplos sends it; for Pylontech it is remaining / total). */
  soc: number;
  /** %, Seplos only. */
  soh: number;
  cycles: number;
  chargeFet: boolean;
  dischargeFet: boolean;
  /** One flag per cell (Seplos 0x44 reports it). */
  balancing: boolean[];
  /** Pylontech 0x44 status1–status5 (status2 FET bits follow chargeFet / dischargeFet unless forced here). */
  pylontechStatus: number[];
  /** Seplos 0x44 alarm event bytes 1–8 (indexes as SeplosAlarmByte.event1 … event8; FET / balancing bytes derived). */
  seplosAlarmBits: number[];
  /** Pylontech 0x92. */
  limits: PylonSimLimits;
  deviceName: string;
  softwareVersion: string;
  manufacturer: string;
}

/** One pack of the bus, as the simulator is told about it. */
export interface PylonSimPackOptions {
  /** ADR (Pylontech 2, 3 …; Seplos 0–15). */
  address: number;
  /** Cells in series (default 15 for Pylontech, 16 for Seplos). */
  cells?: number;
  /** Capacity, Ah (default 50 for Pylontech, 100 for Seplos). */
  capacityAh?: number;
  /** State of charge to start from, %. */
  initialSoc?: number;
}

/** Options of {@link PylonRs485Simulator}. */
export interface PylonRs485SimulatorOptions {
  protocol: PylonSimProtocol;
  /** The packs on the bus (default: one at address 2 for Pylontech, 0 for Seplos). */
  packs?: PylonSimPackOptions[];
  seed?: number;
  /** Clock driving the drift, ms (default Date.now). */
  now?: () => number;
}

/** Counters, for tests and the CLI. */
export interface PylonSimStats {
  /** Valid request frames seen, per address. */
  requests: Record<number, number>;
  /** Replies queued for writing. */
  replies: number;
}

/** One pack on the simulated bus. */
export class PylonSimPack {
  /** Stop answering (pack switched off, its RS485 link broken). */
  silent = false;
  readonly address: number;
  readonly model: PackModel;
  private forced: Partial<PylonSimValues> = {};

  constructor(
    readonly protocol: PylonSimProtocol,
    opts: PylonSimPackOptions,
    rnd: Random,
    private readonly sync: () => void,
  ) {
    const cells = opts.cells ?? (protocol === 'pylontech' ? 15 : 16);
    if (!Number.isInteger(cells) || cells < 1 || cells > 32) throw new RangeError(`cells must be 1–32, got ${cells}`);
    this.address = opts.address;
    this.model = new PackModel({
      cells,
      sensors: protocol === 'pylontech' ? 5 : 6,
      capacityAh: opts.capacityAh ?? (protocol === 'pylontech' ? 50 : 100),
      rnd,
    });
    if (opts.initialSoc !== undefined) this.model.setSoc(opts.initialSoc);
  }

  /** The values the next replies will carry (after the drift up to now). */
  values(): PylonSimValues {
    this.sync();
    return this.current();
  }

  /** Force values; they stay until release(). Forcing `cells` also sets `voltage` unless that is forced too. */
  setValues(values: Partial<PylonSimValues>): void {
    this.sync();
    this.forced = { ...this.forced, ...values };
    if (values.current !== undefined) this.model.heldCurrent = values.current;
    this.model.chargeAllowed = this.forced.chargeFet ?? true;
    this.model.dischargeAllowed = this.forced.dischargeFet ?? true;
  }

  /** Let forced fields drift again (all of them when no keys are given). */
  release(...keys: (keyof PylonSimValues)[]): void {
    const next: Partial<PylonSimValues> = {};
    for (const [k, v] of Object.entries(this.forced) as [keyof PylonSimValues, never][]) {
      if (keys.length > 0 && !keys.includes(k)) next[k] = v;
    }
    this.forced = next;
    if (this.forced.current === undefined) this.model.heldCurrent = undefined;
    this.model.chargeAllowed = this.forced.chargeFet ?? true;
    this.model.dischargeAllowed = this.forced.dischargeFet ?? true;
  }

  /** Wire-resolution view (no time step). */
  current(): PylonSimValues {
    const m = this.model.view();
    const f = this.forced;
    const pylon = this.protocol === 'pylontech';
    const cells = f.cells ?? m.cells.map((c) => round(c, 3));
    const current = f.current ?? round(m.current, pylon ? 1 : 2);
    const capacityTotal = f.capacityTotal ?? round(this.model.capacityAh, pylon ? 3 : 2);
    const capacityRemaining = f.capacityRemaining ?? round((m.soc / 100) * capacityTotal, pylon ? 3 : 2);
    const soc =
      f.soc ??
      (pylon
        ? Math.min(100, Math.round((1000 * capacityRemaining) / capacityTotal) / 10)
        : round((100 * capacityRemaining) / capacityTotal, 1));
    const temperatures = f.temperatures ?? m.temperatures.map((t) => round(t, 1));
    return {
      cells,
      temperatures,
      current,
      voltage:
        f.voltage ??
        round(
          cells.reduce((a, b) => a + b, 0),
          pylon ? 3 : 2,
        ),
      capacityRemaining,
      capacityTotal,
      soc,
      soh: f.soh ?? 100,
      cycles: f.cycles ?? m.cycles,
      chargeFet: f.chargeFet ?? true,
      dischargeFet: f.dischargeFet ?? true,
      balancing: f.balancing ?? balancingFlags(cells, current, soc),
      pylontechStatus: f.pylontechStatus ?? [0, 0, 0, 0, 0],
      seplosAlarmBits: f.seplosAlarmBits ?? new Array(14).fill(0),
      limits: f.limits ?? {
        chargeVoltage: round(cells.length * 3.55, 1),
        dischargeVoltage: round(cells.length * 3.0, 1),
        chargeCurrent: round(this.model.capacityAh / 2, 1),
        dischargeCurrent: round(this.model.capacityAh / 2, 1),
        chargeEnable: true,
        dischargeEnable: true,
      },
      deviceName: f.deviceName ?? (pylon ? 'US2000C' : '1101-SP15'),
      softwareVersion: f.softwareVersion ?? (pylon ? '1.07' : '2.07'),
      manufacturer: f.manufacturer ?? (pylon ? 'PYLON' : 'CANProtocol:Pylon'),
    };
  }

  /** Pylontech 0x42 module of this pack. */
  module(): PylontechModule {
    const v = this.current();
    return {
      cellVoltages: v.cells,
      temperatures: v.temperatures,
      current: v.current,
      voltage: v.voltage,
      capacityRemaining: v.capacityRemaining,
      capacityTotal: v.capacityTotal,
      cycles: v.cycles,
    };
  }
}

/** A simulated RS485 bus of Pylontech or Seplos packs. */
export class PylonRs485Simulator {
  /** Write a few random bytes (never '~') before every reply. */
  garbage = false;
  /** Write replies in random 1–6 byte chunks, 1–4 ms apart. */
  split = false;
  /** Delay before each reply, ms. */
  latencyMs = 0;
  readonly protocol: PylonSimProtocol;

  private readonly packs: PylonSimPack[];
  private readonly clock: DriftClock;
  private readonly device: SimDevice;
  private readonly stats_: PylonSimStats = { requests: {}, replies: 0 };

  constructor(opts: PylonRs485SimulatorOptions) {
    this.protocol = opts.protocol;
    const rnd = createRandom(opts.seed);
    this.clock = new DriftClock(opts.now ?? Date.now);
    const packOpts = opts.packs ?? [{ address: opts.protocol === 'pylontech' ? PYLONTECH_FIRST_ADDRESS : 0 }];
    const seen = new Set<number>();
    for (const p of packOpts) {
      if (seen.has(p.address)) throw new RangeError(`two packs at address ${p.address}`);
      seen.add(p.address);
    }
    this.packs = packOpts.map((p) => new PylonSimPack(opts.protocol, p, rnd, () => this.advanceToNow()));
    this.device = new SimDevice({
      rnd,
      knobs: this,
      framer: new PylonFramer(),
      noise: { avoid: (b) => b === PYLON_SOI || b === PYLON_EOI, step: 1 },
    });
  }

  /** The pack at `address`. Throws when the bus has none there. */
  pack(address: number): PylonSimPack {
    const p = this.packs.find((x) => x.address === address);
    if (p === undefined) throw new RangeError(`no simulated pack at address ${address}`);
    return p;
  }

  /** Addresses of the packs, in bus order. */
  get addresses(): number[] {
    return this.packs.map((p) => p.address);
  }

  /** Advance every pack by `seconds`. */
  advance(seconds: number): void {
    for (const p of this.packs) p.model.advance(seconds);
  }

  get stats(): PylonSimStats {
    return { requests: { ...this.stats_.requests }, replies: this.stats_.replies };
  }

  /** Serve requests arriving on `transport` (replaces any previous one). */
  attach(transport: SimTransport): void {
    this.device.attach(transport, (frame) => this.receive(frame));
  }

  /** Stop serving. */
  detach(): void {
    this.device.detach();
  }

  /**
   * The reply to one request frame, or undefined when nobody answers (no pack at that address, a silent pack, a frame
   * that is not a request). Exposed so tests can check replies without any transport.
   */
  respond(request: Uint8Array): Uint8Array | undefined {
    let frame: ReturnType<typeof decodeFrame>;
    try {
      frame = decodeFrame(request);
    } catch {
      return undefined;
    }
    const pack = this.packs.find((p) => p.address === frame.address);
    if (pack === undefined || pack.silent) return undefined;
    if (frame.cid1 !== PYLON_CID1_LFP) return encodeReply(frame.address, new Uint8Array(0), 0xe1);
    this.advanceToNow();
    const info = this.answer(pack, frame.cid2, frame.info);
    return info === undefined
      ? encodeReply(frame.address, new Uint8Array(0), 0x04)
      : encodeReply(frame.address, info, 0x00);
  }

  private answer(pack: PylonSimPack, command: number, requestInfo: Uint8Array): Uint8Array | undefined {
    const v = pack.current();
    const pylon = this.protocol === 'pylontech';
    switch (command) {
      case PylonCommand.analogValues:
        if (!pylon) {
          return encodeTelemetry({
            dataFlag: 0,
            commandGroup: 1,
            cellVoltages: v.cells,
            temperatures: v.temperatures,
            current: v.current,
            voltage: v.voltage,
            capacityRemaining: v.capacityRemaining,
            capacity: v.capacityTotal,
            soc: v.soc,
            ratedCapacity: v.capacityTotal,
            cycles: v.cycles,
            soh: v.soh,
            portVoltage: round(v.voltage - 0.01, 2),
          });
        }
        if (requestInfo[0] === PYLONTECH_ALL_PACKS) {
          // Only the master answers for the whole stack.
          if (pack !== this.packs[0]) return undefined;
          return encodeAnalogValues(
            this.packs.filter((p) => !p.silent).map((p) => p.module()),
            undefined,
          );
        }
        return encodeAnalogValues([pack.module()], pack.address);
      case PylonCommand.alarmInfo:
        return pylon ? this.pylontechAlarms(pack, v) : this.seplosAlarms(v);
      case PylonCommand.systemParameters:
        if (!pylon) return undefined;
        return encodeSystemParameters({
          dataFlag: 0x11,
          cellHighVoltage: 3.7,
          cellLowVoltage: 3.05,
          cellUnderVoltage: 2.9,
          chargeHighTemperature: 60,
          chargeLowTemperature: 0,
          chargeCurrentLimit: v.limits.chargeCurrent,
          moduleHighVoltage: round(v.cells.length * 3.6, 3),
          moduleLowVoltage: round(v.cells.length * 3.05, 3),
          moduleUnderVoltage: round(v.cells.length * 2.9, 3),
          dischargeHighTemperature: 60,
          dischargeLowTemperature: -10,
          dischargeCurrentLimit: -v.limits.dischargeCurrent,
        });
      case PylonCommand.chargeManagement:
        if (!pylon) return undefined;
        return encodeChargeManagement({
          address: pack.address,
          chargeVoltageLimit: v.limits.chargeVoltage,
          dischargeVoltageLimit: v.limits.dischargeVoltage,
          chargeCurrentLimit: v.limits.chargeCurrent,
          dischargeCurrentLimit: -v.limits.dischargeCurrent,
          chargeEnable: v.limits.chargeEnable,
          dischargeEnable: v.limits.dischargeEnable,
          chargeImmediately1: false,
          chargeImmediately2: false,
          fullChargeRequest: false,
        });
      case PylonCommand.manufacturerInfo:
        return encodeManufacturerInfo({
          deviceName: v.deviceName,
          softwareVersion: v.softwareVersion,
          manufacturer: v.manufacturer,
        });
      default:
        return undefined;
    }
  }

  private pylontechAlarms(pack: PylonSimPack, v: PylonSimValues): Uint8Array {
    const status = [...v.pylontechStatus];
    const fets = (v.chargeFet ? 0x02 : 0) | (v.dischargeFet ? 0x04 : 0) | (v.current < 0 ? 0x08 : 0);
    status[1] = (status[1] ?? 0) | fets;
    return encodeAlarmInfo({
      address: pack.address,
      cellAlarms: v.cells.map(() => 'normal'),
      temperatureAlarms: v.temperatures.map(() => 'normal'),
      chargeCurrentAlarm: 'normal',
      moduleVoltageAlarm: 'normal',
      dischargeCurrentAlarm: 'normal',
      status,
    });
  }

  private seplosAlarms(v: PylonSimValues): Uint8Array {
    const bits = new Array<number>(20).fill(0);
    v.seplosAlarmBits.forEach((b, i) => {
      bits[i] = b;
    });
    bits[SeplosAlarmByte.onOff] = (v.dischargeFet ? 0x01 : 0) | (v.chargeFet ? 0x02 : 0);
    let balance = 0;
    v.balancing.slice(0, 16).forEach((on, i) => {
      if (on) balance |= 1 << i;
    });
    bits[SeplosAlarmByte.balancing1] = balance & 0xff;
    bits[SeplosAlarmByte.balancing2] = (balance >> 8) & 0xff;
    bits[SeplosAlarmByte.systemState] = v.current > 0.05 ? 0x02 : v.current < -0.05 ? 0x01 : 0x10;
    return encodeAlarms({
      commandGroup: 1,
      cellAlarms: v.cells.map(() => 0),
      temperatureAlarms: v.temperatures.map(() => 0),
      bits,
    });
  }

  private receive(frame: Uint8Array): void {
    let address: number;
    try {
      const f = decodeFrame(frame);
      // Replies of other devices on the bus (CID2 = a return code 0x00) are not requests.
      if (f.cid2 === 0x00) return;
      address = f.address;
    } catch {
      return;
    }
    this.stats_.requests[address] = (this.stats_.requests[address] ?? 0) + 1;
    const reply = this.respond(frame);
    if (reply === undefined) return;
    this.stats_.replies++;
    // The knobs as they are when the request arrives.
    this.device.write(reply, { garbage: this.garbage, split: this.split, latencyMs: this.latencyMs });
  }

  private advanceToNow(): void {
    const gapS = this.clock.elapsedS();
    if (gapS > 0) this.advance(gapS);
  }
}
