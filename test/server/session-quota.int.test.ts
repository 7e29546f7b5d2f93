/**
 * One agent must not starve the others of MCP sessions (issue #12, item 6):
 * a per-agent quota, the global cap, idle sessions closed, and a sandbox's
 * sessions ending with its sandbox.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { adminRequest } from '../../src/server/control-client.js';
import { controlSocketPath } from '../../src/server/control.js';
import { CLI, initializeBody, MCP_HEADERS, startTestGateway, tempDir, writeConfig, stdioFixture, until, type RawResponse, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const start = (runtime: Parameters<typeof startTestGateway>[0]['runtime'] = {}) =>
  startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], runtime });

const initialize = (gw: TestGateway, token: string) => gw.raw({ token, headers: MCP_HEADERS, body: JSON.stringify(initializeBody()) });

/** An SDK client over TCP with a given token. */
async function sdkClient(gw: TestGateway, token: string): Promise<Client> {
  const client = new Client({ name: 'other', version: '1' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

/** A raw HTTP request on a sandbox session's unix socket (as the launcher's relay sends it). */
function onSocket(socketPath: string, port: number, opts: { method?: string; headers?: Record<string, string>; body?: string }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const r = httpRequest({ socketPath, path: '/mcp', method: opts.method ?? 'POST', headers: { host: `127.0.0.1:${port}`, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as unknown, messages: () => [] });
      });
    });
    r.on('error', reject);
    r.end(opts.body);
  });
}

async function openOnSocket(socketPath: string, port: number): Promise<RawResponse> {
  return onSocket(socketPath, port, { headers: MCP_HEADERS, body: JSON.stringify(initializeBody()) });
}

describe('per-agent session quota', () => {
  it('agent opens sessions in a loop: past its quota it is refused, and another agent still opens one', async () => {
    t = await start({ maxSessionsPerAgent: 4 });
    const flood = await t.mint('flood');
    for (let i = 0; i < 4; i++) await t.openSession(flood);
    const refused: RawResponse[] = [];
    for (let i = 0; i < 50; i++) refused.push(await initialize(t, flood));
    expect(refused.map((r) => r.status)).toEqual(Array(50).fill(429));
    const body = refused[0]?.json() as { error: { code: number; message: string } };
    expect(body.error.code).toBe(-32000);
    expect(body.error.message).toMatch(/agent "flood" already has 4 open MCP sessions, the per-agent limit/);
    expect(body.error.message).toMatch(/--max-sessions-per-agent N \(env GATEHOUSE_MAX_SESSIONS_PER_AGENT\)/);
    expect(refused[0]?.headers['retry-after']).toBe('5');

    // Another agent is not starved: a real SDK client connects and lists tools.
    const other = await sdkClient(t, await t.mint('alice'));
    expect((await other.listTools()).tools.map((x) => x.name)).toContain('fx__echo');
    await other.close();

    // The burst of 50 refusals is one audit record, not 50.
    // The audit is in order: alice's session.opened was appended after every refusal (all answered before), so once it is on disk every refusal record is too.
    await until(() => t?.audit().some((a) => a.event === 'session.opened' && a.agent === 'alice'), "alice's session.opened record");
    const records = t.audit().filter((a) => a.event === 'session.refused');
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ agent: 'flood', via: 'token', limit: 4, scope: 'agent', open: 4 });
  });

  it('a parallel burst of initialize requests cannot overshoot the quota', async () => {
    t = await start({ maxSessionsPerAgent: 3 });
    const token = await t.mint('burst');
    const gw = t;
    const all = await Promise.all(Array.from({ length: 30 }, () => initialize(gw, token)));
    expect(all.filter((r) => r.status === 200)).toHaveLength(3);
    expect(all.filter((r) => r.status === 429)).toHaveLength(27);
    expect(t.gw.sessions.size).toBe(3);
  });

  it('an agent that closes a session gets its slot back (the quota counts open sessions only)', async () => {
    t = await start({ maxSessionsPerAgent: 2 });
    const token = await t.mint('tidy');
    const a = await t.openSession(token);
    const b = await t.openSession(token);
    expect((await initialize(t, token)).status).toBe(429);
    const del = await t.raw({ token, method: 'DELETE', headers: { 'mcp-session-id': a, 'mcp-protocol-version': '2025-11-25' } });
    expect(del.status).toBe(200);
    expect((await initialize(t, token)).status).toBe(200);
    // A new burst after that is audited again.
    expect((await initialize(t, token)).status).toBe(429);
    // No pause for a non-event: a record appended after every refusal (a session closed), then the count.
    const delB = await t.raw({ token, method: 'DELETE', headers: { 'mcp-session-id': b, 'mcp-protocol-version': '2025-11-25' } });
    expect(delB.status).toBe(200);
    await until(() => t?.audit().some((r) => r.event === 'session.closed' && r.session === b), "the second session's session.closed record");
    expect(t.audit().filter((r) => r.event === 'session.refused')).toHaveLength(2);
  });

  it('token agents together reach the global cap: 503 that says the limit and how to raise it', async () => {
    t = await start({ maxSessionsPerAgent: 3, maxSessions: 5 });
    const a = await t.mint('a');
    const b = await t.mint('b');
    for (let i = 0; i < 3; i++) await t.openSession(a);
    for (let i = 0; i < 2; i++) await t.openSession(b);
    const r = await initialize(t, b);
    expect(r.status).toBe(503);
    expect((r.json() as { error: { message: string } }).error.message).toMatch(/5 open MCP sessions, its limit.*--max-sessions N/);
  });

  it('initialize requests that never become sessions leave nothing behind (no server, no catalog listener)', async () => {
    t = await start({ maxSessionsPerAgent: 2 });
    const token = await t.mint('sloppy');
    const listeners = t.gw.gateway.listenerCount('catalog');
    // Not acceptable to the transport (no text/event-stream in Accept): refused before a session exists.
    for (let i = 0; i < 20; i++) {
      const r = await t.raw({ token, headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(initializeBody()) });
      expect(r.status).toBe(406);
    }
    expect(t.gw.gateway.listenerCount('catalog')).toBe(listeners);
    expect(t.gw.sessions.size).toBe(0);
    // And they used none of the agent's quota.
    await t.openSession(token);
    await t.openSession(token);
  });

  it('a session left idle is closed and frees its slot', async () => {
    t = await start({ maxSessionsPerAgent: 1, sessionIdleMs: 1000 });
    const token = await t.mint('idler');
    const sid = await t.openSession(token);
    expect((await initialize(t, token)).status).toBe(429);
    await until(() => t?.audit().some((r) => r.event === 'session.closed' && r.session === sid && r.reason === 'idle'), 'the idle session to be closed', 10_000);
    expect((await initialize(t, token)).status).toBe(200);
  });

  it('a call waiting for approval longer than the idle timeout keeps its session (the approval is not withdrawn by the sweep)', async () => {
    t = await startTestGateway({
      connectors: (log) => [stdioFixture('fx', log)],
      policy: { version: 1, default: 'deny', rules: [{ id: 'echo-asks', match: { tool: 'fx__echo' }, effect: 'ask', ask: { timeout: '60s' } }] },
      runtime: { sessionIdleMs: 1000 },
    });
    const c = await t.client('patient');
    const call = c.callTool({ name: 'fx__echo', arguments: { text: 'after a long wait' } });
    const tg = t;
    const pendingId = await until(async () => ((await adminRequest(tg.dirs.state, 'GET', '/approvals')) as { pending: Array<{ id: string }> }).pending[0]?.id, 'the approval request');
    // Idle timeouts pass while the human thinks. The event that shows it: a witness session, opened
    // after the patient one and idle since, is swept (the sweep would have taken the patient one first).
    await t.client('witness');
    await until(() => tg.audit().some((x) => x.event === 'session.closed' && x.reason === 'idle' && x.agent === 'witness'), "the idle witness's sweep", 20_000);
    expect(t.audit().some((r) => r.event === 'session.closed' && r.reason === 'idle' && r.agent === 'patient')).toBe(false);
    await adminRequest(t.dirs.state, 'POST', `/approvals/${pendingId}/approve`, { by: 'alice' });
    const r = (await call) as { content: Array<{ text: string }>; isError?: boolean };
    expect(r.isError).toBeFalsy();
    expect(r.content[0]?.text).toContain('after a long wait');
    // Idle again afterwards: now it is swept.
    await until(() => tg.audit().some((x) => x.event === 'session.closed' && x.reason === 'idle' && x.agent === 'patient'), 'the idle sweep after the call', 20_000);
  });
});

describe('a sandbox session owns the MCP sessions opened through its socket', () => {
  it('sandbox ends: the sessions opened through its socket are closed (404 afterwards)', async () => {
    t = await start();
    const box = await t.gw.sandboxes.create('boxed', 18931);
    const sids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await openOnSocket(box.socketPath, box.port);
      expect(r.status).toBe(200);
      sids.push(String(r.headers['mcp-session-id']));
    }
    // A token agent of the same name, and another sandbox, are untouched.
    const token = await t.mint('boxed');
    const tokenSid = await t.openSession(token);
    const other = await t.gw.sandboxes.create('boxed', 18932);
    const otherSid = String((await openOnSocket(other.socketPath, other.port)).headers['mcp-session-id']);
    expect(t.gw.sessions.size).toBe(5);

    await t.gw.sandboxes.close(box.id);
    const identity = { agent: 'boxed', via: 'sandbox' as const, sandbox: box.id };
    for (const sid of sids) expect(t.gw.sessions.get(sid, identity)).toBeUndefined();
    expect(t.gw.sessions.size).toBe(2);
    const closed = await until(() => {
      const rs = t?.audit().filter((r) => r.event === 'session.closed' && r.reason === 'sandbox-closed') ?? [];
      return rs.length === 3 && rs;
    }, 'three session.closed records');
    expect(closed.map((r) => r.session).sort()).toEqual([...sids].sort());

    // Those ids are gone for good: the other sandbox of the same agent gets 404 for them.
    const probe = await onSocket(other.socketPath, other.port, {
      headers: { ...MCP_HEADERS, 'mcp-session-id': sids[0] ?? '', 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(probe.status).toBe(404);
    // The untouched ones still work.
    const ok = await onSocket(other.socketPath, other.port, {
      headers: { ...MCP_HEADERS, 'mcp-session-id': otherSid, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(ok.status).toBe(200);
    expect(t.gw.sessions.get(tokenSid, { agent: 'boxed', via: 'token' })).toBeDefined();
  });

  it('gatehouse run is killed (its lease connection drops): the sessions of its sandbox are closed', async () => {
    t = await start();
    const dispatcher = new Agent({ connect: { socketPath: controlSocketPath(t.dirs.state) } });
    try {
      const created = await request('http://localhost/admin/v1/sandbox/sessions', {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ agent: 'leased', port: 18933 }),
      });
      const box = (await created.body.json()) as { id: string; socketPath: string; port: number };
      const lease = new AbortController();
      const held = await request(`http://localhost/admin/v1/sandbox/sessions/${box.id}/lease`, { dispatcher, signal: lease.signal });
      held.body.on('error', () => undefined);
      held.body.resume();
      const sid = String((await openOnSocket(box.socketPath, box.port)).headers['mcp-session-id']);
      expect(t.gw.sessions.size).toBe(1);
      lease.abort();
      await until(() => t?.gw.sessions.size === 0, 'the sandbox sessions to close');
      await until(() => t?.audit().some((r) => r.event === 'session.closed' && r.session === sid && r.reason === 'sandbox-closed'), 'the session.closed record');
      expect(t.gw.sandboxes.list()).toEqual([]);
    } finally {
      await dispatcher.close();
    }
  });

  it('one sandbox floods: it is refused past its quota, another sandbox of the same agent still opens one', async () => {
    t = await start({ maxSessionsPerAgent: 3 });
    const flood = await t.gw.sandboxes.create('shared', 18934);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await openOnSocket(flood.socketPath, flood.port)).status);
    expect(statuses).toEqual([200, 200, 200, ...Array(7).fill(429)]);
    const calm = await t.gw.sandboxes.create('shared', 18935);
    expect((await openOnSocket(calm.socketPath, calm.port)).status).toBe(200);
    await until(() => t?.audit().some((r) => r.event === 'session.refused'), 'the session.refused record');
    expect(t.audit().filter((r) => r.event === 'session.refused')).toMatchObject([{ agent: 'shared', via: 'sandbox', sandbox: flood.id, scope: 'agent', limit: 3 }]);
  });
});

describe('gatehouse serve session limits', () => {
  it.each([
    [['--max-sessions-per-agent', '0'], /--max-sessions-per-agent must be a whole number/],
    [['--max-sessions-per-agent', 'lots'], /--max-sessions-per-agent must be a whole number/],
    [['--max-sessions', '10', '--max-sessions-per-agent', '20'], /may not exceed --max-sessions/],
    [['--session-idle', 'forever'], /--session-idle: invalid duration "forever"; use a duration like/],
    [['--session-idle', '90'], /--session-idle: .*a bare number has no unit/],
    [['--session-idle', '500ms'], /--session-idle must be at least 1s/],
  ])('serve %j: exit 2 with the fix', (args, message) => {
    const root = tempDir();
    const dirs = writeConfig(root, []);
    const r = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state, ...args], { encoding: 'utf8', timeout: 20_000 });
    rmSync(root, { recursive: true, force: true });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('serve --help lists the session limits', () => {
    const r = spawnSync(process.execPath, [CLI, 'serve', '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toMatch(/--max-sessions-per-agent <n>[\s\S]*GATEHOUSE_MAX_SESSIONS_PER_AGENT/);
  });
});
