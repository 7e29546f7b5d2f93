/**
 * Attacks on upstream OAuth found in review, each named after what it tries:
 * a token sent to a server it was not issued for, a keychain login that
 * sends the refresh token over plain http, a server that refuses every fresh
 * token (one refresh per call, forever), a refresh that lands after a new
 * login and overwrites it, a login entry rendered into a header as a
 * ${secret:}, a device flow whose interval overflows the timer, and a token
 * answer kept whole in an error's cause chain.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatehouseError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import type { HttpConnector } from '../../../src/registry/schema.js';
import { Redactor } from '../../../src/secrets/redact.js';
import { learnLogin, loginEntry, serializeLogin, type OAuthLogin } from '../../../src/secrets/oauth/login.js';
import type { LoginStore } from '../../../src/secrets/oauth/store.js';
import { StoreResolver, type SecretResolver } from '../../../src/secrets/resolve.js';
import type { SecretStore } from '../../../src/secrets/store.js';
import { httpTransport } from '../../../src/upstreams/http-transport.js';
import { deviceLogin } from '../../../src/upstreams/oauth/device-flow.js';
import { oauthFetch } from '../../../src/upstreams/oauth/http.js';
import { login } from '../../../src/upstreams/oauth/login.js';
import { OAuthLogins } from '../../../src/upstreams/oauth/logins.js';
import { OAuthSession } from '../../../src/upstreams/oauth/session.js';
import { startAuthServer, startMcpResource, type AuthServer, type McpResource } from './servers.js';

let as: AuthServer;
let mcp: McpResource;
/** A server of the test's: what it answers is set per test; every Authorization it saw is kept. */
let hostile: Server;
let hostileOrigin: string;
let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => r.writeHead(404).end();
const hostileSaw: string[] = [];

beforeAll(async () => {
  as = await startAuthServer();
  mcp = await startMcpResource(as);
  hostile = createServer((req, res) => {
    hostileSaw.push(req.headers.authorization ?? '');
    handler(req, res);
  });
  await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', () => r()));
  hostileOrigin = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await mcp?.close();
  await as?.close();
  hostile?.closeAllConnections();
  hostile?.close();
});

async function signIn(): Promise<OAuthLogin> {
  const r = await login({
    target: { name: 'remote', file: '/r.yaml', url: mcp.url, oauth: { authorizationServer: as.origin, allowOrigins: [], per: 'connector', flow: 'browser' } },
    flow: 'browser',
    browserAtHand: true,
    onAuthorizeUrl: (u) => void fetch(u),
    onDeviceCode: () => undefined,
  });
  return r.login;
}

function memoryStore(initial: OAuthLogin | null): LoginStore & { value: OAuthLogin | null; writes: number } {
  const s = {
    entry: 'remote.oauth',
    value: initial,
    writes: 0,
    read: async () => s.value,
    write: async (l: OAuthLogin) => {
      s.value = l;
      s.writes++;
    },
  };
  return s;
}

/** A resolver holding logins in memory (what OAuthLogins needs of the gateway's). */
function memoryResolver(entries: Map<string, string>): SecretResolver {
  return {
    render: async (v) => v,
    entry: async (name) => entries.get(name) ?? null,
    setEntry: async (name, _c, value) => void entries.set(name, value),
    entryNames: async () => [...entries.keys()],
  };
}

function connector(url: string, per: 'connector' | 'agent' = 'connector'): HttpConnector & { oauth: NonNullable<HttpConnector['oauth']> } {
  return { name: 'remote', kind: 'http', url, headers: {}, enabled: true, tools: { allow: ['*'], deny: [] }, timeouts: {}, file: '/r.yaml', oauth: { allowOrigins: [], per, flow: 'auto' } } as unknown as HttpConnector & {
    oauth: NonNullable<HttpConnector['oauth']>;
  };
}

const INITIALIZE = { jsonrpc: '2.0' as const, id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } };

async function failure(p: Promise<unknown>): Promise<GatehouseError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GatehouseError) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

describe('upstream OAuth attacks', { timeout: 30_000 }, () => {
  it('token_sent_to_other_resource_refused: a login issued for one MCP server is never sent to another (the connector\'s url changed; RFC 8707)', async () => {
    const l = await signIn();
    expect(l.resource).toBe(mcp.url);
    handler = (_q, r) => r.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    hostileSaw.length = 0;
    // The registry now points the connector at another server; the keychain still holds the old server's login.
    const c = connector(`${hostileOrigin}/mcp`);
    const logins = new OAuthLogins(c, memoryResolver(new Map([[loginEntry('remote'), JSON.stringify(l)]])), createLogger({ level: 'silent' }));
    const dispatcher = new Agent();
    const t = httpTransport(c, { owner: {}, dispatcher: () => dispatcher, secrets: memoryResolver(new Map()), connectTimeoutMs: 5000, resultBytes: 1 << 20, oauth: logins.session() });
    await t.start();
    const e = await failure(t.send(INITIALIZE));
    await t.close();
    await dispatcher.close();
    expect(e.code).toBe('OAUTH_LOGIN_REQUIRED');
    expect(e.message).toContain('gatehouse connector login remote');
    expect(hostileSaw.join('\n')).not.toContain(l.accessToken);
  });

  it('plain_http_token_endpoint_in_keychain_refused: a login record whose token endpoint is plain http off this machine never gets the refresh token', async () => {
    const l = await signIn();
    const forged = { ...l, tokenEndpoint: 'http://169.254.169.254/token' };
    let asked = 0;
    const s = new OAuthSession({
      connector: 'remote',
      url: mcp.url,
      store: memoryStore(forged),
      clientSecret: async () => undefined,
      now: () => l.expiresAt as number,
      http: async () => {
        asked++;
        throw new Error('no request may leave');
      },
    });
    const e = await failure(s.token());
    expect(e.code).toBe('OAUTH_LOGIN_REQUIRED');
    expect(asked).toBe(0);
  });

  it('fresh_token_refused_no_refresh_storm: a server refusing every freshly refreshed token costs one refresh, not one per call (per-agent logins)', async () => {
    const l = await signIn();
    handler = (_q, r) => r.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
    const c = connector(`${hostileOrigin}/mcp`, 'agent');
    const entries = new Map([[loginEntry('remote', 'agent-a'), JSON.stringify({ ...l, resource: `${hostileOrigin}/mcp` })]]);
    const logins = new OAuthLogins(c, memoryResolver(entries), createLogger({ level: 'silent' }));
    const dispatcher = new Agent();
    const before = as.provider.refreshRequests;
    for (let i = 0; i < 5; i++) {
      const t = httpTransport(c, { owner: {}, dispatcher: () => dispatcher, secrets: memoryResolver(new Map()), connectTimeoutMs: 5000, resultBytes: 1 << 20, oauth: logins.session('agent-a') });
      await t.start();
      const e = await failure(t.send(INITIALIZE));
      await t.close();
      expect(e.code).toBe('OAUTH_LOGIN_REQUIRED');
      expect(e.message).toContain('gatehouse connector login remote --for agent-a');
    }
    await dispatcher.close();
    expect(as.provider.refreshRequests - before).toBe(1);
  });

  it('relogin_during_refresh_not_clobbered: a refresh that lands after `connector login` wrote a new login neither replaces it in memory nor overwrites it in the keychain', async () => {
    const old = await signIn();
    const fresh = await signIn();
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    handler = (_q, r) => void held.then(() => r.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'at-late-refresh', token_type: 'Bearer', expires_in: 3600, refresh_token: 'rt-late-refresh' })));
    const store = memoryStore({ ...old, tokenEndpoint: `${hostileOrigin}/token` });
    let now = old.expiresAt as number;
    const s = new OAuthSession({ connector: 'remote', store, clientSecret: async () => undefined, now: () => now });
    const pending = s.token().catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    // `connector login` writes the new login; the watch tells the session.
    store.value = fresh;
    s.invalidate();
    release();
    // The call that was waiting goes on with the new login, not with a token nobody learned for redaction.
    expect(await pending).toBe(fresh.accessToken);
    expect(store.value).toEqual(fresh);
    expect(store.writes).toBe(0);
    now = fresh.obtainedAt;
    expect(await s.token()).toBe(fresh.accessToken);
  });

  it('login_entry_as_secret_refused: ${secret:NAME.oauth} in the connector\'s own header does not send its refresh token and client secret upstream', async () => {
    const l = await signIn();
    const values = new Map([['remote.oauth', JSON.stringify({ ...l, clientSecret: 'dcr-client-secret-xyz' })]]);
    const store: SecretStore = {
      description: 'memory',
      get: async (n) => values.get(n) ?? null,
      set: async (n, v) => void values.set(n, v),
      delete: async (n) => values.delete(n),
      list: async () => [...values.keys()],
    };
    const r = new StoreResolver(store, { bindings: { owner: new Map([['remote.oauth', 'remote']]) }, redactor: new Redactor(), cacheMs: 0 });
    const e = await failure(r.render('${secret:remote.oauth}', { connector: 'remote', where: 'header X-Debug' }));
    expect(e.code).toBe('SECRET_UNSAFE');
    expect(e.message).not.toContain(l.refreshToken as string);
  });

  it('device_interval_overflow_clamped: a device code with a huge interval does not overflow the timer into a poll storm', async () => {
    let polls = 0;
    handler = (req, res) => {
      const json = (status: number, body: object) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/device') return json(200, { device_code: 'dc', user_code: 'UC', verification_uri: `${hostileOrigin}/verify`, expires_in: 600, interval: 1e10 });
      polls++;
      return polls < 3 ? json(400, { error: 'authorization_pending' }) : json(200, { access_token: 'at-device', token_type: 'Bearer', expires_in: 3600 });
    };
    const waits: number[] = [];
    await deviceLogin({
      connector: 'remote',
      as: { issuer: hostileOrigin, token_endpoint: `${hostileOrigin}/token`, device_authorization_endpoint: `${hostileOrigin}/device` },
      client: { clientId: 'c', clientAuth: 'none', via: 'registry' },
      resource: mcp.url,
      scopes: undefined,
      http: oauthFetch(),
      onDeviceCode: () => undefined,
      sleep: async (ms) => void waits.push(ms),
    });
    // setTimeout fires at once (1 ms) for anything above 2^31-1 ms: the interval must stay a real wait.
    expect(waits.length).toBeGreaterThan(0);
    for (const w of waits) {
      expect(w).toBeGreaterThanOrEqual(1000);
      expect(w).toBeLessThanOrEqual(2 ** 31 - 1);
    }
  });

  it('token_answer_not_kept_in_error_cause: a refused token answer (unknown token_type) leaves no token in the error, its cause chain included', async () => {
    const l = await signIn();
    handler = (_q, r) => r.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'at-SECRET-in-cause', token_type: 'mac', refresh_token: 'rt-SECRET-in-cause' }));
    const s = new OAuthSession({ connector: 'remote', store: memoryStore({ ...l, tokenEndpoint: `${hostileOrigin}/token` }), clientSecret: async () => undefined, now: () => l.expiresAt as number });
    const e = await failure(s.token());
    expect(e.code).toBe('OAUTH_REFUSED');
    expect(inspect(e, { depth: 20 })).not.toContain('SECRET-in-cause');
  });

  it('redaction_survives_token_churn: a refresh token the server does not rotate and a registered client secret stay redacted after many refreshes', () => {
    const r = new Redactor();
    const base: OAuthLogin = {
      v: 1,
      issuer: 'https://as.example.com',
      resource: 'https://mcp.example.com/mcp',
      tokenEndpoint: 'https://as.example.com/token',
      clientId: 'client-1',
      clientSecret: 'registered-client-secret-0123456789',
      clientAuth: 'client_secret_basic',
      accessToken: 'access-token-0000000000000000',
      refreshToken: 'refresh-token-never-rotated-0123456789',
      obtainedAt: 1,
    };
    learnLogin(r, 'remote.oauth', serializeLogin(base));
    // Every refresh a new access token (each one learned as it is written), the refresh token and the client kept.
    for (let i = 1; i <= 40; i++) learnLogin(r, 'remote.oauth', serializeLogin({ ...base, accessToken: `access-token-${String(i).padStart(16, '0')}` }));
    const text = `rt ${base.refreshToken} cs ${base.clientSecret} at access-token-${String(40).padStart(16, '0')}`;
    expect(r.redactText(text)).not.toContain(base.refreshToken);
    expect(r.redactText(text)).not.toContain(base.clientSecret);
    expect(r.redactText(text)).not.toContain('access-token-');
  });

  it('keychain_locked_no_unauthenticated_call: a keychain that cannot be read fails the request with KEYCHAIN_UNAVAILABLE; nothing goes upstream without the token', async () => {
    handler = (_q, r) => r.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    hostileSaw.length = 0;
    const c = connector(`${hostileOrigin}/mcp`);
    const locked: SecretResolver = {
      render: async (v) => v,
      entry: async () => {
        throw new GatehouseError('KEYCHAIN_UNAVAILABLE', 'the OS keychain is locked');
      },
      setEntry: async () => undefined,
    };
    const logins = new OAuthLogins(c, locked, createLogger({ level: 'silent' }));
    const dispatcher = new Agent();
    const t = httpTransport(c, { owner: {}, dispatcher: () => dispatcher, secrets: locked, connectTimeoutMs: 5000, resultBytes: 1 << 20, oauth: logins.session() });
    await t.start();
    expect((await failure(t.send(INITIALIZE))).code).toBe('KEYCHAIN_UNAVAILABLE');
    await t.close();
    await dispatcher.close();
    expect(hostileSaw).toEqual([]);
  });

  it('refresh_garbage_answer_uses_valid_token: a token endpoint answering garbage while the token is still valid does not fail every call until it expires', async () => {
    const l = await signIn();
    handler = (_q, r) => r.writeHead(400, { 'content-type': 'text/html' }).end('<html>oops</html>');
    let now = (l.expiresAt as number) - 60_000;
    const s = new OAuthSession({ connector: 'remote', store: memoryStore({ ...l, tokenEndpoint: `${hostileOrigin}/token` }), clientSecret: async () => undefined, now: () => now });
    expect(await s.token()).toBe(l.accessToken);
    expect(await s.token()).toBe(l.accessToken);
    now = l.expiresAt as number;
    expect((await failure(s.token())).code).toBe('OAUTH_REFUSED');
  });

  it('login_from_other_issuer_refused: after oauth.authorizationServer is pinned to another server, the old login (and its refresh token) is not used', async () => {
    const l = await signIn();
    handler = (_q, r) => r.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    hostileSaw.length = 0;
    const c = connector(mcp.url);
    c.oauth.authorizationServer = 'https://as.example.com';
    const logins = new OAuthLogins(c, memoryResolver(new Map([[loginEntry('remote'), JSON.stringify(l)]])), createLogger({ level: 'silent' }));
    const e = await failure(logins.session().token());
    expect(e.code).toBe('OAUTH_LOGIN_REQUIRED');
    expect(e.message).toContain('https://as.example.com');
    // The same login with the registry naming its own server is fine (a trailing slash aside).
    c.oauth.authorizationServer = `${as.origin}/`;
    const ok = new OAuthLogins(c, memoryResolver(new Map([[loginEntry('remote'), JSON.stringify(l)]])), createLogger({ level: 'silent' }));
    expect(await ok.session().token()).toBe(l.accessToken);
  });
});
