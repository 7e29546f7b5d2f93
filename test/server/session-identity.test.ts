/**
 * The identity check of SessionManager.get, and whose quota a session counts
 * against, in process (Hono app.request, real SDK transport, no sockets): fast
 * enough for mutation testing. test/server/session-binding.test.ts checks the
 * same binding through a running gateway's real sockets.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditSink } from '../../src/audit/types.js';
import { silentLogger } from '../../src/log.js';
import { createApp } from '../../src/server/app.js';
import { allowedHosts, allowedOrigins } from '../../src/server/guards.js';
import { SessionManager, type Identity } from '../../src/server/mcp-sessions.js';
import { initializeBody, MCP_HEADERS } from '../helpers/gateway.js';

const audit: AuditSink = { append: async () => undefined, assertWritable: () => undefined, close: async () => undefined };
const LIST = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };

let sessions: SessionManager | undefined;
afterEach(async () => {
  await sessions?.closeAll();
  sessions = undefined;
});

/** The test tells the app who is calling in an `x-identity` header (JSON); the real app gets it from a token or a socket. */
function setup(maxSessionsPerAgent = 32) {
  const s = new SessionManager({ makeServer: () => new Server({ name: 't', version: '1' }, { capabilities: { tools: {} } }), audit, logger: silentLogger, maxSessionsPerAgent });
  sessions = s;
  const app = createApp({
    sessions: s,
    authenticate: async (req) => ({ ok: true, identity: JSON.parse(req.headers.get('x-identity') ?? '{}') as Identity }),
    hosts: allowedHosts(8931),
    origins: allowedOrigins(8931),
    logger: silentLogger,
  });
  const post = (who: Identity, body: unknown, sid?: string) =>
    app.request('/mcp', {
      method: 'POST',
      headers: { host: '127.0.0.1:8931', 'x-identity': JSON.stringify(who), ...MCP_HEADERS, ...(sid ? { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } : {}) },
      body: JSON.stringify(body),
    });
  const open = async (who: Identity): Promise<string> => {
    const res = await post(who, initializeBody());
    expect(res.status).toBe(200);
    const sid = res.headers.get('mcp-session-id') ?? '';
    expect(sid).not.toBe('');
    expect((await post(who, { jsonrpc: '2.0', method: 'notifications/initialized' }, sid)).status).toBe(202);
    return sid;
  };
  return { s, post, open };
}

const aliceToken: Identity = { agent: 'alice', via: 'token' };
const bobToken: Identity = { agent: 'bob', via: 'token' };
const aliceBox1: Identity = { agent: 'alice', via: 'sandbox', sandbox: 'box1' };
const aliceBox2: Identity = { agent: 'alice', via: 'sandbox', sandbox: 'box2' };
const bobBox1: Identity = { agent: 'bob', via: 'sandbox', sandbox: 'box1' };

describe('a session is usable only by the identity that opened it', () => {
  it('another agent that learns a token session id gets 404, the owner gets the session', async () => {
    const { s, post, open } = setup();
    const sid = await open(aliceToken);
    expect((await post(bobToken, LIST, sid)).status).toBe(404);
    expect(s.get(sid, bobToken)).toBeUndefined();
    expect((await post(aliceToken, LIST, sid)).status).toBe(200);
    expect(s.get(sid, aliceToken)?.id).toBe(sid);
  });

  it('the same agent coming in through a sandbox socket cannot use its token session (via differs)', async () => {
    const { s, post, open } = setup();
    const sid = await open(aliceToken);
    expect((await post(aliceBox1, LIST, sid)).status).toBe(404);
    expect(s.get(sid, aliceBox1)).toBeUndefined();
    expect(s.get(sid, { agent: 'alice', via: 'sandbox' })).toBeUndefined();
  });

  it('a sandbox session is not usable with the agent token, nor from another sandbox of the same agent', async () => {
    const { s, post, open } = setup();
    const sid = await open(aliceBox1);
    expect((await post(aliceToken, LIST, sid)).status).toBe(404);
    expect((await post(aliceBox2, LIST, sid)).status).toBe(404);
    expect(s.get(sid, aliceBox2)).toBeUndefined();
    expect(s.get(sid, bobBox1)).toBeUndefined();
    expect(s.get(sid, { agent: 'alice', via: 'sandbox' })).toBeUndefined();
    expect(s.get(sid, aliceBox1)?.identity).toEqual(aliceBox1);
  });

  it('an unknown session id gets 404', async () => {
    const { s, post } = setup();
    expect((await post(aliceToken, LIST, 'no-such-session')).status).toBe(404);
    expect(s.get('no-such-session', aliceToken)).toBeUndefined();
  });

  it('get() marks the session as used and seen now (so the unused-session sweep keeps it)', async () => {
    const { s } = setup();
    const res = await setupOpenBare(s);
    const session = s.get(res, aliceToken);
    expect(session?.used).toBe(true);
    expect(Math.abs((session?.lastSeen ?? 0) - Date.now())).toBeLessThan(5_000);
  });
});

/** Opens a session with a bare initialize (never followed up), through a second app on the same manager. */
async function setupOpenBare(s: SessionManager): Promise<string> {
  const app = createApp({ sessions: s, authenticate: async () => ({ ok: true, identity: aliceToken }), hosts: allowedHosts(8931), origins: allowedOrigins(8931), logger: silentLogger });
  const res = await app.request('/mcp', { method: 'POST', headers: { host: '127.0.0.1:8931', ...MCP_HEADERS }, body: JSON.stringify(initializeBody()) });
  const sid = res.headers.get('mcp-session-id') ?? '';
  expect(sid).not.toBe('');
  return sid;
}

describe('whose quota a session counts against', () => {
  it('each sandbox has its own quota, apart from the agent token and from the agent\'s other sandboxes', async () => {
    const { post, open } = setup(1);
    await open(aliceToken);
    expect((await post(aliceToken, initializeBody())).status).toBe(429);
    await open(aliceBox1);
    expect((await post(aliceBox1, initializeBody())).status).toBe(429);
    await open(aliceBox2);
    await open(bobToken);
  });

  it('a token agent and a sandbox of the same name without a sandbox id do not share a quota', async () => {
    const { open } = setup(1);
    await open(aliceToken);
    await open({ agent: 'alice', via: 'sandbox' });
  });

  it('a sandbox identity without a sandbox id counts against its agent (two agents do not share one quota)', async () => {
    const { post, open } = setup(1);
    await open({ agent: 'alice', via: 'sandbox' });
    await open({ agent: 'bob', via: 'sandbox' });
    expect((await post({ agent: 'bob', via: 'sandbox' }, initializeBody())).status).toBe(429);
  });
});
