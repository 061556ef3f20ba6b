/** Logs go to stdout, one line per event (multilog adds timestamps on the GX). */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  child(scope: string): Logger;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Prefix lines with an ISO timestamp (off under multilog, which stamps them itself). */
  timestamps?: boolean;
  write?: (line: string) => void;
}

export function createLogger(opts: LoggerOptions, scope = ''): Logger {
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const emit = (level: LogLevel, msg: string) => {
    if (ORDER[level] < ORDER[opts.level]) return;
    const ts = opts.timestamps ? `${new Date().toISOString()} ` : '';
    write(`${ts}${level.toUpperCase().padEnd(5)} ${scope ? `[${scope}] ` : ''}${msg}`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    child: (s) => createLogger(opts, scope ? `${scope}/${s}` : s),
  };
}

export function isLogLevel(v: string): v is LogLevel {
  return v in ORDER;
}
