/**
 * Nested protected paths. The launcher protects a fixed
 * list of names at the top of each writable root only; a repository, editor
 * or agent folder one level down runs code just the same when the user cds
 * there (a shell prompt runs `git status` on cd), and so does any folder git
 * takes as a git directory (HEAD, objects, refs). Before the run this walks
 * each writable root and returns those paths to `--protect`; after it, it
 * walks again and names what the agent created. Never follows a link, never
 * writes; the lists live in memory (the workspace is the agent's).
 */
import { opendirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors.js';
import { escapeText } from '../terminal.js';
import { gitConfigFiles, reportConfigFiles } from './git-config-files.js';
import { hookDirs, reportHookDirs } from './hook-dirs.js';

/**
 * Names that run code or configure a tool in whichever folder holds them:
 * git in any repository (and its hook managers), direnv in any directory,
 * editors and agents in any folder they are opened in. Shell start-up files
 * only count in $HOME, so they stay top-level (the launcher's list).
 */
export const NESTED_NAMES: ReadonlySet<string> = new Set([
  '.git', '.gitmodules', '.envrc',
  '.husky', '.githooks', '.pre-commit-config.yaml', '.lefthook', 'lefthook.yml', 'lefthook.yaml', '.lefthook.yml', '.lefthook.yaml',
  'lefthook-local.yml', 'lefthook-local.yaml', '.lefthook-local.yml', '.lefthook-local.yaml',
  '.vscode', '.idea', '.devcontainer', '.claude', '.mcp.json', '.codex', '.cursor', '.gemini',
]);

/**
 * What the launcher itself protects at the top of each root (protect.c) and
 * reports when created: not passed again (a `--protect` of the top .git would
 * make `--allow-write .git` open all of it) nor reported twice.
 */
const LAUNCHER_TOP: ReadonlySet<string> = new Set([
  '.git', '.gitmodules', '.envrc', '.vscode', '.idea', '.devcontainer', '.claude', '.mcp.json', '.codex', '.cursor', '.gemini',
  '.husky', '.githooks', '.pre-commit-config.yaml', 'lefthook.yml', '.lefthook.yml', 'lefthook-local.yml', '.lefthook-local.yml', '.lefthook',
]);

/** The launcher's --protect takes paths shorter than PATH_MAX. */
const PATH_MAX = 4095;

/**
 * Directories opened and time, over all roots. Plain files cost time only
 * (no count): a folder of a million hard links, cheap to make, must not
 * stop the walk before its siblings' subfolders.
 */
export interface ScanBudget {
  dirs: number;
  ms: number;
}

export const DEFAULT_SCAN_BUDGET: ScanBudget = { dirs: 50_000, ms: 5_000 };

/** Environment: the scan's budget (directories, milliseconds), for very large workspaces. */
export const SCAN_DIRS_ENV = 'GATEHOUSE_WORKSPACE_SCAN_DIRS';
export const SCAN_MS_ENV = 'GATEHOUSE_WORKSPACE_SCAN_MS';

/** The opt-in that lets a run start with a truncated scan (`gatehouse run`). */
export const PARTIAL_SCAN_FLAG = '--allow-partial-scan';

/** The budget, from the environment where set (a positive integer, else refused). */
export function scanBudget(env: NodeJS.ProcessEnv = process.env): ScanBudget {
  const get = (name: string, fallback: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    if (!/^[1-9][0-9]{0,9}$/.test(v)) throw new GatehouseError('USAGE', `${name}=${escapeText(v)}: give a positive whole number`);
    return Number(v);
  };
  return { dirs: get(SCAN_DIRS_ENV, DEFAULT_SCAN_BUDGET.dirs), ms: get(SCAN_MS_ENV, DEFAULT_SCAN_BUDGET.ms) };
}

/** Names git looks at to decide that a folder is a git directory (setup.c, is_git_directory). */
const SIG = { HEAD: 1, objects: 2, refs: 4, commondir: 8, config: 16 } as const;
type SigName = keyof typeof SIG;

/**
 * git accepts a folder as a git directory when it holds HEAD and either
 * objects/ and refs/ or a `commondir` file naming where those are. Any type
 * counts here (git follows links, and access(X_OK) passes an executable file):
 * wider than git, never narrower.
 */
function isGitDirSig(sig: number): boolean {
  return (sig & SIG.HEAD) !== 0 && ((sig & (SIG.objects | SIG.refs)) === (SIG.objects | SIG.refs) || (sig & SIG.commondir) !== 0);
}

export interface ScanResult {
  /** Every entry with a protected name, top level included (links too, never followed), with its type. */
  found: Map<string, 'dir' | 'file' | 'link' | 'other'>;
  /** Folders holding HEAD or commondir, with which of git's names they hold (SIG bits); not walked into when git would take them. */
  gitSig: Map<string, number>;
  /** The budget ran out: what lies past that point was not looked at. */
  truncated: boolean;
  /** Directories that could not be read (permission), not walked. */
  unreadable: string[];
  /** The folders with the most entries (for the message when the budget runs out). */
  biggest: Array<[string, number]>;
  entries: number;
  dirs: number;
  ms: number;
}

/**
 * Walks each root (breadth first, so that the budget spends itself on the
 * shallow folders a user is likeliest to cd into). Never descends into a
 * link, into a `.git` (protected whole), or past the budget. Another
 * sandbox on the same folder could swap a directory for a link between
 * readdir and opendir: then names are read through it, nothing written,
 * and a --protect outside the roots is refused by the launcher.
 */
export function scanNested(roots: readonly string[], budget: ScanBudget = DEFAULT_SCAN_BUDGET): ScanResult {
  const started = performance.now();
  const found: ScanResult['found'] = new Map();
  const gitSig: ScanResult['gitSig'] = new Map();
  const unreadable: string[] = [];
  let biggest: Array<[string, number]> = [];
  let entries = 0;
  let dirs = 0;
  let truncated = false;
  const queue: string[] = [...roots];
  outer: for (let i = 0; i < queue.length; i++) {
    const dir = queue[i] as string;
    queue[i] = ''; // let the walked part be collected
    if (++dirs > budget.dirs || performance.now() - started > budget.ms) {
      truncated = true;
      break;
    }
    let handle;
    try {
      handle = opendirSync(dir, { bufferSize: 1024 });
    } catch {
      unreadable.push(dir);
      continue;
    }
    const sub: string[] = [];
    let sig = 0;
    let here = 0;
    try {
      for (let d = handle.readSync(); d !== null; d = handle.readSync()) {
        entries++;
        if ((++here & 4095) === 0 && performance.now() - started > budget.ms) {
          truncated = true;
          biggest = noteBig(biggest, dir, here);
          break outer;
        }
        if (Object.hasOwn(SIG, d.name)) sig |= SIG[d.name as SigName];
        const path = join(dir, d.name);
        if (NESTED_NAMES.has(d.name)) {
          found.set(path, d.isSymbolicLink() ? 'link' : d.isDirectory() ? 'dir' : d.isFile() ? 'file' : 'other');
          if (d.name === '.git') continue;
        }
        if (d.isDirectory()) sub.push(path);
      }
    } catch {
      unreadable.push(dir);
    } finally {
      handle.closeSync();
    }
    biggest = noteBig(biggest, dir, here);
    if (sig & (SIG.HEAD | SIG.commondir)) gitSig.set(dir, sig);
    // A git directory is protected whole: nothing in it to walk.
    if (!isGitDirSig(sig) || roots.includes(dir)) for (const p of sub) queue.push(p);
  }
  return { found, gitSig, truncated, unreadable, biggest, entries, dirs: Math.min(dirs, budget.dirs), ms: Math.round(performance.now() - started) };
}

function noteBig(list: Array<[string, number]>, dir: string, n: number): Array<[string, number]> {
  if (list.length === 3 && n <= (list[2] as [string, number])[1]) return list;
  return [...list.filter(([p]) => p !== dir), [dir, n] as [string, number]].sort((a, b) => b[1] - a[1]).slice(0, 3);
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/**
 * Inside node_modules only repositories count (a shell prompt runs git in
 * any folder with a .git): a package's .husky or .vscode runs nothing unless
 * that package is opened as a project, and protecting one would pin its
 * parents (mount points), so that `npm ci` could no longer remove node_modules.
 */
function ignoredIn(path: string): boolean {
  return path.includes('/node_modules/') && !path.endsWith('/.git');
}

/** At the top of a root, under a name the launcher handles itself. */
function launchers(path: string, roots: ReadonlySet<string>): boolean {
  return roots.has(parentOf(path)) && LAUNCHER_TOP.has(path.slice(path.lastIndexOf('/') + 1));
}

export interface NestedPlan {
  /** Paths to pass as `--protect` (existing, not links, short enough). */
  protect: string[];
  /** Folders git would take as a git directory (not named .git), found inside the roots. */
  gitDirs: string[];
  /** Said on stderr before the run. */
  warnings: string[];
  before: ScanResult;
}

/** What to protect, and what to say, before the run. */
export function planNested(roots: readonly string[], budget: ScanBudget = DEFAULT_SCAN_BUDGET): NestedPlan {
  const before = scanNested(roots, budget);
  const protect: string[] = [];
  const gitDirs: string[] = [];
  const warnings: string[] = [];
  const rootSet = new Set(roots);
  const add = (path: string) => {
    if (Buffer.byteLength(path) >= PATH_MAX) warnings.push(`cannot protect ${escapeText(path)} (path too long): the agent can change it`);
    else protect.push(path);
  };
  for (const [path, type] of before.found) {
    // A link is not protected (the launcher refuses links); where it leads inside a root is found there under its own name, or not at all.
    if (launchers(path, rootSet) || ignoredIn(path)) continue;
    if (type === 'link') {
      warnings.push(`${escapeText(path)} is a symlink: not protected, and what it points to may be writable by the agent`);
      continue;
    }
    add(path);
  }
  // A folder that is a git directory under another name (a bare clone, `.bare`, `src/` with HEAD, objects, refs): git finds it as it finds a .git.
  for (const [dir, sig] of before.gitSig) {
    if (!isGitDirSig(sig)) continue;
    if (rootSet.has(dir)) {
      warnings.push(`${escapeText(dir)} is itself a git directory (HEAD, objects, refs): the agent can change its config and hooks; run the agent in a worktree instead`);
      continue;
    }
    gitDirs.push(dir);
    add(dir);
  }
  for (const dir of before.unreadable) warnings.push(`cannot read ${escapeText(dir)}: anything in it is not protected`);
  return { protect, gitDirs, warnings, before };
}

/** After the run: each protected-name entry that was not there before (the launcher reports its own top-level ones), and each folder turned into a git directory. */
export function reportNested(roots: readonly string[], before: ScanResult, budget: ScanBudget = DEFAULT_SCAN_BUDGET): string[] {
  const after = scanNested(roots, budget);
  const out: string[] = [];
  const rootSet = new Set(roots);
  for (const [path, type] of after.found) {
    if (before.found.get(path) === type || launchers(path, rootSet) || ignoredIn(path)) continue;
    out.push(
      `the agent created ${escapeText(path)}${type === 'link' ? ' (a symlink)' : ''}, which can run code when you use git, direnv, an editor or an agent there (core.fsmonitor, hooks, tasks): inspect it before you do`,
    );
  }
  const gained = SIG.HEAD | SIG.commondir | SIG.config;
  for (const [dir, sig] of after.gitSig) {
    const was = before.gitSig.get(dir) ?? 0;
    if ((sig & SIG.HEAD) === 0 || (sig & gained & ~was) === 0) continue;
    const names = (Object.keys(SIG) as SigName[]).filter((n) => sig & SIG[n] & gained & ~was).join(', ');
    out.push(
      `the agent added ${names} to ${escapeText(dir)}, which makes it a git directory: git run in or below it reads its config (core.fsmonitor runs code): inspect it before you use git there (git config --global safe.bareRepository explicit stops git from using such folders)`,
    );
  }
  if (after.truncated) out.push(`${truncatedMessage(after, budget)} (after the run: what the agent created past that point is not reported)`);
  return out;
}

function truncatedMessage(scan: ScanResult, budget: ScanBudget): string {
  const big = scan.biggest.map(([p, n]) => `${escapeText(p)} (${n} entries)`).join(', ');
  return `the workspace scan for nested repositories and editor folders stopped after ${scan.dirs} folders (limit ${budget.dirs}) and ${scan.ms} ms (limit ${budget.ms})${big ? `; biggest folders: ${big}` : ''}: nested repositories past that point are not protected`;
}

export interface WorkspaceGuard {
  /** Extra `--protect` paths for the launcher. */
  protect: string[];
  /** After the launcher exits: what to warn about (the agent created it). */
  after(): string[];
}

/**
 * `gatehouse run`, before the launcher: nested protected paths, git
 * directories under other names, hook folders and config files (includes)
 * of every writable root (the workspace, each --rw directory), with the
 * warnings to print now; `after()` walks again. Refuses (CONFIG_INVALID)
 * when it could not look everywhere, unless `allowPartial`: an agent can
 * make the walk give up on purpose.
 */
export function guardWorkspace(
  workspace: string,
  rw: readonly string[],
  warn: (line: string) => void,
  allowPartial = false,
  budget: ScanBudget = scanBudget(),
): WorkspaceGuard {
  const roots = [workspace];
  for (const p of rw) {
    try {
      const real = realpathSync(p);
      if (statSync(real).isDirectory() && !roots.includes(real)) roots.push(real);
    } catch {
      // the launcher refuses a missing --rw path with its own message
    }
  }
  const nested = planNested(roots, budget);
  if (nested.before.truncated) {
    const msg = `${truncatedMessage(nested.before, budget)}. Raise ${SCAN_DIRS_ENV} / ${SCAN_MS_ENV}, remove what makes those folders so big, or pass ${PARTIAL_SCAN_FLAG} to run anyway`;
    if (!allowPartial) throw new GatehouseError('CONFIG_INVALID', msg);
    warn(`${msg} (${PARTIAL_SCAN_FLAG} given: running anyway)`);
  }
  const rootSet = new Set(roots);
  const repos = [...nested.before.found].filter(([p, t]) => p.endsWith('/.git') && t !== 'link' && !launchers(p, rootSet)).map(([p]) => p.slice(0, -5));
  const covered = [...nested.protect, ...roots.flatMap((r) => [...LAUNCHER_TOP].map((n) => `${r}/${n}`))];
  const hooks = hookDirs(roots, repos, covered, nested.gitDirs);
  const configs = gitConfigFiles(roots, repos, [...covered, ...hooks.protect], nested.gitDirs, hooks.failed);
  for (const w of [...nested.warnings, ...hooks.warnings, ...configs.warnings]) warn(w);
  if (configs.failed.length > 0) {
    const msg = `could not read the git config of ${configs.failed.map((d) => escapeText(d)).join(', ')} (git failed or timed out; a FIFO or a very slow file among its includes?): a file it includes that the agent can write would not be protected. Fix or remove that repository's include.path, or pass ${PARTIAL_SCAN_FLAG} to run anyway`;
    if (!allowPartial) throw new GatehouseError('CONFIG_INVALID', msg);
    warn(`${msg} (${PARTIAL_SCAN_FLAG} given: running anyway)`);
  }
  return {
    protect: [...nested.protect, ...hooks.protect, ...configs.protect],
    after: () => [...reportNested(roots, nested.before, budget), ...reportHookDirs(hooks.absent), ...reportConfigFiles(configs.absent)],
  };
}
