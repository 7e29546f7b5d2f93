/**
 * An `oauth:` connector in a running gateway, its login in a real Secret
 * Service (gnome-keyring on a private bus): the token is injected outside
 * the agent's reach and redacted everywhere; it is refreshed ahead of expiry
 * once however many calls wait (single-flight), the rotated refresh token is
 * kept, a revoked refresh makes the connector not ready with the command
 * that fixes it and nothing is retried; with `per: agent` each agent acts as
 * its own user upstream.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import { KeychainStore } from '../../../src/secrets/keychain.js';
import { notifySecretChanged } from '../../../src/secrets/notice.js';
import { loginEntry, type OAuthLogin } from '../../../src/secrets/oauth/login.js';
import { storeLoginStore } from '../../../src/secrets/oauth/store.js';
import { login } from '../../../src/upstreams/oauth/login.js';
import { startTestGateway, until, type ConnectorSpec, type TestGateway } from '../../helpers/gateway.js';
import { keychainToolsPresent, startKeychain, type Keychain } from '../../helpers/keychain.js';
import { startAuthServer, startMcpResource, type AuthServer, type McpResource } from './servers.js';

let keychain: Keychain;
let undo: () => void;
let as: AuthServer;
let mcp: McpResource;
const gateways: TestGateway[] = [];
const logLines: string[] = [];

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

beforeAll(async () => {
  keychain = await startKeychain();
  undo = keychain.use();
  as = await startAuthServer();
  mcp = await startMcpResource(as);
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

/** Signs `user` in through the browser flow (its redirects followed), as `connector login` does. */
async function signIn(user: string, connector = 'remote'): Promise<OAuthLogin> {
  as.provider.nextUser = user;
  const r = await login({
    target: { name: connector, file: `/registry/${connector}.yaml`, url: mcp.url, oauth: { authorizationServer: as.origin, allowOrigins: [], per: 'connector', flow: 'browser' } },
    flow: 'browser',
    browserAtHand: true,
    onAuthorizeUrl: (u) => void fetch(u),
    onDeviceCode: () => undefined,
  });
  return r.login;
}

async function store(l: OAuthLogin, agent?: string, connector = 'remote'): Promise<void> {
  await storeLoginStore(new KeychainStore(), connector, agent).write(l);
}

function remote(extra: Record<string, unknown> = {}): ConnectorSpec {
  return { name: 'remote', kind: 'http', url: mcp.url, oauth: { authorizationServer: as.origin, ...extra }, timeouts: { connect: '10s' } };
}

async function gateway(connector: ConnectorSpec): Promise<TestGateway> {
  const logger = createLogger({ destination: new Writable({ write: (c: Buffer, _e, cb) => (logLines.push(c.toString()), cb()) }) });
  const t = await startTestGateway({ connectors: () => [connector], runtime: { secretCacheMs: 0, secretPollMs: 200, logger } });
  gateways.push(t);
  return t;
}

describe.skipIf(!keychainToolsPresent())('oauth connector in the gateway (real keychain, real authorization server)', { timeout: 60_000 }, () => {
  it('token_never_reaches_agent: calls carry the login\'s token upstream; an upstream echoing it back, the audit log and the log lines show it redacted', async () => {
    const l = await signIn('alice');
    await store(l);
    const t = await gateway(remote());
    const c = await t.client('agent-a');
    expect(text(await c.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
    expect(mcp.seen.at(-1)).toBe(`Bearer ${l.accessToken}`);
    const leaked = text(await c.callTool({ name: 'remote__leak', arguments: {} }));
    expect(leaked).toBe(`you sent me [REDACTED:${loginEntry('remote')}]`);
    const audit = readFileSync(join(t.dirs.state, 'audit', 'audit.jsonl'), 'utf8');
    expect(audit).toContain('remote__leak');
    for (const secret of [l.accessToken, l.refreshToken as string]) {
      expect(audit).not.toContain(secret);
      expect(logLines.join('')).not.toContain(secret);
      expect(leaked).not.toContain(secret);
    }
  });

  it('not logged in: the connector is not ready and says the exact command; a login written by `connector login` makes it ready without a restart', async () => {
    const t = await gateway(remote());
    const st = t.gw.gateway.upstreamsByName().get('remote')?.status;
    expect(st).toMatchObject({ state: 'not-ready', fix: 'gatehouse connector login remote' });
    await store(await signIn('alice'));
    notifySecretChanged(t.dirs.state, loginEntry('remote'));
    await until(() => t.gw.gateway.upstreamsByName().get('remote')?.status.state === 'ready', 'the connector to become ready after the login');
    const c = await t.client('agent-a');
    expect(text(await c.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
  });

  it('refresh_single_flight: 100 concurrent calls whose token the server stopped taking cause one refresh at the authorization server, and all of them succeed', async () => {
    const l = await signIn('alice');
    await store(l);
    const t = await gateway(remote());
    const c = await t.client('agent-a');
    expect(text(await c.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
    as.provider.access.delete(l.accessToken);
    const before = as.provider.refreshRequests;
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => c.callTool({ name: 'remote__echo', arguments: { text: `n${i}` } })));
    expect(results.map(text)).toEqual(Array.from({ length: 100 }, (_, i) => `n${i}`));
    expect(as.provider.refreshRequests - before).toBe(1);
    const kept = await storeLoginStore(new KeychainStore(), 'remote').read();
    expect(kept?.accessToken).not.toBe(l.accessToken);
    expect(mcp.seen.at(-1)).toBe(`Bearer ${kept?.accessToken}`);
  });

  it('refresh_ahead_of_expiry: a login due for refresh is refreshed before its token expires, at start-up, once', async () => {
    const l = await signIn('alice');
    // Issued an hour ago, expiring in 30 s: due, and still valid at the server when it is replaced.
    await store({ ...l, obtainedAt: Date.now() - 3_600_000, expiresAt: Date.now() + 30_000 });
    const before = as.provider.refreshRequests;
    const t = await gateway(remote());
    const c = await t.client('agent-a');
    expect(text(await c.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
    expect(as.provider.refreshRequests - before).toBe(1);
    expect(as.provider.access.has(l.accessToken)).toBe(true);
    expect(mcp.seen).not.toContain(`Bearer ${l.accessToken}`);
  });

  it('refresh_token_rotation: each refresh keeps the rotated refresh token, the spent one is dead, and the next refresh uses the new one', async () => {
    const l = await signIn('alice');
    await store(l);
    const t = await gateway(remote());
    const c = await t.client('agent-a');
    expect(text(await c.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
    let previous = l;
    for (let round = 0; round < 2; round++) {
      // The server revokes the access token (only): the 401 makes the gateway refresh once and retry the call.
      as.provider.access.delete(previous.accessToken);
      expect(text(await c.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
      const now = (await storeLoginStore(new KeychainStore(), 'remote').read()) as OAuthLogin;
      expect(now.refreshToken).not.toBe(previous.refreshToken);
      expect(as.provider.refresh.has(previous.refreshToken as string)).toBe(false);
      expect(as.provider.refresh.has(now.refreshToken as string)).toBe(true);
      previous = now;
    }
  });

  it('revoked_refresh_not_ready_no_retry_loop: a refused refresh makes the connector not ready with `gatehouse connector login remote`, and nothing is asked again until a new login', async () => {
    await store(await signIn('alice'));
    const t = await gateway(remote());
    const c = await t.client('agent-a');
    expect(text(await c.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
    as.provider.revokeUser('alice', true);
    const before = as.provider.refreshRequests;
    const failed = (await c.callTool({ name: 'remote__whoami', arguments: {} })) as CallToolResult;
    expect(failed.isError).toBe(true);
    expect(text(failed)).toContain('refused the refresh token (invalid_grant');
    expect(text(failed)).toContain('gatehouse connector login remote');
    expect(as.provider.refreshRequests - before).toBe(1);
    expect(t.gw.gateway.upstreamsByName().get('remote')?.status).toMatchObject({ state: 'not-ready', fix: 'gatehouse connector login remote' });
    // Calls and time do not make it try again.
    const seen = mcp.seen.length;
    for (let i = 0; i < 3; i++) await c.callTool({ name: 'remote__whoami', arguments: {} }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 600));
    expect(as.provider.refreshRequests - before).toBe(1);
    expect(mcp.seen.length).toBe(seen);
    // A new login fixes it.
    await store(await signIn('alice'));
    notifySecretChanged(t.dirs.state, loginEntry('remote'));
    await until(() => t.gw.gateway.upstreamsByName().get('remote')?.status.state === 'ready', 'the connector to be ready after a new login');
    const c2 = await t.client('agent-a');
    expect(text(await c2.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
  });

  it('per_agent_delegation: with oauth.per agent, two agents act upstream as their own users; an agent without a login is told its command', async () => {
    await store(await signIn('alice'), 'agent-a');
    await store(await signIn('bob'), 'agent-b');
    const t = await gateway(remote({ per: 'agent' }));
    const a = await t.client('agent-a');
    const b = await t.client('agent-b');
    const [ra, rb] = await Promise.all([a.callTool({ name: 'remote__whoami', arguments: {} }), b.callTool({ name: 'remote__whoami', arguments: {} })]);
    expect(text(ra)).toBe('alice');
    expect(text(rb)).toBe('bob');
    const carol = (await (await t.client('carol')).callTool({ name: 'remote__whoami', arguments: {} })) as CallToolResult;
    expect(carol.isError).toBe(true);
    expect(text(carol)).toContain('gatehouse connector login remote --for carol');
    // One agent's revoked login leaves the other's alone.
    as.provider.revokeUser('bob', true);
    expect(((await b.callTool({ name: 'remote__whoami', arguments: {} })) as CallToolResult).isError).toBe(true);
    expect(text(await a.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('alice');
  });
});
