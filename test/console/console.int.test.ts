/**
 * The console over HTTP against a real gateway: one-time login, cookie flags,
 * CSRF, security headers, who may reach it, and hostile agent data returned
 * as JSON data only.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../src/console/headers.js';
import { adminRequest } from '../../src/server/control-client.js';
import { mintToken } from '../../src/server/tokens.js';
import { CLI, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';
import { consoleSession, exchange, loginUrl } from './helpers.js';

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'echo-asks', match: { tool: 'fx__echo' }, effect: 'ask', ask: { timeout: '2m', grant: { ttl: '1h', maxUses: 5 } } },
    { id: 'env-never', match: { tool: 'fx__env' }, effect: 'deny', message: 'no' },
    { id: 'no-short-naps', match: { tool: 'fx__slow', args: { ms: { max: 50 } } }, effect: 'deny', message: 'too short' },
    { id: 'rest', match: { tool: '*' }, effect: 'allow' },
  ],
};
const run = promisify(execFile);
const XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const start = async () => (t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY }));

async function pending(g: TestGateway): Promise<Array<{ id: string; args: Record<string, unknown> }>> {
  return until(async () => {
    const r = (await adminRequest(g.dirs.state, 'GET', '/approvals')) as { pending: Array<{ id: string; args: Record<string, unknown> }> };
    return r.pending.length > 0 ? r.pending : undefined;
  }, 'a pending approval');
}

describe('console: login and session', () => {
  it('a_login_url_works_once_and_gives_an_httponly_samesite_strict_cookie', async () => {
    const g = await start();
    const { url, secret } = await loginUrl(g);
    expect(url).toBe(`http://127.0.0.1:${g.port}/console/#login=${secret}`);
    const first = await exchange(g, secret);
    expect(first.status).toBe(200);
    const cookie = String(first.headers['set-cookie']?.[0]);
    expect(cookie).toMatch(/^gatehouse_console=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\/console/);
    // Plain HTTP on loopback: a Secure cookie would never come back.
    expect(cookie).not.toMatch(/; Secure/);
    const again = await exchange(g, secret);
    expect(again.status).toBe(401);
    expect(again.headers['set-cookie']).toBeUndefined();
    // The login is audited with the session's id, never the cookie.
    const { session } = first.json() as { session: string };
    await until(() => g.audit().find((r) => r.event === 'console.login' && r.consoleSession === session), 'the console.login record');
    expect(JSON.stringify(g.audit())).not.toContain(cookie.split(';')[0]?.split('=')[1]);
  });

  it('no_session_no_data_and_an_agent_or_admin_token_is_no_session', async () => {
    const g = await start();
    expect((await g.raw({ method: 'GET', path: '/console/api/live' })).status).toBe(401);
    const agent = await g.mint('coder');
    const admin = (await mintToken(g.gw.keys, 'root', 60_000, Date.now(), { admin: true })).token;
    for (const token of [agent, admin]) {
      expect((await g.raw({ method: 'GET', path: '/console/api/live', token })).status).toBe(401);
      expect((await g.raw({ method: 'GET', path: '/console/events', token })).status).toBe(401);
    }
    // A login URL comes from the admin API only: an agent token gets 403 on TCP, an admin token a URL.
    expect((await g.raw({ method: 'POST', path: '/admin/v1/console/login', token: agent })).status).toBe(403);
    const byAdmin = await g.raw({ method: 'POST', path: '/admin/v1/console/login', token: admin });
    expect(byAdmin.status).toBe(200);
    expect((byAdmin.json() as { url: string }).url).toContain('/console/#login=');
  });

  it('gatehouse_console_prints_a_login_url_that_works_once_and_never_needs_a_browser', async () => {
    const g = await start();
    // No display: nothing is opened, and that is no failure.
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', GATEHOUSE_STATE: g.dirs.state };
    const plain = await run(process.execPath, [CLI, 'console'], { env });
    expect(plain.stdout).toMatch(new RegExp(`^Console login link \\(works once, until .+\\):\n  http://127\\.0\\.0\\.1:${g.port}/console/#login=[A-Za-z0-9_-]{43}\n$`));
    const json = JSON.parse((await run(process.execPath, [CLI, 'console', '--no-open', '--json'], { env })).stdout) as { url: string };
    const secret = json.url.split('#login=')[1] as string;
    expect((await exchange(g, secret)).status).toBe(200);
    expect((await exchange(g, secret)).status).toBe(401);
  });

  it('logout_ends_the_session', async () => {
    const g = await start();
    const s = await consoleSession(g);
    expect((await g.raw({ method: 'GET', path: '/console/api/session', headers: { cookie: s.cookie } })).status).toBe(200);
    expect((await g.raw({ method: 'DELETE', path: '/console/api/session', headers: { cookie: s.cookie, 'x-gatehouse-csrf': s.csrf } })).status).toBe(200);
    expect((await g.raw({ method: 'GET', path: '/console/api/session', headers: { cookie: s.cookie } })).status).toBe(401);
  });
});

describe('console: CSRF, headers, Host and Origin', () => {
  it('a_state_change_without_the_csrf_token_is_refused', async () => {
    const g = await start();
    const s = await consoleSession(g);
    const client = await g.client('coder');
    const call = client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    const [p] = await pending(g);
    const deny = (headers: Record<string, string>) => g.raw({ path: `/console/api/admin/approvals/${p?.id}/deny`, headers: { cookie: s.cookie, 'content-type': 'application/json', ...headers }, body: '{}' });
    expect((await deny({})).status).toBe(403);
    expect((await deny({ 'x-gatehouse-csrf': 'A'.repeat(43) })).status).toBe(403);
    // Still waiting: nothing was decided.
    expect(await pending(g)).toHaveLength(1);
    expect((await deny({ 'x-gatehouse-csrf': s.csrf })).status).toBe(200);
    const r = await call;
    expect(r.isError).toBe(true);
    // The denial names the console session, not a name the page chose.
    await until(() => g.audit().find((x) => x.event === 'approval.denied' && x.by === `console:${s.session}`), 'the approval.denied record');
  });

  it('every_console_answer_has_a_strict_csp_and_cannot_be_framed', async () => {
    const g = await start();
    for (const path of ['/console/', '/console/console.js', '/console/console.css', '/console/api/live', '/console/api/nothing']) {
      const res = await g.raw({ method: 'GET', path });
      expect(res.headers['content-security-policy'], path).toBe(CONSOLE_CSP);
      expect(res.headers['x-frame-options'], path).toBe('DENY');
      expect(res.headers['x-content-type-options'], path).toBe('nosniff');
      expect(res.headers['referrer-policy'], path).toBe('no-referrer');
    }
    expect(CONSOLE_CSP).toContain("default-src 'self'");
    expect(CONSOLE_CSP).toContain("frame-ancestors 'none'");
    expect(CONSOLE_CSP).not.toContain('unsafe-inline');
    const page = await g.raw({ method: 'GET', path: '/console/' });
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    // No inline script or style in the page itself.
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.text).not.toMatch(/<style|style=/);
  });

  it('a_foreign_host_or_origin_is_refused_as_for_mcp', async () => {
    const g = await start();
    const s = await consoleSession(g);
    expect((await g.raw({ method: 'GET', path: '/console/api/live', headers: { cookie: s.cookie, host: 'evil.example' } })).status).toBe(403);
    expect((await g.raw({ method: 'GET', path: '/console/api/live', headers: { cookie: s.cookie, origin: 'http://evil.example' } })).status).toBe(403);
    expect((await g.raw({ method: 'GET', path: '/console/api/live', headers: { cookie: s.cookie, origin: `http://127.0.0.1:${g.port}` } })).status).toBe(200);
  });

  it('the_console_passes_only_its_listed_admin_routes', async () => {
    const g = await start();
    const s = await consoleSession(g);
    const revoke = await g.raw({ path: '/console/api/admin/tokens/revoke', headers: { cookie: s.cookie, 'x-gatehouse-csrf': s.csrf, 'content-type': 'application/json' }, body: '{"agent":"coder"}' });
    expect(revoke.status).toBe(404);
    const forged = await g.raw({ path: '/console/api/admin/approvals/ap_x/approve', headers: { cookie: s.cookie, 'x-gatehouse-csrf': s.csrf, 'content-type': 'application/json' }, body: '{"by":"alice"}' });
    expect(forged.status).toBe(400);
  });
});

describe('console: agent data is data', () => {
  it('hostile_arguments_come_back_exactly_as_json_strings', async () => {
    const g = await start();
    const s = await consoleSession(g);
    const client = await g.client('coder');
    const call = client.callTool({ name: 'fx__echo', arguments: { text: XSS } });
    await pending(g);
    const res = await g.raw({ method: 'GET', path: '/console/api/admin/approvals', headers: { cookie: s.cookie } });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    const [p] = (res.json() as { pending: Array<{ id: string; args: { text: string } }> }).pending;
    expect(p?.args.text).toBe(XSS);
    const ok = await g.raw({ path: `/console/api/admin/approvals/${p?.id}/approve`, headers: { cookie: s.cookie, 'x-gatehouse-csrf': s.csrf, 'content-type': 'application/json' }, body: '{"grant":{"ttl":"10m","uses":2}}' });
    expect(ok.status).toBe(200);
    const r = await call;
    expect(r.isError).toBeFalsy();
    const approved = await until(() => g.audit().find((x) => x.event === 'approval.approved'), 'the approval.approved record');
    expect(approved).toMatchObject({ by: `console:${s.session}`, grant: { maxUses: 2 } });
  });

  it('audit_search_verify_and_export_of_the_current_filter', async () => {
    const g = await start();
    const s = await consoleSession(g);
    const client = await g.client('coder');
    await client.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } });
    await client.callTool({ name: 'fx__slow', arguments: { ms: 1 } });
    const get = (path: string) => g.raw({ method: 'GET', path, headers: { cookie: s.cookie } });
    const denied = (await get('/console/api/admin/audit?decision=deny&limit=5')).json() as { records: Array<{ tool: string }> };
    expect(denied.records.map((r) => r.tool)).toEqual(['fx__slow']);
    const v = (await get('/console/api/audit/verify')).json() as { ok: boolean; records: number };
    expect(v.ok).toBe(true);
    expect(v.records).toBeGreaterThan(2);
    const csv = await get('/console/api/audit/export?format=csv&tool=fx__*&event=tools/call');
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.headers['content-disposition']).toMatch(/^attachment; filename="gatehouse-audit-.*\.csv"$/);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe('SEQ,TIME,EVENT,AGENT,TOOL,DECISION,RULE,OUTCOME,LATENCY,HASH');
    expect(lines.slice(1).map((l) => l.split(',')[4])).toEqual(['fx__slow', 'fx__add']);
    const jsonl = await get('/console/api/audit/export?format=jsonl&decision=deny');
    expect(jsonl.text.trim().split('\n').map((l) => (JSON.parse(l) as { tool: string }).tool)).toEqual(['fx__slow']);
    expect((await get('/console/api/audit/export?format=xml')).status).toBe(400);
  });

  it('policy_explain_and_tool_decisions_for_an_agent', async () => {
    const g = await start();
    const s = await consoleSession(g);
    const info = (await g.raw({ method: 'GET', path: '/console/api/policy', headers: { cookie: s.cookie } })).json() as { files: Array<{ file: string; rules: number }>; lastReload: { initial: boolean } };
    expect(info.files).toEqual([{ file: 'test.yaml', rules: 4 }]);
    expect(info.lastReload.initial).toBe(true);
    const ex = await g.raw({ path: '/console/api/policy/explain', headers: { cookie: s.cookie, 'x-gatehouse-csrf': s.csrf, 'content-type': 'application/json' }, body: JSON.stringify({ agent: 'coder', tool: 'fx__env' }) });
    expect(ex.json()).toMatchObject({ decision: { effect: 'deny', ruleId: 'env-never' } });
    const tools = (await g.raw({ method: 'GET', path: '/console/api/tools/explain?agent=coder', headers: { cookie: s.cookie } })).json() as { tools: Array<{ name: string; decision: { effect: string } }> };
    expect(tools.tools.find((x) => x.name === 'fx__echo')?.decision.effect).toBe('ask');
    expect(tools.tools.find((x) => x.name === 'fx__env')?.decision.effect).toBe('deny');
  });
});
