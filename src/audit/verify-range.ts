/**
 * The per-line half of `verifyAudit`: parses and hashes every line of one
 * byte range of one file (what a worker thread does) and hands back compact
 * arrays, so the main thread can replay the chain checks in order (verify.ts)
 * without touching the lines again. Nothing here depends on other ranges.
 */
import type { KeyObject } from 'node:crypto';
import { open } from 'node:fs/promises';
import { verifyCheckpoint } from './checkpoint.js';
import { checkLine } from './line-check.js';
import { CALL_INTENT_EVENT, type AuditRecord } from './types.js';

/** The read size of the verify scan; signature problems are reported after the chunk that holds their checkpoint. */
export const VERIFY_CHUNK = 8 << 20;

export const LINE_OK = 0;
export const LINE_EDITED = 1;
export const LINE_MALFORMED = 2;

export interface RangeJob {
  path: string;
  /** Byte range [start, end); `start` is a line start, `end` a line end (or the file's end). */
  start: number;
  end: number;
  /** Whether `end` is the file's end (a partial last line is then reported). */
  last: boolean;
  /** Records below this seq before the first one at or above it are not replayed (verify --from). */
  from: number;
  publicKey?: KeyObject | undefined;
}

/** What one line holds beyond its seq and hashes (only for the lines that need more). */
export interface LineExtra {
  /** Malformed: why. */
  message?: string;
  checkpoint?: { claimed: unknown; jws: string; sig?: { ok: true } | { ok: false; message: string } };
  retention?: { seq: number; prev: string };
}

export interface OpenCall {
  seq: number;
  call: string;
  time: string;
  agent: string | undefined;
  tool: string | undefined;
  /** Line index in the range. */
  index: number;
}

/**
 * The effect of a stretch of records on the set of open calls (intent, no
 * outcome yet): ids that had an outcome (delete those first), then the
 * intents still open, in the order a Map would hold them.
 */
export interface CallsDelta {
  deletes: string[];
  opens: OpenCall[];
}

export interface RangeResult {
  lines: number;
  /** Per line: LINE_OK, LINE_EDITED or LINE_MALFORMED. */
  kind: Uint8Array;
  /** Per line: the record's seq (NaN when malformed). */
  seq: Float64Array;
  /** Per line: 32 bytes of `hash` and of `prev`. */
  hash: Uint8Array;
  prev: Uint8Array;
  /** Per line: 1 when its prev is the hash of the previous record line in this range. */
  link: Uint8Array;
  /** Per line: VERIFY_CHUNK index of its newline in the file. */
  chunk: Uint32Array;
  extras: Map<number, LineExtra>;
  /** First line whose record has seq >= from (lines before it are skipped unless the replay already started), or `lines`. */
  startIndex: number;
  /** Calls of the lines before startIndex, and from it on. */
  callsBefore: CallsDelta;
  callsFrom: CallsDelta;
  partial?: { offset: number; length: number };
}

class CallsReducer {
  readonly deletes: string[] = [];
  readonly #open = new Map<string, OpenCall>();
  intent(c: OpenCall): void {
    this.#open.set(c.call, c);
  }
  outcome(id: string): void {
    this.#open.delete(id);
    this.deletes.push(id);
  }
  done(): CallsDelta {
    return { deletes: this.deletes, opens: [...this.#open.values()] };
  }
}

/** Transferable buffers of a result (posted without copying). */
export function transferList(r: RangeResult): ArrayBuffer[] {
  return [r.kind, r.seq, r.hash, r.prev, r.link, r.chunk].map((a) => a.buffer as ArrayBuffer);
}

export async function verifyRange(job: RangeJob): Promise<RangeResult> {
  const { path, start, end } = job;
  let cap = 1024;
  let kind = new Uint8Array(cap);
  let seq = new Float64Array(cap);
  let hash = new Uint8Array(cap * 32);
  let prev = new Uint8Array(cap * 32);
  let link = new Uint8Array(cap);
  let chunk = new Uint32Array(cap);
  const grow = () => {
    cap *= 2;
    const g = <T extends Uint8Array | Float64Array | Uint32Array>(a: T, per = 1): T => {
      const b = new (a.constructor as new (n: number) => T)(cap * per);
      b.set(a);
      return b;
    };
    kind = g(kind);
    seq = g(seq);
    hash = g(hash, 32);
    prev = g(prev, 32);
    link = g(link);
    chunk = g(chunk);
  };
  let hashBuf = Buffer.from(hash.buffer);
  let prevBuf = Buffer.from(prev.buffer);
  const extras = new Map<number, LineExtra>();
  const sigs: Promise<void>[] = [];
  const before = new CallsReducer();
  let after = before;
  let startIndex = -1;
  let n = 0;
  let lastRecord = -1;

  const onLine = (text: string, raw: Buffer, nlOffset: number) => {
    if (n === cap) {
      grow();
      hashBuf = Buffer.from(hash.buffer);
      prevBuf = Buffer.from(prev.buffer);
    }
    const i = n++;
    chunk[i] = Math.floor(nlOffset / VERIFY_CHUNK);
    const c = checkLine(text, raw);
    if (!c.ok && c.reason === 'malformed') {
      kind[i] = LINE_MALFORMED;
      seq[i] = NaN;
      extras.set(i, { message: c.message });
      return;
    }
    const r = c.record;
    kind[i] = c.ok ? LINE_OK : LINE_EDITED;
    seq[i] = r.seq;
    hashBuf.write(r.hash, i * 32, 32, 'hex');
    prevBuf.write(r.prev, i * 32, 32, 'hex');
    if (lastRecord >= 0 && hashBuf.compare(prevBuf, i * 32, i * 32 + 32, lastRecord * 32, lastRecord * 32 + 32) === 0) link[i] = 1;
    lastRecord = i;
    if (startIndex < 0 && r.seq >= job.from) {
      startIndex = i;
      after = new CallsReducer();
    }
    extra(r, i);
  };

  const extra = (r: AuditRecord, i: number) => {
    if (r.event === 'audit.retention' && typeof r.keptFromSeq === 'number' && typeof r.keptFromPrev === 'string') extras.set(i, { retention: { seq: r.keptFromSeq, prev: r.keptFromPrev } });
    if (r.event === 'audit.checkpoint') {
      const jws = typeof r.jws === 'string' ? r.jws : '';
      const cp: NonNullable<LineExtra['checkpoint']> = { claimed: r.checkpoint, jws };
      extras.set(i, { checkpoint: cp });
      if (job.publicKey) {
        sigs.push(
          verifyCheckpoint(jws, job.publicKey).then((v) => {
            cp.sig = v.ok ? { ok: true } : { ok: false, message: v.message };
          }),
        );
      }
    }
    if (typeof r.call === 'string') {
      if (r.event === CALL_INTENT_EVENT) {
        after.intent({ seq: r.seq, call: r.call, time: r.time, agent: typeof r.agent === 'string' ? r.agent : undefined, tool: typeof r.tool === 'string' ? r.tool : undefined, index: i });
      } else if (r.event === 'tools/call') after.outcome(r.call);
    }
  };

  let partial: RangeResult['partial'];
  const fh = await open(path, 'r');
  try {
    let pos = start;
    let carry: Buffer = Buffer.alloc(0);
    // Reads follow the file's VERIFY_CHUNK grid, so a line's chunk is where the single-file scan would see it.
    while (pos < end) {
      const want = Math.min(VERIFY_CHUNK - (pos % VERIFY_CHUNK), end - pos);
      // The cut-off line from the last chunk goes first; the read lands after it (no copy of the chunk).
      const buf0 = Buffer.allocUnsafe(carry.length + want);
      carry.copy(buf0, 0);
      const { bytesRead } = await fh.read(buf0, carry.length, want, pos);
      if (bytesRead === 0) break;
      const buf = buf0.subarray(0, carry.length + bytesRead);
      const base = pos - carry.length;
      let s = 0;
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, s)) {
        onLine(buf.toString('utf8', s, nl), buf.subarray(s, nl), base + nl);
        s = nl + 1;
      }
      carry = buf.subarray(s);
      pos += bytesRead;
    }
    if (carry.length > 0 && job.last) partial = { offset: pos - carry.length, length: carry.length };
  } finally {
    await fh.close();
  }
  await Promise.all(sigs);
  if (startIndex < 0) {
    startIndex = n;
    after = new CallsReducer();
  }
  const slice = <T extends Uint8Array | Float64Array | Uint32Array>(a: T, per = 1): T => a.slice(0, n * per) as T;
  return {
    lines: n,
    kind: slice(kind),
    seq: slice(seq),
    hash: slice(hash, 32),
    prev: slice(prev, 32),
    link: slice(link),
    chunk: slice(chunk),
    extras,
    startIndex,
    callsBefore: before.done(),
    callsFrom: after.done(),
    ...(partial ? { partial } : {}),
  };
}
