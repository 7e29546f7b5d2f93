/**
 * Edges of `verifyAudit` that mutation testing (npm run test:mutation) found
 * unguarded: what the report says about a clean log, a log legitimately cut
 * by retention (and one cut without its retention record), calls with an
 * intent and no outcome, the problem cap, and the exact messages. Logs are
 * built record by record with the real serializer, so every hash is right
 * unless a test breaks it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RecordWriter, ZERO_HASH } from '../../src/audit/record.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { tempDir } from '../helpers/tmp.js';

const TIME = '2030-01-01T00:00:00.000Z';

/** Lines of a chain of `events` starting at `firstSeq` with `firstPrev`; returns the lines and their hashes. */
function chain(events: Record<string, unknown>[], firstSeq = 1, firstPrev = ZERO_HASH): { lines: string[]; hashes: string[] } {
  const w = new RecordWriter();
  let prev = firstPrev;
  const lines: string[] = [];
  const hashes: string[] = [];
  for (const [i, e] of events.entries()) {
    const { line, hash } = w.format({ seq: firstSeq + i, time: TIME, prev, event: 'test.event', ...e });
    lines.push(line.slice(0, -1));
    hashes.push(hash);
    prev = hash;
  }
  return { lines, hashes };
}

function logDir(lines: string[]): string {
  const dir = join(tempDir('gh-verify-'), 'audit');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'audit.jsonl'), lines.map((l) => `${l}\n`).join(''));
  return dir;
}

const n = (k: number) => Array.from({ length: k }, (_, i) => ({ i }));

describe('the report of a clean log', () => {
  it('counts records, first and last seq and hash, file sizes; unsealed is every record (no checkpoint); nothing unfinished', async () => {
    const { lines, hashes } = chain(n(4));
    const dir = logDir(lines);
    const r = await verifyAudit(dir);
    const bytes = lines.reduce((s, l) => s + Buffer.byteLength(l) + 1, 0);
    expect(r).toMatchObject({ ok: true, records: 4, firstSeq: 1, lastSeq: 4, lastHash: hashes[3], checkpoints: 0, signaturesChecked: false, unsealed: 4, problems: [], unfinished: [], unfinishedCount: 0 });
    expect(r.retainedFrom).toBeUndefined();
    expect(r.lastCheckpoint).toBeUndefined();
    expect(r.files).toEqual([{ name: 'audit.jsonl', firstSeq: 1, bytes }]);
    const progress: [number, number][] = [];
    await verifyAudit(dir, { onProgress: (d, t) => progress.push([d, t]) });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every(([d, t]) => t === bytes && d >= 0 && d <= bytes)).toBe(true);
    expect(progress.at(-1)?.[0]).toBe(bytes);
  });
});

describe('retention: a log that starts after seq 1', () => {
  it('is fine when an audit.retention record names exactly where it starts (seq and prev)', async () => {
    const startPrev = 'b'.repeat(64);
    const { lines } = chain([{ i: 0 }, { event: 'audit.retention', keptFromSeq: 5, keptFromPrev: startPrev }, { i: 2 }], 5, startPrev);
    const r = await verifyAudit(logDir(lines));
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.retainedFrom).toEqual({ seq: 5, prev: startPrev });
    expect(r.firstSeq).toBe(5);
    expect(r.unsealed).toBe(3);
  });

  it.each([
    ['no retention record', []],
    ['a retention record for another seq', [{ event: 'audit.retention', keptFromSeq: 4, keptFromPrev: 'b'.repeat(64) }]],
    ['a retention record with another prev', [{ event: 'audit.retention', keptFromSeq: 5, keptFromPrev: 'c'.repeat(64) }]],
    ['a retention record whose seq is a string', [{ event: 'audit.retention', keptFromSeq: '5', keptFromPrev: 'b'.repeat(64) }]],
    ['a retention record without prev', [{ event: 'audit.retention', keptFromSeq: 5 }]],
    ['another event with the retention fields', [{ event: 'audit.other', keptFromSeq: 5, keptFromPrev: 'b'.repeat(64) }]],
  ])('is a "start" problem with %s (earlier records were removed)', async (_what, extra) => {
    const { lines } = chain([{ i: 0 }, ...extra, { i: 2 }], 5, 'b'.repeat(64));
    const r = await verifyAudit(logDir(lines));
    expect(r.problems).toEqual([
      { kind: 'start', file: 'audit.jsonl', line: 1, seq: 5, message: 'the log starts at seq 5, not 1, and no audit.retention record accounts for it (earlier records were removed)' },
    ]);
    expect(r.retainedFrom).toBeUndefined();
  });

  it('--from past the start accepts the cut without a retention record; records before --from are not counted as problems', async () => {
    const { lines } = chain(n(3), 5, 'b'.repeat(64));
    const r = await verifyAudit(logDir(lines), { from: 6 });
    expect(r.problems).toEqual([]);
    expect(r.retainedFrom).toEqual({ seq: 6, prev: JSON.parse(lines[1] as string).prev });
  });
});

describe('calls with an intent record and no outcome', () => {
  it('are listed (seq, call, agent, tool, file, line) and do not make the log bad; an outcome closes one', async () => {
    const { lines } = chain([
      { event: 'tools/call.intent', call: 'c1', agent: 'alice', tool: 'gh__merge' },
      { event: 'tools/call.intent', call: 'c2', agent: 5, tool: null },
      { event: 'tools/call', call: 'c2', outcome: 'ok' },
      { event: 'tools/call.intent', call: 7 },
      { event: 'other', call: 'c3' },
    ]);
    const r = await verifyAudit(logDir(lines));
    expect(r.ok).toBe(true);
    expect(r.unfinishedCount).toBe(1);
    expect(r.unfinished).toEqual([{ seq: 1, call: 'c1', time: TIME, agent: 'alice', tool: 'gh__merge', file: 'audit.jsonl', line: 1, status: expect.any(String) }]);
    const { lines: l2 } = chain([{ event: 'tools/call.intent', call: 'c9', agent: 5, tool: 6 }]);
    const r2 = await verifyAudit(logDir(l2));
    expect(r2.unfinished).toEqual([expect.objectContaining({ call: 'c9', agent: undefined, tool: undefined })]);
  });
});

describe('problems', () => {
  it('at most maxProblems are kept (default 20)', async () => {
    const junk = Array.from({ length: 30 }, (_, i) => `junk ${i}`);
    expect((await verifyAudit(logDir(junk), { maxProblems: 2 })).problems).toHaveLength(2);
    expect((await verifyAudit(logDir(junk))).problems).toHaveLength(20);
  });

  it('exact messages: gap, reordered, duplicate, edited', async () => {
    const { lines } = chain(n(5));
    const [a, b, c, d, e] = lines as [string, string, string, string, string];
    const gap = await verifyAudit(logDir([a, b, d, e]));
    expect(gap.problems).toEqual([{ kind: 'gap', file: 'audit.jsonl', line: 3, seq: 4, message: 'records 3..3 are missing before seq 4 (removed)' }]);
    const tailGap = await verifyAudit(logDir([a, b, c, e]));
    expect(tailGap.problems.map((p) => p.message)).toEqual(['records 4..4 are missing before seq 5 (removed)']);
    const swapped = await verifyAudit(logDir([a, b, d, c, e]));
    expect(swapped.problems.map((p) => [p.kind, p.seq, p.message])).toEqual([
      ['reordered', 4, 'record seq 4 comes before seq 3 (records were reordered)'],
      ['reordered', 3, 'record seq 3 comes after seq 4 (records were reordered)'],
    ]);
    const late = await verifyAudit(logDir([a, c, d, b, e]));
    expect(late.problems.map((p) => [p.kind, p.seq, p.message])).toContainEqual(['reordered', 2, 'record seq 2 comes after seq 4 (records were reordered)']);
    const dup = await verifyAudit(logDir([a, b, c, c, d, e]));
    expect(dup.problems).toEqual([{ kind: 'duplicate', file: 'audit.jsonl', line: 4, seq: 3, message: 'record seq 3 appears twice' }]);
    const edited = await verifyAudit(logDir([a, b.replace('"i":1', '"i":9'), c]));
    expect(edited.problems.map((p) => [p.kind, p.message])).toContainEqual(['edited', 'record seq 2: content does not match its hash (the record was edited)']);
  });

  it('a record replayed with the same seq but other content is reordered, not a duplicate', async () => {
    const { lines } = chain(n(3));
    const { lines: other } = chain([{ i: 0 }, { i: 99 }]);
    const r = await verifyAudit(logDir([...lines, other[1] as string]));
    expect(r.problems.map((p) => p.kind)).toEqual(['reordered']);
  });

  it('an anchor whose hash the log no longer has: "rewritten", quoting 12 characters of the anchored hash', async () => {
    const { lines } = chain(n(3));
    const anchor = { seq: 2, hash: 'f'.repeat(64) };
    const r = await verifyAudit(logDir(lines), { anchor });
    expect(r.problems).toEqual([{ kind: 'rewritten', file: 'audit.jsonl', line: 2, seq: 2, message: `seq 2 no longer has the anchored hash ${'f'.repeat(12)}…` }]);
    const ok = await verifyAudit(logDir(lines), { anchor: { seq: 3, hash: JSON.parse(lines[2] as string).hash } });
    expect(ok.problems).toEqual([]);
    const cut = await verifyAudit(logDir(lines.slice(0, 2)), { anchor: { seq: 3, hash: 'f'.repeat(64) } });
    expect(cut.problems).toEqual([{ kind: 'truncated', file: 'audit.jsonl', line: 0, message: 'the log ends at seq 2, before the anchored seq 3 (records were cut off)' }]);
  });
});

/** A JWS-shaped string (the signature is not checked without a public key). */
const jwsOf = (header: Record<string, unknown>, payload: Record<string, unknown>) =>
  `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2ln`;
const TYP = 'gatehouse-audit-checkpoint+jws';
type Payload = { seq: number; hash: string; time: string };

/** A checkpoint record over `payload`, as a chain event. */
const checkpointEvent = (payload: Payload, claimed: unknown = payload, typ = TYP) => ({
  event: 'audit.checkpoint',
  checkpoint: claimed,
  jws: jwsOf({ alg: 'EdDSA', typ }, payload),
});

describe('checkpoints: what the record claims must be what its JWS says', () => {
  it('a checkpoint that matches its JWS and the record it names is fine (no key: not checked for signature)', async () => {
    const { lines, hashes } = chain(n(2));
    const payload = { seq: 2, hash: hashes[1] as string, time: TIME };
    const { lines: cp } = chain([checkpointEvent(payload)], 3, hashes[1]);
    const r = await verifyAudit(logDir([...lines, ...cp]));
    expect(r.problems).toEqual([]);
    expect(r.lastCheckpoint).toMatchObject({ seq: 2, hash: hashes[1], time: TIME, atSeq: 3 });
    expect(r.unsealed).toBe(0);
  });

  it.each([
    ['a JWS of another type (a token of another kind passed off as a checkpoint)', (p: Payload) => checkpointEvent(p, p, 'JWT'), 'checkpoint JWS is malformed'],
    ['a JWS without a type', (p: Payload) => ({ ...checkpointEvent(p), jws: jwsOf({ alg: 'EdDSA' }, p) }), 'checkpoint JWS is malformed'],
    ['a record that claims another hash than the JWS signs', (p: Payload) => checkpointEvent(p, { ...p, hash: 'e'.repeat(64) }), 'checkpoint fields differ from what its JWS signs'],
    ['a record that claims another time than the JWS signs', (p: Payload) => checkpointEvent(p, { ...p, time: '2031-01-01T00:00:00.000Z' }), 'checkpoint fields differ from what its JWS signs'],
    ['a record with no checkpoint fields at all', (p: Payload) => ({ event: 'audit.checkpoint', jws: checkpointEvent(p).jws }), 'checkpoint fields differ from what its JWS signs'],
  ])('%s is a signature problem', async (_what, make, message) => {
    const { lines, hashes } = chain(n(2));
    const { lines: cp } = chain([make({ seq: 2, hash: hashes[1] as string, time: TIME })], 3, hashes[1]);
    const r = await verifyAudit(logDir([...lines, ...cp]));
    expect(r.problems).toEqual([{ kind: 'signature', file: 'audit.jsonl', line: 3, seq: 3, message }]);
    expect(r.lastCheckpoint).toBeUndefined();
  });

  it('a checkpoint naming a seq the log skips (removed records) is "rewritten", besides the gap', async () => {
    const { lines, hashes } = chain(n(4));
    const payload = { seq: 3, hash: hashes[2] as string, time: TIME };
    const { lines: cp } = chain([checkpointEvent(payload)], 5, hashes[3]);
    const r = await verifyAudit(logDir([lines[0], lines[1], lines[3], ...cp] as string[]));
    expect(r.problems.map((p) => [p.kind, p.line, p.message])).toEqual([
      ['gap', 3, 'records 3..3 are missing before seq 4 (removed)'],
      ['rewritten', 4, 'checkpoint names seq 3, which is not in the log'],
    ]);
  });

  it('a checkpoint naming a record before the kept start (retention) or before --from is not a problem', async () => {
    const startPrev = 'b'.repeat(64);
    const kept = chain([{ event: 'audit.retention', keptFromSeq: 5, keptFromPrev: startPrev }, { i: 1 }], 5, startPrev);
    const { lines: cp } = chain([checkpointEvent({ seq: 4, hash: 'd'.repeat(64), time: TIME })], 7, kept.hashes[1]);
    const retained = await verifyAudit(logDir([...kept.lines, ...cp]));
    expect(retained.problems).toEqual([]);
    expect(retained.lastCheckpoint).toMatchObject({ seq: 4, atSeq: 7 });
    expect(retained.unsealed).toBe(0);

    const { lines, hashes } = chain(n(4));
    const { lines: cp2 } = chain([checkpointEvent({ seq: 2, hash: 'd'.repeat(64), time: TIME })], 5, hashes[3]);
    const fromThree = await verifyAudit(logDir([...lines, ...cp2]), { from: 3 });
    expect(fromThree.problems).toEqual([]);
    expect(fromThree.checkpoints).toBe(1);
    const whole = await verifyAudit(logDir([...lines, ...cp2]));
    expect(whole.problems.map((p) => p.message)).toEqual([`checkpoint signs hash ${'d'.repeat(12)}… for seq 2, but the log has ${(hashes[1] as string).slice(0, 12)}… (the chain was rewritten)`]);
  });
});


describe('--from: where checking starts', () => {
  it('the record at --from itself is checked (an edit there is reported); an edit before it is not', async () => {
    const { lines } = chain(n(5));
    const editAt = (i: number) => lines.map((l, j) => (j === i ? l.replace(`"i":${i}`, '"i":99') : l));
    const atFrom = await verifyAudit(logDir(editAt(2)), { from: 3 });
    expect(atFrom.problems.map((p) => [p.kind, p.seq])).toEqual([['edited', 3]]);
    const before = await verifyAudit(logDir(editAt(1)), { from: 3 });
    expect(before.problems).toEqual([]);
    expect(before.firstSeq).toBe(3);
    expect(before.records).toBe(3);
    expect(before.retainedFrom).toMatchObject({ seq: 3 });
  });

  it('a record before --from that turns up again later (replayed or moved) is reported', async () => {
    const { lines } = chain(n(5));
    const [a, b, c, d, e] = lines as [string, string, string, string, string];
    const replayed = await verifyAudit(logDir([a, b, c, d, e, a]), { from: 3 });
    expect(replayed.problems.map((p) => [p.kind, p.line, p.seq])).toEqual([['reordered', 6, 1]]);
    const editedLate = await verifyAudit(logDir([a, b, c, d, e, b.replace('"i":1', '"i":9')]), { from: 3 });
    expect(editedLate.problems.map((p) => [p.kind, p.line, p.seq])).toEqual([
      ['edited', 6, 2],
      ['reordered', 6, 2],
    ]);
  });

  it('--from 1 on a log that starts at seq 1 checks the first record\'s prev', async () => {
    const { lines } = chain(n(2), 1, 'c'.repeat(64));
    const r = await verifyAudit(logDir(lines), { from: 1 });
    expect(r.problems).toEqual([{ kind: 'chain', file: 'audit.jsonl', line: 1, seq: 1, message: 'the first record must have prev = 64 zeros' }]);
  });
});

describe('logs with nothing in them, and anchors at the very end', () => {
  it('an empty log: no records, nothing unsealed, ok; with an anchor it is cut off at seq 0', async () => {
    const r = await verifyAudit(logDir([]));
    expect(r).toMatchObject({ ok: true, records: 0, unsealed: 0, firstSeq: undefined, lastSeq: undefined });
    const anchored = await verifyAudit(logDir([]), { anchor: { seq: 1, hash: 'f'.repeat(64) } });
    expect(anchored.problems).toEqual([{ kind: 'truncated', file: 'audit.jsonl', line: 0, message: 'the log ends at seq 0, before the anchored seq 1 (records were cut off)' }]);
  });

  it('the anchored record is present but a lower seq was moved after it: reordered, not cut off', async () => {
    const { lines, hashes } = chain(n(3));
    const [a, b, c] = lines as [string, string, string];
    const r = await verifyAudit(logDir([a, c, b]), { anchor: { seq: 3, hash: hashes[2] as string } });
    expect(r.lastSeq).toBe(2);
    expect(r.problems.map((p) => p.kind)).toEqual(['reordered', 'reordered']);
  });
});

describe('more than 1000 unfinished calls', () => {
  it('lists the first 1000 and counts them all', async () => {
    const intents = Array.from({ length: 1001 }, (_, i) => ({ event: 'tools/call.intent', call: `c${i}`, agent: 'a', tool: 't' }));
    const r = await verifyAudit(logDir(chain(intents).lines));
    expect(r.unfinishedCount).toBe(1001);
    expect(r.unfinished).toHaveLength(1000);
    expect(r.unfinished[0]).toMatchObject({ call: 'c0', seq: 1 });
    expect(r.unfinished.at(-1)).toMatchObject({ call: 'c999', seq: 1000 });
  });
});

describe('edges the mutation run found (audit group)', () => {
  it('a forged record re-using the last seq is one "reordered" problem; the genuine next record still chains (no extra chain problem)', async () => {
    const { lines } = chain(n(4));
    const forged = chain([{ forged: true }], 3, ZERO_HASH).lines[0] as string;
    const dir = logDir([lines[0], lines[1], lines[2], forged, lines[3]] as string[]);
    const r = await verifyAudit(dir);
    expect(r.problems.map((p) => [p.kind, p.line])).toEqual([['reordered', 4]]);
  });

  it('only an outcome record finishes an intent: another record carrying the same call id does not', async () => {
    const { lines } = chain([{ event: 'tools/call.intent', call: 'c-1', agent: 'a', tool: 't' }, { event: 'approval.requested', call: 'c-1' }]);
    const r = await verifyAudit(logDir(lines));
    expect(r.unfinishedCount).toBe(1);
    expect(r.unfinished.map((u) => u.call)).toEqual(['c-1']);
  });

  it('a hash or prev that is not 64 hex digits is "malformed", not "edited"', async () => {
    const { lines } = chain(n(2));
    const badHash = (lines[1] as string).replace(/"hash":"[0-9a-f]{64}"/, '"hash":"not-hex"');
    const badPrev = (lines[1] as string).replace(/"prev":"[0-9a-f]{64}"/, '"prev":"zz"');
    for (const [bad, what] of [[badHash, 'hash'], [badPrev, 'prev']] as const) {
      const r = await verifyAudit(logDir([lines[0] as string, bad]));
      expect(r.problems.find((p) => p.line === 2)).toMatchObject({ kind: 'malformed', message: `${what} is missing or not 64 hex digits` });
    }
  });

  it('progress over a rotated file and the current one only grows, and ends at the total', async () => {
    const { lines } = chain(n(6));
    const dir = logDir(lines.slice(3));
    writeFileSync(join(dir, 'audit.000000000001.jsonl'), lines.slice(0, 3).map((l) => `${l}\n`).join(''));
    const progress: number[] = [];
    let total = 0;
    const r = await verifyAudit(dir, { onProgress: (d, t) => (progress.push(d), (total = t)) });
    expect(r.ok).toBe(true);
    expect(progress.every((d, i) => i === 0 || d >= (progress[i - 1] as number))).toBe(true);
    expect(progress.at(-1)).toBe(total);
  });

  it('a rotated file named for another seq is reported with a message saying so', async () => {
    const { lines } = chain(n(6));
    const dir = logDir(lines.slice(3));
    writeFileSync(join(dir, 'audit.000000000002.jsonl'), lines.slice(0, 3).map((l) => `${l}\n`).join(''));
    const r = await verifyAudit(dir);
    expect(r.problems.find((p) => p.kind === 'file')?.message).toBe('file is named for seq 2 but starts with seq 1');
  });
});
