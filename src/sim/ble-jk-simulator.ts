/**
 * A simulated JK-B…A…S smart BMS as seen over BLE (protocols.md §2.2): answers 0x97 with a device info record
 * and 0x96 with a settings record, then streams cell info records every `streamIntervalMs` until detached.
 * Records are JK02_32S (hardware "11.XW"), built by the JK-PB simulator's pack model (same JK02 records).
 * Attach it to a SimTransport, e.g. a bleno peripheral (./ble-peripheral.ts).
 */
import { decodeCommand, JkBleCommand } from '../bms/jk-ble/protocol.js';
import { JkModbusSimulator, type JkPbSimPack, type JkPbSimValues } from './jk-modbus-simulator.js';
import type { SimTransport } from './jk-serial-simulator.js';

export interface JkBleSimulatorOptions {
  cells?: number;
  capacityAh?: number;
  seed?: number;
  /** Time between two cell info records, ms (default 500). */
  streamIntervalMs?: number;
}

export class JkBleSimulator {
  /** Stop answering and streaming (a hung BMS). */
  silent = false;
  readonly pack: JkPbSimPack;
  readonly streamIntervalMs: number;
  /** Commands received, by command byte. */
  readonly commands: Record<number, number> = {};
  /** Time each cell info record was handed to the transport (performance.now()), last 100. */
  readonly sentAt: number[] = [];
  private transport: SimTransport | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private inbox = new Uint8Array(0);

  constructor(opts: JkBleSimulatorOptions = {}) {
    const sim = new JkModbusSimulator({
      ...(opts.cells !== undefined ? { cells: opts.cells } : {}),
      ...(opts.capacityAh !== undefined ? { capacityAh: opts.capacityAh } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    });
    this.pack = sim.pack(sim.addresses[0] as number);
    this.pack.setValues({ model: 'JK_B2A8S20P', hardwareVersion: '11.XW', softwareVersion: '11.17' });
    this.streamIntervalMs = opts.streamIntervalMs ?? 500;
  }

  values(): JkPbSimValues {
    return this.pack.values();
  }

  setValues(values: Partial<JkPbSimValues>): void {
    this.pack.setValues(values);
  }

  attach(transport: SimTransport): void {
    this.detach();
    this.transport = transport;
    transport.onData((chunk) => {
      if (this.transport !== transport) return;
      try {
        this.receive(chunk);
      } catch {
        // never take the host down
      }
    });
  }

  detach(): void {
    this.transport = undefined;
    this.inbox = new Uint8Array(0);
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private receive(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.inbox.length + chunk.length);
    joined.set(this.inbox);
    joined.set(chunk, this.inbox.length);
    this.inbox = joined;
    while (this.inbox.length >= 20) {
      const start = this.inbox.indexOf(0xaa);
      if (start < 0) {
        this.inbox = new Uint8Array(0);
        return;
      }
      const cmd = decodeCommand(this.inbox.subarray(start, start + 20));
      if (!cmd) {
        this.inbox = this.inbox.slice(start + 1);
        continue;
      }
      this.inbox = this.inbox.slice(start + 20);
      this.command(cmd.cmd);
    }
  }

  private command(cmd: number): void {
    this.commands[cmd] = (this.commands[cmd] ?? 0) + 1;
    if (this.silent) return;
    if (cmd === JkBleCommand.deviceInfo) this.send(this.pack.aboutRecord());
    if (cmd === JkBleCommand.cellInfo) {
      this.send(this.pack.settingsRecord());
      clearInterval(this.timer);
      this.streamCellInfo();
      this.timer = setInterval(() => this.streamCellInfo(), this.streamIntervalMs);
    }
  }

  private streamCellInfo(): void {
    if (this.silent) return;
    this.sentAt.push(performance.now());
    if (this.sentAt.length > 100) this.sentAt.shift();
    this.send(this.pack.statusRecord());
  }

  private send(bytes: Uint8Array): void {
    try {
      this.transport?.send(bytes);
    } catch {
      // a gone transport
    }
  }
}
