import { describe, expect, it } from 'vitest';
import { secretForms } from '../../src/secrets/forms.js';
import { addLogRedactor, redactLogLine, Redactor } from '../../src/secrets/redact.js';
import { forms } from '../fixtures/forms.mjs';
import { base32Of } from '../fixtures/hostile-upstream.js';
import { findLeaks } from './leaks.js';

const TOKEN = 'ghp_Ab/Cd+Ef=Gh"Ij\\Kl_Mn0123456789';

function redactorWith(entries: Record<string, string>): Redactor {
  const r = new Redactor();
  for (const [k, v] of Object.entries(entries)) r.learn(k, v);
  return r;
}

describe('the leak scanner used by the tests', () => {
  it('finds every encoding the fixtures emit (so a clean scan means something)', () => {
    const all = forms(TOKEN);
    expect(Object.keys(all).length).toBeGreaterThanOrEqual(7);
    for (const [name, text] of Object.entries(all)) expect(findLeaks(`x ${text} y`, TOKEN), name).not.toEqual([]);
    for (const [name, text] of Object.entries(forms(`Bearer ${TOKEN}`))) expect(findLeaks(text, TOKEN), name).not.toEqual([]);
  });
});

describe('Redactor', () => {
  it('replaces the value and its base64, base64url, URL-encoded, hex and JSON-escaped forms by [REDACTED:NAME]', () => {
    const r = redactorWith({ 'gh-token': TOKEN });
    for (const [name, text] of [...Object.entries(forms(TOKEN)), ...Object.entries(forms(`Bearer ${TOKEN}`))]) {
      const out = r.redactText(`before ${text} after`);
      expect(out, name).toContain('[REDACTED:gh-token]');
      expect(findLeaks(out, TOKEN), `${name}: ${out}`).toEqual([]);
    }
  });

  it('finds a base64 value at each of the three byte alignments inside a longer base64 text', () => {
    const r = redactorWith({ t: TOKEN });
    for (const prefix of ['', 'a', 'ab', 'abc', 'user:', 'Bearer ']) {
      const b64 = Buffer.from(`${prefix}${TOKEN}-suffix`).toString('base64');
      const out = r.redactText(b64);
      expect(out, prefix).toContain('[REDACTED:t]');
      expect(findLeaks(out, TOKEN)).toEqual([]);
    }
  });

  it('catches values JSON-escaped with \\/ and JSON inside a JSON string', () => {
    const r = redactorWith({ t: TOKEN });
    const php = JSON.stringify({ auth: TOKEN }).replaceAll('/', '\\/');
    const nested = JSON.stringify(JSON.stringify({ auth: TOKEN }));
    const nestedPhp = JSON.stringify(php);
    for (const text of [php, nested, nestedPhp]) {
      const out = r.redactText(text);
      expect(out, text).toContain('[REDACTED:t]');
      expect(findLeaks(out, TOKEN)).toEqual([]);
    }
  });

  it('walks results deeply (strings and keys), without mutating the input', () => {
    const r = redactorWith({ t: TOKEN });
    const input = {
      content: [{ type: 'text', text: `token=${TOKEN}` }],
      structuredContent: { deep: [{ deeper: { [TOKEN]: Buffer.from(TOKEN).toString('hex') } }] },
      isError: false,
      n: 3,
    };
    const frozen = JSON.stringify(input);
    const out = r.redact(input);
    expect(JSON.stringify(input)).toBe(frozen);
    expect(findLeaks(JSON.stringify(out), TOKEN)).toEqual([]);
    expect(out.content[0]?.text).toBe('token=[REDACTED:t]');
    expect(out.n).toBe(3);
    const clean = { a: ['nothing', 'here'] };
    expect(r.redact(clean)).toBe(clean);
  });

  it('prefers the longest match and names the right secret when one value contains another', () => {
    const r = redactorWith({ short: 'abcdefgh', long: 'abcdefgh-ijklmnop' });
    expect(r.redactText('x abcdefgh-ijklmnop y abcdefgh z')).toBe('x [REDACTED:long] y [REDACTED:short] z');
  });

  it('keeps redacting a rotated-out value', () => {
    const r = redactorWith({ t: 'first-value-123' });
    r.learn('t', 'second-value-456');
    expect(r.redactText('first-value-123 second-value-456')).toBe('[REDACTED:t] [REDACTED:t]');
  });

  it('short values: 4-7 characters only in literal/JSON form, under 4 not at all', () => {
    const r = redactorWith({ pin: 'w0rd7', tiny: 'ab' });
    expect(r.redactText('a w0rd7 b')).toBe('a [REDACTED:pin] b');
    // dzByZDc= is base64 of w0rd7: left alone (too short to be told apart from other base64)
    expect(Buffer.from('w0rd7').toString('base64')).toBe('dzByZDc=');
    expect(r.redactText('dzByZDc=')).toBe('dzByZDc=');
    expect(r.redactText('ab cab')).toBe('ab cab');
    expect(secretForms('ab')).toEqual([]);
  });

  it('filters log lines for every registered redactor', () => {
    const a = redactorWith({ a: 'value-of-a-123' });
    const b = redactorWith({ b: 'value-of-b-456' });
    const offA = addLogRedactor(a);
    const offB = addLogRedactor(b);
    try {
      expect(redactLogLine('{"msg":"value-of-a-123 value-of-b-456"}')).toBe('{"msg":"[REDACTED:a] [REDACTED:b]"}');
    } finally {
      offA();
      offB();
    }
    expect(redactLogLine('value-of-a-123')).toBe('value-of-a-123');
  });

  it('does nothing (and allocates nothing) before any value is known', () => {
    const r = new Redactor();
    const v = { a: 'b' };
    expect(r.redact(v)).toBe(v);
    expect(r.redactText('anything')).toBe('anything');
  });
});

describe('Redactor: a hostile upstream disguising a value', () => {
  const value = 'sk-live_4f9a1B2c3D4e5F6g7H8i9J0kLmNoP';
  const r = redactorWith({ k: value });
  const clean = (text: string) => expect(findLeaks(r.redactText(text), value), r.redactText(text)).toEqual([]);

  it('a value split across adjacent content items: each item loses its piece, other items are untouched', () => {
    for (const cut of [1, 5, 17, value.length - 1]) {
      const result = {
        content: [
          { type: 'text', text: 'unrelated' },
          { type: 'image', data: 'AAAA', mimeType: 'image/png' },
          { type: 'text', text: `key: ${value.slice(0, cut)}` },
          { type: 'text', text: `${value.slice(cut)} (end)`, annotations: { audience: ['user'] } },
        ],
      };
      const out = r.redact(result);
      expect(out.content[0]).toBe(result.content[0]);
      expect(out.content[1]).toBe(result.content[1]);
      expect(out.content[2]).toEqual({ type: 'text', text: 'key: [REDACTED:k]' });
      expect(out.content[3]).toEqual({ type: 'text', text: '[REDACTED:k] (end)', annotations: { audience: ['user'] } });
      expect(findLeaks(out.content.map((c) => ('text' in c ? c.text : '')).join(''), value)).toEqual([]);
    }
    // Three items, and plain string arrays.
    const third = Math.floor(value.length / 3);
    const parts = [value.slice(0, third), value.slice(third, 2 * third), value.slice(2 * third)];
    expect(r.redact(parts)).toEqual(['[REDACTED:k]', '[REDACTED:k]', '[REDACTED:k]']);
    // Not adjacent (an image between): not joined.
    const apart = ['abc', 42, 'def'];
    expect(r.redact(apart)).toBe(apart);
  });

  it('reversed, upper-cased, lower-cased and mixed-case values, in every encoding', () => {
    clean([...value].reverse().join(''));
    clean(value.toUpperCase());
    clean(value.toLowerCase());
    clean([...value].map((c, i) => (i % 2 ? c.toUpperCase() : c.toLowerCase())).join(''));
    for (const f of Object.values(forms(value))) {
      clean(f.toUpperCase());
      clean(f.toLowerCase());
    }
  });

  it('base32 at every byte offset, upper and lower case, padded or not', () => {
    for (const prefix of ['', 'a', 'ab', 'abc', 'abcd', 'user:']) {
      const b32 = base32Of(`${prefix}${value}-tail`);
      for (const text of [b32, b32.toLowerCase(), b32.replace(/=+$/, '')]) {
        expect(r.redactText(text), `${prefix}: ${text}`).toContain('[REDACTED:k]');
        clean(text);
      }
    }
  });

  it('hex with separators: colons, spaces, dashes, newlines, \\x, 0x, %, either case', () => {
    const bytes = [...Buffer.from(value)].map((b) => b.toString(16).padStart(2, '0'));
    const shapes = [
      bytes.join(':'),
      bytes.join(' '),
      bytes.join('-'),
      bytes.join('\n'),
      bytes.join(', '),
      bytes.map((b) => `\\x${b}`).join(''),
      bytes.map((b) => `0x${b}`).join(', '),
      bytes.map((b) => `%${b}`).join(''),
      bytes.join(':').toUpperCase(),
    ];
    for (const shape of shapes) {
      expect(r.redactText(`fp ${shape} end`), shape).toBe('fp [REDACTED:k] end');
      clean(shape);
    }
  });

  it('a byte ending in 0 before an x prefix is read as the pattern read it (the right secret is named)', () => {
    const v = 'zp0-secret-value';
    const rr = redactorWith({ named: v });
    const text = [...Buffer.from(v)].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
    expect(Buffer.from(v).toString('hex')).toContain('30');
    expect(rr.redactText(text)).toBe('[REDACTED:named]');
  });

  it('finds every form at every position of a text, whatever the letters around it (the sampled index misses nothing)', () => {
    const rr = redactorWith({ a: 'abcdefgh', b: value, c: 'ZZZZZZZZZZZZZZZZZZZZZZZZ' });
    const filler = 'the quick brown fox 0123456789 ';
    for (const secret of ['abcdefgh', value, 'ZZZZZZZZZZZZZZZZZZZZZZZZ']) {
      for (let at = 0; at < 40; at++) {
        const text = `${filler.repeat(3).slice(0, at)}${secret.toUpperCase()}${filler}`;
        const out = rr.redactText(text);
        expect(out, `${secret} at ${at}`).toMatch(/\[REDACTED:[abc]\]/);
        expect(out.toLowerCase()).not.toContain(secret.toLowerCase());
      }
    }
  });

  it('leaves ordinary text alone: hashes, UUIDs, MAC addresses, prose', () => {
    const text = 'commit 3f786850e387550fdab836ed7e6dc881de23001b; id 550e8400-e29b-41d4-a716-446655440000; mac de:ad:be:ef:00:11; The Quick Brown Fox.';
    expect(r.redactText(text)).toBe(text);
  });
});
