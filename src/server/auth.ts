/**
 * Who is calling a TCP listener: the bearer token of the Authorization header,
 * parsed here and nowhere else, for agents (/mcp, /llm) and admins (/admin).
 * Tokens are signed JWTs checked by TokenVerifier (jose verifies the signature;
 * no token is compared as a string here).
 */
import type { MiddlewareHandler } from 'hono';
import { GatehouseError } from '../errors.js';
import type { Identity } from './mcp-sessions.js';
import { jsonRpcError } from './rpc-error.js';
import type { TokenVerifier, VerifiedToken } from './tokens.js';

export type AuthResult =
  | { ok: true; identity: Identity }
  | { ok: false; error?: 'invalid_token'; description: string };

/**
 * How a listener identifies the agent: a bearer token (TCP) or the socket itself (sandbox).
 * `token`: one sent another way than Authorization (an SDK's x-api-key on /llm), checked instead of that header.
 */
export type Authenticate = (req: Request, token?: string) => Promise<AuthResult>;

export type BearerHeader = { kind: 'none' } | { kind: 'malformed' } | { kind: 'token'; token: string };

/** RFC 6750 §2.1: `Bearer 1*SP b64token`; the scheme is case-insensitive (RFC 9110 §11.1). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/** The one Authorization header parser. */
export function parseBearer(header: string | null | undefined): BearerHeader {
  if (header === null || header === undefined) return { kind: 'none' };
  const m = BEARER.exec(header.trim());
  return m?.[1] ? { kind: 'token', token: m[1] } : { kind: 'malformed' };
}

/**
 * The `WWW-Authenticate` of a 401 on /mcp, pointing at the RFC 9728 metadata
 * (`host` has passed the Host check). RFC 6750 §3: no error attribute when
 * the request carried no credentials.
 */
export function bearerChallenge(refusal: AuthResult & { ok: false }, host: string | undefined): string {
  const metadata = `http://${host ?? 'localhost'}/.well-known/oauth-protected-resource/mcp`;
  const params = [`realm="gatehouse"`, `resource_metadata="${metadata}"`];
  if (refusal.error) params.push(`error="${refusal.error}"`, `error_description="${refusal.description.replace(/["\\]/g, '')}"`);
  return `Bearer ${params.join(', ')}`;
}

/** Verifies a bearer header; never throws. */
async function verifyHeader(verifier: TokenVerifier, header: string | null | undefined): Promise<{ ok: true; token: VerifiedToken } | AuthResult & { ok: false }> {
  const parsed = parseBearer(header);
  if (parsed.kind === 'none') return { ok: false, description: 'a bearer token is required (gatehouse token mint --agent NAME)' };
  if (parsed.kind === 'malformed') return { ok: false, error: 'invalid_token', description: 'malformed Authorization header; expected "Bearer <token>"' };
  try {
    return { ok: true, token: await verifier.verify(parsed.token) };
  } catch (e) {
    return { ok: false, error: 'invalid_token', description: e instanceof GatehouseError ? e.message : 'invalid token' };
  }
}

/** Agents on TCP: a token minted without --admin. */
export function agentAuthenticator(verifier: TokenVerifier): Authenticate {
  return async (req, token) => {
    const r = await verifyHeader(verifier, token !== undefined ? `Bearer ${token}` : req.headers.get('authorization'));
    if (!r.ok) return r;
    // Separation of duties: an admin token manages the gateway, it is not an agent identity.
    if (r.token.admin) return { ok: false, error: 'invalid_token', description: 'this is an admin token; agents need a token minted without --admin' };
    return { ok: true, identity: { agent: r.token.agent, via: 'token' } };
  };
}

/** The admin API on TCP: a token minted with --admin (401 without a valid token, 403 for an agent token). */
export function requireAdmin(verifier: TokenVerifier): MiddlewareHandler {
  return async (c, next) => {
    const r = await verifyHeader(verifier, c.req.header('authorization'));
    if (!r.ok) {
      return jsonRpcError(401, -32001, `Unauthorized: an admin token is required (gatehouse token mint --admin)${r.error ? `: ${r.description}` : ''}`, {
        'www-authenticate': 'Bearer realm="gatehouse-admin"',
      });
    }
    if (!r.token.admin) return jsonRpcError(403, -32001, 'Forbidden: this token is not an admin token');
    return next();
  };
}
