/**
 * Where to log in, as the MCP authorization spec (2025-11-25, "Authorization
 * Server Discovery") lays it out: the server's 401 names its protected
 * resource metadata (`WWW-Authenticate: Bearer resource_metadata=…`, RFC 9728
 * §5.1), else the well-known URIs (§3); that names the authorization server,
 * whose RFC 8414 metadata is read (OpenID discovery as fallback). What each
 * step says is checked before it is believed (checks.ts).
 */
import { extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { processDiscoveryResponse, type AuthorizationServer } from 'oauth4webapi';
import { GatehouseError } from '../../errors.js';
import type { OAuthConfig } from '../../registry/oauth.js';
import { canonicalResource, checkOrigin, checkResource, checkTransport, sameIssuer, type Verdict } from './checks.js';
import type { OAuthFetch } from './http.js';
import { oauthError } from './errors.js';

export interface OAuthTarget {
  /** The connector's name and file, for messages. */
  name: string;
  file: string;
  url: string;
  oauth: OAuthConfig;
}

export interface Discovered {
  /** What to send as `resource` (RFC 8707). */
  resource: string;
  issuer: string;
  as: AuthorizationServer;
  /** Scopes to ask for (undefined: ask for none, the server's default). */
  scopes: string[] | undefined;
}

function refuse(t: OAuthTarget, v: Verdict, what: string): void {
  if (!v.ok) throw new GatehouseError('OAUTH_REFUSED', `connector "${t.name}": ${what}: ${v.reason}`, { details: { connector: t.name } });
}

async function readJson(t: OAuthTarget, res: Response, what: string): Promise<Record<string, unknown>> {
  let json: unknown;
  try {
    json = JSON.parse(await res.text());
  } catch {
    throw new GatehouseError('OAUTH_REFUSED', `connector "${t.name}": ${what} is not JSON`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new GatehouseError('OAUTH_REFUSED', `connector "${t.name}": ${what} is not a JSON object`);
  return json as Record<string, unknown>;
}

/** The 401 challenge of an unauthenticated MCP request (an initialize, as a client would send first). */
async function challenge(t: OAuthTarget, http: OAuthFetch): Promise<{ metadata?: string; scope?: string }> {
  const res = await http(t.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'gatehouse', version: '1' } } }),
  });
  if (res.status !== 401) return {};
  const p = extractWWWAuthenticateParams(res);
  return { ...(p.resourceMetadataUrl ? { metadata: p.resourceMetadataUrl.href } : {}), ...(p.scope ? { scope: p.scope } : {}) };
}

/** RFC 9728 §3: the well-known URIs, path-aware first. */
function resourceMetadataUris(url: string): string[] {
  const u = new URL(url);
  const path = u.pathname.replace(/\/$/, '');
  const root = `${u.origin}/.well-known/oauth-protected-resource`;
  return path === '' ? [root] : [`${root}${path}`, root];
}

/** MCP authorization §Authorization Server Metadata Discovery: RFC 8414, then OpenID Connect Discovery, path-aware. */
export function authorizationServerUris(issuer: string): string[] {
  const u = new URL(issuer);
  const path = u.pathname.replace(/\/$/, '');
  if (path === '') return [`${u.origin}/.well-known/oauth-authorization-server`, `${u.origin}/.well-known/openid-configuration`];
  return [`${u.origin}/.well-known/oauth-authorization-server${path}`, `${u.origin}/.well-known/openid-configuration${path}`, `${u.origin}${path}/.well-known/openid-configuration`];
}

interface ResourceMetadata {
  resource: string;
  authorizationServers: string[];
  scopes: string[] | undefined;
}

async function resourceMetadata(t: OAuthTarget, http: OAuthFetch, named: string | undefined): Promise<ResourceMetadata | undefined> {
  const server = new URL(t.url).origin;
  const fromRegistry = t.oauth.resourceMetadata;
  const candidates = fromRegistry !== undefined ? [fromRegistry] : named !== undefined ? [named] : resourceMetadataUris(t.url);
  for (const uri of candidates) {
    refuse(t, checkTransport(uri, 'the resource metadata URL'), 'resource metadata');
    // The registry's own URL is the admin's word; one a server names must be on its own origin unless allowed.
    if (fromRegistry === undefined) {
      refuse(t, checkOrigin(uri, [server, ...t.oauth.allowOrigins], 'the resource metadata URL its 401 names', `add that origin to oauth.allowOrigins in ${t.file} if you trust it`), 'resource metadata');
    }
    const res = await http(uri, { headers: { accept: 'application/json' } });
    if (res.status === 404 && candidates.length > 1) continue;
    if (res.status !== 200) throw new GatehouseError('OAUTH_REFUSED', `connector "${t.name}": resource metadata ${uri} answered HTTP ${res.status}`);
    const json = await readJson(t, res, `resource metadata ${uri}`);
    refuse(t, checkResource(json.resource, t.url), `resource metadata ${uri}`);
    const servers = Array.isArray(json.authorization_servers) ? json.authorization_servers.filter((s): s is string => typeof s === 'string') : [];
    const scopes = Array.isArray(json.scopes_supported) ? json.scopes_supported.filter((s): s is string => typeof s === 'string') : undefined;
    return { resource: json.resource as string, authorizationServers: servers, scopes };
  }
  return undefined;
}

/** The authorization server to use: the registry's, which the metadata must name, or the metadata's first on an allowed origin. */
function chooseIssuer(t: OAuthTarget, prm: ResourceMetadata | undefined): string {
  const pinned = t.oauth.authorizationServer;
  if (prm === undefined || prm.authorizationServers.length === 0) {
    if (pinned !== undefined) return pinned;
    throw new GatehouseError(
      'OAUTH_REFUSED',
      `connector "${t.name}": ${t.url} names no authorization server (no protected resource metadata, RFC 9728); set oauth.authorizationServer in ${t.file}`,
    );
  }
  if (pinned !== undefined) {
    const match = prm.authorizationServers.find((s) => sameIssuer(s, pinned));
    if (match === undefined) {
      throw new GatehouseError('OAUTH_REFUSED', `connector "${t.name}": the server names authorization server ${prm.authorizationServers.join(', ')}, not ${pinned} (oauth.authorizationServer in ${t.file}); refused`);
    }
    return match;
  }
  const issuer = prm.authorizationServers[0] as string;
  refuse(t, checkTransport(issuer, 'the authorization server'), 'resource metadata');
  refuse(
    t,
    checkOrigin(issuer, [new URL(t.url).origin, ...t.oauth.allowOrigins], 'the authorization server it names', `if you trust it, set oauth.authorizationServer: ${issuer} in ${t.file}`),
    'resource metadata',
  );
  return issuer;
}

/** RFC 8414 metadata of `issuer`, its issuer checked (§3.3), its endpoints checked. */
async function serverMetadata(t: OAuthTarget, http: OAuthFetch, issuer: string): Promise<AuthorizationServer> {
  refuse(t, checkTransport(issuer, 'the authorization server'), 'authorization server');
  for (const uri of authorizationServerUris(issuer)) {
    const res = await http(uri, { headers: { accept: 'application/json' } });
    if (res.status === 404) continue;
    let as: AuthorizationServer;
    try {
      as = await processDiscoveryResponse(new URL(issuer), res);
    } catch (e) {
      throw oauthError(t.name, e, `authorization server metadata ${uri}`);
    }
    const origins = [new URL(issuer).origin, ...t.oauth.allowOrigins];
    const fix = `add that origin to oauth.allowOrigins in ${t.file} if you trust it`;
    for (const key of ['authorization_endpoint', 'token_endpoint', 'registration_endpoint', 'device_authorization_endpoint'] as const) {
      const v = as[key];
      if (v === undefined) continue;
      if (typeof v !== 'string') throw new GatehouseError('OAUTH_REFUSED', `connector "${t.name}": ${key} of ${uri} is not a string`);
      refuse(t, checkTransport(v, key), `authorization server metadata ${uri}`);
      refuse(t, checkOrigin(v, origins, key, fix), `authorization server metadata ${uri}`);
    }
    if (typeof as.token_endpoint !== 'string') throw new GatehouseError('OAUTH_REFUSED', `connector "${t.name}": authorization server metadata ${uri} has no token_endpoint`);
    // MCP authorization §Authorization Code Protection: no S256 advertised, no login.
    if (!(as.code_challenge_methods_supported ?? []).includes('S256')) {
      throw new GatehouseError('OAUTH_REFUSED', `connector "${t.name}": ${issuer} does not advertise PKCE with S256 (code_challenge_methods_supported); the MCP authorization spec forbids going on without it`);
    }
    return as;
  }
  throw new GatehouseError('OAUTH_REFUSED', `connector "${t.name}": no authorization server metadata at ${issuer} (tried ${authorizationServerUris(issuer).join(', ')})`);
}

/** Discovers everything a login needs. Throws OAUTH_REFUSED naming what was refused, UPSTREAM_UNAVAILABLE when a server cannot be reached. */
export async function discover(t: OAuthTarget, http: OAuthFetch): Promise<Discovered> {
  const asked = t.oauth.resourceMetadata === undefined ? await challenge(t, http) : {};
  const prm = await resourceMetadata(t, http, asked.metadata);
  const issuer = chooseIssuer(t, prm);
  const as = await serverMetadata(t, http, issuer);
  const scopes = t.oauth.scopes ?? asked.scope?.split(' ').filter((s) => s !== '') ?? prm?.scopes;
  return { resource: prm?.resource ?? canonicalResource(t.url), issuer: as.issuer, as, scopes: scopes !== undefined && scopes.length > 0 ? scopes : undefined };
}
