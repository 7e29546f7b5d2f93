/**
 * The console in a real browser: the distribution's Chromium (installed by
 * scripts/test-deps.sh), driven by playwright-core; nothing downloads a
 * browser. Screenshots of each page go to artifacts/console/.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Dialog, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';
import { BROWSER_POLICY, CHROMIUM, loginUrl, shot, SHOTS } from './helpers.js';

/** Runs script if it is ever parsed as HTML: sets a flag and opens a dialog, both checked below. */
const XSS = '<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script>';
const XSS_TOOL = '<svg onload="window.__pwned=3">';

let t: TestGateway;
let browser: Browser;
const dialogs: Dialog[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: BROWSER_POLICY });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

async function newPage(): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'dark' });
  const page = await ctx.newPage();
  page.on('dialog', (d) => {
    dialogs.push(d);
    void d.dismiss();
  });
  return page;
}

/** The calls waiting for approval, as the admin API lists them (oldest first). */
const waiting = async () => t.gw.approvals.list();

const pwned = (page: Page) => page.evaluate(() => (globalThis as { __pwned?: number }).__pwned);

describe('console in Chromium', () => {
  let page: Page;
  let url: string;

  it('logs_in_with_the_one_time_url_and_a_reused_url_fails', async () => {
    ({ url } = await loginUrl(t));
    page = await newPage();
    await page.goto(url);
    await page.locator('#conn', { hasText: 'live' }).waitFor();
    // The secret left the address bar at once.
    expect(page.url()).toBe(`http://127.0.0.1:${t.port}/console/`);
    await expect.poll(() => page.locator('#live-connectors tbody').textContent()).toContain('fx');
    await shot(page, 'live');

    const other = await newPage();
    await other.goto(url);
    await other.locator('#page-login').waitFor({ state: 'visible' });
    expect(await other.locator('#login-message').textContent()).toMatch(/Login failed: this login link is not valid/);
    await other.context().close();

    // A reload keeps the tab's session (its token is in sessionStorage); a new tab has none and needs its own link.
    await page.reload();
    await page.locator('#conn', { hasText: 'live' }).waitFor();
    expect(await page.locator('#who').textContent()).toMatch(/^session cs_/);
    const tab = await page.context().newPage();
    await tab.goto(`http://127.0.0.1:${t.port}/console/`);
    await tab.locator('#page-login').waitFor({ state: 'visible' });
    expect(await tab.locator('#login-message').textContent()).toMatch(/each tab needs its own login link/);
    await tab.close();
  });

  it('a_waiting_call_appears_live_with_hostile_arguments_as_text_and_is_approved', async () => {
    await page.click('a[data-nav="approvals"]');
    const client = await t.client('coder');
    const call = client.callTool({ name: 'fx__echo', arguments: { text: `${XSS} ${'x'.repeat(5_000)}` } });
    // No reload: the server-sent event brings it.
    await page.locator('#approvals-list li').first().waitFor();
    const detail = page.locator('#approval-detail');
    await expect.poll(() => detail.textContent()).toContain(JSON.stringify(XSS).slice(1, -1));
    expect(await detail.locator('img, script, svg').count()).toBe(0);
    // A long value is cut visibly, and shown whole on request.
    expect(await detail.textContent()).toContain('more characters');
    await shot(page, 'approvals');
    await detail.getByRole('button', { name: 'show all' }).click();
    expect(await detail.textContent()).toContain('x'.repeat(5_000));
    // Picked with a click: the key acts at once.
    await page.locator('#approvals-list li').first().click();
    await page.keyboard.press('a');
    const result = await call;
    expect(result.isError).toBeFalsy();
    const approved = await until(() => t.audit().find((r) => r.event === 'approval.approved'), 'approval.approved');
    expect(String(approved.by)).toMatch(/^console:cs_[0-9a-f]{12}$/);
    await page.locator('#approvals-list li').first().waitFor({ state: 'detached' });
  });

  it('denies_another_with_a_reason', async () => {
    const client = await t.client('coder');
    const call = client.callTool({ name: 'fx__echo', arguments: { text: 'second' } });
    await page.locator('#approvals-list li').first().click();
    await page.fill('#deny-reason', 'not today');
    await page.click('#deny');
    const result = await call;
    expect(result.isError).toBe(true);
    const denied = await until(() => t.audit().find((r) => r.event === 'approval.denied'), 'approval.denied');
    expect(denied).toMatchObject({ reason: 'not today' });
  });

  it('searches_the_audit_and_opens_a_record', async () => {
    const client = await t.client('coder');
    await client.callTool({ name: 'fx__slow', arguments: { ms: 1 } });
    await page.click('a[data-nav="audit"]');
    await page.fill('#audit-form input[name="tool"]', 'fx__echo');
    await page.selectOption('#audit-form select[name="decision"]', 'ask');
    await page.click('#audit-form button[type="submit"]');
    const rows = page.locator('#audit-table tbody tr.clickable');
    await expect.poll(() => rows.count()).toBe(2);
    // Newest first: the denied call, then the approved one with its hostile argument.
    await rows.nth(1).click();
    const detail = page.locator('#audit-detail');
    await expect.poll(() => detail.textContent()).toMatch(/Record \d+/);
    expect(await detail.textContent()).toContain('Previous hash');
    expect(await detail.locator('img, script, svg').count()).toBe(0);
    await page.click('#verify-button');
    await expect.poll(() => page.locator('#verify-result').textContent()).toMatch(/^Chain OK/);
    // The export is fetched with the session token and handed over as a file.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
    expect(download.suggestedFilename()).toMatch(/^gatehouse-audit-.*\.csv$/);
    const csv = readFileSync(await download.path(), 'utf8').trim().split('\r\n');
    expect(csv[0]).toBe('SEQ,TIME,EVENT,AGENT,TOOL,DECISION,RULE,OUTCOME,LATENCY,HASH');
    expect(csv.length).toBeGreaterThan(1);
    expect(csv.slice(1).every((l) => l.split(',')[4] === 'fx__echo')).toBe(true);
    await shot(page, 'audit');
  });

  it('a_hostile_tool_name_renders_inert_on_the_tools_page', async () => {
    const client = await t.client('coder');
    await client.callTool({ name: 'fx__add_tool', arguments: { name: XSS_TOOL } });
    await page.click('a[data-nav="tools"]');
    await page.fill('#tools-form input[name="agent"]', 'coder');
    await page.click('#tools-form button[type="submit"]');
    await expect.poll(() => page.locator('#unexposed-table').textContent(), { timeout: 15_000 }).toContain(XSS_TOOL);
    expect(await page.locator('#unexposed-table svg, #unexposed-table img').count()).toBe(0);
    expect(await page.locator('#tools-table tbody').textContent()).toContain('fx__echo');
    await shot(page, 'tools');
  });

  it('the_policy_page_explains_a_call', async () => {
    await page.click('a[data-nav="policy"]');
    await expect.poll(() => page.locator('#policy-files').textContent()).toContain('test.yaml');
    await page.fill('#explain-form input[name="agent"]', 'coder');
    await page.fill('#explain-form input[name="tool"]', 'fx__slow');
    await page.fill('#explain-form textarea[name="args"]', '{"ms": 5}');
    await page.click('#explain-form button[type="submit"]');
    await expect.poll(() => page.locator('#explain-result').textContent()).toContain('rule "no-short-naps"');
    await shot(page, 'policy');
  });

  it('a_bidi_override_in_arguments_is_shown_escaped_not_obeyed', async () => {
    // The reviewer's payload: U+202E makes "notes\u202Etxt.hs." read as "notes.sh.txt".
    const payload = 'cat /home/user/notes\u202Etxt.hs.\u202C\u200B';
    const client = await t.client('coder');
    const call = client.callTool({ name: 'fx__echo', arguments: { text: payload } });
    await page.click('a[data-nav="approvals"]');
    const detail = page.locator('#approval-detail');
    await expect.poll(() => detail.locator('pre.json').textContent()).toContain('notes');
    const shown = (await detail.locator('pre.json').textContent()) as string;
    for (const c of ['\u202E', '\u202C', '\u200B']) expect(shown).not.toContain(c);
    expect(shown).toContain('"cat /home/user/notes\\u202etxt.hs.\\u202c\\u200b"');
    // Shown visibly: each one a highlighted escape.
    expect(await detail.locator('pre.json .esc').allTextContents()).toEqual(['\\u202e', '\\u202c', '\\u200b']);
    await detail.screenshot({ path: join(SHOTS, 'approvals-bidi.png') });
    const [p] = await waiting();
    t.gw.approvals.deny(p?.id as string, { by: 'test' });
    await call;
  });

  it('holding_a_approves_one_call_never_the_next_unseen_one', async () => {
    await page.click('a[data-nav="approvals"]');
    const client = await t.client('mallory');
    const first = client.callTool({ name: 'fx__echo', arguments: { text: 'harmless' } });
    await until(async () => (await waiting()).length === 1 || undefined, 'the first call to wait');
    const second = client.callTool({ name: 'fx__echo', arguments: { text: 'EVIL second call' } });
    await until(async () => (await waiting()).length === 2 || undefined, 'the second call to wait');
    const detail = page.locator('#approval-detail');
    await page.locator('#approvals-list li').nth(1).waitFor();
    await expect.poll(() => detail.textContent()).toContain('harmless');
    // The admin reads the first call, then holds "a" a little too long: the browser repeats the key.
    await page.waitForTimeout(1_100);
    await page.locator('#approvals-list').focus();
    await page.keyboard.down('a');
    await page.waitForTimeout(60);
    await page.keyboard.down('a');
    await page.waitForTimeout(60);
    await page.keyboard.down('a');
    await page.keyboard.up('a');
    expect((await first).isError).toBeFalsy();
    // The second call came on screen by itself: neither the repeats nor a fresh press at once decide it.
    await expect.poll(() => detail.textContent()).toContain('EVIL second call');
    await page.keyboard.press('a');
    await page.waitForTimeout(300);
    expect((await waiting()).map((a) => a.args)).toEqual([{ text: 'EVIL second call' }]);
    expect(await page.locator('#toast').textContent()).toContain('just came on screen');
    // Picked (k), it is decided at once.
    await page.keyboard.press('k');
    await page.keyboard.press('d');
    expect((await second).isError).toBe(true);
    expect(await waiting()).toEqual([]);
  });

  it('a_state_change_without_the_csrf_token_is_refused_in_the_browser', async () => {
    const client = await t.client('coder');
    const call = client.callTool({ name: 'fx__echo', arguments: { text: 'third' } });
    const id = await until(async () => ((await t.gw.approvals.list())[0]?.id), 'a pending approval');
    const status = await page.evaluate(async (approval) => {
      const res = await fetch(`/console/api/admin/approvals/${approval}/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      return res.status;
    }, id);
    // The cookie rides along, the session token does not: no session.
    expect(status).toBe(401);
    expect(t.gw.approvals.get(id)).toBeDefined();
    t.gw.approvals.deny(id, { by: 'test' });
    await call;
  });

  it('a_page_on_another_loopback_port_gets_the_cookie_but_can_neither_approve_nor_lock_the_admin_out', async () => {
    // Mallory: any local process that can bind a loopback port, and a link the admin follows.
    const seen: string[] = [];
    const evil = createServer((req, res) => {
      seen.push(req.headers.cookie ?? '');
      // Cookie tossing: a junk cookie of the console's name on a longer path, which the browser sends first.
      res.writeHead(200, { 'content-type': 'text/html', 'set-cookie': 'gatehouse_console=junk; Path=/console/api' });
      res.end('<h1>nice docs</h1>');
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    try {
      const tab = await page.context().newPage();
      // Under /console/ on its own port, so the cookie (Path=/console) is sent to it.
      await tab.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/console/docs`);
      await tab.close();
      const cookie = /gatehouse_console=[A-Za-z0-9_-]{43}/.exec(seen.join(' '))?.[0];
      // Browsers do send it (cookies ignore ports): it must be worth nothing alone.
      expect(cookie).toBeDefined();
      const client = await t.client('mallory');
      const call = client.callTool({ name: 'fx__echo', arguments: { text: 'rm -rf ~' } });
      const [p] = await until(async () => ((await waiting()).length > 0 ? waiting() : undefined), 'a pending approval');
      const session = await t.raw({ method: 'GET', path: '/console/api/session', headers: { cookie: cookie as string } });
      expect(session.status).toBe(401);
      const approve = await t.raw({ path: `/console/api/admin/approvals/${p?.id}/approve`, headers: { cookie: cookie as string, 'content-type': 'application/json' }, body: '{}' });
      expect(approve.status).toBe(401);
      expect(t.gw.approvals.get(p?.id as string)).toBeDefined();
      // The admin's tab still works, the tossed cookie notwithstanding, and after a reload too.
      await page.reload();
      await page.locator('#conn', { hasText: 'live' }).waitFor();
      await page.click('a[data-nav="approvals"]');
      await page.locator('#approvals-list li').first().waitFor();
      await page.locator('#approvals-list li').first().click();
      await page.click('#deny');
      expect((await call).isError).toBe(true);
      const denied = await until(() => t.audit().find((r) => r.event === 'approval.denied' && r.approvalId === p?.id), 'approval.denied');
      expect(String(denied.by)).toMatch(/^console:cs_/);
    } finally {
      evil.close();
    }
  });

  it('no_payload_ever_ran', async () => {
    expect(await pwned(page)).toBeUndefined();
    expect(dialogs.map((d) => d.message())).toEqual([]);
  });
});
