/**
 * Scanning a rotated file through its block index (block-index.ts): blocks
 * that cannot hold a match are skipped, blocks where a filter value is rare
 * are read line by line at the indexed offsets, the rest is scanned as
 * before. The visitor sees a subset of the lines a full scan would show it,
 * in the same order, and never misses one that matches.
 */
import picomatch from 'picomatch';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { ScanPool } from './pool.js';
import { entryOffsets, fileStamp, indexKey, readIndex, summarizeFile, writeIndex, type Block, type BlockIndex, type IndexedField, type ValueEntry } from './block-index.js';
import type { AuditFile } from './files.js';
import { scanLines, scanLinesReverse, type LineSelector, type LineVisitor, type ScanResult } from './lines.js';
import type { AuditFilters } from './query.js';

/** Files under this size are indexed without a worker. */
const IN_THREAD_BYTES = 1 << 20;

type Test = { field: IndexedField; test: (v: string) => boolean };

/** The filters an index can answer; none means the index is no use (no filter, or only --grep). */
export function indexTests(f: AuditFilters): { tests: Test[]; since?: string; until?: string } | undefined {
  const tests: Test[] = [];
  for (const field of ['agent', 'session', 'connector', 'decision', 'outcome'] as const) {
    const want = f[field];
    if (want !== undefined) tests.push({ field, test: (v) => v === want });
  }
  if (f.tool !== undefined) tests.push({ field: 'tool', test: picomatch(f.tool, { dot: true }) });
  if (f.event !== undefined) tests.push({ field: 'event', test: picomatch(f.event, { dot: true }) });
  const since = f.since?.toISOString();
  const until = f.until?.toISOString();
  if (tests.length === 0 && since === undefined && until === undefined) return undefined;
  return { tests, ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) };
}

type Plan = 'skip' | 'whole' | number[];

/** What to read of one block: nothing, all of it, or the lines at these offsets. */
export function planBlock(b: Block, q: NonNullable<ReturnType<typeof indexTests>>): Plan {
  if (b.x) return 'whole';
  if ((q.since !== undefined || q.until !== undefined) && !b.xt) {
    if (!b.t) return 'skip';
    if (q.since !== undefined && b.t[1] < q.since) return 'skip';
    if (q.until !== undefined && b.t[0] >= q.until) return 'skip';
  }
  let lines: number[] | undefined;
  for (const { field, test } of q.tests) {
    const entries = b.f[field];
    if (entries === null) continue; // too many values to list: unknown
    if (!Array.isArray(entries)) return 'skip'; // no line has a string value here
    const hits: ValueEntry[] = entries.filter((e) => Array.isArray(e) && typeof e[0] === 'string' && test(e[0]));
    if (hits.length === 0) return 'skip';
    const at: number[] = [];
    let all = true;
    for (const h of hits) {
      const o = entryOffsets(b, h);
      if (o === undefined) {
        all = false;
        break;
      }
      at.push(...o);
    }
    if (!all) continue;
    if (hits.length > 1) at.sort((x, y) => x - y);
    lines = lines === undefined ? at : intersect(lines, at);
    if (lines.length === 0) return 'skip';
  }
  // Many lines of the block: one read of the block is cheaper than many small ones.
  if (lines === undefined || lines.length * 8 > b.n) return 'whole';
  return lines;
}

function intersect(a: number[], b: number[]): number[] {
  const out: number[] = [];
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    if ((a[i] as number) < (b[j] as number)) i++;
    else if ((a[i] as number) > (b[j] as number)) j++;
    else {
      out.push(a[i] as number);
      i++;
      j++;
    }
  }
  return out;
}

type Segment = { from: number; to: number } | { lines: number[]; end: number };

/** Scans [from, to) of a rotated file through its index, in file order (asc) or backwards; same result shape as scanLines. */
export async function scanIndexed(
  file: AuditFile,
  ix: BlockIndex,
  q: NonNullable<ReturnType<typeof indexTests>>,
  range: { from: number; to: number },
  ascending: boolean,
  visit: LineVisitor,
  select: LineSelector | undefined,
): Promise<ScanResult> {
  const segs: Segment[] = [];
  for (const b of ix.blocks) {
    if (b.e <= range.from || b.o >= range.to) continue;
    const plan = planBlock(b, q);
    if (plan === 'skip') continue;
    const from = Math.max(b.o, range.from);
    const to = Math.min(b.e, range.to);
    if (plan === 'whole') {
      const last = segs.at(-1);
      if (last && 'to' in last && last.to === from) last.to = to;
      else segs.push({ from, to });
    } else {
      const lines = plan.filter((o) => o >= from && o < to);
      if (lines.length > 0) segs.push({ lines, end: to });
    }
  }
  if (!ascending) segs.reverse();
  let fd: number | undefined;
  let sinceYield = Date.now();
  try {
    for (const s of segs) {
      if ('to' in s) {
        const res = ascending ? await scanLines(file.path, s.from, s.to, visit, undefined, select) : await scanLinesReverse(file.path, s.from, s.to, visit, select);
        if (res.stopped) return res;
        continue;
      }
      fd ??= openSync(file.path, 'r');
      const lines = ascending ? s.lines : [...s.lines].reverse();
      for (const at of lines) {
        const line = readLine(fd, at, s.end);
        if (line === undefined) continue;
        if (visit(line, 0, line.length, at) === false) return { position: ascending ? at + line.length + 1 : at, stopped: true };
      }
      // Reads here are small and synchronous: let other work run now and then.
      if (Date.now() - sinceYield > 20) {
        await new Promise((r) => setImmediate(r));
        sinceYield = Date.now();
      }
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return { position: ascending ? Math.min(ix.end, range.to) : range.from, stopped: false };
}

/** The line starting at `at` (without its newline), read up to `end`; undefined if it has no newline before `end`. */
function readLine(fd: number, at: number, end: number): Buffer | undefined {
  let want = Math.min(2048, end - at);
  for (;;) {
    const buf = Buffer.allocUnsafe(want);
    const got = readSync(fd, buf, 0, want, at);
    const nl = buf.subarray(0, got).indexOf(10);
    if (nl >= 0) return buf.subarray(0, nl);
    if (got < want || at + want >= end) return undefined;
    want = Math.min(want * 8, end - at);
  }
}

/**
 * Builds a rotated file's index and writes its sidecar: here for a small
 * file (a few ms), in a worker for a big one, so this thread stays free.
 * Undefined when the file is not `size` bytes any more (it is then scanned
 * as it is).
 */
export async function buildIndex(path: string, size: number, key: Buffer, pool: () => ScanPool): Promise<BlockIndex | undefined> {
  const stamp = fileStamp(path);
  if (stamp.size !== size) return undefined;
  const body = size < IN_THREAD_BYTES ? await summarizeFile(path, size) : await pool().run({ kind: 'index', path, size });
  return writeIndex(path, body, key, stamp);
}

/** Indexes a file the writer has just rotated, so queries do not wait for it (no keys folder: nothing). */
export async function indexRotated(dir: string, path: string, pool: () => ScanPool): Promise<void> {
  const key = indexKey(dir);
  if (key !== undefined) await buildIndex(path, statSync(path).size, key, pool);
}

/**
 * The indexes of one query's rotated files: read from their sidecars, or
 * built (in worker threads, a few files ahead in scan order) and written
 * back when missing or stale. Without a key (no keys folder) there are none.
 */
export class QueryIndexes {
  readonly #key: Buffer | undefined;
  readonly #files: AuditFile[];
  readonly #order: number[];
  readonly #have = new Map<number, Promise<BlockIndex | undefined>>();
  #pool: ScanPool | undefined;

  /** `order`: indexes into `files` in the order the scan will visit them. */
  constructor(dir: string, files: AuditFile[], order: number[]) {
    this.#key = indexKey(dir);
    this.#files = files;
    this.#order = order.filter((i) => !(files[i] as AuditFile).current);
  }

  get(i: number): Promise<BlockIndex | undefined> {
    const key = this.#key;
    const file = this.#files[i] as AuditFile;
    if (key === undefined || file.current) return Promise.resolve(undefined);
    const known = this.#have.get(i);
    if (known) return known;
    const ix = readIndex(file.path, key);
    if (ix) {
      const p = Promise.resolve(ix);
      this.#have.set(i, p);
      return p;
    }
    // Build this one and the next few that need it, one per core.
    const at = this.#order.indexOf(i);
    const ahead = this.#order.slice(at < 0 ? 0 : at, (at < 0 ? 0 : at) + ScanPool.cores());
    for (const j of ahead) if (!this.#have.has(j)) this.#have.set(j, j === i ? this.#build(j, key) : this.#prefetch(j, key));
    return this.#have.get(i) as Promise<BlockIndex | undefined>;
  }

  #prefetch(j: number, key: Buffer): Promise<BlockIndex | undefined> {
    const f = this.#files[j] as AuditFile;
    const ix = readIndex(f.path, key);
    return ix ? Promise.resolve(ix) : this.#build(j, key);
  }

  #build(j: number, key: Buffer): Promise<BlockIndex | undefined> {
    const f = this.#files[j] as AuditFile;
    return buildIndex(f.path, f.size, key, () => (this.#pool ??= new ScanPool())).catch(() => undefined); // no index: the file is scanned
  }

  /** Waits for builds under way (their sidecars get written), then stops the workers. */
  async close(): Promise<void> {
    await Promise.all(this.#have.values());
    await this.#pool?.close();
  }
}
