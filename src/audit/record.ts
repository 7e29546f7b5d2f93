import { pino, type Logger } from 'pino';
import { canonicalize, toJsonValue, type JsonValue } from './canonical.js';
import { LINE_HEAD, sha256 } from './line-check.js';

// The check of a stored line lives in line-check.ts (no pino: verify's workers load it).
export { checkLine, expectedHash, LINE_HEAD, sha256, ZERO_HASH, type LineCheck } from './line-check.js';

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
