/**
 * verify's byte-level reading of a line (line-scan.ts) accepts only what
 * JSON.parse + checkLine would accept, with the same values: for the
 * writer's own lines, for every one-byte edit, insertion and deletion of
 * them, and for the tricks a hand-edited line can play (a repeated key, an
 * escaped key, whitespace, broken UTF-8). A line it does not accept goes to
 * checkLine, so giving up is always safe; accepting wrongly is the attack.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectScanAgrees } from './helpers.js';
import { scanRecordLine } from '../../src/audit/line-scan.js';
import { RecordWriter, ZERO_HASH } from '../../src/audit/record.js';

const writer = new RecordWriter();
const line = (fields: Record<string, unknown>): string => writer.format({ seq: 7, time: '2030-01-01T00:00:00.000Z', prev: 'c'.repeat(64), ...fields }).line.slice(0, -1);

/** The writer's lines, in the shapes verify sees. */
const LINES = [
  line({ event: 'tools/call', agent: 'a-1', tool: 'github__create_issue', call: 'c-1', args: { title: 'x', labels: ['bug', 'p2'], n: -1.5e3, ok: true, none: null, empty: {}, list: [] }, durationMs: 13.5 }),
  line({ event: 'tools/call.intent', agent: 'ägent ✓', tool: 't', call: 'c-2' }),
  line({ event: 'session.opened', note: 'quote " backslash \\ tab \t newline \n nul \u0000 emoji 😀', seq: 123456789012345 }),
  line({ event: 'x', prev: ZERO_HASH, nested: { a: [[[{ b: [1, 2, { c: 'd' }] }]]] } }),
];

let scanned = 0;

/** expectScanAgrees (helpers.ts), counting the lines the scanner took. */
function expectAgrees(raw: Buffer): boolean {
  const r = expectScanAgrees(raw);
  if (r.scanned) scanned++;
  return r.fast;
}

/** Bytes that change JSON's meaning or validity. */
const BYTES = [...'"\\ ,:{}[]01-.eEu"tfnax', '\u0000', '\u001f', '\u007f'].map((c) => c.charCodeAt(0)).concat([0x80, 0xbf, 0xc3, 0xe2, 0xed, 0xf0, 0xff]);

describe('line-scan: accepts only what JSON.parse and checkLine accept', () => {
  it('the writer\'s own lines are accepted, with the values JSON.parse gives', () => {
    expect(LINES.length).toBeGreaterThan(0);
    for (const l of LINES) expect(expectAgrees(Buffer.from(l))).toBe(true);
  });

  it('no one-byte edit, insertion or deletion anywhere in a line passes the fast path (a tampered byte is always caught)', () => {
    let tried = 0;
    scanned = 0;
    for (const l of LINES) {
      const raw = Buffer.from(l);
      for (let i = 0; i < raw.length; i++) {
        for (const b of BYTES) {
          const edits = [Buffer.concat([raw.subarray(0, i), Buffer.from([b]), raw.subarray(i + 1)]), Buffer.concat([raw.subarray(0, i), Buffer.from([b]), raw.subarray(i)])];
          for (const e of edits) {
            if (e.equals(raw)) continue;
            tried++;
            expect(expectAgrees(e)).toBe(false);
          }
        }
        tried++;
        expect(expectAgrees(Buffer.concat([raw.subarray(0, i), raw.subarray(i + 1)]))).toBe(false);
      }
    }
    expect(tried).toBeGreaterThan(10_000);
    // Many edits keep the line valid JSON (inside a string): the scanner read them, and the hash caught them.
    expect(scanned).toBeGreaterThan(1000);
  });

  it('property: any fields, any values (the writer\'s line, hash matching): what the scanner accepts, checkLine accepts with the same values', () => {
    const json = fc.jsonValue({ maxDepth: 4 });
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), json, { maxKeys: 6 }),
        fc.record({ event: fc.oneof(fc.constantFrom('tools/call', 'tools/call.intent'), fc.string({ unit: 'binary' })), call: fc.oneof(fc.string({ unit: 'binary' }), json), agent: json, tool: json }, { requiredKeys: ['event'] }),
        (extra, known) => {
          expectAgrees(Buffer.from(line({ ...extra, ...known })));
        },
      ),
      { numRuns: 400 },
    );
  });

  it.each([
    ['seq twice (JSON.parse keeps the last)', (l: string) => l.replace('"seq":7', '"seq":7,"seq":8')],
    ['a key spelt with an escape ("s\\u0065q")', (l: string) => l.replace('"seq":7', '"s\\u0065q":7')],
    ['"v" twice', (l: string) => l.replace('"seq":7', '"seq":7,"v":2')],
    ['hash twice', (l: string) => l.replace('"seq":7', `"seq":7,"hash":"${'d'.repeat(64)}"`)],
    ['whitespace between tokens', (l: string) => l.replace('"seq":7', '"seq": 7')],
    ['seq with an exponent', (l: string) => l.replace('"seq":7', '"seq":7e0')],
    ['seq with a fraction', (l: string) => l.replace('"seq":7', '"seq":7.0')],
    ['an event with an escape', (l: string) => l.replace('"event":"tools/call"', '"event":"tools\\/call"')],
    ['an upper-case prev', (l: string) => l.replace(`"prev":"${'c'.repeat(64)}"`, `"prev":"${'C'.repeat(64)}"`)],
    ['a trailing comma in an array', (l: string) => l.replace('["bug","p2"]', '["bug","p2",]')],
    ['nesting deeper than the scanner follows', (l: string) => l.replace('"ok":true', `"ok":${'['.repeat(70)}${']'.repeat(70)}`)],
  ])('%s: left to checkLine', (_what, edit) => {
    const raw = Buffer.from(edit(LINES[0] as string));
    expect(raw.toString()).not.toBe(LINES[0]);
    expect(scanRecordLine(raw, new Uint8Array(32), new Uint8Array(32), 0)).toBeUndefined();
  });

  it('a lone byte of broken UTF-8 inside a string: left to checkLine (JSON.parse would see U+FFFD)', () => {
    const raw = Buffer.from(LINES[1] as string);
    const at = raw.indexOf(Buffer.from('ä'));
    raw[at + 1] = 0x41;
    expect(scanRecordLine(raw, new Uint8Array(32), new Uint8Array(32), 0)).toBeUndefined();
  });
});
