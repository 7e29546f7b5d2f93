import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireDuration } from '../../src/config/duration.js';
import { RevocationList, revocationsPath, type RevocationChange } from '../../src/server/revocations.js';
import { DEFAULT_TTL, loadTokenKeys, MAX_TTL_MS, mintToken, TokenVerifier, type TokenKeys } from '../../src/server/tokens.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;
let keys: TokenKeys;
beforeAll(async () => {
  dir = tempDir('gh-revoke-');
  keys = await loadTokenKeys(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fresh = () => {
  const state = mkdtempSync(join(dir, 's-'));
  mkdirSync(join(state, 'keys'), { mode: 0o700 });
  return state;
};

describe('token revocation list', () => {
  it('revoked token: a remembered (cached) token is refused on its next use', async () => {
    const state = fresh();
    const list = new RevocationList(state);
    const v = new TokenVerifier(keys, 1024, list);
    const t = await mintToken(keys, 'coder', 60_000);
    await expect(v.verify(t.token)).resolves.toMatchObject({ agent: 'coder' });
    expect(v.size).toBe(1);
    list.revoke({ jti: t.id });
    await expect(v.verify(t.token)).rejects.toMatchObject({ code: 'AUTH_INVALID', message: expect.stringMatching(/revoked/) });
  });

  it('a revocation written by another process is seen on the next check (no watch delay)', async () => {
    const state = fresh();
    const gateway = new RevocationList(state);
    const v = new TokenVerifier(keys, 1024, gateway);
    const t = await mintToken(keys, 'coder', 60_000);
    await v.verify(t.token);
    new RevocationList(state).revoke({ agent: 'coder' });
    await expect(v.verify(t.token)).rejects.toMatchObject({ message: expect.stringMatching(/every token of agent "coder" issued before/) });
  });

  it('revoke --agent: a token minted the moment after the revocation passes, one minted before does not', async () => {
    const state = fresh();
    const list = new RevocationList(state);
    const v = new TokenVerifier(keys, 1024, list);
    const now = Date.now();
    const before = await mintToken(keys, 'ci', 60_000, now - 1);
    list.revoke({ agent: 'ci' }, now);
    const after = await mintToken(keys, 'ci', 60_000, now + 1);
    await expect(v.verify(before.token)).rejects.toMatchObject({ code: 'AUTH_INVALID' });
    await expect(v.verify(after.token)).resolves.toMatchObject({ agent: 'ci' });
  });

  it('the file is written whole and private: 0600, strict JSON, one entry per jti', () => {
    const state = fresh();
    const list = new RevocationList(state);
    list.revoke({ jti: 'a-1' });
    list.revoke({ jti: 'a-1' });
    list.revoke({ agent: 'bob' });
    const file = revocationsPath(state);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const j = JSON.parse(readFileSync(file, 'utf8')) as { version: number; tokens: unknown[]; agents: unknown[] };
    expect(j).toMatchObject({ version: 1, tokens: [{ jti: 'a-1' }], agents: [{ agent: 'bob' }] });
  });

  it.each([
    ['not JSON', '{"version":1,'],
    ['an unknown key (a misspelt field is not silently dropped)', '{"version":1,"tokens":[],"agents":[],"agnets":[]}'],
    ['a wrong version', '{"version":2,"tokens":[],"agents":[]}'],
    ['a bad date', '{"version":1,"tokens":[{"jti":"x","revokedAt":"yesterday"}],"agents":[]}'],
    ['an empty file', ''],
  ])('corrupt revocation file (%s): every token is refused with a clear reason, and a revoke refuses to overwrite it', async (_what, text) => {
    const state = fresh();
    const events: RevocationChange[] = [];
    const list = new RevocationList(state, { onChange: (e) => events.push(e) });
    const v = new TokenVerifier(keys, 1024, list);
    const t = await mintToken(keys, 'coder', 60_000);
    await v.verify(t.token);
    writeFileSync(revocationsPath(state), text);
    await expect(v.verify(t.token)).rejects.toMatchObject({ code: 'AUTH_INVALID', message: expect.stringMatching(/revocation list cannot be read, so every token is refused.*Repair/) });
    const fresh2 = await mintToken(keys, 'other', 60_000);
    await expect(v.verify(fresh2.token)).rejects.toMatchObject({ code: 'AUTH_INVALID' });
    expect(events).toMatchObject([{ ok: false }]);
    // Checking again does not report it again.
    await v.verify(t.token).catch(() => undefined);
    expect(events).toHaveLength(1);
    expect(() => list.revoke({ jti: 'x' })).toThrow(/invalid, nothing was revoked/);
    expect(readFileSync(revocationsPath(state), 'utf8')).toBe(text);
  });

  it('a corrupt file at start-up is refused from the first request', async () => {
    const state = fresh();
    new RevocationList(state).revoke({ jti: 'x' });
    writeFileSync(revocationsPath(state), 'garbage');
    const events: RevocationChange[] = [];
    const v = new TokenVerifier(keys, 1024, new RevocationList(state, { onChange: (e) => events.push(e) }));
    await expect(v.verify((await mintToken(keys, 'a', 60_000)).token)).rejects.toMatchObject({ code: 'AUTH_INVALID' });
    expect(events).toMatchObject([{ ok: false }]);
  });

  it('old revocations are pruned once every token they could match has expired', () => {
    const state = fresh();
    const list = new RevocationList(state);
    const long = Date.now() - MAX_TTL_MS - 3_600_000;
    list.revoke({ jti: 'ancient' }, long);
    list.revoke({ jti: 'recent' });
    const j = JSON.parse(readFileSync(revocationsPath(state), 'utf8')) as { tokens: Array<{ jti: string }> };
    expect(j.tokens.map((x) => x.jti)).toEqual(['recent']);
  });
});

describe('token lifetime', () => {
  it('the default lifetime is at most 24 hours, the longest 30 days', async () => {
    expect(requireDuration(DEFAULT_TTL, '--ttl')).toBeLessThanOrEqual(24 * 3_600_000);
    expect(MAX_TTL_MS).toBe(30 * 86_400_000);
    await expect(mintToken(keys, 'a', 31 * 86_400_000)).rejects.toMatchObject({ code: 'USAGE', message: expect.stringMatching(/30d/) });
  });
});
