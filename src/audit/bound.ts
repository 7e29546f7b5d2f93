/**
 * The size bound of one audit record. A hostile upstream's
 * 512 MB error message or pathological result must neither keep its call's
 * record off the log nor make the log too big to verify: a record over the
 * bound is shrunk (long strings cut, deep or wide values summarized, sizes
 * noted), and one that still does not fit, or cannot be serialized at all,
 * is replaced by a minimal record of the call that says why.
 */
import { errorMessage } from '../errors.js';
import { cutString, summarizeArgs } from './summarize.js';

/** Largest record line the writer writes, newline included. */
export const MAX_RECORD_BYTES = 64 * 1024;

/** How far an oversized record is measured for its note (a cyclic value would never end). */
const MEASURE_LIMIT = 2 ** 30;

/** What a minimal record keeps of a call's record (strings only, each cut). */
export const MINIMAL_FIELDS = ['event', 'call', 'agent', 'session', 'tool', 'connector', 'outcome'] as const;

/**
 * JSON size of `value`, at least (strings count their length and quotes; no
 * escapes), counted without recursion and only until it passes `limit`: a
 * huge, deep or cyclic value costs at most about `limit` steps.
 */
export function jsonSizeAtLeast(value: unknown, limit: number): number {
  let size = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && size <= limit) {
    const v = stack.pop();
    if (typeof v === 'string') size += v.length + 2;
    else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') size += String(v).length;
    else if (v === null) size += 4;
    else if (typeof v === 'object') {
      const items = Array.isArray(v) ? (v as unknown[]) : Object.entries(v as object).flat();
      size += 2;
      for (let i = 0; i < items.length && size <= limit; i++) {
        stack.push(items[i]);
        size++;
      }
    }
  }
  return size;
}

/** Why a record was bounded, and how big it was (`bytes`: at least this many, as JSON). */
export interface BoundNote {
  reason: string;
  bytes?: number;
}

/** The record with long strings cut and deep or wide values summarized (as agent arguments are), and the note. */
export function shrinkRecord(e: Record<string, unknown>, note: BoundNote): Record<string, unknown> {
  return { ...(summarizeArgs(e) as Record<string, unknown>), bounded: note };
}

/** Only what identifies the call and its outcome, and the note. */
export function minimalRecord(e: Record<string, unknown>, note: BoundNote): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of MINIMAL_FIELDS) if (typeof e[k] === 'string') out[k] = cutString(e[k]);
  return { ...out, bounded: { ...note, minimal: true } };
}

function overBound(bytes: number): BoundNote {
  return { reason: `over the ${MAX_RECORD_BYTES}-byte record bound`, bytes };
}

/** `e` itself when it is within the bound as JSON (at least), else its shrunk copy: what is kept in memory. */
export function boundedEvent(e: Record<string, unknown>): Record<string, unknown> {
  return jsonSizeAtLeast(e, MAX_RECORD_BYTES) <= MAX_RECORD_BYTES ? e : shrinkRecord(e, overBound(jsonSizeAtLeast(e, MEASURE_LIMIT)));
}

/**
 * The line of record `e` (with the writer's fields `at`), within
 * MAX_RECORD_BYTES: `e` as it is, else shrunk, else minimal. Throws only if
 * even the minimal record cannot be formatted.
 */
export function boundedLine(
  e: Record<string, unknown>,
  at: Record<string, unknown>,
  format: (fields: Record<string, unknown>) => { line: string; hash: string },
): { line: string; hash: string } {
  let note: BoundNote;
  try {
    if (jsonSizeAtLeast(e, MAX_RECORD_BYTES) > MAX_RECORD_BYTES) note = overBound(jsonSizeAtLeast(e, MEASURE_LIMIT));
    else {
      const f = format({ ...e, ...at });
      const bytes = Buffer.byteLength(f.line);
      if (bytes <= MAX_RECORD_BYTES) return f;
      note = overBound(bytes);
    }
  } catch (err) {
    note = { reason: `could not be serialized: ${cutString(errorMessage(err))}` };
  }
  try {
    const f = format({ ...shrinkRecord(e, note), ...at });
    if (Buffer.byteLength(f.line) <= MAX_RECORD_BYTES) return f;
  } catch {
    // The minimal record below says why.
  }
  return format({ ...minimalRecord(e, note), ...at });
}
