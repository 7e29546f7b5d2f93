#!/usr/bin/env node
// How a command is added: write src/cli/<name>.ts exporting a CommandModule (command.ts) that
// calls `handle(subcommand(program, '<name> [args]', 'summary').option(...), async (opts, args) => exitCode)`,
// then list it in COMMANDS below (the order is the order in `gatehouse --help`). A subcommand of an
// existing command (e.g. `approvals watch`) is one more `subcommand(parent, ...)` in that command's file.
// The shared --registry/--policies/--state flags, --help, "did you mean" and exit codes (errors.ts) come with it.
import { Exit, errorMessage } from '../errors.js';
import { terminalSafe } from '../terminal.js';
import { DIR_FLAG_NAMES, type CommandModule, type Io } from './command.js';
import { runGatehouse } from './program.js';

/**
 * Each command's module, loaded only when needed: `gatehouse token mint` loads
 * the token command and what it uses, not the gateway behind `serve` (a CLI
 * that starts in a fifth of a second instead of half a second). The order is
 * the order in `gatehouse --help`.
 */
const COMMANDS: readonly (readonly [string, () => Promise<CommandModule>])[] = [
  ['serve', async () => (await import('./serve.js')).serveCommand],
  ['run', async () => (await import('./run.js')).runCommand],
  ['status', async () => (await import('./status.js')).statusCommand],
  ['client', async () => (await import('./client.js')).clientCommand],
  ['doctor', async () => (await import('./doctor.js')).doctorCommand],
  ['token', async () => (await import('./token.js')).tokenCommand],
  ['policy', async () => (await import('./policy.js')).policyCommand],
  ['approvals', async () => (await import('./approvals.js')).approvalsCommand],
  ['console', async () => (await import('./console.js')).consoleCommand],
  ['tools', async () => (await import('./tools.js')).toolsCommand],
  ['secret', async () => (await import('./secret.js')).secretCommand],
  ['connector', async () => (await import('./connector.js')).connectorCommand],
  ['logs', async () => (await import('./logs.js')).logsCommand],
  ['audit', async () => (await import('./audit.js')).auditCommand],
];

/**
 * The modules `argv` needs: the one command it names; none for a bare
 * --version; else all of them (the top-level help, `help`, or a mistyped
 * name to suggest a correction for).
 */
async function commandsFor(argv: readonly string[]): Promise<CommandModule[]> {
  let named: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') break;
    // The shared flags before a command take a value (`gatehouse --state DIR logs`).
    if (DIR_FLAG_NAMES.has(a)) i++;
    else if (!a.startsWith('-')) {
      named = a;
      break;
    }
  }
  if (named === undefined && argv.some((a) => a === '-v' || a === '--version') && !argv.some((a) => a === '-h' || a === '--help')) return [];
  const one = COMMANDS.find(([name]) => name === named);
  return Promise.all((one ? [one] : COMMANDS).map(([, load]) => load()));
}

// Every byte to the terminal passes terminalSafe, behind the escaping each command does where it formats data.
const io: Io = {
  out: (s) => void process.stdout.write(terminalSafe(s)),
  err: (s) => void process.stderr.write(terminalSafe(s)),
  env: process.env,
  stdin: process.stdin,
  isTTY: process.stdout.isTTY === true,
};

const argv = process.argv.slice(2);
commandsFor(argv)
  .then((commands) => runGatehouse(argv, io, commands))
  .then(
    (code) => {
      process.exitCode = code;
      // Exit once output is flushed: a lingering keep-alive socket or timer must not hold a finished command.
      process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
    },
    (e: unknown) => {
      process.stderr.write(terminalSafe(`gatehouse: ${errorMessage(e)}\n`));
      process.exitCode = Exit.Failed;
    },
  );
