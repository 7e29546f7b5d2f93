import { describe, expect, it } from 'vitest';
import { secretForms } from '../../src/secrets/forms.js';
import { addLogRedactor, redactLogLine, Redactor } from '../../src/secrets/redact.js';
import { forms } from './fixtures/forms.mjs';
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
    // d0JyZDc= is base64 of w0rd7: left alone (too short to be told apart from other base64)
    expect(r.redactText('d0JyZDc=')).toBe('d0JyZDc=');
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
