// The gateway's log: one line per notable event on stderr (start, ready, reload and what
// changed, real server added/removed, table full, stop), quiet by default. Text for people,
// `--log-format json` (one object per line) for machines. Every host change is logged as the
// `ip` command a person could run to undo it (hostnet.ts).

export type LogLevel = 'info' | 'debug' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

export interface Logger {
  /** A notable event: always written. */
  info(event: string, message: string, fields?: Record<string, unknown>): void;
  /** Something went wrong but forwarding goes on. */
  warn(event: string, message: string, fields?: Record<string, unknown>): void;
  error(event: string, message: string, fields?: Record<string, unknown>): void;
  /** Detail written only with --verbose. */
  debug(event: string, message: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  format?: LogFormat;
  verbose?: boolean;
  /** Where lines go (default process.stderr). */
  write?: (line: string) => void;
  /** The clock for timestamps (default Date.now). */
  now?: () => number;
}

/** A logger writing one line per call. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? 'text';
  const verbose = options.verbose ?? false;
  const write = options.write ?? ((line: string) => { process.stderr.write(line); });
  const now = options.now ?? Date.now;
  const line = (level: LogLevel, event: string, message: string, fields?: Record<string, unknown>): void => {
    if (level === 'debug' && !verbose) return;
    const time = new Date(now()).toISOString();
    if (format === 'json') {
      write(`${JSON.stringify({ time, level, event, msg: message, ...fields })}\n`);
    } else {
      const tag = level === 'info' || level === 'debug' ? '' : `${level.toUpperCase()} `;
      write(`${time} wasmvs[${process.pid}]: ${tag}${event}: ${message}\n`);
    }
  };
  return {
    info: (e, m, f) => line('info', e, m, f),
    warn: (e, m, f) => line('warn', e, m, f),
    error: (e, m, f) => line('error', e, m, f),
    debug: (e, m, f) => line('debug', e, m, f),
  };
}

/** A logger that drops everything (the library default). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };
