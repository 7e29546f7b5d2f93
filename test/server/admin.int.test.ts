/**
 * The admin API: local admin only (the control socket, or an admin token on
 * TCP). Agents' tokens never reach it; the audit query is paged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest } from '../../src/server/control-client.js';
import { mintToken } from '../../src/server/tokens.js';
import { startTestGateway, stdioFixture, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });
  const c = await t.client('coder');
  for (let i = 0; i < 3; i++) await c.callTool({ name: 'fx__echo', arguments: { text: `hello ${i}` } });
});
afterAll(async () => {
  await t.close();
});

describe('admin API', () => {
  it('control_socket_serves_status_and_the_paged_audit_query', async () => {
    const status = (await adminRequest(t.dirs.state, 'GET', '/status')) as { connectors: Array<{ name: string; status: { state: string } }>; sessions: number };
    expect(status.connectors).toEqual([expect.objectContaining({ name: 'fx', status: { state: 'ready' } })]);
    expect(status.sessions).toBeGreaterThanOrEqual(1);
    const page = (await adminRequest(t.dirs.state, 'GET', '/audit?event=tools/call&agent=coder&limit=2&order=asc')) as { records: Array<Record<string, unknown>>; nextCursor: string | null };
    expect(page.records).toHaveLength(2);
    expect(page.records.map((r) => (r.args as { text: string }).text)).toEqual(['hello 0', 'hello 1']);
    const next = (await adminRequest(t.dirs.state, 'GET', `/audit?event=tools/call&agent=coder&limit=2&order=asc&cursor=${encodeURIComponent(String(page.nextCursor))}`)) as { records: Array<Record<string, unknown>> };
    expect(next.records.map((r) => (r.args as { text: string }).text)).toEqual(['hello 2']);
  });

  it('an_agent_token_cannot_use_the_admin_api_over_tcp', async () => {
    const agent = await t.mint('coder');
    const r = await t.raw({ method: 'GET', path: '/admin/v1/audit', token: agent });
    expect(r.status).toBe(403);
    const none = await t.raw({ method: 'GET', path: '/admin/v1/status' });
    expect(none.status).toBe(401);
    expect(String(none.headers['www-authenticate'])).toContain('gatehouse-admin');
  });

  it('an_admin_token_can_query_the_audit_log_over_tcp', async () => {
    const admin = (await mintToken(t.gw.keys, 'ops', 600_000, Date.now(), { admin: true })).token;
    const r = await t.raw({ method: 'GET', path: '/admin/v1/audit?tool=fx__echo&limit=1', token: admin });
    expect(r.status).toBe(200);
    const body = r.json() as { records: Array<Record<string, unknown>> };
    expect(body.records[0]).toMatchObject({ event: 'tools/call', agent: 'coder', tool: 'fx__echo', decision: 'allow' });
  });

  it('a_bad_audit_filter_is_a_400_with_the_reason', async () => {
    const admin = (await mintToken(t.gw.keys, 'ops', 600_000, Date.now(), { admin: true })).token;
    const r = await t.raw({ method: 'GET', path: '/admin/v1/audit?decision=maybe', token: admin });
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/decision/);
  });
});

describe('token roles', () => {
  it('an_admin_token_is_not_an_agent_identity_at_mcp', async () => {
    const admin = (await mintToken(t.gw.keys, 'ops', 600_000, Date.now(), { admin: true })).token;
    const r = await t.raw({
      token: admin,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
    });
    expect(r.status).toBe(401);
    expect(String(r.headers['www-authenticate'])).toContain('error="invalid_token"');
    expect(r.text).toContain('admin token');
  });
});
