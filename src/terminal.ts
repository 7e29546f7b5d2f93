/**
 * Text that agents and upstreams chose, shown to a human on a terminal.
 *
 * A terminal acts on control characters (ESC sequences move the cursor, clear
 * the screen, write the clipboard with OSC 52; a UTF-8 terminal also acts on
 * C1 controls such as U+009B CSI), and some invisible characters change what
 * a reader sees without being seen (bidi overrides and isolates reorder a line,
 * zero-width and tag characters hide text). Each of them is shown as an escape
 * (`\x1b`, `\u202e`, `\u{e0041}`), so what the admin reads is what was sent.
 * JSON output stays exact JSON: the same characters become `\uXXXX` escapes,
 * which parse back to the identical string.
 */

/**
 * Every character shown escaped: C0, DEL and C1 (Cc); format characters (Cf:
 * bidi embeddings, overrides, isolates and marks, zero-width space/joiners,
 * word joiner, invisible operators, BOM, soft hyphen, interlinear annotations,
 * tag characters); line and paragraph separators; lone surrogates; and the
 * invisible marks that are not Cf (variation selectors, combining grapheme
 * joiner, Khmer inherent vowels, Mongolian selectors, Hangul fillers).
 * The console's page (src/console/assets/console.js) carries a copy;
 * test/console/unsafe-chars.test.ts keeps the two identical.
 */
export const UNSAFE_CLASS =
  '\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{Cs}\\u034f\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u3164\\ufe00-\\ufe0f\\uffa0\\u{e0100}-\\u{e01ef}';
const UNSAFE = new RegExp(`[${UNSAFE_CLASS}]`, 'u');
const UNSAFE_ALL = new RegExp(`[${UNSAFE_CLASS}]`, 'gu');
/** What JSON.stringify leaves raw: all of UNSAFE but C0 (it escapes C0 and lone surrogates itself). */
const UNSAFE_IN_JSON = new RegExp(`(?![\\u0000-\\u001f])[${UNSAFE_CLASS}]`, 'gu');

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One character's visible escape. */
export function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const cp = c.codePointAt(0) ?? 0;
  if (cp < 0x100) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\u{${cp.toString(16)}}`;
}

/** `\uXXXX` for each UTF-16 unit of `c`: valid in JSON strings and readable on a terminal. */
function unicodeEscape(c: string): string {
  let out = '';
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/** Whether `s` holds a character that `escapeText` would escape. */
export function hasUnsafe(s: string): boolean {
  return UNSAFE.test(s);
}

/**
 * `s` with every unsafe character escaped, for one line of output (a table
 * cell, a name in a sentence). `keepNewlines` lets `\n` through, for a message
 * that is several lines by design.
 */
export function escapeText(s: string, opts: { keepNewlines?: boolean } = {}): string {
  if (!UNSAFE.test(s)) return s;
  return s.replace(UNSAFE_ALL, (c) => (c === '\n' && opts.keepNewlines === true ? c : escapeChar(c)));
}

/**
 * Text an agent or upstream chose, embedded in a message of ours (an error, a
 * stored reason): one line whatever it holds, quoted so a reader sees where it
 * starts and ends, and at most `max` characters of it. A JSON string, so every
 * control, newline and invisible character is an escape.
 */
export function quoteLine(s: string, max = 200): string {
  const cut = [...s];
  return jsonText(cut.length > max ? `${cut.slice(0, max).join('')}…` : s);
}

/** A template tag: the literal parts as written, every `${value}` escaped for one line. */
export function esc(strings: TemplateStringsArray, ...values: unknown[]): string {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += escapeText(String(values[i])) + (strings[i + 1] ?? '');
  return out;
}

/** JSON text made terminal-safe without changing its meaning: DEL, C1 and invisible characters as `\uXXXX`. */
export function jsonForTerminal(json: string): string {
  return json.replace(UNSAFE_IN_JSON, unicodeEscape);
}

/** `JSON.stringify(v, null, indent)`, terminal-safe (see jsonForTerminal). */
export function jsonText(v: unknown, indent?: number): string {
  return jsonForTerminal(JSON.stringify(v, null, indent) ?? 'null');
}

/** One JSON value on one line, for `--json` output. */
export function jsonLine(v: unknown): string {
  return `${jsonText(v)}\n`;
}

/** Our own terminal codes: colour (SGR) and "return, erase the line" (a progress line). */
const OWN_CODES = /\r\x1b\[K|\x1b\[[0-9;]{0,32}m/y;

/**
 * The last line of defence for everything the CLI writes: escapes every unsafe
 * character except newlines, tabs and our own colour and line-erase codes.
 * Data is escaped where it is formatted (a field cannot forge a row); this
 * catches what a formatter missed. Escapes are `\uXXXX`, so JSON output that
 * did not go through jsonText stays valid, identical JSON.
 */
export function terminalSafe(out: string): string {
  if (!UNSAFE.test(out)) return out;
  let result = '';
  let i = 0;
  while (i < out.length) {
    const cp = out.codePointAt(i) ?? 0;
    const c = String.fromCodePoint(cp);
    if (c === '\r' || c === '\x1b') {
      OWN_CODES.lastIndex = i;
      const m = OWN_CODES.exec(out);
      if (m) {
        result += m[0];
        i += m[0].length;
        continue;
      }
    }
    result += c !== '\n' && c !== '\t' && UNSAFE.test(c) ? unicodeEscape(c) : c;
    i += c.length;
  }
  return result;
}
