import type { AuditFile } from './files.js';
import { linesWith, scanLines, type LineSelector } from './lines.js';
import { writerAlive } from './lock.js';
import { CALL_INTENT_EVENT, type AuditRecord } from './types.js';

/**
 * What became of a forwarded call, from its intent record: `done` (an outcome
 * record with the same `call` id follows), `pending` (no outcome yet, and the
 * gateway that wrote the intent still holds the log: the call is in flight),
 * or unknown (no outcome and that gateway is gone: the upstream may or may
 * not have acted).
 */
export type CallStatus = 'done' | 'pending' | 'unknown (gateway stopped)';
export const UNKNOWN_STOPPED: CallStatus = 'unknown (gateway stopped)';

export function isIntent(r: AuditRecord): boolean {
  return r.event === CALL_INTENT_EVENT && typeof r.call === 'string';
}

export function isOutcomeOf(r: AuditRecord, ids: ReadonlySet<string>): boolean {
  return r.event === 'tools/call' && typeof r.call === 'string' && ids.has(r.call);
}

/**
 * Status of an intent that has no outcome in the log: pending only when a
 * live writer holds the log and the intent is one of its own records (after
 * the seq it opened at). Asks the kernel's lock once.
 */
export async function unfinishedStatus(dir: string): Promise<(seq: number) => CallStatus> {
  const w = await writerAlive(dir);
  const fromSeq = w?.alive ? (w.holder?.fromSeq ?? 0) : Number.POSITIVE_INFINITY;
  return (seq) => (seq > fromSeq ? 'pending' : UNKNOWN_STOPPED);
}

/** Where an intent line ends: the outcome can only come after it. */
export interface IntentAt {
  record: AuditRecord;
  /** Index into the files list, and the offset after the intent's line. */
  file: number;
  after: number;
}

/**
 * Which of `intents` have an outcome record later in the log: one forward
 * scan from the earliest, jumping between occurrences of the ids (native
 * search), parsing only those lines.
 */
export async function outcomesFollowing(files: AuditFile[], intents: IntentAt[]): Promise<Set<string>> {
  const found = new Set<string>();
  if (intents.length === 0) return found;
  const ids = new Set(intents.map((i) => i.record.call as string));
  const needles = [...ids].map((id) => Buffer.from(`"call":${JSON.stringify(id)}`));
  const start = intents.reduce((a, b) => (b.file < a.file || (b.file === a.file && b.after < a.after) ? b : a));
  const select: LineSelector = (buf, end) => {
    const pairs: [number, number][] = [];
    for (const n of needles) {
      const r = linesWith(buf, end, n, []);
      for (let i = 0; i < r.length; i += 2) pairs.push([r[i] as number, r[i + 1] as number]);
    }
    pairs.sort((a, b) => a[0] - b[0]);
    const out: number[] = [];
    for (const [s, e] of pairs) if (out.length === 0 || out[out.length - 2] !== s) out.push(s, e);
    return out;
  };
  for (let i = start.file; i < files.length && found.size < ids.size; i++) {
    const file = files[i] as AuditFile;
    await scanLines(
      file.path,
      i === start.file ? start.after : 0,
      file.size,
      (buf, s, e) => {
        try {
          const r = JSON.parse(buf.toString('utf8', s, e)) as AuditRecord;
          if (isOutcomeOf(r, ids)) found.add(r.call as string);
        } catch {
          // a torn line: verify reports it
        }
        return found.size < ids.size;
      },
      undefined,
      select,
    );
  }
  return found;
}
