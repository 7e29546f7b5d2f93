import type { KeyObject } from 'node:crypto';
import { unfinishedStatus, type CallStatus } from './calls.js';
import { CHECKPOINT_TYP, verifyCheckpoint, type CheckpointPayload } from './checkpoint.js';
import { listAuditFiles, type AuditFile } from './files.js';
import { scanLines } from './lines.js';
import { checkLine, ZERO_HASH } from './record.js';
import { CALL_INTENT_EVENT, type AuditRecord } from './types.js';

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

/**
 * Walks every file in chain order, recomputes each record's hash, checks seq
 * continuity, `prev` links and every checkpoint (signature, and that the
 * record it names still has the signed hash). Problems come in file order;
 * the first is the first bad record.
 */
export async function verifyAudit(dir: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const files = listAuditFiles(dir);
  const total = files.reduce((n, f) => n + f.size, 0);
  const maxProblems = opts.maxProblems ?? 20;
  const from = opts.from ?? 1;
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
  const ringHash: string[] = new Array<string>(RING);
  let expectSeq: number | undefined;
  let prevHash: string | undefined;
  let start: { seq: number; prev: string; file: string; line: number } | undefined;
  let pendingGap: { expect: number; got: number; file: string; line: number } | undefined;
  const retention: { seq: number; prev: string }[] = [];
  const sigChecks: Promise<void>[] = [];
  let anchorSeen = false;
  let done = 0;

  const onRecord = (r: AuditRecord, file: AuditFile, line: number) => {
    report.records++;
    if (pendingGap) {
      const g = pendingGap;
      pendingGap = undefined;
      if (r.seq === g.expect) problem({ kind: 'reordered', file: g.file, line: g.line, seq: g.got, message: `record seq ${g.got} comes before seq ${g.expect} (records were reordered)` });
      else problem({ kind: 'gap', file: g.file, line: g.line, seq: g.got, message: `records ${g.expect}..${g.got - 1} are missing before seq ${g.got} (removed)` });
    }
    if (expectSeq === undefined) {
      report.firstSeq = r.seq;
      if (r.seq === 1 && from <= 1) {
        if (r.prev !== ZERO_HASH) problem({ kind: 'chain', file: file.name, line, seq: r.seq, message: 'the first record must have prev = 64 zeros' });
      } else if (from <= r.seq) {
        start = { seq: r.seq, prev: r.prev, file: file.name, line };
      }
    } else if (r.seq === expectSeq) {
      if (r.prev !== prevHash) problem({ kind: 'chain', file: file.name, line, seq: r.seq, message: `prev does not match the hash of seq ${r.seq - 1} (a record was removed, replaced or inserted)` });
    } else if (r.seq > expectSeq) {
      pendingGap = { expect: expectSeq, got: r.seq, file: file.name, line };
    } else {
      const seen = ringSeq[r.seq % RING] === r.seq && ringHash[r.seq % RING] === r.hash;
      problem(
        seen
          ? { kind: 'duplicate', file: file.name, line, seq: r.seq, message: `record seq ${r.seq} appears twice` }
          : { kind: 'reordered', file: file.name, line, seq: r.seq, message: `record seq ${r.seq} comes after seq ${expectSeq - 1} (records were reordered)` },
      );
    }
    if (r.seq > (expectSeq ?? 0) - 1) {
      expectSeq = r.seq + 1;
      prevHash = r.hash;
    }
    ringSeq[r.seq % RING] = r.seq;
    ringHash[r.seq % RING] = r.hash;
    report.lastSeq = r.seq;
    report.lastHash = r.hash;
    if (opts.anchor && r.seq === opts.anchor.seq) {
      anchorSeen = true;
      if (r.hash !== opts.anchor.hash) problem({ kind: 'rewritten', file: file.name, line, seq: r.seq, message: `seq ${r.seq} no longer has the anchored hash ${opts.anchor.hash.slice(0, 12)}…` });
    }
    if (r.event === 'audit.retention' && typeof r.keptFromSeq === 'number' && typeof r.keptFromPrev === 'string') retention.push({ seq: r.keptFromSeq, prev: r.keptFromPrev });
    if (r.event === 'audit.checkpoint') onCheckpoint(r, file, line);
    if (typeof r.call === 'string') {
      if (r.event === CALL_INTENT_EVENT) {
        openCalls.set(r.call, { seq: r.seq, call: r.call, time: r.time, agent: typeof r.agent === 'string' ? r.agent : undefined, tool: typeof r.tool === 'string' ? r.tool : undefined, file: file.name, line });
      } else if (r.event === 'tools/call') openCalls.delete(r.call);
    }
  };

  const onCheckpoint = (r: AuditRecord, file: AuditFile, line: number) => {
    report.checkpoints++;
    const claimed = r.checkpoint as Partial<CheckpointPayload> | undefined;
    const jws = typeof r.jws === 'string' ? r.jws : '';
    let payload: Partial<CheckpointPayload> = {};
    try {
      const [h, p] = jws.split('.');
      const header = JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')) as { typ?: string };
      payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')) as Partial<CheckpointPayload>;
      if (header.typ !== CHECKPOINT_TYP) throw new Error('typ');
    } catch {
      problem({ kind: 'signature', file: file.name, line, seq: r.seq, message: 'checkpoint JWS is malformed' });
      return;
    }
    if (!claimed || claimed.seq !== payload.seq || claimed.hash !== payload.hash || claimed.time !== payload.time) {
      problem({ kind: 'signature', file: file.name, line, seq: r.seq, message: 'checkpoint fields differ from what its JWS signs' });
      return;
    }
    const s = payload.seq ?? NaN;
    if (!(s < r.seq)) {
      problem({ kind: 'signature', file: file.name, line, seq: r.seq, message: `checkpoint names seq ${s}, which is not before it` });
      return;
    }
    const known = ringSeq[s % RING] === s ? ringHash[s % RING] : undefined;
    if (known === undefined) {
      if (s >= from && report.firstSeq !== undefined && s >= report.firstSeq) problem({ kind: 'rewritten', file: file.name, line, seq: r.seq, message: `checkpoint names seq ${s}, which is not in the log` });
    } else if (known !== payload.hash) {
      problem({ kind: 'rewritten', file: file.name, line, seq: r.seq, message: `checkpoint signs hash ${String(payload.hash).slice(0, 12)}… for seq ${s}, but the log has ${known.slice(0, 12)}… (the chain was rewritten)` });
    }
    if (opts.publicKey) {
      const key = opts.publicKey;
      sigChecks.push(
        verifyCheckpoint(jws, key).then((v) => {
          if (!v.ok) problem({ kind: 'signature', file: file.name, line, seq: r.seq, message: v.message });
        }),
      );
    }
    report.lastCheckpoint = { seq: s, hash: String(payload.hash), time: String(payload.time), atSeq: r.seq, jws };
  };

  for (const [fi, file] of files.entries()) {
    if (file.size === 0) continue;
    let line = 0;
    let first = true;
    const isLast = fi === files.length - 1;
    const res = await scanLines(
      file.path,
      0,
      file.size,
      (buf, s, e) => {
        line++;
        const c = checkLine(buf.toString('utf8', s, e), buf.subarray(s, e));
        if (first && c.ok && !file.current && c.record.seq !== file.firstSeq) {
          problem({ kind: 'file', file: file.name, line, seq: c.record.seq, message: `file is named for seq ${file.firstSeq} but starts with seq ${c.record.seq}` });
        }
        first = false;
        if (c.ok) {
          if (c.record.seq < from && expectSeq === undefined) return;
          onRecord(c.record, file, line);
          return;
        }
        if (c.reason === 'edited') {
          if (c.record.seq < from && expectSeq === undefined) return;
          problem({ kind: 'edited', file: file.name, line, seq: c.record.seq, message: `record seq ${c.record.seq}: ${c.message}` });
          // Keep walking with the record as it claims to be, so one edit is one problem.
          onRecord(c.record, file, line);
        } else {
          problem({ kind: 'malformed', file: file.name, line, message: c.message });
        }
      },
      async (pos) => {
        opts.onProgress?.(done + pos, total);
        await Promise.all(sigChecks.splice(0));
      },
    );
    done += file.size;
    if (res.partial) {
      problem({
        kind: 'truncated',
        file: file.name,
        line: line + 1,
        message: `${isLast ? 'the last line' : 'a line at the end of a rotated file'} is cut off (${res.partial.length} bytes at offset ${res.partial.offset}, no newline): a write was interrupted or the file was truncated`,
      });
    }
  }
  await Promise.all(sigChecks);
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

function fileIndex(files: AuditFile[], name: string): number {
  const i = files.findIndex((f) => f.name === name);
  return i < 0 ? files.length : i;
}
