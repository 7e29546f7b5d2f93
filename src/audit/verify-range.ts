/**
 * The per-line half of `verifyAudit`: parses and hashes every line of one
 * byte range of one file (what a worker thread does) and hands back compact
 * arrays, so the main thread can replay the chain checks in order (verify.ts)
 * without touching the lines again. Nothing here depends on other ranges.
 */
import type { KeyObject } from 'node:crypto';
import { open } from 'node:fs/promises';
import { verifyCheckpoint } from './checkpoint.js';
import { bodyDigestIs, checkLine, EDITED_MESSAGE } from './line-check.js';
import { scanRecordLine } from './line-scan.js';
import { CALL_INTENT_EVENT, type AuditRecord } from './types.js';

/** The read size of the verify scan; signature problems are reported after the chunk that holds their checkpoint. */
export const VERIFY_CHUNK = 8 << 20;
/** The read size (a divisor of VERIFY_CHUNK): small enough that a read is still in the CPU cache when its lines are checked. */
export const READ_BYTES = 1 << 20;

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
  /** Malformed, or edited in a way of its own (re-encoded): why. */
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

const CHECKPOINT_EVENT = 'audit.checkpoint';
const RETENTION_EVENT = 'audit.retention';

/**
 * `readBuf`: a buffer of at least READ_BYTES bytes to read into, kept by a
 * worker between jobs (nothing in the result points into it).
 */
export async function verifyRange(job: RangeJob, readBuf?: Buffer): Promise<RangeResult> {
  const { path, start, end } = job;
  // Room for lines of 256 bytes or more (records are longer), up to 64 Ki lines before growing: each
  // regrowth or final trim copies every array into fresh memory.
  let cap = Math.min(1 << 16, Math.max(1024, Math.ceil((end - start) / 256)));
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

  const onLine = (raw: Buffer, nlOffset: number) => {
    if (n === cap) {
      grow();
      hashBuf = Buffer.from(hash.buffer);
      prevBuf = Buffer.from(prev.buffer);
    }
    const i = n++;
    chunk[i] = Math.floor(nlOffset / VERIFY_CHUNK);
    // Fast path: a line in the writer's shape whose bytes hash to its hash. Checkpoints and retention
    // records (a few per million) and anything scanRecordLine or the hash does not accept take checkLine.
    const f = scanRecordLine(raw, hash, prev, i * 32);
    if (f !== undefined && f.event !== CHECKPOINT_EVENT && f.event !== RETENTION_EVENT) {
      if (bodyDigestIs(raw)) {
        kind[i] = LINE_OK;
        onRecord(i, f.seq);
        if (f.call >= 0) {
          const call = raw.toString('utf8', f.call, f.callEnd);
          if (f.event === CALL_INTENT_EVENT) {
            const text = (at: number, end: number) => (at < 0 ? undefined : raw.toString('utf8', at, end));
            after.intent({ seq: f.seq, call, time: raw.toString('utf8', f.time, f.timeEnd), agent: text(f.agent, f.agentEnd), tool: text(f.tool, f.toolEnd), index: i });
          } else if (f.event === 'tools/call') after.outcome(call);
        }
        return;
      }
    }
    const c = checkLine(raw.toString('utf8'), raw);
    if (!c.ok && c.reason === 'malformed') {
      kind[i] = LINE_MALFORMED;
      seq[i] = NaN;
      // scanRecordLine may have decoded part of it.
      hash.fill(0, i * 32, i * 32 + 32);
      prev.fill(0, i * 32, i * 32 + 32);
      extras.set(i, { message: c.message });
      return;
    }
    const r = c.record;
    kind[i] = c.ok ? LINE_OK : LINE_EDITED;
    hashBuf.write(r.hash, i * 32, 32, 'hex');
    prevBuf.write(r.prev, i * 32, 32, 'hex');
    onRecord(i, r.seq);
    extra(r, i);
    if (!c.ok && c.message !== EDITED_MESSAGE) extras.set(i, { ...extras.get(i), message: c.message });
  };

  /** Line i is a record: its hash and prev are in place. */
  const onRecord = (i: number, s: number) => {
    seq[i] = s;
    if (lastRecord >= 0 && hashBuf.compare(prevBuf, i * 32, i * 32 + 32, lastRecord * 32, lastRecord * 32 + 32) === 0) link[i] = 1;
    lastRecord = i;
    if (startIndex < 0 && s >= job.from) {
      startIndex = i;
      after = new CallsReducer();
    }
  };

  const extra = (r: AuditRecord, i: number) => {
    if (r.event === RETENTION_EVENT && typeof r.keptFromSeq === 'number' && typeof r.keptFromPrev === 'string') extras.set(i, { retention: { seq: r.keptFromSeq, prev: r.keptFromPrev } });
    if (r.event === CHECKPOINT_EVENT) {
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
  // One buffer for the whole range: fresh memory per read costs page faults.
  let buf = readBuf !== undefined && readBuf.length >= READ_BYTES ? readBuf : Buffer.allocUnsafeSlow(READ_BYTES);
  const fh = await open(path, 'r');
  try {
    let pos = start;
    /** Bytes at buf[0, carry): the cut-off line from the last read; the next read lands after it. */
    let carry = 0;
    while (pos < end) {
      const want = Math.min(READ_BYTES - (pos % READ_BYTES), end - pos);
      if (carry + want > buf.length) {
        // A line longer than a read.
        const bigger = Buffer.allocUnsafeSlow(carry + want);
        buf.copy(bigger, 0, 0, carry);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, carry, want, pos);
      if (bytesRead === 0) break;
      const filled = buf.subarray(0, carry + bytesRead);
      const base = pos - carry;
      let s = 0;
      for (let nl = filled.indexOf(10); nl >= 0; nl = filled.indexOf(10, s)) {
        onLine(filled.subarray(s, nl), base + nl);
        s = nl + 1;
      }
      filled.copyWithin(0, s);
      carry = filled.length - s;
      pos += bytesRead;
    }
    if (carry > 0 && job.last) partial = { offset: pos - carry, length: carry };
  } finally {
    await fh.close();
  }
  await Promise.all(sigs);
  if (startIndex < 0) {
    startIndex = n;
    after = new CallsReducer();
  }
  // Views, not copies (a worker transfers the whole buffers).
  const slice = <T extends Uint8Array | Float64Array | Uint32Array>(a: T, per = 1): T => a.subarray(0, n * per) as T;
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
