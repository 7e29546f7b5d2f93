/**
 * `gatehouse connector login NAME [--for AGENT]`: discovery, the client,
 * a browser or device sign-in, and the login that results (the caller keeps
 * it in the keychain). Nothing here prints: the caller is told the URL or the
 * code to show.
 */
import { GatehouseError } from '../../errors.js';
import type { OAuthLogin } from '../../secrets/oauth/login.js';
import { browserLogin, listenLoopback } from './browser-flow.js';
import { clientIdentity, type ClientIdentity } from './client.js';
import { deviceLogin, type DeviceCode } from './device-flow.js';
import { discover, type OAuthTarget } from './discovery.js';
import { oauthFetch, type OAuthFetch } from './http.js';
import { loginFrom } from './tokens.js';

export type LoginFlow = 'browser' | 'device';

export interface LoginOptions {
  target: OAuthTarget;
  /** Which sign-in: the caller decides (--browser/--device, oauth.flow, a browser at hand). */
  flow: LoginFlow | 'auto';
  /** For flow auto: whether a browser can be opened here. */
  browserAtHand: boolean;
  /** oauth.clientSecret, rendered from the keychain. */
  clientSecret?: string | undefined;
  /** The login kept so far (its registered client is used again). */
  previous?: OAuthLogin | undefined;
  onAuthorizeUrl: (url: string) => void;
  onDeviceCode: (code: DeviceCode) => void;
  /** Told which client identity is used (for the report). */
  onClient?: (c: ClientIdentity) => void;
  timeoutMs?: number;
  http?: OAuthFetch;
  now?: () => number;
  /** Between device-flow polls. */
  sleep?: (ms: number) => Promise<void>;
}

export interface LoginResult {
  login: OAuthLogin;
  flow: LoginFlow;
  client: ClientIdentity;
}

export async function login(o: LoginOptions): Promise<LoginResult> {
  const http = o.http ?? oauthFetch();
  const t = o.target;
  const d = await discover(t, http);
  const hasDevice = typeof d.as.device_authorization_endpoint === 'string';
  const hasBrowser = typeof d.as.authorization_endpoint === 'string';
  let flow: LoginFlow;
  if (o.flow !== 'auto') flow = o.flow;
  else if (o.browserAtHand && hasBrowser) flow = 'browser';
  else if (hasDevice) flow = 'device';
  else if (hasBrowser) flow = 'browser';
  else throw new GatehouseError('OAUTH_REFUSED', `connector "${t.name}": ${d.issuer} offers neither an authorization endpoint nor device authorization`);
  // The listener exists before the client: a dynamic registration registers its URI.
  const redirect = await listenLoopback(t.oauth.redirectPort);
  try {
    const client = await clientIdentity(t, d, { http, redirectUri: redirect.uri, clientSecret: o.clientSecret, previous: o.previous });
    o.onClient?.(client);
    const common = { connector: t.name, as: d.as, client, resource: d.resource, scopes: d.scopes, http };
    const tr =
      flow === 'browser'
        ? await browserLogin({ ...common, redirect, onAuthorizeUrl: o.onAuthorizeUrl, ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) })
        : await deviceLogin({ ...common, onDeviceCode: o.onDeviceCode, ...(o.sleep ? { sleep: o.sleep } : {}) });
    const now = (o.now ?? Date.now)();
    return { login: loginFrom({ connector: t.name, issuer: d.issuer, resource: d.resource, tokenEndpoint: d.as.token_endpoint as string, client }, tr, now), flow, client };
  } finally {
    redirect.close();
  }
}
