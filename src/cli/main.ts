#!/usr/bin/env node
import { ConfigError, formatIssue } from '../config/load-yaml.js';
import { VERSION } from '../config/paths.js';
import { GatehouseError, errorMessage } from '../errors.js';
import { escapeText, terminalSafe } from '../terminal.js';
import { Exit, type Command, type Io } from './command.js';
import { approvalsCommand } from './approvals.js';
import { auditCommand } from './audit.js';
import { connectorCommand } from './connector.js';
import { policyCommand } from './policy.js';
import { secretCommand } from './secret.js';
import { doctorCommand } from './doctor.js';
import { logsCommand } from './logs.js';
import { runCommand } from './run.js';
import { serveCommand } from './serve.js';
import { tokenCommand } from './token.js';

const commands: Command[] = [serveCommand, runCommand, doctorCommand, tokenCommand, policyCommand, approvalsCommand, secretCommand, connectorCommand, logsCommand, auditCommand];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: gatehouse <command> [options]

Gatehouse ${VERSION}: an MCP gateway that gives AI agents one narrow, audited door.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run "gatehouse <command> --help" for a command's options.
Exit codes: 0 ok, 1 check failed or denied, 2 usage or configuration error, 3 a needed service is unavailable.
`;
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name === undefined ? Exit.Usage : Exit.Ok;
  }
  if (name === '--version' || name === '-v') {
    io.out(`${VERSION}\n`);
    return Exit.Ok;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    io.err(`gatehouse: unknown command "${escapeText(name)}"\n\n${usage()}`);
    return Exit.Usage;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof ConfigError) {
      // One line per issue: the line breaks are ours, and nothing inside an issue can add one.
      io.err(`gatehouse ${name}: invalid configuration:\n${e.issues.map((i) => escapeText(formatIssue(i))).join('\n')}\n`);
      return Exit.Usage;
    }
    if (e instanceof GatehouseError) {
      // One line: a message may quote what an agent or upstream sent (a tool name, a cancel reason, a gateway's answer), and a newline there would forge a line of ours.
      // Several lines only where we built them as such (details.lines), each escaped on its own.
      const lines = Array.isArray(e.details?.lines) && e.details.lines.every((l) => typeof l === 'string') ? (e.details.lines as string[]) : [e.message];
      io.err(`gatehouse ${name}: ${lines.map((l) => escapeText(l)).join('\n')}\n`);
      if (e.code === 'USAGE') io.err(`Run "gatehouse ${name} --help" for usage.\n`);
      return e.code === 'USAGE' || e.code === 'CONFIG_INVALID' ? Exit.Usage : e.code.endsWith('UNAVAILABLE') ? Exit.Unavailable : Exit.Failed;
    }
    io.err(`gatehouse ${name}: unexpected error: ${escapeText(errorMessage(e))}\n`);
    return Exit.Failed;
  }
}

// Every byte to the terminal passes terminalSafe, behind the escaping each command does where it formats data.
const io: Io = {
  out: (s) => void process.stdout.write(terminalSafe(s)),
  err: (s) => void process.stderr.write(terminalSafe(s)),
  env: process.env,
  stdin: process.stdin,
  isTTY: process.stdout.isTTY === true,
};

main(process.argv.slice(2), io).then(
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
