import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify, type JWK } from 'jose';

type JoseKey = Awaited<ReturnType<typeof importJWK>>;
import { GatehouseError } from '../errors.js';

/** The only algorithm accepted: pinned, so `alg: none` or an HMAC confusion cannot pass. */
export const TOKEN_ALG = 'EdDSA';
export const TOKEN_ISSUER = 'gatehouse';
/** Bounded clock skew between minting and verifying. */
export const CLOCK_TOLERANCE_S = 30;
/** The longest lifetime a token may have (30 days); `token mint` defaults to DEFAULT_TTL. */
export const MAX_TTL_MS = 30 * 86_400_000;
export const DEFAULT_TTL = '8h';
/** A token longer than this is refused before any parsing. */
export const MAX_TOKEN_LENGTH = 4096;
export const AGENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export interface TokenKeys {
  kid: string;
  /** `aud` of every token: bound to this gateway's state directory. */
  audience: string;
  privateKey: JoseKey;
  publicKey: JoseKey;
}

interface StoredKeys {
  kid: string;
  audience: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

/** Loads the token signing key from `<state>/keys/agent-tokens.json`, creating it (0600) on first use. */
export async function loadTokenKeys(stateDir: string): Promise<TokenKeys> {
  const dir = join(stateDir, 'keys');
  const file = join(dir, 'agent-tokens.json');
  let stored: StoredKeys;
  try {
    stored = JSON.parse(readFileSync(file, 'utf8')) as StoredKeys;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new GatehouseError('CONFIG_INVALID', `cannot read the token key ${file}: ${(e as Error).message}; remove it to create a new one (existing tokens stop working)`);
    }
    const { privateKey, publicKey } = await generateKeyPair(TOKEN_ALG, { crv: 'Ed25519', extractable: true });
    stored = {
      kid: randomBytes(8).toString('hex'),
      audience: `urn:gatehouse:gateway:${randomUUID()}`,
      privateJwk: await exportJWK(privateKey),
      publicJwk: await exportJWK(publicKey),
    };
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(stored), { mode: 0o600 });
    renameSync(tmp, file);
  }
  return {
    kid: stored.kid,
    audience: stored.audience,
    privateKey: await importJWK(stored.privateJwk, TOKEN_ALG),
    publicKey: await importJWK(stored.publicJwk, TOKEN_ALG),
  };
}

/** Scope claim of tokens that may use the admin API over TCP. */
export const ADMIN_SCOPE = 'gatehouse:admin';

export async function mintToken(
  keys: TokenKeys,
  agent: string,
  ttlMs: number,
  now = Date.now(),
  opts: { admin?: boolean } = {},
): Promise<{ token: string; expiresAt: Date; id: string }> {
  if (!AGENT_NAME.test(agent)) throw new GatehouseError('USAGE', `invalid agent name ${JSON.stringify(agent)}: use 1-64 letters, digits, '.', '_', '@' or '-'`);
  if (!(ttlMs > 0) || ttlMs > MAX_TTL_MS) throw new GatehouseError('USAGE', `--ttl must be between 1s and 30d`);
  const id = randomUUID();
  // iat to the millisecond (RFC 7519 NumericDate may be fractional): `token revoke --agent` refuses
  // tokens issued before the revocation, and one minted just after it must pass.
  const iat = now / 1000;
  const exp = Math.floor((now + ttlMs) / 1000);
  const token = await new SignJWT(opts.admin ? { scope: ADMIN_SCOPE } : {})
    .setProtectedHeader({ alg: TOKEN_ALG, kid: keys.kid, typ: 'at+jwt' })
    .setIssuer(TOKEN_ISSUER)
    .setSubject(agent)
    .setAudience(keys.audience)
    .setIssuedAt(iat)
    .setNotBefore(Math.floor(iat))
    .setExpirationTime(exp)
    .setJti(id)
    .sign(keys.privateKey);
  return { token, expiresAt: new Date(exp * 1000), id };
}

export interface VerifiedToken {
  agent: string;
  tokenId: string;
  issuedAt: Date;
  expiresAt: Date;
  admin: boolean;
}

/** Verifies a bearer token. Throws GatehouseError('AUTH_INVALID') with a reason safe to show the client. */
export async function verifyToken(keys: TokenKeys, token: string, now?: Date): Promise<VerifiedToken> {
  if (token.length > MAX_TOKEN_LENGTH) throw new GatehouseError('AUTH_INVALID', 'token is too long');
  try {
    const { payload } = await jwtVerify(token, keys.publicKey, {
      algorithms: [TOKEN_ALG],
      audience: keys.audience,
      issuer: TOKEN_ISSUER,
      requiredClaims: ['exp', 'iat', 'sub', 'jti'],
      clockTolerance: CLOCK_TOLERANCE_S,
      maxTokenAge: `${MAX_TTL_MS / 1000 + CLOCK_TOLERANCE_S}s`,
      typ: 'at+jwt',
      ...(now ? { currentDate: now } : {}),
    });
    const agent = payload.sub ?? '';
    if (!AGENT_NAME.test(agent)) throw new GatehouseError('AUTH_INVALID', 'token subject is not a valid agent name');
    const admin = typeof payload.scope === 'string' && payload.scope.split(' ').includes(ADMIN_SCOPE);
    return { agent, tokenId: String(payload.jti), issuedAt: new Date(Math.round((payload.iat ?? 0) * 1000)), expiresAt: new Date((payload.exp ?? 0) * 1000), admin };
  } catch (e) {
    if (e instanceof GatehouseError) throw e;
    const code = (e as { code?: string }).code ?? '';
    const claim = (e as { claim?: string }).claim ?? 'claim';
    const reason =
      code === 'ERR_JWT_EXPIRED'
        ? 'token has expired; mint a new one with: gatehouse token mint --agent NAME'
        : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
          ? `token claim check failed (${claim})${claim === 'aud' ? OTHER_STATE : ''}`
          : code === 'ERR_JOSE_ALG_NOT_ALLOWED'
            ? 'token algorithm is not accepted'
            : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
              ? `token signature is not valid for this gateway${kidOf(token) !== keys.kid ? OTHER_STATE : ''}`
              : 'token is malformed';
    throw new GatehouseError('AUTH_INVALID', reason);
  }
}

/** Keys and aud belong to one state directory: the usual cause of a mismatch is `token mint` run without this gateway's --state. */
const OTHER_STATE = ': it was minted for another gateway (another state directory); mint one with the --state this gateway uses: gatehouse token mint --agent NAME --state DIR';

function kidOf(token: string): unknown {
  try {
    return decodeProtectedHeader(token).kid;
  } catch {
    return undefined;
  }
}

/** The revocation list as the verifier sees it (src/server/revocations.ts): why a token is refused, or undefined. */
export interface RevocationChecker {
  check(t: VerifiedToken): string | undefined;
}

/**
 * Verifies bearer tokens, remembering the ones that passed (bounded, oldest
 * dropped first) until they expire: a token's signature and claims depend only
 * on its bytes, the key and the clock, so a hit needs just the expiry check —
 * and the revocation check, which runs on every request, hit or not.
 * This saves an Ed25519 verification on every request of a session.
 */
export class TokenVerifier {
  private readonly cache = new Map<string, VerifiedToken>();
  constructor(
    private readonly keys: TokenKeys,
    private readonly max = 1024,
    private readonly revocations?: RevocationChecker,
  ) {}

  private notRevoked(t: VerifiedToken): VerifiedToken {
    const reason = this.revocations?.check(t);
    if (reason !== undefined) throw new GatehouseError('AUTH_INVALID', reason);
    return t;
  }

  get size(): number {
    return this.cache.size;
  }

  async verify(token: string): Promise<VerifiedToken> {
    // Keyed by a digest: a lookup compares digests, so its timing says nothing about a cached token's bytes.
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      if (Date.now() <= hit.expiresAt.getTime() + CLOCK_TOLERANCE_S * 1000) return this.notRevoked(hit);
      this.cache.delete(key);
    }
    const t = this.notRevoked(await verifyToken(this.keys, token));
    if (this.cache.size >= this.max) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    this.cache.set(key, t);
    return t;
  }
}
