import { basename, join, resolve } from 'node:path';
import { parseSize } from '../config/size.js';
import { GatehouseError } from '../errors.js';
import { createLogger } from '../log.js';
import type { SandboxLimits } from '../sandbox/launcher.js';
import { DEFAULT_RELAY_PORT } from '../sandbox/proxy-env.js';
import { AGENT_NAME } from '../server/tokens.js';
import { collect, dirsFrom, handle, subcommand, type CommandModule } from './command.js';

const RUN_HELP = `
Inside, the agent finds GATEHOUSE_MCP_URL=http://127.0.0.1:<port>/mcp (and
.mcp.json in the workspace), and for the model providers in the registry (kind:
inference) ANTHROPIC_BASE_URL / OPENAI_BASE_URL pointing at the gateway's
/llm/<provider> with a placeholder key: no token, key or secret of any kind is
inside. The session socket it comes in on is its identity; the gateway adds the keys.

Attaches to the running "gatehouse serve" with the same --state (over its
control socket), or starts a gateway in this process; that gateway logs to
<state>/logs/run.log (level: GATEHOUSE_LOG_LEVEL, default info), never to the
agent's terminal. Streams the agent's stdio, forwards signals, and exits with
the agent's exit code (124: required confinement unavailable, 125: launcher
error, 126/127: cannot execute / not found).

--allow-write PATH lets the agent change a protected path. Inside the workspace
and each --rw dir these are read-only: .git, .gitmodules, hook managers (.husky
.githooks .lefthook, lefthook.yml, .pre-commit-config.yaml), shell start-up files
(.bashrc .profile .zshrc ..., .envrc), .vscode .idea .devcontainer .claude
.mcp.json .codex .cursor .gemini; also nested repositories and editor folders at
any depth, and the folder core.hooksPath names — they run code when you work
there later. --allow-write PATH/.git lets the agent commit while that .git's
config, config.worktree, hooks, info, modules, commondir, worktrees and rebase
state stay read-only.

--egress opens one more way out: the gateway's egress proxy, on the same
relay port (HTTP_PROXY, HTTPS_PROXY, NO_PROXY for the gateway itself). HTTPS
goes through CONNECT host:port (never intercepted); every connection is
decided by the policy's egress rules (default deny; e.g. extends:
[presets/dev-tools]) and audited. A policy with an egress rule for this agent
opens it without the flag.

Each sandbox gets its own cgroup where one can be made (root, or a systemd user
slice); a limit given with --pids-max, --memory-max or --cpu-weight is then
required (exit 124 where it cannot be applied). "gatehouse doctor" says which
mechanism applies.`;

interface RunOptions {
  agent?: string;
  workspace?: string;
  ro?: string[];
  rw?: string[];
  allowWrite?: string[];
  home?: string;
  homeSeed?: string;
  provider?: string[];
  egress?: boolean;
  port?: string;
  allowWeaker?: boolean;
  mcpConfig: boolean;
  allowPartialScan?: boolean;
  pidsMax?: string;
  memoryMax?: string;
  cpuWeight?: string;
}

/** Where the in-process gateway of `gatehouse run` logs: a file in the state directory, never the agent's stderr. */
export function runLogPath(state: string): string {
  return join(state, 'logs', 'run.log');
}

export const runCommand: CommandModule = (program, io) => {
  const run = subcommand(program, 'run', 'run an agent confined to the gateway')
    .argument('[command...]', 'the agent and its arguments (after --, or after the options)')
    .description('Starts an agent confined so that the gateway is the only thing it can reach (namespaces, Landlock, seccomp; see native/SECURITY.md).')
    .usage('[options] -- COMMAND [ARG]...')
    // Everything from the agent's command on is the agent's, flags included.
    .passThroughOptions()
    .option('--agent <name>', "identity for policy and audit (default: the command's name)")
    .option('--workspace <dir>', "read-write, same path inside, the agent's cwd (default: .)")
    .option('--ro <path>', 'extra path visible read-only (repeatable)', collect)
    .option('--rw <path>', 'extra path visible read-write (repeatable)', collect)
    .option('--allow-write <path>', 'let the agent change a protected path (repeatable; loud; see below)', collect)
    .option('--home <dir>', "the agent's own HOME, read-write, kept between runs (default: <state>/homes/<agent>; never your real home)")
    .option(
      '--home-seed <dir>',
      "copy the agent's settings (e.g. a .claude or .codex folder's config) into its home first; existing files are kept, links and credential files (auth.json, .credentials.json, keys, .netrc...) are skipped",
    )
    .option('--provider <name>', 'which model provider fills ANTHROPIC_BASE_URL/OPENAI_BASE_URL when several of one API are registered (repeatable)', collect)
    .option('--egress', "open the gateway's egress proxy to the agent (HTTP_PROXY/HTTPS_PROXY inside); each connection is decided by the policy's egress rules, default deny")
    .option('--port <n>', `the relay's port inside the sandbox (default ${DEFAULT_RELAY_PORT})`)
    .option('--allow-weaker', 'run on Landlock ABI 1-5 (less confinement; says what is missing)')
    .option('--no-mcp-config', 'do not write .mcp.json into the workspace')
    .option(
      '--allow-partial-scan',
      'start even when the scan for nested repositories gives up (too many folders or too slow; else exit 2): those past that point are then not protected',
    )
    .option('--pids-max <n>', "this sandbox's process/thread limit (default 1024)")
    .option('--memory-max <size>', "this sandbox's memory limit, e.g. 2G (K/M/G/T; default 4G)")
    .option('--cpu-weight <n>', "this sandbox's CPU share, 1-10000 (default 100)")
    .addHelpText('after', RUN_HELP);
  handle<RunOptions>(run, async (o, command) => {
    if (command.length === 0) throw new GatehouseError('USAGE', 'no command given; e.g. gatehouse run --agent coder -- my-agent --task "triage"');
    const agent = o.agent ?? basename(command[0] ?? 'agent').replace(/[^A-Za-z0-9._@-]/g, '-').slice(0, 64);
    if (!AGENT_NAME.test(agent)) throw new GatehouseError('USAGE', `invalid --agent ${JSON.stringify(agent)}: use 1-64 letters, digits, '.', '_', '@' or '-'`);
    const port = Number(o.port ?? DEFAULT_RELAY_PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new GatehouseError('USAGE', '--port must be 1-65535');
    const dirs = dirsFrom(o, io.env);
    // Loaded when an agent is started, not for `gatehouse --help` and the other commands.
    const { runSandboxed } = await import('../app/run.js');
    return runSandboxed({
      dirs,
      agent,
      workspace: resolve(o.workspace ?? '.'),
      ro: (o.ro ?? []).map((p) => resolve(p)),
      rw: (o.rw ?? []).map((p) => resolve(p)),
      allowWrite: (o.allowWrite ?? []).map((p) => resolve(p)),
      port,
      allowWeaker: o.allowWeaker === true,
      limits: limitsFrom(o.pidsMax, o.memoryMax, o.cpuWeight),
      mcpConfig: o.mcpConfig,
      allowPartialScan: o.allowPartialScan === true,
      ...(o.home !== undefined ? { home: resolve(o.home) } : {}),
      ...(o.homeSeed !== undefined ? { homeSeed: resolve(o.homeSeed) } : {}),
      providers: o.provider ?? [],
      egress: o.egress === true,
      command,
      stderr: process.stderr,
      logger: createLogger({ level: io.env.GATEHOUSE_LOG_LEVEL ?? 'info', file: runLogPath(dirs.state) }),
    });
  });
};

function limitsFrom(pids: string | undefined, memory: string | undefined, cpu: string | undefined): SandboxLimits {
  const int = (flag: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (!/^[0-9]+$/.test(v) || n < min || n > max) throw new GatehouseError('USAGE', `${flag} must be an integer in ${min}..${max}`);
    return n;
  };
  const limits: SandboxLimits = {};
  if (pids !== undefined) limits.pidsMax = int('--pids-max', pids, 8, 1 << 22);
  if (memory !== undefined) {
    const bytes = parseSize(memory);
    if (bytes === undefined || bytes < 16 * 2 ** 20) throw new GatehouseError('USAGE', `--memory-max ${JSON.stringify(memory)}: use a size of at least 16M, e.g. 512M or 2G`);
    limits.memoryMax = memory.trim().toUpperCase();
  }
  if (cpu !== undefined) limits.cpuWeight = int('--cpu-weight', cpu, 1, 10000);
  return limits;
}
