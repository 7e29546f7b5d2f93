import { statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireDuration } from '../../src/config/duration.js';
import { GatehouseError } from '../../src/errors.js';
import { CLOCK_TOLERANCE_S, MAX_TOKEN_LENGTH, loadTokenKeys, mintToken, verifyToken, type TokenKeys } from '../../src/server/tokens.js';
import { tempDir } from '../helpers/gateway.js';
import { algNoneToken, hs256WithPublicKey, signClaims, validClaims } from '../helpers/tokens.js';

let keys: TokenKeys;
let state: string;
beforeAll(async () => {
  state = tempDir();
  keys = await loadTokenKeys(state);
});

async function refused(token: string, now?: Date): Promise<string> {
  const e: unknown = await verifyToken(keys, token, now).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GatehouseError);
  expect((e as GatehouseError).code).toBe('AUTH_INVALID');
  return (e as Error).message;
}


const ttl = (s: string) => requireDuration(s, '--ttl');
describe('token keys', () => {
  it('are created once, 0600 in a 0700 folder, and reloaded the same', async () => {
    const file = join(state, 'keys', 'agent-tokens.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, 'keys')).mode & 0o777).toBe(0o700);
    const again = await loadTokenKeys(state);
    expect(again.kid).toBe(keys.kid);
    expect(again.audience).toBe(keys.audience);
    const t = await mintToken(keys, 'alice', 60_000);
    expect((await verifyToken(again, t.token)).agent).toBe('alice');
  });

  it('each state folder has its own audience (aud is bound to the gateway)', async () => {
    const other = await loadTokenKeys(tempDir());
    expect(other.audience).not.toBe(keys.audience);
    expect(keys.audience).toMatch(/^urn:gatehouse:gateway:/);
  });
});

describe('mint → verify', () => {
  it('round-trips the agent, id and expiry', async () => {
    const now = Date.now();
    const t = await mintToken(keys, 'laptop-claude', 8 * 3_600_000, now);
    const v = await verifyToken(keys, t.token);
    expect(v.agent).toBe('laptop-claude');
    expect(v.tokenId).toBe(t.id);
    expect(v.expiresAt.getTime()).toBe(t.expiresAt.getTime());
    expect(Math.abs(v.expiresAt.getTime() - (now + 8 * 3_600_000))).toBeLessThan(1000);
  });

  it('pins the header: EdDSA, the key id, typ at+jwt', async () => {
    const t = await mintToken(keys, 'alice', 60_000);
    const header = JSON.parse(Buffer.from(t.token.split('.')[0] ?? '', 'base64url').toString()) as Record<string, unknown>;
    expect(header).toEqual({ alg: 'EdDSA', kid: keys.kid, typ: 'at+jwt' });
  });

  it.each(['', 'has space', '-leading-dash', 'a'.repeat(65), 'ünï', 'x/y'])('refuses to mint for an invalid agent name %j', async (agent) => {
    await expect(mintToken(keys, agent, 60_000)).rejects.toMatchObject({ code: 'USAGE' });
  });

  it.each([0, -1, 91 * 86_400_000, Number.NaN])('refuses a ttl of %s ms', async (ttl) => {
    await expect(mintToken(keys, 'alice', ttl)).rejects.toMatchObject({ code: 'USAGE' });
  });
});

describe('verify refuses', () => {
  it('an expired token', async () => {
    const t = await mintToken(keys, 'alice', 60_000, Date.now() - 3_600_000);
    expect(await refused(t.token)).toBe('token has expired; mint a new one with: gatehouse token mint --agent NAME');
  });

  it('an expired token still within the clock skew is accepted; past it, refused', async () => {
    const t = await mintToken(keys, 'alice', 60_000, 0);
    expect((await verifyToken(keys, t.token, new Date(60_000 + (CLOCK_TOLERANCE_S - 5) * 1000))).agent).toBe('alice');
    expect(await refused(t.token, new Date(60_000 + (CLOCK_TOLERANCE_S + 5) * 1000))).toContain('expired');
  });

  it('a token that is not yet valid (nbf in the future beyond the skew)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signClaims(keys, { ...validClaims(keys), nbf: now + 600, iat: now });
    expect(await refused(token)).toBe('token claim check failed (nbf)');
  });

  it('a token issued in the future (iat) beyond the skew', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signClaims(keys, { ...validClaims(keys), iat: now + 600, nbf: now });
    expect(await refused(token)).toBe('token claim check failed (iat)');
  });

  it('a token for another audience', async () => {
    const token = await signClaims(keys, { ...validClaims(keys), aud: 'urn:gatehouse:gateway:other' });
    expect(await refused(token)).toMatch(/^token claim check failed \(aud\): it was minted for another gateway \(another state directory\)/);
  });

  it('a token from another issuer', async () => {
    const token = await signClaims(keys, { ...validClaims(keys), iss: 'someone' });
    expect(await refused(token)).toBe('token claim check failed (iss)');
  });

  it.each(['exp', 'sub', 'jti', 'iat'])('a token without %s', async (claim) => {
    const claims = { ...validClaims(keys) } as Record<string, unknown>;
    delete claims[claim];
    expect(await refused(await signClaims(keys, claims))).toMatch(/token claim check failed|token subject/);
  });

  it('a token with another typ (e.g. an ID token)', async () => {
    const token = await signClaims(keys, validClaims(keys), { typ: 'JWT' });
    expect(await refused(token)).toBe('token claim check failed (typ)');
  });

  it('alg none (unsigned)', async () => {
    expect(await refused(algNoneToken(keys))).toBe('token algorithm is not accepted');
  });

  it('HS256 signed with the public key bytes (algorithm confusion)', async () => {
    const tokens = await hs256WithPublicKey(keys);
    expect(tokens.length).toBeGreaterThan(0);
    for (const token of tokens) expect(await refused(token)).toBe('token algorithm is not accepted');
  });

  it('a token signed with another gateway’s key (another state folder)', async () => {
    const other = await loadTokenKeys(tempDir());
    const token = await signClaims({ ...other, kid: keys.kid }, validClaims(keys));
    expect(await refused(token)).toBe('token signature is not valid for this gateway');
  });

  it('an oversized token, before any parsing', async () => {
    const t = await mintToken(keys, 'alice', 60_000);
    expect(await refused(t.token + '.'.repeat(MAX_TOKEN_LENGTH))).toBe('token is too long');
  });

  it.each(['', 'garbage', 'a.b.c', '...', 'eyJhbGciOiJFZERTQSJ9.e30', `${Buffer.from('{').toString('base64url')}.e30.x`])('garbage %j', async (token) => {
    expect(await refused(token)).toBe('token is malformed');
  });

  it.each(['-dash', 'has space', 'a'.repeat(65), '../etc', ''])('a correctly signed token whose subject %j is not a valid agent name', async (sub) => {
    const token = await signClaims(keys, { ...validClaims(keys), sub });
    expect(await refused(token)).toMatch(/token subject is not a valid agent name|claim check failed \(sub\)/);
  });

  it('a token lifetime longer than the maximum (iat far in the past)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signClaims(keys, { ...validClaims(keys), iat: now - 100 * 86_400, nbf: now - 100 * 86_400, exp: now + 3600 });
    expect(await refused(token)).toContain('expired');
  });
});

describe('--ttl (the one duration grammar)', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['8h', 28_800_000],
    ['7d', 604_800_000],
    ['1h30m', 5_400_000],
  ])('%s = %d ms', (s, ms) => {
    expect(ttl(s)).toBe(ms);
  });
  it('a bare number is refused with a hint naming the flag and the units', () => {
    expect(() => ttl('8')).toThrow(expect.objectContaining({ code: 'USAGE', message: '--ttl: invalid duration "8"; a bare number has no unit: write 8s, 8m or 8h' }));
  });
  it.each(['', '8', 'h', '1.5h', '-1h', '8 hours', '1w'])('refuses %j', (s) => {
    expect(() => ttl(s)).toThrow(GatehouseError);
  });
});
