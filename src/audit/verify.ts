import type { KeyObject } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { unfinishedStatus, type CallStatus } from './calls.js';
import { CHECKPOINT_TYP, type CheckpointPayload } from './checkpoint.js';
import { listAuditFiles, type AuditFile } from './files.js';
import { EDITED_MESSAGE } from './line-check.js';
import { ScanPool } from './pool.js';
import { LINE_EDITED, LINE_MALFORMED, LINE_OK, verifyRange, type CallsDelta, type LineExtra, type RangeJob, type RangeResult } from './verify-range.js';

export type ProblemKind =
  /** A record's content does not match its hash. */
  | 'edited'
  /** A line that is not a record (not JSON, fields missing). */
  | 'malformed'
  /** Seqs are missing: records were removed. */
  | 'gap'
  /** A record appears before one with a lower seq. */
  | 'reordered'
  | 'duplicate'
  /** A record's `prev` is not the previous record's hash (removed and renumbered, or inserted). */
  | 'chain'
  /** The last line is cut off, or the log ends before a record the verifier knew (anchor). */
  | 'truncated'
  /** A checkpoint's JWS does not verify (forged, or signed by another key). */
  | 'signature'
  /** A checkpoint's signed hash differs from the record it names: the chain was rewritten. */
  | 'rewritten'
  /** The log starts after seq 1 and no `audit.retention` record accounts for it. */
  | 'start'
  /** A rotated file's name does not match its first record. */
  | 'file';

export interface VerifyProblem {
  kind: ProblemKind;
  file: string;
  /** 1-based line in `file`. */
  line: number;
  seq?: number;
  message: string;
}

export interface VerifyOptions {
  /** Start checking at this seq (earlier records are read but not checked). */
  from?: number;
  /** Checkpoint public key; without it checkpoints are not checked (reported as unverified). */
  publicKey?: KeyObject;
  /** A record the verifier saw earlier (e.g. a checkpoint's seq and hash): the log must still hold it. */
  anchor?: { seq: number; hash: string };
  /** Stop after this many problems (default 20). */
  maxProblems?: number;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /**
   * Worker threads that parse and hash. Default: one per core, except for
   * logs under PARALLEL_MIN_BYTES (verified in this thread: no start-up
   * cost); `1`: this thread only; more: that many workers, whatever the size.
   */
  threads?: number;
  /** Bytes per worker job, about (default 16 MiB; files are cut on line boundaries). */
  rangeBytes?: number;
}

export interface VerifyReport {
  ok: boolean;
  files: { name: string; firstSeq: number | undefined; bytes: number }[];
  records: number;
  firstSeq: number | undefined;
  lastSeq: number | undefined;
  lastHash: string | undefined;
  checkpoints: number;
  /** Whether checkpoint signatures were checked (a public key was available). */
  signaturesChecked: boolean;
  lastCheckpoint: { seq: number; hash: string; time: string; atSeq: number; jws: string } | undefined;
  /** Records after the last checkpoint: these could be cut off without a trace until the next checkpoint. */
  unsealed: number;
  /** Where the chain legitimately starts after retention, if it does not start at seq 1. */
  retainedFrom: { seq: number; prev: string } | undefined;
  problems: VerifyProblem[];
  /**
   * Forwarded calls with an intent record and no outcome (at most 1000 listed;
   * `unfinishedCount` has them all): `pending` while the gateway that wrote
   * the intent runs, else `unknown (gateway stopped)`: the upstream may have acted.
   * Not a problem of the chain: `ok` does not depend on them.
   */
  unfinished: UnfinishedCall[];
  unfinishedCount: number;
}

export interface UnfinishedCall {
  seq: number;
  call: string;
  time: string;
  agent: string | undefined;
  tool: string | undefined;
  file: string;
  line: number;
  status: CallStatus;
}

const MAX_UNFINISHED = 1000;

const RING = 1 << 18;
/** Below this many bytes, starting workers costs more than it saves. */
export const PARALLEL_MIN_BYTES = 4 << 20;
/** Files are cut into ranges of about this size (on line boundaries), so the workers finish together. */
const RANGE_BYTES = 16 << 20;

interface PlannedRange {
  file: number;
  job: RangeJob;
}

/** Cuts each file into ranges of about RANGE_BYTES, each ending right after a newline (or at the file's end). */
function planRanges(files: AuditFile[], from: number, publicKey: KeyObject | undefined, rangeBytes: number): PlannedRange[] {
  const out: PlannedRange[] = [];
  for (const [fi, f] of files.entries()) {
    if (f.size === 0) continue;
    const cuts = [0];
    const parts = Math.max(1, Math.round(f.size / rangeBytes));
    if (parts > 1) {
      const fd = openSync(f.path, 'r');
      try {
        const buf = Buffer.allocUnsafe(64 * 1024);
        for (let j = 1; j < parts; j++) {
          const target = Math.floor((f.size * j) / parts);
          if (target <= (cuts.at(-1) as number)) continue;
          // The next line start at or after target (a line longer than the window leaves no cut here).
          const n = readSync(fd, buf, 0, Math.min(buf.length, f.size - target), target - 1);
          const nl = buf.subarray(0, n).indexOf(10);
          if (nl >= 0 && target + nl < f.size) cuts.push(target + nl);
        }
      } finally {
        closeSync(fd);
      }
    }
    cuts.push(f.size);
    for (let k = 0; k + 1 < cuts.length; k++) {
      const start = cuts[k] as number;
      const end = cuts[k + 1] as number;
      if (end > start) out.push({ file: fi, job: { path: f.path, start, end, last: end === f.size, from, publicKey } });
    }
  }
  return out;
}

function hex(a: Uint8Array, i: number): string {
  return Buffer.from(a.buffer, a.byteOffset + i * 32, 32).toString('hex');
}

function eq32(a: Uint8Array, ai: number, b: Uint8Array, bi: number): boolean {
  const x = ai * 32;
  const y = bi * 32;
  for (let k = 0; k < 32; k++) if (a[x + k] !== b[y + k]) return false;
  return true;
}

/**
 * Walks every file in chain order, recomputes each record's hash, checks seq
 * continuity, `prev` links and every checkpoint (signature, and that the
 * record it names still has the signed hash). Problems come in file order;
 * the first is the first bad record.
 *
 * The per-line work (JSON, SHA-256, Ed25519) runs in worker threads over
 * byte ranges of the files (verify-range.ts); this thread replays the chain
 * checks over their compact results in file order, so a range boundary
 * changes nothing in the report.
 */
export async function verifyAudit(dir: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const files = listAuditFiles(dir);
  const total = files.reduce((n, f) => n + f.size, 0);
  const maxProblems = opts.maxProblems ?? 20;
  const from = opts.from ?? 1;
  const threads = Math.max(1, Math.floor(opts.threads ?? ScanPool.cores()));
  const parallel = threads > 1 && (opts.threads !== undefined || total >= PARALLEL_MIN_BYTES);
  const rangeBytes = opts.rangeBytes ?? Math.min(RANGE_BYTES, Math.max(1 << 20, Math.ceil(total / (threads * 4))));
  const ranges = planRanges(files, from, opts.publicKey, parallel ? Math.max(1, rangeBytes) : Number.POSITIVE_INFINITY);
  const pool = parallel ? new ScanPool(Math.min(threads, ranges.length)) : undefined;
  const started = pool ? ranges.map((r) => pool.run({ kind: 'verify', job: r.job })) : [];
  // Answers are awaited in file order; a later failure must not go unhandled meanwhile.
  for (const p of started) p.catch(() => undefined);
  const result = (k: number): Promise<RangeResult> => (pool ? (started[k] as Promise<RangeResult>) : verifyRange((ranges[k] as PlannedRange).job));
  try {
    return await replay(dir, files, ranges, result, { ...opts, from, maxProblems, total });
  } finally {
    await pool?.close();
  }
}

/** The chain checks, in file order, over the ranges' results. */
async function replay(
  dir: string,
  files: AuditFile[],
  ranges: PlannedRange[],
  result: (k: number) => Promise<RangeResult>,
  opts: VerifyOptions & { from: number; maxProblems: number; total: number },
): Promise<VerifyReport> {
  const { from, maxProblems, total } = opts;
  const report: VerifyReport = {
    ok: false,
    files: files.map((f) => ({ name: f.name, firstSeq: f.firstSeq, bytes: f.size })),
    records: 0,
    firstSeq: undefined,
    lastSeq: undefined,
    lastHash: undefined,
    checkpoints: 0,
    signaturesChecked: opts.publicKey !== undefined,
    lastCheckpoint: undefined,
    unsealed: 0,
    retainedFrom: undefined,
    problems: [],
    unfinished: [],
    unfinishedCount: 0,
  };
  const openCalls = new Map<string, Omit<UnfinishedCall, 'status'>>();
  const problem = (p: VerifyProblem) => {
    if (report.problems.length < maxProblems) report.problems.push(p);
  };

  // Recent hashes by seq, for checkpoints (which name a record at or shortly before them).
  const ringSeq = new Float64Array(RING).fill(-1);
  const ringHash = new Uint8Array(RING * 32);
  let expectSeq: number | undefined;
  /** The record whose hash the next record's prev must be, and the last record. */
  let prevAt: { r: RangeResult; i: number } | undefined;
  let lastAt: { r: RangeResult; i: number } | undefined;
  let start: { seq: number; prev: string; file: string; line: number } | undefined;
  let pendingGap: { expect: number; got: number; file: string; line: number } | undefined;
  const retention: { seq: number; prev: string }[] = [];
  /** Signature results of checkpoints seen in the current read chunk (reported after it, as the single-thread scan did). */
  let sigChecks: { file: string; line: number; seq: number; sig: NonNullable<NonNullable<LineExtra['checkpoint']>['sig']> | undefined }[] = [];
  const flushSigs = () => {
    for (const c of sigChecks) if (c.sig && !c.sig.ok) problem({ kind: 'signature', file: c.file, line: c.line, seq: c.seq, message: c.sig.message });
    sigChecks = [];
  };
  let anchorSeen = false;

  const applyCalls = (d: CallsDelta, file: AuditFile, lineBase: number) => {
    for (const id of d.deletes) openCalls.delete(id);
    for (const c of d.opens) openCalls.set(c.call, { seq: c.seq, call: c.call, time: c.time, agent: c.agent, tool: c.tool, file: file.name, line: lineBase + c.index + 1 });
  };

  const onRecord = (cur: RangeResult, i: number, prevRecord: number, file: AuditFile, line: number) => {
    const seq = cur.seq[i] as number;
    report.records++;
    if (pendingGap) {
      const g = pendingGap;
      pendingGap = undefined;
      if (seq === g.expect) problem({ kind: 'reordered', file: g.file, line: g.line, seq: g.got, message: `record seq ${g.got} comes before seq ${g.expect} (records were reordered)` });
      else problem({ kind: 'gap', file: g.file, line: g.line, seq: g.got, message: `records ${g.expect}..${g.got - 1} are missing before seq ${g.got} (removed)` });
    }
    if (expectSeq === undefined) {
      report.firstSeq = seq;
      if (seq === 1 && from <= 1) {
        if (!eq32(cur.prev, i, ZERO_BYTES, 0)) problem({ kind: 'chain', file: file.name, line, seq, message: 'the first record must have prev = 64 zeros' });
      } else if (from <= seq) {
        start = { seq, prev: hex(cur.prev, i), file: file.name, line };
      }
    } else if (seq === expectSeq) {
      const p = prevAt as { r: RangeResult; i: number };
      // The worker compared prev with the previous record line of its range; anything else is compared here.
      const linked = p.r === cur && p.i === prevRecord ? cur.link[i] === 1 : eq32(cur.prev, i, p.r.hash, p.i);
      if (!linked) problem({ kind: 'chain', file: file.name, line, seq, message: `prev does not match the hash of seq ${seq - 1} (a record was removed, replaced or inserted)` });
    } else if (seq > expectSeq) {
      pendingGap = { expect: expectSeq, got: seq, file: file.name, line };
    } else {
      const seen = ringSeq[seq % RING] === seq && eq32(ringHash, seq % RING, cur.hash, i);
      problem(
        seen
          ? { kind: 'duplicate', file: file.name, line, seq, message: `record seq ${seq} appears twice` }
          : { kind: 'reordered', file: file.name, line, seq, message: `record seq ${seq} comes after seq ${expectSeq - 1} (records were reordered)` },
      );
    }
    if (seq > (expectSeq ?? 0) - 1) {
      expectSeq = seq + 1;
      prevAt = { r: cur, i };
    }
    ringSeq[seq % RING] = seq;
    ringHash.set(cur.hash.subarray(i * 32, i * 32 + 32), (seq % RING) * 32);
    report.lastSeq = seq;
    lastAt = { r: cur, i };
    if (opts.anchor && seq === opts.anchor.seq) {
      anchorSeen = true;
      if (hex(cur.hash, i) !== opts.anchor.hash) problem({ kind: 'rewritten', file: file.name, line, seq, message: `seq ${seq} no longer has the anchored hash ${opts.anchor.hash.slice(0, 12)}…` });
    }
    const x = cur.extras.get(i);
    if (x?.retention) retention.push(x.retention);
    if (x?.checkpoint) onCheckpoint(seq, x.checkpoint, file, line);
  };

  const onCheckpoint = (seq: number, cp: NonNullable<LineExtra['checkpoint']>, file: AuditFile, line: number) => {
    report.checkpoints++;
    const claimed = cp.claimed as Partial<CheckpointPayload> | undefined;
    const jws = cp.jws;
    let payload: Partial<CheckpointPayload> = {};
    try {
      const [h, p] = jws.split('.');
      const header = JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')) as { typ?: string };
      payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')) as Partial<CheckpointPayload>;
      if (header.typ !== CHECKPOINT_TYP) throw new Error('typ');
    } catch {
      problem({ kind: 'signature', file: file.name, line, seq, message: 'checkpoint JWS is malformed' });
      return;
    }
    if (!claimed || claimed.seq !== payload.seq || claimed.hash !== payload.hash || claimed.time !== payload.time) {
      problem({ kind: 'signature', file: file.name, line, seq, message: 'checkpoint fields differ from what its JWS signs' });
      return;
    }
    const s = payload.seq ?? NaN;
    if (!(s < seq)) {
      problem({ kind: 'signature', file: file.name, line, seq, message: `checkpoint names seq ${s}, which is not before it` });
      return;
    }
    const known = ringSeq[s % RING] === s ? hex(ringHash, s % RING) : undefined;
    if (known === undefined) {
      if (s >= from && report.firstSeq !== undefined && s >= report.firstSeq) problem({ kind: 'rewritten', file: file.name, line, seq, message: `checkpoint names seq ${s}, which is not in the log` });
    } else if (known !== payload.hash) {
      problem({ kind: 'rewritten', file: file.name, line, seq, message: `checkpoint signs hash ${String(payload.hash).slice(0, 12)}… for seq ${s}, but the log has ${known.slice(0, 12)}… (the chain was rewritten)` });
    }
    if (opts.publicKey) sigChecks.push({ file: file.name, line, seq, sig: cp.sig });
    report.lastCheckpoint = { seq: s, hash: String(payload.hash), time: String(payload.time), atSeq: seq, jws };
  };

  let done = 0;
  let k = 0;
  for (const [fi, file] of files.entries()) {
    if (file.size === 0) continue;
    const isLast = fi === files.length - 1;
    let line = 0;
    let chunk = 0;
    let partial: RangeResult['partial'];
    for (; k < ranges.length && (ranges[k] as PlannedRange).file === fi; k++) {
      const cur = await result(k);
      const startedBefore = expectSeq !== undefined;
      const lineBase = line;
      let prevRecord = -1;
      for (let i = 0; i < cur.lines; i++) {
        if ((cur.chunk[i] as number) > chunk) {
          flushSigs();
          chunk = cur.chunk[i] as number;
        }
        line++;
        const kind = cur.kind[i];
        const seq = cur.seq[i] as number;
        if (line === 1 && kind === LINE_OK && !file.current && seq !== file.firstSeq) {
          problem({ kind: 'file', file: file.name, line, seq, message: `file is named for seq ${file.firstSeq} but starts with seq ${seq}` });
        }
        if (kind === LINE_MALFORMED) {
          problem({ kind: 'malformed', file: file.name, line, message: cur.extras.get(i)?.message ?? '' });
          continue;
        }
        const before = prevRecord;
        prevRecord = i;
        if (seq < from && expectSeq === undefined) continue;
        if (kind === LINE_EDITED) problem({ kind: 'edited', file: file.name, line, seq, message: `record seq ${seq}: ${cur.extras.get(i)?.message ?? EDITED_MESSAGE}` });
        // Keep walking with an edited record as it claims to be, so one edit is one problem.
        onRecord(cur, i, before, file, line);
      }
      if (startedBefore) applyCalls(cur.callsBefore, file, lineBase);
      applyCalls(cur.callsFrom, file, lineBase);
      if (cur.partial) partial = cur.partial;
      opts.onProgress?.(done + (ranges[k] as PlannedRange).job.end, total);
    }
    flushSigs();
    done += file.size;
    if (partial) {
      problem({
        kind: 'truncated',
        file: file.name,
        line: line + 1,
        message: `${isLast ? 'the last line' : 'a line at the end of a rotated file'} is cut off (${partial.length} bytes at offset ${partial.offset}, no newline): a write was interrupted or the file was truncated`,
      });
    }
  }
  if (pendingGap) {
    const g = pendingGap;
    problem({ kind: 'gap', file: g.file, line: g.line, seq: g.got, message: `records ${g.expect}..${g.got - 1} are missing before seq ${g.got} (removed)` });
  }
  if (start) {
    const s = start;
    const ok = retention.some((r) => r.seq === s.seq && r.prev === s.prev) || from > 1;
    if (ok) report.retainedFrom = { seq: s.seq, prev: s.prev };
    else {
      problem({
        kind: 'start',
        file: s.file,
        line: s.line,
        seq: s.seq,
        message: `the log starts at seq ${s.seq}, not 1, and no audit.retention record accounts for it (earlier records were removed)`,
      });
    }
  }
  if (lastAt) report.lastHash = hex(lastAt.r.hash, lastAt.i);
  if (opts.anchor && !anchorSeen && (report.lastSeq ?? 0) < opts.anchor.seq) {
    problem({ kind: 'truncated', file: files.at(-1)?.name ?? '', line: 0, message: `the log ends at seq ${report.lastSeq ?? 0}, before the anchored seq ${opts.anchor.seq} (records were cut off)` });
  }
  report.unsealed = report.lastSeq === undefined ? 0 : report.lastSeq - Math.max(report.lastCheckpoint?.atSeq ?? 0, (report.firstSeq ?? 1) - 1);
  report.problems.sort((a, b) => fileIndex(files, a.file) - fileIndex(files, b.file) || a.line - b.line);
  if (openCalls.size > 0) {
    const status = await unfinishedStatus(dir);
    report.unfinishedCount = openCalls.size;
    for (const c of openCalls.values()) {
      if (report.unfinished.length >= MAX_UNFINISHED) break;
      report.unfinished.push({ ...c, status: status(c.seq) });
    }
  }
  report.ok = report.problems.length === 0;
  return report;
}

const ZERO_BYTES = new Uint8Array(32);

function fileIndex(files: AuditFile[], name: string): number {
  const i = files.findIndex((f) => f.name === name);
  return i < 0 ? files.length : i;
}
