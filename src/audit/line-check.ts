import { hash } from 'node:crypto';
import { canonicalize, toJsonValue, type JsonValue } from './canonical.js';
import type { AuditRecord } from './types.js';

/** `prev` of the first record ever written. */
export const ZERO_HASH = '0'.repeat(64);
/** Every line starts with this (pino's level slot, see `RecordWriter` in record.ts). */
export const LINE_HEAD = '{"v":1,';
/** `,"hash":"<64 hex>"}` */
const HASH_SUFFIX_LEN = 9 + 64 + 2;

/** SHA-256 of `text` as hex (one-shot: no Hash object per record). */
export function sha256(text: string): string {
  return hash('sha256', text);
}

/** 64 lowercase hex digits (what /^[0-9a-f]{64}$/ tests, without the regex engine: this runs twice per record). */
function isHash(s: string): boolean {
  if (s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

const HASH_KEY = Buffer.from(',"hash":"');

/** Whether the line's bytes end with `,"hash":"<hash>"}` (`hash` is 64 hex digits: one byte per character). */
function endsWithHash(raw: Buffer, hash: string): boolean {
  const at = raw.length - HASH_SUFFIX_LEN;
  if (raw[raw.length - 1] !== 0x7d || raw[raw.length - 2] !== 0x22) return false;
  for (let k = 0; k < HASH_KEY.length; k++) if (raw[at + k] !== HASH_KEY[k]) return false;
  for (let k = 0; k < 64; k++) if (raw[at + HASH_KEY.length + k] !== hash.charCodeAt(k)) return false;
  return true;
}

/**
 * SHA-256 of '{' + raw[from, to) + '}'. The bytes just outside the range
 * are the commas after `"v":1` and before `"hash"`: they are swapped for the
 * braces while hashing and put back (no copy of the line).
 */
function braced(raw: Buffer, from: number, to: number): string {
  const before = raw[from - 1] as number;
  const after = raw[to] as number;
  raw[from - 1] = 0x7b;
  raw[to] = 0x7d;
  try {
    // Hex, not a Buffer: a Buffer per digest costs more than the hex text.
    return hash('sha256', raw.subarray(from - 1, to + 1));
  } finally {
    raw[from - 1] = before;
    raw[to] = after;
  }
}

/**
 * checkLine's fast path on bytes alone, for verify: whether a line whose
 * shape line-scan.ts checked (`{"v":1,` … `,"hash":"<64 hex>"}`) hashes, from
 * `{"v":1,` to `,"hash"` (braced), to the hash it ends with.
 */
export function bodyDigestIs(raw: Buffer): boolean {
  return endsWithHash(raw, braced(raw, LINE_HEAD.length, raw.length - HASH_SUFFIX_LEN));
}

export const EDITED_MESSAGE = 'content does not match its hash (the record was edited)';
export const REENCODED_MESSAGE = 'not written as the writer writes it (re-encoded: escapes, spacing, key order or repeated keys), though its content matches its hash; searches by text (gatehouse logs filters) can miss such a record';

export type LineCheck =
  | { ok: true; record: AuditRecord }
  | { ok: false; reason: 'malformed'; message: string }
  | { ok: false; reason: 'edited'; record: AuditRecord; message: string };

/** The hash a parsed record should carry. */
export function expectedHash(record: Record<string, unknown>): string {
  const body: { [k: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(record)) if (k !== 'v' && k !== 'hash') body[k] = v as JsonValue;
  return sha256(canonicalize(body));
}

/** Parses one line (without its newline) and checks its own hash; `raw` (the same line's bytes) speeds up the hash. */
export function checkLine(text: string, raw?: Buffer): LineCheck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: 'malformed', message: `not valid JSON (${(e as Error).message})` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, reason: 'malformed', message: 'not a JSON object' };
  const r = parsed as AuditRecord;
  if (r.v !== 1) return { ok: false, reason: 'malformed', message: `unknown record format v=${JSON.stringify(r.v)}` };
  if (!Number.isSafeInteger(r.seq) || r.seq < 1) return { ok: false, reason: 'malformed', message: 'seq is missing or not a positive integer' };
  if (typeof r.hash !== 'string' || !isHash(r.hash)) return { ok: false, reason: 'malformed', message: 'hash is missing or not 64 hex digits' };
  if (typeof r.prev !== 'string' || !isHash(r.prev)) return { ok: false, reason: 'malformed', message: 'prev is missing or not 64 hex digits' };
  if (typeof r.event !== 'string' || typeof r.time !== 'string') return { ok: false, reason: 'malformed', message: 'event or time is missing' };
  // Fast path: the bytes as written are the canonical text. Its guards and hash input only decide whether the
  // fast path is tried: a wrong guess hashes other bytes, misses, and falls through to the full check below,
  // which decides alone (test/mutation/equivalent.md). Only its "ok" needs the exact hash, and stays mutated.
  // Stryker disable all: perf-only (see above)
  if (text.length > LINE_HEAD.length + HASH_SUFFIX_LEN && text.startsWith(LINE_HEAD)) {
    let digest: string | undefined;
    if (raw !== undefined && raw.length === Buffer.byteLength(text)) {
      if (endsWithHash(raw, r.hash)) digest = braced(raw, LINE_HEAD.length, raw.length - HASH_SUFFIX_LEN);
    } else if (text.endsWith(`,"hash":"${r.hash}"}`)) {
      digest = sha256(`{${text.slice(LINE_HEAD.length, text.length - HASH_SUFFIX_LEN)}}`);
    }
    // Stryker restore all
    if (digest === r.hash) return { ok: true, record: r };
  }
  if (expectedHash(r) !== r.hash) return { ok: false, reason: 'edited', record: r, message: EDITED_MESSAGE };
  // Its content is sealed, but the bytes must be the writer's too: a record re-encoded (delete\u005frepo for
  // delete_repo) would still verify, yet be missed by every search that reads the bytes.
  return text === writerForm(r) ? { ok: true, record: r } : { ok: false, reason: 'edited', record: r, message: REENCODED_MESSAGE };
}

/**
 * The line the writer makes of a record (record.ts: pino writes `"v":1`, then
 * the body with its keys in canonical order — integer-like keys first, as
 * JavaScript orders them — and the hash last, each value as JSON.stringify
 * writes it).
 */
function writerForm(r: AuditRecord): string {
  const body = toJsonValue(r) as { [k: string]: JsonValue };
  delete body.v;
  delete body.hash;
  body.hash = r.hash;
  return `${LINE_HEAD}${JSON.stringify(body).slice(1)}`;
}
