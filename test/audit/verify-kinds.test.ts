/**
 * Every kind of problem `verifyAudit` reports, each made by an attacker's
 * edit of a real log written by the real writer, with the exact kind, file,
 * line and seq the verifier must name.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, renameSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalize, toJsonValue, type JsonValue } from '../../src/audit/canonical.js';
import { checkpointKeyPath, loadCheckpointKey, signCheckpoint } from '../../src/audit/checkpoint.js';
import { listAuditFiles, rotatedName } from '../../src/audit/files.js';
import { sha256 } from '../../src/audit/record.js';
import { verifyAudit, type VerifyProblem } from '../../src/audit/verify.js';
import { call, lines, openLog, tempState, writeLines } from './helpers.js';

const ZERO = '0'.repeat(64);
type Rec = Record<string, unknown> & { seq: number; prev: string; hash: string; event: string };

const parse = (l: string) => JSON.parse(l) as Rec;

/** The line for `r` with its own hash recomputed (what an attacker without the signing key can do). */
function seal(r: Record<string, unknown>): string {
  const body = { ...r };
  delete body.v;
  delete body.hash;
  const hash = sha256(canonicalize(body as JsonValue));
  // In the writer's form (keys in canonical order): anything else is reported as re-encoded before any other check.
  return JSON.stringify({ v: 1, ...(toJsonValue(body) as object), hash });
}

/**
 * Renumbers and re-links records from index `from` on, as an attacker would
 * after removing or inserting one; `keepFirstPrev` leaves the first re-sealed
 * record's `prev` as it was (the one link the attacker forgot).
 */
function relink(ls: string[], from: number, keepFirstPrev: boolean): string[] {
  const out = ls.slice(0, from);
  let prev = from === 0 ? ZERO : parse(out[from - 1] as string).hash;
  let seq = from === 0 ? 1 : parse(out[from - 1] as string).seq + 1;
  for (const [i, l] of ls.slice(from).entries()) {
    const r = parse(l);
    r.seq = seq++;
    if (!(keepFirstPrev && i === 0)) r.prev = prev;
    const line = seal(r);
    prev = parse(line).hash;
    out.push(line);
  }
  return out;
}

/** The log's files (at least `n`: rotation happened), each with its first seq. */
function filesOf(dir: string, n: number): { path: string; name: string; firstSeq: number; size: number }[] {
  const files = listAuditFiles(dir);
  expect(files.length).toBeGreaterThanOrEqual(n);
  return files.map((f) => ({ path: f.path, name: f.name, firstSeq: f.firstSeq ?? Number.NaN, size: f.size }));
}

function nth<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`no item ${i}`);
  return x;
}

/** Only the fields a test pins down. */
const where = (ps: VerifyProblem[]) => ps.map((p) => ({ kind: p.kind, file: p.file, line: p.line, ...(p.seq !== undefined ? { seq: p.seq } : {}) }));

/** A log of `n` calls; `checkpointEvery` 0 means none but the one close writes, which is stripped (so a re-linked chain has no signed hash to contradict). */
async function writeLog(n: number, checkpointEvery: number, maxFileBytes?: number) {
  const { state, dir } = tempState();
  const log = await openLog(dir, { checkpointEvery: checkpointEvery || 1_000_000, ...(maxFileBytes ? { maxFileBytes } : {}) });
  for (let i = 0; i < n; i++) await log.append(call(i));
  await log.close();
  const file = join(dir, 'audit.jsonl');
  if (checkpointEvery === 0) {
    const ls = lines(file);
    expect(parse(ls.at(-1) as string).event).toBe('audit.checkpoint');
    writeLines(file, ls.slice(0, -1));
  }
  const publicKey = (await loadCheckpointKey(checkpointKeyPath(state))).publicKey;
  expect((await verifyAudit(dir, { publicKey })).problems).toEqual([]);
  return { state, dir, file, publicKey };
}

describe('audit verify names every kind of tampering (kind, file, line, seq)', () => {
  it('chain: a record removed and the rest renumbered and re-hashed (its successor still links to it)', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file);
    ls.splice(4, 1);
    writeLines(file, relink(ls, 4, true));
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([{ kind: 'chain', file: 'audit.jsonl', line: 5, seq: 5 }]);
    expect(r.problems[0]?.message).toContain('prev does not match the hash of seq 4');
  });

  it('chain: a forged record inserted with the next seq, the rest renumbered and re-hashed', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file);
    const before = parse(ls[9] as string);
    const forged = seal({ ...parse(ls[10] as string), seq: before.seq + 1, prev: before.hash, agent: 'mallory', decision: 'allow' });
    ls.splice(10, 0, forged);
    // The attacker re-links everything after the forged record but the first (whose prev still names the old seq 10).
    writeLines(file, relink(ls, 11, true));
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([{ kind: 'chain', file: 'audit.jsonl', line: 12, seq: 12 }]);
  });

  it('chain: the first record does not start from the all-zero prev (older records cut and the rest renumbered from 1)', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file).slice(3);
    writeLines(file, relink(ls, 0, true));
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([{ kind: 'chain', file: 'audit.jsonl', line: 1, seq: 1 }]);
    expect(r.problems[0]?.message).toContain('prev = 64 zeros');
  });

  it('--from: a chain break after the starting seq is still reported; the records before it are read, not judged', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file);
    ls[2] = (ls[2] as string).replace('"agent":"agent-', '"agent":"mallory-');
    ls.splice(11, 1);
    writeLines(file, relink(ls, 11, true));
    const r = await verifyAudit(dir, { from: 5 });
    expect(r.firstSeq).toBe(5);
    expect(where(r.problems)).toEqual([{ kind: 'chain', file: 'audit.jsonl', line: 12, seq: 12 }]);
    expect(where((await verifyAudit(dir)).problems)).toEqual([
      { kind: 'edited', file: 'audit.jsonl', line: 3, seq: 3 },
      { kind: 'chain', file: 'audit.jsonl', line: 12, seq: 12 },
    ]);
  });

  it('edited: one field of one record changed, nothing else', async () => {
    const { dir, file, publicKey } = await writeLog(40, 10);
    const ls = lines(file);
    ls[6] = (ls[6] as string).replace('"decision":"allow"', '"decision":"deny"');
    expect(ls[6]).toContain('"decision":"deny"');
    writeLines(file, ls);
    const r = await verifyAudit(dir, { publicKey });
    expect(where(r.problems)).toEqual([{ kind: 'edited', file: 'audit.jsonl', line: 7, seq: 7 }]);
  });

  it('edited: a record\'s hash field replaced by the hash of its edited content is still a broken link for its successor', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file);
    ls[6] = seal({ ...parse(ls[6] as string), agent: 'mallory' });
    writeLines(file, ls);
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([{ kind: 'chain', file: 'audit.jsonl', line: 8, seq: 8 }]);
  });

  it('malformed: a line that is not a record, in place of one', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file);
    ls[6] = '{"v":1,"seq":7,"note":"not a record"}';
    writeLines(file, ls);
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([
      { kind: 'malformed', file: 'audit.jsonl', line: 7 },
      { kind: 'gap', file: 'audit.jsonl', line: 8, seq: 8 },
    ]);
  });

  it('gap: a record removed (not renumbered)', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file);
    ls.splice(4, 2);
    writeLines(file, ls);
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([{ kind: 'gap', file: 'audit.jsonl', line: 5, seq: 7 }]);
    expect(r.problems[0]?.message).toContain('records 5..6 are missing');
  });

  it('gap: the last record but one removed (the gap is found when the log ends)', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file);
    ls.splice(18, 1);
    writeLines(file, ls);
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([{ kind: 'gap', file: 'audit.jsonl', line: 19, seq: 20 }]);
  });

  it('reordered: two neighbours swapped', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file);
    [ls[3], ls[4]] = [ls[4] as string, ls[3] as string];
    writeLines(file, ls);
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([
      { kind: 'reordered', file: 'audit.jsonl', line: 4, seq: 5 },
      { kind: 'reordered', file: 'audit.jsonl', line: 5, seq: 4 },
    ]);
  });

  it('reordered: a record moved further down', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file);
    const [moved] = ls.splice(3, 1);
    ls.splice(8, 0, moved as string);
    writeLines(file, ls);
    const r = await verifyAudit(dir);
    expect(r.problems.map((p) => p.kind)).toEqual(['gap', 'reordered']);
    expect(where(r.problems)[1]).toEqual({ kind: 'reordered', file: 'audit.jsonl', line: 9, seq: 4 });
  });

  it('duplicate: a record replayed', async () => {
    const { dir, file } = await writeLog(20, 0);
    const ls = lines(file);
    ls.splice(9, 0, ls[5] as string);
    writeLines(file, ls);
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([{ kind: 'duplicate', file: 'audit.jsonl', line: 10, seq: 6 }]);
  });

  it('truncated: the last line cut off mid-record', async () => {
    const { dir, file } = await writeLog(20, 0);
    const n = lines(file).length;
    truncateSync(file, readFileSync(file).length - 30);
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([{ kind: 'truncated', file: 'audit.jsonl', line: n }]);
    expect(r.problems[0]?.message).toContain('the last line is cut off');
  });

  it('truncated: whole records cut off the end, caught with the anchor of an earlier verify', async () => {
    const { dir, file, publicKey } = await writeLog(40, 10);
    const earlier = await verifyAudit(dir, { publicKey });
    const at = { seq: earlier.lastSeq ?? 0, hash: earlier.lastHash ?? '' };
    writeLines(file, lines(file).slice(0, 30));
    const r = await verifyAudit(dir, { publicKey, anchor: at });
    expect(where(r.problems)).toEqual([{ kind: 'truncated', file: 'audit.jsonl', line: 0 }]);
    expect(r.problems[0]?.message).toContain(`before the anchored seq ${at.seq}`);
  });

  it('rotation: a line cut off at the end of a rotated file', async () => {
    const { dir } = await writeLog(200, 0, 8 * 1024);
    const files = filesOf(dir, 3);
    const victim = nth(files, 1);
    const n = lines(victim.path).length;
    truncateSync(victim.path, victim.size - 10);
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([
      { kind: 'truncated', file: victim.name, line: n },
      // The cut record is missing from the chain too.
      { kind: 'gap', file: nth(files, 2).name, line: 1, seq: nth(files, 2).firstSeq },
    ]);
    expect(r.problems[0]?.message).toContain('a line at the end of a rotated file');
  });

  it('rotation: a file removed from the middle is a gap at the first record of the next file', async () => {
    const { dir } = await writeLog(200, 0, 8 * 1024);
    const files = filesOf(dir, 4);
    const [victim, next] = [nth(files, 1), nth(files, 2)];
    unlinkSync(victim.path);
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([{ kind: 'gap', file: next.name, line: 1, seq: next.firstSeq }]);
    expect(r.problems[0]?.message).toContain(`records ${victim.firstSeq}..${next.firstSeq - 1} are missing`);
  });

  it('start: the first file removed, with no audit.retention record accounting for it', async () => {
    const { dir } = await writeLog(200, 0, 8 * 1024);
    const files = filesOf(dir, 3);
    const [first, second] = [nth(files, 0), nth(files, 1)];
    unlinkSync(first.path);
    const r = await verifyAudit(dir);
    expect(where(r.problems)).toEqual([{ kind: 'start', file: second.name, line: 1, seq: second.firstSeq }]);
  });

  it('file: a rotated file renamed to sit elsewhere in the chain', async () => {
    const { dir } = await writeLog(200, 0, 8 * 1024);
    const victim = nth(filesOf(dir, 3), 1);
    const fake = rotatedName(victim.firstSeq + 1);
    renameSync(victim.path, join(dir, fake));
    const r = await verifyAudit(dir);
    // The records are still in order, so the name is the only thing wrong.
    expect(where(r.problems)).toEqual([{ kind: 'file', file: fake, line: 1, seq: victim.firstSeq }]);
  });

  it('signature: a checkpoint signed with another key', async () => {
    const { dir, file, publicKey } = await writeLog(20, 0);
    const last = parse(lines(file).at(-1) as string);
    const { privateKey } = generateKeyPairSync('ed25519');
    const payload = { seq: last.seq, hash: last.hash, time: new Date().toISOString() };
    const jws = await signCheckpoint({ kid: 'k', privateKey, publicKey: privateKey, publicJwk: {} }, payload);
    writeFileSync(file, seal({ event: 'audit.checkpoint', checkpoint: payload, jws, kid: 'k', prev: last.hash, seq: last.seq + 1, time: payload.time }) + '\n', { flag: 'a' });
    const r = await verifyAudit(dir, { publicKey });
    expect(where(r.problems)).toEqual([{ kind: 'signature', file: 'audit.jsonl', line: 21, seq: 21 }]);
    expect(r.problems[0]?.message).toBe('checkpoint signature is not valid for this key');
    // The same log, checked with the forger's key, is clean: the key is what is checked.
    expect((await verifyAudit(dir, { publicKey: generateKeyPairSync('ed25519').publicKey })).problems.map((p) => p.kind)).toEqual(['signature']);
  });

  it('signature: a real checkpoint\'s JWS payload replaced (forged without the key) to cover a rewritten chain', async () => {
    const { dir, file, publicKey } = await writeLog(40, 10);
    const ls = lines(file);
    const i = ls.findIndex((l) => l.includes('"event":"audit.checkpoint"'));
    const cp = parse(ls[i] as string);
    const named = parse(ls[(cp.checkpoint as { seq: number }).seq - 1] as string);
    // The attacker edits the named record, re-hashes it, and puts the new hash into the checkpoint's JWS payload.
    const edited = parse(seal({ ...named, agent: 'mallory' }));
    const [h, , s] = String(cp.jws).split('.');
    const payload = { ...(cp.checkpoint as object), hash: edited.hash };
    const forgedJws = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    ls[named.seq - 1] = seal(edited);
    ls[i] = JSON.stringify({ ...cp, checkpoint: payload, jws: forgedJws });
    writeLines(file, relink(ls, named.seq, false));
    const r = await verifyAudit(dir, { publicKey });
    expect(where(r.problems)[0]).toEqual({ kind: 'signature', file: 'audit.jsonl', line: i + 1, seq: i + 1 });
    expect(r.problems[0]?.message).toBe('checkpoint signature is not valid for this key');
  });

  it('signature: a checkpoint whose fields differ from what its JWS signs', async () => {
    const { dir, file, publicKey } = await writeLog(40, 10);
    const ls = lines(file);
    const i = ls.findIndex((l) => l.includes('"event":"audit.checkpoint"'));
    const cp = parse(ls[i] as string);
    ls[i] = seal({ ...cp, checkpoint: { ...(cp.checkpoint as object), seq: 3 } });
    writeLines(file, relink(ls, i + 1, false));
    const r = await verifyAudit(dir, { publicKey });
    expect(where(r.problems)).toContainEqual({ kind: 'signature', file: 'audit.jsonl', line: i + 1, seq: i + 1 });
    expect(r.problems[0]).toMatchObject({ kind: 'signature', line: i + 1, message: 'checkpoint fields differ from what its JWS signs' });
  });

  it('signature: a checkpoint with a JWS that is not one', async () => {
    const { dir, file, publicKey } = await writeLog(20, 0);
    const last = parse(lines(file).at(-1) as string);
    const payload = { seq: last.seq, hash: last.hash, time: new Date().toISOString() };
    writeFileSync(file, seal({ event: 'audit.checkpoint', checkpoint: payload, jws: 'garbage', prev: last.hash, seq: last.seq + 1, time: payload.time }) + '\n', { flag: 'a' });
    const r = await verifyAudit(dir, { publicKey });
    expect(where(r.problems)).toEqual([{ kind: 'signature', file: 'audit.jsonl', line: 21, seq: 21 }]);
    expect(r.problems[0]?.message).toBe('checkpoint JWS is malformed');
  });

  it('signature: a checkpoint (validly signed) that names itself rather than a record before it', async () => {
    const { state, dir, file, publicKey } = await writeLog(20, 0);
    const last = parse(lines(file).at(-1) as string);
    const key = await loadCheckpointKey(checkpointKeyPath(state));
    const payload = { seq: last.seq + 1, hash: last.hash, time: new Date().toISOString() };
    const jws = await signCheckpoint(key, payload);
    writeFileSync(file, seal({ event: 'audit.checkpoint', checkpoint: payload, jws, kid: key.kid, prev: last.hash, seq: last.seq + 1, time: payload.time }) + '\n', { flag: 'a' });
    const r = await verifyAudit(dir, { publicKey });
    expect(where(r.problems)).toEqual([{ kind: 'signature', file: 'audit.jsonl', line: 21, seq: 21 }]);
    expect(r.problems[0]?.message).toBe('checkpoint names seq 21, which is not before it');
  });

  it('rewritten: one record edited and every hash after it recomputed: the signed checkpoint still names the old hash', async () => {
    const { dir, file, publicKey } = await writeLog(40, 10);
    const ls = lines(file);
    ls[2] = seal({ ...parse(ls[2] as string), agent: 'mallory' });
    writeLines(file, relink(ls, 3, false));
    const r = await verifyAudit(dir, { publicKey });
    const i = ls.findIndex((l) => l.includes('"event":"audit.checkpoint"'));
    expect(where(r.problems)[0]).toEqual({ kind: 'rewritten', file: 'audit.jsonl', line: i + 1, seq: i + 1 });
    expect(r.problems.every((p) => p.kind === 'rewritten')).toBe(true);
  });

  it('missing checkpoints: all removed and the chain re-linked: clean without an anchor (all unsealed), caught with one', async () => {
    const { dir, file, publicKey } = await writeLog(40, 10);
    const cps = lines(file).map(parse).filter((r) => r.event === 'audit.checkpoint');
    expect(cps.length).toBeGreaterThanOrEqual(3);
    const last = cps.at(-1)?.checkpoint as { seq: number; hash: string };
    const second = cps[1]?.checkpoint as { seq: number; hash: string };
    const kept = lines(file).filter((l) => !l.includes('"event":"audit.checkpoint"'));
    writeLines(file, relink(kept, 0, false));
    const bare = await verifyAudit(dir, { publicKey });
    // Nothing in the log itself can tell: the report says nothing is sealed.
    expect(bare).toMatchObject({ ok: true, checkpoints: 0, unsealed: 40, lastCheckpoint: undefined });
    // The last checkpoint seen before: the log now ends before the seq it named.
    const r = await verifyAudit(dir, { publicKey, anchor: { seq: last.seq, hash: last.hash } });
    expect(where(r.problems)).toEqual([{ kind: 'truncated', file: 'audit.jsonl', line: 0 }]);
    // An earlier one: the seq it named now holds another record.
    const r2 = await verifyAudit(dir, { publicKey, anchor: { seq: second.seq, hash: second.hash } });
    expect(where(r2.problems)).toEqual([{ kind: 'rewritten', file: 'audit.jsonl', line: second.seq, seq: second.seq }]);
  });

  it('rewritten: the record a checkpoint names removed (not renumbered): a gap, and the checkpoint names a seq not in the log', async () => {
    const { dir, file, publicKey } = await writeLog(40, 10);
    const ls = lines(file);
    const i = ls.findIndex((l) => l.includes('"event":"audit.checkpoint"'));
    const named = (parse(ls[i] as string).checkpoint as { seq: number }).seq;
    ls.splice(named - 1, 1);
    writeLines(file, ls);
    const r = await verifyAudit(dir, { publicKey });
    // (The writer signs asynchronously: the checkpoint may land a record or two after the one it names.)
    const found = where(r.problems);
    expect(found).toHaveLength(2);
    expect(found).toContainEqual({ kind: 'gap', file: 'audit.jsonl', line: named, seq: named + 1 });
    expect(found).toContainEqual({ kind: 'rewritten', file: 'audit.jsonl', line: i, seq: i + 1 });
    expect(r.problems.find((p) => p.kind === 'rewritten')?.message).toContain(`names seq ${named}, which is not in the log`);
  });
});
