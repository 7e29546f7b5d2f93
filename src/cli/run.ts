import { basename, resolve } from 'node:path';
import { GatehouseError } from '../errors.js';
import { DEFAULT_RELAY_PORT, runSandboxed } from '../sandbox/run.js';
import { AGENT_NAME } from '../server/tokens.js';
import { Exit, parse, type Command } from './command.js';
import { DIR_HELP, dirOptions, dirsFrom } from './dirs.js';

const HELP = `Usage: gatehouse run [options] -- COMMAND [ARG]...

Starts an agent confined so that the gateway's MCP endpoint is the only thing
it can reach (namespaces, Landlock, seccomp; see native/SECURITY.md). Inside,
the agent finds GATEHOUSE_MCP_URL=http://127.0.0.1:<port>/mcp (and .mcp.json
in the workspace) and no token, key or secret of any kind: the session
socket it comes in on is its identity.

Attaches to the running "gatehouse serve" with the same --state (over its
control socket), or starts a gateway in this process. Streams the agent's
stdio, forwards signals, and exits with the agent's exit code (124: required
confinement unavailable, 125: launcher error, 126/127: cannot execute / not found).

Options:
  --agent NAME       identity for policy and audit (default: the command's name)
  --workspace DIR    read-write, same path inside, the agent's cwd (default: .)
  --ro PATH          extra path visible read-only (repeatable)
  --rw PATH          extra path visible read-write (repeatable)
  --port N           the relay's port inside the sandbox (default ${DEFAULT_RELAY_PORT})
  --allow-weaker     run on Landlock ABI 1-5 (less confinement; says what is missing)
  --no-mcp-config    do not write .mcp.json into the workspace
${DIR_HELP}
  -h, --help         this help
`;

export const runCommand: Command = {
  name: 'run',
  summary: 'run an agent confined to the gateway',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parse(
      argv,
      {
        ...dirOptions,
        agent: { type: 'string' },
        workspace: { type: 'string' },
        ro: { type: 'string', multiple: true },
        rw: { type: 'string', multiple: true },
        port: { type: 'string' },
        'allow-weaker': { type: 'boolean' },
        'no-mcp-config': { type: 'boolean' },
      },
      true,
    );
    if (values.help) {
      io.out(HELP);
      return Exit.Ok;
    }
    if (positionals.length === 0) throw new GatehouseError('USAGE', 'no command given; e.g. gatehouse run --agent coder -- my-agent --task "triage"');
    const agent = values.agent ?? basename(positionals[0] ?? 'agent').replace(/[^A-Za-z0-9._@-]/g, '-').slice(0, 64);
    if (!AGENT_NAME.test(agent)) throw new GatehouseError('USAGE', `invalid --agent ${JSON.stringify(agent)}: use 1-64 letters, digits, '.', '_', '@' or '-'`);
    const port = Number(values.port ?? DEFAULT_RELAY_PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new GatehouseError('USAGE', '--port must be 1-65535');
    return runSandboxed({
      dirs: dirsFrom(values, io.env),
      agent,
      workspace: resolve(values.workspace ?? '.'),
      ro: (values.ro ?? []).map((p) => resolve(p)),
      rw: (values.rw ?? []).map((p) => resolve(p)),
      port,
      allowWeaker: values['allow-weaker'] === true,
      mcpConfig: values['no-mcp-config'] !== true,
      command: positionals,
      stderr: process.stderr,
    });
  },
};
