/**
 * Edges of the audit record format that mutation testing (npm run
 * test:mutation) found unguarded: every reason a line is not a record, the
 * reduction of hostile values to plain JSON before hashing, and fields an
 * event may not set.
 */
import { describe, expect, it } from 'vitest';
import { canonicalize, toJsonValue, wellFormed } from '../../src/audit/canonical.js';
import { checkLine, expectedHash, LINE_HEAD, RecordWriter, sha256, ZERO_HASH } from '../../src/audit/record.js';
import { REENCODED_MESSAGE } from '../../src/audit/line-check.js';

const H = 'a'.repeat(64);
const base = { v: 1, seq: 1, time: '2030-01-01T00:00:00.000Z', prev: ZERO_HASH, event: 'x' };
/** A line for `fields` with a correct hash (computed the slow way, not by the writer). */
const sealed = (fields: Record<string, unknown>) => {
  const body = { ...fields };
  delete body.v;
  delete body.hash;
  return JSON.stringify({ v: fields.v ?? 1, ...body, hash: sha256(canonicalize(toJsonValue(body) as never)) });
};

describe('checkLine: why a line is not a record', () => {
  it.each([
    ['not JSON', '{"v":1,', /^not valid JSON \(/],
    ['a JSON array', '[1]', /^not a JSON object$/],
    ['JSON null', 'null', /^not a JSON object$/],
    ['a number', '5', /^not a JSON object$/],
    ['another format version', JSON.stringify({ ...base, v: 2, hash: H }), /^unknown record format v=2$/],
    ['no version', JSON.stringify({ ...base, v: undefined, hash: H }), /^unknown record format v=undefined$/],
    ['seq 0', JSON.stringify({ ...base, seq: 0, hash: H }), /^seq is missing or not a positive integer$/],
    ['seq 1.5', JSON.stringify({ ...base, seq: 1.5, hash: H }), /^seq is missing or not a positive integer$/],
    ['seq as a string', JSON.stringify({ ...base, seq: '1', hash: H }), /^seq is missing or not a positive integer$/],
    ['a short hash', JSON.stringify({ ...base, hash: 'abc' }), /^hash is missing or not 64 hex digits$/],
    ['an upper-case hash', JSON.stringify({ ...base, hash: H.toUpperCase() }), /^hash is missing or not 64 hex digits$/],
    ['a hash with a suffix', JSON.stringify({ ...base, hash: `${H}0` }), /^hash is missing or not 64 hex digits$/],
    ['no prev', JSON.stringify({ ...base, prev: undefined, hash: H }), /^prev is missing or not 64 hex digits$/],
    ['a prev with a prefix', JSON.stringify({ ...base, prev: `x${H}`, hash: H }), /^prev is missing or not 64 hex digits$/],
    ['no event', JSON.stringify({ ...base, event: undefined, hash: H }), /^event or time is missing$/],
    ['no time', JSON.stringify({ ...base, time: 5, hash: H }), /^event or time is missing$/],
  ])('%s is malformed, with the reason', (_what, line, message) => {
    const c = checkLine(line);
    expect(c.ok).toBe(false);
    expect(c).toMatchObject({ reason: 'malformed', message: expect.stringMatching(message) });
  });

  it('a record with a wrong hash is "edited", with the record as it claims to be', () => {
    const c = checkLine(JSON.stringify({ ...base, hash: H }));
    expect(c).toMatchObject({ ok: false, reason: 'edited', record: { seq: 1, event: 'x' }, message: 'content does not match its hash (the record was edited)' });
  });

  it('a record in the writer\'s form but not its fast-path bytes (integer-like keys first) verifies through the slow path; one edited byte fails both paths', () => {
    const { line: written } = new RecordWriter().format({ ...base, zeta: 1, alpha: { b: 2, a: [1, 'x'] }, args: { 10: 'a', 9: 'b', z: 1 } });
    const line = written.slice(0, -1);
    expect(line.startsWith(LINE_HEAD)).toBe(true);
    expect(checkLine(line).ok).toBe(true);
    expect(checkLine(line, Buffer.from(line)).ok).toBe(true);
    const edited = line.replace('"zeta":1', '"zeta":2');
    expect(checkLine(edited).ok).toBe(false);
    expect(checkLine(edited, Buffer.from(edited)).ok).toBe(false);
  });

  it('a sealed record written by hand, not as the writer writes it (key order): its content matches its hash, but it is reported as re-encoded', () => {
    const line = sealed({ ...base, zeta: 1, alpha: { b: 2, a: [1, 'x'] } });
    for (const c of [checkLine(line), checkLine(line, Buffer.from(line))]) {
      expect(c).toMatchObject({ ok: false, reason: 'edited', message: REENCODED_MESSAGE });
    }
  });

  it('the fast path: the writer\'s own line verifies with and without its raw bytes, and with raw bytes of another length', () => {
    const { line } = new RecordWriter().format({ seq: 1, time: base.time, prev: ZERO_HASH, event: 'x', text: 'ünïcode' });
    const text = line.slice(0, -1);
    expect(checkLine(text).ok).toBe(true);
    expect(checkLine(text, Buffer.from(text)).ok).toBe(true);
    expect(checkLine(text, Buffer.from(`${text}  `)).ok).toBe(true);
    const r = checkLine(text);
    expect(r.ok && r.record.hash).toBe(expectedHash(JSON.parse(text) as Record<string, unknown>));
  });
});

describe('RecordWriter: fields an event may not set', () => {
  it('an event\'s own v and hash are overwritten, and the hash covers every other field (prev included)', () => {
    const { line, hash } = new RecordWriter().format({ seq: 2, time: base.time, prev: H, event: 'x', v: 9, hash: 'forged', data: [1, { b: null }] });
    const rec = JSON.parse(line) as Record<string, unknown>;
    expect(line.startsWith('{"v":1,')).toBe(true);
    expect(line.endsWith('\n')).toBe(true);
    expect(rec.v).toBe(1);
    expect(rec.hash).toBe(hash);
    expect(hash).toBe(sha256(canonicalize({ data: [1, { b: null }], event: 'x', prev: H, seq: 2, time: base.time })));
  });
});

describe('toJsonValue: hostile values reduced to plain JSON before hashing', () => {
  it('bigints become strings, functions and symbols are dropped (null in arrays), Dates use toJSON', () => {
    const d = new Date('2030-01-01T00:00:00Z');
    expect(toJsonValue({ n: 10n, f: () => 1, s: Symbol('x'), d, a: [() => 1, Symbol('y'), undefined, 1] })).toEqual({ a: [null, null, null, 1], d: '2030-01-01T00:00:00.000Z', n: '10' });
    expect(toJsonValue(true)).toBe(true);
    expect(toJsonValue(false)).toBe(false);
    expect(toJsonValue(-Infinity)).toBeNull();
    expect(toJsonValue(NaN)).toBeNull();
    expect(toJsonValue(null)).toBeNull();
  });

  it('nesting deeper than 32 is cut with a marker (arrays and objects alike)', () => {
    let o: unknown = 'leaf';
    for (let i = 0; i < 40; i++) o = i % 2 ? { k: o } : [o];
    let v = toJsonValue(o) as unknown;
    let depth = 0;
    while (typeof v === 'object' && v !== null) {
      v = Array.isArray(v) ? v[0] : (v as { k: unknown }).k;
      depth++;
    }
    expect(depth).toBe(32);
    expect(v).toBe('[nested too deep]');
    let ok: unknown = 'leaf';
    for (let i = 0; i < 32; i++) ok = { k: ok };
    expect(JSON.stringify(toJsonValue(ok))).toContain('"leaf"');
  });

  it('lone surrogates in keys and values become U+FFFD; a valid pair is kept; a string without surrogates is returned as is', () => {
    expect(toJsonValue({ ['k\ud800']: 'v\udc00', pair: '\ud83d\ude00' })).toEqual({ 'k\ufffd': 'v\ufffd', pair: '\ud83d\ude00' });
    expect(wellFormed('a\udc00\ud800b')).toBe('a\ufffd\ufffdb');
    expect(wellFormed('\ud800\udc00\ud800')).toBe('\ud800\udc00\ufffd');
    const plain = 'plain text';
    expect(wellFormed(plain)).toBe(plain);
  });

  it('keys come out sorted; canonicalize writes arrays and nested objects without spaces', () => {
    expect(Object.keys(toJsonValue({ b: 1, a: 2, c: 3 }) as object)).toEqual(['a', 'b', 'c']);
    expect(canonicalize({ b: [1, 'x', null, true, { d: [], c: {} }], a: '' })).toBe('{"a":"","b":[1,"x",null,true,{"c":{},"d":[]}]}');
    expect(canonicalize([])).toBe('[]');
    expect(canonicalize({})).toBe('{}');
  });
});
