/**
 * `connector login`'s flows against a real authorization server (the MCP
 * SDK's, tests/upstreams/oauth/servers.ts) and a remote MCP server that
 * requires its tokens: discovery from the 401, dynamic registration, the
 * browser flow (PKCE S256, state, resource) driven by following its
 * redirects, the device flow, and the attacks on the redirect.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatehouseError } from '../../../src/errors.js';
import { login, type LoginOptions } from '../../../src/upstreams/oauth/login.js';
import { clientIdentity } from '../../../src/upstreams/oauth/client.js';
import { discover, type OAuthTarget } from '../../../src/upstreams/oauth/discovery.js';
import { oauthFetch } from '../../../src/upstreams/oauth/http.js';
import { startAuthServer, startMcpResource, type AuthServer, type McpResource } from './servers.js';

let as: AuthServer;
let mcp: McpResource;

beforeAll(async () => {
  as = await startAuthServer();
  mcp = await startMcpResource(as);
});
afterAll(async () => {
  await mcp?.close();
  await as?.close();
});

function target(extra: Partial<OAuthTarget['oauth']> = {}): OAuthTarget {
  return { name: 'remote', file: '/registry/remote.yaml', url: mcp.url, oauth: { authorizationServer: as.origin, allowOrigins: [], per: 'connector', flow: 'auto', ...extra } };
}

const noDevice = () => {
  throw new Error('the device flow was not expected');
};

/** What a browser does with the authorize URL: follow its redirects (to the loopback callback). */
async function browse(url: string): Promise<Response> {
  return fetch(url, { redirect: 'follow' });
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

function browserLogin(o: Partial<LoginOptions> & { onAuthorizeUrl: LoginOptions['onAuthorizeUrl'] }) {
  return login({ target: target(), flow: 'browser', browserAtHand: true, onDeviceCode: noDevice, ...o });
}

describe('connector login against a real authorization server', () => {
  it('browser flow: 401 → resource metadata → AS metadata, dynamic registration, PKCE S256 with state and resource; the tokens are for the MCP server', async () => {
    const before = as.provider.clientsStore.registrations;
    let authorize: URL | undefined;
    let page: Response | undefined;
    const r = await browserLogin({
      onAuthorizeUrl: (u) => {
        authorize = new URL(u);
        void browse(u).then((p) => (page = p));
      },
    });
    expect(r.flow).toBe('browser');
    expect(r.client.via).toBe('dynamic-registration');
    expect(as.provider.clientsStore.registrations).toBe(before + 1);
    const q = authorize?.searchParams;
    expect(q?.get('code_challenge_method')).toBe('S256');
    expect(q?.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q?.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(q?.get('resource')).toBe(mcp.url);
    expect(q?.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(as.provider.resources.at(-1)).toBe(mcp.url);
    expect(r.login.issuer.replace(/\/$/, '')).toBe(as.origin);
    expect(r.login.accessToken).toMatch(/^at-alice-/);
    expect(r.login.refreshToken).toMatch(/^rt-alice-/);
    expect(r.login.expiresAt).toBeGreaterThan(Date.now());
    expect(as.provider.access.get(r.login.accessToken)?.resource).toBe(mcp.url);
    expect(page?.status).toBe(200);
  });

  it('device flow (RFC 8628): the code is shown, the user approves elsewhere, the token arrives', async () => {
    as.provider.nextUser = 'dave';
    let shown: { userCode: string; verificationUri: string } | undefined;
    const r = await login({
      target: target(),
      flow: 'device',
      browserAtHand: false,
      onAuthorizeUrl: () => {
        throw new Error('no browser here');
      },
      onDeviceCode: (c) => {
        shown = c;
        as.provider.approveDevice(c.userCode);
      },
    });
    as.provider.nextUser = 'alice';
    expect(r.flow).toBe('device');
    expect(shown?.verificationUri).toBe(`${as.origin}/device`);
    expect(r.login.accessToken).toMatch(/^at-dave-/);
    expect(as.provider.resources.at(-1)).toBe(mcp.url);
  });

  it('flow auto without a browser at hand takes the device flow', async () => {
    const r = await login({ target: target(), flow: 'auto', browserAtHand: false, onAuthorizeUrl: () => undefined, onDeviceCode: (c) => as.provider.approveDevice(c.userCode) });
    expect(r.flow).toBe('device');
  });

  it('login_csrf_wrong_state_refused: a redirect carrying another state ends the login, nothing is issued', async () => {
    const exchanges = as.provider.codeExchanges;
    let answer: Promise<Response> | undefined;
    const e = await failure(
      browserLogin({
        onAuthorizeUrl: (u) => {
          const redirect = new URL(u).searchParams.get('redirect_uri') as string;
          answer = fetch(`${redirect}?code=attacker-code&state=not-this-login`);
        },
      }),
    );
    expect(e.code).toBe('OAUTH_REFUSED');
    expect(e.message).toMatch(/state is not this login's/);
    expect((await answer)?.status).toBe(400);
    expect(as.provider.codeExchanges).toBe(exchanges);
  });

  it('redirect_to_other_path_ignored: a request to another path of the loopback listener gets 404 and does not end the login', async () => {
    let other: number | undefined;
    const r = await browserLogin({
      onAuthorizeUrl: (u) => {
        const redirect = new URL(new URL(u).searchParams.get('redirect_uri') as string);
        void fetch(`${redirect.origin}/elsewhere?code=x&state=y`)
          .then((res) => (other = res.status))
          .then(() => browse(u));
      },
    });
    expect(other).toBe(404);
    expect(r.login.accessToken).toMatch(/^at-/);
  });

  it('pkce_code_injection_refused: a code the attacker got with a challenge of their own, injected with this login\'s state, fails the verifier check at the server', async () => {
    // One client for both (pre-registered), so only PKCE tells the attacker's code from the victim's.
    await as.provider.clientsStore.registerClient({ client_id: 'shared-client', redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
    const e = await failure(
      login({
        target: target({ clientId: 'shared-client' }),
        flow: 'browser',
        browserAtHand: true,
        onDeviceCode: noDevice,
        onAuthorizeUrl: (u) => {
          const victim = new URL(u);
          const attacker = new URL(u);
          // The attacker's own authorization request: their challenge (of a verifier the victim does not hold).
          attacker.searchParams.set('code_challenge', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
          attacker.searchParams.set('state', 'attacker');
          void fetch(attacker.href, { redirect: 'manual' }).then((res) => {
            const code = new URL(res.headers.get('location') as string).searchParams.get('code');
            return fetch(`${victim.searchParams.get('redirect_uri')}?code=${code}&state=${victim.searchParams.get('state')}`);
          });
        },
      }),
    );
    expect(e.code).toBe('OAUTH_REFUSED');
    expect(e.message).toMatch(/invalid_grant.*code_verifier does not match/);
  });

  it('access_denied at the authorization server is a clear refusal', async () => {
    const e = await failure(
      browserLogin({
        onAuthorizeUrl: (u) => {
          const q = new URL(u).searchParams;
          void fetch(`${q.get('redirect_uri')}?error=access_denied&error_description=${encodeURIComponent('the user said no\r\nX-Injected: 1')}&state=${q.get('state')}`);
        },
      }),
    );
    expect(e.code).toBe('OAUTH_REFUSED');
    expect(e.message).toContain('access_denied');
    expect(e.message).not.toMatch(/[\r\n]/);
  });

  it('client identity in the spec\'s order: the registry\'s client, a client ID metadata document where supported, else dynamic registration', async () => {
    const http = oauthFetch();
    const cimd = 'https://gatehouse.example.com/oauth/client.json';
    const o = { http, redirectUri: 'http://127.0.0.1:1/callback' };
    const d = await discover(target({ clientMetadataUrl: cimd }), http);
    // This server does not advertise client ID metadata documents: registered instead.
    expect((await clientIdentity(target({ clientMetadataUrl: cimd }), d, o)).via).toBe('dynamic-registration');
    const supported = { ...d, as: { ...d.as, client_id_metadata_document_supported: true } };
    expect(await clientIdentity(target({ clientMetadataUrl: cimd }), supported, o)).toEqual({ clientId: cimd, clientAuth: 'none', via: 'metadata-document' });
    expect(await clientIdentity(target({ clientId: 'pre', clientMetadataUrl: cimd }), supported, { ...o, clientSecret: 'pre-secret-123' })).toEqual({ clientId: 'pre', clientSecret: 'pre-secret-123', clientAuth: 'client_secret_post', via: 'registry' });
    // (the SDK's server lists client_secret_post and not basic, so post is chosen: RFC 8414 §2)
    const { registration_endpoint: _dcr, ...withoutDcr } = d.as;
    const noDcr = { ...d, as: withoutDcr };
    await expect(clientIdentity(target(), noDcr, o)).rejects.toThrow(/offers no dynamic client registration .*set oauth\.clientId in \/registry\/remote\.yaml/);
  });

  it('authorization_server_down: discovery names the server that could not be reached', async () => {
    const e = await failure(login({ target: { ...target(), oauth: { ...target().oauth, authorizationServer: 'http://127.0.0.1:9', resourceMetadata: 'http://127.0.0.1:9/.well-known/oauth-protected-resource' } }, flow: 'browser', browserAtHand: true, onAuthorizeUrl: () => undefined, onDeviceCode: noDevice }));
    expect(e.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(e.message).toContain('http://127.0.0.1:9');
  });
});
