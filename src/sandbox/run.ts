import { spawn } from 'node:child_process';
import { existsSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { Dirs } from '../config/paths.js';
import { GatehouseError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { startGateway, type RunningGateway } from '../runtime.js';
import { controlSocketPath, socketAlive } from '../server/control.js';
import { buildLauncherArgs, launcherFailure, launcherPath, SIMULATE_LANDLOCK_ABI_ENV } from './launcher.js';
import type { SandboxSession } from './sessions.js';

export const DEFAULT_RELAY_PORT = 8931;

export interface RunOptions {
  dirs: Dirs;
  agent: string;
  workspace: string;
  ro: string[];
  rw: string[];
  port: number;
  allowWeaker: boolean;
  /** Write `<workspace>/.mcp.json` naming the gateway URL when there is none. */
  mcpConfig: boolean;
  command: string[];
  /** Where the gateway and run messages go (never the agent's own output). */
  stderr: NodeJS.WritableStream;
  logger?: Logger;
}

/** The launcher gets a minimal environment too; it clears the agent's to an allowlist itself. */
function launcherEnv(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'LANG', 'TERM', 'TZ', SIMULATE_LANDLOCK_ABI_ENV];
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && (keep.includes(k) || k.startsWith('LC_'))) env[k] = v;
  return env;
}

interface Attached {
  session: SandboxSession;
  release(): Promise<void>;
}

/** Opens a sandbox session on the running `gatehouse serve`, held by a lease connection. */
async function attach(dirs: Dirs, agent: string, port: number): Promise<Attached> {
  const dispatcher = new Agent({ connect: { socketPath: controlSocketPath(dirs.state), timeout: 2000 } });
  const res = await request('http://localhost/admin/v1/sandbox/sessions', {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ agent, port }),
  });
  const body = (await res.body.json()) as SandboxSession & { error?: { message?: string } };
  if (res.statusCode !== 201) {
    await dispatcher.close();
    throw new GatehouseError('SANDBOX_FAILED', `the running gateway refused the sandbox session: ${body.error?.message ?? res.statusCode}`);
  }
  const lease = new AbortController();
  const held = await request(`http://localhost/admin/v1/sandbox/sessions/${body.id}/lease`, { dispatcher, signal: lease.signal });
  held.body.on('error', () => undefined);
  held.body.resume();
  return {
    session: body,
    async release() {
      lease.abort();
      await request(`http://localhost/admin/v1/sandbox/sessions/${body.id}`, { method: 'DELETE', dispatcher })
        .then((r) => r.body.dump())
        .catch(() => undefined);
      await dispatcher.destroy().catch(() => undefined);
    },
  };
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

  const cleanups: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const f of cleanups.reverse()) await Promise.resolve(f()).catch(() => undefined);
  };
  try {
    let session: SandboxSession;
    if (await socketAlive(controlSocketPath(opts.dirs.state))) {
      const a = await attach(opts.dirs, opts.agent, opts.port);
      cleanups.push(() => a.release());
      session = a.session;
    } else {
      const logger = opts.logger ?? createLogger({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'warn', destination: opts.stderr });
      const gw: RunningGateway = await startGateway({ dirs: opts.dirs, tcp: false, logger, upstreamWaitMs: 10_000 });
      cleanups.push(() => gw.close());
      session = await gw.sandboxes.create(opts.agent, opts.port);
      cleanups.push(async () => void (await gw.sandboxes.close(session.id)));
    }

    if (opts.mcpConfig) {
      const file = join(workspace, '.mcp.json');
      if (!existsSync(file)) {
        writeFileSync(file, JSON.stringify({ mcpServers: { gatehouse: { type: 'http', url: session.url } } }, null, 2) + '\n');
        cleanups.push(() => rmSync(file, { force: true }));
      }
    }

    const args = buildLauncherArgs({
      socketPath: session.socketPath,
      port: session.port,
      workspace,
      ro: opts.ro,
      rw: opts.rw,
      env: { GATEHOUSE_MCP_URL: session.url, GATEHOUSE_AGENT: opts.agent },
      allowWeaker: opts.allowWeaker,
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
