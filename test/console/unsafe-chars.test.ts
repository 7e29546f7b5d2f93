/**
 * The console's page shows invisible and control characters (bidi overrides,
 * zero-width and tag characters) as escapes, like the terminal does. The page
 * is a static browser file, so it carries a copy of src/terminal.ts's class:
 * this runs the page's block (between its <unsafe> markers) in Node and checks
 * it against the terminal's, over every code point.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assetsDir } from '../../src/console/assets.js';
import { escapeText, jsonForTerminal, UNSAFE_CLASS } from '../../src/terminal.js';

type Parts = Array<[string, boolean]>;
interface PageBlock {
  UNSAFE_CLASS: string;
  unsafeParts: (s: string, mode?: 'text' | 'lines' | 'json') => Parts;
}

function pageBlock(): PageBlock {
  const js = readFileSync(join(assetsDir(), 'console.js'), 'utf8');
  const start = js.indexOf('// <unsafe>');
  const end = js.indexOf('// </unsafe>');
  expect(start).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  return new Function(`${js.slice(start, end)}\nreturn { UNSAFE_CLASS, unsafeParts };`)() as PageBlock;
}

const joined = (p: Parts) => p.map(([t]) => t).join('');

describe('the console shows unsafe characters as the terminal does', () => {
  it('the_pages_unsafe_character_class_is_the_terminals', () => {
    expect(pageBlock().UNSAFE_CLASS).toBe(UNSAFE_CLASS);
  });

  it('every_code_point_is_escaped_in_the_page_exactly_as_on_the_terminal', () => {
    const { unsafeParts } = pageBlock();
    let escaped = 0;
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      // fromCodePoint of U+D800..U+DFFF is a lone surrogate: covered too.
      const c = String.fromCodePoint(cp);
      const text = joined(unsafeParts(c));
      if (text !== escapeText(c)) expect(text, `U+${cp.toString(16)}`).toBe(escapeText(c));
      const inJson = joined(unsafeParts(JSON.stringify(c), 'json'));
      if (inJson !== jsonForTerminal(JSON.stringify(c))) expect(inJson, `U+${cp.toString(16)} in JSON`).toBe(jsonForTerminal(JSON.stringify(c)));
      if (text !== c) escaped++;
    }
    // Not an empty class: bidi controls, zero-width and tag characters and the C0/C1 controls at least.
    expect(escaped).toBeGreaterThan(1_000);
  });

  it('the_reviewers_bidi_payload_is_shown_as_escapes', () => {
    const { unsafeParts } = pageBlock();
    const payload = 'cat /home/user/notes\u202Etxt.hs.\u202C\u200B';
    expect(joined(unsafeParts(payload))).toBe('cat /home/user/notes\\u202etxt.hs.\\u202c\\u200b');
    expect(unsafeParts(payload).filter(([, esc]) => esc)).toHaveLength(3);
    expect(joined(unsafeParts(JSON.stringify(payload), 'json'))).toBe('"cat /home/user/notes\\u202etxt.hs.\\u202c\\u200b"');
    // Lone surrogates and newlines kept on request ("lines": a diff).
    expect(joined(unsafeParts('a\uD800b'))).toBe('a\\ud800b');
    expect(joined(unsafeParts('a\nb\u202E', 'lines'))).toBe('a\nb\\u202e');
  });
});
