/**
 * Where git will run hooks from, for each repository the agent can reach
 * (issue #12, item 2). `core.hooksPath` (repository, included, global or
 * system config; husky sets `.husky/_`, others `scripts/hooks`) can name a
 * folder of the worktree, which the agent can write: protected here. Also
 * a git directory reached through a `.git` *file* (`gitdir: elsewhere`)
 * inside a writable root.
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
  warnings: string[];
}

/** Env for git: where the user's own config is, and nothing that redirects the repository. */
function gitEnv(ceiling?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0' };
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (['PATH', 'HOME', 'XDG_CONFIG_HOME', 'GIT_CONFIG_GLOBAL', 'GIT_CONFIG_SYSTEM', 'GIT_CONFIG_NOSYSTEM', 'GIT_CONFIG_COUNT'].includes(k) || /^GIT_CONFIG_(KEY|VALUE)_[0-9]+$/.test(k)) env[k] = v;
  }
  if (ceiling !== undefined) env.GIT_CEILING_DIRECTORIES = ceiling;
  return env;
}

type Asked = { gitDir: string; hooks: string } | 'none' | 'no-git' | 'failed';

function ask(dir: string, ceiling?: string): Asked {
  const r = spawnSync('git', ['-c', 'safe.directory=*', '-C', dir, 'rev-parse', '--path-format=absolute', '--absolute-git-dir', '--git-path', 'hooks'], {
    env: gitEnv(ceiling),
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 5000,
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.error) return (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no-git' : 'failed';
  if (r.status === 128) return 'none'; // not a repository (or one git cannot use, which then runs nothing either)
  const lines = r.stdout.split('\n');
  const [gitDir, hooks] = lines;
  if (r.status !== 0 || gitDir === undefined || hooks === undefined || !isAbsolute(gitDir) || !isAbsolute(hooks)) return 'failed';
  return { gitDir: normalize(gitDir), hooks: normalize(hooks) };
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

function exists(path: string): boolean {
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
 */
export function hookDirs(roots: readonly string[], nestedRepos: readonly string[], covered: readonly string[]): HookDirs {
  const out: HookDirs = { protect: [], absent: [], warnings: [] };
  const seen = new Set<string>();
  const isCovered = (p: string) => covered.some((c) => under(p, c)) || out.protect.some((c) => under(p, c));
  const inRoot = (p: string) => roots.some((r) => p !== r && under(p, r));
  const asks: Array<[string, string | undefined]> = [...roots.map((r) => [r, undefined] as [string, undefined]), ...nestedRepos.map((d) => [d, dirname(d)] as [string, string])];
  for (const [dir, ceiling] of asks) {
    const a = ask(dir, ceiling);
    if (a === 'no-git') return { protect: [], absent: [], warnings: [] }; // no git: nothing here runs hooks
    if (a === 'none') continue;
    if (a === 'failed') {
      out.warnings.push(`could not ask git where the hooks of ${escapeText(dir)} are: a core.hooksPath there is not protected`);
      continue;
    }
    if (roots.includes(a.hooks)) {
      out.warnings.push(`core.hooksPath of ${escapeText(dir)} is ${escapeText(a.hooks)}, a folder the agent can write: hooks it adds there run when you commit; point core.hooksPath at a folder of its own`);
    }
    for (const p of [a.gitDir, a.hooks]) {
      if (seen.has(p) || !inRoot(p)) continue;
      seen.add(p);
      if (exists(p)) {
        if (!isCovered(p)) out.protect.push(p);
      } else if (p === a.hooks) out.absent.push(p);
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
