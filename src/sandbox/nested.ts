/**
 * Nested protected paths (issue #12, item 2). The launcher protects a fixed
 * list of names at the top of each writable root only; a repository, editor
 * or agent folder one level down runs code just the same when the user cds
 * there (a shell prompt runs `git status` on cd). Before the run this walks
 * each writable root and returns those paths to `--protect`; after it, it
 * walks again and names what the agent created. Never follows a link, never
 * writes; the lists live in memory (the workspace is the agent's).
 */
import { opendirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors.js';
import { escapeText } from '../terminal.js';
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

export interface ScanBudget {
  /** Directory entries looked at, over all roots. */
  entries: number;
  ms: number;
}

export const DEFAULT_SCAN_BUDGET: ScanBudget = { entries: 200_000, ms: 2_000 };

/** Environment: the scan's budget (entries, milliseconds), for very large workspaces. */
export const SCAN_ENTRIES_ENV = 'GATEHOUSE_WORKSPACE_SCAN_ENTRIES';
export const SCAN_MS_ENV = 'GATEHOUSE_WORKSPACE_SCAN_MS';

/** The budget, from the environment where set (a positive integer, else refused). */
export function scanBudget(env: NodeJS.ProcessEnv = process.env): ScanBudget {
  const get = (name: string, fallback: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    if (!/^[1-9][0-9]{0,9}$/.test(v)) throw new GatehouseError('USAGE', `${name}=${escapeText(v)}: give a positive whole number`);
    return Number(v);
  };
  return { entries: get(SCAN_ENTRIES_ENV, DEFAULT_SCAN_BUDGET.entries), ms: get(SCAN_MS_ENV, DEFAULT_SCAN_BUDGET.ms) };
}

export interface ScanResult {
  /** Every entry with a protected name, top level included (links too, never followed), with its type. */
  found: Map<string, 'dir' | 'file' | 'link' | 'other'>;
  /** The budget ran out: what lies past that point was not looked at. */
  truncated: boolean;
  /** Directories that could not be read (permission), not walked. */
  unreadable: string[];
  entries: number;
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
  const unreadable: string[] = [];
  let entries = 0;
  let truncated = false;
  const queue: string[] = [...roots];
  outer: for (let i = 0; i < queue.length; i++) {
    const dir = queue[i] as string;
    queue[i] = ''; // let the walked part be collected
    let handle;
    try {
      handle = opendirSync(dir);
    } catch {
      unreadable.push(dir);
      continue;
    }
    try {
      for (let d = handle.readSync(); d !== null; d = handle.readSync()) {
        if (++entries > budget.entries || ((entries & 1023) === 0 && performance.now() - started > budget.ms)) {
          truncated = true;
          break outer;
        }
        const path = join(dir, d.name);
        if (NESTED_NAMES.has(d.name)) {
          found.set(path, d.isSymbolicLink() ? 'link' : d.isDirectory() ? 'dir' : d.isFile() ? 'file' : 'other');
          if (d.name === '.git') continue;
        }
        if (d.isDirectory()) queue.push(path);
      }
    } catch {
      unreadable.push(dir);
    } finally {
      handle.closeSync();
    }
  }
  return { found, truncated, unreadable, entries: Math.min(entries, budget.entries), ms: Math.round(performance.now() - started) };
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
  /** Said on stderr before the run. */
  warnings: string[];
  before: ScanResult;
}

/** What to protect, and what to say, before the run. */
export function planNested(roots: readonly string[], budget: ScanBudget = DEFAULT_SCAN_BUDGET): NestedPlan {
  const before = scanNested(roots, budget);
  const protect: string[] = [];
  const warnings: string[] = [];
  const rootSet = new Set(roots);
  for (const [path, type] of before.found) {
    // A link is not protected (the launcher refuses links); where it leads inside a root is found there under its own name, or not at all.
    if (launchers(path, rootSet) || ignoredIn(path)) continue;
    if (type === 'link') {
      warnings.push(`${escapeText(path)} is a symlink: not protected, and what it points to may be writable by the agent`);
      continue;
    }
    if (Buffer.byteLength(path) >= PATH_MAX) {
      warnings.push(`cannot protect ${escapeText(path)} (path too long): the agent can change it`);
      continue;
    }
    protect.push(path);
  }
  if (before.truncated) warnings.push(truncatedMessage(budget));
  for (const dir of before.unreadable) warnings.push(`cannot read ${escapeText(dir)}: anything in it is not protected`);
  return { protect, warnings, before };
}

/** After the run: each protected-name entry that was not there before (the launcher reports its own top-level ones). */
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
  if (after.truncated) out.push(`${truncatedMessage(budget)} (after the run: what the agent created past that point is not reported)`);
  return out;
}

function truncatedMessage(budget: ScanBudget): string {
  return `the workspace scan for nested repositories and editor folders stopped after ${budget.entries} entries or ${budget.ms} ms: nested repositories past that point are not protected (raise ${SCAN_ENTRIES_ENV} / ${SCAN_MS_ENV})`;
}

export interface WorkspaceGuard {
  /** Extra `--protect` paths for the launcher. */
  protect: string[];
  /** After the launcher exits: what to warn about (the agent created it). */
  after(): string[];
}

/**
 * `gatehouse run`, before the launcher: nested protected paths and hook
 * folders of every writable root (the workspace, each --rw directory),
 * with the warnings to print now; `after()` walks again.
 */
export function guardWorkspace(workspace: string, rw: readonly string[], warn: (line: string) => void, budget: ScanBudget = scanBudget()): WorkspaceGuard {
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
  const repos = [...nested.before.found].filter(([p, t]) => p.endsWith('/.git') && t !== 'link' && !launchers(p, new Set(roots))).map(([p]) => p.slice(0, -5));
  const covered = [...nested.protect, ...roots.flatMap((r) => [...LAUNCHER_TOP].map((n) => `${r}/${n}`))];
  const hooks = hookDirs(roots, repos, covered);
  for (const w of [...nested.warnings, ...hooks.warnings]) warn(w);
  return {
    protect: [...nested.protect, ...hooks.protect],
    after: () => [...reportNested(roots, nested.before, budget), ...reportHookDirs(hooks.absent)],
  };
}
