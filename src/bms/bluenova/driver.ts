/**
 * BlueNova driver: listens to the battery's console over a self-reconnecting websocket link and turns each
 * full cycle of lines into a snapshot (src/bms/bluenova/protocol.ts). Nothing is ever sent to the battery.
 *
 *   WebSocketLink ─message─► lines ─► BlueNovaConsole.feed ─cycle─► onSnapshot
 *                                          ├─ unknown shape (once each) ─► info event: the line, to be reported
 *                                          └─ N_UNITS / UNIT_RANK ─► info event, hint when ≠ configured units
 */
import type { BatterySnapshot } from '../../domain/battery-snapshot.js';
import { errorMessage } from '../../domain/errors.js';
import type { ConsoleLink } from '../../links/websocket-link.js';
import type { BmsDriver, DriverEvent, WireFrame } from '../driver.js';
import { BlueNovaConsole, type BlueNovaCycle, type BlueNovaExtra, errorsText, formatMcuId } from './protocol.js';

export interface BlueNovaDriverOptions {
  link: ConsoleLink;
  /** Wall clock for snapshot timestamps (default Date.now). */
  now?: () => number;
  /** +1 (default): the console's `Current` is positive when charging; −1 when it prints the opposite. */
  currentSign?: 1 | -1;
  /** BlueNova units configured in this battery's bank (1 when it is not in a bank): checked against N_UNITS. */
  configuredUnits?: number;
}

/** The extra D-Bus paths of a BlueNova battery service, with their types. */
export const BLUENOVA_DBUS_PATHS: Readonly<Record<string, 'd' | 'i' | 's'>> = {
  '/BlueNova/McuId': 's',
  '/BlueNova/Units': 'i',
  '/BlueNova/Rank': 'i',
  '/BlueNova/Errors': 's',
  '/BlueNova/SystemState': 's',
  '/BlueNova/Breaker': 's',
  '/BlueNova/ChargeState': 's',
  '/BlueNova/EnergyIn': 'd',
  '/BlueNova/EnergyOut': 'd',
  '/BlueNova/UnknownLines': 'i',
};

const SHOWN_LINE_CHARS = 160;

export class BlueNovaDriver implements BmsDriver {
  readonly family = 'bluenova';
  private readonly link: ConsoleLink;
  private readonly now: () => number;
  private readonly console: BlueNovaConsole;
  private readonly configuredUnits: number | undefined;
  private readonly snapshotListeners: ((s: BatterySnapshot) => void)[] = [];
  private readonly eventListeners: ((e: DriverEvent) => void)[] = [];
  private readonly frameListeners: ((f: WireFrame) => void)[] = [];
  private readonly encoder = new TextEncoder();
  private running = false;
  private connectedOnce = false;
  private retrying = false;
  private lastCycle: BlueNovaCycle | undefined;
  private unitsHinted: string | undefined;
  private readonly missingReported = new Set<string>();

  constructor(opts: BlueNovaDriverOptions) {
    this.link = opts.link;
    this.now = opts.now ?? Date.now;
    this.configuredUnits = opts.configuredUnits;
    this.console = new BlueNovaConsole({ currentSign: opts.currentSign ?? 1 });
    this.link.onData((message) => this.onMessage(message));
    this.link.onOpen(() => {
      if (!this.running) return;
      this.emit('info', `${this.connectedOnce ? 'connected again to' : 'connected to'} ${this.link.description}`);
      this.connectedOnce = true;
      this.retrying = false;
    });
    this.link.onClose((reason) => {
      if (!this.running) return;
      this.console.resetCycle();
      this.emit('warn', `lost the console: ${reason.message}`);
      this.retrying = true; // said once: the retries of this outage go to debug
    });
    this.link.onRetry((reason, wait) => {
      if (!this.running) return;
      // The first failure in a row at warn, the rest at debug: a battery switched off must not flood the log.
      this.emit(
        this.retrying ? 'debug' : 'warn',
        `cannot reach ${this.link.description}: ${reason.message}; retrying in ${wait / 1000} s`,
      );
      this.retrying = true;
    });
  }

  /** The latest extra fields (errors text, breaker, N_UNITS, …). */
  get extra(): BlueNovaExtra {
    return this.console.extra;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.link.connect();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.link.close();
  }

  onSnapshot(listener: (snapshot: BatterySnapshot) => void): void {
    this.snapshotListeners.push(listener);
  }

  onEvent(listener: (event: DriverEvent) => void): void {
    this.eventListeners.push(listener);
  }

  onFrame(listener: (frame: WireFrame) => void): void {
    this.frameListeners.push(listener);
  }

  /** Values of {@link BLUENOVA_DBUS_PATHS} (undefined = not reported yet). */
  dbusValues(): Record<string, number | string | undefined> {
    const x = this.console.extra;
    return {
      '/BlueNova/McuId': x.mcuId === undefined ? undefined : formatMcuId(x.mcuId),
      '/BlueNova/Units': x.units,
      '/BlueNova/Rank': x.rank,
      // "None" on the console is no error: '' on the bus (a string "None" reads as a Python None to GUI code).
      '/BlueNova/Errors': errorsText(x.errors),
      '/BlueNova/SystemState': x.systemState,
      '/BlueNova/Breaker': x.breaker,
      '/BlueNova/ChargeState': x.chargeState,
      '/BlueNova/EnergyIn': x.energyIn,
      '/BlueNova/EnergyOut': x.energyOut,
      '/BlueNova/UnknownLines': this.console.unknownCount,
    };
  }

  /** Telemetry extras: `{ bluenova: … }` (MQTT/HTTP payloads, PostgreSQL `extras`, the battery_pack view). */
  telemetryExtras(): Record<string, unknown> {
    const x = this.console.extra;
    return {
      bluenova: {
        mcuId: x.mcuId ?? null,
        units: x.units ?? null,
        rank: x.rank ?? null,
        cellCount: x.cellCount ?? null,
        temperature: x.temperature ?? null,
        errors: x.errors ?? null,
        systemState: x.systemState ?? null,
        breaker: x.breaker ?? null,
        chargeState: x.chargeState ?? null,
        energyIn: x.energyIn ?? null,
        energyOut: x.energyOut ?? null,
        adcVp: x.adcVp ?? null,
        adc: [0, 1, 2, 3, 4].map((i) => x.adc[i] ?? null),
        counters: { ...x.counters },
      },
    };
  }

  private emit(level: DriverEvent['level'], message: string): void {
    for (const l of this.eventListeners) {
      try {
        l({ level, message });
      } catch {
        // logging must not stop the driver
      }
    }
  }

  private onMessage(message: string): void {
    if (!this.running) return;
    // One line per message on the battery; several are tolerated (split on newlines).
    for (const line of message.split(/\r?\n/)) {
      if (line.trim() === '') continue;
      try {
        this.onLine(line);
      } catch (e) {
        this.emit('error', `unexpected error on console line ${JSON.stringify(line.slice(0, 80))}: ${errorMessage(e)}`);
      }
    }
  }

  private onLine(line: string): void {
    const time = this.now();
    if (this.frameListeners.length > 0) {
      const frame: WireFrame = { time, direction: 'rx', bytes: this.encoder.encode(line) };
      for (const l of this.frameListeners) {
        try {
          l(frame);
        } catch {
          // telemetry and captures must not disturb the driver
        }
      }
    }
    const r = this.console.feed(line, time);
    if (r.unknown !== undefined) {
      this.emit(
        'info',
        `unknown BlueNova console line (shown once per shape; please report it): ${JSON.stringify(line.slice(0, SHOWN_LINE_CHARS))}`,
      );
    }
    if (r.malformed !== undefined) {
      this.emit(
        'warn',
        `BlueNova ${r.malformed} line not understood (shown once): ${JSON.stringify(line.slice(0, SHOWN_LINE_CHARS))}`,
      );
    }
    if (r.identityChanged) this.identity();
    if (r.cycle !== undefined) this.deliver(r.cycle);
  }

  private identity(): void {
    const x = this.console.extra;
    const id = x.mcuId !== undefined ? `MCU ID ${formatMcuId(x.mcuId)}` : 'MCU ID not seen yet';
    const units =
      x.units !== undefined ? `${x.units} unit${x.units === 1 ? '' : 's'} in parallel` : 'units not seen yet';
    const rank = x.rank !== undefined ? `rank ${x.rank}` : 'rank not seen yet';
    this.emit('info', `BlueNova ${id}, ${units}, ${rank}`);
    const configured = this.configuredUnits;
    if (x.units === undefined || configured === undefined || x.units === configured) return;
    const key = `${x.units}/${configured}`;
    if (this.unitsHinted === key) return;
    this.unitsHinted = key;
    this.emit(
      'warn',
      `this BlueNova unit reports ${x.units} units in parallel, but ${configured} BlueNova batter${configured === 1 ? 'y is' : 'ies are'} ` +
        `configured in its bank: give every unit a [battery.<id>] section (protocol = bluenova, host = its address) ` +
        `and list them all in [bank] batteries, so the bank's limits cover all ${x.units}`,
    );
  }

  private deliver(cycle: BlueNovaCycle): void {
    this.lastCycle = cycle;
    if (cycle.missing.length > 0) {
      const key = cycle.missing.join(',');
      if (!this.missingReported.has(key)) {
        this.missingReported.add(key);
        this.emit('warn', `BlueNova console cycle without ${cycle.missing.join(', ')} lines: published without them`);
      }
    }
    for (const l of this.snapshotListeners) {
      try {
        l(cycle.snapshot);
      } catch (e) {
        this.emit('error', `snapshot listener failed: ${errorMessage(e)}`);
      }
    }
  }

  /** The last complete cycle (tests, status). */
  get last(): BlueNovaCycle | undefined {
    return this.lastCycle;
  }
}
