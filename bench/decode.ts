/**
 * Section 1: pure protocol throughput, in this process, no I/O.
 *
 * - the decode path of one 0x03 reply exactly as the driver runs it (decodeFrame → requirePayload →
 *   decodeBasicInfo → toSnapshot), on a real UART capture;
 * - the incremental framer on a stream of real 0x03 + 0x04 replies cut into random chunks (what serial reads
 *   deliver), counting frames out.
 */
import { performance } from 'node:perf_hooks';
import {
  decodeBasicInfo,
  decodeFrame,
  JbdFramer,
  JbdRegister,
  requirePayload,
  toSnapshot,
} from '../src/bms/jbd/protocol.js';
import { createRandom } from '../src/sim/random.js';

/** Real 0x03 reply of a 4S pack (15.60 V, 100 %, 3 NTC). */
export const BASIC_INFO_FRAME =
  'DD 03 00 1D 06 18 00 00 01 F2 01 F4 00 00 2C 7C 00 00 00 00 00 00 80 64 03 04 03 0B 8B 0B 8A 0B 84 FA 8D 77';
/** Real 0x04 reply of a 4S JBD-SP04S034 (test/fixtures/jbd/JBD-SP04S034-L4S-200A-B-U.txt). */
export const CELL_FRAME = 'DD 04 00 08 0F 45 0F 3D 0F 37 0F 3D FE C6 77';

export interface RateResult {
  name: string;
  detail: string;
  iterations: number;
  seconds: number;
  framesPerSecond: number;
  nsPerFrame: number;
}

export function hexBytes(hex: string): Uint8Array {
  const clean = hex.replace(/[^0-9a-fA-F]/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Keeps results observable so the JIT cannot drop the work. */
let sink = 0;

function decodeOnce(frame: Uint8Array, ts: number): void {
  const basic = decodeBasicInfo(requirePayload(decodeFrame(frame), JbdRegister.basicInfo));
  const s = toSnapshot({ basic }, ts);
  sink += (s.voltage ?? 0) + (s.balancing?.length ?? 0);
}

function rate(name: string, detail: string, frames: number, ms: number): RateResult {
  return {
    name,
    detail,
    iterations: frames,
    seconds: ms / 1000,
    framesPerSecond: frames / (ms / 1000),
    nsPerFrame: (ms * 1e6) / frames,
  };
}

export function benchBasicInfoDecode(iterations: number): RateResult {
  const frame = hexBytes(BASIC_INFO_FRAME);
  // The figure is only worth something if the frame really decodes: throw otherwise.
  const check = toSnapshot({ basic: decodeBasicInfo(requirePayload(decodeFrame(frame), JbdRegister.basicInfo)) }, 0);
  if (check.voltage !== 15.6 || check.cellCount !== 4)
    throw new Error('bench: the 0x03 frame did not decode as 15.6 V 4S');
  const ts = Date.now();
  for (let i = 0; i < Math.min(50_000, iterations); i++) decodeOnce(frame, ts); // warm-up (JIT)
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) decodeOnce(frame, ts);
  const ms = performance.now() - t0;
  return rate('0x03 decode', 'decodeFrame → decodeBasicInfo → toSnapshot, real 36-byte frame', iterations, ms);
}

/** A stream of `pairs` × (0x03 + 0x04) cut into chunks of minChunk–maxChunk bytes (seeded). */
function chunkedStream(pairs: number, minChunk: number, maxChunk: number): Uint8Array[] {
  const a = hexBytes(BASIC_INFO_FRAME);
  const b = hexBytes(CELL_FRAME);
  const stream = new Uint8Array(pairs * (a.length + b.length));
  let o = 0;
  for (let i = 0; i < pairs; i++) {
    stream.set(a, o);
    o += a.length;
    stream.set(b, o);
    o += b.length;
  }
  const rnd = createRandom(0x5eed);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < stream.length; ) {
    const n = Math.min(rnd.int(minChunk, maxChunk), stream.length - i);
    chunks.push(stream.slice(i, i + n));
    i += n;
  }
  return chunks;
}

export function benchFramer(iterations: number, minChunk: number, maxChunk: number): RateResult {
  const pairs = 1000; // 2000 frames, 51 000 bytes per pass
  const framesPerPass = 2 * pairs;
  const chunks = chunkedStream(pairs, minChunk, maxChunk);
  const framer = new JbdFramer();
  const pass = (): number => {
    let n = 0;
    for (const c of chunks) {
      const out = framer.push(c);
      n += out.length;
      for (const f of out) sink += f.length;
    }
    return n;
  };
  const got = pass();
  if (got !== framesPerPass || framer.pending !== 0 || framer.discarded !== 0) {
    throw new Error(`bench: framer returned ${got} of ${framesPerPass} frames`);
  }
  const passes = Math.max(1, Math.round(iterations / framesPerPass));
  for (let i = 0; i < Math.min(passes, 25); i++) pass(); // warm-up (JIT)
  let frames = 0;
  const t0 = performance.now();
  for (let i = 0; i < passes; i++) frames += pass();
  const ms = performance.now() - t0;
  return rate(
    `framer ${minChunk}–${maxChunk} B chunks`,
    `JbdFramer.push on a 0x03 + 0x04 stream in random ${minChunk}–${maxChunk} byte chunks`,
    frames,
    ms,
  );
}

export function benchDecode(iterations: number): RateResult[] {
  const results = [benchBasicInfoDecode(iterations), benchFramer(iterations, 1, 64), benchFramer(iterations, 1, 8)];
  if (sink === Number.NEGATIVE_INFINITY) process.stdout.write(''); // use the sink
  return results;
}
