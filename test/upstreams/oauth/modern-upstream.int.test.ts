/**
 * An `oauth:` connector whose server speaks MCP 2026-07-28 only (issue #18
 * meets issue #20): the gateway's SDK v2 client goes through the same fetch
 * as the 2025-11-25 one, so every request (server/discover included) carries
 * the login's Bearer token, a 401 is answered with one refresh and a retry,
 * a refused login makes the connector not ready with its fix, and
 * `per: agent` gives each agent a 2026-07-28 client of its own with its own
 * token. The server refuses requests without a valid token and 2025-11-25
 * clients alike: nothing here can pass unauthenticated or by falling back.
 */
import { rmSync } from 'node:fs';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KeychainStore } from '../../../src/secrets/keychain.js';
import { notifySecretChanged } from '../../../src/secrets/notice.js';
import { loginEntry, type OAuthLogin } from '../../../src/secrets/oauth/login.js';
import { storeLoginStore } from '../../../src/secrets/oauth/store.js';
import { login } from '../../../src/upstreams/oauth/login.js';
import { startTestGateway, until, type ConnectorSpec, type TestGateway } from '../../helpers/gateway.js';
import { keychainToolsPresent, startKeychain, type Keychain } from '../../helpers/keychain.js';
import { modernRequest, responseOf } from '../../helpers/modern.js';
import { startAuthServer, startMcpResource, type AuthServer, type McpResource } from './servers.js';

const MODERN = '2026-07-28';

let keychain: Keychain;
let undo: () => void;
let as: AuthServer;
let mcp: McpResource;
const gateways: TestGateway[] = [];

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

beforeAll(async () => {
  keychain = await startKeychain();
  undo = keychain.use();
  as = await startAuthServer();
  mcp = await startMcpResource(as, { era: MODERN });
});
afterEach(async () => {
  while (gateways.length > 0) await gateways.pop()?.close();
  for (const name of await new KeychainStore().list()) await new KeychainStore().delete(name);
});
afterAll(async () => {
  await mcp?.close();
  await as?.close();
  undo?.();
  await keychain?.stop();
  if (keychain) rmSync(keychain.home, { recursive: true, force: true });
});

async function signIn(user: string): Promise<OAuthLogin> {
  as.provider.nextUser = user;
  const r = await login({
    target: { name: 'remote', file: '/registry/remote.yaml', url: mcp.url, oauth: { authorizationServer: as.origin, allowOrigins: [], per: 'connector', flow: 'browser' } },
    flow: 'browser',
    browserAtHand: true,
    onAuthorizeUrl: (u) => void fetch(u),
    onDeviceCode: () => undefined,
  });
  return r.login;
}

async function store(l: OAuthLogin, agent?: string): Promise<void> {
  await storeLoginStore(new KeychainStore(), 'remote', agent).write(l);
}

function remote(extra: Record<string, unknown> = {}): ConnectorSpec {
  return { name: 'remote', kind: 'http', url: mcp.url, oauth: { authorizationServer: as.origin, ...extra }, timeouts: { connect: '10s' } };
}

async function gateway(connector: ConnectorSpec): Promise<TestGateway> {
  const t = await startTestGateway({ connectors: () => [connector], runtime: { secretCacheMs: 0, secretPollMs: 200 } });
  gateways.push(t);
  return t;
}

const upstream = (t: TestGateway) => t.gw.gateway.upstreamsByName().get('remote');

describe.skipIf(!keychainToolsPresent())('oauth connector, MCP 2026-07-28 upstream (real keychain, real authorization server)', { timeout: 60_000 }, () => {
  it('oauth_2026_upstream_bearer_on_every_request: the connector speaks 2026-07-28 and every request it sends (server/discover, tools/list, tools/call) carries the login’s token', async () => {
    const l = await signIn('alice');
    await store(l);
    const from = mcp.seen.length;
    const t = await gateway(remote());
    expect(upstream(t)?.protocol).toBe(MODERN);
    // A 2025-11-25 agent and a 2026-07-28 agent alike.
    expect(text(await (await t.client('agent-a')).callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
    const req = modernRequest('tools/call', { name: 'remote__echo', arguments: { text: 'modern' } });
    const r = await t.raw({ token: await t.mint('agent-a'), headers: req.headers, body: req.body });
    expect((responseOf(r, req.id).result as CallToolResult).content).toEqual([{ type: 'text', text: 'modern' }]);
    const sent = mcp.seen.slice(from);
    expect(sent.length).toBeGreaterThanOrEqual(3);
    expect(sent.every((h) => h === `Bearer ${l.accessToken}`)).toBe(true);
  });

  it('oauth_2026_upstream_refresh_on_401: a token the server stopped taking is refreshed once and the call retried, on the 2026-07-28 client too', async () => {
    const l = await signIn('alice');
    await store(l);
    const t = await gateway(remote());
    expect(upstream(t)?.protocol).toBe(MODERN);
    const c = await t.client('agent-a');
    as.provider.access.delete(l.accessToken);
    const before = as.provider.refreshRequests;
    expect(text(await c.callTool({ name: 'remote__echo', arguments: { text: 'after refresh' } }))).toBe('after refresh');
    expect(as.provider.refreshRequests - before).toBe(1);
    const kept = await storeLoginStore(new KeychainStore(), 'remote').read();
    expect(mcp.seen.at(-1)).toBe(`Bearer ${kept?.accessToken}`);
  });

  it('oauth_2026_upstream_no_login_not_ready_then_modern: without a login the connector is not ready with its command (not judged a 2025-11-25 server); after the login it speaks 2026-07-28', async () => {
    const t = await gateway(remote());
    expect(upstream(t)?.status).toMatchObject({ state: 'not-ready', fix: 'gatehouse connector login remote' });
    await store(await signIn('alice'));
    notifySecretChanged(t.dirs.state, loginEntry('remote'));
    await until(() => upstream(t)?.status.state === 'ready', 'the connector to become ready after the login');
    expect(upstream(t)?.protocol).toBe(MODERN);
    expect(text(await (await t.client('agent-a')).callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
  });

  it('oauth_2026_upstream_refused_login_not_ready: a login the server and the authorization server both refuse makes the connector not ready with its command, through the 2026-07-28 client', async () => {
    const l = await signIn('alice');
    await store(l);
    const t = await gateway(remote());
    const c = await t.client('agent-a');
    expect(text(await c.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
    as.provider.revokeUser('alice', true);
    const r = (await c.callTool({ name: 'remote__whoami', arguments: {} })) as CallToolResult;
    expect(r.isError).toBe(true);
    await until(() => upstream(t)?.status.state === 'not-ready', 'the connector to be not ready');
    expect(upstream(t)?.status).toMatchObject({ state: 'not-ready', fix: 'gatehouse connector login remote' });
  });

  it('oauth_2026_upstream_per_agent: with oauth.per agent each agent calls the 2026-07-28 server with its own token; an agent without a login is told its command', async () => {
    await store(await signIn('alice'), 'agent-a');
    await store(await signIn('bob'), 'agent-b');
    const t = await gateway(remote({ per: 'agent' }));
    expect(upstream(t)?.protocol).toBe(MODERN);
    const a = await t.client('agent-a');
    const b = await t.client('agent-b');
    const [ra, rb] = await Promise.all([a.callTool({ name: 'remote__whoami', arguments: {} }), b.callTool({ name: 'remote__whoami', arguments: {} })]);
    expect(text(ra)).toBe('alice');
    expect(text(rb)).toBe('bob');
    const carol = (await (await t.client('carol')).callTool({ name: 'remote__whoami', arguments: {} })) as CallToolResult;
    expect(carol.isError).toBe(true);
    expect(text(carol)).toContain('gatehouse connector login remote --for carol');
    as.provider.revokeUser('bob', true);
    expect(((await b.callTool({ name: 'remote__whoami', arguments: {} })) as CallToolResult).isError).toBe(true);
    expect(text(await a.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
  });
});
