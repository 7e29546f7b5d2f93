/**
 * Who the gateway is to the authorization server (MCP authorization §Client
 * Registration Approaches, in its order): a client registered beforehand
 * (`oauth.clientId`, its secret in the keychain), a client ID metadata
 * document where the server supports one, the client registered dynamically
 * at an earlier login, or a new dynamic registration (RFC 7591).
 */
import * as oauth from 'oauth4webapi';
import { GatehouseError } from '../../errors.js';
import type { OAuthLogin } from '../../secrets/oauth/login.js';
import type { Discovered, OAuthTarget } from './discovery.js';
import { oauthError } from './errors.js';
import type { OAuthFetch } from './http.js';

export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export type ClientAuthMethod = OAuthLogin['clientAuth'];

export interface ClientIdentity {
  clientId: string;
  clientSecret?: string;
  clientAuth: ClientAuthMethod;
  via: 'registry' | 'metadata-document' | 'earlier-registration' | 'dynamic-registration';
}

/** The options every oauth4webapi request gets: our capped fetch; plain http is let through because checks.ts allowed only loopback. */
export function libOptions(http: OAuthFetch): { [oauth.customFetch]: LibFetch; [oauth.allowInsecureRequests]: true } {
  return { [oauth.customFetch]: http as LibFetch, [oauth.allowInsecureRequests]: true };
}
/** oauth4webapi's customFetch, whatever its request's method and body (ours takes any). */
type LibFetch = (url: string, options: oauth.CustomFetchOptions<string, unknown>) => Promise<Response>;

export function clientOf(id: Pick<ClientIdentity, 'clientId'>): oauth.Client {
  return { client_id: id.clientId };
}

export function clientAuthOf(id: Pick<ClientIdentity, 'clientAuth' | 'clientSecret'>): oauth.ClientAuth {
  if (id.clientAuth === 'none' || id.clientSecret === undefined) return oauth.None();
  return id.clientAuth === 'client_secret_post' ? oauth.ClientSecretPost(id.clientSecret) : oauth.ClientSecretBasic(id.clientSecret);
}

/** RFC 8414 §2: basic is the default; post where the server lists post and not basic. */
function secretMethod(as: oauth.AuthorizationServer): ClientAuthMethod {
  const m = as.token_endpoint_auth_methods_supported;
  return m !== undefined && !m.includes('client_secret_basic') && m.includes('client_secret_post') ? 'client_secret_post' : 'client_secret_basic';
}

export interface IdentityOptions {
  http: OAuthFetch;
  /** The loopback redirect URI this login listens on (registered with a new client). */
  redirectUri: string;
  /** oauth.clientSecret, rendered from the keychain. */
  clientSecret?: string | undefined;
  /** The login kept so far, whose dynamically registered client is used again at the same server. */
  previous?: OAuthLogin | undefined;
}

export async function clientIdentity(t: OAuthTarget, d: Discovered, o: IdentityOptions): Promise<ClientIdentity> {
  const cfg = t.oauth;
  if (cfg.clientId !== undefined) {
    return { clientId: cfg.clientId, ...(o.clientSecret !== undefined ? { clientSecret: o.clientSecret } : {}), clientAuth: o.clientSecret !== undefined ? secretMethod(d.as) : 'none', via: 'registry' };
  }
  if (cfg.clientMetadataUrl !== undefined && d.as.client_id_metadata_document_supported === true) {
    return { clientId: cfg.clientMetadataUrl, clientAuth: 'none', via: 'metadata-document' };
  }
  const prev = o.previous;
  if (prev !== undefined && prev.issuer === d.issuer && prev.clientId !== cfg.clientMetadataUrl) {
    return { clientId: prev.clientId, ...(prev.clientSecret !== undefined ? { clientSecret: prev.clientSecret } : {}), clientAuth: prev.clientAuth, via: 'earlier-registration' };
  }
  if (typeof d.as.registration_endpoint !== 'string') {
    throw new GatehouseError(
      'OAUTH_REFUSED',
      `connector "${t.name}": ${d.issuer} offers no dynamic client registration (RFC 7591)${cfg.clientMetadataUrl !== undefined ? ' and no client ID metadata documents' : ''}; register a client there (redirect URI http://127.0.0.1/callback, any port) and set oauth.clientId in ${t.file}`,
    );
  }
  const grants = ['authorization_code', 'refresh_token', ...(typeof d.as.device_authorization_endpoint === 'string' ? [DEVICE_GRANT] : [])];
  try {
    const res = await oauth.dynamicClientRegistrationRequest(
      d.as,
      {
        client_name: `Gatehouse (${t.name})`,
        redirect_uris: [o.redirectUri],
        grant_types: grants,
        response_types: ['code'],
        // A public client: PKCE protects the code, the keychain keeps the refresh token.
        token_endpoint_auth_method: 'none',
        ...(d.scopes !== undefined ? { scope: d.scopes.join(' ') } : {}),
      },
      libOptions(o.http),
    );
    const reg = await oauth.processDynamicClientRegistrationResponse(res);
    const secret = typeof reg.client_secret === 'string' ? reg.client_secret : undefined;
    const method = reg.token_endpoint_auth_method;
    const clientAuth: ClientAuthMethod = secret === undefined ? 'none' : method === 'client_secret_post' ? 'client_secret_post' : 'client_secret_basic';
    return { clientId: reg.client_id, ...(secret !== undefined ? { clientSecret: secret } : {}), clientAuth, via: 'dynamic-registration' };
  } catch (e) {
    throw oauthError(t.name, e, `dynamic client registration at ${d.as.registration_endpoint}`);
  }
}
