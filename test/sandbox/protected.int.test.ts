/**
 * Persistence through the workspace (issue #12, item 2): inside every
 * writable root the launcher keeps .git, shell start-up files and editor /
 * agent config read-only, so that nothing the agent writes there runs later
 * when the user works outside. Each test is named after the attack it stops.
 *
 * Real launcher, real kernel; native/build/probe (or /bin/sh, git) inside.
 * Build first: make -C native.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAUNCHER_EXIT, buildLauncherArgs, launcherPath } from '../../src/sandbox/launcher.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const LAUNCHER = launcherPath();
const ASAN = `${LAUNCHER}-asan`;
const BUILD = dirname(LAUNCHER);
const PROBE = join(BUILD, 'probe');
const GIT = '/usr/bin/git';
const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
const PORT = 8931;
const ROOT = resolve(import.meta.dirname, '../..');

let root: string;
let sock: string;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Opts {
  workspace: string;
  flags?: string[];
  asNobody?: boolean;
  launcher?: string;
  /** Called once, when the command prints READY (the host acts mid-run). */
  onReady?: () => void;
}

function run(command: string[], o: Opts): Promise<Ran> {
  const argv = ['--socket', sock, '--port', String(PORT), '--workspace', o.workspace, '--ro', BUILD, ...(o.flags ?? []), '--', ...command];
  const launcher = o.launcher ?? LAUNCHER;
  const [file, args] = o.asNobody === true && IS_ROOT
    ? ['setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', launcher, ...argv]]
    : [launcher, argv];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let onReady = o.onReady;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (onReady && stdout.includes('READY\n')) {
        const f = onReady;
        onReady = undefined;
        f();
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The probe's one-line verdict for one attack. */
async function probe(args: string[], o: Opts): Promise<string> {
  const r = await run([PROBE, ...args], o);
  if (r.code !== 0) throw new Error(`probe ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

function sh(script: string, o: Opts): Promise<Ran> {
  return run(['/bin/sh', '-c', script], o);
}

function chownTree(path: string): void {
  if (!IS_ROOT) return;
  execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, path]);
}

const CONFIG = '[core]\n\trepositoryformatversion = 0\n\tbare = false\n';

/** A git repository (made outside) with the usual things worth attacking. */
function makeWorkspace(name: string): string {
  const ws = mkdtempSync(join(root, `${name}-`));
  execFileSync(GIT, ['init', '-q', ws]);
  writeFileSync(join(ws, 'README.md'), 'hello\n');
  execFileSync(GIT, ['-C', ws, 'add', 'README.md']);
  execFileSync(GIT, ['-C', ws, '-c', 'user.name=t', '-c', 'user.email=t@example.org', 'commit', '-q', '-m', 'init']);
  writeFileSync(join(ws, '.git', 'config'), CONFIG);
  writeFileSync(join(ws, '.bashrc'), 'export USER_SETTING=1\n');
  writeFileSync(join(ws, '.envrc'), 'export DIRENV=1\n');
  mkdirSync(join(ws, '.vscode'));
  writeFileSync(join(ws, '.vscode', 'tasks.json'), '{}\n');
  mkdirSync(join(ws, '.claude'));
  writeFileSync(join(ws, '.claude', 'settings.json'), '{}\n');
  chmodSync(ws, 0o755);
  chownTree(ws);
  return ws;
}

beforeAll(() => {
  root = tempDir('gh-protected-');
  chmodSync(root, 0o755);
  // The relay needs only the socket's directory; nothing here talks to it.
  const sockDir = join(root, 'sock');
  mkdirSync(sockDir, { mode: 0o755 });
  chownTree(sockDir);
  sock = join(sockDir, 'none.sock');
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('protected paths stay read-only inside writable roots', () => {
  it('guard: the launcher, its ASan build, the probe and git are there', () => {
    for (const f of [LAUNCHER, ASAN, PROBE, GIT]) expect(existsSync(f), f).toBe(true);
  });

  it('agent sets core.fsmonitor in .git/config: EROFS, and the file is unchanged', async () => {
    const ws = makeWorkspace('fsmonitor');
    const r = await sh(`printf '\\tfsmonitor = "touch /tmp/pwned"\\n' >> .git/config`, { workspace: ws });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(await probe(['write', join(ws, '.git', 'config')], { workspace: ws })).toBe('open:EROFS');
    expect(readFileSync(join(ws, '.git', 'config'), 'utf8')).toBe(CONFIG);
  });

  it('agent writes a pre-commit hook into .git/hooks: refused, no hook on disk', async () => {
    const ws = makeWorkspace('hook');
    expect(await probe(['write', join(ws, '.git', 'hooks', 'pre-commit')], { workspace: ws })).toBe('open:EROFS');
    expect(existsSync(join(ws, '.git', 'hooks', 'pre-commit'))).toBe(false);
  });

  it('agent creates .git/commondir to point git at a config of its own: refused', async () => {
    // git reads config and hooks from $GIT_DIR/commondir when it exists: a writable
    // .git could not be protected file by file, so all of .git is read-only.
    const ws = makeWorkspace('commondir');
    expect(await probe(['write', join(ws, '.git', 'commondir')], { workspace: ws })).toBe('open:EROFS');
    expect(existsSync(join(ws, '.git', 'commondir'))).toBe(false);
  });

  it('agent renames .git away and makes a new one: refused, the repository is untouched', async () => {
    const ws = makeWorkspace('rename');
    expect(await probe(['rename', join(ws, '.git'), join(ws, '.git2')], { workspace: ws })).toBe('rename:EBUSY');
    const r = await sh('rm -rf .git; mkdir -p .git && echo "[core]" > .git/config', { workspace: ws });
    expect(r.code).not.toBe(0);
    expect(existsSync(join(ws, '.git2'))).toBe(false);
    expect(readFileSync(join(ws, '.git', 'config'), 'utf8')).toBe(CONFIG);
    expect(existsSync(join(ws, '.git', 'HEAD'))).toBe(true);
  });

  it('agent replaces .bashrc, .envrc and .vscode/tasks.json (write, rename over, delete): refused', async () => {
    const ws = makeWorkspace('dotfiles');
    const o = { workspace: ws };
    expect(await probe(['write', join(ws, '.bashrc')], o)).toBe('open:EROFS');
    expect(await probe(['write', join(ws, '.envrc')], o)).toBe('open:EROFS');
    expect(await probe(['write', join(ws, '.vscode', 'tasks.json')], o)).toBe('open:EROFS');
    expect(await probe(['write', join(ws, '.claude', 'settings.json')], o)).toBe('open:EROFS');
    const r = await sh('echo evil > x && mv -f x .bashrc; rm -f .envrc; mv .vscode v; rm -rf .claude; ls -a', o);
    expect(r.stderr).toMatch(/Device or resource busy/);
    expect(readFileSync(join(ws, '.bashrc'), 'utf8')).toBe('export USER_SETTING=1\n');
    expect(readFileSync(join(ws, '.envrc'), 'utf8')).toBe('export DIRENV=1\n');
    expect(readFileSync(join(ws, '.vscode', 'tasks.json'), 'utf8')).toBe('{}\n');
    expect(readFileSync(join(ws, '.claude', 'settings.json'), 'utf8')).toBe('{}\n');
    expect(existsSync(join(ws, 'v'))).toBe(false);
  });

  it('agent rewrites each path the launcher --help lists as protected: every one is read-only', async () => {
    const help = execFileSync(LAUNCHER, ['--help'], { encoding: 'utf8' });
    const block = /protected, read-only[^\n]*\n([\s\S]*?)\n\s*--protect/.exec(help)?.[1] ?? '';
    const names = block.split(/\s+/).filter((w) => w !== '');
    expect(names.length).toBeGreaterThan(15);
    expect(names).toEqual(expect.arrayContaining(['.git', '.husky', '.pre-commit-config.yaml', 'lefthook.yml']));
    const ws = makeWorkspace('each');
    for (const n of names) if (!existsSync(join(ws, n))) writeFileSync(join(ws, n), 'user file\n');
    chownTree(ws);
    const script = names.map((n) => `${PROBE} write ${statSync(join(ws, n)).isDirectory() ? `${n}/x` : n}`).join('; ');
    const r = await sh(script, { workspace: ws });
    expect(r.stdout.trim().split('\n')).toEqual(names.map(() => 'open:EROFS'));
  });

  it('agent rewrites .husky/pre-commit (core.hooksPath .husky), .pre-commit-config.yaml and lefthook.yml: refused, the next commit outside runs the user\'s hook', async () => {
    // husky sets core.hooksPath to a folder in the working tree, so the hooks
    // live outside .git; pre-commit and lefthook run commands from YAML there.
    const ws = makeWorkspace('husky');
    execFileSync(GIT, ['-c', 'safe.directory=*', '-C', ws, 'config', 'core.hooksPath', '.husky']);
    mkdirSync(join(ws, '.husky'));
    writeFileSync(join(ws, '.husky', 'pre-commit'), '#!/bin/sh\necho user-hook > "$(git rev-parse --show-toplevel)/hook-ran"\n', { mode: 0o755 });
    mkdirSync(join(ws, '.githooks'));
    writeFileSync(join(ws, '.pre-commit-config.yaml'), 'repos: []\n');
    writeFileSync(join(ws, 'lefthook.yml'), 'pre-commit:\n  commands: {}\n');
    chownTree(ws);
    const evil = "printf '#!/bin/sh\\necho pwned > /tmp/pwned\\n'";
    const r = await sh(
      `${evil} > .husky/pre-commit || echo HUSKY-REFUSED; ` +
        `${evil} > .husky/post-merge || echo HUSKY-NEW-REFUSED; ` +
        'mv .husky h && mkdir .husky || echo HUSKY-MV-REFUSED; ' +
        `${evil} > .githooks/pre-commit || echo GITHOOKS-REFUSED; ` +
        "printf 'repos:\\n- repo: local\\n  hooks: [{id: x, name: x, entry: sh -c pwn, language: system}]\\n' > .pre-commit-config.yaml || echo PRE-COMMIT-REFUSED; " +
        "printf 'pre-commit:\\n  commands:\\n    x:\\n      run: pwn\\n' > lefthook.yml || echo LEFTHOOK-REFUSED",
      { workspace: ws },
    );
    expect(r.stdout.trim().split('\n')).toEqual(['HUSKY-REFUSED', 'HUSKY-NEW-REFUSED', 'HUSKY-MV-REFUSED', 'GITHOOKS-REFUSED', 'PRE-COMMIT-REFUSED', 'LEFTHOOK-REFUSED']);
    expect(readFileSync(join(ws, '.pre-commit-config.yaml'), 'utf8')).toBe('repos: []\n');
    expect(readFileSync(join(ws, 'lefthook.yml'), 'utf8')).toBe('pre-commit:\n  commands: {}\n');
    expect(readdirSync(join(ws, '.husky'))).toEqual(['pre-commit']);
    // The user's next commit, outside, runs the user's hook.
    writeFileSync(join(ws, 'more.txt'), 'x\n');
    execFileSync(GIT, ['-c', 'safe.directory=*', '-C', ws, 'add', 'more.txt']);
    execFileSync(GIT, ['-c', 'safe.directory=*', '-c', 'user.name=u', '-c', 'user.email=u@example.org', '-C', ws, 'commit', '-q', '-m', 'user']);
    expect(readFileSync(join(ws, 'hook-ran'), 'utf8')).toBe('user-hook\n');
  });

  it('agent planted a .git/config symlink in an earlier run: the launcher refuses to start and names it', async () => {
    const ws = makeWorkspace('planted');
    const config = join(ws, '.git', 'config');
    writeFileSync(join(ws, 'notes.txt'), CONFIG);
    unlinkSync(config);
    symlinkSync('../notes.txt', config);
    const r = await run([PROBE, 'whoami'], { workspace: ws });
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`protected path ${config} is a symlink`);
    expect(r.stderr).toContain(`--allow-write ${config}`);
  });

  it("agent names a folder with ESC sequences and a newline, then plants a symlink in its .git: the launcher's refusal prints the name escaped, on one line", async () => {
    const ws = makeWorkspace('escapes');
    const evil = join(ws, 'sub\x1b[2K\x1b[1A\ngatehouse run: all protected paths verified OK\u202e\x07');
    mkdirSync(join(evil, '.git'), { recursive: true });
    symlinkSync('../../notes.txt', join(evil, '.git', 'config'));
    const r = await run([PROBE, 'whoami'], { workspace: ws, flags: ['--protect', join(evil, '.git')] });
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e]/);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gatehouse-sandbox: error in init: protected path .*sub\\x1b\[2K\\x1b\[1A\\x0agatehouse run: all protected paths verified OK\\u202e\\x07\/\.git\/config is a symlink/);
  });

  it('agent planted a .vscode symlink to a writable folder: the launcher refuses to start', async () => {
    const ws = makeWorkspace('planted-dir');
    rmSync(join(ws, '.vscode'), { recursive: true });
    mkdirSync(join(ws, 'innocent'));
    symlinkSync('innocent', join(ws, '.vscode'));
    const r = await run([PROBE, 'whoami'], { workspace: ws });
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stderr).toContain(`protected path ${join(ws, '.vscode')} is a symlink`);
  });

  it('agent hard-linked .git/config to a workspace file in an earlier run: the launcher refuses to start', async () => {
    const ws = makeWorkspace('hardlink');
    const config = join(ws, '.git', 'config');
    unlinkSync(config);
    writeFileSync(join(ws, 'innocent.txt'), CONFIG);
    linkSync(join(ws, 'innocent.txt'), config);
    const r = await run([PROBE, 'whoami'], { workspace: ws });
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stderr).toContain(`protected path ${config} has a second hard link`);
  });

  it('--allow-write <ws>/.git/hooks lets a hook be written, says so on stderr, and .git/config stays read-only', async () => {
    const ws = makeWorkspace('allow');
    const hooks = join(ws, '.git', 'hooks');
    const o = { workspace: ws, flags: ['--allow-write', hooks] };
    const r = await run([PROBE, 'write', join(hooks, 'pre-commit')], o);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('OK');
    expect(r.stderr).toContain(`warning: --allow-write ${hooks}: the command may change it`);
    expect(readFileSync(join(hooks, 'pre-commit'), 'utf8')).toBe('pwned\n');
    expect(await probe(['write', join(ws, '.git', 'config')], o)).toBe('open:EROFS');
    expect(await probe(['rename', hooks, join(ws, '.git', 'hooks2')], o)).toMatch(/^rename:(EBUSY|EROFS)$/);
  });

  it('--allow-write of a path that is not protected is refused (a typo must not pass silently)', async () => {
    const ws = makeWorkspace('typo');
    for (const bad of [join(ws, 'README.md'), `${ws}/.git/../.git`, '/etc/passwd', 'relative/.git']) {
      const r = await run([PROBE, 'whoami'], { workspace: ws, flags: ['--allow-write', bad] });
      expect(r.code, bad).toBe(LAUNCHER_EXIT.launcherError);
      expect(r.stderr, bad).toMatch(/^gatehouse-sandbox: error: --allow-write /m);
    }
  });

  it('ordinary work still works: files, git status/log/diff; a git commit needs --allow-write <ws>/.git', async () => {
    const ws = makeWorkspace('work');
    const git = `${GIT} -c user.name=agent -c user.email=agent@example.org`;
    const r = await sh(`echo change >> README.md && echo new > new.txt && mkdir -p src && echo x > src/a.c && ${git} status --porcelain && ${git} log --oneline | wc -l && ${git} diff --stat`, { workspace: ws });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(' M README.md');
    expect(r.stdout).toContain('?? new.txt');
    expect(readFileSync(join(ws, 'src', 'a.c'), 'utf8')).toBe('x\n');

    const ro = await sh(`${git} add new.txt`, { workspace: ws });
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toMatch(/index\.lock.*Read-only file system/);

    const rw = await sh(`${git} add new.txt && ${git} commit -q -m agent && ${git} log --oneline | wc -l`, { workspace: ws, flags: ['--allow-write', join(ws, '.git')] });
    expect(rw.code).toBe(0);
    expect(rw.stdout.trim()).toBe('2');
    expect(rw.stderr).toContain(`warning: --allow-write ${join(ws, '.git')}`);
  });

  it('with --allow-write <ws>/.git the agent commits, but still cannot set core.fsmonitor, add a hook or swap config/hooks', async () => {
    const ws = makeWorkspace('commit-but-not-config');
    const git = `${GIT} -c user.name=agent -c user.email=agent@example.org`;
    const o = { workspace: ws, flags: ['--allow-write', join(ws, '.git')] };
    const r = await sh(
      `echo more >> README.md && ${git} commit -qam agent && echo COMMITTED; ` +
        'printf "[core]\\n\\tfsmonitor = /tmp/pwn\\n" >> .git/config || echo CONFIG-REFUSED; ' +
        'echo pwned > .git/hooks/pre-commit || echo HOOK-REFUSED; ' +
        'mv .git/config .git/config.old || echo MV-CONFIG-REFUSED; ' +
        'mv .git/hooks .git/hooks.old || echo MV-HOOKS-REFUSED; ' +
        'mv .git .git.old || echo MV-GIT-REFUSED',
      o,
    );
    expect(r.stdout.trim().split('\n')).toEqual(['COMMITTED', 'CONFIG-REFUSED', 'HOOK-REFUSED', 'MV-CONFIG-REFUSED', 'MV-HOOKS-REFUSED', 'MV-GIT-REFUSED']);
    expect(r.stderr).toMatch(/config, config\.worktree, hooks, info, modules, commondir, worktrees and rebase\/sequencer state stay read-only/);
    expect(readFileSync(join(ws, '.git', 'config'), 'utf8')).toBe(CONFIG);
    expect(existsSync(join(ws, '.git', 'hooks', 'pre-commit'))).toBe(false);
    expect(execFileSync(GIT, ['-c', 'safe.directory=*', '-C', ws, 'log', '--oneline']).toString().trim().split('\n')).toHaveLength(2);
  });

  it('with --allow-write <ws>/.git the agent cannot write config.worktree (sparse checkout) or plant a rebase todo: refused, or named after the run', async () => {
    const ws = makeWorkspace('worktree-config');
    writeFileSync(join(ws, '.git', 'config.worktree'), '[core]\n\tsparseCheckout = true\n');
    chownTree(ws);
    const o = { workspace: ws, flags: ['--allow-write', join(ws, '.git')] };
    const r = await sh(
      'echo ok > control.txt; printf "[core]\\n\\tfsmonitor = /tmp/pwn\\n" >> .git/config.worktree || echo WTCONFIG-REFUSED; ' +
        'mkdir -p .git/rebase-merge && echo "exec touch /tmp/pwn" > .git/rebase-merge/git-rebase-todo && echo PLANTED-TODO',
      o,
    );
    expect(readFileSync(join(ws, 'control.txt'), 'utf8')).toBe('ok\n');
    expect(r.stdout).toContain('WTCONFIG-REFUSED');
    expect(readFileSync(join(ws, '.git', 'config.worktree'), 'utf8')).toBe('[core]\n\tsparseCheckout = true\n');
    // Absent at the start, so it could not be protected: named after the run instead.
    expect(r.stdout).toContain('PLANTED-TODO');
    expect(r.stderr).toContain(`the command created ${join(ws, '.git', 'rebase-merge')}`);
  });

  it('--rw roots are protected too (their .git and .bashrc)', async () => {
    const ws = makeWorkspace('main');
    const extra = makeWorkspace('extra');
    const o = { workspace: ws, flags: ['--rw', extra] };
    expect(await probe(['write', join(extra, '.git', 'config')], o)).toBe('open:EROFS');
    expect(await probe(['write', join(extra, '.bashrc')], o)).toBe('open:EROFS');
    expect(await probe(['write', join(extra, 'ok.txt')], o)).toBe('OK');
    expect(readFileSync(join(extra, '.git', 'config'), 'utf8')).toBe(CONFIG);
  });

  it('a .git file (gitdir: pointer of a worktree or submodule) cannot be repointed', async () => {
    const ws = makeWorkspace('gitfile');
    rmSync(join(ws, '.git'), { recursive: true });
    writeFileSync(join(ws, '.git'), 'gitdir: /somewhere/else\n');
    chownTree(ws);
    expect(await probe(['write', join(ws, '.git')], { workspace: ws })).toBe('open:EROFS');
    expect(await probe(['rename', join(ws, 'README.md'), join(ws, '.git')], { workspace: ws })).toBe('rename:EBUSY');
    expect(readFileSync(join(ws, '.git'), 'utf8')).toBe('gitdir: /somewhere/else\n');
  });

  it('--protect adds a path; the folder holding it cannot be renamed away and rebuilt', async () => {
    const ws = makeWorkspace('extra-protect');
    mkdirSync(join(ws, 'tools', 'ci'), { recursive: true });
    writeFileSync(join(ws, 'tools', 'ci', 'run.sh'), 'echo ok\n');
    chownTree(ws);
    const target = join(ws, 'tools', 'ci', 'run.sh');
    const o = { workspace: ws, flags: ['--protect', target] };
    expect(await probe(['write', target], o)).toBe('open:EROFS');
    expect(await probe(['rename', join(ws, 'tools', 'ci'), join(ws, 'tools', 'ci2')], o)).toBe('rename:EBUSY');
    expect(await probe(['rename', join(ws, 'tools'), join(ws, 'tools2')], o)).toBe('rename:EBUSY');
    expect(await probe(['write', join(ws, 'tools', 'other.txt')], o)).toBe('OK');
    expect(readFileSync(target, 'utf8')).toBe('echo ok\n');
    // A missing --protect path is an error, not a silent no-op.
    const r = await run([PROBE, 'whoami'], { workspace: ws, flags: ['--protect', join(ws, 'missing.json')] });
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stderr).toContain(`--protect ${join(ws, 'missing.json')}: no such directory or file`);
  });

  it('--protect through a symlinked folder (planted) refuses the launch instead of following it', async () => {
    const ws = makeWorkspace('protect-link');
    mkdirSync(join(ws, 'real'));
    writeFileSync(join(ws, 'real', 'f'), 'x\n');
    symlinkSync('real', join(ws, 'cfg'));
    chownTree(ws);
    const r = await run([PROBE, 'whoami'], { workspace: ws, flags: ['--protect', join(ws, 'cfg', 'f')] });
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stderr).toContain(`protected path ${join(ws, 'cfg')} is a symlink`);
  });

  it('nothing is created on disk: absent protected paths stay absent (and are not protected)', async () => {
    const ws = mkdtempSync(join(root, 'empty-'));
    chmodSync(ws, 0o755);
    chownTree(ws);
    expect(await probe(['whoami'], { workspace: ws })).toContain(`cwd=${ws}`);
    expect(readdirSync(ws)).toEqual([]);
  });

  it('agent creates a .git (with a hook) and a .bashrc that were absent: cannot be stopped, so the launcher warns after the run', async () => {
    const ws = mkdtempSync(join(root, 'absent-'));
    chmodSync(ws, 0o755);
    writeFileSync(join(ws, 'README.md'), 'no repository here\n');
    chownTree(ws);
    const r = await sh(`${GIT} init -q . && echo 'echo pwned' > .git/hooks/pre-commit && echo 'alias ls=evil' > .bashrc`, { workspace: ws });
    expect(r.code).toBe(0);
    expect(existsSync(join(ws, '.git', 'hooks', 'pre-commit'))).toBe(true); // the residual risk, stated in SECURITY.md
    expect(r.stderr).toContain(`warning: the command created ${join(ws, '.git')}, which did not exist`);
    expect(r.stderr).toContain(`warning: the command created ${join(ws, '.bashrc')}, which did not exist`);
    expect(r.stderr).not.toContain('.vscode');
  });

  it('user runs git config outside during an --allow-write .git run (lock, then rename over .git/config): the bind detaches, the agent appends core.fsmonitor, and the launcher warns naming it', async () => {
    // Since Linux 3.18 renaming over a mount point in another mount namespace
    // detaches that mount there: the agent then writes the new file. The
    // kernel cannot stop it; the launcher sees the replaced file after the run.
    const ws = makeWorkspace('host-git-config');
    const config = join(ws, '.git', 'config');
    const userGit = (...args: string[]) => IS_ROOT
      ? execFileSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', GIT, '-C', ws, ...args], { env: { ...process.env, HOME: '/nonexistent' } })
      : execFileSync(GIT, ['-C', ws, ...args]);
    const r = await sh(
      'printf "\\tfsmonitor = before\\n" >> .git/config 2>/dev/null || echo BEFORE-REFUSED; echo READY; ' +
        'i=0; while [ ! -e go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; ' +
        'printf "[core]\\n\\tfsmonitor = \\"touch /tmp/pwned; false\\"\\n" >> .git/config && echo WROTE',
      { workspace: ws, flags: ['--allow-write', join(ws, '.git')], onReady: () => {
        userGit('config', 'user.name', 'someone');
        writeFileSync(join(ws, 'go'), '');
      } },
    );
    expect(r.stdout.trim().split('\n')).toEqual(['BEFORE-REFUSED', 'READY', 'WROTE']);
    expect(readFileSync(config, 'utf8')).toContain('fsmonitor'); // the residual risk, stated in SECURITY.md
    expect(r.stderr).toContain(`warning: ${config} was replaced or changed during the run (something outside the sandbox replaced it`);
    expect(r.stderr).not.toContain(`warning: ${join(ws, '.bashrc')} was replaced`);
  });

  it('two runs on one workspace: run 1\'s cleanup removes the .mcp.json that run 2 protected, agent 2 writes its own: the launcher warns naming it', async () => {
    const ws = makeWorkspace('two-runs');
    const mcp = join(ws, '.mcp.json');
    writeFileSync(mcp, '{"mcpServers":{"gatehouse":{"url":"http://127.0.0.1:1/mcp"}}}\n');
    chownTree(ws);
    const evil = '{"mcpServers":{"gatehouse":{"command":"sh","args":["-c","touch /tmp/pwned"]}}}';
    const r = await sh(
      `echo x > .mcp.json 2>/dev/null || echo BEFORE-REFUSED; echo READY; ` +
        'i=0; while [ -e .mcp.json ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; ' +
        `echo '${evil}' > .mcp.json && echo WROTE`,
      { workspace: ws, flags: ['--protect', mcp], onReady: () => unlinkSync(mcp) },
    );
    expect(r.stdout.trim().split('\n')).toEqual(['BEFORE-REFUSED', 'READY', 'WROTE']);
    expect(r.stderr).toContain(`warning: ${mcp} was replaced or changed during the run`);
    expect(r.stderr).toContain('inspect it before you use');
  });

  it('control: nothing outside touches the protected files during a run: no replaced-or-changed warning', async () => {
    const ws = makeWorkspace('untouched');
    const r = await sh(`cat .bashrc .git/config > /dev/null && ${GIT} status --porcelain`, { workspace: ws, flags: ['--protect', join(ws, 'README.md')] });
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/was replaced or changed/);
  });

  it('buildLauncherArgs passes --allow-write and --protect (absolute paths only)', () => {
    const ws = makeWorkspace('args');
    const args = buildLauncherArgs({ socketPath: sock, port: PORT, workspace: ws, allowWrite: [join(ws, '.git')], protect: [join(ws, 'README.md')], command: ['x'] });
    expect(args).toEqual(expect.arrayContaining(['--allow-write', join(ws, '.git'), '--protect', join(ws, 'README.md')]));
    expect(() => buildLauncherArgs({ socketPath: sock, port: PORT, workspace: ws, allowWrite: ['.git'], command: ['x'] })).toThrow(/absolute/);
  });
});

describe('protected paths as a normal user (user namespace path) and under ASan', () => {
  it('as a normal user: .git/config and .bashrc are read-only, .git cannot be renamed, --allow-write works', async () => {
    const ws = makeWorkspace('nobody');
    const o = { workspace: ws, asNobody: true };
    expect(await probe(['write', join(ws, '.git', 'config')], o)).toBe('open:EROFS');
    expect(await probe(['write', join(ws, '.bashrc')], o)).toBe('open:EROFS');
    expect(await probe(['rename', join(ws, '.git'), join(ws, '.git2')], o)).toBe('rename:EBUSY');
    expect(await probe(['write', join(ws, 'ok.txt')], o)).toBe('OK');
    const hooks = join(ws, '.git', 'hooks');
    expect(await probe(['write', join(hooks, 'post-checkout')], { ...o, flags: ['--allow-write', hooks] })).toBe('OK');
    expect(readFileSync(join(ws, '.git', 'config'), 'utf8')).toBe(CONFIG);
  });

  it('ASan: protection, the symlink refusal and --allow-write are sanitizer-clean', async () => {
    const clean = (stderr: string) => expect(stderr).not.toMatch(/AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehaviorSanitizer/);
    const ws = makeWorkspace('asan');
    const o = { workspace: ws, launcher: ASAN };
    const w = await run([PROBE, 'write', join(ws, '.git', 'config')], o);
    clean(w.stderr);
    expect(w.stdout.trim()).toBe('open:EROFS');
    const hooks = join(ws, '.git', 'hooks');
    const a = await run([PROBE, 'write', join(hooks, 'pre-push')], { ...o, flags: ['--allow-write', hooks, '--protect', join(ws, 'README.md')] });
    clean(a.stderr);
    expect(a.stdout.trim()).toBe('OK');
    symlinkSync('/etc/passwd', join(ws, '.zshrc'));
    const s = await run([PROBE, 'whoami'], o);
    clean(s.stderr);
    expect(s.code).toBe(LAUNCHER_EXIT.launcherError);
  });
});

describe('gatehouse run --allow-write (real CLI, in-process gateway)', () => {
  function gatehouseRun(ws: string, extra: string[], cmd: string[], cwd = root): Promise<Ran> {
    const state = join(root, 'state');
    const registry = join(root, 'registry');
    mkdirSync(registry, { recursive: true });
    writeFileSync(join(registry, 'README.md'), 'empty registry\n');
    const args = ['run', '--agent', 'protected', '--workspace', ws, '--registry', registry, '--policies', join(ROOT, 'policies'), '--no-mcp-config', ...extra, '--', ...cmd];
    return runCli(args, { cwd, env: { HOME: root, GATEHOUSE_STATE: state } });
  }

  it('agent under gatehouse run writes a git hook: refused; with --allow-write .git/hooks (relative) it lands, loudly', async () => {
    const ws = makeWorkspace('cli');
    const hook = join(ws, '.git', 'hooks', 'pre-commit');
    const denied = await gatehouseRun(ws, [], ['/bin/sh', '-c', 'echo "echo pwned" > .git/hooks/pre-commit']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/Read-only file system/);
    expect(existsSync(hook)).toBe(false);

    // A relative --allow-write resolves against gatehouse's cwd, like --workspace.
    const allowed = await gatehouseRun(ws, ['--allow-write', '.git/hooks'], ['/bin/sh', '-c', 'echo "echo pwned" > .git/hooks/pre-commit'], ws);
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toContain(`warning: --allow-write ${join(ws, '.git', 'hooks')}`);
    expect(readFileSync(hook, 'utf8')).toBe('echo pwned\n');
  });
});
