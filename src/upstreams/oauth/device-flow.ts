/**
 * The device authorization grant (RFC 8628) for a machine without a browser:
 * the user opens the verification URI elsewhere and enters the code; the
 * token endpoint is polled at the server's interval (slowed down when it
 * says so, §3.5) until it answers, denies, or the code expires.
 */
import * as oauth from 'oauth4webapi';
import { GatehouseError } from '../../errors.js';
import { clientAuthOf, clientOf, libOptions, type ClientIdentity } from './client.js';
import { oauthError, oauthErrorCode, quoted } from './errors.js';
import type { OAuthFetch } from './http.js';

export interface DeviceCode {
  verificationUri: string;
  verificationUriComplete?: string;
  userCode: string;
  expiresInS: number;
}

export interface DeviceLoginOptions {
  connector: string;
  as: oauth.AuthorizationServer;
  client: ClientIdentity;
  resource: string;
  scopes: string[] | undefined;
  http: OAuthFetch;
  onDeviceCode: (code: DeviceCode) => void;
  /** Waits between polls (tests may pass a shorter one). */
  sleep?: (ms: number) => Promise<void>;
}

const MAX_INTERVAL_S = 600;
const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function deviceLogin(o: DeviceLoginOptions): Promise<oauth.TokenEndpointResponse> {
  if (typeof o.as.device_authorization_endpoint !== 'string') {
    throw new GatehouseError('OAUTH_REFUSED', `connector "${o.connector}": ${o.as.issuer} offers no device authorization (RFC 8628); sign in with a browser instead (--browser)`);
  }
  const client = clientOf(o.client);
  const auth = clientAuthOf(o.client);
  let dc: oauth.DeviceAuthorizationResponse;
  try {
    const res = await oauth.deviceAuthorizationRequest(o.as, client, auth, { resource: o.resource, ...(o.scopes !== undefined ? { scope: o.scopes.join(' ') } : {}) }, libOptions(o.http));
    dc = await oauth.processDeviceAuthorizationResponse(o.as, client, res);
  } catch (e) {
    throw oauthError(o.connector, e, `device authorization at ${o.as.device_authorization_endpoint}`);
  }
  for (const [k, v] of [['verification_uri', dc.verification_uri], ['verification_uri_complete', dc.verification_uri_complete]] as const) {
    if (v !== undefined && !/^https?:\/\//.test(v)) throw new GatehouseError('OAUTH_REFUSED', `connector "${o.connector}": the device authorization's ${k} is not an http(s) URL; refused`);
  }
  o.onDeviceCode({
    verificationUri: quoted(dc.verification_uri),
    ...(dc.verification_uri_complete !== undefined ? { verificationUriComplete: quoted(dc.verification_uri_complete) } : {}),
    userCode: quoted(dc.user_code),
    expiresInS: dc.expires_in,
  });
  const sleep = o.sleep ?? wait;
  // §3.2: 5 s when the server names no interval; at most an hour of polling whatever expires_in says.
  // At most 10 min between polls: a larger wait would overflow setTimeout (2^31-1 ms) into a poll every millisecond.
  let interval = Math.min(Math.max(1, dc.interval ?? 5), MAX_INTERVAL_S) * 1000;
  const end = Date.now() + Math.min(dc.expires_in, 3600) * 1000;
  for (;;) {
    await sleep(interval);
    try {
      const res = await oauth.deviceCodeGrantRequest(o.as, client, auth, dc.device_code, { ...libOptions(o.http), additionalParameters: { resource: o.resource } });
      return await oauth.processDeviceCodeResponse(o.as, client, res);
    } catch (e) {
      const code = oauthErrorCode(e);
      if (code === 'authorization_pending' && Date.now() < end) continue;
      if (code === 'slow_down' && Date.now() < end) {
        interval = Math.min(interval + 5000, MAX_INTERVAL_S * 1000);
        continue;
      }
      if (code === 'authorization_pending' || code === 'expired_token') throw new GatehouseError('OAUTH_REFUSED', `connector "${o.connector}": the device code expired before the sign-in was completed; run the login again`);
      if (code === 'access_denied') throw new GatehouseError('OAUTH_REFUSED', `connector "${o.connector}": the sign-in was denied at ${o.as.issuer}`);
      throw oauthError(o.connector, e, `the token endpoint ${o.as.token_endpoint ?? ''}`);
    }
  }
}
