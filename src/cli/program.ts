/**
 * The `gatehouse` program: commander parses, each command module adds itself
 * (see main.ts), and every way a command can end becomes one exit code
 * (errors.ts) and, on stderr, one escaped message.
 */
import { Command, CommanderError, type Argument } from 'commander';
import { ConfigError, formatIssue } from '../config/load-yaml.js';
import { VERSION } from '../config/paths.js';
import { Exit, GatehouseError, errorMessage, exitCodeFor } from '../errors.js';
import { escapeText } from '../terminal.js';
import { commandPath, outcomeOf, withDirFlags, type CommandModule, type Io } from './command.js';

const EXIT_CODES = 'Exit codes: 0 ok, 1 check failed or denied, 2 usage or configuration error, 3 a needed service is unavailable.';

/** A commander error, with the command it is about. */
class UsageExit extends Error {
  constructor(
    readonly error: CommanderError,
    readonly command: Command,
  ) {
    super(error.message);
  }
}

export function buildProgram(io: Io, commands: readonly CommandModule[]): Command {
  const program = new Command('gatehouse')
    .description(`Gatehouse ${VERSION}: an MCP gateway that gives AI agents one narrow, audited door.`)
    .version(VERSION, '-v, --version', 'print the version')
    // Each level parses its own flags: what follows `gatehouse run … --` stays the agent's.
    .enablePositionalOptions()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: () => undefined })
    .showSuggestionAfterError(true)
    // Command lists show names and operands; every command has options (the shared ones), so "[options]" says nothing there.
    .configureHelp({ subcommandTerm: (cmd) => [cmd.name(), ...cmd.registeredArguments.map(argTerm)].join(' ') })
    .helpCommand('help [command]', 'help for a command')
    .addHelpText('after', `\nRun "gatehouse <command> --help" for a command's options.\n${EXIT_CODES}`);
  for (const add of commands) add(program, io);
  const each = (cmd: Command): void => {
    // Every command and subcommand takes the shared flags (added here, after its own, so its --help lists them last).
    if (!cmd.options.some((o) => o.long === '--state')) withDirFlags(cmd);
    cmd.exitOverride((e) => {
      throw new UsageExit(e, cmd);
    });
    cmd.commands.forEach(each);
  };
  each(program);
  return program;
}

function argTerm(a: Argument): string {
  const name = `${a.name()}${a.variadic ? '...' : ''}`;
  return a.required ? `<${name}>` : `[${name}]`;
}

/** Runs `gatehouse ARGV…` (without the program name) and returns the exit code. */
export async function runGatehouse(argv: string[], io: Io, commands: readonly CommandModule[]): Promise<number> {
  const program = buildProgram(io, commands);
  // `gatehouse help --help`: commander would look for a command named "--help"; it is the top-level help.
  if (argv[0] === 'help' && (argv[1] === '--help' || argv[1] === '-h')) argv = ['--help'];
  try {
    await program.parseAsync(argv, { from: 'user' });
    return outcomeOf(program).code ?? Exit.Ok;
  } catch (e) {
    if (e instanceof UsageExit) return usageExit(e, io);
    return reportError(e, outcomeOf(program).command ?? program, io);
  }
}

function usageExit(e: UsageExit, io: Io): number {
  const { code, exitCode, message } = e.error;
  // Help and version were printed (help without a subcommand goes to stderr and is a usage error: a script forgot it).
  if (code === 'commander.helpDisplayed' || code === 'commander.version') return Exit.Ok;
  if (code === 'commander.help') return exitCode === 0 ? Exit.Ok : Exit.Usage;
  // The flag or command as typed is data: escaped to one line. The "did you mean" that follows is ours.
  const text = message.replace(/^error: /, '');
  const cut = text.lastIndexOf('\n(Did you mean');
  const said = cut < 0 ? escapeText(text) : `${escapeText(text.slice(0, cut))}\n${text.slice(cut + 1)}`;
  const path = commandPath(e.command);
  io.err(`${path}: ${said}\nRun "${path} --help" for usage.\n`);
  return Exit.Usage;
}

function reportError(e: unknown, cmd: Command, io: Io): number {
  const path = commandPath(cmd);
  if (e instanceof ConfigError) {
    // One line per issue: the line breaks are ours, and nothing inside an issue can add one.
    io.err(`${path}: invalid configuration:\n${e.issues.map((i) => escapeText(formatIssue(i))).join('\n')}\n`);
    return Exit.Usage;
  }
  if (e instanceof GatehouseError) {
    // One line: a message may quote what an agent or upstream sent (a tool name, a cancel reason, a gateway's answer), and a newline there would forge a line of ours.
    // Several lines only where we built them as such (details.lines), each escaped on its own.
    const lines = Array.isArray(e.details?.lines) && e.details.lines.every((l) => typeof l === 'string') ? (e.details.lines as string[]) : [e.message];
    io.err(`${path}: ${lines.map((l) => escapeText(l)).join('\n')}\n`);
    if (e.code === 'USAGE') io.err(`Run "${path} --help" for usage.\n`);
    return exitCodeFor(e);
  }
  io.err(`${path}: unexpected error: ${escapeText(errorMessage(e))}\n`);
  return Exit.Failed;
}
