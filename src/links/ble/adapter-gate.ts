/**
 * One connection attempt at a time per adapter, starts spaced by `staggerMs`: controllers (and BlueZ) handle
 * one LE Create Connection at a time, and a bank of batteries that all start at once must not storm the adapter.
 */
export class AdapterGate {
  private static readonly gates = new Map<string, AdapterGate>();

  /** The gate of adapter `key` (created on first use). */
  static for(key: string, staggerMs = 250): AdapterGate {
    let gate = AdapterGate.gates.get(key);
    if (!gate) {
      gate = new AdapterGate(staggerMs);
      AdapterGate.gates.set(key, gate);
    }
    return gate;
  }

  readonly staggerMs: number;
  private tail: Promise<void> = Promise.resolve();
  private lastStart = Number.NEGATIVE_INFINITY;
  private running = 0;

  constructor(staggerMs = 250) {
    this.staggerMs = Math.max(0, staggerMs);
  }

  /** Attempts running right now (0 or 1). */
  get active(): number {
    return this.running;
  }

  /** Run `attempt` when the adapter is free and `staggerMs` have passed since the previous start. */
  run<T>(attempt: () => Promise<T>): Promise<T> {
    const result = this.tail.then(async () => {
      const wait = this.lastStart + this.staggerMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.lastStart = Date.now();
      this.running++;
      try {
        return await attempt();
      } finally {
        this.running--;
      }
    });
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** Exponential back-off with full jitter: attempt n waits a random time in [base/2, base], base = min·2ⁿ ≤ max. */
export class Backoff {
  private failures = 0;
  constructor(
    readonly minMs: number,
    readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt (0 when the last one succeeded). */
  nextDelayMs(): number {
    if (this.failures === 0) return 0;
    const base = Math.min(this.maxMs, this.minMs * 2 ** (this.failures - 1));
    return Math.round(base / 2 + (base / 2) * this.random());
  }

  failed(): void {
    this.failures = Math.min(this.failures + 1, 30);
  }

  succeeded(): void {
    this.failures = 0;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}
