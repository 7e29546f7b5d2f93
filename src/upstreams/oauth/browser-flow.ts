/**
 * The authorization code grant with PKCE (S256) through a loopback redirect
 * (RFC 8252 §7.3, OAuth 2.1 §4.1): a listener on 127.0.0.1 at a random port
 * takes the browser's one redirect; its `state` must be this login's (a
 * callback with any other is an attack — login CSRF — and ends the login),
 * and the code is exchanged with the verifier and the `resource` (RFC 8707).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { GatehouseError } from '../../errors.js';
import { clientAuthOf, clientOf, libOptions, type ClientIdentity } from './client.js';
import { oauthError, quoted } from './errors.js';
import type { OAuthFetch } from './http.js';

export const CALLBACK_PATH = '/callback';
export const DEFAULT_LOGIN_TIMEOUT_MS = 5 * 60_000;

const PAGE = (text: string) =>
  `<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>Gatehouse</title><p>${text}</p>`;

/** A listener for the one redirect; its URI is known before the client is chosen (dynamic registration registers it). */
export interface LoopbackRedirect {
  uri: string;
  /** Resolves with the callback's query once one with the right path arrives. */
  next(): Promise<{ params: URLSearchParams; answer: (ok: boolean, text: string) => void }>;
  close(): void;
}

export async function listenLoopback(fixedPort = 0): Promise<LoopbackRedirect> {
  const waiting: Array<(v: { params: URLSearchParams; answer: (ok: boolean, text: string) => void }) => void> = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== CALLBACK_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const answer = (ok: boolean, text: string) => {
      res.writeHead(ok ? 200 : 400, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'" }).end(PAGE(text));
    };
    const w = waiting.shift();
    if (w) w({ params: url.searchParams, answer });
    else answer(false, 'This login is not waiting for a redirect.');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(fixedPort, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    uri: `http://127.0.0.1:${port}${CALLBACK_PATH}`,
    next: () => new Promise((resolve) => waiting.push(resolve)),
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

export interface BrowserLoginOptions {
  connector: string;
  as: oauth.AuthorizationServer;
  client: ClientIdentity;
  redirect: LoopbackRedirect;
  resource: string;
  scopes: string[] | undefined;
  http: OAuthFetch;
  /** Told the URL to open (printed, and opened in a browser where one is at hand). */
  onAuthorizeUrl: (url: string) => void;
  timeoutMs?: number;
}

export async function browserLogin(o: BrowserLoginOptions): Promise<oauth.TokenEndpointResponse> {
  if (typeof o.as.authorization_endpoint !== 'string') {
    throw new GatehouseError('OAUTH_REFUSED', `connector "${o.connector}": ${o.as.issuer} has no authorization_endpoint; use the device flow (--device) if it offers one`);
  }
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(o.as.authorization_endpoint);
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: o.client.clientId,
    redirect_uri: o.redirect.uri,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    resource: o.resource,
    ...(o.scopes !== undefined ? { scope: o.scopes.join(' ') } : {}),
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  o.onAuthorizeUrl(url.href);

  const timeoutMs = o.timeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GatehouseError('OAUTH_REFUSED', `connector "${o.connector}": no browser came back to ${o.redirect.uri} within ${Math.round(timeoutMs / 1000)} s; run the login again`)), timeoutMs);
  });
  try {
    const cb = await Promise.race([o.redirect.next(), timeout]);
    let callback: URLSearchParams;
    try {
      // RFC 6749 §10.12 / OAuth 2.1 §7.5.1: the state binds the redirect to this login; `iss` is checked where sent (RFC 9207).
      callback = oauth.validateAuthResponse(o.as, clientOf(o.client), cb.params, state);
    } catch (e) {
      const err = e instanceof oauth.AuthorizationResponseError ? e : undefined;
      cb.answer(false, err ? `The sign-in was not completed: ${escapeHtml(quoted(err.error))}.` : 'This redirect does not belong to the login that is waiting; it was refused.');
      if (err) throw oauthError(o.connector, e, 'the authorization server');
      throw new GatehouseError('OAUTH_REFUSED', `connector "${o.connector}": a redirect arrived whose state is not this login's (${quoted((e as Error).message)}); refused, nothing was stored. Run the login again`);
    }
    cb.answer(true, 'Gatehouse is signed in. You can close this tab.');
    try {
      const res = await oauth.authorizationCodeGrantRequest(o.as, clientOf(o.client), clientAuthOf(o.client), callback, o.redirect.uri, verifier, {
        ...libOptions(o.http),
        additionalParameters: { resource: o.resource },
      });
      return await oauth.processAuthorizationCodeResponse(o.as, clientOf(o.client), res);
    } catch (e) {
      throw oauthError(o.connector, e, `the token endpoint ${o.as.token_endpoint ?? ''}`);
    }
  } finally {
    clearTimeout(timer);
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
