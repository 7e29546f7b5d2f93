#!/usr/bin/env node
// How a command is added: write src/cli/<name>.ts exporting a CommandModule (command.ts) that
// calls `handle(subcommand(program, '<name> [args]', 'summary').option(...), async (opts, args) => exitCode)`,
// then list it in COMMANDS below (the order is the order in `gatehouse --help`). A subcommand of an
// existing command (e.g. `approvals watch`) is one more `subcommand(parent, ...)` in that command's file.
// The shared --registry/--policies/--state flags, --help, "did you mean" and exit codes (errors.ts) come with it.
import { Exit, errorMessage } from '../errors.js';
import { terminalSafe } from '../terminal.js';
import type { CommandModule, Io } from './command.js';
import { approvalsCommand } from './approvals.js';
import { auditCommand } from './audit.js';
import { clientCommand } from './client.js';
import { connectorCommand } from './connector.js';
import { consoleCommand } from './console.js';
import { doctorCommand } from './doctor.js';
import { logsCommand } from './logs.js';
import { policyCommand } from './policy.js';
import { runGatehouse } from './program.js';
import { runCommand } from './run.js';
import { secretCommand } from './secret.js';
import { serveCommand } from './serve.js';
import { statusCommand } from './status.js';
import { tokenCommand } from './token.js';
import { toolsCommand } from './tools.js';

const COMMANDS: readonly CommandModule[] = [
  serveCommand,
  runCommand,
  statusCommand,
  clientCommand,
  doctorCommand,
  tokenCommand,
  policyCommand,
  approvalsCommand,
  consoleCommand,
  toolsCommand,
  secretCommand,
  connectorCommand,
  logsCommand,
  auditCommand,
];

// Every byte to the terminal passes terminalSafe, behind the escaping each command does where it formats data.
const io: Io = {
  out: (s) => void process.stdout.write(terminalSafe(s)),
  err: (s) => void process.stderr.write(terminalSafe(s)),
  env: process.env,
  stdin: process.stdin,
  isTTY: process.stdout.isTTY === true,
};

runGatehouse(process.argv.slice(2), io, COMMANDS).then(
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
