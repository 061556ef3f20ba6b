/**
 * Device side of a JK-PB inverter-BMS RS485 bus: several packs, each at its DIP address, sharing one line
 * (115200 Bd). Requests are parsed with the jk-modbus protocol module and answered with its encoders: a
 * trigger write to 0x1620 / 0x161E / 0x161C gets the status / settings / about record, a zero byte, the
 * FC 0x10 acknowledgement and a zero byte, as a pack does. Requests to an address nobody has, and FC 0x03
 * reads (which real packs answer only unreliably, see JKBMS-PB.md), get no answer.
 *
 * Each pack is a JkPackModel (the drifting LiFePO4 pack shared with the serial simulator) at the JK02 wire
 * resolution (1 mV, 1 mA, 0.1 °C, 1 mAh). Knobs: `silent` for the whole bus, `pack(addr).silent` for one
 * pack, `garbage`, `split`, `latencyMs`, and `setValues()` per pack.
 */
import {
  encodeCellInfoRecord,
  encodeDeviceInfoRecord,
  encodeSettingsRecord,
  type Jk02CellInfo,
  type Jk02DeviceInfo,
  type Jk02Settings,
} from '../bms/jk-modbus/jk02-record.js';
import {
  decodeRequest,
  encodeTriggerReply,
  extractFrames,
  JK_PB_MAX_ADDRESS,
  JK_PB_MAX_FRAME,
  type JkPbFrame,
  JkPbTrigger,
} from '../bms/jk-modbus/protocol.js';
import { IncrementalFramer } from '../bytes/framer.js';
import { round as roundTo } from '../domain/round.js';
import { JkPackModel, type JkPackResolution, type JkPackValues } from './jk-serial-simulator.js';
import { createRandom } from './random.js';
import { SimDevice, type SimTransport } from './sim-device.js';

/** What one simulated JK-PB pack reports: the pack, its state of health and its identity. */
export interface JkPbSimValues extends JkPackValues {
  /** %. */
  soh: number;
  model: string;
  hardwareVersion: string;
  softwareVersion: string;
  /** At most 10 characters. */
  serialNumber: string;
  deviceName: string;
  /** `YYMMDD`. */
  productionDate: string;
}

type Identity = Omit<JkPbSimValues, keyof JkPackValues | 'soh'>;

/** JK02 wire resolution: 1 mV, 1 mA, 0.1 °C, 1 mAh. */
const PB_RESOLUTION: JkPackResolution = { voltage: 3, current: 3, temperature: 1, capacity: 3 };

/** One pack on the simulated bus. */
export class JkPbSimPack {
  /** This pack stops answering (unplugged from the bus, asleep, wrong DIP address). */
  silent = false;

  private soh = 100;
  private readonly identity: Identity;

  constructor(
    readonly address: number,
    private readonly model: JkPackModel,
    serialNumber: string,
  ) {
    this.identity = {
      model: 'JK_PB2A16S20P',
      hardwareVersion: '15A',
      softwareVersion: '15.41',
      serialNumber,
      deviceName: `JK-SIM-${address}`,
      productionDate: '240914',
    };
  }

  /** The values the next records will carry. */
  values(): JkPbSimValues {
    return { ...this.model.values(), soh: this.soh, ...this.identity };
  }

  /** Force values (pack values stop drifting until release()). */
  setValues(values: Partial<JkPbSimValues>): void {
    if (values.soh !== undefined) this.soh = Math.round(values.soh);
    const id = this.identity;
    if (values.model !== undefined) id.model = values.model.slice(0, 16);
    if (values.hardwareVersion !== undefined) id.hardwareVersion = values.hardwareVersion.slice(0, 8);
    if (values.softwareVersion !== undefined) id.softwareVersion = values.softwareVersion.slice(0, 8);
    if (values.serialNumber !== undefined) id.serialNumber = values.serialNumber.slice(0, 10);
    if (values.deviceName !== undefined) id.deviceName = values.deviceName.slice(0, 16);
    if (values.productionDate !== undefined) id.productionDate = values.productionDate.slice(0, 8);
    this.model.setValues(values);
  }

  /** Let forced pack values drift again (all of them when no keys are given). */
  release(...keys: (keyof JkPackValues)[]): void {
    this.model.release(...keys);
  }

  /** Advance this pack by `seconds`. */
  advance(seconds: number): void {
    this.model.advance(seconds);
  }

  /** The status (cell info) record of this moment. */
  statusRecord(): Uint8Array {
    const v = this.values();
    const cells = v.cells;
    const mean = cells.reduce((a, b) => a + b, 0) / cells.length;
    const info: Jk02CellInfo = {
      cellVoltages: cells,
      enabledCells: cells.length === 32 ? 0xffffffff : 2 ** cells.length - 1,
      averageCellVoltage: round(mean, 3),
      deltaCellVoltage: round(Math.max(...cells) - Math.min(...cells), 3),
      // Wire resistances of a tidy build: 40–75 mΩ, fixed per cell.
      wireResistances: cells.map((_, i) => (40 + ((i * 13 + this.address * 7) % 36)) / 1000),
      mosTemperature: v.mosTemperature,
      voltage: v.voltage,
      current: v.current,
      temperatures: v.temperatures,
      alarms: v.alarms,
      balanceCurrent: v.balancing ? 0.4 : 0,
      balancing: v.balancing ? 1 : 0,
      soc: v.soc,
      capacityRemaining: v.capacityRemaining,
      capacityNominal: v.capacityNominal,
      cycles: v.cycles,
      totalCycleCapacity: v.totalCycleCapacity,
      soh: v.soh,
      runtimeSeconds: v.runtimeSeconds,
      chargeFet: v.chargeFet,
      dischargeFet: v.dischargeFet,
    };
    return encodeCellInfoRecord(info);
  }

  /** The settings record: LiFePO4 defaults around this pack's cell count, capacity and switches. */
  settingsRecord(): Uint8Array {
    const v = this.values();
    const s: Jk02Settings = {
      smartSleepVoltage: 3.3,
      cellUnderVoltageProtection: 2.7,
      cellUnderVoltageRecovery: 2.9,
      cellOverVoltageProtection: 3.65,
      cellOverVoltageRecovery: 3.45,
      balanceTriggerVoltage: 0.005,
      requestChargeVoltage: 3.45,
      requestFloatVoltage: 3.35,
      powerOffVoltage: 2.5,
      maxChargeCurrent: 100,
      maxDischargeCurrent: 150,
      maxBalanceCurrent: 2,
      chargeOverTemperature: 60,
      chargeOverTemperatureRecovery: 55,
      dischargeOverTemperature: 65,
      dischargeOverTemperatureRecovery: 60,
      chargeUnderTemperature: 0,
      chargeUnderTemperatureRecovery: 3,
      mosOverTemperature: 90,
      mosOverTemperatureRecovery: 80,
      cellCount: v.cells.length,
      chargeSwitch: v.chargeFet,
      dischargeSwitch: v.dischargeFet,
      balanceSwitch: true,
      nominalCapacity: v.capacityNominal,
      balanceStartVoltage: 3.4,
    };
    return encodeSettingsRecord(s);
  }

  /** The about (device info) record. */
  aboutRecord(): Uint8Array {
    const v = this.values();
    const d: Jk02DeviceInfo = {
      model: v.model,
      hardwareVersion: v.hardwareVersion,
      softwareVersion: v.softwareVersion,
      uptimeSeconds: v.runtimeSeconds,
      powerOnCount: 3,
      deviceName: v.deviceName,
      productionDate: v.productionDate,
      serialNumber: v.serialNumber,
    };
    return encodeDeviceInfoRecord(d);
  }
}

/** Options of {@link JkModbusSimulator}. */
export interface JkModbusSimulatorOptions {
  /** DIP addresses of the packs on the bus, 1–15 (default [1]). */
  addresses?: readonly number[];
  /** Cells in series per pack, 1–32 (default 16). */
  cells?: number;
  /** Nominal capacity per pack, Ah (default 280, a common JK-PB pack). */
  capacityAh?: number;
  /** Seed for a deterministic run (each pack derives its own from it). */
  seed?: number;
  now?: () => number;
}

/** Counters, for tests and the CLI. */
export interface JkModbusSimStats {
  /** Valid trigger requests seen, per address and register. */
  requests: Record<number, Record<number, number>>;
  /** Replies written. */
  replies: number;
}

/** A JK-PB RS485 bus with one or more packs. */
export class JkModbusSimulator {
  /** The whole bus stops answering. */
  silent = false;
  /** Write a few random bytes (never 0x55 or an address 0–15) before every reply. */
  garbage = false;
  /** Write replies in random 1–6 byte chunks, 1–4 ms apart. */
  split = false;
  /** Delay before each reply, ms. */
  latencyMs = 0;

  readonly addresses: readonly number[];
  private readonly packs = new Map<number, JkPbSimPack>();
  private readonly wire: SimDevice;
  private readonly requests: Record<number, Record<number, number>> = {};

  constructor(opts: JkModbusSimulatorOptions = {}) {
    const addresses = [...(opts.addresses ?? [1])];
    if (addresses.length === 0) throw new RangeError('a bus needs at least one pack');
    for (const a of addresses) {
      if (!Number.isInteger(a) || a < 1 || a > JK_PB_MAX_ADDRESS) {
        throw new RangeError(`pack addresses are integers 1–${JK_PB_MAX_ADDRESS}, got ${a}`);
      }
    }
    if (new Set(addresses).size !== addresses.length) throw new RangeError('pack addresses must be distinct');
    this.addresses = addresses;
    const base = opts.seed ?? Math.floor(Math.random() * 0x1_0000_0000);
    const rnd = createRandom(base ^ 0x1620);
    for (const address of addresses) {
      const model = new JkPackModel({
        ...(opts.cells !== undefined ? { cells: opts.cells } : {}),
        capacityAh: opts.capacityAh ?? 280,
        seed: (base + address * 0x9e3779b1) >>> 0,
        ...(opts.now !== undefined ? { now: opts.now } : {}),
        resolution: PB_RESOLUTION,
      });
      const serial = `SIM${String(address).padStart(2, '0')}${String(rnd.int(0, 99999)).padStart(5, '0')}`;
      this.packs.set(address, new JkPbSimPack(address, model, serial));
    }
    this.wire = new SimDevice({
      rnd,
      knobs: this,
      framer: new IncrementalFramer((buffer) => extractFrames(buffer), { maxPending: JK_PB_MAX_FRAME }),
      noise: { avoid: (b) => b === 0x55 || b <= JK_PB_MAX_ADDRESS, step: 0x61 },
    });
  }

  /** The pack at `address`. Throws RangeError for an address that is not on the bus. */
  pack(address: number): JkPbSimPack {
    const p = this.packs.get(address);
    if (p === undefined) throw new RangeError(`no simulated pack at address ${address}`);
    return p;
  }

  /** The values of the pack at `address` (default: the first). */
  values(address = this.addresses[0] as number): JkPbSimValues {
    return this.pack(address).values();
  }

  /** Force values of the pack at `address` (default: the first). */
  setValues(values: Partial<JkPbSimValues>, address = this.addresses[0] as number): void {
    this.pack(address).setValues(values);
  }

  /** Advance every pack by `seconds`. */
  advance(seconds: number): void {
    for (const p of this.packs.values()) p.advance(seconds);
  }

  get stats(): JkModbusSimStats {
    const requests: Record<number, Record<number, number>> = {};
    for (const [a, r] of Object.entries(this.requests)) requests[Number(a)] = { ...r };
    return { requests, replies: this.wire.replies };
  }

  /** Serve the bus on `transport` (replaces any previous one). */
  attach(transport: SimTransport): void {
    this.wire.attach(transport, (frame) => this.receive(frame));
  }

  /** Stop serving. */
  detach(): void {
    this.wire.detach();
  }

  /** The bytes the addressed pack sends for one request, or undefined when no pack answers it. */
  respond(request: Extract<JkPbFrame, { kind: 'write-request' | 'read-request' }>): Uint8Array | undefined {
    if (request.kind !== 'write-request') return undefined;
    const pack = this.packs.get(request.address);
    if (pack === undefined || pack.silent) return undefined;
    switch (request.register) {
      case JkPbTrigger.status:
        return encodeTriggerReply(pack.address, request.register, pack.statusRecord());
      case JkPbTrigger.settings:
        return encodeTriggerReply(pack.address, request.register, pack.settingsRecord());
      case JkPbTrigger.about:
        return encodeTriggerReply(pack.address, request.register, pack.aboutRecord());
      default:
        return undefined;
    }
  }

  private receive(frame: Uint8Array): void {
    let request: Extract<JkPbFrame, { kind: 'write-request' | 'read-request' }>;
    try {
      request = decodeRequest(frame);
    } catch {
      return; // replies of other packs, echoes, noise
    }
    const perAddress = this.requests[request.address] ?? {};
    perAddress[request.register] = (perAddress[request.register] ?? 0) + 1;
    this.requests[request.address] = perAddress;
    if (this.silent) return;
    const reply = this.respond(request);
    if (reply !== undefined) this.wire.write(reply);
  }
}

/** round(), with -0 reported as 0 (a display never shows "-0"). */
function round(v: number, digits: number): number {
  return roundTo(v, digits) || 0;
}
