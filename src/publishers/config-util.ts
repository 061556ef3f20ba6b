/**
 * Reading one telemetry section ([mqtt], [http], [postgres]) of the INI: typed getters whose errors name the
 * file, section, key, value and what was expected, in the same words as src/config.ts.
 */
import { accessSync, constants } from 'node:fs';

/**
 * Thrown by the section parsers unless the caller passes its own error factory (src/config.ts passes
 * `(m) => new ConfigError(m)`; importing ConfigError here would make a module cycle with src/config.ts).
 */
export class TelemetryConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Builds the error a parser throws, from the full message. */
export type MakeConfigError = (message: string) => Error;

const defaultError: MakeConfigError = (m) => new TelemetryConfigError(m);

/** A key's raw value: a string, or `{ value, file }` when the caller knows which file it came from. */
export type RawValue = string | number | boolean | { value: unknown; file?: string } | undefined;
/** Looks a key of the section up; undefined when the key is absent. */
export type SectionGet = (key: string) => RawValue;

export class SectionReader {
  constructor(
    private readonly get: SectionGet,
    readonly section: string,
    readonly file: string,
    private readonly makeError: MakeConfigError = defaultError,
  ) {}

  private raw(key: string): { value: string; file: string } | undefined {
    const r = this.get(key);
    if (r === undefined) return undefined;
    if (typeof r !== 'object' || r === null) return { value: String(r), file: this.file };
    return { value: String(r.value), file: r.file ?? this.file };
  }

  fail(key: string, expected: string): never {
    const r = this.raw(key);
    const value = r === undefined ? '(missing)' : JSON.stringify(r.value);
    throw this.makeError(`${r?.file ?? this.file}: [${this.section}] ${key} = ${value}: expected ${expected}`);
  }

  /** Trimmed string; the default when absent. */
  string(key: string, dflt: string): string {
    return this.raw(key)?.value.trim() ?? dflt;
  }

  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  bool(key: string, dflt: boolean): boolean {
    const r = this.raw(key);
    if (r === undefined) return dflt;
    const v = r.value.trim().toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(v)) return true;
    if (['false', 'no', 'off', '0'].includes(v)) return false;
    return this.fail(key, 'true or false');
  }

  number(key: string, dflt: number, min: number, max: number, expected: string, integer = false): number {
    const r = this.raw(key);
    if (r === undefined) return dflt;
    const s = r.value.trim();
    const n = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s) ? Number(s) : Number.NaN;
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) this.fail(key, expected);
    return n;
  }

  /** A file path, or '' when absent/empty; with `check`, it must be readable now. */
  readableFile(key: string, check = true): string {
    const p = this.string(key, '');
    if (p === '' || !check) return p;
    try {
      accessSync(p, constants.R_OK);
    } catch {
      this.fail(key, 'a readable file');
    }
    return p;
  }
}

/** `host:port`, `[v6]:port` or `port` (host then `dflt`). Returns undefined when unreadable. */
export function parseHostPort(s: string, dfltHost: string): { host: string; port: number } | undefined {
  const t = s.trim();
  let host: string;
  let port: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(t);
  if (v6) {
    host = v6[1] as string;
    port = v6[2] as string;
  } else if (/^\d+$/.test(t)) {
    host = dfltHost;
    port = t;
  } else {
    const m = /^([A-Za-z0-9.-]+):(\d+)$/.exec(t);
    if (!m) return undefined;
    host = m[1] as string;
    port = m[2] as string;
  }
  const p = Number(port);
  if (!Number.isInteger(p) || p < 0 || p > 65535) return undefined;
  return { host, port: p };
}

/** A hostname or IP literal (no scheme, no path). */
export function isHost(s: string): boolean {
  return /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(s) || /^[0-9a-fA-F:]+$/.test(s);
}
