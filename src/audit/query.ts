import picomatch from 'picomatch';
import { parseDuration } from '../config/duration.js';
import { GatehouseError } from '../errors.js';
import { isIntent, outcomesFollowing, unfinishedStatus, type CallStatus, type IntentAt } from './calls.js';
import { listAuditFiles, readFirstLine, type AuditFile } from './files.js';
import { indexTests, QueryIndexes, scanIndexed } from './indexed-scan.js';
import { linesWith, scanLines, scanLinesReverse, type LineSelector, type LineVisitor } from './lines.js';
import { CALL_INTENT_EVENT, type AuditRecord } from './types.js';

export interface AuditFilters {
  /** Records at or after this time. */
  since?: Date;
  /** Records before this time. */
  until?: Date;
  agent?: string;
  session?: string;
  connector?: string;
  /** Glob over the exposed tool name (picomatch). */
  tool?: string;
  decision?: string;
  /** A recorded outcome, or `pending` / `unknown`: forwarded calls with an intent and no outcome (in flight / gateway stopped). */
  outcome?: string;
  event?: string;
  /** Plain text that must occur in the record's JSON line (case-sensitive). */
  grep?: string;
}

export interface QueryOptions {
  /** From a previous page's `nextCursor`. */
  cursor?: string;
  /** At most this many records (default 100, at most 10,000). */
  limit?: number;
  /** `desc`: newest first (default); `asc`: oldest first. */
  order?: 'asc' | 'desc';
  /**
   * Use (and build or refresh) the rotated files' block indexes (default
   * true). `false` scans every file line by line, as the indexes are
   * checked against.
   */
  index?: boolean;
}

export interface QueryPage {
  /**
   * Matching records. An intent (`tools/call.intent`) whose call has an
   * outcome record is left out (the outcome stands for the call) unless the
   * query asks for intents by event; every intent returned carries
   * `callStatus` (derived when read, not part of the stored, hashed record).
   */
  records: AuditRecord[];
  /**
   * Where the next page starts. `null` when a newest-first query reached the
   * oldest record. An oldest-first query always returns one (its end), so a
   * follower can poll with it for records written later.
   */
  nextCursor: string | null;
  /** Whether the scan stopped at `limit` (more matching records may follow). */
  more: boolean;
}

export const MAX_QUERY_LIMIT = 10_000;

interface Cursor {
  /** First seq of the file (stable across rotation, which only renames). */
  f: number;
  /** Byte offset: asc, the next line starts here; desc, the next line ends before here. */
  o: number;
  d: 'asc' | 'desc';
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(s: string, order: 'asc' | 'desc'): Cursor {
  try {
    const c = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Cursor;
    if (Number.isSafeInteger(c.f) && Number.isSafeInteger(c.o) && c.o >= 0 && c.d === order) return c;
  } catch {
    // fall through
  }
  throw new GatehouseError('USAGE', 'invalid cursor (it must come from a previous page with the same order)');
}

/** Strings each matching line must contain, as pino/JSON writes them (a cheap test before JSON.parse). */
function needlesFor(f: AuditFilters): Buffer[] {
  const out: string[] = [];
  const field = (k: string, v: string | undefined) => v !== undefined && out.push(`"${k}":${JSON.stringify(v)}`);
  field('agent', f.agent);
  field('session', f.session);
  field('connector', f.connector);
  if (f.tool !== undefined) {
    const literal = (f.tool.match(/[^*?[\]{}()!+@\\|]+/g) ?? []).sort((a, b) => b.length - a.length)[0];
    if (literal !== undefined && literal.length >= 2) out.push(JSON.stringify(literal).slice(1, -1));
  }
  if (f.grep !== undefined && f.grep !== '') out.push(JSON.stringify(f.grep).slice(1, -1));
  field('decision', f.decision);
  field('outcome', f.outcome);
  // A glob (model.*) is tested on the parsed record only.
  if (f.event !== undefined && !/[*?[\]{}]/.test(f.event)) field('event', f.event);
  return out.map((s) => Buffer.from(s));
}

/** The exact test, on a parsed record. */
export function matcher(f: AuditFilters): (r: AuditRecord) => boolean {
  const since = f.since?.toISOString();
  const until = f.until?.toISOString();
  const tool = f.tool !== undefined ? picomatch(f.tool, { dot: true }) : undefined;
  const event = f.event !== undefined ? picomatch(f.event, { dot: true }) : undefined;
  return (r) =>
    (since === undefined || r.time >= since) &&
    (until === undefined || r.time < until) &&
    (f.agent === undefined || r.agent === f.agent) &&
    (f.session === undefined || r.session === f.session) &&
    (f.connector === undefined || r.connector === f.connector) &&
    (tool === undefined || (typeof r.tool === 'string' && tool(r.tool))) &&
    (f.decision === undefined || r.decision === f.decision) &&
    (f.outcome === undefined || r.outcome === f.outcome) &&
    (event === undefined || (typeof r.event === 'string' && event(r.event)));
}

/**
 * Per-line filter over raw bytes: every needle must occur inside the line.
 * The nearest occurrence of each needle in the scan direction is
 * remembered, so a chunk is searched about once per needle, not once per line.
 */
function lineFilter(needles: Buffer[], ascending: boolean): (buf: Buffer, start: number, end: number) => boolean {
  if (needles.length === 0) return () => true;
  let lastBuf: Buffer | undefined;
  // asc: next occurrence at or after the line start; desc: last occurrence starting before the line end. -1: none.
  const near: number[] = needles.map(() => NaN);
  return (buf, start, end) => {
    if (buf !== lastBuf) {
      lastBuf = buf;
      near.fill(NaN);
    }
    for (let i = 0; i < needles.length; i++) {
      const n = needles[i] as Buffer;
      let at = near[i] as number;
      if (ascending) {
        if (Number.isNaN(at) || (at >= 0 && at < start)) near[i] = at = buf.indexOf(n, start);
        if (at < 0 || at + n.length > end) return false;
      } else {
        if (Number.isNaN(at) || at + n.length > end) near[i] = at = end - n.length < 0 ? -1 : buf.lastIndexOf(n, end - n.length);
        if (at < start) return false;
      }
    }
    return true;
  };
}

/** Time of a file's first record (for skipping whole files by time). */
function firstTime(file: AuditFile): string | undefined {
  const line = readFirstLine(file.path);
  const m = line === undefined ? null : /"time":"([^"]+)"/.exec(line.slice(line.lastIndexOf('"time":"')));
  return m?.[1];
}

/**
 * Whether a whole file is outside the time window: records are appended in
 * time order, so a file ends before the next one's first record and starts
 * at its own first record. (Assumes the clock did not step back across a
 * rotation; within a file every record is tested.)
 */
function outsideWindow(i: number, files: AuditFile[], f: AuditFilters): boolean {
  const file = files[i] as AuditFile;
  const next = files[i + 1];
  if (f.since !== undefined && next) {
    const t = firstTime(next);
    if (t !== undefined && t < f.since.toISOString()) return true;
  }
  if (f.until !== undefined) {
    const t = firstTime(file);
    if (t !== undefined && t >= f.until.toISOString()) return true;
  }
  return false;
}

/**
 * Reads the audit log (all files, rotated ones too) and returns one page of
 * records matching `filters`, newest first by default. Lines are tested on
 * their raw bytes first (each filter value as it appears in JSON), and only
 * candidates are parsed.
 */
export async function queryAudit(dir: string, filters: AuditFilters = {}, opts: QueryOptions = {}): Promise<QueryPage> {
  const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 100)), MAX_QUERY_LIMIT);
  const wanted = filters.outcome === 'pending' || filters.outcome === 'unknown' ? filters.outcome : undefined;
  const { outcome: _outcome, ...rest } = filters;
  const scan: AuditFilters = wanted ? { ...rest, event: CALL_INTENT_EVENT } : filters;
  const showDone = scan.event === CALL_INTENT_EVENT && wanted === undefined;
  const files = listAuditFiles(dir).filter((f) => f.firstSeq !== undefined);
  const indexes = indexTests(scan) && opts.index !== false ? new QueryIndexes(dir, files, files.map((_, i) => ((opts.order ?? 'desc') === 'asc' ? i : files.length - 1 - i))) : undefined;
  try {
    return await pages(dir, files, scan, wanted, showDone, limit, opts, indexes);
  } finally {
    await indexes?.close();
  }
}

async function pages(
  dir: string,
  files: AuditFile[],
  scan: AuditFilters,
  wanted: string | undefined,
  showDone: boolean,
  limit: number,
  opts: QueryOptions,
  indexes: QueryIndexes | undefined,
): Promise<QueryPage> {
  let status: ((seq: number) => CallStatus) | undefined;
  const records: AuditRecord[] = [];
  let cursor = opts.cursor;
  for (;;) {
    const page = await scanPage(files, scan, { ...opts, limit: limit - records.length, ...(cursor !== undefined ? { cursor } : {}) }, indexes);
    if (page.intents.length > 0) {
      const inPage = new Set(page.records.filter((r) => r.event === 'tools/call' && typeof r.call === 'string').map((r) => r.call as string));
      const done = await outcomesFollowing(files, page.intents.filter((i) => !inPage.has(i.record.call as string)));
      for (const { record } of page.intents) {
        const id = record.call as string;
        if (inPage.has(id) || done.has(id)) record.callStatus = 'done';
        else record.callStatus = (status ??= await unfinishedStatus(dir))(record.seq);
      }
    }
    for (const r of page.records) {
      if (isIntent(r)) {
        const st = r.callStatus as CallStatus;
        if (st === 'done' ? !showDone : wanted !== undefined && !st.startsWith(wanted)) continue;
      }
      records.push(r);
    }
    if (records.length >= limit || !page.more || page.nextCursor === null) return { records, nextCursor: page.nextCursor, more: page.more };
    cursor = page.nextCursor;
  }
}

async function scanPage(files: AuditFile[], filters: AuditFilters, opts: QueryOptions & { limit: number }, indexes: QueryIndexes | undefined): Promise<QueryPage & { intents: IntentAt[] }> {
  const order = opts.order ?? 'desc';
  const limit = opts.limit;
  const intents: IntentAt[] = [];
  const cursor = opts.cursor !== undefined ? decodeCursor(opts.cursor, order) : undefined;
  const match = matcher(filters);
  const needles = needlesFor(filters);
  const records: AuditRecord[] = [];
  // With a needle, jump between its hits; every other needle must be in the same line.
  const [first, ...others] = needles;
  const select: LineSelector | undefined = first ? (buf, end) => linesWith(buf, end, first, others) : undefined;
  const tests = indexTests(filters);
  /** A rotated file through its block index when it has one, else line by line. */
  const scan = async (i: number, from: number, to: number, ascending: boolean, visit: LineVisitor) => {
    const file = files[i] as AuditFile;
    const ix = tests && indexes ? await indexes.get(i) : undefined;
    if (ix && tests) return scanIndexed(file, ix, tests, { from, to }, ascending, visit, select);
    return ascending ? scanLines(file.path, from, to, visit, undefined, select) : scanLinesReverse(file.path, from, to, visit, select);
  };

  const visitor = (ascending: boolean, file: number) => {
    const pre = lineFilter(needles, ascending);
    return (buf: Buffer, start: number, end: number, offset: number): boolean => {
      if (end <= start || !pre(buf, start, end)) return true;
      let r: AuditRecord;
      try {
        r = JSON.parse(buf.toString('utf8', start, end)) as AuditRecord;
      } catch {
        return true; // a torn line: verify reports it
      }
      if (match(r)) {
        records.push(r);
        if (isIntent(r)) intents.push({ record: r, file, after: offset + (end - start) + 1 });
      }
      return records.length < limit;
    };
  };

  if (order === 'asc') {
    let startIdx = 0;
    let offset = 0;
    if (cursor) {
      const i = files.findIndex((f) => f.firstSeq === cursor.f);
      // The cursor's file was removed by retention: continue with the first file after it.
      startIdx = i >= 0 ? i : files.findIndex((f) => (f.firstSeq ?? 0) > cursor.f);
      offset = i >= 0 ? cursor.o : 0;
      if (startIdx < 0) startIdx = files.length;
    }
    let last: Cursor | undefined = cursor;
    for (let i = startIdx; i < files.length; i++) {
      const file = files[i] as AuditFile;
      if (outsideWindow(i, files, filters)) continue;
      const res = await scan(i, i === startIdx ? offset : 0, file.size, true, visitor(true, i));
      last = { f: file.firstSeq as number, o: res.position, d: 'asc' };
      if (res.stopped) return { records, intents, nextCursor: encodeCursor(last), more: true };
    }
    const end = last ?? { f: 1, o: 0, d: 'asc' as const };
    return { records, intents, nextCursor: encodeCursor(end), more: false };
  }

  let startIdx = files.length - 1;
  let offset: number | undefined;
  if (cursor) {
    const i = files.findIndex((f) => f.firstSeq === cursor.f);
    startIdx = i >= 0 ? i : files.findLastIndex((f) => (f.firstSeq ?? 0) < cursor.f);
    offset = i >= 0 ? cursor.o : undefined;
  }
  for (let i = startIdx; i >= 0; i--) {
    const file = files[i] as AuditFile;
    if (outsideWindow(i, files, filters)) continue;
    let to = i === startIdx && offset !== undefined ? Math.min(offset, file.size) : file.size;
    if (to === file.size) to = await completeEnd(file);
    const res = await scan(i, 0, to, false, visitor(false, i));
    if (res.stopped) {
      // The last record returned starts at res.position; the next page ends there.
      const more = res.position > 0 || i > 0;
      return { records, intents, nextCursor: more ? encodeCursor({ f: file.firstSeq as number, o: res.position, d: 'desc' }) : null, more };
    }
  }
  return { records, intents, nextCursor: null, more: false };
}

/** End of the last complete line (a line being written has no newline yet). */
async function completeEnd(file: AuditFile): Promise<number> {
  if (file.size === 0) return 0;
  const { open } = await import('node:fs/promises');
  const fh = await open(file.path, 'r');
  try {
    const back = Math.min(file.size, 1 << 20);
    const buf = Buffer.alloc(back);
    await fh.read(buf, 0, back, file.size - back);
    const nl = buf.lastIndexOf(10);
    return nl < 0 ? file.size - back : file.size - back + nl + 1;
  } finally {
    await fh.close();
  }
}

/** Parses a duration ago from `now` ("1h", "1h30m", "2d") or an ISO 8601 time. */
export function parseTime(s: string, now = new Date()): Date {
  const ago = parseDuration(s);
  if (ago !== undefined) return new Date(now.getTime() - ago);
  const t = /^\s*\d+\s*$/.test(s) ? NaN : Date.parse(s);
  if (Number.isNaN(t)) throw new GatehouseError('USAGE', `invalid time ${JSON.stringify(s)}: use e.g. 1h, 1h30m, 2d or 2025-01-06T10:00:00Z`);
  return new Date(t);
}

/** A cursor at the current end of the log, for following new records (order asc). */
export async function endCursor(dir: string): Promise<string> {
  const files = listAuditFiles(dir).filter((f) => f.firstSeq !== undefined);
  const last = files.at(-1);
  if (!last) return encodeCursor({ f: 1, o: 0, d: 'asc' });
  return encodeCursor({ f: last.firstSeq as number, o: await completeEnd(last), d: 'asc' });
}
