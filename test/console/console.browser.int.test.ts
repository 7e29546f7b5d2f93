/**
 * The console in a real browser: the distribution's Chromium (installed by
 * scripts/test-deps.sh), driven by playwright-core; nothing downloads a
 * browser. Screenshots of each page go to artifacts/console/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Dialog, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';
import { loginUrl } from './helpers.js';

const CHROMIUM = process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'artifacts', 'console');
const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'echo-asks', match: { tool: 'fx__echo' }, effect: 'ask', message: 'Echo needs a human.', ask: { timeout: '2m', grant: { ttl: '1h', maxUses: 5 } } },
    { id: 'no-short-naps', match: { tool: 'fx__slow', args: { ms: { max: 50 } } }, effect: 'deny', message: 'too short' },
    { id: 'rest', match: { tool: '*' }, effect: 'allow' },
  ],
};
/** Runs script if it is ever parsed as HTML: sets a flag and opens a dialog, both checked below. */
const XSS = '<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script>';
const XSS_TOOL = '<svg onload="window.__pwned=3">';

let t: TestGateway;
let browser: Browser;
const dialogs: Dialog[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
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

const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
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
    await page.locator('#approvals-list').focus();
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
    await page.locator('#approvals-list li').first().waitFor();
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
    expect(await page.getAttribute('#export-csv', 'href')).toBe('/console/api/audit/export?format=csv&tool=fx__echo&decision=ask');
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

  it('a_state_change_without_the_csrf_token_is_refused_in_the_browser', async () => {
    const client = await t.client('coder');
    const call = client.callTool({ name: 'fx__echo', arguments: { text: 'third' } });
    const id = await until(async () => ((await t.gw.approvals.list())[0]?.id), 'a pending approval');
    const status = await page.evaluate(async (approval) => {
      const res = await fetch(`/console/api/admin/approvals/${approval}/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      return res.status;
    }, id);
    expect(status).toBe(403);
    expect(t.gw.approvals.get(id)).toBeDefined();
    t.gw.approvals.deny(id, { by: 'test' });
    await call;
  });

  it('no_payload_ever_ran', async () => {
    expect(await pwned(page)).toBeUndefined();
    expect(dialogs.map((d) => d.message())).toEqual([]);
  });
});
