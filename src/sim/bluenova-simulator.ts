/**
 * Simulated BlueNova batteries: one local websocket server per unit (path /ws/, as the battery's Pi serves
 * it), each printing console lines built from the parser's rule table (src/bms/bluenova/protocol.ts) — no
 * real capture exists, so these are the documented shapes, not a recording.
 *
 *   per unit: WebSocketServer 127.0.0.1:<port>/ws/ ─ every cycleMs, to every client, one message per line:
 *     System_State, Breaker, Charge State, Errors, CellCount, C01…Cnn, Vpack, Current, Temp, Vc_max, Vc_min,
 *     SOC, SOH, Vp_adc, DEBUG: ADC[0…4]
 *   on connect and every identityEvery cycles: MCU ID, --- PO PARAMS --- (i=N), after assignRank() --> own rank
 *   every energyEvery cycles: DEBUG: CALC PACK_CHARGE…, Write EnergyOut: <out>, Write EnergyOut: <in>
 *
 * Values are settable per unit; connections can be dropped and a server stopped and restarted on its port.
 */
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { formatLine, type LineValues } from '../bms/bluenova/protocol.js';
import type { Random } from './random.js';

export interface BlueNovaUnitValues {
  mcuId: number;
  /** Cell voltages, V (their count is CellCount). */
  cells: number[];
  /** Cell temperatures, °C (one per cell; missing ones repeat `temperature`). */
  cellTemperatures: number[];
  /** Pack voltage, V; undefined = the sum of the cells. */
  packVoltage: number | undefined;
  /** As printed on the console (the driver applies current_sign). */
  current: number;
  temperature: number;
  soc: number;
  soh: number;
  errors: string;
  systemState: string;
  breaker: string;
  chargeState: string;
  energyIn: number;
  energyOut: number;
  adcVp: number;
  /** ADC_0…ADC_4, V. */
  adc: number[];
}

export interface BlueNovaSimulatorOptions {
  /** One entry per unit (rank = position + 1); each unit gets a server of its own. Default one unit. */
  units?: Partial<BlueNovaUnitValues>[];
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** One port per unit; 0 or missing = any free port. */
  ports?: number[];
  /** Time between two console cycles, ms (default 1000; fast in tests). */
  cycleMs?: number;
  /** Reprint MCU ID, N_UNITS and rank every this many cycles (default 10; they are also sent on connect). */
  identityEvery?: number;
  /** Print the energy marker and the two energy lines every this many cycles (default 10). */
  energyEvery?: number;
  /** Send `Vc_max`/`Vc_min` (default true). */
  extremes?: boolean;
  /**
   * Let the values wander like a live battery's from cycle to cycle (current, cells, temperature, SoC from the
   * current); without it they stay exactly as set (tests compare them).
   */
  wander?: Random | undefined;
}

/** Capacity the wandering SoC integrates the current against, Ah. */
const WANDER_CAPACITY_AH = 100;

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** One cycle of noise on a unit's values (the simulate command's live look). */
function wanderStep(v: BlueNovaUnitValues, rnd: Random, cycleMs: number): void {
  v.current = Math.round(clamp(v.current + rnd.gaussian() * 0.4, -40, 40) * 100) / 100;
  const drift = v.current > 0 ? 0.0004 : v.current < 0 ? -0.0004 : 0;
  v.cells = v.cells.map((c) => Math.round(clamp(c + drift + rnd.gaussian() * 0.001, 3.0, 3.55) * 1000) / 1000);
  v.temperature = Math.round(clamp(v.temperature + rnd.gaussian() * 0.3, 5, 45));
  v.soc = Math.round(clamp(v.soc + ((v.current * cycleMs) / 3_600_000 / WANDER_CAPACITY_AH) * 100, 1, 100) * 10) / 10;
}

const DEFAULTS: BlueNovaUnitValues = {
  mcuId: 0x1a2b3c4d,
  cells: Array.from({ length: 16 }, (_, i) => 3.3 + (i % 4) * 0.002),
  cellTemperatures: [],
  packVoltage: undefined,
  current: 5.5,
  temperature: 24,
  soc: 80,
  soh: 99.5,
  errors: 'None',
  systemState: 'RUNNING',
  breaker: 'CLOSED',
  chargeState: 'Bulk',
  energyIn: 1234.5,
  energyOut: 987.25,
  adcVp: 52.9,
  adc: [1.65, 1.2, 0.8, 2.5, 3.1],
};

interface Unit {
  values: BlueNovaUnitValues;
  port: number;
  server: WebSocketServer | undefined;
  clients: Set<WebSocket>;
  cycle: number;
  /** Lines sent once at the start of the next cycle (tests: unknown lines, counters). */
  injected: string[];
}

export class BlueNovaSimulator {
  private readonly units: Unit[];
  private readonly host: string;
  private readonly cycleMs: number;
  private readonly identityEvery: number;
  private readonly energyEvery: number;
  private readonly extremes: boolean;
  private timer: NodeJS.Timeout | undefined;
  private paused = false;
  private readonly wander: Random | undefined;

  constructor(opts: BlueNovaSimulatorOptions = {}) {
    const units = opts.units ?? [{}];
    if (units.length === 0) throw new RangeError('a BlueNova simulator needs at least one unit');
    this.host = opts.host ?? '127.0.0.1';
    this.cycleMs = opts.cycleMs ?? 1000;
    this.identityEvery = Math.max(1, opts.identityEvery ?? 10);
    this.energyEvery = Math.max(1, opts.energyEvery ?? 10);
    this.extremes = opts.extremes ?? true;
    this.wander = opts.wander;
    this.units = units.map((u, i) => ({
      values: { ...DEFAULTS, mcuId: DEFAULTS.mcuId + i, ...u },
      port: opts.ports?.[i] ?? 0,
      server: undefined,
      clients: new Set(),
      cycle: 0,
      injected: [],
    }));
  }

  /** Number of units. */
  get size(): number {
    return this.units.length;
  }

  /** Listen on every unit's port and start the console cycles. Resolves with the unit URLs. */
  async start(): Promise<string[]> {
    for (let i = 0; i < this.units.length; i++) await this.startServer(i);
    if (this.timer === undefined) this.timer = setInterval(() => this.tick(), this.cycleMs);
    return this.urls();
  }

  /** `ws://host:port/ws/` of every unit. */
  urls(): string[] {
    return this.units.map((u) => `ws://${this.host}:${u.port}/ws/`);
  }

  url(unit = 0): string {
    return this.urls()[unit] as string;
  }

  /** Change a unit's values (from the next cycle). */
  setValues(unit: number, values: Partial<BlueNovaUnitValues>): void {
    const u = this.unit(unit);
    u.values = { ...u.values, ...values };
  }

  values(unit = 0): Readonly<BlueNovaUnitValues> {
    return this.unit(unit).values;
  }

  /** Send these raw lines to a unit's clients at the start of the next cycle. */
  inject(unit: number, ...lines: string[]): void {
    this.unit(unit).injected.push(...lines);
  }

  /** Stop (true) or resume (false) every console: clients stay connected and hear nothing. */
  pause(paused: boolean): void {
    this.paused = paused;
  }

  /** Clients connected to a unit now. */
  connections(unit = 0): number {
    return this.unit(unit).clients.size;
  }

  /** Cut every client of a unit (or of all units) without a closing handshake, as a lost network does. */
  dropConnections(unit?: number): void {
    for (const u of unit === undefined ? this.units : [this.unit(unit)]) {
      for (const c of u.clients) c.terminate();
      u.clients.clear();
    }
  }

  /** Stop a unit's server (its clients are cut); its port is kept for restartServer. */
  async stopServer(unit = 0): Promise<void> {
    const u = this.unit(unit);
    const server = u.server;
    u.server = undefined;
    for (const c of u.clients) c.terminate();
    u.clients.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  /** Listen again on the unit's port. */
  restartServer(unit = 0): Promise<void> {
    return this.startServer(unit);
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (let i = 0; i < this.units.length; i++) await this.stopServer(i);
  }

  /** Every line of one console cycle of a unit, in order (what tick() sends; public for tests). */
  cycleLines(unit = 0): string[] {
    const u = this.unit(unit);
    const v = u.values;
    const lines: string[] = [];
    const add = <K extends keyof LineValues>(key: K, value: LineValues[K], index?: number) =>
      lines.push(formatLine(key, value, index));
    if (u.cycle % this.identityEvery === 0) lines.push(...this.identityLines(unit));
    add('systemState', v.systemState);
    add('breaker', v.breaker);
    add('chargeState', v.chargeState);
    add('errors', v.errors);
    add('cellCount', v.cells.length);
    v.cells.forEach((voltage, i) => {
      add('cell', { temperature: v.cellTemperatures[i] ?? v.temperature, voltage }, i + 1);
    });
    add('packVoltage', v.packVoltage ?? v.cells.reduce((a, b) => a + b, 0));
    add('current', v.current);
    add('temperature', v.temperature);
    if (this.extremes && v.cells.length > 0) {
      add('cellVoltageMax', Math.max(...v.cells));
      add('cellVoltageMin', Math.min(...v.cells));
    }
    add('soc', v.soc);
    add('soh', v.soh);
    add('adcVp', v.adcVp);
    v.adc.slice(0, 5).forEach((voltage, i) => {
      add('adc', { raw: Math.round((voltage / 3.3) * 4095), voltage }, i);
    });
    if (u.cycle % this.energyEvery === this.energyEvery - 1 || this.energyEvery === 1) {
      add('energyMarker', true);
      add('energy', v.energyOut);
      add('energy', v.energyIn);
    }
    return lines;
  }

  private identityLines(unit: number): string[] {
    const v = this.unit(unit).values;
    return [formatLine('mcuId', v.mcuId), formatLine('units', this.units.length), formatLine('rank', unit + 1)];
  }

  private unit(i: number): Unit {
    const u = this.units[i];
    if (u === undefined) throw new RangeError(`no unit ${i} (${this.units.length} units)`);
    return u;
  }

  private startServer(i: number): Promise<void> {
    const u = this.unit(i);
    if (u.server !== undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const server = new WebSocketServer({ host: this.host, port: u.port, path: '/ws/', perMessageDeflate: false });
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        server.on('error', () => undefined);
        u.port = (server.address() as AddressInfo).port;
        u.server = server;
        resolve();
      });
      server.on('connection', (ws) => {
        u.clients.add(ws);
        ws.on('error', () => undefined);
        ws.on('close', () => u.clients.delete(ws));
        // A battery that has just booted prints who it is; a monitor connecting later sees it on connect here.
        if (!this.paused) for (const line of this.identityLines(i)) send(ws, line);
      });
    });
  }

  private tick(): void {
    if (this.paused) return;
    this.units.forEach((u, i) => {
      if (u.server === undefined) return;
      if (this.wander && u.cycle > 0) wanderStep(u.values, this.wander, this.cycleMs);
      const lines = [...u.injected.splice(0), ...this.cycleLines(i)];
      u.cycle++;
      for (const ws of u.clients) for (const line of lines) send(ws, line);
    });
  }
}

function send(ws: WebSocket, line: string): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  try {
    ws.send(line);
  } catch {
    // a client gone mid-cycle
  }
}
