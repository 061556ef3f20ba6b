import type { BatterySnapshot } from '../domain/battery-snapshot.js';

/**
 * A BMS driver runs one family's poll sequence over an injected link and turns replies into snapshots.
 * It never throws out of a callback and never exits the process: a dead device only means no snapshots
 * (the caller's health tracking turns silence into `stale` / `offline`).
 */
export interface BmsDriver {
  /** Family id, e.g. `jbd`. */
  readonly family: string;
  /** Begin polling (opens the link, reopens it with back-off when it vanishes). Idempotent. */
  start(): void;
  /** Stop polling and close the link. Never rejects. */
  stop(): Promise<void>;
  /** Receives one snapshot per completed poll cycle. */
  onSnapshot(listener: (snapshot: BatterySnapshot) => void): void;
  /** Receives one line per notable event (link opened/lost, decode error, timeout), for the log. */
  onEvent(listener: (event: DriverEvent) => void): void;
}

export interface DriverEvent {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}
