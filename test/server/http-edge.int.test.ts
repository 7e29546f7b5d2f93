/**
 * Hand-made HTTP requests against /mcp: DNS-rebinding guards, body limits,
 * content checks and the Streamable HTTP session rules (MCP 2025-11-25).
 * Each bad request gets the exact status and JSON-RPC error, and a tools/call
 * inside it never reaches the upstream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MCP_HEADERS, initializeBody, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';

const MAX_BODY = 64 * 1024;
let t: TestGateway;
let token: string;
let sid: string;

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], runtime: { maxBodyBytes: MAX_BODY } });
  token = await t.mint('alice');
  sid = await t.openSession(token);
});
afterAll(() => t?.close());

const session = (id: string) => ({ ...MCP_HEADERS, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' });
const echoCall = (text = 'hi', id = 7) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'fx__echo', arguments: { text } } });

function expectRpcError(body: unknown, code: number, message: string | RegExp) {
  expect(body).toMatchObject({ jsonrpc: '2.0', id: null, error: { code } });
  const m = (body as { error: { message: string } }).error.message;
  if (typeof message === 'string') expect(m).toContain(message);
  else expect(m).toMatch(message);
}

describe('the hand-made session works (control)', () => {
  it('a well-formed tools/call on the session is forwarded and answered', async () => {
    const before = t.calls().length;
    const r = await t.raw({ token, headers: session(sid), body: echoCall('control') });
    expect(r.status).toBe(200);
    expect(r.messages()).toEqual([{ jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'control' }] } }]);
    expect(t.calls().length).toBe(before + 1);
  });
});

describe('JSON-RPC errors on the wire', () => {
  it('an unknown tool is -32602 with the plain message and a stable code, never forwarded', async () => {
    const before = t.calls().length;
    const body = JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'fx__nope', arguments: {} } });
    const r = await t.raw({ token, headers: session(sid), body });
    expect(r.status).toBe(200);
    expect(r.messages()).toEqual([{ jsonrpc: '2.0', id: 8, error: { code: -32602, message: 'Unknown tool: fx__nope', data: { code: 'TOOL_UNKNOWN' } } }]);
    expect(t.calls().length).toBe(before);
  });

  it('an invalid cursor is -32602 "Invalid cursor"', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: { cursor: '!!' } });
    const r = await t.raw({ token, headers: session(sid), body });
    expect(r.messages()).toEqual([{ jsonrpc: '2.0', id: 9, error: { code: -32602, message: 'Invalid cursor' } }]);
  });
});

describe('DNS rebinding protection', () => {
  it('a browser Origin from another site gets 403 and nothing is forwarded', async () => {
    const before = t.calls().length;
    const r = await t.raw({ token, headers: { ...session(sid), origin: 'http://evil.example' }, body: echoCall() });
    expect(r.status).toBe(403);
    expectRpcError(r.json(), -32000, 'Forbidden: Origin "http://evil.example" is not allowed');
    expect(t.calls().length).toBe(before);
  });

  it('Origin "null" (sandboxed iframe, file://) gets 403', async () => {
    const r = await t.raw({ token, headers: { ...session(sid), origin: 'null' }, body: echoCall() });
    expect(r.status).toBe(403);
  });

  it('an Origin on the same host but another port gets 403', async () => {
    const r = await t.raw({ token, headers: { ...session(sid), origin: `http://127.0.0.1:${t.port + 1}` }, body: echoCall() });
    expect(r.status).toBe(403);
  });

  it('the gateway’s own Origin is accepted', async () => {
    const r = await t.raw({ token, headers: { ...session(sid), origin: `http://localhost:${t.port}` }, body: echoCall('same-origin') });
    expect(r.status).toBe(200);
  });

  it('a rebound Host name gets 403 and nothing is forwarded', async () => {
    const before = t.calls().length;
    const r = await t.raw({ token, headers: { ...session(sid), host: `attacker.example:${t.port}` }, body: echoCall() });
    expect(r.status).toBe(403);
    expectRpcError(r.json(), -32000, `Forbidden: Host "attacker.example:${t.port}" is not allowed`);
    expect(t.calls().length).toBe(before);
  });

  it('a Host without the port gets 403', async () => {
    const r = await t.raw({ token, headers: { ...session(sid), host: '127.0.0.1' }, body: echoCall() });
    expect(r.status).toBe(403);
  });

  it('the guards run before authentication (no token needed to be refused)', async () => {
    const r = await t.raw({ headers: { ...MCP_HEADERS, host: 'evil.example' }, body: JSON.stringify(initializeBody()) });
    expect(r.status).toBe(403);
  });
});

describe('request bodies', () => {
  it('a body over the limit with Content-Length gets 413 and nothing is forwarded', async () => {
    const before = t.calls().length;
    const r = await t.raw({ token, headers: session(sid), body: echoCall('x'.repeat(MAX_BODY)) });
    expect(r.status).toBe(413);
    expectRpcError(r.json(), -32000, `Payload Too Large: request body exceeds ${MAX_BODY} bytes`);
    expect(t.calls().length).toBe(before);
  });

  it('a body over the limit streamed without Content-Length (chunked) gets 413 and nothing is forwarded', async () => {
    const before = t.calls().length;
    const big = Buffer.from(echoCall('y'.repeat(MAX_BODY * 2)));
    const chunks = Array.from({ length: Math.ceil(big.length / 8192) }, (_, i) => big.subarray(i * 8192, (i + 1) * 8192));
    const r = await t.raw({ token, headers: { ...session(sid), 'transfer-encoding': 'chunked' }, body: chunks });
    expect(r.status).toBe(413);
    expectRpcError(r.json(), -32000, 'Payload Too Large');
    expect(t.calls().length).toBe(before);
  });

  it('a body just under the limit, chunked, is accepted', async () => {
    const body = Buffer.from(echoCall('z'.repeat(MAX_BODY - 200)));
    expect(body.length).toBeLessThan(MAX_BODY);
    const r = await t.raw({ token, headers: { ...session(sid), 'transfer-encoding': 'chunked' }, body: [body.subarray(0, 1000), body.subarray(1000)] });
    expect(r.status).toBe(200);
  });

  it('malformed JSON gets 400 with -32700 and nothing is forwarded', async () => {
    const before = t.calls().length;
    const r = await t.raw({ token, headers: session(sid), body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__echo"' });
    expect(r.status).toBe(400);
    expectRpcError(r.json(), -32700, 'Parse error: Invalid JSON');
    expect(t.calls().length).toBe(before);
  });

  it('a non-JSON Content-Type gets 415 and nothing is forwarded', async () => {
    const before = t.calls().length;
    const r = await t.raw({ token, headers: { ...session(sid), 'content-type': 'text/plain' }, body: echoCall() });
    expect(r.status).toBe(415);
    expectRpcError(r.json(), -32000, 'Unsupported Media Type: Content-Type must be application/json');
    expect(t.calls().length).toBe(before);
  });

  it('a look-alike Content-Type (application/jsonp) gets 415', async () => {
    const r = await t.raw({ token, headers: { ...session(sid), 'content-type': 'application/jsonp' }, body: echoCall() });
    expect(r.status).toBe(415);
  });

  it('a JSON body that is not JSON-RPC gets 400 with -32600 and nothing is forwarded', async () => {
    const before = t.calls().length;
    const r = await t.raw({ token, headers: session(sid), body: JSON.stringify({ hello: 'world' }) });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32700 } });
    expect(t.calls().length).toBe(before);
  });
});

describe('sessions (Mcp-Session-Id)', () => {
  it('a request other than initialize without a session id gets 400 and nothing is forwarded', async () => {
    const before = t.calls().length;
    const r = await t.raw({ token, headers: MCP_HEADERS, body: echoCall() });
    expect(r.status).toBe(400);
    expectRpcError(r.json(), -32000, 'Bad Request: Mcp-Session-Id header is required');
    expect(t.calls().length).toBe(before);
  });

  it('an unknown session id gets 404 and nothing is forwarded', async () => {
    const before = t.calls().length;
    const r = await t.raw({ token, headers: session('00000000-0000-4000-8000-000000000000'), body: echoCall() });
    expect(r.status).toBe(404);
    expectRpcError(r.json(), -32001, 'Session not found');
    expect(t.calls().length).toBe(before);
  });

  it('another agent’s valid token cannot use a session it did not open: 404, nothing forwarded', async () => {
    const before = t.calls().length;
    const bob = await t.mint('bob');
    const r = await t.raw({ token: bob, headers: session(sid), body: echoCall() });
    expect(r.status).toBe(404);
    expectRpcError(r.json(), -32001, 'Session not found');
    expect(t.calls().length).toBe(before);
    // GET and DELETE are refused the same way, and the session survives.
    expect((await t.raw({ method: 'GET', token: bob, headers: { accept: 'text/event-stream', 'mcp-session-id': sid } })).status).toBe(404);
    expect((await t.raw({ method: 'DELETE', token: bob, headers: { 'mcp-session-id': sid } })).status).toBe(404);
    expect((await t.raw({ token, headers: session(sid), body: echoCall('still mine') })).status).toBe(200);
  });

  it('DELETE ends a session; the id then gets 404', async () => {
    const own = await t.openSession(token);
    const del = await t.raw({ method: 'DELETE', token, headers: { 'mcp-session-id': own, 'mcp-protocol-version': '2025-11-25' } });
    expect(del.status).toBe(200);
    const before = t.calls().length;
    const r = await t.raw({ token, headers: session(own), body: echoCall() });
    expect(r.status).toBe(404);
    expectRpcError(r.json(), -32001, 'Session not found');
    expect(t.calls().length).toBe(before);
    await until(() => t.audit().some((a) => a.event === 'session.closed' && a.session === own), 'the session.closed audit record');
  });

  it('GET and DELETE without a session id get 400', async () => {
    expect((await t.raw({ method: 'GET', token, headers: { accept: 'text/event-stream' } })).status).toBe(400);
    expect((await t.raw({ method: 'DELETE', token })).status).toBe(400);
  });

  it('an unsupported MCP-Protocol-Version gets 400 and nothing is forwarded', async () => {
    const before = t.calls().length;
    const r = await t.raw({ token, headers: { ...session(sid), 'mcp-protocol-version': '1999-01-01' }, body: echoCall() });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, message: expect.stringContaining('Unsupported protocol version') } });
    expect(t.calls().length).toBe(before);
  });

  it('a second initialize on an existing session is refused', async () => {
    const r = await t.raw({ token, headers: session(sid), body: JSON.stringify(initializeBody(2)) });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: -32600 } });
  });

  it('initialize opens a session bound to the agent and audits it', async () => {
    const own = await t.openSession(token);
    expect(own).toMatch(/^[0-9a-f-]{36}$/);
    // The record is appended as the session is registered, not before the answer: wait for it.
    const tg = t;
    await until(() => tg.audit().some((a) => a.event === 'session.opened' && a.session === own && a.agent === 'alice'), 'the session.opened record');
  });
});

describe('other methods and paths', () => {
  it('PUT /mcp gets 405 with Allow', async () => {
    const r = await t.raw({ method: 'PUT', token, headers: MCP_HEADERS, body: '{}' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, POST, DELETE');
  });

  it('an unknown path gets 404', async () => {
    const r = await t.raw({ method: 'GET', path: '/nope', token });
    expect(r.status).toBe(404);
    expectRpcError(r.json(), -32601, 'Not Found');
  });

  it('/healthz answers without a token', async () => {
    const r = await t.raw({ method: 'GET', path: '/healthz' });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ ok: true });
  });
});
