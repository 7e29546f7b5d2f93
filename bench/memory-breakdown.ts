/**
 * Where the gateway's memory goes (issue #21): a probed `gatehouse serve`
 * measured idle and with N open sessions after full collections (heap spaces,
 * optionally two heap snapshots diffed by constructor), and the modules it
 * loaded imported again group by group in fresh processes.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { constructorTotals, diffTotals, type ConstructorTotals, type DiffRow } from './memory-snapshot.js';
import { importGroups, runImports, type ImportGroup } from './memory-imports.js';
import { startProbedServe, type ProbeStats } from './memory-probe.js';
import type { LoadedScript, MemoryNow } from './procs/memory-measure.js';

/** One step of the start-up breakdown: what it added (bytes). */
export interface ImportRow {
  label: string;
  packages: string[];
  heapUsed: number;
  /** Committed to the V8 heap but not in use (GC slack). */
  heapFree: number;
  /** RSS outside the V8 heap (machine code of WebAssembly, malloc, Buffers). */
  offHeap: number;
  /** Imported alone in a fresh process, over an empty one (a dependency's own dependencies included); measured for the larger groups. */
  alone?: { rss: number; heapUsed: number };
}

export interface MemoryBreakdown {
  floor: MemoryNow;
  rows: ImportRow[];
  imported: MemoryNow;
  scripts: { count: number; chars: number };
  idle: ProbeStats;
  open: ProbeStats;
  /** What the idle heap holds, by constructor (from the first snapshot). */
  idleHeap?: ConstructorTotals;
  /** Growth by constructor from idle to N open sessions. */
  sessions?: { rows: DiffRow[]; named: DiffRow[]; total: number };
}

export const split = (m: MemoryNow) => ({ heapUsed: m.heapUsed, heapFree: m.heapTotal - m.heapUsed, offHeap: m.rss - m.heapTotal });

export async function memoryBreakdown(
  opts: { state: string; env: NodeJS.ProcessEnv; settleMs: number; snapshots: boolean; aloneMinBytes: number },
  openSessions: (url: string) => Promise<() => Promise<void>>,
): Promise<MemoryBreakdown> {
  const serve = await startProbedServe(opts.state, opts.env);
  let closeSessions = async () => undefined as void;
  const snap = (name: string) => join(opts.state, `${name}.heapsnapshot`);
  let idle: ProbeStats;
  let open: ProbeStats;
  let scripts: LoadedScript[];
  let idleHeap: ConstructorTotals | undefined;
  let sessions: MemoryBreakdown['sessions'];
  try {
    await new Promise((r) => setTimeout(r, opts.settleMs));
    idle = await serve.stats();
    // Writing a snapshot grows RSS by about the heap's size: per-session RSS comes from the unprobed gateway, not this one.
    if (opts.snapshots) await serve.snapshot(snap('idle'));
    closeSessions = await openSessions((JSON.parse(serve.line) as { url: string }).url);
    await new Promise((r) => setTimeout(r, opts.settleMs));
    open = await serve.stats();
    if (opts.snapshots) await serve.snapshot(snap('open'));
    // Last: enabling the debugger to list the scripts may keep more alive.
    scripts = await serve.scripts();
  } finally {
    await closeSessions().catch(() => undefined);
    await serve.stop();
  }
  if (opts.snapshots) {
    idleHeap = constructorTotals(snap('idle'));
    sessions = diffTotals(idleHeap, constructorTotals(snap('open')));
    rmSync(snap('idle'), { force: true });
    rmSync(snap('open'), { force: true });
  }
  const groups = importGroups(scripts);
  const run = await runImports(groups);
  const rows: ImportRow[] = [];
  let prev = split(run.before);
  for (const step of run.steps) {
    const now = split(step.after);
    const g = groups.find((x) => x.label === step.label) as ImportGroup;
    rows.push({ label: step.label, packages: g.packages, heapUsed: now.heapUsed - prev.heapUsed, heapFree: now.heapFree - prev.heapFree, offHeap: now.offHeap - prev.offHeap });
    prev = now;
  }
  // Alone (sequentially: the machine is shared) for the groups that added the most.
  for (const row of rows.filter((r) => r.heapUsed + r.offHeap >= opts.aloneMinBytes)) {
    const g = groups.find((x) => x.label === row.label) as ImportGroup;
    const a = await runImports([g]);
    const after = a.steps[0]!.after;
    row.alone = { rss: after.rss - a.before.rss, heapUsed: after.heapUsed - a.before.heapUsed };
  }
  const imported = run.steps.at(-1)?.after ?? run.before;
  const counted = groups.flatMap((g) => g.urls);
  const chars = groups.reduce((n, g) => n + g.sourceChars, 0);
  return {
    floor: run.before,
    rows,
    imported,
    scripts: { count: counted.length, chars },
    idle,
    open,
    ...(idleHeap ? { idleHeap } : {}),
    ...(sessions ? { sessions } : {}),
  };
}
