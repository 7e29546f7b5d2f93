/**
 * Config files git reads for each repository the agent can reach:
 * `[include] path = ../.gitconfig` in a protected .git/config (a
 * "shared project config" pattern) names a file of the worktree, which the
 * agent can write; core.fsmonitor there runs as the user on their next
 * `git status`. Every file git reads (`--show-origin`) and every include or
 * includeIf target (applying now or not: a branch switch could make one
 * apply) inside a writable root is protected; a missing one is reported.
 *
 * Asked of git itself (`config --list --includes`), which reads config and
 * runs nothing (no pager: stdout is a pipe and GIT_PAGER=cat). A FIFO as an
 * include target blocks git: the timeout then counts as a failure, and the
 * caller refuses to start (fail closed).
 */
import { lstatSync } from 'node:fs';
import { dirname, isAbsolute, normalize, resolve } from 'node:path';
import { escapeText } from '../terminal.js';
import { exists, runGit, targetArgs, targets, under, type Target } from './hook-dirs.js';

export interface ConfigFiles {
  /** Config files inside a writable root, to `--protect`. */
  protect: string[];
  /** Include targets inside a writable root that do not exist: the agent could create them. */
  absent: string[];
  /** Repositories whose config git could not list (the caller refuses). */
  failed: string[];
  warnings: string[];
}

const INCLUDE_KEY = /^include(if\..*)?\.path$/i;

/** Every file git read for `t`, and every include target named, as absolute paths. */
function listFiles(t: Target): { files: string[]; includes: string[] } | 'none' | 'no-git' | 'failed' {
  const r = runGit(t, ['config', '--list', '--show-origin', '--includes', '-z'], 8 << 20);
  if (typeof r === 'string') return r;
  const home = targetArgs(t).env.HOME;
  const files = new Set<string>();
  const includes = new Set<string>();
  const parts = r.stdout.split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const origin = parts[i] as string;
    if (!origin.startsWith('file:')) continue; // command line, blob, stdin: no file here
    const file = resolve(t.dir, origin.slice(5));
    files.add(file);
    const entry = parts[i + 1] as string;
    const nl = entry.indexOf('\n');
    if (nl < 0 || !INCLUDE_KEY.test(entry.slice(0, nl))) continue;
    const value = entry.slice(nl + 1);
    // As git resolves include paths (config.c, handle_path_include): ~/ is $HOME, relative is from the including file's folder.
    if (value.startsWith('~/')) {
      if (home !== undefined) includes.add(normalize(`${home}/${value.slice(2)}`));
    } else if (value !== '' && !value.startsWith('~') && !value.startsWith('%(prefix)/')) {
      includes.add(isAbsolute(value) ? normalize(value) : resolve(dirname(file), value));
    }
  }
  return { files: [...files], includes: [...includes] };
}

/**
 * @param roots the writable roots (real paths)
 * @param nestedRepos folders holding a `.git` inside the roots
 * @param covered paths already protected whole
 * @param gitDirs git directories under other names inside the roots
 * @param failedBefore folders where asking git already failed (the hooks lookup)
 */
export function gitConfigFiles(
  roots: readonly string[],
  nestedRepos: readonly string[],
  covered: readonly string[],
  gitDirs: readonly string[] = [],
  failedBefore: readonly string[] = [],
): ConfigFiles {
  const out: ConfigFiles = { protect: [], absent: [], failed: [], warnings: [] };
  const seen = new Set<string>();
  const inRoot = (p: string) => roots.some((r) => p !== r && under(p, r));
  const isCovered = (p: string) => covered.some((c) => under(p, c)) || out.protect.some((c) => under(p, c));
  for (const t of targets(roots, nestedRepos, gitDirs)) {
    // git already failed there (a FIFO include blocks every git command): not asked again, still refused.
    const l = failedBefore.includes(t.dir) ? 'failed' : listFiles(t);
    if (l === 'no-git') return { protect: [], absent: [], failed: [], warnings: [] }; // no git: nothing here reads git config
    if (l === 'none') continue;
    if (l === 'failed') {
      out.failed.push(t.dir);
      continue;
    }
    for (const p of [...l.files, ...l.includes]) {
      if (seen.has(p) || !inRoot(p)) continue;
      seen.add(p);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        if (!isCovered(p)) out.absent.push(p);
        continue;
      }
      if (isCovered(p)) continue;
      if (st.isFile() || st.isDirectory()) out.protect.push(p);
      else out.warnings.push(`${escapeText(p)}, a git config file of ${escapeText(t.dir)}, is ${st.isSymbolicLink() ? 'a symlink' : 'not a regular file'} the agent can replace: not protected; git may run what it names (core.fsmonitor) when you use git there`);
    }
  }
  for (const p of out.absent) {
    out.warnings.push(`git config includes ${escapeText(p)}, which does not exist: the agent could create it, and git would run what it names (core.fsmonitor) when you use git there; create it first or remove the include`);
  }
  return out;
}

/** After the run: include targets that the agent created. */
export function reportConfigFiles(absent: readonly string[]): string[] {
  return absent.filter(exists).map((p) => `the agent created ${escapeText(p)}, a file your git config includes: git runs what it names (core.fsmonitor) when you use git there; inspect it before you do`);
}
