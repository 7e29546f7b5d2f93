import { pino, type Logger } from 'pino';
import { jsonForTerminal } from './terminal.js';

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

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const dest = options.destination ?? process.stderr;
  return pino(
    {
      level: options.level ?? process.env.GATEHOUSE_LOG_LEVEL ?? 'info',
      base: { name: 'gatehouse' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    },
    // Lines often land on a terminal (`gatehouse serve`): C1 and invisible characters from agents and upstreams as \u escapes (still the same JSON).
    { write: (line: string) => dest.write(jsonForTerminal(filter(line))) },
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
