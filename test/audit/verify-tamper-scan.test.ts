/**
 * Attacks on verify's byte-level fast path (line-scan.ts, verify-range.ts):
 * an attacker edits the log file and recomputes a line's hash over the bytes
 * it now holds (what anyone can do for unsealed records), so the digest no
 * longer protects the scanner; the scanner alone must then either give the
 * line up to checkLine or read exactly what JSON.parse reads. Also the
 * reused read buffer at read, range and file boundaries.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectScanAgrees } from './helpers.js';
import { RecordWriter, ZERO_HASH } from '../../src/audit/record.js';
import { READ_BYTES } from '../../src/audit/verify-range.js';
import { verifyAudit, type VerifyReport } from '../../src/audit/verify.js';
import { tempDir } from '../helpers/tmp.js';

const TIME = '2030-01-01T00:00:00.000Z';
const writer = new RecordWriter();
const line = (fields: Record<string, unknown>): string => writer.format({ seq: 7, time: TIME, prev: 'c'.repeat(64), ...fields }).line.slice(0, -1);
const BASE = line({ event: 'tools/call.intent', agent: 'a-1', tool: 'gh', call: 'c-1', args: { t: 'x', l: ['b'], n: -1.5e3, ok: true, no: null } });

/** The attacker's step: the line's hash set to SHA-256 of the bytes it now holds (if it still has the writer's frame). */
function rehash(raw: Buffer): Buffer {
  const n = raw.length;
  if (n < 7 + 75) return raw;
  const h = createHash('sha256').update(Buffer.concat([Buffer.from('{'), raw.subarray(7, n - 75), Buffer.from('}')])).digest('hex');
  const out = Buffer.from(raw);
  out.write(h, n - 66, 'latin1');
  return out;
}

const expectAgrees = (raw: Buffer): boolean => expectScanAgrees(raw).fast;

const at = (l: string, find: string, put: string) => {
  expect(l).toContain(find);
  return l.replace(find, put);
};

describe('line-scan under an attacker who re-hashes the line: no field is read differently from JSON.parse', () => {
  it('the unedited line takes the fast path', () => {
    expect(expectAgrees(Buffer.from(BASE))).toBe(true);
  });

  // Each: [attack, edited line (bytes), whether the scanner may take it at all]
  const u = (s: string) => Buffer.from(s, 'utf8');
  const hex = (l: string, find: string, bytes: string) => {
    const b = Buffer.from(l);
    const i = b.indexOf(find);
    expect(i).toBeGreaterThan(0);
    return Buffer.concat([b.subarray(0, i), Buffer.from(bytes, 'hex'), b.subarray(i + find.length)]);
  };
  it.each<[string, () => Buffer]>([
    ['duplicate seq (JSON.parse keeps the last)', () => u(at(BASE, '"seq":7', '"seq":7,"seq":8'))],
    ['duplicate seq inside a nested object (not a top-level key)', () => u(at(BASE, '"ok":true', '"ok":{"seq":9}'))],
    ['duplicate call (the open-call tracking reads it)', () => u(at(BASE, '"call":"c-1"', '"call":"c-1","call":"c-2"'))],
    ['duplicate event: intent then outcome', () => u(at(BASE, '"event":"tools/call.intent"', '"event":"tools/call.intent","event":"tools/call"'))],
    ['duplicate event hiding a checkpoint', () => u(at(BASE, '"event":"tools/call.intent"', '"event":"tools/call.intent","event":"audit.checkpoint"'))],
    ['escaped key \\u0073eq', () => u(at(BASE, '"seq":7', '"seq":7,"\\u0073eq":8'))],
    ['escaped key \\u0063all', () => u(at(BASE, '"call":"c-1"', '"call":"c-1","\\u0063all":"c-2"'))],
    ['escaped value in call', () => u(at(BASE, '"call":"c-1"', '"call":"c\\u002d1"'))],
    ['escaped value in event (audit.checkpoin\\u0074)', () => u(at(BASE, '"event":"tools/call.intent"', '"event":"audit.checkpoin\\u0074"'))],
    ['lone surrogate escape in call', () => u(at(BASE, '"call":"c-1"', '"call":"\\ud800"'))],
    ['overlong UTF-8 for "s" in a key (C1 B3)', () => hex(at(BASE, '"seq":7', '"seq":7,"Xeq":8'), 'X', 'c1b3')],
    ['overlong UTF-8 for the quote (C0 A2) inside call', () => hex(BASE, '-1"', 'c0a231')],
    ['UTF-8-encoded surrogate (ED A0 80) in agent', () => hex(BASE, 'a-1', 'eda080')],
    ['a BOM inside a key ("\\uFEFFseq")', () => hex(at(BASE, '"seq":7', '"seq":7,"Xseq":8'), 'X', 'efbbbf')],
    ['a BOM before the line', () => Buffer.concat([Buffer.from('efbbbf', 'hex'), u(BASE)])],
    ['NUL inside a string', () => hex(BASE, 'c-1', '00')],
    ['DEL (0x7f, legal in JSON) inside call', () => hex(BASE, 'c-1', '7f')],
    ['CR at the end (JSON.parse allows trailing whitespace)', () => u(`${BASE}\r`)],
    ['trailing garbage after the closing brace', () => u(`${BASE}x`)],
    ['a second object after the first', () => u(`${BASE}{}`)],
    ['seq 1e3', () => u(at(BASE, '"seq":7', '"seq":1e3'))],
    ['seq -0', () => u(at(BASE, '"seq":7', '"seq":-0'))],
    ['seq 07 (leading zero)', () => u(at(BASE, '"seq":7', '"seq":07'))],
    ['seq of 16 digits (beyond a safe integer)', () => u(at(BASE, '"seq":7', '"seq":9007199254740993'))],
    ['seq of 15 digits (largest the fast path reads)', () => u(at(BASE, '"seq":7', '"seq":999999999999999'))],
    ['seq as a string', () => u(at(BASE, '"seq":7', '"seq":"7"'))],
    ['a backslash before the closing quote of call (\\")', () => u(at(BASE, '"call":"c-1"', '"call":"c-1\\","x":"'))],
    ['an even run of backslashes before a quote', () => u(at(BASE, '"call":"c-1"', '"call":"c-1\\\\"'))],
    ['a key that is a prefix of a known one ("se")', () => u(at(BASE, '"seq":7', '"se":8,"seq":7'))],
    ['a key that extends a known one ("seqq")', () => u(at(BASE, '"seq":7', '"seqq":8,"seq":7'))],
    ['a hash-like member inside a string', () => u(at(BASE, '"call":"c-1"', `"call":"c-1\\",\\"hash\\":\\"${'e'.repeat(64)}\\"}"`))],
    ['prev as upper-case hex', () => u(at(BASE, 'c'.repeat(64), 'C'.repeat(64)))],
    ['prev with an escape', () => u(at(BASE, 'c'.repeat(64), `\\u0063${'c'.repeat(63)}`))],
    ['nesting 65 deep', () => u(at(BASE, '"ok":true', `"ok":${'['.repeat(65)}${']'.repeat(65)}`))],
    ['nesting 64 deep', () => u(at(BASE, '"ok":true', `"ok":${'['.repeat(64)}${']'.repeat(64)}`))],
    ['mismatched brackets', () => u(at(BASE, '"l":["b"]', '"l":["b"}'))],
    ['an unterminated nested object', () => u(at(BASE, '"ok":true', '"ok":{"a":1'))],
    ['whitespace between tokens', () => u(at(BASE, '"seq":7', '"seq": 7'))],
    ['a raw tab inside a string', () => u(at(BASE, '"call":"c-1"', '"call":"c\t1"'))],
    ['U+2028 inside call', () => u(at(BASE, '"call":"c-1"', '"call":"c\u20281"'))],
    ['numbers: 1E+2, -0.0e-0, huge exponent', () => u(at(BASE, '"n":-1500', '"n":[1E+2,-0.0e-0,1e999]'))],
    ['bad numbers: 1., .5, +1, 0x1', () => u(at(BASE, '"n":-1500', '"n":1.'))],
    ['literal prefixes: tru', () => u(at(BASE, '"ok":true', '"ok":tru'))],
    ['"v":1 twice', () => u(at(BASE, '"seq":7', '"v":1,"seq":7'))],
    ['v as 1.0', () => u(at(BASE, '{"v":1,', '{"v":1.0,'))],
  ])('%s', (_what, make) => {
    expectAgrees(rehash(make()));
  });

  it('property: up to 4 token insertions/deletions anywhere, re-hashed: the scanner gives up or agrees with JSON.parse', () => {
    const TOK = ['"', '\\', '\\"', '\\\\', ' ', '\r', ',', ':', '{', '}', '[', ']', '0', '1', '-', '.', 'e', '+', 'u', '\\u0073', 'true', 'null', '"seq":8', ',"seq":8', '"call":"zz"', ',"event":"audit.checkpoint"', '"x":', '\u0000', '\u00e4', '\ufeff'];
    const bytes = fc.oneof(
      fc.constantFrom(...TOK).map((t) => Buffer.from(t)),
      fc.constantFrom(0x80, 0xbf, 0xc0, 0xc1, 0xc3, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff).map((b) => Buffer.from([b])),
    );
    const edit = fc.record({ at: fc.nat(), del: fc.nat({ max: 3 }), ins: bytes });
    let fast = 0;
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        let b = Buffer.from(BASE);
        for (const e of edits) {
          const i = e.at % (b.length + 1);
          b = Buffer.concat([b.subarray(0, i), e.ins, b.subarray(Math.min(b.length, i + e.del))]);
        }
        if (expectAgrees(rehash(b))) fast++;
      }),
      { numRuns: 3000 },
    );
    // Many of those edits stay valid JSON: the scanner did read them (and agreed).
    expect(fast).toBeGreaterThan(30);
  });
});

function chain(events: Record<string, unknown>[]): { lines: string[]; hashes: string[] } {
  let prev = ZERO_HASH;
  const lines: string[] = [];
  const hashes: string[] = [];
  for (const [i, e] of events.entries()) {
    const { line: l, hash } = writer.format({ seq: 1 + i, time: TIME, prev, event: 'test.event', ...e });
    lines.push(l.slice(0, -1));
    hashes.push(hash);
    prev = hash;
  }
  return { lines, hashes };
}

function logDir(data: Buffer | string): string {
  const dir = join(tempDir('gh-tamper-'), 'audit');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'audit.jsonl'), data);
  return dir;
}

const view = (r: VerifyReport) => ({ ok: r.ok, records: r.records, lastSeq: r.lastSeq, lastHash: r.lastHash, problems: r.problems, unfinished: r.unfinished.map((c) => [c.seq, c.call, c.line]) });

describe('the reused read buffer: read, range and file boundaries', () => {
  // Lines of ~0.3 MiB (so lines straddle the 1 MiB reads) and one longer than a read.
  const sizes = [300_000, 310_000, 333_333, 1_500_000, 290_000, 700_000, 1_048_000, 5, 420_000];
  const big = chain(sizes.map((n, i) => ({ event: i % 2 ? 'tools/call' : 'tools/call.intent', call: `c-${i - (i % 2)}`, pad: 'y'.repeat(n) })));
  const text = big.lines.map((l) => `${l}\n`).join('');

  it('straddling lines, a line longer than a read: one thread and workers (several jobs per worker) agree, and find nothing', async () => {
    expect(text.length).toBeGreaterThan(4 * READ_BYTES);
    const dir = logDir(text);
    const one = await verifyAudit(dir, { threads: 1 });
    expect(one.problems).toEqual([]);
    expect(one.records).toBe(sizes.length);
    for (const rangeBytes of [400_000, 1_000_000]) expect(view(await verifyAudit(dir, { threads: 2, rangeBytes }))).toEqual(view(one));
  });

  it('a byte changed in a line that straddles a read boundary, in each line: found, at that line, with workers too', async () => {
    let offset = 0;
    for (const [k, l] of big.lines.entries()) {
      const next = offset + Buffer.byteLength(l) + 1;
      // The first read boundary inside this line, if any: edit the byte just after it (else the middle).
      const boundary = Math.ceil((offset + 1) / READ_BYTES) * READ_BYTES;
      const pos = boundary < next - 80 && text[boundary] === 'y' ? boundary : offset + l.indexOf('yyy') + 1;
      expect(text[pos]).toBe('y');
      const buf = Buffer.from(text);
      buf[pos] = buf[pos] === 0x79 ? 0x7a : 0x79;
      const dir = logDir(buf);
      const one = await verifyAudit(dir, { threads: 1 });
      expect(one.problems.map((p) => [p.kind, p.line])).toContainEqual(['edited', k + 1]);
      expect(view(await verifyAudit(dir, { threads: 2, rangeBytes: 400_000 }))).toEqual(view(one));
      offset = next;
    }
  });

  it('a short last range after long ones in the same worker (stale bytes of the last job): the cut-off tail is reported as it is', async () => {
    const cut = text.length - 3000;
    const dir = logDir(text.slice(0, cut));
    const one = await verifyAudit(dir, { threads: 1 });
    expect(one.problems.map((p) => p.kind)).toEqual(['truncated']);
    expect(one.problems[0]?.message).toContain(`at offset ${text.lastIndexOf('\n', text.length - 2) + 1}`);
    for (const rangeBytes of [400_000, 900_000]) expect(view(await verifyAudit(dir, { threads: 2, rangeBytes }))).toEqual(view(one));
  });

  it('small file, no final newline, empty lines and CRLF: workers and one thread agree', async () => {
    const { lines } = chain(Array.from({ length: 40 }, (_, i) => ({ i, call: `c${i}`, event: i % 2 ? 'tools/call' : 'tools/call.intent' })));
    for (const data of [lines.join('\n'), `\n${lines.join('\n\n')}\n`, `${lines.join('\r\n')}\r\n`]) {
      const dir = logDir(data);
      const one = await verifyAudit(dir, { threads: 1 });
      expect(view(await verifyAudit(dir, { threads: 2, rangeBytes: 900 }))).toEqual(view(one));
    }
  });
});

describe('a sealed record re-encoded so that byte searches miss it (older gap, found by this review)', () => {
  // checkLine re-canonicalizes the parsed record, so a sealed record could be re-encoded (escapes, spacing, key
  // order, repeated keys) without changing its hash, while `gatehouse logs` filters look for the writer's bytes.
  // verify now also wants the writer's bytes: such a record is a problem of its own.
  const variants: Array<[string, string, string]> = [
    ['an escape (delete\\u005frepo)', '"tool":"delete_repo"', '"tool":"delete\\u005frepo"'],
    ['a space after the colon', '"tool":"delete_repo"', '"tool": "delete_repo"'],
    ['a repeated key (the first value a decoy)', '"tool":"delete_repo"', '"tool":"harmless","tool":"delete_repo"'],
  ];
  for (const [how, from, to] of variants) {
    it(`re-encoded with ${how}: verify reports the line as re-encoded, one problem`, async () => {
      const { lines } = chain([{ tool: 'delete_repo', agent: 'a-1' }, { tool: 'other', agent: 'a-1' }]);
      const edited = [at(lines[0] as string, from, to), lines[1]];
      const dir = logDir(edited.map((l) => `${l}\n`).join(''));
      for (const threads of [1, 2]) {
        const v = await verifyAudit(dir, { threads });
        expect(v.ok).toBe(false);
        expect(v.problems).toEqual([expect.objectContaining({ kind: 'edited', seq: 1, message: expect.stringContaining('re-encoded') })]);
      }
    });
  }

  it('a record the writer wrote with integer-like keys (which it writes out of canonical order) still verifies', async () => {
    const { lines } = chain([{ tool: 'x', args: { 10: 'a', 9: 'b', z: 1 } }, { tool: 'y' }]);
    const dir = logDir(lines.map((l) => `${l}\n`).join(''));
    const v = await verifyAudit(dir, { threads: 1 });
    expect(v.problems).toEqual([]);
  });
});
