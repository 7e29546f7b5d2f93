/**
 * `gatehouse run`: one agent in the sandbox launcher, its only egress the
 * gateway: a running `gatehouse serve` (through the control socket) or one
 * started in this process.
 */
import { spawn } from 'node:child_process';
import { existsSync, realpathSync, statSync, type Stats } from 'node:fs';
import { constants } from 'node:os';
import { sharedDiskWarning, sharesFilesystem } from '../config/disk.js';
import type { Dirs } from '../config/paths.js';
import { GatehouseError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { startGateway, type RunningGateway } from './gateway.js';
import { ControlClient, gatewayRunning } from '../server/control-client.js';
import { buildLauncherArgs, launcherFailure, launcherPath, SIMULATE_LANDLOCK_ABI_ENV, SIMULATE_NO_CGROUP_ENV, type SandboxLimits } from '../sandbox/launcher.js';
import { assertNoOverlap, canonical, protectedPaths, type Exposed } from '../sandbox/overlap.js';
import { guardWorkspace } from '../sandbox/nested.js';
import { SafeDir } from '../sandbox/safe-dir.js';
import { defaultAgentHome, prepareAgentHome, seedAgentHome } from '../sandbox/agent-home.js';
import { modelEnv } from '../inference/agent-env.js';
import { proxyEnv } from '../sandbox/proxy-env.js';
import { loadRegistry } from '../registry/load.js';
import { isProvider, type InferenceProvider } from '../registry/schema.js';
import type { SandboxSession } from '../sandbox/sandbox-sessions.js';

export interface RunOptions {
  dirs: Dirs;
  agent: string;
  workspace: string;
  ro: string[];
  rw: string[];
  port: number;
  allowWeaker: boolean;
  /** Protected paths (.git, shell and editor config in writable roots) the agent may change anyway (`--allow-write`). */
  allowWrite: string[];
  /** Per-sandbox pids/memory/CPU limits given by the user (required when given); else the launcher's defaults. */
  limits?: SandboxLimits;
  /** Write `<workspace>/.mcp.json` naming the gateway URL when there is none. */
  mcpConfig: boolean;
  /** Start even when the nested-path scan could not look everywhere (`--allow-partial-scan`). */
  allowPartialScan?: boolean;
  /** The agent's own HOME (default: defaultAgentHome(agent)); `--home`. */
  home?: string;
  /** A directory of the agent's settings copied into its home (never overwriting); `--home-seed`. */
  homeSeed?: string;
  /** Providers whose standard variables (ANTHROPIC_BASE_URL, OPENAI_BASE_URL) win when an API has several; `--provider`. */
  providers?: string[];
  /** Open the egress proxy to this agent (`--egress`): HTTP(S)_PROXY inside, each connection decided by the policy's egress rules. */
  egress?: boolean;
  command: string[];
  /** Where the gateway and run messages go (never the agent's own output). */
  stderr: NodeJS.WritableStream;
  logger?: Logger;
}

/** The launcher gets a minimal environment too; it clears the agent's to an allowlist itself. */
function launcherEnv(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'LANG', 'TERM', 'TZ', SIMULATE_LANDLOCK_ABI_ENV, SIMULATE_NO_CGROUP_ENV];
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && (keep.includes(k) || k.startsWith('LC_'))) env[k] = v;
  return env;
}

interface Attached {
  session: SandboxSession;
  release(): Promise<void>;
}

/** The directories the running gateway actually uses (they may differ from this command's flags). */
async function gatewayDirs(dirs: Dirs): Promise<Dirs> {
  const control = new ControlClient(dirs.state);
  try {
    const d = ((await control.call('GET', '/status')) as { dirs?: Partial<Dirs> }).dirs;
    if (typeof d?.registry !== 'string' || typeof d.policies !== 'string' || typeof d.state !== 'string') {
      throw new GatehouseError('SANDBOX_FAILED', 'the running gateway did not say which registry, policies and state it uses; upgrade it (restart gatehouse serve)');
    }
    return { registry: d.registry, policies: d.policies, state: d.state };
  } finally {
    await control.close();
  }
}

/** The real path of an existing --ro/--rw path: what is checked is exactly what the launcher gets (it refuses anything else). */
function realPath(flag: string, path: string): string {
  try {
    return realpathSync(path);
  } catch {
    throw new GatehouseError('USAGE', `${flag} ${path} does not exist`);
  }
}

/** Refuses (exit 2) when a path the agent would see holds, or lies in, what must stay outside. */
function checkExposure(workspace: string, ro: string[], rw: string[], home: string, dirs: Dirs): void {
  const exposed: Exposed[] = [
    { flag: '--workspace', path: workspace },
    { flag: '--home', path: home },
    ...rw.map((path) => ({ flag: '--rw' as const, path })),
    ...ro.map((path) => ({ flag: '--ro' as const, path })),
  ];
  assertNoOverlap(exposed, protectedPaths(dirs));
}

/** The host's own `.mcp.json`, written without following any link the agent left, removed only if it is still ours. */
function writeMcpConfig(workspace: string, url: string, stderr: NodeJS.WritableStream): { dir: SafeDir; file: Stats } | undefined {
  const dir = SafeDir.open(workspace);
  const there = dir.lstat('.mcp.json');
  if (there) {
    if (!there.isFile()) stderr.write(`gatehouse run: warning: ${workspace}/.mcp.json is ${there.isSymbolicLink() ? 'a symlink' : 'not a regular file'}; left alone (not written, not followed)\n`);
    dir.close();
    return undefined;
  }
  const file = dir.createExclusive('.mcp.json', JSON.stringify({ mcpServers: { gatehouse: { type: 'http', url } } }, null, 2) + '\n');
  if (!file) {
    dir.close();
    return undefined;
  }
  return { dir, file };
}

/** The providers of a registry folder; an unreadable registry gives none (the gateway reports it). */
function providersIn(registry: string): InferenceProvider[] {
  try {
    return loadRegistry(registry).connectors.filter(isProvider);
  } catch {
    return [];
  }
}

/** Opens a sandbox session on the running `gatehouse serve`, held by a lease connection. */
async function attach(dirs: Dirs, agent: string, port: number, egress: boolean): Promise<Attached> {
  const control = new ControlClient(dirs.state);
  try {
    let session: SandboxSession;
    try {
      session = (await control.call('POST', '/sandbox/sessions', { agent, port, ...(egress ? { egress } : {}) })) as SandboxSession;
    } catch (e) {
      if (e instanceof GatehouseError && e.code !== 'GATEWAY_UNAVAILABLE') throw new GatehouseError('SANDBOX_FAILED', `the running gateway refused the sandbox session: ${e.message}`);
      throw e;
    }
    const endLease = await control.hold(`/sandbox/sessions/${encodeURIComponent(session.id)}/lease`);
    return {
      session,
      async release() {
        endLease();
        await control.call('DELETE', `/sandbox/sessions/${encodeURIComponent(session.id)}`).catch(() => undefined);
        await control.close();
      },
    };
  } catch (e) {
    await control.close();
    throw e;
  }
}

/**
 * `gatehouse run`: one confined agent whose only egress is the gateway. Attaches
 * to a running `gatehouse serve` (its control socket) or starts a gateway in
 * this process. Returns the agent's exit code; cleans up on every path.
 */
export async function runSandboxed(opts: RunOptions): Promise<number> {
  const launcher = launcherPath();
  if (!existsSync(launcher)) throw new GatehouseError('SANDBOX_UNAVAILABLE', `the sandbox launcher is not built (${launcher}); run: npm run build`);
  let workspace: string;
  try {
    workspace = realpathSync(opts.workspace);
    if (!statSync(workspace).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new GatehouseError('USAGE', `--workspace ${opts.workspace} is not an existing directory`);
  }

  const ro = opts.ro.map((p) => realPath('--ro', p));
  const rw = opts.rw.map((p) => realPath('--rw', p));
  const attaching = await gatewayRunning(opts.dirs.state);
  const used = attaching ? await gatewayDirs(opts.dirs) : opts.dirs;
  // Checked before it is made: a --home inside the state directory is refused before anything is created there.
  checkExposure(workspace, ro, rw, canonical(opts.home ?? defaultAgentHome(used.state, opts.agent)), used);
  const home = prepareAgentHome(opts.home ?? defaultAgentHome(used.state, opts.agent));
  if (home === workspace || home.startsWith(`${workspace}/`) || workspace.startsWith(`${home}/`)) {
    throw new GatehouseError('USAGE', `--home ${home} and --workspace ${workspace} overlap: the agent's home is its own, apart from the work (choose another --home)`);
  }
  if (opts.homeSeed !== undefined) {
    const r = seedAgentHome(home, realPath('--home-seed', opts.homeSeed));
    opts.stderr.write(`gatehouse run: home ${home}: ${r.copied} file(s) seeded, ${r.kept} already there (kept)\n`);
    for (const s of r.skipped) opts.stderr.write(`gatehouse run: warning: --home-seed: skipped ${s}\n`);
  }
  // Model providers the agent can reach through the gateway (/llm/<name>): the variables agent CLIs read.
  const models = modelEnv(providersIn(used.registry), `http://127.0.0.1:${opts.port}`, opts.providers ?? []);
  if (sharesFilesystem(workspace, opts.dirs.state)) opts.stderr.write(`gatehouse run: warning: ${sharedDiskWarning(opts.dirs.state, workspace)}\n`);

  const cleanups: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const f of cleanups.reverse()) await Promise.resolve(f()).catch(() => undefined);
  };
  try {
    let session: SandboxSession;
    if (attaching) {
      const a = await attach(opts.dirs, opts.agent, opts.port, opts.egress === true);
      cleanups.push(() => a.release());
      session = a.session;
    } else {
      const logger = opts.logger ?? createLogger({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'warn', destination: opts.stderr });
      const gw: RunningGateway = await startGateway({ dirs: opts.dirs, tcp: false, logger, upstreamWaitMs: 10_000 });
      cleanups.push(() => gw.close());
      session = await gw.sandboxes.create(opts.agent, opts.port, { egress: opts.egress === true });
      cleanups.push(async () => void (await gw.sandboxes.close(session.id)));
    }

    const protect: string[] = [];
    if (opts.mcpConfig) {
      const written = writeMcpConfig(workspace, session.url, opts.stderr);
      if (written) {
        // Read-only inside the sandbox (the launcher binds it over itself): the agent cannot swap it for a link.
        protect.push(`${workspace}/.mcp.json`);
        cleanups.push(() => {
          written.dir.removeIfSame('.mcp.json', written.file);
          written.dir.close();
        });
      }
    }
    // Nested repositories, editor folders and core.hooksPath folders: read-only too (nested.ts).
    const guard = guardWorkspace(workspace, rw, (line) => opts.stderr.write(`gatehouse run: warning: ${line}\n`), opts.allowPartialScan === true);
    protect.push(...guard.protect);

    const args = buildLauncherArgs({
      socketPath: session.socketPath,
      port: session.port,
      workspace,
      ro,
      rw,
      env: { ...models.env, ...(session.egress ? proxyEnv(session.port) : {}), GATEHOUSE_MCP_URL: session.url, GATEHOUSE_AGENT: opts.agent },
      home,
      allowWeaker: opts.allowWeaker,
      ...(opts.limits ? { limits: opts.limits } : {}),
      protect,
      // Canonical, as the launcher requires; a link inside the workspace resolves outside it and is refused there.
      allowWrite: opts.allowWrite.map((p) => canonical(p)),
      command: opts.command,
    });
    const child = spawn(launcher, args, { stdio: ['inherit', 'inherit', 'pipe'], env: launcherEnv() });
    let stderrTail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      opts.stderr.write(chunk);
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-4096);
    });
    const forward = (sig: NodeJS.Signals) => () => {
      child.kill(sig);
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
    const handlers = signals.map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    cleanups.push(() => {
      for (const [s, h] of handlers) process.off(s, h);
    });
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', (e) => reject(new GatehouseError('SANDBOX_FAILED', `cannot start the launcher: ${e.message}`)));
      child.once('close', (c, sig) => resolve(c ?? 128 + (sig ? (signalNumber(sig) ?? 1) : 1)));
    });
    for (const line of guard.after()) opts.stderr.write(`gatehouse run: warning: ${line}\n`);
    // The launcher already said what failed on stderr; its own exit codes (124-127) are documented.
    const failure = launcherFailure(code, stderrTail);
    if (failure) opts.logger?.warn({ code, reason: failure.message }, 'sandbox launcher failed');
    return code;
  } finally {
    await cleanup();
  }
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return (constants.signals as Record<string, number | undefined>)[sig];
}
