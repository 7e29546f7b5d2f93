/**
 * SessionManager through the real Hono app and SDK transport (app.request,
 * no sockets): sessions opened and never used again are swept.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditSink } from '../../src/audit/types.js';
import { silentLogger } from '../../src/log.js';
import { createApp } from '../../src/server/app.js';
import { allowedHosts, allowedOrigins } from '../../src/server/guards.js';
import { SessionManager } from '../../src/server/mcp-sessions.js';
import { initializeBody, MCP_HEADERS, until } from '../helpers/gateway.js';

const records: AuditEvent[] = [];
const audit: AuditSink = { append: async (e) => void records.push(e), assertWritable: () => undefined, close: async () => undefined };

let sessions: SessionManager | undefined;
afterEach(async () => {
  await sessions?.closeAll();
  records.length = 0;
});

function setup(opts: { unusedMs: number; maxSessionsPerAgent: number }) {
  sessions = new SessionManager({ makeServer: () => new Server({ name: 't', version: '1' }, { capabilities: {} }), audit, logger: silentLogger, ...opts });
  const s = sessions;
  const app = createApp({ sessions: s, authenticate: async () => ({ ok: true, identity: { agent: 'flooder', via: 'token' } }), hosts: allowedHosts(8931), origins: allowedOrigins(8931), logger: silentLogger });
  const post = (body: unknown, sid?: string) =>
    app.request('/mcp', { method: 'POST', headers: { host: '127.0.0.1:8931', ...MCP_HEADERS, ...(sid ? { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } : {}) }, body: JSON.stringify(body) });
  return { s, post };
}

describe('sessions nobody uses', () => {
  it('a flood of bare initialize requests (never followed up) is swept, and the quota comes back', async () => {
    const { s, post } = setup({ unusedMs: 500, maxSessionsPerAgent: 3 });
    const used = (await post(initializeBody())).headers.get('mcp-session-id') ?? '';
    expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, used)).status).toBe(202);
    for (let i = 0; i < 2; i++) expect((await post(initializeBody())).status).toBe(200);
    expect((await post(initializeBody())).status).toBe(429);
    await until(() => records.filter((r) => r.event === 'session.closed' && r.reason === 'unused').length === 2, 'the unused sessions to be swept', 5000);
    // The session that was used is kept; the two slots are free again.
    expect(s.size).toBe(1);
    expect(s.get(used, { agent: 'flooder', via: 'token' })).toBeDefined();
    expect((await post(initializeBody())).status).toBe(200);
  });
});
