/**
 * Verify in worker threads reports exactly what the single-thread walk
 * reports: same problems (kind, file, line, seq, message, order), same
 * counts, checkpoints and unfinished calls, wherever a break sits relative
 * to the ranges the workers get (first line of a file, across a file or
 * range boundary, inside a range) and however the files are cut.
 */
import { cpSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, toJsonValue, type JsonValue } from '../../src/audit/canonical.js';
import { checkpointKeyPath, loadCheckpointKey, signCheckpoint } from '../../src/audit/checkpoint.js';
import { listAuditFiles } from '../../src/audit/files.js';
import { sha256 } from '../../src/audit/record.js';
import { verifyAudit, type VerifyReport } from '../../src/audit/verify.js';
import { tempDir } from '../helpers/tmp.js';
import { call, lines, openLog, tempState, writeLines } from './helpers.js';

let template: string;
let publicKey: KeyObject;

beforeAll(async () => {
  const { state, dir } = tempState();
  const log = await openLog(dir, { maxFileBytes: 8 * 1024, checkpointEvery: 7 });
  for (let i = 0; i < 240; i++) {
    // Forwarded calls: an intent, then (mostly) its outcome, sometimes in a later file or never.
    if (i % 5 === 0) await log.append({ event: 'tools/call.intent', call: `c-${i}`, agent: `agent-${i % 3}`, tool: 'github__create_issue' });
    await log.append(i % 5 === 0 && i % 15 !== 0 ? call(i, { call: `c-${i}` }) : call(i));
  }
  await log.close();
  publicKey = (await loadCheckpointKey(checkpointKeyPath(state))).publicKey;
  template = state;
  expect(listAuditFiles(dir).length).toBeGreaterThan(8);
});

/** A copy of the template log; returns its audit dir and its files in chain order. */
function copy(): { dir: string; files: string[] } {
  const state = tempDir('gh-vpar-');
  cpSync(template, state, { recursive: true });
  const dir = join(state, 'audit');
  return { dir, files: listAuditFiles(dir).map((f) => f.path) };
}

type Rec = Record<string, unknown> & { seq: number; prev: string; hash: string };

function seal(r: Record<string, unknown>): string {
  const body = { ...r };
  delete body.v;
  delete body.hash;
  return JSON.stringify({ v: 1, ...(toJsonValue(body) as object), hash: sha256(canonicalize(body as JsonValue)) });
}

function editLine(path: string, i: number, f: (l: string) => string): void {
  const ls = lines(path);
  ls[i] = f(ls[i] as string);
  writeLines(path, ls);
}

async function both(dir: string, opts: { rangeBytes?: number } = {}): Promise<{ one: VerifyReport; many: VerifyReport }> {
  const one = await verifyAudit(dir, { publicKey, threads: 1 });
  const many = await verifyAudit(dir, { publicKey, threads: 2, rangeBytes: opts.rangeBytes ?? 1500 });
  return { one, many };
}

describe('parallel verify = single-thread verify', () => {
  const breaks: [string, (files: string[]) => void, Record<string, unknown> | undefined][] = [
    ['a clean log', () => undefined, undefined],
    ['an edit on the first line of a rotated file', (f) => editLine(f[3] as string, 0, (l) => l.replace('"agent":"agent-', '"agent":"mallory-')), { kind: 'edited', line: 1 }],
    ['an edit inside a range', (f) => editLine(f[2] as string, 9, (l) => l.replace('"agent":"agent-', '"agent":"mallory-')), { kind: 'edited', line: 10 }],
    ['the last record of a file removed (gap across the file boundary)', (f) => writeLines(f[4] as string, lines(f[4] as string).slice(0, -1)), { kind: 'gap', line: 1 }],
    [
      'the first record of a file re-sealed with another prev (chain across the file boundary)',
      (f) => editLine(f[5] as string, 0, (l) => seal({ ...(JSON.parse(l) as Rec), prev: 'a'.repeat(64) })),
      { kind: 'chain', line: 1 },
    ],
    [
      'a record inside a range re-sealed with another prev (chain inside a range)',
      (f) => editLine(f[1] as string, 6, (l) => seal({ ...(JSON.parse(l) as Rec), prev: 'b'.repeat(64) })),
      { kind: 'chain', line: 7 },
    ],
    [
      'two records swapped across a file boundary',
      (f) => {
        const a = lines(f[2] as string);
        const b = lines(f[3] as string);
        const last = a.pop() as string;
        a.push(b[0] as string);
        b[0] = last;
        writeLines(f[2] as string, a);
        writeLines(f[3] as string, b);
      },
      { kind: 'reordered' },
    ],
    ['a record duplicated at the start of a file', (f) => writeLines(f[6] as string, [lines(f[5] as string).at(-1) as string, ...lines(f[6] as string)]), { kind: 'file', line: 1 }],
    ['a line of garbage', (f) => editLine(f[7] as string, 3, () => '{"not": "a record"'), { kind: 'malformed', line: 4 }],
    ['the first file removed without a retention record', (f) => unlinkSync(f[0] as string), { kind: 'start' }],
    ['the current file cut mid-line', (f) => truncateSync(f.at(-1) as string, readFileSync(f.at(-1) as string).length - 10), { kind: 'truncated' }],
    ['many edits (more than the problem cap)', (f) => f.slice(0, -1).forEach((p) => editLine(p, 2, (l) => l.replace('"n":', '"n":1'))), { kind: 'edited' }],
  ];
  expect(breaks.length).toBeGreaterThan(0);

  for (const [name, apply, first] of breaks) {
    it(`${name}: same report, first problem named the same`, async () => {
      const { dir, files } = copy();
      apply(files);
      const { one, many } = await both(dir);
      expect(many).toEqual(one);
      if (first === undefined) expect(one.ok).toBe(true);
      else expect(one.problems[0]).toMatchObject(first);
    });
  }

  it('a forged checkpoint (signed by another key): the signature problem, in the same place', async () => {
    const { dir, files } = copy();
    const { privateKey } = generateKeyPairSync('ed25519');
    const path = files[4] as string;
    const ls = lines(path);
    const i = ls.findIndex((l) => l.includes('"event":"audit.checkpoint"'));
    expect(i).toBeGreaterThanOrEqual(0);
    const cp = JSON.parse(ls[i] as string) as Rec & { checkpoint: { seq: number; hash: string; time: string } };
    const { kid } = await loadCheckpointKey(checkpointKeyPath(join(dir, '..')));
    const jws = await signCheckpoint({ kid, privateKey, publicKey: privateKey, publicJwk: {} }, cp.checkpoint);
    ls[i] = seal({ ...cp, jws });
    writeLines(path, ls);
    const { one, many } = await both(dir);
    expect(many).toEqual(one);
    expect(one.problems[0]).toMatchObject({ kind: 'signature', line: i + 1, message: 'checkpoint signature is not valid for this key' });
  });

  it('with --from and an anchor: same report', async () => {
    const { dir } = copy();
    const base = await verifyAudit(dir, { threads: 1 });
    const opts = { from: 50, anchor: { seq: 100, hash: 'c'.repeat(64) } };
    const one = await verifyAudit(dir, { ...opts, publicKey, threads: 1 });
    const many = await verifyAudit(dir, { ...opts, publicKey, threads: 2, rangeBytes: 700 });
    expect(many).toEqual(one);
    expect(one.problems[0]).toMatchObject({ kind: 'rewritten', seq: 100 });
    expect(base.unfinishedCount).toBeGreaterThan(0);
    expect(many.unfinished).toEqual(one.unfinished);
  });

  it('property: any single edit, deletion or insertion, any cut of the files into ranges', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 10_000 }),
        fc.constantFrom('edit', 'delete', 'insert', 'garbage', 'reseal'),
        fc.integer({ min: 200, max: 12_000 }),
        async (pick, how, rangeBytes) => {
          const { dir, files } = copy();
          const path = files[pick % files.length] as string;
          const ls = lines(path);
          const i = pick % ls.length;
          const l = ls[i] as string;
          // The log's very last record deleted: the chain alone cannot tell it from a log that ended one record
          // earlier; an anchor at the deleted record's seq (what `audit verify --anchor` is for) does.
          const tail = how === 'delete' && path === files.at(-1) && i === ls.length - 1;
          if (how === 'edit') ls[i] = l.replace('"seq":', '"x":0,"seq":');
          else if (how === 'delete') ls.splice(i, 1);
          else if (how === 'insert') ls.splice(i, 0, l);
          else if (how === 'garbage') ls[i] = l.slice(0, l.length >> 1);
          else ls[i] = seal({ ...(JSON.parse(l) as Rec), prev: 'd'.repeat(64) });
          writeLines(path, ls);
          const { one, many } = await both(dir, { rangeBytes });
          expect(many).toEqual(one);
          if (!tail) {
            expect(one.ok).toBe(false);
            return;
          }
          const gone = JSON.parse(l) as Rec;
          const anchor = { seq: gone.seq, hash: gone.hash };
          const oneAnchored = await verifyAudit(dir, { publicKey, anchor, threads: 1 });
          expect(await verifyAudit(dir, { publicKey, anchor, threads: 2, rangeBytes })).toEqual(oneAnchored);
          expect(oneAnchored.ok).toBe(false);
        },
      ),
      { numRuns: 15 },
    );
  });
});

describe('tiny logs stay in this thread', () => {
  it('a log under PARALLEL_MIN_BYTES is verified without workers (default threads) and matches', async () => {
    const { dir } = copy();
    writeFileSync(join(dir, 'audit.jsonl'), readFileSync(join(dir, 'audit.jsonl')));
    const dflt = await verifyAudit(dir, { publicKey });
    const one = await verifyAudit(dir, { publicKey, threads: 1 });
    expect(dflt).toEqual(one);
  });
});
