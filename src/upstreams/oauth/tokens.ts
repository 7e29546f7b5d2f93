/**
 * A token endpoint's answer turned into the login kept in the keychain. An
 * access token that could not go into an HTTP header, or a token type other
 * than Bearer, is refused here, before anything is stored.
 */
import type { TokenEndpointResponse } from 'oauth4webapi';
import { GatehouseError } from '../../errors.js';
import { OAuthLoginSchema, type OAuthLogin } from '../../secrets/oauth/login.js';
import type { ClientIdentity } from './client.js';

export interface LoginContext {
  connector: string;
  issuer: string;
  resource: string;
  tokenEndpoint: string;
  client: ClientIdentity;
}

/** `previous`: the login refreshed; its refresh token is kept when the server sends no new one (no rotation, RFC 6749 §6). */
export function loginFrom(ctx: LoginContext, tr: TokenEndpointResponse, now: number, previous?: OAuthLogin): OAuthLogin {
  if (tr.token_type !== 'bearer') {
    throw new GatehouseError('OAUTH_REFUSED', `connector "${ctx.connector}": the token endpoint issued a "${String(tr.token_type).slice(0, 20)}" token; only Bearer tokens are supported`);
  }
  const refreshToken = tr.refresh_token ?? previous?.refreshToken;
  const expiresIn = typeof tr.expires_in === 'number' && Number.isFinite(tr.expires_in) && tr.expires_in > 0 ? tr.expires_in : undefined;
  const login = {
    v: 1 as const,
    issuer: ctx.issuer,
    resource: ctx.resource,
    tokenEndpoint: ctx.tokenEndpoint,
    clientId: ctx.client.clientId,
    // A pre-registered client's secret stays a ${secret:} of the registry; a registered one lives with its login.
    ...(ctx.client.via !== 'registry' && ctx.client.clientSecret !== undefined ? { clientSecret: ctx.client.clientSecret } : {}),
    clientAuth: ctx.client.clientAuth,
    accessToken: tr.access_token,
    ...(refreshToken !== undefined ? { refreshToken } : {}),
    ...(expiresIn !== undefined ? { expiresAt: now + Math.round(expiresIn * 1000) } : {}),
    obtainedAt: now,
    ...(typeof tr.scope === 'string' ? { scope: tr.scope } : previous?.scope !== undefined ? { scope: previous.scope } : {}),
  };
  const r = OAuthLoginSchema.safeParse(login);
  if (!r.success) {
    const where = r.error.issues.map((i) => i.path.join('.')).join(', ');
    throw new GatehouseError('OAUTH_REFUSED', `connector "${ctx.connector}": the token endpoint's answer is unusable (${where}: ${r.error.issues[0]?.message ?? 'invalid'}); nothing was stored`);
  }
  return r.data;
}
