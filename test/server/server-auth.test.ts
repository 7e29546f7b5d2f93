import { rmSync } from 'node:fs';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentAuthenticator, bearerChallenge, parseBearer, requireAdmin } from '../../src/server/auth.js';
import { loadTokenKeys, mintToken, TokenVerifier, type TokenKeys } from '../../src/server/tokens.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;
let keys: TokenKeys;
let verifier: TokenVerifier;
let agentToken: string;
let adminToken: string;

beforeAll(async () => {
  dir = tempDir('gatehouse-auth-');
  keys = await loadTokenKeys(dir);
  verifier = new TokenVerifier(keys);
  agentToken = (await mintToken(keys, 'alice', 3_600_000)).token;
  adminToken = (await mintToken(keys, 'ops', 3_600_000, Date.now(), { admin: true })).token;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseBearer: the one Authorization header parser (RFC 6750 §2.1)', () => {
  it.each([
    ['Bearer abc.def-ghi_jkl~m+n/o==', 'abc.def-ghi_jkl~m+n/o=='],
    ['bearer abc', 'abc'],
    ['BEARER abc', 'abc'],
    ['Bearer   abc', 'abc'],
  ])('takes the token of %j (the scheme is case-insensitive, RFC 9110 §11.1)', (header, token) => {
    expect(parseBearer(header)).toEqual({ kind: 'token', token });
  });

  it.each([null, undefined])('no header (%j) is "none", not malformed (RFC 6750 §3: no error attribute then)', (h) => {
    expect(parseBearer(h)).toEqual({ kind: 'none' });
  });

  it.each([
    ['an empty bearer', 'Bearer '],
    ['Basic auth', 'Basic YWxpY2U6cHc='],
    ['a token with a space', 'Bearer abc def'],
    ['padding inside the token', 'Bearer ab=c'],
    ['a quote (header injection into WWW-Authenticate)', 'Bearer abc"def'],
    ['no space after the scheme', 'Bearerabc'],
    ['two credentials', 'Bearer abc, Bearer def'],
  ])('refuses %s as malformed', (_what, h) => {
    expect(parseBearer(h)).toEqual({ kind: 'malformed' });
  });
});

describe('agentAuthenticator: agents on TCP', () => {
  const req = (authorization?: string) => new Request('http://127.0.0.1/mcp', authorization === undefined ? {} : { headers: { authorization } });

  it('an agent token is that agent', async () => {
    expect(await agentAuthenticator(verifier)(req(`Bearer ${agentToken}`))).toEqual({ ok: true, identity: { agent: 'alice', via: 'token' } });
  });

  it('no token: a description that says how to get one, and no invalid_token error (RFC 6750 §3)', async () => {
    const r = await agentAuthenticator(verifier)(req());
    expect(r).toEqual({ ok: false, description: expect.stringContaining('gatehouse token mint') });
  });

  it('an admin token is not an agent identity (separation of duties)', async () => {
    expect(await agentAuthenticator(verifier)(req(`Bearer ${adminToken}`))).toMatchObject({ ok: false, error: 'invalid_token', description: expect.stringContaining('admin token') });
  });

  it('a forged token is refused with the verifier reason', async () => {
    expect(await agentAuthenticator(verifier)(req('Bearer not.a.jwt'))).toMatchObject({ ok: false, error: 'invalid_token', description: 'token is malformed' });
  });
});

describe('requireAdmin: the admin API on TCP', () => {
  const app = new Hono();
  app.use('/admin/*', (c, next) => requireAdmin(verifier)(c, next));
  app.get('/admin/v1/status', (c) => c.json({ ok: true }));
  const get = (authorization?: string) => app.request('/admin/v1/status', authorization === undefined ? {} : { headers: { authorization } });

  it('an admin token passes', async () => {
    expect((await get(`Bearer ${adminToken}`)).status).toBe(200);
  });

  it('no token: 401 with a challenge and how to mint an admin token', async () => {
    const r = await get();
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse-admin"');
    expect(((await r.json()) as { error: { message: string } }).error.message).toContain('gatehouse token mint --admin');
  });

  it('an agent token gets 403, not the admin API', async () => {
    expect((await get(`Bearer ${agentToken}`)).status).toBe(403);
  });

  it.each([['a malformed header', 'Bearer a b'], ['a forged token', 'Bearer x.y.z'], ['Basic auth', 'Basic b3BzOnB3']])('%s gets 401', async (_what, h) => {
    expect((await get(h)).status).toBe(401);
  });
});

describe('token comparison', () => {
  it('the verifier cache holds no raw token: lookups compare SHA-256 digests (timing leaks nothing of a cached token)', async () => {
    const v = new TokenVerifier(keys);
    await v.verify(agentToken);
    await v.verify(agentToken);
    expect(v.size).toBe(1);
    const cacheKeys = [...(v as unknown as { cache: Map<string, unknown> }).cache.keys()];
    expect(cacheKeys).toHaveLength(1);
    expect(cacheKeys[0]).not.toContain(agentToken.slice(0, 20));
    expect(cacheKeys[0]).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('bearerChallenge: the WWW-Authenticate of a 401 on /mcp', () => {
  it('no credentials: realm and the RFC 9728 metadata only, no error attribute (RFC 6750 §3)', () => {
    expect(bearerChallenge({ ok: false, description: 'a bearer token is required' }, '127.0.0.1:8931')).toBe(
      'Bearer realm="gatehouse", resource_metadata="http://127.0.0.1:8931/.well-known/oauth-protected-resource/mcp"',
    );
  });

  it('a bad token: error and a description whose quotes and backslashes cannot break out of the header parameter', () => {
    const h = bearerChallenge({ ok: false, error: 'invalid_token', description: 'bad "x", error="none" \\' }, 'localhost:8931');
    expect(h).toContain('error="invalid_token", error_description="bad x, error=none "');
    expect(h.match(/"/g)?.length).toBe(8);
  });
});
