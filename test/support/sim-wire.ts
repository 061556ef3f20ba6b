/**
 * In-process helpers for simulator tests: a clock the test moves by hand, and a transport whose outgoing bytes go
 * through the family's real framer, as they do on the driver side.
 */
import type { SimTransport } from '../../src/sim/sim-device.js';

/** A clock that only moves when the test says so. */
export function manualClock(startMs = 1_700_000_000_000) {
  let t = startMs;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** In-process transport: what the simulator sends goes through `framer`, as on the driver side. */
export function wire<F extends { push(chunk: Uint8Array): Uint8Array[] }>(framer: F) {
  let listener: ((chunk: Uint8Array) => void) | undefined;
  const frames: Uint8Array[] = [];
  let chunks = 0;
  const transport: SimTransport = {
    send: (bytes) => {
      chunks++;
      frames.push(...framer.push(bytes));
    },
    onData: (l) => {
      listener = l;
    },
  };
  return {
    transport,
    frames,
    framer,
    get chunks() {
      return chunks;
    },
    request: (bytes: Uint8Array) => listener?.(bytes),
  };
}
