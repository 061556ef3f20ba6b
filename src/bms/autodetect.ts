/**
 * Which BMS is on this serial port? Autodetection over the protocol modules (no drivers, no registry).
 *
 * Two tables drive it, and the I/O loop is small:
 * - {@link CANDIDATES}: the order of the scan, one row per family and baud rate with its reply timeout, most
 *   likely first (users report JK 68 %, JBD 13 %, Daly 12 %; rack batteries speak Pylontech or Seplos);
 * - `PROTOCOLS`: per family, the identifying request, the framer, the acceptance test (the family's `probe()` and
 *   its decoder must both accept the frame, and the reply must come from the address asked), the identity carried
 *   by the reply, and an optional follow-up request for the model / serial.
 *
 * For each attempt (a row, and for addressed families one address) the port is opened at the row's baud rate (a
 * link stays open across consecutive attempts at the same rate), the request is sent, and the bytes that arrive
 * within the row's timeout go through that family's framer; the first frame the family accepts is a hit. A reply of
 * another family, an echo of our request, line noise or a late reply to an earlier attempt is rejected by the
 * acceptance test, so a family is never mistaken for another. The scan stops at the first hit unless
 * `allAddresses` is set; then it goes on through the other addresses of the family and baud rate that answered.
 *
 * With a {@link DetectCache}, what was found on a port is remembered (`autodetect-cache.json` next to the config):
 * the next start tries exactly that first and is done after one request; a cached entry that gets no answer falls
 * back to the full scan.
 *
 * Side effects on a bus: the JK-PB probe is the vendor master's trigger write (FC 0x10, one zero register at 0x1620),
 * which a device at that Modbus address that is not a JK-PB would take as a write. Every other probe is a read.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errorMessage, LinkError, TimeoutError } from '../domain/errors.js';
import type { Link } from '../links/link.js';
import { type Framer, RequestChannel } from '../links/request.js';
import { SerialLink } from '../links/serial-link.js';
import * as daly from './daly/protocol.js';
import * as jbd from './jbd/protocol.js';
import * as jkModbus from './jk-modbus/protocol.js';
import * as jkSerial from './jk-serial/protocol.js';
import * as pylon from './pylon-rs485/protocol.js';
import * as pylontech from './pylon-rs485/pylontech.js';
import * as seplos from './pylon-rs485/seplos.js';

/** Families autodetection knows, as `protocol =` values. */
export const DETECT_FAMILIES = ['jk-serial', 'jk-modbus', 'jbd', 'daly', 'pylontech', 'seplos'] as const;
export type DetectFamily = (typeof DETECT_FAMILIES)[number];

/** A BMS that answered. */
export interface Detection {
  family: DetectFamily;
  baudRate: number;
  /** Bus address, for the addressed families (jk-modbus, pylontech, seplos). */
  address?: number;
  model?: string;
  serial?: string;
  /** From the start of {@link detectOnPort} until this BMS was identified, ms. */
  elapsedMs: number;
}

/** One row of the scan order. */
export interface CandidateRow {
  family: DetectFamily;
  baudRate: number;
  /** Reply timeout of the identifying request, ms: wire time of request and reply at this rate plus the BMS's turnaround. */
  timeoutMs: number;
}

/**
 * The scan order, most likely first. Timeouts: wire time at the row's rate (bytes × 10 / baud, see
 * docs/autodetect.md) plus the turnaround the family's documents and public implementations allow; 2.15 s for
 * all rows together, so a present BMS of any family is found within 3 s of a cold start.
 */
export const CANDIDATES: readonly CandidateRow[] = [
  { family: 'jk-serial', baudRate: 115200, timeoutMs: 300 },
  { family: 'jk-modbus', baudRate: 115200, timeoutMs: 250 },
  { family: 'jbd', baudRate: 9600, timeoutMs: 250 },
  { family: 'daly', baudRate: 9600, timeoutMs: 200 },
  { family: 'pylontech', baudRate: 115200, timeoutMs: 250 },
  { family: 'pylontech', baudRate: 9600, timeoutMs: 400 },
  { family: 'seplos', baudRate: 9600, timeoutMs: 500 },
];

/** A family's usual baud rate (its first row): `baud_rate` need not be configured when it is this. */
export function defaultBaudRate(family: DetectFamily): number {
  return (CANDIDATES.find((c) => c.family === family) as CandidateRow).baudRate;
}

interface Identity {
  model?: string | undefined;
  serial?: string | undefined;
}

/** One request / reply exchange of a family. Functions never throw. */
interface Exchange {
  request(address: number | undefined): Uint8Array;
  /** Is `frame` this family's answer to request(address)? */
  accept(frame: Uint8Array, address: number | undefined): boolean;
  /** What the accepted reply says about the BMS. */
  identity(frame: Uint8Array): Identity;
}

interface FamilyProtocol {
  /** Addressed families: the address tried by default and the range `allAddresses` walks. */
  addressing?: { first: number; min: number; max: number };
  framer(): Framer;
  /** The request that tells the family apart. */
  identify: Exchange;
  /** A follow-up read for model / serial, sent only after a hit; its failure costs nothing but the identity. */
  details?: Exchange;
}

/** A never-throwing predicate. */
function safely(test: () => boolean): boolean {
  try {
    return test();
  } catch {
    return false;
  }
}

function safeIdentity(read: () => Identity): Identity {
  try {
    return read();
  } catch {
    return {};
  }
}

/** Trimmed text, or undefined when nothing printable is left. */
function text(s: string | undefined): string | undefined {
  const t = s
    ?.replace(/[^\x20-\x7e]/g, '')
    .replace(/_+$/, '')
    .trim();
  return t ? t : undefined;
}

const noIdentity = (): Identity => ({});

/** Pylontech / Seplos 0x51: the device name, from the pack asked. */
function pylonManufacturerInfo(info: (address: number) => Uint8Array): Exchange {
  return {
    request: (address) =>
      pylon.encodeRequest({
        address: address ?? 0,
        command: pylon.PylonCommand.manufacturerInfo,
        info: info(address ?? 0),
      }),
    accept: (frame, address) =>
      safely(() => {
        const f = pylon.decodeFrame(frame);
        return f.address === address && f.cid1 === pylon.PYLON_CID1_LFP && f.cid2 === 0 && f.info.length === 32;
      }),
    identity: (frame) =>
      safeIdentity(() => ({ model: text(pylon.decodeManufacturerInfo(pylon.decodeFrame(frame).info).deviceName) })),
  };
}

const PROTOCOLS: Readonly<Record<DetectFamily, FamilyProtocol>> = {
  'jk-serial': {
    framer: () => new jkSerial.JkSerialFramer(),
    identify: {
      request: () => jkSerial.encodeReadAllRequest(),
      accept: (frame) =>
        jkSerial.probe(frame) && safely(() => jkSerial.decodeReadAllReply(frame).cellVoltages.length > 0),
      identity: (frame) =>
        safeIdentity(() => {
          const s = jkSerial.decodeReadAllReply(frame);
          return { model: text(s.deviceId), serial: text(s.manufacturerId) };
        }),
    },
  },
  'jk-modbus': {
    addressing: { first: 1, min: 1, max: jkModbus.JK_PB_MAX_ADDRESS },
    framer: () => new jkModbus.JkPbFramer(),
    // The status trigger is what the driver polls; the about record (model, serial) follows as details.
    identify: {
      request: (address) => jkModbus.encodeTriggerRequest(address ?? 1, jkModbus.JkPbTrigger.status),
      accept: (frame, address) =>
        jkModbus.probe(frame) && jkModbus.isTriggerReply(frame, address ?? 1, jkModbus.JkPbTrigger.status),
      identity: noIdentity,
    },
    details: {
      request: (address) => jkModbus.encodeTriggerRequest(address ?? 1, jkModbus.JkPbTrigger.about),
      accept: (frame, address) => jkModbus.isTriggerReply(frame, address ?? 1, jkModbus.JkPbTrigger.about),
      identity: (frame) =>
        safeIdentity(() => {
          const f = jkModbus.decodeFrame(frame);
          if (f.kind !== 'reply' || f.record.type !== 'device-info') return {};
          return { model: text(f.record.deviceInfo.model), serial: text(f.record.deviceInfo.serialNumber) };
        }),
    },
  },
  jbd: {
    framer: () => new jbd.JbdFramer(),
    identify: {
      request: () => jbd.encodeReadRequest(jbd.JbdRegister.basicInfo),
      accept: (frame) =>
        safely(() => {
          const basic = jbd.decodeBasicInfo(jbd.requirePayload(jbd.decodeFrame(frame), jbd.JbdRegister.basicInfo));
          return basic.cellCount >= 1 && basic.cellCount <= 32;
        }),
      identity: noIdentity,
    },
    details: {
      request: () => jbd.encodeReadRequest(jbd.JbdRegister.hardwareVersion),
      accept: (frame) =>
        safely(() => {
          jbd.requirePayload(jbd.decodeFrame(frame), jbd.JbdRegister.hardwareVersion);
          return true;
        }),
      identity: (frame) =>
        safeIdentity(() => ({
          model: text(
            jbd.decodeHardwareVersion(jbd.requirePayload(jbd.decodeFrame(frame), jbd.JbdRegister.hardwareVersion)),
          ),
        })),
    },
  },
  daly: {
    framer: () => new daly.DalyFramer(),
    identify: {
      request: () => daly.encodeRequest(daly.DalyCommand.packStatus),
      accept: (frame) =>
        daly.probe(frame) &&
        safely(() => {
          daly.decodePackStatus(daly.requirePayload(daly.decodeReplyFrame(frame), daly.DalyCommand.packStatus));
          return true;
        }),
      // The classic ids carry no model or serial.
      identity: noIdentity,
    },
  },
  pylontech: {
    addressing: { first: pylontech.PYLONTECH_FIRST_ADDRESS, min: 2, max: 17 },
    framer: () => new pylon.PylonFramer(),
    identify: {
      request: (address) =>
        pylon.encodeRequest({
          address: address ?? pylontech.PYLONTECH_FIRST_ADDRESS,
          command: pylon.PylonCommand.analogValues,
          info: pylontech.requestInfo(pylon.PylonCommand.analogValues, address ?? pylontech.PYLONTECH_FIRST_ADDRESS),
        }),
      accept: (frame, address) =>
        pylontech.probe(frame) &&
        safely(() => {
          const f = pylon.decodeFrame(frame);
          const analog = pylontech.decodeAnalogValues(f.info, 'single');
          return f.address === address && analog.consumed === f.info.length;
        }),
      identity: noIdentity,
    },
    details: pylonManufacturerInfo((address) => pylontech.requestInfo(pylon.PylonCommand.manufacturerInfo, address)),
  },
  seplos: {
    addressing: { first: 0, min: 0, max: 15 },
    framer: () => new pylon.PylonFramer(),
    identify: {
      request: (address) =>
        pylon.encodeRequest({
          address: address ?? 0,
          command: pylon.PylonCommand.analogValues,
          info: seplos.requestInfo(pylon.PylonCommand.analogValues, address ?? 0),
        }),
      accept: (frame, address) =>
        seplos.probe(frame) &&
        safely(() => {
          const f = pylon.decodeFrame(frame);
          const t = seplos.decodeTelemetry(f.info);
          return f.address === address && t.consumed === f.info.length && t.portVoltage !== undefined;
        }),
      identity: noIdentity,
    },
    details: pylonManufacturerInfo((address) => seplos.requestInfo(pylon.PylonCommand.manufacturerInfo, address)),
  },
};

/** One request of the scan: a family at a baud rate (and address). */
export interface DetectAttempt {
  family: DetectFamily;
  baudRate: number;
  timeoutMs: number;
  address?: number;
  /** Taken from the cache rather than the scan order. */
  cached: boolean;
}

/** What {@link DetectOptions.onAttempt} is told after each attempt. */
export interface AttemptReport extends DetectAttempt {
  answered: boolean;
  /** This attempt's own duration, ms. */
  durationMs: number;
}

/** Options of {@link planAttempts}. */
export interface PlanOptions {
  /** Only these families (default all, in scan order). */
  families?: readonly string[];
  /** Bus addresses for the addressed families, in order (each family skips those outside its range). */
  addresses?: readonly number[];
  /** Without `addresses`: walk each addressed family's whole range instead of its first address. */
  allAddresses?: boolean;
}

function checkFamilies(families: readonly string[] | undefined): ReadonlySet<string> | undefined {
  if (families === undefined) return undefined;
  for (const f of families) {
    if (!(DETECT_FAMILIES as readonly string[]).includes(f)) {
      throw new RangeError(`unknown BMS family "${f}" (known: ${DETECT_FAMILIES.join(', ')})`);
    }
  }
  return new Set(families);
}

/** The attempts of a full scan, in order. Pure. Throws RangeError for an unknown family. */
export function planAttempts(opts: PlanOptions = {}): DetectAttempt[] {
  const only = checkFamilies(opts.families);
  const out: DetectAttempt[] = [];
  for (const row of CANDIDATES) {
    if (only !== undefined && !only.has(row.family)) continue;
    const addressing = PROTOCOLS[row.family].addressing;
    if (addressing === undefined) {
      out.push({ ...row, cached: false });
      continue;
    }
    const { first, min, max } = addressing;
    const range = [first, ...Array.from({ length: max - min + 1 }, (_, i) => min + i).filter((a) => a !== first)];
    const addresses =
      opts.addresses !== undefined
        ? opts.addresses.filter((a) => Number.isInteger(a) && a >= min && a <= max)
        : opts.allAddresses
          ? range
          : [first];
    for (const address of new Set(addresses)) out.push({ ...row, address, cached: false });
  }
  return out;
}

/** Options of {@link detectOnPort}. */
export interface DetectOptions extends PlanOptions {
  /** Serial device. */
  path: string;
  /** Remembers what was found per port; tried first next time. Not used with `allAddresses`. */
  cache?: DetectCache;
  /**
   * Give up after this long, ms (default 10 s, 60 s with `allAddresses`): no attempt starts after it, and the last
   * one's timeout is cut to it.
   */
  timeBudgetMs?: number;
  /** How to open the port at a baud rate (default: a SerialLink). */
  openLink?: (path: string, baudRate: number) => Link<Uint8Array>;
  /** Told after every attempt (for the probe command's listing and for tests). */
  onAttempt?: (report: AttemptReport) => void;
}

/**
 * Find the BMS on `path`. Resolves with what answered (empty when nothing did); rejects with a LinkError when the
 * port cannot be opened.
 */
export async function detectOnPort(opts: DetectOptions): Promise<Detection[]> {
  const started = performance.now();
  const budget = opts.timeBudgetMs ?? (opts.allAddresses ? 60_000 : 10_000);
  const scan = planAttempts(opts);
  const port = new PortSession(opts.path, opts.openLink ?? ((path, baudRate) => new SerialLink({ path, baudRate })));
  const run = (attempts: readonly DetectAttempt[]) =>
    runAttempts(port, attempts, {
      started,
      deadline: started + budget,
      allAddresses: opts.allAddresses === true,
      ...(opts.onAttempt !== undefined ? { onAttempt: opts.onAttempt } : {}),
    });
  try {
    const cached = opts.allAddresses ? [] : cachedAttempts(opts.cache?.get(opts.path), scan);
    if (cached.length > 0) {
      const hits = await run(cached);
      if (hits.length > 0) return hits;
    }
    const hits = await run(scan);
    if (hits.length > 0 && opts.cache !== undefined) {
      opts.cache.set(opts.path, hits);
      // A cache that cannot be written (read-only file system) only costs the next start a full scan.
      await opts.cache.save().catch(() => undefined);
    }
    return hits;
  } finally {
    await port.close();
  }
}

/** Cached entries still allowed by the options, as attempts with their row's timeout. */
function cachedAttempts(
  entries: readonly CachedDetection[] | undefined,
  scan: readonly DetectAttempt[],
): DetectAttempt[] {
  const out: DetectAttempt[] = [];
  for (const e of entries ?? []) {
    const row = scan.find((a) => a.family === e.family && a.baudRate === e.baudRate);
    if (row === undefined) continue;
    const addressed = PROTOCOLS[e.family].addressing !== undefined;
    if (addressed !== (e.address !== undefined)) continue;
    out.push({
      family: e.family,
      baudRate: e.baudRate,
      timeoutMs: row.timeoutMs,
      ...(e.address !== undefined ? { address: e.address } : {}),
      cached: true,
    });
  }
  return out;
}

interface RunContext {
  started: number;
  deadline: number;
  allAddresses: boolean;
  onAttempt?: (report: AttemptReport) => void;
}

async function runAttempts(
  port: PortSession,
  attempts: readonly DetectAttempt[],
  ctx: RunContext,
): Promise<Detection[]> {
  const hits: Detection[] = [];
  for (const attempt of attempts) {
    const first = hits[0];
    if (first !== undefined) {
      if (!ctx.allAddresses) break;
      // All addresses: only the family and rate that answered can have more packs on this line.
      if (attempt.family !== first.family || attempt.baudRate !== first.baudRate) continue;
    }
    const left = ctx.deadline - performance.now();
    if (left <= 0) break;
    const proto = PROTOCOLS[attempt.family];
    const { address } = attempt;
    const t0 = performance.now();
    const reply = await port.exchange(
      attempt.baudRate,
      proto.framer,
      proto.identify,
      address,
      Math.min(attempt.timeoutMs, left),
    );
    ctx.onAttempt?.({ ...attempt, answered: reply !== undefined, durationMs: Math.round(performance.now() - t0) });
    if (reply === undefined) continue;
    let identity = proto.identify.identity(reply);
    const detailsLeft = ctx.deadline - performance.now();
    if (proto.details !== undefined && detailsLeft > 0) {
      const more = await port.exchange(
        attempt.baudRate,
        proto.framer,
        proto.details,
        address,
        Math.min(attempt.timeoutMs, detailsLeft),
      );
      if (more !== undefined) identity = { ...identity, ...proto.details.identity(more) };
    }
    hits.push({
      family: attempt.family,
      baudRate: attempt.baudRate,
      ...(address !== undefined ? { address } : {}),
      ...(identity.model !== undefined ? { model: identity.model } : {}),
      ...(identity.serial !== undefined ? { serial: identity.serial } : {}),
      elapsedMs: Math.round(performance.now() - ctx.started),
    });
  }
  return hits;
}

/** Hands the bytes of one link to whichever family's framer the current attempt uses. */
class SwitchingFramer implements Framer {
  private current: Framer | undefined;
  use(framer: Framer): void {
    this.current = framer;
  }
  push(chunk: Uint8Array): Uint8Array[] {
    return this.current?.push(chunk) ?? [];
  }
  reset(): void {
    this.current?.reset();
  }
}

/** The port during one detection: one link open at a time, kept open across attempts at the same baud rate. */
class PortSession {
  private link: Link<Uint8Array> | undefined;
  private channel: RequestChannel | undefined;
  private baudRate = 0;
  private readonly framer = new SwitchingFramer();

  constructor(
    private readonly path: string,
    private readonly openLink: (path: string, baudRate: number) => Link<Uint8Array>,
  ) {}

  /**
   * One request with a fresh framer of the family; resolves with the accepted reply or undefined (timeout, or the
   * link failed a send: it is reopened for the next attempt). Rejects with LinkError when the port cannot be opened.
   */
  async exchange(
    baudRate: number,
    framer: () => Framer,
    exchange: Exchange,
    address: number | undefined,
    timeoutMs: number,
  ): Promise<Uint8Array | undefined> {
    const channel = await this.at(baudRate);
    this.framer.use(framer());
    try {
      return await channel.request(exchange.request(address), {
        timeoutMs,
        isReply: (frame) => exchange.accept(frame, address),
      });
    } catch (e) {
      if (e instanceof TimeoutError) return undefined;
      if (e instanceof LinkError) {
        await this.close();
        return undefined;
      }
      throw e;
    }
  }

  private async at(baudRate: number): Promise<RequestChannel> {
    if (this.channel !== undefined && this.link?.isOpen && this.baudRate === baudRate) return this.channel;
    await this.close();
    const link = this.openLink(this.path, baudRate);
    try {
      await link.open();
    } catch (e) {
      await link.close();
      throw e instanceof LinkError ? e : new LinkError(`cannot open ${this.path}: ${errorMessage(e)}`, { cause: e });
    }
    this.link = link;
    this.baudRate = baudRate;
    this.channel = new RequestChannel(link, this.framer);
    return this.channel;
  }

  async close(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    this.channel = undefined;
    if (link !== undefined) await link.close();
  }
}

// ---- cache ---------------------------------------------------------------------------------------------------------

/** What the cache keeps per port. */
export interface CachedDetection {
  family: DetectFamily;
  baudRate: number;
  address?: number;
  model?: string;
  serial?: string;
  /** ISO time of the scan that found it. */
  detectedAt: string;
}

/** File name of the cache, next to the config file. */
export const DETECT_CACHE_FILE = 'autodetect-cache.json';

interface CacheFile {
  version: 1;
  ports: Record<string, CachedDetection[]>;
}

/**
 * What was found on each port, kept in a JSON file (`{ "version": 1, "ports": { "/dev/ttyUSB0": [ … ] } }`). A
 * missing, unreadable or malformed file is an empty cache (it is a hint, never a source of truth); entries that do
 * not validate are dropped. Saves are written to a temporary file and renamed, one at a time.
 */
export class DetectCache {
  private ports = new Map<string, CachedDetection[]>();
  private saving: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  /** The cache that belongs next to `configFile`. */
  static forConfig(configFile: string): DetectCache {
    return new DetectCache(join(dirname(configFile), DETECT_CACHE_FILE));
  }

  /** Read the file (replacing what is in memory). Never rejects. */
  async load(): Promise<this> {
    this.ports = new Map();
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(this.file, 'utf8'));
    } catch {
      return this;
    }
    const ports = (parsed as Partial<CacheFile> | null)?.ports;
    if (typeof ports !== 'object' || ports === null) return this;
    for (const [port, entries] of Object.entries(ports)) {
      if (!Array.isArray(entries)) continue;
      const valid = entries.filter(isCachedDetection);
      if (valid.length > 0) this.ports.set(port, valid);
    }
    return this;
  }

  /** Write the file (creating its directory). Rejects when it cannot be written. */
  save(): Promise<void> {
    const body: CacheFile = { version: 1, ports: Object.fromEntries(this.ports) };
    const text = `${JSON.stringify(body, null, 2)}\n`;
    const write = async () => {
      await mkdir(dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, this.file);
    };
    const run = this.saving.then(write, write);
    this.saving = run.catch(() => undefined);
    return run;
  }

  get(port: string): readonly CachedDetection[] | undefined {
    return this.ports.get(port);
  }

  /** Remember `detections` for `port` (replacing what was there). */
  set(port: string, detections: readonly Detection[], now: Date = new Date()): void {
    this.ports.set(
      port,
      detections.map((d) => ({
        family: d.family,
        baudRate: d.baudRate,
        ...(d.address !== undefined ? { address: d.address } : {}),
        ...(d.model !== undefined ? { model: d.model } : {}),
        ...(d.serial !== undefined ? { serial: d.serial } : {}),
        detectedAt: now.toISOString(),
      })),
    );
  }

  delete(port: string): boolean {
    return this.ports.delete(port);
  }
}

function isCachedDetection(v: unknown): v is CachedDetection {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    (DETECT_FAMILIES as readonly unknown[]).includes(e['family']) &&
    Number.isInteger(e['baudRate']) &&
    (e['baudRate'] as number) > 0 &&
    (e['address'] === undefined || (Number.isInteger(e['address']) && (e['address'] as number) >= 0)) &&
    (e['model'] === undefined || typeof e['model'] === 'string') &&
    (e['serial'] === undefined || typeof e['serial'] === 'string') &&
    typeof e['detectedAt'] === 'string'
  );
}
