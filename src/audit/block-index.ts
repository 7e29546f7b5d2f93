/**
 * A block index of one rotated (closed) audit file, kept beside it as a
 * sidecar: for every BLOCK_LINES lines, the byte range, the time span, and
 * per filter field the distinct values with their counts, plus where the
 * rare ones are (line offsets). A query skips blocks that cannot match and
 * reads only the lines that may (query.ts).
 *
 * The sidecar is a cache, never trusted over the log: it is used only when
 * its HMAC (key in `<state>/keys`, like the checkpoint key) verifies and it
 * still describes the file (size, mtime, ctime, SHA-256 of its first and
 * last 4 KiB);
 * anything else is ignored and rebuilt from the log. The index only ever
 * narrows which lines are parsed: every line it lets through still goes
 * through the query's own tests.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, existsSync, linkSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The fields a block lists the values of (each one is a filter of `gatehouse logs`). */
export const INDEXED_FIELDS = ['agent', 'session', 'connector', 'tool', 'decision', 'outcome', 'event'] as const;
export type IndexedField = (typeof INDEXED_FIELDS)[number];

export const BLOCK_LINES = 1024;
/** Past this many distinct values (or a value longer than MAX_VALUE), a field is "unknown" for the block: it is read. */
const MAX_DISTINCT = 128;
const MAX_VALUE = 256;
/** A value on at most this share of a block's lines also has its line offsets (so only those lines are read). */
const RARE_SHARE = 16;
const EDGE = 4096;
const INDEX_VERSION = 1;

/** One value of a field in a block: the value, how many lines carry it, and (rare values) their offsets, delta-coded base 36. */
export type ValueEntry = [value: string, count: number, at?: string];

export interface Block {
  /** Byte range [o, e) of whole lines. */
  o: number;
  e: number;
  /** Lines in the block. */
  n: number;
  /** Earliest and latest string `time` (absent: no record has one). */
  t?: [string, string];
  /** Some record's time is an object or array (compared as text by the matcher): no skipping by time. */
  xt?: 1;
  /** Some line is JSON but not an object: the block is always read. */
  x?: 1;
  /** Per field: its values, or null when there are too many to list. */
  f: Partial<Record<IndexedField, ValueEntry[] | null>>;
}

export interface BlockIndexBody {
  v: number;
  /** End of the last complete line. */
  end: number;
  blocks: Block[];
}

export interface BlockIndex extends BlockIndexBody {
  file: string;
  size: number;
  mtimeMs: number;
  /** Any write, and putting mtime back, moves ctime: an index of other bytes is not used. */
  ctimeMs: number;
  head: string;
  tail: string;
}

interface BlockBuilder {
  o: number;
  n: number;
  t: [string, string] | undefined;
  xt: boolean;
  x: boolean;
  values: Map<IndexedField, Map<string, number[]> | null>;
}

function newBlock(o: number): BlockBuilder {
  return { o, n: 0, t: undefined, xt: false, x: false, values: new Map() };
}

function finishBlock(b: BlockBuilder, e: number): Block {
  const f: Block['f'] = {};
  for (const field of INDEXED_FIELDS) {
    const m = b.values.get(field);
    if (m === null) {
      f[field] = null;
      continue;
    }
    if (m === undefined) continue;
    const entries: ValueEntry[] = [];
    for (const [value, at] of m) {
      if (at.length * RARE_SHARE <= b.n) {
        let prev = 0;
        const deltas = at.map((a) => {
          const d = a - prev;
          prev = a;
          return d.toString(36);
        });
        entries.push([value, at.length, deltas.join(',')]);
      } else entries.push([value, at.length]);
    }
    f[field] = entries;
  }
  return { o: b.o, e, n: b.n, ...(b.t ? { t: b.t } : {}), ...(b.xt ? { xt: 1 as const } : {}), ...(b.x ? { x: 1 as const } : {}), f };
}

function addLine(b: BlockBuilder, text: string, rel: number): void {
  b.n++;
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    return; // a torn line: no query returns it
  }
  if (r === null || typeof r !== 'object' || Array.isArray(r)) {
    b.x = true;
    return;
  }
  const rec = r as Record<string, unknown>;
  const time = rec.time;
  if (typeof time === 'string') {
    if (!b.t) b.t = [time, time];
    else {
      if (time < b.t[0]) b.t[0] = time;
      if (time > b.t[1]) b.t[1] = time;
    }
  } else if (typeof time === 'object' && time !== null) b.xt = true;
  for (const field of INDEXED_FIELDS) {
    const v = rec[field];
    // The matcher compares these fields with === or tests them as strings: another type never matches.
    if (typeof v !== 'string') continue;
    let m = b.values.get(field);
    if (m === null) continue;
    if (m === undefined) b.values.set(field, (m = new Map()));
    const at = m.get(v);
    if (at) at.push(rel);
    else if (m.size >= MAX_DISTINCT || v.length > MAX_VALUE) b.values.set(field, null);
    else m.set(v, [rel]);
  }
}

/** Builds the index of [0, size) of a file from its lines (run in a worker: it parses every line). */
export async function summarizeFile(path: string, size: number, blockLines = BLOCK_LINES): Promise<BlockIndexBody> {
  const blocks: Block[] = [];
  let b = newBlock(0);
  const fh = await open(path, 'r');
  let end = 0;
  try {
    let pos = 0;
    let carry: Buffer = Buffer.alloc(0);
    while (pos < size) {
      const want = Math.min(8 << 20, size - pos);
      const chunk = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(chunk, 0, want, pos);
      if (bytesRead === 0) break;
      const buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      const base = pos - carry.length;
      let s = 0;
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, s)) {
        addLine(b, buf.toString('utf8', s, nl), base + s - b.o);
        s = nl + 1;
        if (b.n === blockLines) {
          blocks.push(finishBlock(b, base + s));
          b = newBlock(base + s);
        }
      }
      carry = buf.subarray(s);
      pos += bytesRead;
      end = pos - carry.length;
    }
  } finally {
    await fh.close();
  }
  if (b.n > 0) blocks.push(finishBlock(b, end));
  return { v: INDEX_VERSION, end, blocks };
}

/** The sidecar of a rotated file. Its name does not match the log's file names (files.ts). */
export function sidecarPath(logPath: string): string {
  return `${logPath}.idx`;
}

/** What ties an index to the bytes it describes. */
export function fileStamp(path: string): { size: number; mtimeMs: number; ctimeMs: number; head: string; tail: string } {
  const fd = openSync(path, 'r');
  try {
    const st = statSync(path);
    const edge = (at: number, n: number) => {
      const buf = Buffer.alloc(n);
      const got = readSync(fd, buf, 0, n, at);
      return createHash('sha256').update(buf.subarray(0, got)).digest('hex');
    };
    const n = Math.min(EDGE, st.size);
    return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, head: edge(0, n), tail: edge(st.size - n, n) };
  } finally {
    closeSync(fd);
  }
}

/**
 * The key that authenticates sidecars: `<state>/keys/audit-index.key`,
 * made on first use (0600) where the gateway keeps its checkpoint key.
 * Undefined when there is no keys folder (then no index is used).
 */
export function indexKey(auditDir: string): Buffer | undefined {
  const keys = join(dirname(auditDir), 'keys');
  const file = join(keys, 'audit-index.key');
  try {
    return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync(keys)) return undefined;
  }
  try {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    try {
      linkSync(tmp, file); // fails if another process made it first: theirs is used
    } catch {
      // fall through to read theirs
    } finally {
      unlinkSync(tmp);
    }
    return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  } catch {
    return undefined;
  }
}

function mac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

/** Writes the sidecar (temp file + rename: a reader sees the old one or the new one). Best effort: it is a cache. */
export function writeIndex(logPath: string, body: BlockIndexBody, key: Buffer, stamp = fileStamp(logPath)): BlockIndex | undefined {
  const index: BlockIndex = { file: basename(logPath), ...stamp, ...body };
  const text = JSON.stringify(index);
  const target = sidecarPath(logPath);
  const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, `${mac(key, text).toString('hex')}\n${text}`, { mode: 0o600 });
    renameSync(tmp, target);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was written
    }
  }
  return index;
}

/**
 * The file's index, if its sidecar is authentic, well-formed and still
 * describes the file; otherwise undefined (the caller rebuilds or scans).
 */
export function readIndex(logPath: string, key: Buffer): BlockIndex | undefined {
  let raw: string;
  try {
    raw = readFileSync(sidecarPath(logPath), 'utf8');
  } catch {
    return undefined;
  }
  const nl = raw.indexOf('\n');
  if (nl !== 64) return undefined;
  const text = raw.slice(nl + 1);
  const want = Buffer.from(raw.slice(0, nl), 'hex');
  if (want.length !== 32 || !timingSafeEqual(want, mac(key, text))) return undefined;
  let index: BlockIndex;
  try {
    index = JSON.parse(text) as BlockIndex;
  } catch {
    return undefined;
  }
  const stamp = fileStamp(logPath);
  if (index.v !== INDEX_VERSION || index.file !== basename(logPath) || index.size !== stamp.size || index.mtimeMs !== stamp.mtimeMs || index.ctimeMs !== stamp.ctimeMs || index.head !== stamp.head || index.tail !== stamp.tail) return undefined;
  return wellFormed(index) ? index : undefined;
}

/** Blocks tile [0, end) in order, end within the file: what the query relies on to read lines. */
function wellFormed(ix: BlockIndex): boolean {
  if (!Array.isArray(ix.blocks) || !Number.isSafeInteger(ix.end) || ix.end > ix.size) return false;
  let at = 0;
  for (const b of ix.blocks) {
    if (b === null || typeof b !== 'object' || b.o !== at || !Number.isSafeInteger(b.e) || b.e <= b.o || typeof b.f !== 'object' || b.f === null) return false;
    at = b.e;
  }
  return at === ix.end;
}

/** Whether a sidecar is valid for the file now (for tests and tools). */
export function hasValidIndex(logPath: string, key: Buffer): boolean {
  return readIndex(logPath, key) !== undefined;
}

/** Removes a rotated file's sidecar (retention deletes the file). */
export function removeSidecar(logPath: string): void {
  try {
    unlinkSync(sidecarPath(logPath));
  } catch {
    // none
  }
}

/** Line offsets in a value entry (absolute, in file order). */
export function entryOffsets(block: Block, entry: ValueEntry): number[] | undefined {
  if (entry[2] === undefined) return undefined;
  const out: number[] = [];
  let at = block.o;
  if (entry[2] === '') return out;
  for (const d of entry[2].split(',')) {
    at += parseInt(d, 36);
    out.push(at);
  }
  return out;
}
