import { isAbsolute, resolve } from 'node:path';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { GatehouseError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StdioConnector } from '../registry/schema.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { StdioTransport, type StdioServer } from './stdio.js';

/** A stdio server as it will run confined: the launcher's command line, and what to undo when it stops. */
export interface ConfinedServer {
  server: StdioServer;
  /** Closes what the confinement opened for it (its egress socket). */
  release(): void;
}

/**
 * Wraps a stdio server in the sandbox launcher (src/sandbox/confine-connector.ts
 * provides it; upstreams cannot reach the sandbox room). Throws when the server
 * cannot run confined (the connector then fails with that reason).
 */
export type ConfineStdio = (c: StdioConnector, server: StdioServer, log: Logger) => Promise<ConfinedServer>;

/**
 * The transport of a `stdio` connector: its environment is what the registry
 * entry gives (secrets rendered now; a rotation restarts the child) plus a
 * minimal base, never the gateway's own environment. Confined under
 * gatehouse-sandbox unless the entry says `sandbox: off`; with no way to
 * confine it given, a connector that is not `off` does not start (fail closed).
 */
export async function stdioTransport(c: StdioConnector, deps: { baseDir: string; secrets: SecretResolver; log: Logger; confine?: ConfineStdio }): Promise<Transport> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/',
    LANG: process.env.LANG ?? 'C.UTF-8',
  };
  for (const [k, v] of Object.entries(c.env)) env[k] = await deps.secrets.render(v, { connector: c.name, where: `env ${k}`, sink: 'env' });
  const command = c.command === 'node' ? process.execPath : c.command;
  const cwd = c.cwd === undefined ? deps.baseDir : isAbsolute(c.cwd) ? c.cwd : resolve(deps.baseDir, c.cwd);
  const server: StdioServer = { command, args: c.args, env, cwd };
  if (c.sandbox === 'off') {
    // Loud on every start (issue #15): nothing but the reaper stands between this server and the user's files, keys and network.
    deps.log.warn({ file: c.file, sandbox: 'off' }, 'connector runs unconfined (sandbox: off): it can read your files and keys and reach the network');
    // A process group (under gatehouse-reaper where built), its exit watched, stdout and stderr bounded: stdio.ts.
    return new StdioTransport(server, { connector: c, log: deps.log });
  }
  if (deps.confine === undefined) {
    throw new GatehouseError('SANDBOX_UNAVAILABLE', `connector "${c.name}" runs confined (the default for kind: stdio) and nothing here can confine it; set sandbox: off in ${c.file} only for a server you trust`);
  }
  // The launcher is the server's pid 1's parent and kills the whole sandbox when it goes: no reaper needed.
  const confined = await deps.confine(c, server, deps.log);
  return new StdioTransport(confined.server, { connector: c, log: deps.log, reaper: null, onFinish: () => confined.release() });
}
