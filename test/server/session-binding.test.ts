/**
 * An MCP session is bound to the channel that opened it, not only to the
 * agent's name: a session opened with agent X's token is not usable from a
 * sandbox of agent X (whose socket needs no token), nor the other way round,
 * nor from another sandbox of the same agent. Real gateway, real sockets.
 */
import { request } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditSink } from '../../src/audit/types.js';
import { silentLogger } from '../../src/log.js';
import type { SandboxSession } from '../../src/sandbox/sandbox-sessions.js';
import { createApp } from '../../src/server/app.js';
import { allowedHosts, allowedOrigins } from '../../src/server/guards.js';
import { SessionManager, type Identity } from '../../src/server/mcp-sessions.js';
import { initializeBody, MCP_HEADERS, startTestGateway, stdioFixture, type TestGateway } from '../helpers/gateway.js';

const PORT = 18931;
const LIST = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };

let t: TestGateway;
let boxA: SandboxSession;
let boxB: SandboxSession;

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });
  boxA = await t.gw.sandboxes.create('alice', PORT);
  boxB = await t.gw.sandboxes.create('alice', PORT);
}, 60_000);
afterAll(async () => {
  await t?.close();
});

/** A POST on a sandbox session socket, as the launcher's relay sends it. */
function viaSocket(box: SandboxSession, body: unknown, sid?: string): Promise<{ status: number; sid: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: `127.0.0.1:${box.port}`, ...MCP_HEADERS, ...(sid ? { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } : {}) };
    const req = request({ socketPath: box.socketPath, method: 'POST', path: '/mcp', headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sid: res.headers['mcp-session-id'] as string | undefined, text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function openInBox(box: SandboxSession): Promise<string> {
  const init = await viaSocket(box, initializeBody());
  expect(init.status).toBe(200);
  const sid = init.sid as string;
  expect((await viaSocket(box, { jsonrpc: '2.0', method: 'notifications/initialized' }, sid)).status).toBe(202);
  return sid;
}

async function viaToken(token: string, body: unknown, sid: string) {
  return t.raw({ token, headers: { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }, body: JSON.stringify(body) });
}

describe('session binding: the channel is part of the identity', () => {
  it('a session opened with agent alice\'s token, replayed on a sandbox socket of alice: 404', async () => {
    const token = await t.mint('alice');
    const sid = await t.openSession(token);
    // Control: on its own channel the session works.
    expect((await viaToken(token, LIST, sid)).status).toBe(200);
    const stolen = await viaSocket(boxA, LIST, sid);
    expect(stolen.status).toBe(404);
    expect(stolen.text).not.toContain('"tools"');
  });

  it('a session opened inside alice\'s sandbox, replayed over TCP with a token of alice: 404', async () => {
    const sid = await openInBox(boxA);
    expect((await viaSocket(boxA, LIST, sid)).status).toBe(200);
    const token = await t.mint('alice');
    const stolen = await viaToken(token, LIST, sid);
    expect(stolen.status).toBe(404);
    expect(stolen.text).not.toContain('"tools"');
  });

  it('a session opened in one sandbox of alice, replayed on another sandbox of alice: 404', async () => {
    const sid = await openInBox(boxA);
    expect((await viaSocket(boxB, LIST, sid)).status).toBe(404);
    expect((await viaSocket(boxA, LIST, sid)).status).toBe(200);
  });

  it('a session of alice, replayed with a token of bob: 404', async () => {
    const sid = await t.openSession(await t.mint('alice'));
    expect((await viaToken(await t.mint('bob'), LIST, sid)).status).toBe(404);
  });
});

describe('session binding in the SessionManager itself', () => {
  it('each field of the identity counts on its own: agent, channel (via) and sandbox', async () => {
    const audit: AuditSink = { append: async () => undefined, assertWritable: () => undefined, close: async () => undefined };
    const sessions = new SessionManager({ makeServer: () => new Server({ name: 't', version: '1' }, { capabilities: {} }), audit, logger: silentLogger });
    let who: Identity = { agent: 'alice', via: 'token' };
    const app = createApp({ sessions, authenticate: async () => ({ ok: true, identity: who }), hosts: allowedHosts(8931), origins: allowedOrigins(8931), logger: silentLogger });
    const post = (body: unknown, sid?: string) =>
      app.request('/mcp', { method: 'POST', headers: { host: '127.0.0.1:8931', ...MCP_HEADERS, ...(sid ? { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } : {}) }, body: JSON.stringify(body) });
    try {
      const sid = (await post(initializeBody())).headers.get('mcp-session-id') ?? '';
      expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, sid)).status).toBe(202);
      const others: Identity[] = [
        { agent: 'bob', via: 'token' },
        // Only the channel differs (no sandbox id on either side).
        { agent: 'alice', via: 'sandbox' },
        { agent: 'alice', via: 'token', sandbox: 'abc' },
      ];
      for (const other of others) {
        who = other;
        expect((await post(LIST, sid)).status, JSON.stringify(other)).toBe(404);
      }
      who = { agent: 'alice', via: 'token' };
      expect((await post(LIST, sid)).status).toBe(200);
    } finally {
      await sessions.closeAll();
    }
  });
});
