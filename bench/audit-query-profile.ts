/**
 * Where a `logs` query's time goes (issue #21: a goal not met shows its
 * profile and what would be needed): one `queryAudit` run in a fresh process
 * under `node --cpu-prof` (cold JIT, like `gatehouse logs`; page cache warm),
 * every sample put in a readable group by what it ran and which of our
 * functions called it (a Buffer indexOf in linesWith is the byte search, in
 * scanLines it is line splitting), all threads summed.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { listAuditFiles, type AuditFile } from '../src/audit/files.js';
import type { AuditFilters } from '../src/audit/query.js';
import { bucketOf } from './lib/profile.js';

export const GROUP = {
  read: "reading files (open, read calls, chunk buffers, concat; the copying itself runs in libuv's thread pool)",
  search: 'byte search for the filter values (Buffer indexOf / lastIndexOf of the needles)',
  split: 'line splitting (newline search, line bounds)',
  parse: 'JSON.parse of candidate lines (and decoding them)',
  match: 'matching parsed records (matcher, picomatch)',
  sidecarRead: 'sidecars: reading, HMAC check, block plans',
  sidecarBuild: 'sidecars: building them (parse every line, summarise blocks; worker threads)',
  workers: 'worker threads: start-up, jobs, results',
  query: 'query set-up, listing files, call status',
  startUp: 'start-up and exit: Node, module loading (before and after the query)',
  gc: 'garbage collection',
  other: 'other (V8, Node internals)',
} as const;
type Group = (typeof GROUP)[keyof typeof GROUP];

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Our compiled source (dist/src/...), as `audit/lines`. */
function oursFile(url: string): string | undefined {
  const at = url.lastIndexOf('/dist/src/');
  return at < 0 ? undefined : url.slice(at + '/dist/src/'.length).replace(/\.js$/, '');
}

/** A named declaration: `function f(`, `const f = (`. */
const DECL = /\bfunction\*?\s+([\w$]+)\s*\(|\b(?:const|let)\s+([\w$]+)\s*=\s*(?:async\s*)?\(/;
const sources = new Map<string, string[]>();

/** The frame's function name; a closure V8 leaves anonymous is named by the declaration it sits in (the matcher's `(r) => …` is `matcher`). */
function nameOf(f: CallFrame): string {
  if (f.functionName !== '') return f.functionName;
  let lines = sources.get(f.url);
  if (lines === undefined) {
    lines = readFileSync(fileURLToPath(f.url), 'utf8').split('\n');
    sources.set(f.url, lines);
  }
  for (let i = f.lineNumber; i >= 0; i--) {
    const m = DECL.exec(lines[i] ?? '');
    if (m) return m[1] ?? m[2] ?? '';
  }
  return '';
}

const BUILDING = new Set(['summarizeFile', 'addLine', 'finishBlock', 'newBlock', 'writeIndex', 'buildIndex', '#build']);
const FILE_IO = /^(native (read|open|openFileHandle|close|fstat|createUnsafeBuffer|copy)|node (fs(\/.*)?|buffer))$/;
const LOADING = /^(node (modules|bootstrap|process|main|url|vm|path|realm)(\/.*)?|native (ModuleWrap|compileFunction|internalModuleStat|readFileUtf8|link|instantiate|evaluate)|pkg .*)$/;

/**
 * The group of one sample: its leaf (what ran) read in the light of the
 * nearest of our functions on its stack (who asked for it).
 */
function classify(stack: CallFrame[], worker: boolean): Group {
  const leaf = stack[0] as CallFrame;
  const bucket = bucketOf(leaf.url, leaf.functionName);
  if (bucket === '(garbage collector)') return GROUP.gc;
  if (bucket === '(program)') return GROUP.other;
  const ours = stack.find((f) => oursFile(f.url) !== undefined);
  if (ours === undefined) {
    if (worker) return GROUP.workers;
    if (stack.some((f) => LOADING.test(bucketOf(f.url, f.functionName)))) return GROUP.startUp;
    return FILE_IO.test(bucket) ? GROUP.read : GROUP.other;
  }
  const file = oursFile(ours.url) as string;
  const fn = nameOf(ours);
  const leafFn = leaf.functionName;
  switch (file) {
    case 'audit/lines':
      if (leafFn === 'indexOfBuffer') return GROUP.search;
      return leaf === ours || leafFn === 'indexOfNumber' || fn === 'linesWith' ? GROUP.split : GROUP.read;
    case 'audit/query':
      if (fn === 'matcher' || bucket === 'pkg picomatch') return GROUP.match;
      if (fn === 'lineFilter' || fn === 'select') return GROUP.search;
      if (fn === 'visitor') return GROUP.parse;
      if (fn === 'completeEnd' || fn === 'firstTime' || fn === 'outsideWindow') return GROUP.read;
      return GROUP.query;
    case 'audit/indexed-scan':
    case 'audit/block-index':
      if (fn === 'readLine') return GROUP.read;
      return stack.some((f) => oursFile(f.url) !== undefined && BUILDING.has(nameOf(f))) ? GROUP.sidecarBuild : GROUP.sidecarRead;
    case 'audit/pool':
    case 'audit/scan-worker':
      return GROUP.workers;
    default:
      return worker ? GROUP.workers : GROUP.query;
  }
}

export interface QueryRun {
  records: number;
  nextCursor: string | null;
  /** Process start to the query's start. */
  startUpMs: number;
  /** The query alone. */
  ms: number;
  /** The query's start and end, µs of CLOCK_MONOTONIC (the profile's clock). */
  from: number;
  to: number;
}

export interface QueryProfile {
  run: QueryRun;
  /** ms per group, all threads summed, largest first; share of the busy time. */
  rows: { what: string; ms: number; share: number }[];
  /** Sampled busy time, all threads, start-up included. */
  busyMs: number;
  /** The main thread idle during the query: waiting for reads (libuv's thread pool) or for worker threads. */
  waitMs: number;
  /** Worker threads that ran (sidecar building). */
  workers: number;
  /** Bytes of the log the page went through (coveredBytes), and of the whole log. */
  coveredBytes: number;
  totalBytes: number;
}

/** Sums one thread's profile into `by`; returns the main thread's busy µs inside [from, to]. */
function addThread(file: string, worker: boolean, run: QueryRun, by: Map<Group, number>): number {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const parent = new Map<number, ProfileNode>();
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n);
  }
  const groupOf = new Map<number, Group | null>();
  let t = p.startTime;
  let inQuery = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    let g = groupOf.get(id);
    if (g === undefined) {
      const stack: CallFrame[] = [];
      for (let n = byId.get(id); n !== undefined; n = parent.get(n.id)) stack.push(n.callFrame);
      g = stack[0]?.functionName === '(idle)' || stack[0]?.functionName === '(root)' ? null : classify(stack, worker);
      groupOf.set(id, g);
    }
    if (g === null) continue;
    const during = t >= run.from && t <= run.to;
    if (!worker && during) inQuery += dt;
    const at = !worker && !during ? GROUP.startUp : g;
    by.set(at, (by.get(at) ?? 0) + dt);
  }
  return inQuery;
}

/** Runs one query over `dir` in a fresh process under --cpu-prof and sums its profiles (main thread and workers). */
export async function profileQuery(dir: string, filters: AuditFilters, limit: number): Promise<QueryProfile> {
  const profDir = mkdtempSync(join(tmpdir(), 'gh-bench-query-prof-'));
  try {
    const child = fileURLToPath(new URL('./audit-query-child.js', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profDir, child, dir, JSON.stringify(filters), String(limit)], { maxBuffer: 1 << 20 });
    const run = JSON.parse(stdout) as QueryRun;
    // CPU.<date>.<time>.<pid>.<thread id>.<n>.cpuprofile: thread 0 is the main thread.
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    const main = files.filter((f) => f.split('.')[4] === '0');
    if (main.length !== 1) throw new Error(`expected one main-thread profile among ${files.join(', ')}`);
    const by = new Map<Group, number>();
    let inQuery = 0;
    for (const f of files) {
      const isMain = f.split('.')[4] === '0';
      const busy = addThread(join(profDir, f), !isMain, run, by);
      if (isMain) inQuery = busy;
    }
    const busyUs = [...by.values()].reduce((s, v) => s + v, 0);
    const rows = [...by].map(([what, us]) => ({ what, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 })).sort((a, b) => b.ms - a.ms);
    const log = listAuditFiles(dir).filter((f) => f.firstSeq !== undefined);
    return {
      run,
      rows,
      busyMs: busyUs / 1000,
      waitMs: Math.max(0, run.ms - inQuery / 1000),
      workers: files.length - 1,
      coveredBytes: coveredBytes(log, run.nextCursor),
      totalBytes: log.reduce((s, f) => s + f.size, 0),
    };
  } finally {
    rmSync(profDir, { recursive: true, force: true });
  }
}

export function groupMs(p: QueryProfile, g: Group): number {
  return p.rows.find((r) => r.what === g)?.ms ?? 0;
}

/**
 * Bytes of the log a newest-first page went through: the files after the
 * cursor's, and the part of the cursor's file after its offset (the cursor
 * is query.ts's base64url JSON { f: first seq of the file, o: offset }).
 * No cursor: the whole log.
 */
export function coveredBytes(files: AuditFile[], nextCursor: string | null): number {
  const all = files.reduce((s, f) => s + f.size, 0);
  if (nextCursor === null) return all;
  const c = JSON.parse(Buffer.from(nextCursor, 'base64url').toString('utf8')) as { f: number; o: number; d: string };
  if (c.d !== 'desc') return all;
  return files.reduce((s, f) => s + ((f.firstSeq ?? Infinity) > c.f ? f.size : f.firstSeq === c.f ? f.size - c.o : 0), 0);
}

/** The largest `top` groups, the rest summed, the busy total, and the main thread's waiting, in ms. */
export function queryProfileTable(p: QueryProfile, top = 9): string {
  const shown = p.rows.slice(0, top);
  const rest = p.rows.slice(top);
  const restMs = rest.reduce((s, r) => s + r.ms, 0);
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = ['| spent in | ms | share of busy |', '|---|---:|---:|'];
  for (const r of shown) lines.push(`| ${r.what} | ${r.ms.toFixed(1)} | ${pct(r.share)} |`);
  if (rest.length > 0) lines.push(`| ${rest.length} others | ${restMs.toFixed(1)} | ${pct(restMs / Math.max(1e-9, p.busyMs))} |`);
  lines.push(`| **busy (sampled, ${p.workers > 0 ? `main thread and ${p.workers} workers` : 'main thread'})** | **${p.busyMs.toFixed(1)}** | 100% |`);
  lines.push(`| main thread idle during the query (waiting for reads in libuv's thread pool${p.workers > 0 ? ', or for the workers' : ''}) | ${p.waitMs.toFixed(1)} | — |`);
  return lines.join('\n');
}
