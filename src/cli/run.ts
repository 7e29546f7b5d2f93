import { basename, resolve } from 'node:path';
import { parseSize } from '../config/size.js';
import { GatehouseError } from '../errors.js';
import type { SandboxLimits } from '../sandbox/launcher.js';
import { DEFAULT_RELAY_PORT, runSandboxed } from '../sandbox/run.js';
import { AGENT_NAME } from '../server/tokens.js';
import { Exit, parse, type Command } from './command.js';
import { DIR_HELP, dirOptions, dirsFrom } from './dirs.js';

const HELP = `Usage: gatehouse run [options] -- COMMAND [ARG]...

Starts an agent confined so that the gateway is the only thing it can reach
(namespaces, Landlock, seccomp; see native/SECURITY.md). Inside, the agent
finds GATEHOUSE_MCP_URL=http://127.0.0.1:<port>/mcp (and .mcp.json in the
workspace), and for the model providers in the registry (kind: inference)
ANTHROPIC_BASE_URL / OPENAI_BASE_URL pointing at the gateway's /llm/<provider>
with a placeholder key: no token, key or secret of any kind is inside. The
session socket it comes in on is its identity; the gateway adds the keys.

Attaches to the running "gatehouse serve" with the same --state (over its
control socket), or starts a gateway in this process. Streams the agent's
stdio, forwards signals, and exits with the agent's exit code (124: required
confinement unavailable, 125: launcher error, 126/127: cannot execute / not found).

Options:
  --agent NAME       identity for policy and audit (default: the command's name)
  --workspace DIR    read-write, same path inside, the agent's cwd (default: .)
  --ro PATH          extra path visible read-only (repeatable)
  --rw PATH          extra path visible read-write (repeatable)
  --allow-write PATH let the agent change a protected path (repeatable; loud). Inside
                     the workspace and each --rw dir these are read-only: .git,
                     .gitmodules, hook managers (.husky .githooks .lefthook,
                     lefthook.yml, .pre-commit-config.yaml), shell start-up files
                     (.bashrc .profile .zshrc ..., .envrc), .vscode .idea
                     .devcontainer .claude .mcp.json .codex .cursor .gemini; also
                     nested repositories and editor folders at any depth, and the
                     folder core.hooksPath names — they run code when you work
                     there later. --allow-write PATH/.git lets the agent commit
                     while that .git's config, config.worktree, hooks, info, modules,
                     commondir, worktrees and rebase state stay read-only
  --home DIR         the agent's own HOME, read-write, kept between runs (default:
                     <state>/homes/<agent>; never your real home)
  --home-seed DIR    copy the agent's settings (e.g. a .claude or .codex folder's
                     config) into its home first; existing files are kept,
                     links and credential files (auth.json, .credentials.json,
                     keys, .netrc...) are skipped
  --provider NAME    which model provider fills ANTHROPIC_BASE_URL/OPENAI_BASE_URL
                     when several of one API are registered (repeatable)
  --port N           the relay's port inside the sandbox (default ${DEFAULT_RELAY_PORT})
  --allow-weaker     run on Landlock ABI 1-5 (less confinement; says what is missing)
  --no-mcp-config    do not write .mcp.json into the workspace
  --allow-partial-scan  start even when the scan for nested repositories gives
                     up (too many folders or too slow; else exit 2): those past
                     that point are then not protected
  --pids-max N       this sandbox's process/thread limit (default 1024)
  --memory-max SIZE  this sandbox's memory limit, e.g. 2G (K/M/G/T; default 4G)
  --cpu-weight N     this sandbox's CPU share, 1-10000 (default 100)
                     Each sandbox gets its own cgroup where one can be made
                     (root, or a systemd user slice); a limit given here is
                     then required (exit 124 where it cannot be applied).
                     "gatehouse doctor" says which mechanism applies.
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
        'allow-write': { type: 'string', multiple: true },
        home: { type: 'string' },
        'home-seed': { type: 'string' },
        provider: { type: 'string', multiple: true },
        port: { type: 'string' },
        'allow-weaker': { type: 'boolean' },
        'no-mcp-config': { type: 'boolean' },
        'allow-partial-scan': { type: 'boolean' },
        'pids-max': { type: 'string' },
        'memory-max': { type: 'string' },
        'cpu-weight': { type: 'string' },
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
      allowWrite: (values['allow-write'] ?? []).map((p) => resolve(p)),
      port,
      allowWeaker: values['allow-weaker'] === true,
      limits: limitsFrom(values['pids-max'], values['memory-max'], values['cpu-weight']),
      mcpConfig: values['no-mcp-config'] !== true,
      allowPartialScan: values['allow-partial-scan'] === true,
      ...(values.home !== undefined ? { home: resolve(values.home) } : {}),
      ...(values['home-seed'] !== undefined ? { homeSeed: resolve(values['home-seed']) } : {}),
      providers: values.provider ?? [],
      command: positionals,
      stderr: process.stderr,
    });
  },
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
