/**
 * MCP 2026-07-28 on /mcp next to 2025-11-25 (issue #20): per request, no
 * session, the mirrored headers checked against the body before anything
 * else, each malformed request answered with the spec's error and nothing
 * forwarded; tools/list with cache hints; calls audited with their revision.
 * Raw HTTP: no SDK client smooths anything over.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAudit } from '../../src/audit/verify.js';
import { MCP_HEADERS, initializeBody, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';
import { MODERN, modernRequest, notificationsOf, openStream, responseOf } from '../helpers/modern.js';

let t: TestGateway;
let token: string;
let mallory: string;

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });
  token = await t.mint('alice');
  mallory = await t.mint('mallory');
}, 60_000);

afterAll(async () => {
  await t?.close();
});

async function send(method: string, params: Record<string, unknown> = {}, o: Parameters<typeof modernRequest>[2] & { token?: string } = {}) {
  const req = modernRequest(method, params, o);
  const r = await t.raw({ token: o.token ?? token, headers: req.headers, body: req.body });
  return { r, id: req.id };
}

function callRecords(tool: string) {
  return t.audit().filter((a) => a.event === 'tools/call' && a.tool === tool);
}

describe('2026-07-28 requests are served without a session', () => {
  it('server/discover names the revision, the tools capability and the gateway, and no session id is minted', async () => {
    const { r, id } = await send('server/discover');
    expect(r.status).toBe(200);
    expect(r.headers['mcp-session-id']).toBeUndefined();
    const res = responseOf(r, id);
    expect(res.result).toMatchObject({
      resultType: 'complete',
      supportedVersions: [MODERN],
      capabilities: { tools: { listChanged: true } },
      _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'gatehouse' } },
      cacheScope: 'public',
    });
    expect((res.result as { ttlMs: number }).ttlMs).toBeGreaterThanOrEqual(0);
  });

  it('tools/list carries ttlMs and a private cacheScope, in the stable order of the catalog, and is audited with its revision', async () => {
    const first = responseOf((await send('tools/list')).r).result as { tools: Array<{ name: string }>; ttlMs: number; cacheScope: string; resultType: string };
    const second = responseOf((await send('tools/list')).r).result as { tools: Array<{ name: string }> };
    expect(first.tools.length).toBeGreaterThan(3);
    expect(first).toMatchObject({ resultType: 'complete', cacheScope: 'private' });
    expect(first.ttlMs).toBeGreaterThan(0);
    const names = first.tools.map((x) => x.name);
    expect(names).toEqual([...names].sort());
    expect(second.tools.map((x) => x.name)).toEqual(names);
    expect(t.audit().filter((a) => a.event === 'tools/list' && a.protocol === MODERN).length).toBeGreaterThanOrEqual(2);
  });

  it('a tool hidden from the agent by policy is not listed to it (the same catalog as 2025-11-25)', async () => {
    const names = (responseOf((await send('tools/list', {}, { token: mallory })).r).result as { tools: Array<{ name: string }> }).tools.map((x) => x.name);
    expect(names).toContain('fx__echo');
    expect(names).not.toContain('fx__env');
  });

  it('tools/call runs through the pipeline: result, then an audit record with the revision and no session', async () => {
    const { r, id } = await send('tools/call', { name: 'fx__echo', arguments: { text: 'modern hello' } });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(responseOf(r, id).result).toMatchObject({ resultType: 'complete', content: [{ type: 'text', text: 'modern hello' }] });
    const recs = callRecords('fx__echo').filter((a) => a.outcome === 'ok');
    const rec = recs.at(-1);
    expect(rec).toMatchObject({ agent: 'alice', protocol: MODERN, decision: 'allow' });
    expect(rec).not.toHaveProperty('session');
  });

  it('a W3C traceparent in _meta reaches the upstream unchanged', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const { r } = await send('tools/call', { name: 'fx__echo', arguments: { text: 'traced' } }, { meta: { traceparent } });
    expect(r.status).toBe(200);
    expect(t.calls().find((c) => c.tool === 'echo' && (c.args as { text?: string }).text === 'traced')).toMatchObject({ traceparent });
  });

  it('a malformed traceparent is not passed on', async () => {
    const { r } = await send('tools/call', { name: 'fx__echo', arguments: { text: 'badtrace' } }, { meta: { traceparent: 'x\r\ninjected' } });
    expect(r.status).toBe(200);
    const call = t.calls().find((c) => c.tool === 'echo' && (c.args as { text?: string }).text === 'badtrace');
    expect(call).toBeDefined();
    expect(call).not.toHaveProperty('traceparent');
  });

  it('progress asked for with a progressToken arrives as SSE before the result', async () => {
    const { r, id } = await send('tools/call', { name: 'fx__slow', arguments: { ms: 200, steps: 3 }, _meta: { progressToken: 'p1' } });
    expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
    const progress = notificationsOf(r).filter((n) => n.method === 'notifications/progress');
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) expect(p.params).toMatchObject({ progressToken: 'p1' });
    expect(responseOf(r, id).result).toMatchObject({ content: [{ text: 'slept 200' }] });
  });

  it('an agent that closes its request mid-call has cancelled it: recorded as cancelled, and the upstream told', async () => {
    const req = modernRequest('tools/call', { name: 'fx__slow', arguments: { ms: 30_000, steps: 2 } });
    const { request } = await import('node:http');
    await new Promise<void>((resolve) => {
      const h = request({ host: '127.0.0.1', port: t.port, method: 'POST', path: '/mcp', headers: { host: `127.0.0.1:${t.port}`, authorization: `Bearer ${token}`, ...req.headers } });
      h.on('error', () => resolve());
      h.end(req.body);
      // Once the upstream has the call, hang up.
      void until(() => t.calls().some((c) => c.tool === 'slow' && (c.args as { ms?: number }).ms === 30_000), 'the slow call upstream').then(() => {
        h.destroy();
        resolve();
      });
    });
    await until(() => callRecords('fx__slow').some((a) => a.outcome === 'cancelled'), 'the cancelled record', 20_000);
    await until(() => t.calls().some((c) => c.event === 'cancelled' && c.tool === 'slow'), 'the upstream cancellation', 20_000);
  });
});

describe('each malformed 2026-07-28 request gets the spec error, and nothing is forwarded (headers checked before anything else)', () => {
  const forwarded = () => t.calls().length;

  it('an Mcp-Name naming another tool than the body (a header/body mismatch) is 400 with -32020 before any decision', async () => {
    const before = forwarded();
    const audited = t.audit().length;
    const { r, id } = await send('tools/call', { name: 'fx__echo', arguments: { text: 'smuggled' } }, { headers: { 'mcp-name': 'fx__add' } });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ id, error: { code: -32020 } });
    expect(forwarded()).toBe(before);
    expect(t.audit().slice(audited).filter((a) => a.event === 'tools/call')).toEqual([]);
  });

  it('an Mcp-Method naming another method than the body is 400 with -32020', async () => {
    const before = forwarded();
    const { r } = await send('tools/call', { name: 'fx__echo', arguments: { text: 'x' } }, { headers: { 'mcp-method': 'tools/list' } });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: -32020 } });
    expect(forwarded()).toBe(before);
  });

  it('a missing Mcp-Method is 400 with -32020', async () => {
    const before = forwarded();
    const { r } = await send('tools/call', { name: 'fx__echo', arguments: { text: 'x' } }, { headers: { 'mcp-method': null } });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: -32020, message: expect.stringContaining('Mcp-Method') } });
    expect(forwarded()).toBe(before);
  });

  it('a missing Mcp-Name on tools/call is 400 with -32020', async () => {
    const { r } = await send('tools/call', { name: 'fx__echo', arguments: { text: 'x' } }, { headers: { 'mcp-name': null } });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: -32020, message: expect.stringContaining('Mcp-Name') } });
  });

  it('an Mcp-Name in the Base64 sentinel form is decoded before it is compared', async () => {
    const { r, id } = await send('tools/call', { name: 'fx__echo', arguments: { text: 'b64' } }, { headers: { 'mcp-name': `=?base64?${Buffer.from('fx__echo').toString('base64')}?=` } });
    expect(r.status).toBe(200);
    expect(responseOf(r, id).result).toMatchObject({ content: [{ text: 'b64' }] });
    const bad = await send('tools/call', { name: 'fx__echo', arguments: { text: 'b64' } }, { headers: { 'mcp-name': '=?base64?!!!?=' } });
    expect(bad.r.status).toBe(400);
    expect(bad.r.json()).toMatchObject({ error: { code: -32020 } });
  });

  it('whitespace around the Mcp-Name value is not part of it (RFC 9110 §5.5)', async () => {
    const { r, id } = await send('tools/call', { name: 'fx__echo', arguments: { text: 'ows' } }, { headers: { 'mcp-name': '  fx__echo\t' } });
    expect(r.status).toBe(200);
    expect(responseOf(r, id).result).toMatchObject({ content: [{ text: 'ows' }] });
  });

  it('a missing MCP-Protocol-Version header is 400 with -32020', async () => {
    const { r } = await send('tools/list', {}, { headers: { 'mcp-protocol-version': null } });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: -32020 } });
  });

  it('an MCP-Protocol-Version header disagreeing with the body envelope is 400 with -32020', async () => {
    const { r } = await send('tools/list', {}, { headers: { 'mcp-protocol-version': '2025-11-25' } });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: -32020 } });
  });

  it('an unknown protocol version is 400 with -32022 naming the served and the requested versions', async () => {
    const { r, id } = await send('tools/list', {}, { headers: { 'mcp-protocol-version': '2099-01-01' }, meta: { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ id, error: { code: -32022, data: { supported: [MODERN], requested: '2099-01-01' } } });
  });

  it('a modern header on a body without the envelope is 400 with -32602 (never served as 2025 traffic)', async () => {
    const r = await t.raw({
      token,
      headers: { ...MCP_HEADERS, 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/list' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} }),
    });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: -32602 } });
  });

  it('an initialize sent with a modern protocol header is 400 with -32020, and no session is opened', async () => {
    const r = await t.raw({ token, headers: { ...MCP_HEADERS, 'mcp-protocol-version': MODERN, 'mcp-method': 'initialize' }, body: JSON.stringify(initializeBody()) });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: -32020 } });
    expect(r.headers['mcp-session-id']).toBeUndefined();
  });

  it.each(['ping', 'logging/setLevel', 'initialize', 'resources/list', 'prompts/list'])('%s, not a method of the revision or not brokered, is 404 with -32601', async (method) => {
    const { r, id } = await send(method, method === 'logging/setLevel' ? { level: 'debug' } : {});
    expect(r.status).toBe(404);
    expect(r.json()).toMatchObject({ id, error: { code: -32601 } });
  });

  it('an unknown tool is refused by name, before its arguments are looked at, and never forwarded', async () => {
    const before = forwarded();
    const { r, id } = await send('tools/call', { name: 'fx__nope', arguments: { deep: { not: { checked: true } } } });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ id, error: { code: -32602, message: 'Unknown tool: fx__nope' } });
    expect(forwarded()).toBe(before);
  });

  it('a call the policy denies is a tool error, recorded as denied, and never forwarded', async () => {
    const before = forwarded();
    const { r, id } = await send('tools/call', { name: 'fx__echo', arguments: { text: 'no' } }, { token: mallory });
    expect(responseOf(r, id).result).toMatchObject({ isError: true, _meta: { 'gatehouse/error': 'POLICY_DENIED' } });
    expect(forwarded()).toBe(before);
    expect(callRecords('fx__echo').some((a) => a.agent === 'mallory' && a.outcome === 'denied' && a.protocol === MODERN)).toBe(true);
  });

  it('a tool hidden from the agent by policy is unknown to it, as in 2025-11-25', async () => {
    const { r } = await send('tools/call', { name: 'fx__env', arguments: {} }, { token: mallory });
    expect(r.json()).toMatchObject({ error: { code: -32602, message: 'Unknown tool: fx__env' } });
  });
});

describe('a 2026-07-28 request carrying a session id (transports §Backward Compatibility: ignore it, never echo it)', () => {
  it('is served on its own: the id is not echoed, an unknown id is no 404, and it reaches no session', async () => {
    const sid = await t.openSession(token);
    for (const id of [sid, '00000000-0000-4000-8000-000000000000']) {
      const { r } = await send('tools/call', { name: 'fx__echo', arguments: { text: `with ${id}` } }, { headers: { 'mcp-session-id': id } });
      expect(r.status).toBe(200);
      expect(r.headers['mcp-session-id']).toBeUndefined();
    }
    const recs = callRecords('fx__echo').filter((a) => String((a as { args?: { text?: string } }).args?.text ?? '').startsWith('with '));
    expect(recs.length).toBeGreaterThan(0);
    for (const a of recs) expect(a).not.toHaveProperty('session');
  });

  it('another agent’s session id gives it nothing: served as its own stateless call', async () => {
    const sid = await t.openSession(token);
    const { r, id } = await send('tools/list', {}, { token: mallory, headers: { 'mcp-session-id': sid } });
    expect(r.status).toBe(200);
    const names = (responseOf(r, id).result as { tools: Array<{ name: string }> }).tools.map((x) => x.name);
    expect(names).not.toContain('fx__env');
  });
});

describe('2025-11-25 clients on the same endpoint are served as before', () => {
  it('initialize opens a session, and its calls are audited with the negotiated revision', async () => {
    const client = await t.client('alice');
    const r = await client.callTool({ name: 'fx__echo', arguments: { text: 'legacy hello' } });
    expect(r.content).toEqual([{ type: 'text', text: 'legacy hello' }]);
    const rec = callRecords('fx__echo').find((a) => (a as { args?: { text?: string } }).args?.text === 'legacy hello' && a.outcome === 'ok');
    expect(rec).toMatchObject({ protocol: '2025-11-25' });
    expect(typeof rec?.session).toBe('string');
  });
});

describe('subscriptions/listen replaces the GET stream', () => {
  it('acknowledges first, with the subscription id, then announces a change of the agent’s tool list on the stream', async () => {
    const req = modernRequest('subscriptions/listen', { notifications: { toolsListChanged: true, resourcesListChanged: true } }, { id: 'sub-1' });
    const stream = await openStream(t.port, token, req);
    expect(await stream.status).toBe(200);
    const ack = await stream.next(() => true);
    // Only what is honoured: tools; resources are not brokered.
    expect(ack).toEqual({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { _meta: { 'io.modelcontextprotocol/subscriptionId': 'sub-1' }, notifications: { toolsListChanged: true } } });
    await send('tools/call', { name: 'fx__add_tool', arguments: { name: 'fresh_one' } });
    const changed = await stream.next((m) => m.method === 'notifications/tools/list_changed');
    expect(changed).toMatchObject({ params: { _meta: { 'io.modelcontextprotocol/subscriptionId': 'sub-1' } } });
    stream.close();
    await stream.ended;
  });

  it('a stream that asked for nothing else gets the acknowledgment and no tool list change', async () => {
    const req = modernRequest('subscriptions/listen', { notifications: { promptsListChanged: true } }, { id: 'sub-2' });
    const stream = await openStream(t.port, token, req);
    const ack = await stream.next(() => true);
    expect(ack).toMatchObject({ method: 'notifications/subscriptions/acknowledged', params: { notifications: {} } });
    // A change the other subscription is told about (the witness), not this one.
    const witness = await openStream(t.port, token, modernRequest('subscriptions/listen', { notifications: { toolsListChanged: true } }, { id: 'sub-3' }));
    await witness.next(() => true);
    await send('tools/call', { name: 'fx__add_tool', arguments: { name: 'fresh_two' } });
    await witness.next((m) => m.method === 'notifications/tools/list_changed');
    expect(stream.messages.filter((m) => m.method === 'notifications/tools/list_changed')).toEqual([]);
    stream.close();
    witness.close();
  });

  it('one agent can hold a bounded number of streams; past it, 429', async () => {
    const open = [];
    for (let i = 0; i < 8; i++) {
      const s = await openStream(t.port, mallory, modernRequest('subscriptions/listen', { notifications: { toolsListChanged: true } }));
      await s.next(() => true);
      open.push(s);
    }
    const { r } = await send('subscriptions/listen', { notifications: { toolsListChanged: true } }, { token: mallory });
    expect(r.status).toBe(429);
    for (const s of open) s.close();
    await Promise.all(open.map((s) => s.ended));
    // Closed streams free their places (the gateway sees each hang-up as it happens).
    await until(() => t.gw.sessions.stateless?.stats().listeners === 0, 'the closed streams to be forgotten');
    const again = await openStream(t.port, mallory, modernRequest('subscriptions/listen', { notifications: {} }));
    expect(await again.status).toBe(200);
    await again.next(() => true);
    again.close();
  });
});

describe('identity and audit are the same in both eras', () => {
  it('a 2026-07-28 request without a token, with a forged one, or with an admin token is refused (401) before its body is looked at', async () => {
    const req = modernRequest('tools/call', { name: 'fx__echo', arguments: { text: 'who?' } });
    const before = t.calls().length;
    for (const auth of [undefined, 'Bearer not.a.token', `Bearer ${await t.mint('alice')}x`]) {
      const r = await t.raw({ headers: { ...req.headers, ...(auth ? { authorization: auth } : {}) }, body: req.body });
      expect(r.status).toBe(401);
    }
    expect(t.calls().length).toBe(before);
  });

  it('the audit log holding both eras’ records verifies: the hash chain is unchanged by the new fields', async () => {
    expect(t.audit().some((a) => a.protocol === MODERN)).toBe(true);
    expect(t.audit().some((a) => a.protocol === '2025-11-25')).toBe(true);
    const report = await verifyAudit(join(t.dirs.state, 'audit'));
    expect(report.problems).toEqual([]);
  });
});
