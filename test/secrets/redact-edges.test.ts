/**
 * Edges of secret redaction that mutation testing (npm run test:mutation)
 * found unguarded: boundaries of the length rules, overlapping and adjacent
 * values, values split at the very edge of a content item, hostile shapes of
 * a result (null, undefined, deep nesting, Error, null-prototype objects) and
 * encodings the other fixtures never produce.
 */
import { describe, expect, it } from 'vitest';
import { FormIndex } from '../../src/secrets/form-index.js';
import { secretForms } from '../../src/secrets/forms.js';
import { Redactor } from '../../src/secrets/redact.js';

function redactorWith(entries: Record<string, string>): Redactor {
  const r = new Redactor();
  for (const [k, v] of Object.entries(entries)) r.learn(k, v);
  return r;
}

const VALUE = 'sk-live_4f9a1B2c3D4e5F6g7H8i9J0kLmNoP';

describe('length rules at their boundaries', () => {
  it('a value of exactly 4 characters (the minimum) is redacted; a 3-character one that JSON-escapes to 4+ is not', () => {
    expect(redactorWith({ pin: 'ab12' }).redactText('x ab12 y')).toBe('x [REDACTED:pin] y');
    expect(secretForms('"\n"')).toEqual([]);
    expect(secretForms('ab1')).toEqual([]);
  });

  it('a short value alone in a text as long as itself is redacted (no early exit on the shortest form)', () => {
    const r = redactorWith({ pin: 'w0rd7' });
    expect(r.redactText('w0rd7')).toBe('[REDACTED:pin]');
    expect(r.redactText('W0RD7')).toBe('[REDACTED:pin]');
  });

  it('values under 8 characters get only their literal and JSON forms (their base64 and hex are left alone)', () => {
    const r = redactorWith({ pin: 'w0rd7' });
    const b64 = Buffer.from('w0rd7').toString('base64');
    const hex = Buffer.from('w0rd7').toString('hex');
    expect(r.redactText(`${b64} ${hex}`)).toBe(`${b64} ${hex}`);
    expect(secretForms('w0rd7')).toEqual(['w0rd7']);
  });

  it('a value of exactly 8 characters gets its encoded forms too (base64, hex)', () => {
    const v = 'Zq8!xY2#';
    const r = redactorWith({ k: v });
    expect(r.redactText(Buffer.from(v).toString('base64'))).toBe('[REDACTED:k]');
    expect(r.redactText(Buffer.from(v).toString('hex'))).toBe('[REDACTED:k]');
  });

  it('only values too short to redact: text passes unchanged and nothing throws', () => {
    const r = redactorWith({ tiny: 'ab' });
    expect(r.redactText('a longer text with ab in it')).toBe('a longer text with ab in it');
    expect(r.formCount).toBe(0);
  });

  it('FormIndex refuses forms under 8 characters (its sampling would miss them)', () => {
    expect(() => new FormIndex([{ form: 'abcdefg', name: 'x' }])).toThrow(new RangeError('every form must be at least 8 characters'));
    expect(() => new FormIndex([{ form: 'abcdefgh', name: 'x' }])).not.toThrow();
  });
});

describe('several values, and overlaps', () => {
  it('two values that overlap in the text are one redaction (no piece of either is left)', () => {
    const r = redactorWith({ a: 'abcdefgh', b: 'efghijkl' });
    expect(r.redactText('<abcdefghijkl>')).toBe('<[REDACTED:a]>');
  });

  it('two values side by side are two redactions, each with its own name', () => {
    const r = redactorWith({ a: 'abcdefgh', b: 'ijklmnop' });
    expect(r.redactText('abcdefghijklmnop')).toBe('[REDACTED:a][REDACTED:b]');
  });

  it('short values: the longer one wins where one is a prefix of the other, whatever the order learned', () => {
    const r = redactorWith({ short: 'abcd', long: 'abcdef' });
    expect(r.redactText('abcdef abcd')).toBe('[REDACTED:long] [REDACTED:short]');
  });

  it('short values with regex metacharacters are matched literally', () => {
    const r = redactorWith({ k: 'a+b*c', j: 'x.y?z' });
    expect(r.redactText('a+b*c aabbbc x.y?z xayz')).toBe('[REDACTED:k] aabbbc [REDACTED:j] xayz');
  });

  it('two secrets with the same short value: the one learned first names it', () => {
    const r = redactorWith({ first: 'pa55w', second: 'pa55w' });
    expect(r.redactText('pa55w')).toBe('[REDACTED:first]');
    expect(r.formCount).toBe(1);
  });

  it('formCount counts distinct forms, any letter case', () => {
    const r = redactorWith({ k: VALUE });
    expect(r.formCount).toBe(new Set(secretForms(VALUE).map((f) => f.toLowerCase())).size);
    expect(r.formCount).toBeGreaterThan(20);
  });

  it('ordinary text (including the words "Stryker was here") is untouched when short values are known', () => {
    const r = redactorWith({ pin: 'w0rd7' });
    expect(r.redactText('Stryker was here!')).toBe('Stryker was here!');
  });
});

describe('rotation', () => {
  it('the 16 most recent values of a secret stay redacted; the 17th oldest is forgotten (bounded memory)', () => {
    const r = new Redactor();
    const values = Array.from({ length: 17 }, (_, i) => `rotated-value-${String(i).padStart(2, '0')}`);
    for (const v of values.slice(0, 16)) r.learn('k', v);
    for (const v of values.slice(0, 16)) expect(r.redactText(v)).toBe('[REDACTED:k]');
    r.learn('k', values[16] as string);
    expect(r.redactText(values[0] as string)).toBe(values[0]);
    for (const v of values.slice(1)) expect(r.redactText(v)).toBe('[REDACTED:k]');
  });

  it('learning the current value again does not push an older value out', () => {
    const r = new Redactor();
    r.learn('k', 'old-value-0001');
    for (let i = 0; i < 20; i++) r.learn('k', 'new-value-0002');
    expect(r.redactText('old-value-0001')).toBe('[REDACTED:k]');
  });
});

describe('encodings no other fixture produces', () => {
  it('the value reversed, exactly', () => {
    const r = redactorWith({ k: VALUE });
    expect(r.redactText(`<${[...VALUE].reverse().join('')}>`)).toBe('<[REDACTED:k]>');
  });

  it('the full padded base64 of the value leaves no trailing character', () => {
    for (const v of [VALUE, `${VALUE}x`, `${VALUE}xy`]) {
      const r = redactorWith({ k: v });
      expect(r.redactText(`"${Buffer.from(v).toString('base64')}"`), v).toBe('"[REDACTED:k]"');
    }
  });

  it('base64 with "/" as a JSON encoder that escapes "/" writes it (\\/)', () => {
    const v = 'key??>>>~~~value??';
    const b64 = Buffer.from(v).toString('base64');
    expect(b64).toContain('/');
    const r = redactorWith({ k: v });
    expect(r.redactText(JSON.stringify({ a: b64 }).replaceAll('/', '\\/'))).toBe('{"a":"[REDACTED:k]"}');
  });

  it('a non-ASCII value in JSON with \\u escapes (and as is)', () => {
    const v = 'pässwörd-ключ-42';
    const r = redactorWith({ k: v });
    const ascii = JSON.stringify(v).replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    expect(ascii).toContain('\\u00e4');
    expect(r.redactText(ascii)).toBe('"[REDACTED:k]"');
    expect(r.redactText(JSON.stringify(v))).toBe('"[REDACTED:k]"');
  });

  it('hex with every separator and prefix of dumps, fingerprints and lists (also JSON-escaped)', () => {
    const r = redactorWith({ k: VALUE });
    const bytes = [...Buffer.from(VALUE)].map((b) => b.toString(16).padStart(2, '0'));
    const shapes = [
      ...[':', ' ', '-', '.', ',', ', ', '_', '|', '/', '\t', '\n', '\r\n', '\\n'].map((sep) => bytes.join(sep)),
      bytes.map((b) => `\\x${b}`).join(''),
      bytes.map((b) => `\\\\x${b}`).join(''),
      ...['', ' ', ',', ', '].map((sep) => bytes.map((b) => `0x${b}`).join(sep)),
      bytes.map((b) => `%${b}`).join(''),
    ];
    for (const shape of shapes) expect(r.redactText(`[${shape}]`), JSON.stringify(shape)).toBe('[[REDACTED:k]]');
  });

  it('ordinary text (the words "Stryker was here" too) is untouched when a long value is known', () => {
    const r = redactorWith({ k: VALUE });
    expect(r.redactText('Stryker was here! STRYKER WAS HERE')).toBe('Stryker was here! STRYKER WAS HERE');
  });

  it('a value at the very end of a text, after any number of characters (the last sampled position counts)', () => {
    const r = redactorWith({ k: VALUE, s: 'abcdefgh' });
    for (let n = 0; n < 40; n++) {
      expect(r.redactText(`${'x'.repeat(n)}${VALUE}`), String(n)).toBe(`${'x'.repeat(n)}[REDACTED:k]`);
      expect(r.redactText(`${'x'.repeat(n)}abcdefgh`), String(n)).toBe(`${'x'.repeat(n)}[REDACTED:s]`);
    }
  });
});

describe('hostile result shapes', () => {
  const r = redactorWith({ k: VALUE });

  it('null, undefined, numbers and booleans anywhere are kept as they are (nothing throws)', () => {
    const input = { a: null, b: [undefined, null, 1, true], c: { d: undefined }, e: [null, VALUE] };
    const out = r.redact(input);
    expect(out).toEqual({ a: null, b: [undefined, null, 1, true], c: { d: undefined }, e: [null, '[REDACTED:k]'] });
    const clean = { a: null, b: [undefined, null, 1, false] };
    expect(r.redact(clean)).toBe(clean);
  });

  it('a value in an object key only (value unchanged) is redacted', () => {
    expect(r.redact({ [VALUE]: 1 })).toEqual({ '[REDACTED:k]': 1 });
  });

  it('an Error: its message is redacted, its name kept; a clean Error comes back as is', () => {
    const e = new TypeError(`bad token ${VALUE}`);
    const out = r.redact(e);
    expect(out).toBeInstanceOf(Error);
    expect(out.message).toBe('bad token [REDACTED:k]');
    expect(out.name).toBe('TypeError');
    const clean = new Error('fine');
    expect(r.redact(clean)).toBe(clean);
  });

  it('a null-prototype object is walked like a plain one', () => {
    const o = Object.assign(Object.create(null) as Record<string, unknown>, { t: VALUE });
    expect(r.redact(o)).toEqual({ t: '[REDACTED:k]' });
  });

  it('a class instance is not turned into a plain object (results are JSON; other objects pass as they are)', () => {
    class Box {
      constructor(readonly t: string) {}
    }
    const b = new Box(VALUE);
    expect(r.redact({ b }).b).toBe(b);
  });

  it('nesting deeper than 256 is replaced whole; up to that depth it is walked', () => {
    const nest = (n: number, leaf: unknown): unknown => (n === 0 ? leaf : { a: nest(n - 1, leaf) });
    const nestArr = (n: number, leaf: unknown): unknown => (n === 0 ? leaf : [nestArr(n - 1, leaf)]);
    const dig = (v: unknown, n: number): unknown => {
      let cur = v;
      for (let i = 0; i < n; i++) cur = Array.isArray(cur) ? cur[0] : (cur as { a: unknown }).a;
      return cur;
    };
    expect(dig(r.redact(nest(257, VALUE)), 257)).toBe('[REDACTED:k]');
    expect(dig(r.redact(nest(258, { x: VALUE })), 257)).toBe('[REDACTED:too-deep]');
    expect(dig(r.redact(nestArr(257, VALUE)), 257)).toBe('[REDACTED:k]');
    expect(dig(r.redact(nestArr(258, [VALUE])), 257)).toBe('[REDACTED:too-deep]');
  });
});

describe('a value split across adjacent content items', () => {
  const r = redactorWith({ k: VALUE });

  it('items next to the one holding the value are untouched, also when the value starts or ends exactly at their edge', () => {
    expect(r.redact(['hello ', `key ${VALUE}`, ' bye'])).toEqual(['hello ', 'key [REDACTED:k]', ' bye']);
    expect(r.redact(['abc', VALUE, 'xyz'])).toEqual(['abc', '[REDACTED:k]', 'xyz']);
    expect(r.redact([{ type: 'text', text: 'abc' }, { type: 'text', text: VALUE }, { type: 'text', text: 'xyz' }])).toEqual([
      { type: 'text', text: 'abc' },
      { type: 'text', text: '[REDACTED:k]' },
      { type: 'text', text: 'xyz' },
    ]);
  });

  it('a null or a non-string text between items ends a run and does not hide the value after it', () => {
    expect(r.redact([null, VALUE])).toEqual([null, '[REDACTED:k]']);
    expect(r.redact([{ text: 5 }, VALUE])).toEqual([{ text: 5 }, '[REDACTED:k]']);
    expect(r.redact([{ text: 5 }, VALUE.slice(0, 10), VALUE.slice(10)])).toEqual([{ text: 5 }, '[REDACTED:k]', '[REDACTED:k]']);
  });
});
