import { createHash } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { canonicalize, toJsonValue, type JsonValue } from './canonical.js';
import type { AuditRecord } from './types.js';

/** `prev` of the first record ever written. */
export const ZERO_HASH = '0'.repeat(64);
/** Every line starts with this (pino's level slot, see `RecordWriter`). */
export const LINE_HEAD = '{"v":1,';
const HASH_RE = /^[0-9a-f]{64}$/;
/** `,"hash":"<64 hex>"}` */
const HASH_SUFFIX_LEN = 9 + 64 + 2;

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Turns an event into its line. pino is the serializer: the record goes
 * through `logger.info(record)` and the line pino produces is what is written.
 * pino is configured to emit nothing of its own except `"v":1` (in its level
 * slot, since an empty level object makes pino write `{,`): no level, time,
 * pid, hostname or msg.
 *
 * The hash is SHA-256 over the RFC 8785 form of the record without `v` and
 * `hash` (`prev` included, which chains it). The record is reduced to plain
 * JSON with its keys in canonical order first, so pino's bytes between
 * `{"v":1,` and `,"hash"` are normally that same canonical text, which lets
 * verify hash raw bytes (fast path); where they differ (integer-like object
 * keys, which JavaScript orders first) verify re-canonicalizes (slow path).
 */
export class RecordWriter {
  #line = '';
  readonly #logger: Logger;

  constructor() {
    this.#logger = pino(
      {
        base: null,
        timestamp: false,
        formatters: { level: () => ({ v: 1 }) },
        // Keys pino would otherwise treat specially; NUL cannot occur in a record key we write.
        messageKey: '\u0000msg',
        errorKey: '\u0000err',
        serializers: {},
      },
      { write: (s: string) => void (this.#line = s) },
    );
  }

  /** Builds the line for `fields` (seq, time and prev included). */
  format(fields: Record<string, unknown>): { line: string; hash: string } {
    const body = toJsonValue(fields) as { [k: string]: JsonValue };
    delete body.v;
    delete body.hash;
    const hash = sha256(canonicalize(body));
    body.hash = hash;
    this.#line = '';
    this.#logger.info(body);
    const line = this.#line;
    if (!line.startsWith(LINE_HEAD) || !line.endsWith('\n')) throw new Error('audit: unexpected serializer output');
    return { line, hash };
  }
}

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
  if (typeof r.hash !== 'string' || !HASH_RE.test(r.hash)) return { ok: false, reason: 'malformed', message: 'hash is missing or not 64 hex digits' };
  if (typeof r.prev !== 'string' || !HASH_RE.test(r.prev)) return { ok: false, reason: 'malformed', message: 'prev is missing or not 64 hex digits' };
  if (typeof r.event !== 'string' || typeof r.time !== 'string') return { ok: false, reason: 'malformed', message: 'event or time is missing' };
  // Fast path: the bytes as written are the canonical text. Its guards and hash input only decide whether the
  // fast path is tried: a wrong guess hashes other bytes, misses, and falls through to the full check below,
  // which decides alone (test/mutation/equivalent.md). Only its "ok" needs the exact hash, and stays mutated.
  // Stryker disable all: perf-only (see above)
  if (text.startsWith(LINE_HEAD) && text.length > LINE_HEAD.length + HASH_SUFFIX_LEN && text.endsWith(`,"hash":"${r.hash}"}`)) {
    const h = createHash('sha256').update('{');
    if (raw !== undefined && raw.length === Buffer.byteLength(text)) h.update(raw.subarray(LINE_HEAD.length, raw.length - HASH_SUFFIX_LEN));
    else h.update(text.slice(LINE_HEAD.length, text.length - HASH_SUFFIX_LEN));
    // Stryker restore all
    // Stryker disable next-line StringLiteral: perf-only (another closing byte makes the fast path miss and fall through)
    if (h.update('}').digest('hex') === r.hash) return { ok: true, record: r };
  }
  if (expectedHash(r) === r.hash) return { ok: true, record: r };
  return { ok: false, reason: 'edited', record: r, message: 'content does not match its hash (the record was edited)' };
}
