/**
 * Reads the audit log behind its writer, record by record, from a position
 * that survives rotation: a position names the record (seq and hash) and,
 * as a shortcut, the file (by the seq of its first record: rotation only
 * renames a file, so that name is stable) and the byte offset after it.
 *
 * The shortcut is used only when the bytes before the offset still end
 * with that record's hash; otherwise the record is looked up by seq. A log
 * whose record at that seq has another hash is a different log (the state
 * directory was reset): it is read again from its start, so nothing is lost.
 *
 * Each record is checked as `audit verify` checks it (its own hash, and its
 * `prev` against the record before it). What is wrong is never skipped
 * silently: it is a notice, and it travels with the record concerned — or,
 * for what is gone (a gap, a line that is not a record), with the next
 * record read — as `problems`, which the SIEM is sent with it (encode.ts).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CURRENT_FILE, listAuditFiles, type AuditFile } from '../../audit/files.js';
import { checkLine } from '../../audit/record.js';
import { scanTail } from '../../audit/tail.js';
import type { AuditRecord } from '../../audit/types.js';

export interface Position {
  seq: number;
  hash: string;
  /** First seq of the file the record is in. */
  file: number;
  /** Byte offset just after the record's newline. */
  offset: number;
}

export interface ReadItem {
  record: AuditRecord;
  /** The stored line, without its newline. */
  line: string;
  pos: Position;
  /** What is wrong with this record or just before it (edited, chain broken, records missing, a line that is not a record). */
  problems?: string[];
}

/** Something the reader had to decide on its own: records missing (gap), a new log (reset), a line that is not a record (malformed), a record that does not verify (integrity). */
export interface ReadNotice {
  kind: 'gap' | 'reset' | 'malformed' | 'integrity';
  message: string;
}

export interface ReadResult {
  items: ReadItem[];
  notices: ReadNotice[];
}

export interface ReadLimits {
  records: number;
  bytes: number;
}

const CHUNK = 256 * 1024;
/** Notices one read returns, and problems one record carries, at most (a file of garbage must not become a list as long). */
const MAX_NOTICES = 100;
const MAX_PROBLEMS = 16;

interface Cursorish {
  index: number;
  offset: number;
  /** The seq the next record should have (undefined: any). */
  expect: number | undefined;
  /** The hash the next record's `prev` should be (undefined: not known). */
  prev: string | undefined;
}

export class AuditReader {
  readonly dir: string;
  /** The file being read, held open: a rotation renames it, and the handle still reads it. */
  #open: { firstSeq: number; fh: FileHandle } | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  async close(): Promise<void> {
    await this.#open?.fh.close().catch(() => undefined);
    this.#open = undefined;
  }

  /** Seq of the last complete record in the log (0 when empty). */
  lastSeq(): number {
    try {
      return scanTail(join(this.dir, CURRENT_FILE)).last?.seq ?? lastRotatedSeq(this.dir);
    } catch {
      return lastRotatedSeq(this.dir);
    }
  }

  /**
   * Records after `from`, at most `limits`. Without `from`: from the log's
   * start, or from the start of the first file whose first seq is at least
   * `fromFile` (a reader skipping files outside a time window).
   */
  async read(from: Position | undefined, limits: ReadLimits, fromFile?: number): Promise<ReadResult> {
    const files = listAuditFiles(this.dir).filter((f) => f.firstSeq !== undefined);
    const notices: ReadNotice[] = [];
    const items: ReadItem[] = [];
    if (files.length === 0) return { items, notices };
    let at: Cursorish = from === undefined && fromFile !== undefined ? { index: Math.max(0, files.findIndex((f) => (f.firstSeq as number) >= fromFile)), offset: 0, expect: undefined, prev: undefined } : await this.#locate(files, from, notices);
    // Problems not yet told with a record: they go with the next one read.
    let pending = notices.map((n) => n.message);
    let more = 0;
    const notice = (kind: ReadNotice['kind'], message: string) => {
      if (notices.length < MAX_NOTICES) notices.push({ kind, message });
    };
    const note = (kind: ReadNotice['kind'], message: string) => {
      notice(kind, message);
      if (pending.length < MAX_PROBLEMS) pending.push(message);
      else more++;
    };
    let bytes = 0;
    while (at.index < files.length) {
      const file = files[at.index] as AuditFile;
      const fh = await this.#handle(file);
      if (fh === undefined) break; // gone or replaced since the listing: the next read lists again
      const size = (await fh.stat()).size;
      const done = await readLines(fh, at.offset, size, (line, end) => {
        const where = `${file.name} at byte ${end - Buffer.byteLength(line) - 1}`;
        const checked = checkLine(line);
        if (!checked.ok && checked.reason === 'malformed') {
          note('malformed', checked.message.startsWith('not valid JSON') ? `${where}: not a JSON record; skipped` : `${where}: not an audit record (${checked.message}); skipped`);
          return true;
        }
        const r = checked.record;
        if (at.expect !== undefined && r.seq < at.expect) {
          note('malformed', `${where}: seq ${r.seq} again, after seq ${at.expect - 1}; skipped`);
          return true;
        }
        const own: string[] = [];
        if (at.expect !== undefined && r.seq > at.expect) note('gap', `records ${at.expect}..${r.seq - 1} are not in the log`);
        else if (at.prev !== undefined && r.prev !== at.prev) own.push(`seq ${r.seq}: its prev is not the hash of seq ${r.seq - 1} (the chain is broken: a record before it was replaced)`);
        if (!checked.ok) own.push(`seq ${r.seq}: ${checked.message}`);
        at.expect = r.seq + 1;
        at.prev = r.hash;
        // A time no sink can carry (HEC, OTLP and OCSF need one) would stall shipping for good: skipped, and said.
        if (!Number.isFinite(Date.parse(r.time))) {
          for (const message of own) note('integrity', message);
          note('malformed', `${where}: seq ${r.seq}: its time ${JSON.stringify(r.time.slice(0, 40))} is not a time; skipped`);
          return true;
        }
        for (const message of own) notice('integrity', message);
        const problems = [...pending, ...(more > 0 ? [`and ${more} more such problems before it`] : []), ...own];
        pending = [];
        more = 0;
        items.push({ record: r, line, pos: { seq: r.seq, hash: r.hash, file: file.firstSeq as number, offset: end }, ...(problems.length > 0 ? { problems } : {}) });
        bytes += line.length;
        return items.length < limits.records && bytes < limits.bytes;
      });
      at.offset = done.offset;
      if (done.stopped) break;
      // At the end of a file: a rotated one is complete, go on to the next; the current one may still grow.
      if (at.index === files.length - 1) break;
      at = { index: at.index + 1, offset: 0, expect: at.expect, prev: at.prev };
    }
    return { items, notices };
  }

  /** An open handle on `file`, checked to be that file (its first record has the seq it is named by). */
  async #handle(file: AuditFile): Promise<FileHandle | undefined> {
    const first = file.firstSeq as number;
    if (this.#open?.firstSeq === first) return this.#open.fh;
    await this.close();
    let fh: FileHandle;
    try {
      fh = await open(file.path, 'r');
    } catch {
      return undefined;
    }
    // Parsed, not searched: a nested "seq" (an audit.checkpoint's) may come first in a line.
    const seq = await firstSeqOf(fh);
    if (seq !== first) {
      await fh.close();
      return undefined;
    }
    this.#open = { firstSeq: first, fh };
    return fh;
  }

  /** Where to start reading after `from`. */
  async #locate(files: AuditFile[], from: Position | undefined, notices: ReadNotice[]): Promise<Cursorish> {
    if (from === undefined) return { index: 0, offset: 0, expect: undefined, prev: undefined };
    const index = files.findIndex((f) => f.firstSeq === from.file);
    if (index >= 0) {
      const fh = await this.#handle(files[index] as AuditFile);
      if (fh !== undefined && (await endsWithRecord(fh, from.offset, from.hash))) return { index, offset: from.offset, expect: from.seq + 1, prev: from.hash };
    }
    // By seq: the last file starting at or before it.
    const first = files[0] as AuditFile;
    if ((first.firstSeq as number) > from.seq) {
      if ((first.firstSeq as number) > from.seq + 1) notices.push({ kind: 'gap', message: `records ${from.seq + 1}..${(first.firstSeq as number) - 1} were deleted (retention) before they were shipped` });
      return { index: 0, offset: 0, expect: first.firstSeq as number, prev: first.firstSeq === from.seq + 1 ? from.hash : undefined };
    }
    const at = files.findLastIndex((f) => (f.firstSeq as number) <= from.seq);
    const found = await this.#find(files[at] as AuditFile, from.seq);
    if (found !== undefined && found.hash === from.hash) return { index: at, offset: found.end, expect: from.seq + 1, prev: from.hash };
    notices.push({
      kind: 'reset',
      message:
        found === undefined
          ? `the audit log ends before seq ${from.seq}, the last one shipped: it is a new log; shipping it from its start`
          : `the audit record at seq ${from.seq} is not the one shipped (another hash): it is a new log; shipping it from its start`,
    });
    return { index: 0, offset: 0, expect: undefined, prev: undefined };
  }

  /** The record with `seq` in `file`: its hash and the offset after it. */
  async #find(file: AuditFile, seq: number): Promise<{ hash: string; end: number } | undefined> {
    const fh = await this.#handle(file);
    if (fh === undefined) return undefined;
    let found: { hash: string; end: number } | undefined;
    const needle = `"seq":${seq},`;
    await readLines(fh, 0, (await fh.stat()).size, (line, end) => {
      if (!line.includes(needle)) return true;
      try {
        const r = JSON.parse(line) as AuditRecord;
        if (r.seq === seq && typeof r.hash === 'string') found = { hash: r.hash, end };
      } catch {
        return true;
      }
      return found === undefined;
    });
    return found;
  }
}

/** Whether the bytes before `offset` are the end of the record whose hash is `hash` (`…"hash":"<hex>"}` and a newline). */
async function endsWithRecord(fh: FileHandle, offset: number, hash: string): Promise<boolean> {
  const tail = Buffer.from(`"hash":"${hash}"}\n`);
  if (offset < tail.length) return false;
  const buf = Buffer.alloc(tail.length);
  const { bytesRead } = await fh.read(buf, 0, tail.length, offset - tail.length);
  return bytesRead === tail.length && buf.equals(tail);
}

async function firstSeqOf(fh: FileHandle): Promise<number | undefined> {
  let seq: number | undefined;
  await readLines(fh, 0, (await fh.stat()).size, (line) => {
    try {
      const r = JSON.parse(line) as { seq?: unknown };
      if (typeof r.seq === 'number') seq = r.seq;
    } catch {
      // not a record
    }
    return false;
  });
  return seq;
}

/**
 * Calls `visit(line, endOffset)` for each complete line in [from, to) (a
 * line without its newline is left for later: the writer is still writing it).
 */
async function readLines(fh: FileHandle, from: number, to: number, visit: (line: string, end: number) => boolean): Promise<{ offset: number; stopped: boolean }> {
  let pos = from;
  let carry = Buffer.alloc(0);
  while (pos < to) {
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK, to - pos));
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
    if (bytesRead === 0) break;
    const buf = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
    const base = pos - carry.length;
    pos += bytesRead;
    let start = 0;
    for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
      const end = base + nl + 1;
      const line = buf.toString('utf8', start, nl);
      start = nl + 1;
      if (line.length > 0 && !visit(line, end)) return { offset: end, stopped: true };
    }
    carry = Buffer.from(buf.subarray(start));
  }
  return { offset: pos - carry.length, stopped: false };
}

function lastRotatedSeq(dir: string): number {
  const rotated = listAuditFiles(dir).filter((f) => !f.current && f.firstSeq !== undefined);
  const last = rotated.at(-1);
  if (last === undefined) return 0;
  try {
    return scanTail(last.path).last?.seq ?? 0;
  } catch {
    return 0;
  }
}
