import { parseArgs, type ParseArgsConfig } from 'node:util';
import { GatehouseError } from '../errors.js';
import { escapeText } from '../terminal.js';

/** Exit codes that scripts can trust. */
export const Exit = {
  Ok: 0,
  /** The thing asked about is bad: verification failed, a check found a problem, a decision was deny. */
  Failed: 1,
  /** Wrong usage or invalid configuration. */
  Usage: 2,
  /** A needed service is unavailable (keychain, gateway, kernel feature). */
  Unavailable: 3,
} as const;

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadStream;
  isTTY: boolean;
}

/** A `gatehouse` sub-command. `run` gets the arguments after the command's own name. */
export interface Command {
  name: string;
  summary: string;
  /** Full help text, printed by `--help`. */
  help: string;
  run(argv: string[], io: Io): Promise<number>;
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with strict checking; usage mistakes become GatehouseError('USAGE'). */
export function parse<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (e) {
    throw new GatehouseError('USAGE', (e as Error).message);
  }
}

/** Prints rows as an aligned table with a header. Cells are data: each is escaped to one visible line (a cell cannot forge a row). */
export function table(headers: string[], data: string[][]): string {
  const rows = data.map((r) => r.map((c) => escapeText(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/**
 * For commands with subcommands: prints the help when there is no subcommand
 * (exit 2: a script forgot it) or when help was asked for (exit 0).
 * Returns undefined when a subcommand was given.
 */
export function helpForSubcommand(sub: string | undefined, help: string, io: Io): number | undefined {
  if (sub !== undefined && sub !== '--help' && sub !== '-h' && sub !== 'help') return undefined;
  io.out(help);
  return sub === undefined ? Exit.Usage : Exit.Ok;
}
