/**
 * Confined stdio connectors: every `kind: stdio` MCP server runs under
 * gatehouse-sandbox (issue #15) unless its registry entry says `sandbox: off`.
 *
 * What the server sees: the system directories (read-only, as for agents),
 * its own package read-only (the directory of the command and of each file
 * argument: the outermost `node_modules` it lies in, else the nearest folder
 * with a package.json, else the file's folder), the entry's `sandbox.ro` /
 * `sandbox.rw`, a private writable folder `<state>/connectors/NAME` (its HOME
 * and, unless its `cwd` lies in what it sees, its cwd), a private /tmp, and
 * its registry `env`. Not the users' homes, the state directory (keys, audit,
 * sockets), the keychain, D-Bus or any unix socket; no network but the relay
 * to its own egress socket, where the gateway's egress proxy decides each
 * connection as this connector (registry `egress:` entries plus the policy).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { Dirs } from '../config/paths.js';
import type { EgressProxy } from '../egress/proxy.js';
import { GatehouseError } from '../errors.js';
import { connectorEgressRules } from '../policy/egress.js';
import { hostOf, portOf } from '../registry/fields.js';
import { isLoaderVariable, LAUNCHER_SWITCH_PREFIX, type StdioConnector } from '../registry/schema.js';
import { ensureRunDir } from '../server/control.js';
import type { ConfineStdio, ConfinedServer } from '../upstreams/stdio-transport.js';
import { findCommand, type StdioServer } from '../upstreams/stdio.js';
import { buildLauncherArgs, launcherPath } from './launcher.js';
import { overlaps, protectedPaths, type Exposed } from './overlap.js';
import { proxyEnv } from './proxy-env.js';

/** The relay's port inside a connector's sandbox: HTTP(S)_PROXY points at it. */
export const CONNECTOR_PROXY_PORT = 3128;

/** Already visible read-only in every sandbox (native/src/mounts.c): nothing to add for a file in them. */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt'];

const inside = (path: string, dir: string): boolean => path === dir || path.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`);

/** The folder a server's file belongs to, to be seen read-only (see the file comment); undefined when the system dirs hold it. */
export function packageDirOf(file: string): string | undefined {
  if (SYSTEM_DIRS.some((d) => inside(file, d))) return undefined;
  const nm = file.indexOf(`${sep}node_modules${sep}`);
  if (nm !== -1) return file.slice(0, nm + `${sep}node_modules`.length);
  for (let d = dirname(file); ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d === sep ? dirname(file) : d;
    if (dirname(d) === d) return dirname(file);
  }
}

function realFile(path: string): string | undefined {
  try {
    const real = realpathSync(path);
    return statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps the outermost of nested folders (a bind inside another adds nothing). */
function outermost(dirs: string[]): string[] {
  const unique = [...new Set(dirs)].sort();
  return unique.filter((d) => !unique.some((o) => o !== d && inside(d, o)));
}

export interface ConnectorConfinerDeps {
  dirs: Dirs;
  /** The gateway's egress proxy; without it every connection out of a connector is refused. */
  egress?: EgressProxy;
  /** For tests: the environment whose HOME and users' homes are protected. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The launcher's own environment: the server's variables (secrets rendered
 * into them) ride here and are kept by name (`--env-keep`), never as
 * `--env NAME=VALUE` on a command line every local user can read.
 */
function launcherEnv(serverEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'LANG']) if (process.env[k] !== undefined) env[k] = process.env[k];
  // The registry refuses them; kept out here too, as the launcher itself would obey them (its switches, its loader).
  for (const [k, v] of Object.entries(serverEnv)) if (!k.startsWith(LAUNCHER_SWITCH_PREFIX) && !isLoaderVariable(k)) env[k] = v;
  return env;
}

/** One egress socket per running connector: every connection on it is that connector's. */
async function egressSocket(stateDir: string, name: string, deps: ConnectorConfinerDeps, rules: ReturnType<typeof connectorEgressRules>): Promise<{ path: string; close(): void }> {
  const dir = join(ensureRunDir(stateDir), `c-${randomBytes(6).toString('hex')}`);
  mkdirSync(dir, { mode: 0o700 });
  chmodSync(dir, 0o700);
  const path = join(dir, 'egress.sock');
  const open = new Set<Socket>();
  const server: Server = createServer((socket) => {
    socket.on('error', () => undefined);
    if (deps.egress === undefined) return void socket.destroy();
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    deps.egress.accept(socket, { caller: { kind: 'connector', name }, rules });
  });
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(path, () => ok());
    });
    chmodSync(path, 0o600);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw new GatehouseError('SANDBOX_FAILED', `cannot open the egress socket of connector "${name}": ${(e as Error).message}`);
  }
  server.on('error', () => undefined);
  return {
    path,
    close() {
      server.close();
      for (const s of open) s.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What `connectorConfiner` plans for one start (exported for tests and `connector test`). */
export interface ConnectorPlan {
  ro: string[];
  rw: string[];
  workspace: string;
  cwd: string;
  command: string[];
  env: Record<string, string>;
}

/** The paths, cwd and command line of one confined start; throws CONFIG_INVALID when it would expose what must stay outside. */
export function planConnector(c: StdioConnector, server: StdioServer, deps: Pick<ConnectorConfinerDeps, 'dirs' | 'env'>): ConnectorPlan {
  const exe = realFile(findCommand(server.command, server.env, server.cwd));
  if (exe === undefined) throw new GatehouseError('UPSTREAM_UNAVAILABLE', `connector "${c.name}": command ${JSON.stringify(server.command)} is not a file`);
  // An argument naming a file (a script) becomes its real path: inside, the cwd may be another folder, and only
  // the real path is bound (a symlink's own folder is not).
  const files: string[] = [];
  const args = server.args.map((a) => {
    if (a.startsWith('-')) return a;
    const f = realFile(isAbsolute(a) ? a : resolve(server.cwd, a));
    if (f === undefined) return a;
    files.push(f);
    return f;
  });
  const ro = outermost([exe, ...files].map(packageDirOf).filter((d): d is string => d !== undefined));
  const extra = c.sandbox === 'off' ? { ro: [], rw: [] } : c.sandbox;
  const canon = (p: string, key: string): string => {
    try {
      return realpathSync(p);
    } catch {
      throw new GatehouseError('CONFIG_INVALID', `${c.file}: sandbox.${key}: ${p} does not exist`);
    }
  };
  const extraRo = extra.ro.map((p) => canon(p, 'ro'));
  const rw = extra.rw.map((p) => canon(p, 'rw'));
  const exposed: Exposed[] = [...[...ro, ...extraRo].map((path) => ({ flag: '--ro' as const, path })), ...rw.map((path) => ({ flag: '--rw' as const, path }))];
  const problems = overlaps(exposed, protectedPaths(deps.dirs, deps.env ?? process.env));
  if (problems.length > 0) {
    throw new GatehouseError(
      'CONFIG_INVALID',
      `connector "${c.name}" would see what must stay outside its sandbox: ${problems.join('; ')}. ` +
        `Install the server elsewhere (npm install --prefix /opt/mcp/${c.name} …) or change sandbox: in ${c.file}; sandbox: off only for a server you trust.`,
    );
  }
  const workspace = join(deps.dirs.state, 'connectors', c.name);
  mkdirSync(workspace, { recursive: true, mode: 0o700 });
  chmodSync(workspace, 0o700);
  const realWorkspace = realpathSync(workspace);
  let cwd = realWorkspace;
  try {
    const wanted = realpathSync(server.cwd);
    if ([...ro, ...extraRo, ...rw].some((d) => inside(wanted, d))) cwd = wanted;
  } catch {
    // A cwd that does not exist: the private folder.
  }
  const env: Record<string, string> = { ...server.env, HOME: realWorkspace, ...proxyEnv(CONNECTOR_PROXY_PORT) };
  return { ro: [...ro, ...extraRo], rw, workspace: realWorkspace, cwd, command: [exe, ...args], env };
}

/** The ConfineStdio the gateway gives its upstreams. */
export function connectorConfiner(deps: ConnectorConfinerDeps): ConfineStdio {
  return async (c, server): Promise<ConfinedServer> => {
    const plan = planConnector(c, server, deps);
    const rules = connectorEgressRules(c.name, c.egress.map((e) => ({ host: hostOf(e).toLowerCase(), port: portOf(e) })), c.file);
    const socket = await egressSocket(deps.dirs.state, c.name, deps, rules);
    try {
      const args = buildLauncherArgs({
        socketPath: socket.path,
        port: CONNECTOR_PROXY_PORT,
        workspace: plan.workspace,
        ro: plan.ro,
        rw: plan.rw,
        cwd: plan.cwd,
        envKeep: Object.keys(plan.env),
        command: plan.command,
      });
      return { server: { command: launcherPath(), args, env: launcherEnv(plan.env), cwd: plan.workspace }, release: () => socket.close() };
    } catch (e) {
      socket.close();
      throw e;
    }
  };
}
