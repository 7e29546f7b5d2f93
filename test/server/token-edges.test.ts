/**
 * Edges of agent tokens, the revocation list and the Host/Origin guards that
 * mutation testing (npm run test:mutation) found unguarded. Set-up is done
 * inside each test, not in beforeAll: a break that makes set-up throw must
 * fail a test, not skip the file.
 */
import { mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireDuration } from '../../src/config/duration.js';
import { allowedOrigins, checkOrigin } from '../../src/server/guards.js';
import { RevocationList, revocationsPath, type RevocationChange } from '../../src/server/revocations.js';
import { ADMIN_SCOPE, CLOCK_TOLERANCE_S, MAX_TOKEN_LENGTH, MAX_TTL_MS, loadTokenKeys, mintToken, verifyToken } from '../../src/server/tokens.js';
import { signClaims, validClaims } from '../helpers/tokens.js';
import { tempDir } from '../helpers/tmp.js';

const fresh = () => tempDir('gh-tok-');
const fileOf = (state: string) => JSON.parse(readFileSync(revocationsPath(state), 'utf8')) as { version: number; tokens: { jti: string; revokedAt: string }[]; agents: { agent: string; revokedAt: string }[] };


const ttl = (s: string) => requireDuration(s, '--ttl');
describe('the token signing key', () => {
  it('is an Ed25519 key in <state>/keys/agent-tokens.json (0600, folder 0700), created with missing parent folders', async () => {
    const state = join(fresh(), 'not', 'yet');
    const keys = await loadTokenKeys(state);
    const file = join(state, 'keys', 'agent-tokens.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, 'keys')).mode & 0o777).toBe(0o700);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { kid: string; privateJwk: { kty: string; crv: string; d?: string }; publicJwk: { crv: string; d?: string } };
    expect(stored.kid).toMatch(/^[0-9a-f]{16}$/);
    expect(stored.kid).toBe(keys.kid);
    expect(stored.privateJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    expect(typeof stored.privateJwk.d).toBe('string');
    expect(stored.publicJwk.d).toBeUndefined();
    const t = await mintToken(keys, 'alice', 60_000);
    expect(JSON.parse(Buffer.from(t.token.split('.')[0] ?? '', 'base64url').toString())).toEqual({ alg: 'EdDSA', kid: keys.kid, typ: 'at+jwt' });
    expect(JSON.parse(Buffer.from(t.token.split('.')[1] ?? '', 'base64url').toString())).toMatchObject({ iss: 'gatehouse', sub: 'alice', aud: keys.audience });
  });

  it('an unreadable key file is refused with how to fix it (not silently replaced: that would void every token)', async () => {
    const state = fresh();
    mkdirSync(join(state, 'keys'));
    writeFileSync(join(state, 'keys', 'agent-tokens.json'), '{not json');
    await expect(loadTokenKeys(state)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('cannot read the token key') });
    expect(readFileSync(join(state, 'keys', 'agent-tokens.json'), 'utf8')).toBe('{not json');
  });
});

describe('minting and verifying', () => {
  it('admin scope: only a token minted as admin (or whose scope list holds the exact scope) is admin', async () => {
    const keys = await loadTokenKeys(fresh());
    expect(ADMIN_SCOPE).toBe('gatehouse:admin');
    expect((await verifyToken(keys, (await mintToken(keys, 'ops', 60_000, Date.now(), { admin: true })).token)).admin).toBe(true);
    expect((await verifyToken(keys, (await mintToken(keys, 'ops', 60_000)).token)).admin).toBe(false);
    expect((await verifyToken(keys, await signClaims(keys, { ...validClaims(keys, 'ops'), scope: 'read gatehouse:admin' }))).admin).toBe(true);
    expect((await verifyToken(keys, await signClaims(keys, { ...validClaims(keys, 'ops'), scope: 'gatehouse:admin2' }))).admin).toBe(false);
    expect((await verifyToken(keys, await signClaims(keys, { ...validClaims(keys, 'ops'), scope: ['gatehouse:admin'] }))).admin).toBe(false);
  });

  it('the longest lifetime (30 days) can be minted; the invalid agent message says what a name may hold', async () => {
    const keys = await loadTokenKeys(fresh());
    const now = Date.now();
    const t = await mintToken(keys, 'a', MAX_TTL_MS, now);
    expect(t.expiresAt.getTime()).toBe(Math.floor((now + MAX_TTL_MS) / 1000) * 1000);
    await expect(mintToken(keys, 'a b', 60_000)).rejects.toMatchObject({ code: 'USAGE', message: 'invalid agent name "a b": use 1-64 letters, digits, \'.\', \'_\', \'@\' or \'-\'' });
  });

  it('a token of exactly the maximum length is parsed (and refused as malformed), one character more is refused unparsed', async () => {
    const keys = await loadTokenKeys(fresh());
    await expect(verifyToken(keys, 'x'.repeat(MAX_TOKEN_LENGTH))).rejects.toMatchObject({ message: 'token is malformed' });
    await expect(verifyToken(keys, 'x'.repeat(MAX_TOKEN_LENGTH + 1))).rejects.toMatchObject({ message: 'token is too long' });
  });

  it('a token as old as the longest lifetime plus the clock skew (minus a little) is accepted', async () => {
    const keys = await loadTokenKeys(fresh());
    const nowS = Math.floor(Date.now() / 1000);
    const old = { ...validClaims(keys, 'a', nowS), iat: nowS - MAX_TTL_MS / 1000 - CLOCK_TOLERANCE_S + 10, nbf: nowS - MAX_TTL_MS / 1000 - 20, exp: nowS + 60 };
    expect((await verifyToken(keys, await signClaims(keys, old))).agent).toBe('a');
  });

  it('--ttl trims spaces, refuses trailing garbage with a USAGE error that shows the forms', () => {
    expect(ttl(' 8h ')).toBe(8 * 3_600_000);
    expect(() => ttl('8hx')).toThrow(expect.objectContaining({ code: 'USAGE', message: '--ttl: invalid duration "8hx"; use a duration like 250ms, 30s, 5m, 1h30m or 7d' }));
  });
});

describe('the revocation list', () => {
  it('a fresh list written by the first revoke holds exactly that entry, and ends with a newline', () => {
    const state = fresh();
    new RevocationList(state).revoke({ jti: 'only' }, Date.parse('2030-01-01T00:00:00Z'));
    expect(fileOf(state)).toEqual({ version: 1, tokens: [{ jti: 'only', revokedAt: '2030-01-01T00:00:00.000Z' }], agents: [] });
    expect(readFileSync(revocationsPath(state), 'utf8').endsWith('}\n')).toBe(true);
  });

  it('a list of exactly 8 MiB is still read', () => {
    const state = fresh();
    mkdirSync(join(state, 'keys'));
    const text = JSON.stringify({ version: 1, tokens: [{ jti: 'j', revokedAt: '2030-01-01T00:00:00Z' }], agents: [] });
    writeFileSync(revocationsPath(state), text.padEnd(8 * 1024 * 1024, ' '));
    expect(new RevocationList(state).check({ agent: 'a', tokenId: 'j', issuedAt: new Date() })).toMatch(/token has been revoked/);
  });

  it('a broken list rewritten by another process, broken the same way, is not reported again', () => {
    const state = fresh();
    mkdirSync(join(state, 'keys'));
    const file = revocationsPath(state);
    writeFileSync(file, 'garbage');
    const events: RevocationChange[] = [];
    const list = new RevocationList(state, { onChange: (e) => events.push(e) });
    expect(events).toMatchObject([{ ok: false }]);
    writeFileSync(file, 'garbage');
    utimesSync(file, new Date(Date.now() + 5000), new Date(Date.now() + 5000));
    expect(list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() })).toMatch(/cannot be read/);
    expect(events).toHaveLength(1);
  });

  it('revoking a second and a third token keeps every one (and the same one twice is listed once)', () => {
    const state = fresh();
    const list = new RevocationList(state);
    for (const jti of ['t-1', 't-2', 't-3', 't-2']) list.revoke({ jti });
    expect(fileOf(state).tokens.map((t) => t.jti)).toEqual(['t-1', 't-2', 't-3']);
    for (const jti of ['t-1', 't-2', 't-3']) expect(list.check({ agent: 'a', tokenId: jti, issuedAt: new Date() })).toMatch(/token has been revoked/);
    expect(list.check({ agent: 'a', tokenId: 't-4', issuedAt: new Date() })).toBeUndefined();
  });

  it('revoking an agent again moves its time forward (one entry per agent)', () => {
    const state = fresh();
    const list = new RevocationList(state);
    const t0 = Date.now() - 60_000;
    list.revoke({ agent: 'bob' }, t0);
    list.revoke({ agent: 'carol' }, t0);
    list.revoke({ agent: 'bob' }, t0 + 30_000);
    expect(fileOf(state).agents).toEqual([
      { agent: 'carol', revokedAt: new Date(t0).toISOString() },
      { agent: 'bob', revokedAt: new Date(t0 + 30_000).toISOString() },
    ]);
    expect(list.check({ agent: 'bob', tokenId: 'x', issuedAt: new Date(t0 + 10_000) })).toMatch(/every token of agent "bob" issued before/);
  });

  it('an agent revocation refuses tokens issued before it, not one issued in the same millisecond', () => {
    const state = fresh();
    const list = new RevocationList(state);
    const at = Date.now() - 1000;
    list.revoke({ agent: 'bob' }, at);
    expect(list.check({ agent: 'bob', tokenId: 'x', issuedAt: new Date(at - 1) })).toBe(
      `every token of agent "bob" issued before ${new Date(at).toISOString()} has been revoked; mint a new one with: gatehouse token mint --agent bob`,
    );
    expect(list.check({ agent: 'bob', tokenId: 'x', issuedAt: new Date(at) })).toBeUndefined();
    expect(list.check({ agent: 'alice', tokenId: 'x', issuedAt: new Date(at - 1) })).toBeUndefined();
  });

  it('invalid ids and names are refused (USAGE) and nothing is written', () => {
    const state = fresh();
    const list = new RevocationList(state);
    expect(() => list.revoke({ jti: 'has space' })).toThrow(expect.objectContaining({ code: 'USAGE', message: 'invalid token id "has space": the jti printed by gatehouse token mint (a UUID)' }));
    expect(() => list.revoke({ jti: 'x'.repeat(129) })).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => list.revoke({ agent: '-bad' })).toThrow(expect.objectContaining({ code: 'USAGE', message: expect.stringContaining('invalid agent name "-bad"') }));
    expect(() => statSync(revocationsPath(state))).toThrow();
  });

  it('pruning keeps a revocation exactly as old as the longest token lifetime plus the clock skew, drops one a millisecond older', () => {
    const state = fresh();
    const list = new RevocationList(state);
    const now = Date.now();
    const edge = now - MAX_TTL_MS - CLOCK_TOLERANCE_S * 1000;
    list.revoke({ jti: 'edge' }, edge);
    list.revoke({ jti: 'older' }, edge - 1);
    list.revoke({ jti: 'new' }, now);
    expect(fileOf(state).tokens.map((t) => t.jti)).toEqual(['edge', 'new']);
  });

  it('dates with an offset are read (an admin may edit the file by hand)', () => {
    const state = fresh();
    mkdirSync(join(state, 'keys'));
    writeFileSync(revocationsPath(state), JSON.stringify({ version: 1, tokens: [{ jti: 'j', revokedAt: '2030-01-01T02:00:00+02:00' }], agents: [] }));
    expect(new RevocationList(state).check({ agent: 'a', tokenId: 'j', issuedAt: new Date() })).toMatch(/token has been revoked/);
  });

  it('says where a file is wrong: not JSON, or the path of the bad field ("(top level)" for the whole)', () => {
    const state = fresh();
    mkdirSync(join(state, 'keys'));
    const file = revocationsPath(state);
    writeFileSync(file, '{');
    const list = new RevocationList(state);
    expect(list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() })).toMatch(new RegExp(`${file} is not valid JSON \\(`));
    writeFileSync(file, JSON.stringify({ version: 1, tokens: [{ jti: 'bad id', revokedAt: '2030-01-01T00:00:00Z' }], agents: [] }));
    expect(list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() })).toMatch(new RegExp(`${file}: tokens\\[0\\]\\.jti: `));
    writeFileSync(file, '[]  ');
    expect(list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() })).toMatch(new RegExp(`${file}: \\(top level\\): `));
    writeFileSync(file, JSON.stringify({ version: 2, tokens: 1, agents: [] }));
    expect(list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() })).toMatch(/version: .*; tokens: /);
  });

  it('a list that is a directory, or larger than 8 MiB, refuses every token', () => {
    const state = fresh();
    mkdirSync(revocationsPath(state), { recursive: true });
    const list = new RevocationList(state);
    expect(list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() })).toMatch(/is not a regular file/);
    const big = fresh();
    mkdirSync(join(big, 'keys'));
    writeFileSync(revocationsPath(big), ' '.repeat(8 * 1024 * 1024 + 1));
    expect(new RevocationList(big).check({ agent: 'a', tokenId: 'x', issuedAt: new Date() })).toMatch(/is larger than 8388608 bytes/);
  });

  it('a keys "folder" that is a file: every token is refused (cannot stat), reported once; revoke refuses to write (CONFIG_INVALID)', () => {
    const state = fresh();
    writeFileSync(join(state, 'keys'), 'not a folder');
    const events: RevocationChange[] = [];
    const list = new RevocationList(state, { onChange: (e) => events.push(e) });
    const reason = list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() });
    expect(reason).toMatch(/cannot stat it \(ENOTDIR\)/);
    list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() });
    expect(events).toEqual([{ ok: false, error: reason, tokens: 0, agents: 0 }]);
    expect(() => list.revoke({ jti: 'x' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('cannot read the token revocation list') }));
  });

  it('an invalid list makes revoke refuse with CONFIG_INVALID', () => {
    const state = fresh();
    mkdirSync(join(state, 'keys'));
    writeFileSync(revocationsPath(state), 'garbage');
    expect(() => new RevocationList(state).revoke({ jti: 'x' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('reports changes made by another process: repaired (ok, with counts), broken again with another reason', () => {
    const state = fresh();
    mkdirSync(join(state, 'keys'));
    const file = revocationsPath(state);
    const events: RevocationChange[] = [];
    const list = new RevocationList(state, { onChange: (e) => events.push(e) });
    expect(events).toEqual([]);
    new RevocationList(state).revoke({ jti: 'j1' });
    list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() });
    expect(events).toEqual([{ ok: true, tokens: 1, agents: 0 }]);
    writeFileSync(file, 'bad');
    list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() });
    writeFileSync(file, 'worse!');
    list.check({ agent: 'a', tokenId: 'x', issuedAt: new Date() });
    expect(events).toHaveLength(3);
    expect(events[1]).toMatchObject({ ok: false });
    expect(events[2]).toMatchObject({ ok: false });
    expect(events[1]?.error).not.toBe(events[2]?.error);
  });
});

describe('Origin guard', () => {
  it('without extras, only our loopback origins on our port', () => {
    expect([...allowedOrigins(8931)].sort()).toEqual(['http://127.0.0.1:8931', 'http://[::1]:8931', 'http://localhost:8931']);
  });
  it('the refusal quotes at most 100 characters of a hostile Origin', () => {
    const v = checkOrigin(`http://${'e'.repeat(500)}`, allowedOrigins(8931));
    expect(v).toEqual({ ok: false, status: 403, message: `Forbidden: Origin ${JSON.stringify(`http://${'e'.repeat(93)}`)} is not allowed` });
  });
});
