/**
 * OAuthSession, the gateway's holder of one login's access token, against
 * the real authorization server with its clock in the test's hands: refresh
 * ahead of expiry, single-flight, rotation, a server that is down, a refresh
 * token another process already rotated, and token answers that are refused.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatehouseError } from '../../../src/errors.js';
import type { OAuthLogin } from '../../../src/secrets/oauth/login.js';
import type { LoginStore } from '../../../src/secrets/oauth/store.js';
import { login } from '../../../src/upstreams/oauth/login.js';
import { OAuthSession } from '../../../src/upstreams/oauth/session.js';
import { startAuthServer, startMcpResource, type AuthServer, type McpResource } from './servers.js';

let as: AuthServer;
let mcp: McpResource;
let hostile: Server;
let hostileOrigin: string;
let hostileAnswer = '{}';

beforeAll(async () => {
  as = await startAuthServer();
  mcp = await startMcpResource(as);
  hostile = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(hostileAnswer));
  await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', () => r()));
  hostileOrigin = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await mcp?.close();
  await as?.close();
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

async function failure(p: Promise<unknown>): Promise<GatehouseError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GatehouseError) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

describe('OAuthSession', () => {
  it('refresh_ahead_single_flight: a token not yet expired but due is refreshed once for 100 concurrent callers, and the new login is kept', async () => {
    const l = await signIn();
    let now = l.obtainedAt;
    const store = memoryStore(l);
    const s = new OAuthSession({ connector: 'remote', store, clientSecret: async () => undefined, now: () => now });
    expect(await s.token()).toBe(l.accessToken);
    // 59 min into a 60 min token: within the two minutes before expiry.
    now = l.obtainedAt + 59 * 60_000;
    const before = as.provider.refreshRequests;
    const tokens = await Promise.all(Array.from({ length: 100 }, () => s.token()));
    expect(as.provider.refreshRequests - before).toBe(1);
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(l.accessToken);
    expect(as.provider.access.has(l.accessToken)).toBe(true);
    expect(store.writes).toBe(1);
    expect(store.value?.refreshToken).not.toBe(l.refreshToken);
    expect(as.provider.resources.at(-1)).toBe(mcp.url);
  });

  it('rotated_elsewhere_adopted: a refresh token another process already rotated is answered from the keychain\'s newer login, not as a lost login', async () => {
    const l = await signIn();
    const keychain = memoryStore(l);
    let now = l.obtainedAt;
    const ours = new OAuthSession({ connector: 'remote', store: keychain, clientSecret: async () => undefined, now: () => now });
    expect(await ours.token()).toBe(l.accessToken);
    now = l.expiresAt as number;
    // Another process (connector test, a second gateway) refreshes first: the server rotates, the keychain gets its login.
    const theirs = await new OAuthSession({ connector: 'remote', store: keychain, clientSecret: async () => undefined, now: () => now }).token();
    expect(as.provider.refresh.has(l.refreshToken as string)).toBe(false);
    const before = as.provider.refreshRequests;
    expect(await ours.token()).toBe(theirs);
    // One refused refresh, then the keychain: no second refresh, no lost login.
    expect(as.provider.refreshRequests - before).toBe(1);
  });

  it('authorization_server_down_uses_valid_token: a failed refresh keeps using a token that has not expired, and says so once it has', async () => {
    const l = await signIn();
    const gone = { ...l, tokenEndpoint: 'http://127.0.0.1:9/token' };
    let now = l.obtainedAt + 59 * 60_000;
    const s = new OAuthSession({ connector: 'remote', store: memoryStore(gone), clientSecret: async () => undefined, now: () => now });
    expect(await s.token()).toBe(l.accessToken);
    now = (l.expiresAt as number) + 1;
    const e = await failure(s.token());
    expect(e.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(e.message).toContain('http://127.0.0.1:9');
  });

  it('not_logged_in_once: no login is OAUTH_LOGIN_REQUIRED with the command, and the store is not asked again until invalidated', async () => {
    const store = memoryStore(null);
    let reads = 0;
    const read = store.read;
    store.read = async () => (reads++, read());
    const s = new OAuthSession({ connector: 'remote', agent: 'agent-a', store, clientSecret: async () => undefined });
    const e = await failure(s.token());
    expect(e.code).toBe('OAUTH_LOGIN_REQUIRED');
    expect(e.message).toContain('gatehouse connector login remote --for agent-a');
    await failure(s.token());
    expect(reads).toBe(1);
    store.value = await signIn();
    s.invalidate();
    expect(await s.token()).toBe(store.value.accessToken);
  });

  it('header_injection_token_refused: an access token with CR/LF from the token endpoint is refused and nothing is stored', async () => {
    const l = await signIn();
    const store = memoryStore({ ...l, tokenEndpoint: `${hostileOrigin}/token` });
    hostileAnswer = JSON.stringify({ access_token: 'abc\r\nX-Injected: 1', token_type: 'Bearer', expires_in: 3600 });
    const s = new OAuthSession({ connector: 'remote', store, clientSecret: async () => undefined, now: () => l.expiresAt as number });
    const e = await failure(s.token());
    expect(e.code).toBe('OAUTH_REFUSED');
    expect(e.message).toMatch(/accessToken/);
    expect(store.writes).toBe(0);
  });

  it('non_bearer_token_refused: a DPoP-bound token is refused (only Bearer is supported)', async () => {
    const l = await signIn();
    const store = memoryStore({ ...l, tokenEndpoint: `${hostileOrigin}/token` });
    hostileAnswer = JSON.stringify({ access_token: 'abcdefgh12345', token_type: 'DPoP', expires_in: 3600 });
    const s = new OAuthSession({ connector: 'remote', store, clientSecret: async () => undefined, now: () => l.expiresAt as number });
    expect((await failure(s.token())).message).toMatch(/only Bearer/);
    expect(store.writes).toBe(0);
  });
});
