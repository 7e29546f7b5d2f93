/**
 * Where git will run hooks from, for each repository the agent can reach.
 * `core.hooksPath` (repository, included, global or
 * system config; husky sets `.husky/_`, others `scripts/hooks`) can name a
 * folder of the worktree, which the agent can write: protected here. Also
 * a git directory reached through a `.git` *file* (`gitdir: elsewhere`)
 * inside a writable root, and the common dir of a linked worktree (its
 * config is the one git reads: `ws/.bare` of a bare clone with worktrees).
 *
 * Asked of git itself (`rev-parse --git-path hooks`, which applies
 * core.hooksPath, `~` and includes as git does), which reads config and
 * runs nothing: no index is read (so no core.fsmonitor), no hook, no pager
 * (stdout is a pipe). `-c safe.directory=*` is safe for that read only: the
 * ownership check guards against running what a stranger's config names,
 * and nothing is run; without it git ignores the repository's config as
 * root and we would miss its hooksPath.
 */
import { spawnSync } from 'node:child_process';
import { lstatSync } from 'node:fs';
import { dirname, isAbsolute, normalize } from 'node:path';
import { escapeText } from '../terminal.js';

export interface HookDirs {
  /** Existing hook folders and git directories inside a writable root, to `--protect`. */
  protect: string[];
  /** Hook folders configured but absent: the agent could create them. */
  absent: string[];
  /** Where git could not be asked (failed or timed out): its config could not be read either. */
  failed: string[];
  warnings: string[];
}

/** Env for git: where the user's own config is, and nothing that redirects the repository. */
export function gitEnv(ceiling?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0', GIT_PAGER: 'cat', PAGER: 'cat' };
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (['PATH', 'HOME', 'XDG_CONFIG_HOME', 'GIT_CONFIG_GLOBAL', 'GIT_CONFIG_SYSTEM', 'GIT_CONFIG_NOSYSTEM', 'GIT_CONFIG_COUNT'].includes(k) || /^GIT_CONFIG_(KEY|VALUE)_[0-9]+$/.test(k)) env[k] = v;
  }
  if (ceiling !== undefined) env.GIT_CEILING_DIRECTORIES = ceiling;
  return env;
}

type Asked = { gitDir: string; commonDir: string; hooks: string } | 'none' | 'no-git' | 'failed';

/** Where git is asked from: a folder (found as git finds it, up to `ceiling`), or a git directory named outright. */
export interface Target {
  dir: string;
  ceiling?: string;
  gitDir?: boolean;
}

/** The arguments and env that make git look at `t` (a git directory by --git-dir: found by our scan, not by discovery). */
export function targetArgs(t: Target): { args: string[]; env: NodeJS.ProcessEnv } {
  return { args: ['-c', 'safe.directory=*', ...(t.gitDir ? [`--git-dir=${t.dir}`] : ['-C', t.dir])], env: gitEnv(t.ceiling) };
}

export function targets(roots: readonly string[], nestedRepos: readonly string[], gitDirs: readonly string[]): Target[] {
  return [...roots.map((dir) => ({ dir })), ...nestedRepos.map((d) => ({ dir: d, ceiling: dirname(d) })), ...gitDirs.map((dir) => ({ dir, gitDir: true }))];
}

/**
 * One read-only git query about a target (5 s at most): its output, or
 * 'none' (not a repository, or one git refuses: then git reads nothing of it
 * for the user either), 'no-git', or 'failed'.
 */
export function runGit(t: Target, gitArgs: string[], maxBuffer: number): { stdout: string } | 'none' | 'no-git' | 'failed' {
  const { args, env } = targetArgs(t);
  const r = spawnSync('git', [...args, ...gitArgs], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000, encoding: 'utf8', maxBuffer });
  if (r.error) return (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no-git' : 'failed';
  if (r.status === 128) return 'none';
  if (r.status !== 0 || r.signal !== null) return 'failed';
  return { stdout: r.stdout };
}

function ask(t: Target): Asked {
  const r = runGit(t, ['rev-parse', '--path-format=absolute', '--absolute-git-dir', '--git-common-dir', '--git-path', 'hooks'], 1 << 20);
  if (typeof r === 'string') return r;
  const [gitDir, commonDir, hooks] = r.stdout.split('\n');
  if (gitDir === undefined || commonDir === undefined || hooks === undefined || ![gitDir, commonDir, hooks].every((p) => isAbsolute(p))) return 'failed';
  return { gitDir: normalize(gitDir), commonDir: normalize(commonDir), hooks: normalize(hooks) };
}

export function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

export function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * @param roots the writable roots (real paths); each is asked from itself, so
 *   that a repository around the workspace whose hooksPath points into it counts
 * @param nestedRepos folders holding a `.git` found inside the roots
 * @param covered paths already protected whole (a `.git` inside is not protected twice)
 * @param gitDirs git directories under other names found inside the roots (asked by --git-dir)
 */
export function hookDirs(roots: readonly string[], nestedRepos: readonly string[], covered: readonly string[], gitDirs: readonly string[] = []): HookDirs {
  const out: HookDirs = { protect: [], absent: [], failed: [], warnings: [] };
  const seen = new Set<string>();
  const isCovered = (p: string) => covered.some((c) => under(p, c)) || out.protect.some((c) => under(p, c));
  const inRoot = (p: string) => roots.some((r) => p !== r && under(p, r));
  for (const t of targets(roots, nestedRepos, gitDirs)) {
    const dir = t.dir;
    const a = ask(t);
    if (a === 'no-git') return { protect: [], absent: [], failed: [], warnings: [] }; // no git: nothing here runs hooks
    if (a === 'none') continue;
    if (a === 'failed') {
      out.failed.push(dir);
      out.warnings.push(`could not ask git where the hooks of ${escapeText(dir)} are: a core.hooksPath there is not protected`);
      continue;
    }
    if (roots.includes(a.hooks)) {
      out.warnings.push(`core.hooksPath of ${escapeText(dir)} is ${escapeText(a.hooks)}, a folder the agent can write: hooks it adds there run when you commit; point core.hooksPath at a folder of its own`);
    }
    // The common dir first (a linked worktree's config and hooks are there, e.g. ws/.bare of a bare clone with worktrees): whole.
    for (const p of [a.commonDir, a.gitDir, a.hooks]) {
      if (seen.has(p) || !inRoot(p)) continue;
      seen.add(p);
      if (exists(p)) {
        if (!isCovered(p)) out.protect.push(p);
      } else if (p === a.hooks && !isCovered(p)) out.absent.push(p);
    }
  }
  for (const p of out.absent) {
    out.warnings.push(`core.hooksPath points to ${escapeText(p)}, which does not exist: the agent could create hooks there that git runs when you commit; create it first (mkdir) or unset core.hooksPath`);
  }
  return out;
}

/** After the run: configured hook folders that the agent created. */
export function reportHookDirs(absent: readonly string[]): string[] {
  return absent.filter(exists).map((p) => `the agent created ${escapeText(p)}, the hooks folder core.hooksPath names: git runs what is in it when you commit; inspect it before you do`);
}

/**
 * For `gatehouse doctor`: with safe.bareRepository=explicit git uses no
 * folder as a git directory unless it is named .git or given with --git-dir,
 * so an agent cannot turn a workspace folder into one (`src/HEAD`, `objects`,
 * `refs`, `config`). Read from / (system and global config only).
 */
export function bareRepositoryHint(): string | undefined {
  const r = spawnSync('git', ['-C', '/', 'config', '--get', 'safe.bareRepository'], { env: gitEnv(), stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000, encoding: 'utf8' });
  if (r.error || r.stdout.trim().toLowerCase() === 'explicit') return undefined;
  return 'git: safe.bareRepository is not "explicit": an agent can turn a folder of its workspace into a git directory whose config runs code when you use git there (gatehouse run names it afterwards). To stop git from using such folders: git config --global safe.bareRepository explicit';
}
