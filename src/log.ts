import { mkdirSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { pino, type Logger } from 'pino';
import type { PrettyOptions } from 'pino-pretty';
import { escapeText, jsonForTerminal } from './terminal.js';

export type { Logger };

/**
 * pino `redact` paths for anything that may carry a secret wherever it is
 * logged: headers, environment, authorization, tokens. Each shape is tested.
 */
export const REDACT_PATHS = [
  'headers.authorization',
  'headers.Authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'headers["set-cookie"]',
  'headers["x-api-key"]',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.headers["proxy-authorization"]',
  '*.headers.cookie',
  '*.headers["set-cookie"]',
  '*.headers["x-api-key"]',
  'authorization',
  'Authorization',
  '*.authorization',
  '*.Authorization',
  'env',
  '*.env',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'password',
  '*.password',
];

/** A text filter applied to every log line last (secret values, set by the secrets module). */
export type LineFilter = (line: string) => string;

let filter: LineFilter = (l) => l;
export function setLogLineFilter(f: LineFilter): void {
  filter = f;
}

export interface LoggerOptions {
  level?: string;
  /** Where lines go (default stderr). */
  destination?: NodeJS.WritableStream;
  /** Append lines to this file instead (created 0600, with its folder, at the first line). */
  file?: string;
  /**
   * Human-readable, coloured lines instead of JSON. Default: when the lines go
   * to stderr and stderr is a terminal; GATEHOUSE_LOG_FORMAT=json|pretty decides otherwise.
   */
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const dest = options.file !== undefined ? fileSink(options.file) : (options.destination ?? process.stderr);
  const format = process.env.GATEHOUSE_LOG_FORMAT;
  const pretty =
    options.pretty ?? (format === 'pretty' ? true : format === 'json' ? false : options.file === undefined && options.destination === undefined && process.stderr.isTTY === true);
  const show = pretty ? prettyLine() : jsonForTerminal;
  return pino(
    {
      level: options.level ?? process.env.GATEHOUSE_LOG_LEVEL ?? 'info',
      base: { name: 'gatehouse' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    },
    // Lines often land on a terminal (`gatehouse serve`): C1 and invisible characters from agents and upstreams as \u escapes (still the same JSON).
    { write: (line: string) => dest.write(show(filter(line))) },
  );
}

/**
 * A JSON line as pino-pretty shows it. Every string in the record (keys too)
 * is escaped first: pino-pretty prints parsed values raw, and a value from an
 * agent or upstream must not reach the terminal as a control sequence, while
 * pino-pretty's own colours must.
 */
function prettyLine(): (line: string) => string {
  // Loaded only here: most commands never log, and pino-pretty's dependencies cost start-up time.
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as { prettyFactory: (o: PrettyOptions) => (input: unknown) => string };
  const format = prettyFactory({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', singleLine: false });
  const clean = (v: unknown): unknown => {
    if (typeof v === 'string') return escapeText(v);
    if (Array.isArray(v)) return v.map(clean);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [escapeText(k), clean(x)]));
    return v;
  };
  return (line) => {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      return jsonForTerminal(line);
    }
    return format(clean(record));
  };
}

/** Appends to `file`, opened at the first line (a command that never logs creates nothing). */
function fileSink(file: string): { write(s: string): boolean } {
  let fd: number | undefined;
  return {
    write(s) {
      if (fd === undefined) {
        mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
        fd = openSync(file, 'a', 0o600);
      }
      // Synchronous: the process may exit right after the last line (a finished `gatehouse run`).
      writeSync(fd, s);
      return true;
    },
  };
}

export const silentLogger: Logger = pino({ level: 'silent' });
