/**
 * A small JSON file next to the config for what must survive a restart when localsettings cannot hold it
 * (the last known cell count of each battery, so its service gets the right cell paths at once).
 * Writes are atomic (temp file + rename); a missing or corrupt file reads as empty, never fatal.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export class StateStore {
  private data: Record<string, unknown> = {};

  constructor(private readonly file: string | undefined) {
    if (!file) return;
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) this.data = parsed as Record<string, unknown>;
    } catch {
      // First start, or a damaged file: start empty.
    }
  }

  get(key: string): unknown {
    return this.data[key];
  }

  /** Set and persist; returns false (and keeps running) when the file cannot be written. */
  set(key: string, value: unknown): boolean {
    if (JSON.stringify(this.data[key]) === JSON.stringify(value)) return true;
    this.data[key] = value;
    if (!this.file) return true;
    try {
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(this.data, null, 2)}\n`);
      renameSync(tmp, this.file);
      return true;
    } catch {
      return false;
    }
  }
}
