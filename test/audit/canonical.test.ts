import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize, toJsonValue, type JsonValue } from '../../src/audit/canonical.js';
import { checkLine, LINE_HEAD, RecordWriter, sha256 } from '../../src/audit/record.js';

describe('canonical JSON (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units, integer-like keys included', () => {
    // RFC 8785 §3.2.3 sorting example (keys compared as UTF-16 code units).
    const v = toJsonValue({ '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' }) as JsonValue;
    expect(canonicalize(v)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
    expect(canonicalize(toJsonValue({ '10': 1, '9': 2, b: [3, { z: 1, a: 2 }] }) as JsonValue)).toBe('{"10":1,"9":2,"b":[3,{"a":2,"z":1}]}');
  });

  it('serializes numbers and literals as RFC 8785 §3.2.2 (the example of appendix B)', () => {
    const v = toJsonValue({ numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001], string: '\u20ac$\u000f\u000aA\'\u0042\u0022\u005c\\"/', literals: [null, true, false] }) as JsonValue;
    expect(canonicalize(v)).toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
  });

  it('reduces values to plain JSON: undefined dropped, non-finite null, lone surrogates replaced', () => {
    expect(toJsonValue({ a: undefined, b: NaN, c: 'x\ud800', d: new Date(0), e: [undefined], f: 10n })).toEqual({ b: null, c: 'x\ufffd', d: '1970-01-01T00:00:00.000Z', e: [null], f: '10' });
  });
});

describe('record lines written by pino', () => {
  const w = new RecordWriter();
  const base = { seq: 1, time: '2025-01-06T10:00:00.000Z', prev: '0'.repeat(64), event: 'tools/call' };

  it('are one JSON object per line, starting {"v":1, and the hash covers the canonical form', () => {
    const { line, hash } = w.format({ ...base, agent: 'a', args: { q: 'x' } });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.startsWith(LINE_HEAD)).toBe(true);
    const rec = JSON.parse(line) as Record<string, unknown>;
    const { v: _v, hash: _h, ...body } = rec;
    expect(hash).toBe(sha256(canonicalize(body as JsonValue)));
    expect(checkLine(line.trimEnd()).ok).toBe(true);
  });

  it('fields pino treats specially (msg, err, level, time) round-trip as plain fields', () => {
    const { line } = w.format({ ...base, msg: 'm', err: { code: 'X' }, level: 3, hostname: 'h' });
    expect(JSON.parse(line)).toMatchObject({ msg: 'm', err: { code: 'X' }, level: 3, hostname: 'h', time: base.time });
    expect(checkLine(line.trimEnd()).ok).toBe(true);
  });

  it('any JSON-ish event verifies, through the raw fast path or re-canonicalization', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.string(), (extra, agent) => {
        const { line } = w.format({ ...extra, ...base, agent });
        const c = checkLine(line.slice(0, -1));
        expect(c.ok).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('an edit of any value is detected', () => {
    const { line } = w.format({ ...base, agent: 'alice', args: { amount: 10 } });
    for (const edited of [line.replace('alice', 'mallory'), line.replace('"amount":10', '"amount":11'), line.replace('"seq":1', '"seq":2')]) {
      const c = checkLine(edited.trimEnd());
      expect(c.ok).toBe(false);
    }
  });
});
