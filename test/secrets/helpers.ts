import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { tempDir } from '../helpers/tmp.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const ENV_SERVER = join(ROOT, 'test', 'fixtures', 'env-server.mjs');

export const ALLOW_ALL = { version: 1, default: 'deny', rules: [{ id: 'all', match: { tool: '*' }, effect: 'allow' }] };

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (`node dist/src/cli/main.js ...`) with `env` only (plus PATH), `stdin` piped. */
export function runCli(args: string[], env: Record<string, string>, stdin = ''): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** A temporary registry/policies/state tree: one YAML file per connector (`spec` may use the tree's root). */
export function writeTree(spec: Record<string, unknown>[] | ((root: string) => Record<string, unknown>[]), policy: object = ALLOW_ALL) {
  const root = tempDir('gatehouse-secrets-');
  const connectors = typeof spec === 'function' ? spec(root) : spec;
  const dirs = { registry: join(root, 'registry'), policies: join(root, 'policies'), state: join(root, 'state') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  for (const c of connectors) writeFileSync(join(dirs.registry, `${String(c.name)}.yaml`), stringify(c));
  writeFileSync(join(dirs.policies, 'test.yaml'), stringify(policy));
  return { root, dirs };
}

export function dirFlags(dirs: { registry: string; policies: string; state: string }): string[] {
  return ['--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state];
}

export { until } from '../helpers/gateway.js';
