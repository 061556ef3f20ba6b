/**
 * The capture tap of one battery: its driver's frames, snapshots and events into a CaptureWriter, each received
 * frame with a short decoded summary from the `batterybank decode` decoders (src/cli/decode.ts).
 */
import type { BmsDriver } from '../bms/driver.js';
import { toHex } from '../bytes/hex.js';
import { DECODE_FAMILIES, decodeHex, TEXT_FAMILIES } from '../cli/decode.js';
import type { BatteryConfig } from '../config.js';
import type { CaptureFrame, CaptureHeader, CaptureLinkKind, CaptureWriter } from './capture-file.js';

/** The battery as its header records it. */
export type CaptureTapOptions = Omit<CaptureHeader, 'k' | 'v' | 'session' | 'part' | 't'>;

/** The kind of link a battery's frames travel on, by its config. */
export function linkKindOf(cfg: BatteryConfig): CaptureLinkKind {
  return cfg.net ? 'ws' : cfg.ble ? 'ble' : cfg.can ? 'can' : 'serial';
}

/** What decode fields a summary keeps: enough to read a capture by eye, never a whole record. */
const SUMMARY_KEYS = [
  'register',
  'kind',
  'address',
  'cid2',
  'status',
  'type',
  'voltage',
  'current',
  'soc',
  'frame',
  'line',
  'index',
  'value',
  'text',
  'error',
] as const;

function condense(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of SUMMARY_KEYS) if (record[k] !== undefined) out[k] = record[k];
  const cells = record.cellVoltages;
  if (Array.isArray(cells) && cells.length > 0) {
    const v = cells.filter((c): c is number => typeof c === 'number');
    out.cells = v.length;
    if (v.length > 0) {
      out.cellMin = Math.min(...v);
      out.cellMax = Math.max(...v);
    }
  }
  const values = record.values;
  if (values !== undefined) {
    const text = JSON.stringify(values);
    out.values = text.length > 200 ? `${text.slice(0, 197)}...` : values;
  }
  return out;
}

const DECODABLE = new Set(DECODE_FAMILIES);

/**
 * A short decode of one received frame of `family` (serial/BLE hex, or CAN cansend text); undefined for a family
 * `batterybank decode` does not know. A frame that does not decode gives `{ error }`: that is the interesting part.
 */
export function summarizeFrame(
  family: string,
  frame: { hex?: string; can?: string },
): Record<string, unknown> | undefined {
  if (!DECODABLE.has(family)) return undefined;
  // Console families were captured as the hex of their UTF-8 text: decode the text.
  const input =
    frame.can ?? (TEXT_FAMILIES.has(family) && frame.hex ? Buffer.from(frame.hex, 'hex').toString('utf8') : frame.hex);
  if (input === undefined || input === '') return undefined;
  try {
    const { records, error } = decodeHex(family, [input]);
    const parts = records.map((r) => condense(r));
    const out: Record<string, unknown> = parts.length === 1 ? (parts[0] as Record<string, unknown>) : { frames: parts };
    if (error !== undefined) out.error = error;
    return out;
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Write the battery's header, then every frame, snapshot and event of `driver` to `writer`. */
export function attachCapture(writer: CaptureWriter, driver: BmsDriver, opts: CaptureTapOptions): void {
  writer.addHeader(opts);
  const b = opts.battery;
  const can = opts.link.kind === 'can';
  const text = new TextDecoder();
  driver.onFrame?.((f) => {
    // CAN drivers hand out the frame in cansend notation (ASCII), which keeps id, ext and data.
    const rec: CaptureFrame = can
      ? { k: 'f', t: f.time, b, d: f.direction, can: text.decode(f.bytes) }
      : { k: 'f', t: f.time, b, d: f.direction, hex: toHex(f.bytes, '').toLowerCase() };
    if (f.request !== undefined) rec.req = f.request.toLowerCase();
    if (f.direction === 'rx') {
      const sum = summarizeFrame(opts.family, rec.can !== undefined ? { can: rec.can } : { hex: rec.hex ?? '' });
      if (sum !== undefined) rec.sum = sum;
    }
    writer.record(rec);
  });
  driver.onSnapshot((s) => writer.record({ k: 's', t: s.timestampMs, b, snap: s }));
  driver.onEvent((e) => writer.record({ k: 'e', t: Date.now(), b, level: e.level, msg: e.message }));
}
