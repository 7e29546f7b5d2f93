/**
 * What every `gatehouse` command is built from: the Io it prints through, the
 * shared --registry/--policies/--state flags, and `handle`, which runs a
 * command's body and makes what it returns the exit code.
 */
import { Option, type Command } from 'commander';
import { resolveDirs, type DirFlags, type Dirs } from '../config/paths.js';
import { escapeText } from '../terminal.js';

export type { Command } from 'commander';
export type { DirFlags };

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadStream;
  isTTY: boolean;
}

/** A `gatehouse` command: adds itself, its flags and its subcommands to `program` (see main.ts). */
export type CommandModule = (program: Command, io: Io) => void;

/** Adds `gatehouse <parent…> <name>`; `nameAndArgs` as commander takes it ("show <id>"). The program adds the shared directory flags to it. */
export function subcommand(parent: Command, nameAndArgs: string, summary: string): Command {
  return parent.command(nameAndArgs).summary(summary);
}

const DIR_FLAGS: readonly [string, string][] = [
  ['--registry <dir>', 'connector definitions (env GATEHOUSE_REGISTRY; default ./registry, else the shipped one)'],
  ['--policies <dir>', 'policy files (env GATEHOUSE_POLICIES; default ./policies, else the shipped one)'],
  ['--state <dir>', 'keys, audit log, sockets (env GATEHOUSE_STATE; default ~/.local/state/gatehouse)'],
];

/** The shared flags' names ("--state"): each takes a value. */
export const DIR_FLAG_NAMES: ReadonlySet<string> = new Set(DIR_FLAGS.map(([flags]) => flags.split(' ')[0] as string));

/** The flags every command and subcommand takes, so all of them agree on what they read (listed apart in --help). */
export function withDirFlags(cmd: Command): Command {
  for (const [flags, description] of DIR_FLAGS) cmd.addOption(new Option(flags, description).helpGroup('Directories (every command takes them):'));
  return cmd;
}

/** The directories a command reads: flag (at any level: `gatehouse --state D logs` too), then environment, then default. */
export function dirsFrom(opts: DirFlags, env: NodeJS.ProcessEnv): Dirs {
  return resolveDirs({ registry: opts.registry, policies: opts.policies, state: opts.state }, env);
}

/** For a repeatable option: `--ro A --ro B` → ['A', 'B']. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

interface Outcome {
  /** The command whose body ran last (for the error line's prefix and its --help hint). */
  command?: Command;
  code?: number;
}
const outcomes = new WeakMap<Command, Outcome>();

export function rootOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c;
}

/** The outcome record of one parse of `program`. */
export function outcomeOf(program: Command): Outcome {
  let o = outcomes.get(program);
  if (!o) outcomes.set(program, (o = {}));
  return o;
}

/**
 * Sets a command's body. It gets the parsed flags (its own and the shared
 * ones given at any level) and the operands; the number it returns is the
 * exit code. A thrown error is reported by the program (errors.ts maps its code).
 */
export function handle<O extends object>(cmd: Command, body: (opts: O & DirFlags, args: string[]) => Promise<number>): Command {
  return cmd.action(async () => {
    const outcome = outcomeOf(rootOf(cmd));
    outcome.command = cmd;
    outcome.code = await body(cmd.optsWithGlobals<O & DirFlags>(), cmd.args);
  });
}

/** "gatehouse policy check": the command's path, for messages. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Prints rows as an aligned table with a header. Cells are data: each is escaped to one visible line (a cell cannot forge a row). */
export function table(headers: string[], data: string[][]): string {
  const rows = data.map((r) => r.map((c) => escapeText(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}
