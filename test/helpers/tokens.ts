/** Hand-built bearer tokens for the attacks the verifier must refuse. */
import { createHmac, createPublicKey, randomUUID, type JsonWebKey } from 'node:crypto';
import { SignJWT, exportJWK, type JWTPayload } from 'jose';
import { TOKEN_ALG, TOKEN_ISSUER, type TokenKeys } from '../../src/server/tokens.js';

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** The claims a valid token carries, for `agent`, valid for an hour from now. */
export function validClaims(keys: TokenKeys, agent = 'alice', nowS = Math.floor(Date.now() / 1000)): JWTPayload {
  return { iss: TOKEN_ISSUER, sub: agent, aud: keys.audience, iat: nowS, nbf: nowS, exp: nowS + 3600, jti: randomUUID() };
}

/** Signs arbitrary claims with the gateway's real key (so only the claims are wrong). */
export async function signClaims(keys: TokenKeys, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: TOKEN_ALG, kid: keys.kid, typ: 'at+jwt', ...header }).sign(keys.privateKey);
}

/** `alg: none`: valid claims, no signature (RFC 7519 §6 "unsecured JWT"). */
export function algNoneToken(keys: TokenKeys, agent = 'alice'): string {
  return `${b64url({ alg: 'none', typ: 'at+jwt' })}.${b64url(validClaims(keys, agent))}.`;
}

/**
 * Algorithm confusion: an HS256 token whose HMAC key is the gateway's *public*
 * key (as PEM, and as the raw JWK `x`), which anyone can know.
 */
export async function hs256WithPublicKey(keys: TokenKeys, agent = 'alice'): Promise<string[]> {
  const jwk = await exportJWK(keys.publicKey);
  const pem = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  const secrets = [Buffer.from(pem), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.x ?? '')];
  const head = b64url({ alg: 'HS256', typ: 'at+jwt', kid: keys.kid });
  const body = b64url(validClaims(keys, agent));
  return secrets.map((s) => `${head}.${body}.${createHmac('sha256', s).update(`${head}.${body}`).digest('base64url')}`);
}
