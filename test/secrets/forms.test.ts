/**
 * Encodings an upstream can echo a secret in that the other fixtures never
 * produce: percent-encoding with lower-case hex digits only, upper-case hex,
 * and base64url of a value whose base64 has '+' and '/' (for most test
 * secrets base64url is byte for byte their base64, so dropping it went
 * unnoticed).
 */
import { describe, expect, it } from 'vitest';
import { secretForms } from '../../src/secrets/forms.js';
import { Redactor } from '../../src/secrets/redact.js';
import { findLeaks } from './leaks.js';

/** Characters that percent-encode ('/', '?', '~' is unreserved), and bytes 0x3e/0x3f/0x7e whose base64 has '+' and '/'. */
const VALUE = 'sk_~~~???>>>~~?live?~>0123456789';

function redactor(): Redactor {
  const r = new Redactor();
  r.learn('api-key', VALUE);
  return r;
}

/** The text must come back with the value replaced and no trace of it in any form. */
function expectRedacted(text: string): void {
  const out = redactor().redactText(`before ${text} after`);
  expect(out, text).toBe('before [REDACTED:api-key] after');
  expect(findLeaks(out, VALUE)).toEqual([]);
}

describe('secret forms an upstream echoes that no other fixture emits', () => {
  it('the value percent-encoded with lower-case hex digits only (%3f%3e, letters of the value left as they are)', () => {
    const lower = encodeURIComponent(VALUE).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
    expect(lower).toMatch(/%3f/);
    expect(lower).not.toMatch(/%[0-9A-F]{2}/);
    expect(lower).toContain('live'); // only the escapes are lower-cased
    expectRedacted(lower);
    const inQuery = redactor().redactText(`https://api.example/x?key=${lower}&page=2`);
    expect(inQuery).toBe('https://api.example/x?key=[REDACTED:api-key]&page=2');
  });

  it('secretForms lists the percent-encodings (RFC 3986 and form) with lower-case hex as forms of their own (its contract, for consumers that match case-sensitively)', () => {
    const lower = encodeURIComponent(VALUE).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
    expect(secretForms(VALUE)).toContain(lower);
    expect(secretForms(VALUE)).toContain(encodeURIComponent(VALUE));
    // Form encoding (a space is "+"), in both cases of hex.
    const spaced = 'pass word/with?marks~';
    const form = new URLSearchParams([['', spaced]]).toString().slice(1);
    expect(form).toContain('+');
    expect(secretForms(spaced)).toContain(form);
    expect(secretForms(spaced)).toContain(form.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
  });

  it('the value as upper-case hex (what a hex dump or a C program prints)', () => {
    const HEX = Buffer.from(VALUE).toString('hex').toUpperCase();
    expect(HEX).toMatch(/[A-F]/);
    expectRedacted(HEX);
    expect(redactor().redactText(`digest=${HEX};`)).toBe('digest=[REDACTED:api-key];');
  });

  it('base64url of a value whose base64 has "+" and "/", alone and at every byte offset inside a longer encoding', () => {
    for (const prefix of ['', 'a', 'ab', 'user:']) {
      const b64 = Buffer.from(`${prefix}${VALUE}`).toString('base64');
      const b64url = Buffer.from(`${prefix}${VALUE}`).toString('base64url');
      // Precondition: base64url differs from base64 here, in both special characters.
      expect(b64, prefix).toMatch(/\+/);
      expect(b64, prefix).toMatch(/\//);
      expect(b64url, prefix).not.toMatch(/[+/]/);
      const out = redactor().redactText(`token ${b64url} end`);
      expect(out, `${prefix}: ${out}`).toContain('[REDACTED:api-key]');
      expect(findLeaks(out, VALUE), `${prefix}: ${out}`).toEqual([]);
    }
    // A JWT-like segment: base64url without padding between dots.
    const seg = Buffer.from(JSON.stringify({ k: VALUE })).toString('base64url');
    expect(redactor().redactText(`eyJhbGciOiJub25lIn0.${seg}.sig`)).toContain('[REDACTED:api-key]');
  });
});
