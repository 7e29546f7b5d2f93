/**
 * A unified diff of a tool's pinned and current snapshots, for the admin and
 * the audit (issue #16). Each snapshot is rendered as JSON with sorted keys
 * and a 2-space indent, except that a string holding several lines or
 * sentences is written as `"piece" + "piece"`, one piece a line, so a changed
 * sentence in a description shows as one - and one + line.
 *
 * The rendering is injective (different snapshots never render alike: the
 * pieces concatenate back to the string, and `+` never appears between JSON
 * values otherwise), so a hash change always has a non-empty diff. Every
 * character a terminal would hide or act on — controls, ANSI escapes, bidi
 * overrides, zero-width and tag characters, odd spaces — is shown escaped.
 */
import { formatPatch, structuredPatch } from 'diff';
import type { JsonValue } from '../audit/canonical.js';
import type { Snapshot } from './canonical.js';

/**
 * Shown as \u escapes: controls (Cc; JSON already escapes C0 but not DEL or
 * C1), format characters (Cf: bidi embeddings/overrides/isolates, zero-width,
 * BOM, soft hyphen, the tags block), private use and unassigned code points,
 * line/paragraph separators, every space but U+0020, and the invisible
 * fillers and variation selectors that are not Cf.
 */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\u{e0100}-\u{e01ef}]/gu;

function escapeHidden(jsonText: string): string {
  return jsonText.replace(HIDDEN, (c) => {
    if (c === ' ') return c;
    const cp = c.codePointAt(0) as number;
    return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  });
}

/** A JSON string literal with hidden characters escaped. */
function literal(s: string): string {
  // JSON.stringify escapes C0 controls, quotes, backslashes and lone surrogates.
  return escapeHidden(JSON.stringify(s));
}

/** Text for a header line: escaped as in a literal, without the quotes. */
export function escapeForTerminal(s: string): string {
  return literal(s).slice(1, -1);
}

/** Split after each newline and after sentence-ending punctuation and its spaces; the pieces concatenate to `s`. */
const PIECE_BREAK = /(?<=\n)|(?<=[.!?][ \t]+)(?=[^ \t])/;

function renderString(s: string, indent: string): string {
  const pieces = s.split(PIECE_BREAK);
  return pieces.map(literal).join(`\n${indent}  + `);
}

function render(v: JsonValue, indent: string): string {
  if (typeof v === 'string') return renderString(v, indent);
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + render(x, inner)).join(',\n')}\n${indent}]`;
  }
  // Code-unit order, as canonicalJson (RFC 8785 §3.2.3).
  const keys = Object.keys(v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${literal(k)}: ${render(v[k] as JsonValue, inner)}`).join(',\n')}\n${indent}}`;
}

/** A snapshot as the diff shows it; '' for none. */
export function renderSnapshot(snapshot: Snapshot | undefined): string {
  return snapshot === undefined ? '' : `${render(snapshot as unknown as JsonValue, '')}\n`;
}

/**
 * The unified diff from the pinned snapshot to the current one, headed
 * `--- a/CONNECTOR/TOOL (pinned)` and `+++ b/CONNECTOR/TOOL (now)`; a side
 * that does not exist is rendered empty and labelled `(not pinned)` or
 * `(not listed)`. Hunks only when the two differ.
 */
export function toolDiff(connector: string, name: string, pinned: Snapshot | undefined, current: Snapshot | undefined): string {
  const path = `${escapeForTerminal(connector)}/${escapeForTerminal(name)}`;
  const patch = structuredPatch(`a/${path}`, `b/${path}`, renderSnapshot(pinned), renderSnapshot(current), undefined, undefined, { context: 3 });
  const hunks = formatPatch(patch, { includeIndex: false, includeUnderline: false, includeFileHeaders: false });
  const body = hunks.replace(/\n+$/, '');
  const head = `--- a/${path} ${pinned === undefined ? '(not pinned)' : '(pinned)'}\n+++ b/${path} ${current === undefined ? '(not listed)' : '(now)'}\n`;
  return body === '' ? head : `${head}${body}\n`;
}
