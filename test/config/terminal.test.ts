import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { table } from '../../src/cli/command.js';
import { createLogger } from '../../src/log.js';
import { esc, escapeText, jsonLine, jsonText, terminalSafe } from '../../src/terminal.js';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String.fromCodePoint(from + i));

/**
 * Every character a terminal acts on or that forges what a reader sees, listed
 * here by hand from the standards (ECMA-48 C0/C1, Unicode bidi and format
 * characters), not derived from the helper's own pattern.
 */
const DANGEROUS: Record<string, string[]> = {
  'C0 controls (ESC, BEL, CR, LF, TAB, NUL...)': range(0x00, 0x1f),
  DEL: ['\x7f'],
  'C1 controls (U+009B CSI, U+009D OSC, U+0090 DCS...)': range(0x80, 0x9f),
  'bidi embeddings and overrides U+202A-202E': range(0x202a, 0x202e),
  'bidi isolates U+2066-2069': range(0x2066, 0x2069),
  'bidi marks (LRM, RLM, ALM)': ['\u200e', '\u200f', '\u061c'],
  'zero-width space and joiners': range(0x200b, 0x200d),
  'word joiner and invisible operators U+2060-2064': range(0x2060, 0x2064),
  'line and paragraph separators': ['\u2028', '\u2029'],
  'BOM / zero-width no-break space': ['\ufeff'],
  'soft hyphen': ['\u00ad'],
  'interlinear annotation U+FFF9-FFFB': range(0xfff9, 0xfffb),
  'tag characters U+E0000-E007F (hidden text)': [String.fromCodePoint(0xe0001), ...range(0xe0020, 0xe007f)],
  'variation selectors': [...range(0xfe00, 0xfe0f), ...range(0xe0100, 0xe01ef)],
  'Hangul fillers and other blanks that are letters': ['\u115f', '\u1160', '\u3164', '\uffa0', '\u034f'],
  'lone surrogates': ['\ud800', '\udbff', '\udc00', '\udfff'],
};
const ALL = Object.values(DANGEROUS).flat();

const SAFE = ['a', 'Z', '0', ' ', '~', 'é', 'ß', '中', '😀', 'Ω', '\\', '"', 'x'];

describe('escaping text for the terminal', () => {
  it('the list of dangerous characters under test is not empty', () => {
    expect(ALL.length).toBeGreaterThan(400);
    for (const [name, chars] of Object.entries(DANGEROUS)) expect(chars.length, name).toBeGreaterThan(0);
  });

  it('escapeText shows every dangerous character as a visible escape, in every range', () => {
    for (const [name, chars] of Object.entries(DANGEROUS)) {
      for (const c of chars) {
        const out = escapeText(`a${c}b`);
        expect(out, `${name}: U+${c.codePointAt(0)?.toString(16)}`).toMatch(/^a\\(x[0-9a-f]{2}|u[0-9a-f]{4}|u\{[0-9a-f]{5}\}|[nrt])b$/);
        // Printable ASCII only: nothing left for a terminal to act on.
        expect(out).toMatch(/^[\x20-\x7e]*$/);
      }
    }
    expect(escapeText('\x1b[2J')).toBe('\\x1b[2J');
    expect(escapeText('\u009b31m')).toBe('\\x9b31m');
    expect(escapeText('\u202eevil')).toBe('\\u202eevil');
    expect(escapeText(String.fromCodePoint(0xe0041))).toBe('\\u{e0041}');
    expect(escapeText('a\nb\tc\r')).toBe('a\\nb\\tc\\r');
  });

  it('leaves ordinary text, accents, CJK and emoji as they are (same string, no copy)', () => {
    const s = SAFE.join('');
    expect(escapeText(s)).toBe(s);
  });

  it('keepNewlines lets \\n through for messages that are several lines by design, nothing else', () => {
    expect(escapeText('line 1\nline 2\x1b[1A\r', { keepNewlines: true })).toBe('line 1\nline 2\\x1b[1A\\r');
  });

  it('esc`` escapes the values only, not the literal parts', () => {
    const tool = 'x\n2026-01-01  forged row';
    expect(esc`denied ${tool} (${'\x1b]52;c;aGk=\x07'})\n`).toBe('denied x\\n2026-01-01  forged row (\\x1b]52;c;aGk=\\x07)\n');
  });

  it('a table cell cannot forge a row or move the cursor', () => {
    const out = table(['A', 'B'], [['x\nFORGED  ROW', '\x1b[2Jy'], ['ok', 'fine']]);
    expect(out.split('\n').filter((l) => l !== '')).toHaveLength(3);
    expect(out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    expect(out).toContain('x\\nFORGED  ROW');
  });

  it('JSON output stays exact JSON: every dangerous character escaped as \\uXXXX, parsing back to the same string', () => {
    const s = ALL.join('|');
    for (const text of [jsonText({ s }), jsonText({ s }, 2), jsonLine({ s })]) {
      expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/);
      expect(text).not.toMatch(/[\ud800-\udfff]/);
      expect((JSON.parse(text) as { s: string }).s).toBe(s);
    }
    expect(jsonLine({ a: 1 })).toBe('{"a":1}\n');
  });

  it('terminalSafe, the last filter before the terminal: keeps newlines, tabs, colour and the progress line erase; escapes the rest as \\uXXXX', () => {
    expect(terminalSafe('a\tb\n\x1b[31mred\x1b[0m\r\x1b[Kprogress')).toBe('a\tb\n\x1b[31mred\x1b[0m\r\x1b[Kprogress');
    expect(terminalSafe('\x1b]52;c;aGk=\x07')).toBe('\\u001b]52;c;aGk=\\u0007');
    expect(terminalSafe('\x1b[2J\x1b[H')).toBe('\\u001b[2J\\u001b[H');
    expect(terminalSafe('over\rwrite')).toBe('over\\u000dwrite');
    // JSON that did not go through jsonText stays the same JSON.
    const raw = JSON.stringify({ s: 'a\u009b\u202e\u{e0041}' });
    expect(JSON.parse(terminalSafe(raw))).toEqual({ s: 'a\u009b\u202e\u{e0041}' });
    for (const c of ALL.filter((x) => x !== '\n' && x !== '\t')) expect(terminalSafe(`a${c}b`)).toMatch(/^[\x20-\x7e]*$/);
  });

  it('log lines (often on a terminal under `gatehouse serve`) carry C1 and bidi characters as \\u escapes, and stay the same JSON', async () => {
    let written = '';
    const dest = new Writable({
      write(chunk: Buffer, _enc, cb) {
        written += chunk.toString('utf8');
        cb();
      },
    });
    const tool = 'x\u009b2J\u202eevil\u2028';
    createLogger({ destination: dest }).warn({ tool }, 'tool not exposed');
    await new Promise((r) => setImmediate(r));
    expect(written).not.toMatch(/[\x7f-\x9f\u202e\u2028]/);
    expect((JSON.parse(written) as { tool: string }).tool).toBe(tool);
  });
});
