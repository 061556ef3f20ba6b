/**
 * Test helpers around real pseudo-terminals: unique link paths, and polling for a condition instead of
 * sleeping for a fixed time (keeps tests fast and not flaky).
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availablePtyBackends, createPtyPair, type PtyOptions, type PtyPair } from '../../src/sim/pty.js';

export { availablePtyBackends, createPtyPair, type PtyPair };

/** A fresh directory name for symlinks; remove it with {@link removeDir}. */
export function tempLinkDir(): string {
  return join(tmpdir(), `bb-pty-${process.pid}-${randomBytes(4).toString('hex')}`);
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Pairs created through {@link openPair} and not yet closed; {@link closeAllPairs} cleans up after a test. */
const open = new Set<PtyPair>();

export async function openPair(opts: PtyOptions = {}): Promise<PtyPair> {
  const pair = await createPtyPair(opts);
  open.add(pair);
  return pair;
}

export async function closeAllPairs(): Promise<void> {
  const pairs = [...open];
  open.clear();
  await Promise.all(pairs.map((p) => p.close()));
}

/** Resolve with the first truthy value of `check()`; reject naming `what` after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | undefined | null | false | 0 | '',
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Collects byte chunks and lets a test wait until at least `n` bytes have arrived. */
export class ByteSink {
  private chunks: Uint8Array[] = [];
  readonly push = (chunk: Uint8Array): void => {
    this.chunks.push(chunk.slice());
  };
  get length(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let i = 0;
    for (const c of this.chunks) {
      out.set(c, i);
      i += c.length;
    }
    return out;
  }
  clear(): void {
    this.chunks = [];
  }
  async waitFor(n: number, timeoutMs = 2000): Promise<Uint8Array> {
    await waitFor(() => this.length >= n, timeoutMs, `${n} bytes (have ${this.length})`);
    return this.bytes();
  }
}
