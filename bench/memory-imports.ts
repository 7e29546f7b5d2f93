/**
 * Where idle memory goes: the modules a running gateway has loaded, grouped by
 * the dependency of ours that brought them in, imported again in fresh Node
 * processes (nothing started) to measure what each group adds to RSS and heap.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadedScript, MemoryNow } from './procs/memory-measure.js';
import { DIST_BENCH, ROOT } from './lib/procs.js';

/** One row of the breakdown: a group of modules imported together. */
export interface ImportGroup {
  /** Our dependency (`zod`, `@modelcontextprotocol/sdk`), `shared: …` for a package two of them need, or `gateway code`. */
  label: string;
  urls: string[];
  /** Packages in the group (for the note under the table). */
  packages: string[];
  /** Source characters of its scripts. */
  sourceChars: number;
}

export interface StepResult {
  label: string;
  after: MemoryNow;
}

export interface ImportRun {
  before: MemoryNow;
  steps: StepResult[];
  scripts?: LoadedScript[];
}

/** The package root (`…/node_modules/name` or `…/node_modules/@scope/name`) and name of a file URL, if in node_modules. */
function packageOf(url: string): { name: string; root: string } | undefined {
  const nm = url.lastIndexOf('/node_modules/');
  if (!url.startsWith('file:') || nm < 0) return undefined;
  const parts = url.slice(nm + '/node_modules/'.length).split('/');
  const name = parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? '');
  return { name, root: fileURLToPath(url.slice(0, nm + '/node_modules/'.length + name.length)) };
}

function declaredDeps(root: string): string[] {
  try {
    const pj = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    return [...Object.keys(pj.dependencies ?? {}), ...Object.keys(pj.peerDependencies ?? {}), ...Object.keys(pj.optionalDependencies ?? {})];
  } catch {
    return [];
  }
}

/**
 * The gateway's loaded scripts as import groups in dependency order (a group
 * after every group it needs, so each step adds only its own code): one per
 * dependency of ours, each with the packages only it pulls in; a package
 * two of them pull in is a group of its own; our own code last. The CLI
 * entry is left out (importing it runs the CLI); so are the bench's probe files.
 */
export function importGroups(scripts: readonly LoadedScript[]): ImportGroup[] {
  const ours = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const direct = new Set(Object.keys(ours.dependencies));
  const files = new Map<string, { root: string; urls: string[]; chars: number }>();
  const own: LoadedScript[] = [];
  for (const s of scripts) {
    if (s.url.includes('/dist/bench/')) continue;
    const p = packageOf(s.url);
    if (p === undefined) {
      if (s.url.startsWith('file:') && s.url.includes('/dist/src/') && !s.url.endsWith('/dist/src/cli/main.js')) own.push(s);
      continue;
    }
    const f = files.get(p.name) ?? { root: p.root, urls: [], chars: 0 };
    f.urls.push(s.url);
    f.chars += s.length;
    files.set(p.name, f);
  }
  const deps = new Map([...files].map(([name, f]) => [name, declaredDeps(f.root).filter((d) => files.has(d) && d !== name)]));
  const closure = (start: string): Set<string> => {
    const seen = new Set<string>([start]);
    const todo = [start];
    while (todo.length > 0) {
      for (const d of deps.get(todo.pop()!) ?? []) {
        if (seen.has(d)) continue;
        seen.add(d);
        todo.push(d);
      }
    }
    return seen;
  };
  const roots = [...files.keys()].filter((n) => direct.has(n));
  const reach = new Map(roots.map((r) => [r, closure(r)]));
  const groupOf = new Map<string, string>();
  for (const name of files.keys()) {
    if (direct.has(name)) {
      groupOf.set(name, name);
      continue;
    }
    const by = roots.filter((r) => reach.get(r)!.has(name));
    groupOf.set(name, by.length === 1 ? by[0]! : by.length === 0 ? 'other packages' : `shared: ${name}`);
  }
  const groups = new Map<string, ImportGroup>();
  for (const [name, f] of files) {
    const label = groupOf.get(name)!;
    const g = groups.get(label) ?? { label, urls: [], packages: [], sourceChars: 0 };
    g.urls.push(...f.urls);
    g.packages.push(name);
    g.sourceChars += f.chars;
    groups.set(label, g);
  }
  // Dependency order: a group once every group its packages need is placed (a cycle: the largest waiting group first).
  const needs = new Map([...groups.keys()].map((label) => [label, new Set(groups.get(label)!.packages.flatMap((p) => deps.get(p)!.map((d) => groupOf.get(d)!)).filter((l) => l !== label))]));
  const ordered: ImportGroup[] = [];
  const waiting = new Set(groups.keys());
  while (waiting.size > 0) {
    const ready = [...waiting].filter((l) => [...needs.get(l)!].every((n) => !waiting.has(n)));
    const pick = (ready.length > 0 ? ready : [...waiting]).sort((a, b) => groups.get(b)!.sourceChars - groups.get(a)!.sourceChars)[0]!;
    ordered.push(groups.get(pick)!);
    waiting.delete(pick);
  }
  ordered.push({ label: 'gateway code (dist/src)', urls: own.map((s) => s.url), packages: [], sourceChars: own.reduce((n, s) => n + s.length, 0) });
  return ordered;
}

/** Imports the steps in one fresh `node --expose-gc --max-semi-space-size=1` and measures after each. */
export function runImports(steps: ReadonlyArray<{ label: string; urls: readonly string[] }>, opts: { scripts?: boolean } = {}): Promise<ImportRun> {
  // A young generation held small: otherwise its growth (up to 32 MiB, timing-dependent) lands on whichever step it happens in.
  const args = ['--expose-gc', '--max-semi-space-size=1', join(DIST_BENCH, 'procs', 'memory-imports.js'), JSON.stringify(steps.map((s) => [s.label, s.urls])), ...(opts.scripts ? ['scripts'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-4000)));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`memory-imports.js exited (${code}): ${err}`));
      try {
        resolve(JSON.parse(out) as ImportRun);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}
