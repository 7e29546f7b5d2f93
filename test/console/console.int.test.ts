/**
 * The console over HTTP against a real gateway: one-time login, cookie flags,
 * CSRF, security headers, who may reach it, and hostile agent data returned
 * as JSON data only.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('gatehouse_console_never_puts_the_login_secret_on_the_openers_command_line', async () => {
    const g = await start();
    const bin = await mkdtemp(join(tmpdir(), 'gh-opener-'));
    const out = join(bin, 'out');
    // A stand-in xdg-open: records its argv and what it was given to open.
    await writeFile(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${out}.argv.tmp"\nf="\${1#file://}"\ncat "$f" > "${out}.page"\nstat -c '%a' "$f" > "${out}.mode"\nstat -c '%a' "$(dirname "$f")" > "${out}.dirmode"\nmv "${out}.argv.tmp" "${out}.argv"\n`, { mode: 0o755 });
    const env = { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '', DISPLAY: ':99', GATEHOUSE_STATE: g.dirs.state };
    const printed = (await run(process.execPath, [CLI, 'console'], { env })).stdout;
    expect(printed).toContain('Opening it in your browser');
    const url = /http:\S+#login=[A-Za-z0-9_-]{43}/.exec(printed)?.[0] as string;
    const secret = url.split('#login=')[1] as string;
    const argv = await until(() => (existsSync(`${out}.argv`) ? readFileSync(`${out}.argv`, 'utf8') : undefined), 'the opener to run');
    expect(argv).not.toContain(secret);
    expect(argv.trim()).toMatch(/^file:\/\/\/.+\/gatehouse-console-[^/]+\/open\.html$/);
    // The page it opens leads to the link, and only its owner can read it.
    expect(readFileSync(`${out}.page`, 'utf8')).toContain(url);
    expect(readFileSync(`${out}.mode`, 'utf8').trim()).toBe('600');
    expect(readFileSync(`${out}.dirmode`, 'utf8').trim()).toBe('700');
    expect((await exchange(g, secret)).status).toBe(200);
    await rm(bin, { recursive: true, force: true });
  });

  it('logout_ends_the_session', async () => {
    const g = await start();
    const s = await consoleSession(g);
    expect((await g.raw({ method: 'GET', path: '/console/api/session', headers: s.headers })).status).toBe(200);
    expect((await g.raw({ method: 'DELETE', path: '/console/api/session', headers: s.headers })).status).toBe(200);
    expect((await g.raw({ method: 'GET', path: '/console/api/session', headers: s.headers })).status).toBe(401);
  });
});

describe('console: a cookie alone opens nothing (another loopback port sees it)', () => {
  it('a_cookie_stolen_by_another_loopback_port_neither_reads_the_token_nor_approves', async () => {
    const g = await start();
    const s = await consoleSession(g);
    const mallory = await g.client('mallory');
    const call = mallory.callTool({ name: 'fx__echo', arguments: { text: 'rm -rf ~' } });
    const [p] = await pending(g);
    // The reviewer's attack: the cookie alone used to return the CSRF token, then approve.
    const session = await g.raw({ method: 'GET', path: '/console/api/session', headers: { cookie: s.cookie } });
    expect(session.status).toBe(401);
    expect(session.text).not.toContain(s.csrf);
    for (const path of ['/console/api/live', '/console/api/admin/approvals', '/console/events', '/console/api/audit/export?format=jsonl', '/console/api/audit/verify']) {
      expect((await g.raw({ method: 'GET', path, headers: { cookie: s.cookie } })).status, path).toBe(401);
    }
    const approve = await g.raw({ path: `/console/api/admin/approvals/${p?.id}/approve`, headers: { cookie: s.cookie, 'content-type': 'application/json' }, body: '{}' });
    expect(approve.status).toBe(401);
    expect(await pending(g)).toHaveLength(1);
    // With its token (which only the login answer carried) the session reads, and no read hands the token out again.
    const mine = await g.raw({ method: 'GET', path: '/console/api/session', headers: s.headers });
    expect(mine.status).toBe(200);
    expect(mine.json()).toEqual({ session: s.session, expiresAt: expect.any(String) });
    expect(mine.text).not.toContain(s.csrf);
    // A token without its cookie is no session either.
    expect((await g.raw({ method: 'GET', path: '/console/api/session', headers: { 'x-gatehouse-csrf': s.csrf } })).status).toBe(401);
    expect((await g.raw({ path: `/console/api/admin/approvals/${p?.id}/deny`, headers: { ...s.headers, 'content-type': 'application/json' }, body: '{}' })).status).toBe(200);
    expect((await call).isError).toBe(true);
  });

  it('a_cookie_tossed_by_another_port_and_sent_first_does_not_lock_the_admin_out', async () => {
    const g = await start();
    const s = await consoleSession(g);
    const value = s.cookie.split('=')[1] as string;
    // Path=/console/api cookies are sent before ours (RFC 6265 §5.4: longer paths first); every one of the name is tried.
    for (const tossed of ['gatehouse_console=junk', `gatehouse_console=${'A'.repeat(43)}`, 'gatehouse_console=', 'gatehouse_console=%E0%A4%A']) {
      const res = await g.raw({ method: 'GET', path: '/console/api/session', headers: { cookie: `${tossed}; other=1; gatehouse_console=${value}`, 'x-gatehouse-csrf': s.csrf } });
      expect(res.status, tossed).toBe(200);
    }
    // Another session's cookie with this session's token opens neither.
    const t2 = await consoleSession(g);
    expect((await g.raw({ method: 'GET', path: '/console/api/session', headers: { cookie: t2.cookie, 'x-gatehouse-csrf': s.csrf } })).status).toBe(401);
  });

  it('a_cross_site_request_is_refused_by_sec_fetch_site', async () => {
    const g = await start();
    const s = await consoleSession(g);
    // A page on another loopback port is same-site (ports do not count), never same-origin.
    for (const site of ['same-site', 'cross-site', 'none']) {
      expect((await g.raw({ method: 'GET', path: '/console/api/live', headers: { ...s.headers, 'sec-fetch-site': site } })).status, site).toBe(403);
      expect((await g.raw({ path: '/console/api/session', headers: { 'content-type': 'application/json', 'sec-fetch-site': site }, body: JSON.stringify({ secret: (await loginUrl(g)).secret }) })).status, site).toBe(403);
    }
    expect((await g.raw({ method: 'GET', path: '/console/api/live', headers: { ...s.headers, 'sec-fetch-site': 'same-origin' } })).status).toBe(200);
  });

  it('issuing_a_login_url_is_audited_without_its_secret', async () => {
    const g = await start();
    const { secret } = await loginUrl(g);
    const rec = await until(() => g.audit().find((r) => r.event === 'console.login_issued'), 'the console.login_issued record');
    expect(rec.expiresAt).toEqual(expect.any(String));
    expect(JSON.stringify(g.audit())).not.toContain(secret);
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
    expect((await deny({})).status).toBe(401);
    expect((await deny({ 'x-gatehouse-csrf': 'A'.repeat(43) })).status).toBe(401);
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
    expect((await g.raw({ method: 'GET', path: '/console/api/live', headers: { ...s.headers, host: 'evil.example' } })).status).toBe(403);
    expect((await g.raw({ method: 'GET', path: '/console/api/live', headers: { ...s.headers, origin: 'http://evil.example' } })).status).toBe(403);
    expect((await g.raw({ method: 'GET', path: '/console/api/live', headers: { ...s.headers, origin: `http://127.0.0.1:${g.port}` } })).status).toBe(200);
  });

  it('the_console_passes_only_its_listed_admin_routes', async () => {
    const g = await start();
    const s = await consoleSession(g);
    const revoke = await g.raw({ path: '/console/api/admin/tokens/revoke', headers: { ...s.headers, 'content-type': 'application/json' }, body: '{"agent":"coder"}' });
    expect(revoke.status).toBe(404);
    const forged = await g.raw({ path: '/console/api/admin/approvals/ap_x/approve', headers: { ...s.headers, 'content-type': 'application/json' }, body: '{"by":"alice"}' });
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
    const res = await g.raw({ method: 'GET', path: '/console/api/admin/approvals', headers: s.headers });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    const [p] = (res.json() as { pending: Array<{ id: string; args: { text: string } }> }).pending;
    expect(p?.args.text).toBe(XSS);
    const ok = await g.raw({ path: `/console/api/admin/approvals/${p?.id}/approve`, headers: { ...s.headers, 'content-type': 'application/json' }, body: '{"grant":{"ttl":"10m","uses":2}}' });
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
    const get = (path: string) => g.raw({ method: 'GET', path, headers: s.headers });
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
    const info = (await g.raw({ method: 'GET', path: '/console/api/policy', headers: s.headers })).json() as { files: Array<{ file: string; rules: number }>; lastReload: { initial: boolean } };
    expect(info.files).toEqual([{ file: 'test.yaml', rules: 4 }]);
    expect(info.lastReload.initial).toBe(true);
    const ex = await g.raw({ path: '/console/api/policy/explain', headers: { ...s.headers, 'content-type': 'application/json' }, body: JSON.stringify({ agent: 'coder', tool: 'fx__env' }) });
    expect(ex.json()).toMatchObject({ decision: { effect: 'deny', ruleId: 'env-never' } });
    const tools = (await g.raw({ method: 'GET', path: '/console/api/tools/explain?agent=coder', headers: s.headers })).json() as { tools: Array<{ name: string; decision: { effect: string } }> };
    expect(tools.tools.find((x) => x.name === 'fx__echo')?.decision.effect).toBe('ask');
    expect(tools.tools.find((x) => x.name === 'fx__env')?.decision.effect).toBe('deny');
  });
});
