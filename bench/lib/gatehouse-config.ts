/** A temporary registry/policies/state for a gateway in front of the bench echo upstream. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Dirs } from '../../src/config/paths.js';
import { DIST_BENCH } from './procs.js';

export const BENCH_SECRET = { name: 'bench-upstream-key', value: 'bench-s3cr3t-value-0123456789' };
/** The echo tool as an agent sees it through Gatehouse (connector "echo"). */
export const GATEHOUSE_ECHO_TOOL = 'echo__echo';

/**
 * The upstream the connector "echo" fronts: the HTTP echo server at a URL
 * (procs/echo-upstream.ts), or the stdio echo server (procs/echo-stdio.ts)
 * the gateway starts itself, confined (the default) or with `sandbox: off`.
 */
export type BenchUpstream = string | { stdio: 'confined' | 'off' };

/** The `echo` connector's registry entry: the secret in a header (http) or in the server's env (stdio). */
function echoConnector(upstream: BenchUpstream): Record<string, unknown> {
  const secret = `\${secret:${BENCH_SECRET.name}}`;
  if (typeof upstream === 'string') return { kind: 'http', url: upstream, headers: { 'X-Bench-Key': secret } };
  return {
    kind: 'stdio',
    command: process.execPath,
    args: [join(DIST_BENCH, 'procs', 'echo-stdio.js')],
    env: { BENCH_KEY: secret },
    ...(upstream.stdio === 'off' ? { sandbox: 'off' } : {}),
  };
}

/**
 * One connector with a `${secret:...}` header (http) or env variable (stdio),
 * and a policy of a realistic size (a deny rule, an agent-scoped rule with an
 * argument check, a rate limit that is never reached, then the allow).
 * `unpinned`: the connector with `pin: off` and `results.invisible: off`.
 */
export function writeGatehouseConfig(root: string, upstream: BenchUpstream, opts: { unpinned?: boolean } = {}): Dirs {
  const dirs = benchDirs(root);
  writeFileSync(
    join(dirs.registry, 'echo.yaml'),
    stringify({
      name: 'echo',
      description: 'bench echo upstream',
      ...echoConnector(upstream),
      tools: { allow: ['*'], deny: [] },
      // Tool pinning and result screening (issue #16) are on by default; the bench turns both off
      // in one extra gateway so their per-call cost shows side by side.
      ...(opts.unpinned ? { pin: 'off', results: { invisible: 'off' } } : {}),
    }),
  );
  writeFileSync(
    join(dirs.policies, 'bench.yaml'),
    stringify({
      version: 1,
      default: 'deny',
      rules: [
        { id: 'no-deletes', match: { tool: '*__{delete_*,remove_*}' }, effect: 'deny' },
        { id: 'no-secrets-paths', match: { tool: 'echo__*', args: { text: { regex: '.*/etc/shadow.*' } } }, effect: 'deny' },
        { id: 'echo-limit', match: { agent: 'bench-*', tool: 'echo__echo' }, effect: 'allow', limit: '10000000/minute' },
        { id: 'echo', match: { tool: 'echo__*' }, effect: 'allow' },
      ],
    }),
  );
  return dirs;
}

/** registry/, policies/ and state/ under `root`, made. */
export function benchDirs(root: string): Dirs {
  const dirs: Dirs = { registry: join(root, 'registry'), policies: join(root, 'policies'), state: join(root, 'state') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  return dirs;
}
