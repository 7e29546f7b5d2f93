/**
 * Agent authentication at /mcp: every bad bearer token gets 401 with an RFC 6750
 * WWW-Authenticate challenge that points at the RFC 9728 metadata, and a
 * tools/call carried by it is never forwarded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenKeys, mintToken } from '../../src/server/tokens.js';
import { MCP_HEADERS, initializeBody, startTestGateway, stdioFixture, tempDir, type RawResponse, type TestGateway } from '../helpers/gateway.js';
import { algNoneToken, hs256WithPublicKey, signClaims, validClaims } from '../helpers/tokens.js';

let t: TestGateway;
let good: string;
let sid: string;

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });
  good = await t.mint('alice');
  sid = await t.openSession(good);
});
afterAll(() => t?.close());

const metadataUrl = () => `http://127.0.0.1:${t.port}/.well-known/oauth-protected-resource/mcp`;
const echoCall = JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'x' } } });

/** Sends a tools/call on alice's session with `authorization` as the header value (or none). */
function callWith(authorization: string | undefined): Promise<RawResponse> {
  const headers: Record<string, string> = { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  if (authorization !== undefined) headers.authorization = authorization;
  return t.raw({ headers, body: echoCall });
}

function expectInvalidToken(r: RawResponse, description: string) {
  expect(r.status).toBe(401);
  const challenge = String(r.headers['www-authenticate']);
  expect(challenge).toMatch(/^Bearer /);
  expect(challenge).toContain(`resource_metadata="${metadataUrl()}"`);
  expect(challenge).toContain('error="invalid_token"');
  expect(challenge).toContain(`error_description="${description}`);
  expect(r.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32001, message: expect.stringContaining(`Unauthorized: ${description}`) } });
}

describe('bad bearer tokens', () => {
  it('control: alice’s own token works on her session', async () => {
    const before = t.calls().length;
    const r = await callWith(`Bearer ${good}`);
    expect(r.status).toBe(200);
    expect(t.calls().length).toBe(before + 1);
  });

  it('no token: 401 with a challenge pointing at the protected-resource metadata, no error attribute, nothing forwarded', async () => {
    const before = t.calls().length;
    const r = await callWith(undefined);
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe(`Bearer realm="gatehouse", resource_metadata="${metadataUrl()}"`);
    expect(r.json()).toMatchObject({ error: { code: -32001, message: expect.stringContaining('a bearer token is required') } });
    expect(t.calls().length).toBe(before);
  });

  it('no token on initialize: 401 and no session is opened', async () => {
    const sessions = t.gw.sessions.size;
    const r = await t.raw({ headers: MCP_HEADERS, body: JSON.stringify(initializeBody()) });
    expect(r.status).toBe(401);
    expect(r.headers['mcp-session-id']).toBeUndefined();
    expect(t.gw.sessions.size).toBe(sessions);
  });

  it('expired token: 401 invalid_token "token has expired", nothing forwarded', async () => {
    const before = t.calls().length;
    const expired = (await mintToken(t.gw.keys, 'alice', 60_000, Date.now() - 10 * 60_000)).token;
    expectInvalidToken(await callWith(`Bearer ${expired}`), 'token has expired');
    expect(t.calls().length).toBe(before);
  });

  it('token for another audience (another gateway’s aud, signed with this key): 401, nothing forwarded', async () => {
    const before = t.calls().length;
    const token = await signClaims(t.gw.keys, { ...validClaims(t.gw.keys), aud: 'urn:gatehouse:gateway:someone-else' });
    expectInvalidToken(await callWith(`Bearer ${token}`), 'token claim check failed (aud)');
    expect(t.calls().length).toBe(before);
  });

  it('alg none (unsigned) token: 401, nothing forwarded', async () => {
    const before = t.calls().length;
    expectInvalidToken(await callWith(`Bearer ${algNoneToken(t.gw.keys)}`), 'token algorithm is not accepted');
    expect(t.calls().length).toBe(before);
  });

  it('HS256 token keyed with the gateway’s public key (algorithm confusion): 401, nothing forwarded', async () => {
    const before = t.calls().length;
    for (const token of await hs256WithPublicKey(t.gw.keys)) {
      expectInvalidToken(await callWith(`Bearer ${token}`), 'token algorithm is not accepted');
    }
    expect(t.calls().length).toBe(before);
  });

  it('token signed by another gateway’s key (another state directory): 401, nothing forwarded', async () => {
    const before = t.calls().length;
    const other = await loadTokenKeys(tempDir());
    const foreign = (await mintToken(other, 'alice', 60_000)).token;
    expectInvalidToken(await callWith(`Bearer ${foreign}`), 'token signature is not valid for this gateway');
    // Even with this gateway's audience, the signature decides.
    const sameAud = await signClaims({ ...other, kid: t.gw.keys.kid }, validClaims(t.gw.keys));
    expectInvalidToken(await callWith(`Bearer ${sameAud}`), 'token signature is not valid for this gateway');
    expect(t.calls().length).toBe(before);
  });

  it('a tampered payload (agent swapped) fails the signature check', async () => {
    const [h, , s] = good.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify(validClaims(t.gw.keys, 'root'))).toString('base64url')}.${s}`;
    expectInvalidToken(await callWith(`Bearer ${forged}`), 'token signature is not valid for this gateway');
  });

  it.each([
    ['Basic auth', `Basic ${Buffer.from('alice:pw').toString('base64')}`],
    ['a lowercase scheme with a space-separated extra', `bearer ${'a'.repeat(10)} extra`],
    ['an empty bearer', 'Bearer '],
  ])('a malformed Authorization header (%s) gets 401 invalid_token', async (_what, header) => {
    const before = t.calls().length;
    const r = await callWith(header);
    expect(r.status).toBe(401);
    expect(String(r.headers['www-authenticate'])).toContain('error="invalid_token"');
    expect(t.calls().length).toBe(before);
  });

  it('garbage and oversized tokens get 401 without echoing the token back', async () => {
    const huge = 'a'.repeat(5000);
    const r1 = await callWith(`Bearer ${huge}`);
    expectInvalidToken(r1, 'token is too long');
    expect(r1.text).not.toContain(huge);
    expectInvalidToken(await callWith('Bearer not.a.jwt'), 'token is malformed');
  });
});

describe('RFC 9728 protected-resource metadata', () => {
  it.each(['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource'])('GET %s describes the /mcp resource without a token', async (path) => {
    const r = await t.raw({ method: 'GET', path });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json()).toMatchObject({ resource: `http://127.0.0.1:${t.port}/mcp`, bearer_methods_supported: ['header'] });
  });

  it('the metadata is behind the Host guard too (a rebound name cannot make it name another resource)', async () => {
    const r = await t.raw({ method: 'GET', path: '/.well-known/oauth-protected-resource/mcp', headers: { host: 'evil.example' } });
    expect(r.status).toBe(403);
  });
});
