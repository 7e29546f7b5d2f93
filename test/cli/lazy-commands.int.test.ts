// The CLI loads only the command it runs (src/cli/main.ts): `gatehouse token mint` does not load the
// gateway behind `serve` or the sandbox runner behind `run`. What each run loaded is read from a
// module resolve hook (node:module register) that lists every file URL it resolves on stderr.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/gateway.js';

let dir: string;
let hook: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gh-lazy-cli-'));
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (r.url.includes('/dist/src/')) process.stderr.write('LOADED ' + r.url.replace(/.*\\/dist\\/src\\//, '') + '\\n');
  return r;
}\n`,
  );
  hook = join(dir, 'register.mjs');
  writeFileSync(hook, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function gatehouse(args: string[]): { code: number | null; stdout: string; stderr: string; loaded: Set<string> } {
  const r = spawnSync(process.execPath, ['--import', hook, CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', GATEHOUSE_STATE: join(dir, 'state') },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const loaded = new Set<string>();
  const stderr: string[] = [];
  for (const line of r.stderr.split('\n')) {
    if (line.startsWith('LOADED ')) loaded.add(line.slice('LOADED '.length));
    else stderr.push(line);
  }
  return { code: r.status, stdout: r.stdout, stderr: stderr.join('\n'), loaded };
}

describe('gatehouse loads only the command it runs', () => {
  it('token mint --help loads the token command, not serve, run or the gateway behind them', () => {
    const r = gatehouse(['token', 'mint', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--agent <name>');
    expect(r.loaded.has('cli/token.js')).toBe(true);
    for (const other of ['cli/serve.js', 'cli/run.js', 'cli/connector.js', 'cli/console.js', 'app/gateway.js']) expect(r.loaded.has(other), other).toBe(false);
  });

  it('the shared flags before the command name are skipped with their values: gatehouse --state DIR tools --help', () => {
    const r = gatehouse(['--state', join(dir, 'other'), 'tools', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: gatehouse tools');
    expect(r.loaded.has('cli/tools.js')).toBe(true);
    expect(r.loaded.has('cli/serve.js')).toBe(false);
  });

  it('--version loads no command', () => {
    const r = gatehouse(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect([...r.loaded].filter((f) => f.startsWith('cli/') && f !== 'cli/main.js' && f !== 'cli/program.js' && f !== 'cli/command.js')).toEqual([]);
  });

  it('the top-level help still lists every command', () => {
    const r = gatehouse(['--help']);
    expect(r.code).toBe(0);
    for (const name of ['serve', 'run', 'status', 'client', 'doctor', 'token', 'policy', 'approvals', 'console', 'tools', 'secret', 'connector', 'logs', 'audit']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    }
  });

  it('a mistyped command still gets "did you mean" (every command is loaded to suggest one) and exit code 2', () => {
    const r = gatehouse(['tokn', 'mint']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('(Did you mean token?)');
  });

  it('what follows -- is never taken for a command name', () => {
    const r = gatehouse(['--', 'token']);
    expect(r.code).not.toBe(0);
    expect(r.loaded.has('cli/token.js')).toBe(true); // all are loaded: nothing named one before --
    expect(r.loaded.has('cli/serve.js')).toBe(true);
  });
});
