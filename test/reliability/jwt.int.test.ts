/**
 * Every bearer-token defect we know of, on both doors of /mcp: opening a
 * session (initialize) and using an existing one. Each must get 401 with a
 * reason, open no session, forward nothing and echo no token back.
 */
import { generateKeyPair, exportJWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_TOKEN_LENGTH, TOKEN_ALG } from '../../src/server/tokens.js';
import { initializeBody, MCP_HEADERS, startTestGateway, stdioFixture, type TestGateway } from '../helpers/gateway.js';
import { algNoneToken, hs256WithPublicKey, signClaims, validClaims } from '../helpers/tokens.js';

let t: TestGateway;
let good: string;
let sid: string;

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });
  good = await t.mint('alice');
  sid = await t.openSession(good);
});
afterAll(async () => t?.close());

const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Signs any header with the gateway's real key (jose refuses to sign some of the headers we need to send). */
async function rawSign(key: unknown, header: object, claims: object): Promise<string> {
  const input = `${b64(header)}.${b64(claims)}`;
  const sig = await crypto.subtle.sign('Ed25519', key as Parameters<typeof crypto.subtle.sign>[1], new TextEncoder().encode(input));
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

/** name → the Authorization header value (a token alone is sent as "Bearer <token>"). */
async function defects(): Promise<Array<[string, string, RegExp]>> {
  const keys = t.gw.keys;
  const other = await generateKeyPair(TOKEN_ALG, { crv: 'Ed25519', extractable: true });
  const otherJwk = await exportJWK(other.publicKey);
  const c = () => validClaims(keys, 'alice');
  const [hsPem] = await hs256WithPublicKey(keys);
  const [h, p, s] = good.split('.') as [string, string, string];
  const swapped = Buffer.from(JSON.stringify({ ...(JSON.parse(Buffer.from(p, 'base64url').toString()) as object), sub: 'root' })).toString('base64url');
  const withoutClaim = (k: string) => {
    const x: Record<string, unknown> = { ...c() };
    delete x[k];
    return x;
  };
  const list: Array<[string, string, RegExp]> = [
    ['alg none', algNoneToken(keys), /algorithm|malformed/],
    ['HS256 keyed with the public key (algorithm confusion)', hsPem ?? '', /algorithm/],
    ['signed by another key, same kid', await new SignJWT(c()).setProtectedHeader({ alg: TOKEN_ALG, kid: keys.kid, typ: 'at+jwt' }).sign(other.privateKey), /signature/],
    ['another key embedded in the header (jwk)', await new SignJWT(c()).setProtectedHeader({ alg: TOKEN_ALG, kid: keys.kid, typ: 'at+jwt', jwk: otherJwk }).sign(other.privateKey), /signature/],
    ['payload tampered (sub swapped)', `${h}.${swapped}.${s}`, /signature/],
    ['signature stripped', `${h}.${p}.`, /signature|malformed/],
    ['wrong audience', await signClaims(keys, { ...c(), aud: 'urn:gatehouse:gateway:someone-else' }), /aud/],
    ['wrong issuer', await signClaims(keys, { ...c(), iss: 'evil' }), /iss/],
    ['expired', await signClaims(keys, { ...c(), iat: now() - 7200, nbf: now() - 7200, exp: now() - 3600 }), /expired/],
    ['not yet valid (nbf in an hour)', await signClaims(keys, { ...c(), nbf: now() + 3600 }), /nbf/],
    ['issued in the future', await signClaims(keys, { ...c(), iat: now() + 3600, nbf: now() }), /iat/],
    ['older than the longest ttl', await signClaims(keys, { ...c(), iat: now() - 100 * 86_400, nbf: now() - 100 * 86_400 }), /expired|iat/],
    ['no exp', await signClaims(keys, withoutClaim('exp')), /exp/],
    ['no jti', await signClaims(keys, withoutClaim('jti')), /jti/],
    ['no sub', await signClaims(keys, withoutClaim('sub')), /sub/],
    ['sub not an agent name', await signClaims(keys, { ...c(), sub: '../root' }), /agent name/],
    ['wrong typ', await signClaims(keys, c(), { typ: 'JWT' }), /typ/],
    ['unknown crit header', await rawSign(keys.privateKey, { alg: TOKEN_ALG, kid: keys.kid, typ: 'at+jwt', crit: ['x-gatehouse-never'], 'x-gatehouse-never': 1 }, c()), /malformed|crit/],
    ['oversized (claims padded past the limit)', await signClaims(keys, { ...c(), pad: 'p'.repeat(MAX_TOKEN_LENGTH) }), /too long/],
    ['two parts', `${h}.${p}`, /malformed/],
    ['four parts', `${good}.x`, /malformed/],
    ['not base64url', 'eyJ!!!.eyJ!!!.sig', /malformed/],
  ];
  return list;
}

const headerDefects: Array<[string, string]> = [
  ['empty bearer', 'Bearer '],
  ['two spaces', `Bearer  x`],
  ['lowercase scheme', 'bearer abc.def.ghi'],
  ['Basic scheme', 'Basic YWxpY2U6cHc='],
  ['token with a space', 'Bearer abc def'],
];

describe('JWT defects', () => {
  it('the list of defects is not empty, and a good token works (control)', async () => {
    expect((await defects()).length).toBeGreaterThan(15);
    const r = await t.raw({ token: good, headers: MCP_HEADERS, body: JSON.stringify(initializeBody()) });
    expect(r.status).toBe(200);
  });

  it('each defective token gets 401 with its reason, on initialize and on an open session; no session, nothing forwarded, no echo', async () => {
    const before = { calls: t.calls().length, sessions: t.gw.sessions.size, opened: t.audit().filter((a) => a.event === 'session.opened').length };
    const bad: Array<[string, string, RegExp | undefined]> = [...(await defects()), ...headerDefects.map(([n, v]): [string, string, RegExp | undefined] => [n, v, undefined])];
    for (const [name, value, reason] of bad) {
      const authorization = value.startsWith('Bearer') || value.startsWith('bearer') || value.startsWith('Basic') ? value : `Bearer ${value}`;
      const init = await t.raw({ headers: { ...MCP_HEADERS, authorization }, body: JSON.stringify(initializeBody()) });
      expect(init.status, name).toBe(401);
      const err = (init.json() as { error: { message: string } }).error.message;
      if (reason) expect(err, name).toMatch(reason);
      expect(init.headers['www-authenticate'], name).toMatch(/^Bearer realm="gatehouse"/);
      if (value.length > 20) {
        expect(init.text.includes(value.slice(-20)), `${name}: token echoed`).toBe(false);
        expect(String(init.headers['www-authenticate']).includes(value.slice(-20))).toBe(false);
      }
      const use = await t.raw({
        headers: { ...MCP_HEADERS, authorization, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: name } } }),
      });
      expect(use.status, name).toBe(401);
    }
    expect(t.calls().length).toBe(before.calls);
    expect(t.gw.sessions.size).toBe(before.sessions);
    expect(t.audit().filter((a) => a.event === 'session.opened').length).toBe(before.opened);
  });

  it('an Authorization header past the server’s header limit gets 431, and the gateway keeps serving', async () => {
    const r = await t.raw({ headers: { ...MCP_HEADERS, authorization: `Bearer ${'a'.repeat(20_000)}` }, body: JSON.stringify(initializeBody()) });
    expect(r.status).toBe(431);
    const ok = await t.raw({ token: good, headers: { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }) });
    expect(ok.status).toBe(200);
  });
});
