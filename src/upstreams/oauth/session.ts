/**
 * The access token of one login (a connector's, or one agent's), for the
 * requests the gateway sends upstream: refreshed ahead of expiry, one refresh
 * at a time however many calls wait for it (single-flight), a rotated refresh
 * token kept (OAuth 2.1 §4.3.1), and a refresh the server refuses turning
 * into OAUTH_LOGIN_REQUIRED with the exact command that fixes it — asked
 * once, not again until the keychain entry changes (no retry loop).
 */
import * as oauth from 'oauth4webapi';
import { GatehouseError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { refreshDueAt, type OAuthLogin } from '../../secrets/oauth/login.js';
import type { LoginStore } from '../../secrets/oauth/store.js';
import { checkResource, checkTransport, sameIssuer } from './checks.js';
import { clientAuthOf, clientOf, libOptions, type ClientIdentity } from './client.js';
import { oauthError, oauthErrorCode, quoted } from './errors.js';
import { oauthFetch, type OAuthFetch } from './http.js';
import { loginFrom } from './tokens.js';

/** Refresh answers that mean the grant is gone (RFC 6749 §5.2): only a new login helps. */
const GRANT_GONE = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client']);

export interface OAuthSessionOptions {
  connector: string;
  /** The agent whose login this is (`oauth: { per: agent }`). */
  agent?: string | undefined;
  store: LoginStore;
  /** The connector's MCP server URL: a login issued for another resource (RFC 8707) is never sent to it. */
  url?: string;
  /** oauth.authorizationServer: a login made at another authorization server is not used (nor its refresh token sent there). */
  issuer?: string | undefined;
  /** oauth.clientSecret of a pre-registered client, rendered when a refresh needs it. */
  clientSecret: () => Promise<string | undefined>;
  http?: OAuthFetch;
  now?: () => number;
  log?: Logger;
}

/** The command that logs in again. */
export function loginCommand(connector: string, agent?: string): string {
  return `gatehouse connector login ${connector}${agent !== undefined ? ` --for ${agent}` : ''}`;
}

export class OAuthSession {
  private readonly o: OAuthSessionOptions;
  private readonly http: OAuthFetch;
  private login: OAuthLogin | undefined;
  private loading: Promise<OAuthLogin> | undefined;
  private refreshing: Promise<OAuthLogin> | undefined;
  private dead: GatehouseError | undefined;
  /** Bumped when the keychain entry changes: a refresh begun before that neither replaces nor overwrites the new login. */
  private generation = 0;

  constructor(o: OAuthSessionOptions) {
    this.o = o;
    this.http = o.http ?? oauthFetch();
  }

  get fix(): string {
    return loginCommand(this.o.connector, this.o.agent);
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** The access token to send now, refreshed first when it is due. */
  async token(): Promise<string> {
    if (this.dead) throw this.dead;
    const login = await this.current();
    const due = refreshDueAt(login);
    if (due === undefined || this.now() < due) return login.accessToken;
    const expired = login.expiresAt !== undefined && this.now() >= login.expiresAt;
    if (login.refreshToken === undefined) {
      if (expired) throw this.kill('the access token expired and the server gave no refresh token');
      return login.accessToken;
    }
    try {
      return (await this.refresh(login)).accessToken;
    } catch (e) {
      // The authorization server is down or answered something unusable, the token still good: use it, refresh at the next call
      // (only a refused grant, OAUTH_LOGIN_REQUIRED, ends the login).
      if (!expired && e instanceof GatehouseError && e.code !== 'OAUTH_LOGIN_REQUIRED') {
        this.o.log?.warn({ err: e.message }, 'oauth: refresh failed; the current access token is still valid and is used');
        return login.accessToken;
      }
      throw e;
    }
  }

  /** The server answered 401 to `token`: a new one (refreshed once, whoever asks), or OAUTH_LOGIN_REQUIRED. */
  async rejected(token: string): Promise<string> {
    if (this.dead) throw this.dead;
    const login = await this.current();
    if (login.accessToken !== token) return login.accessToken;
    if (login.refreshToken === undefined) throw this.kill('the server refused the access token and there is no refresh token');
    const next = await this.refresh(login);
    return next.accessToken;
  }

  /** The login as last read or refreshed (undefined before the first use). */
  get loaded(): OAuthLogin | undefined {
    return this.login;
  }

  /** The keychain entry changed (a new login): read it again, and try again. */
  invalidate(): void {
    this.generation++;
    this.login = undefined;
    this.dead = undefined;
  }

  /** The server refused a token just refreshed: only a new login helps (no refresh per call from here on). */
  refused(why: string): GatehouseError {
    return this.kill(why);
  }

  private current(): Promise<OAuthLogin> {
    if (this.login) return Promise.resolve(this.login);
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async load(): Promise<OAuthLogin> {
    let l: OAuthLogin | null;
    try {
      l = await this.o.store.read();
    } catch (e) {
      if (e instanceof GatehouseError && e.code === 'OAUTH_LOGIN_REQUIRED') throw this.kill(e.message);
      throw e;
    }
    if (l === null) throw this.kill('not logged in');
    this.login = this.usable(l);
    return l;
  }

  /** The keychain's record is checked like metadata: its token goes only to the resource it was issued for (RFC 8707), its refresh token only over https. */
  private usable(l: OAuthLogin): OAuthLogin {
    const bound = this.o.url === undefined ? { ok: true as const } : checkResource(l.resource, this.o.url);
    if (!bound.ok) throw this.kill(`the login was made for ${l.resource}, not for this connector's server ${this.o.url} (${bound.reason})`);
    const pinned = this.o.issuer;
    if (pinned !== undefined && !sameIssuer(new URL(l.issuer).href, new URL(pinned).href)) throw this.kill(`the login was made at ${l.issuer}, not at the authorization server the registry names (${pinned})`);
    const tls = checkTransport(l.tokenEndpoint, 'its token endpoint');
    if (!tls.ok) throw this.kill(`the login is unusable: ${tls.reason}`);
    return l;
  }

  private refresh(from: OAuthLogin): Promise<OAuthLogin> {
    this.refreshing ??= this.refreshOnce(from).finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshOnce(from: OAuthLogin): Promise<OAuthLogin> {
    // Refreshed while this call waited for the previous refresh, or a new login arrived (invalidated): that one is the answer.
    const current = await this.current();
    if (current.accessToken !== from.accessToken) return current;
    const generation = this.generation;
    const refreshToken = from.refreshToken as string;
    const secret = from.clientSecret ?? (await this.o.clientSecret());
    const id: ClientIdentity = { clientId: from.clientId, ...(secret !== undefined ? { clientSecret: secret } : {}), clientAuth: from.clientAuth, via: from.clientSecret !== undefined ? 'earlier-registration' : 'registry' };
    const as: oauth.AuthorizationServer = { issuer: from.issuer, token_endpoint: from.tokenEndpoint };
    let tr: oauth.TokenEndpointResponse;
    try {
      const res = await oauth.refreshTokenGrantRequest(as, clientOf(id), clientAuthOf(id), refreshToken, { ...libOptions(this.http), additionalParameters: { resource: from.resource } });
      tr = await oauth.processRefreshTokenResponse(as, clientOf(id), res);
    } catch (e) {
      if (e instanceof GatehouseError) throw e;
      const code = oauthErrorCode(e) ?? (e instanceof oauth.WWWAuthenticateChallengeError ? 'invalid_client' : undefined);
      if (code !== undefined && GRANT_GONE.has(code)) {
        // Another process (connector test, a second gateway) may have rotated it first: the keychain's login counts.
        const stored = await this.o.store.read().catch(() => null);
        if (stored !== null && stored.refreshToken !== refreshToken) {
          this.login = this.usable(stored);
          return stored;
        }
        // A new login arrived meanwhile (its write revoked this one): it is not lost; this call alone fails.
        if (generation !== this.generation) throw new GatehouseError('OAUTH_REFUSED', `connector "${this.o.connector}": the login changed while its token was being refreshed; try again`);
        const desc = e instanceof oauth.ResponseBodyError && e.error_description !== undefined ? `: ${quoted(e.error_description)}` : '';
        throw this.kill(`the authorization server refused the refresh token (${code}${desc})`);
      }
      const status = (e as { response?: Response; cause?: unknown }).cause instanceof Response ? ((e as { cause: Response }).cause.status) : undefined;
      if (status !== undefined && status >= 500) {
        throw new GatehouseError('UPSTREAM_UNAVAILABLE', `connector "${this.o.connector}": the token endpoint ${from.tokenEndpoint} answered HTTP ${status}`);
      }
      throw oauthError(this.o.connector, e, `the token endpoint ${from.tokenEndpoint}`);
    }
    const next = loginFrom({ connector: this.o.connector, issuer: from.issuer, resource: from.resource, tokenEndpoint: from.tokenEndpoint, client: id }, tr, this.now(), from);
    // A new login arrived while this refresh was on its way: it stands (this answer is dropped, never sent, so never needs redacting).
    if (generation !== this.generation) return this.current();
    this.login = next;
    try {
      await this.o.store.write(next);
    } catch (e) {
      // Kept in memory: the calls go on; a restart before the next successful write needs a new login if the server rotated.
      this.o.log?.error({ err: e instanceof Error ? e.message : String(e), entry: this.o.store.entry }, 'oauth: the refreshed login could not be written to the keychain');
    }
    return next;
  }

  private kill(why: string): GatehouseError {
    const who = this.o.agent !== undefined ? ` (agent "${this.o.agent}")` : '';
    this.dead = new GatehouseError('OAUTH_LOGIN_REQUIRED', `connector "${this.o.connector}"${who}: ${why}; log in again: ${this.fix}`, {
      details: { connector: this.o.connector, fix: this.fix, ...(this.o.agent !== undefined ? { agent: this.o.agent } : {}) },
    });
    return this.dead;
  }
}
