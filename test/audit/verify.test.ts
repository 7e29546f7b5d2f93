import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { canonicalize, toJsonValue, type JsonValue } from '../../src/audit/canonical.js';
import { checkpointKeyPath, loadCheckpointKey, signCheckpoint } from '../../src/audit/checkpoint.js';
import { sha256 } from '../../src/audit/record.js';
import type { AuditRecord } from '../../src/audit/types.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { call, lines, openLog, tempState, writeLines } from './helpers.js';

let state: string;
let dir: string;
let file: string;

async function key() {
  return (await loadCheckpointKey(checkpointKeyPath(state))).publicKey;
}

/** Recomputes hash and prev of every record from `from` on, as an attacker with write access but no signing key would. */
function rechain(ls: string[]): string[] {
  let prev = '0'.repeat(64);
  return ls.map((l, i) => {
    const r = JSON.parse(l) as Record<string, unknown>;
    delete r.v;
    delete r.hash;
    r.seq = i + 1;
    r.prev = prev;
    const hash = sha256(canonicalize(r as JsonValue));
    prev = hash;
    return JSON.stringify({ v: 1, ...r, hash });
  });
}

beforeEach(async () => {
  ({ state, dir } = tempState());
  file = join(dir, 'audit.jsonl');
  const log = await openLog(dir, { checkpointEvery: 10 });
  for (let i = 0; i < 40; i++) await log.append(call(i));
  await log.close();
});

describe('gatehouse audit verify catches tampering', () => {
  it('a clean log verifies, with every checkpoint signature checked', async () => {
    const r = await verifyAudit(dir, { publicKey: await key() });
    expect(r.ok).toBe(true);
    expect(r.checkpoints).toBeGreaterThanOrEqual(4);
    expect(r.signaturesChecked).toBe(true);
    expect(r.unsealed).toBe(0);
  });

  it('an edited record: names the file, line and seq', async () => {
    const ls = lines(file);
    ls[6] = (ls[6] as string).replace('"agent":"agent-', '"agent":"mallory-');
    writeLines(file, ls);
    const r = await verifyAudit(dir, { publicKey: await key() });
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ kind: 'edited', file: 'audit.jsonl', line: 7, seq: 7 });
    expect(r.problems).toHaveLength(1);
  });

  it('a removed record: reported as a gap at the next record', async () => {
    const ls = lines(file);
    ls.splice(4, 1);
    writeLines(file, ls);
    const r = await verifyAudit(dir);
    expect(r.problems[0]).toMatchObject({ kind: 'gap', line: 5, seq: 6 });
    expect(r.problems[0]?.message).toContain('5..5');
  });

  it('reordered records', async () => {
    const ls = lines(file);
    [ls[3], ls[4]] = [ls[4] as string, ls[3] as string];
    writeLines(file, ls);
    const r = await verifyAudit(dir);
    expect(r.problems[0]).toMatchObject({ kind: 'reordered', line: 4, seq: 5 });
  });

  it('a record cut off mid-line (truncated file)', async () => {
    const size = readFileSync(file).length;
    truncateSync(file, size - 30);
    const r = await verifyAudit(dir);
    expect(r.problems[0]).toMatchObject({ kind: 'truncated', file: 'audit.jsonl' });
  });

  it('whole records cut off the end: caught with the anchor of an earlier verify', async () => {
    const before = await verifyAudit(dir, { publicKey: await key() });
    const anchor = { seq: before.lastCheckpoint?.seq ?? 0, hash: before.lastCheckpoint?.hash ?? '' };
    const ls = lines(file);
    writeLines(file, ls.slice(0, 25));
    const r = await verifyAudit(dir, { publicKey: await key(), anchor });
    expect(r.problems[0]).toMatchObject({ kind: 'truncated' });
    expect(r.problems[0]?.message).toContain(`anchored seq ${anchor.seq}`);
    // Without an anchor, the records after the last remaining checkpoint are reported unsealed.
    expect((await verifyAudit(dir)).unsealed).toBeGreaterThan(0);
  });

  it('a rewritten chain (edit + all hashes recomputed) is caught by the signed checkpoints', async () => {
    const ls = lines(file);
    ls[2] = (ls[2] as string).replace('"agent":"agent-', '"agent":"mallory-');
    writeLines(file, rechain(ls));
    const r = await verifyAudit(dir, { publicKey: await key() });
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ kind: 'rewritten' });
  });

  it('a forged checkpoint (signed with another key) fails its signature check', async () => {
    const ls = lines(file);
    const last = JSON.parse(ls.at(-1) as string) as AuditRecord;
    const { privateKey } = generateKeyPairSync('ed25519');
    const payload = { seq: last.seq, hash: last.hash, time: new Date().toISOString() };
    const jws = await signCheckpoint({ kid: 'forged', privateKey, publicKey: privateKey, publicJwk: {} }, payload);
    const body = { checkpoint: payload, event: 'audit.checkpoint', jws, kid: 'forged', prev: last.hash, seq: last.seq + 1, time: payload.time };
    const hash = sha256(canonicalize(body as JsonValue));
    appendFileSync(file, JSON.stringify({ v: 1, ...(toJsonValue(body) as object), hash }) + '\n');
    const r = await verifyAudit(dir, { publicKey: await key() });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'signature', seq: last.seq + 1, message: expect.stringContaining('not valid for this key') })]);
  });

  it('a checkpoint whose fields were edited to differ from its JWS', async () => {
    const ls = lines(file);
    const i = ls.findIndex((l) => l.includes('audit.checkpoint'));
    const r0 = JSON.parse(ls[i] as string) as Record<string, unknown>;
    (r0.checkpoint as { seq: number }).seq -= 1;
    ls[i] = JSON.stringify(r0);
    writeLines(file, rechain(ls));
    const r = await verifyAudit(dir, { publicKey: await key() });
    expect(r.problems[0]).toMatchObject({ kind: 'signature', line: i + 1 });
  });

  it('--from skips earlier records (a problem before it is not reported)', async () => {
    const ls = lines(file);
    ls[1] = (ls[1] as string).replace('"agent":"agent-', '"agent":"mallory-');
    writeLines(file, ls);
    expect((await verifyAudit(dir)).ok).toBe(false);
    const r = await verifyAudit(dir, { from: 5 });
    expect(r.problems).toEqual([]);
    expect(r.firstSeq).toBe(5);
  });

  it('reports progress', async () => {
    const seen: number[] = [];
    await verifyAudit(dir, { onProgress: (d) => seen.push(d) });
    expect(seen.length).toBeGreaterThan(0);
  });

  it('an empty line in the middle is malformed', async () => {
    writeFileSync(file, readFileSync(file, 'utf8').replace('\n', '\n\n'));
    const r = await verifyAudit(dir);
    expect(r.problems[0]).toMatchObject({ kind: 'malformed', line: 2 });
  });
});
