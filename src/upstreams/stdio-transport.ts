import { isAbsolute, resolve } from 'node:path';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Logger } from '../log.js';
import type { StdioConnector } from '../registry/schema.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { StdioTransport } from './stdio.js';

/**
 * The transport of a `stdio` connector: its environment is what the registry
 * entry gives (secrets rendered now; a rotation restarts the child) plus a
 * minimal base, never the gateway's own environment.
 */
export async function stdioTransport(c: StdioConnector, deps: { baseDir: string; secrets: SecretResolver; log: Logger }): Promise<Transport> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/',
    LANG: process.env.LANG ?? 'C.UTF-8',
  };
  for (const [k, v] of Object.entries(c.env)) env[k] = await deps.secrets.render(v, { connector: c.name, where: `env ${k}`, sink: 'env' });
  const command = c.command === 'node' ? process.execPath : c.command;
  const cwd = c.cwd === undefined ? deps.baseDir : isAbsolute(c.cwd) ? c.cwd : resolve(deps.baseDir, c.cwd);
  // A process group (under gatehouse-reaper where built), its exit watched, stdout and stderr bounded: stdio.ts.
  return new StdioTransport({ command, args: c.args, env, cwd }, { connector: c, log: deps.log });
}
