/**
 * Policy through the real gateway: deny, ask (approve, deny, timeout, grants),
 * rate limits, hot reload and tools/list hiding. Approvals are decided over the
 * control socket, as `gatehouse approvals` does.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { adminRequest } from '../../src/server/control-client.js';
import type { PendingApproval } from '../../src/policy/approvals.js';
import { CLI, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';

const run = promisify(execFile);

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'echo-ok', match: { tool: 'fx__echo' }, effect: 'allow' },
    { id: 'echo-no-wipes', match: { tool: 'fx__echo', args: { text: { equals: 'rm -rf /' } } }, effect: 'deny', message: 'No wipes.' },
    { id: 'add-limited', match: { tool: 'fx__add' }, effect: 'allow', limit: '2/hour' },
    { id: 'env-never', match: { tool: 'fx__env' }, effect: 'deny', message: 'Environment dumps are not for agents.' },
    { id: 'slow-asks', match: { tool: 'fx__slow', args: { ms: { max: 50 } } }, effect: 'ask', ask: { timeout: '2s', grant: { ttl: '1h', maxUses: 2 } } },
  ],
};

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

async function pending(tg: TestGateway, n = 1): Promise<PendingApproval[]> {
  let list: PendingApproval[] = [];
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    list = ((await adminRequest(tg.dirs.state, 'GET', '/approvals')) as { pending: PendingApproval[] }).pending;
    if (list.length >= n) return list;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`expected ${n} pending approvals, saw ${list.length}`);
}

describe('policy decisions through the gateway', () => {
  it('deny_returns_a_tool_error_naming_the_rule_and_forwards_nothing', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    const r = (await c.callTool({ name: 'fx__echo', arguments: { text: 'rm -rf /' } })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(text(r)).toBe('No wipes. (denied by rule "echo-no-wipes")');
    expect(t.calls().filter((l) => l.tool === 'echo')).toEqual([]);
    expect(t.audit().filter((l) => l.event === 'tools/call').at(-1)).toMatchObject({ tool: 'fx__echo', decision: 'deny', rule: 'echo-no-wipes', outcome: 'denied' });
    // Denied in every case: hidden, and so unknown to the agent (nothing forwarded either).
    await expect(c.callTool({ name: 'fx__env', arguments: {} })).rejects.toThrow(/Unknown tool: fx__env/);
    expect(t.calls().filter((l) => l.tool === 'env')).toEqual([]);
  });

  it('tools_list_hides_tools_denied_in_every_case', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    const names = (await c.listTools()).tools.map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(['fx__echo', 'fx__add', 'fx__slow']));
    expect(names).not.toContain('fx__env');
    // No rule names it: denied by default, so hidden too.
    expect(names).not.toContain('fx__image');
  });

  it('rate_limit_denies_with_when_to_retry', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    for (let i = 0; i < 2; i++) expect((await c.callTool({ name: 'fx__add', arguments: { a: i, b: 1 } })).isError).toBeFalsy();
    const third = (await c.callTool({ name: 'fx__add', arguments: { a: 9, b: 9 } })) as CallToolResult;
    expect(third.isError).toBe(true);
    expect(text(third)).toMatch(/rate limit of rule "add-limited" reached; retry in \d+/);
    expect(t.calls().filter((l) => l.tool === 'add')).toHaveLength(2);
    // Per agent: another agent has its own bucket.
    const other = await t.client('reviewer');
    expect((await other.callTool({ name: 'fx__add', arguments: { a: 1, b: 1 } })).isError).toBeFalsy();
  });

  it('ask_waits_for_a_human_and_shows_the_exact_arguments_then_approve_lets_it_through', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    const call = c.callTool({ name: 'fx__slow', arguments: { ms: 10 } });
    const [p] = await pending(t);
    expect(p).toMatchObject({ agent: 'coder', tool: 'fx__slow', ruleId: 'slow-asks', args: { ms: 10 } });
    expect(t.calls().filter((l) => l.tool === 'slow')).toEqual([]);
    await adminRequest(t.dirs.state, 'POST', `/approvals/${p?.id}/approve`, { by: 'alice' });
    const r = (await call) as CallToolResult;
    expect(r.isError).toBeFalsy();
    expect(t.calls().filter((l) => l.tool === 'slow')).toHaveLength(1);
    const audit = t.audit();
    expect(audit.find((l) => l.event === 'approval.requested')).toMatchObject({ approvalId: p?.id, agent: 'coder', args: { ms: 10 } });
    expect(audit.find((l) => l.event === 'approval.approved')).toMatchObject({ approvalId: p?.id, by: 'alice' });
    expect(audit.filter((l) => l.event === 'tools/call').at(-1)).toMatchObject({ decision: 'ask', approvalId: p?.id, outcome: 'ok' });
  });

  it('ask_denied_by_a_human_is_a_tool_error_and_nothing_is_forwarded', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    const call = c.callTool({ name: 'fx__slow', arguments: { ms: 5 } });
    const [p] = await pending(t);
    await adminRequest(t.dirs.state, 'POST', `/approvals/${p?.id}/deny`, { by: 'bob', reason: 'not today' });
    const r = (await call) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(text(r)).toContain('not today');
    expect(r._meta?.['gatehouse/error']).toBe('APPROVAL_DENIED');
    expect(t.calls().filter((l) => l.tool === 'slow')).toEqual([]);
  });

  it('ask_with_no_answer_by_the_timeout_is_denied', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    const r = (await c.callTool({ name: 'fx__slow', arguments: { ms: 5 } })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(r._meta?.['gatehouse/error']).toBe('APPROVAL_TIMEOUT');
    expect(t.calls().filter((l) => l.tool === 'slow')).toEqual([]);
    expect(t.audit().some((l) => l.event === 'approval.timeout')).toBe(true);
  });

  it('a_grant_lets_matching_calls_through_until_its_uses_run_out', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    const first = c.callTool({ name: 'fx__slow', arguments: { ms: 1 } });
    const [p] = await pending(t);
    // A grant ttl is a duration in the one grammar: a bare number is refused with the hint, 1h30m accepted.
    await expect(adminRequest(t.dirs.state, 'POST', `/approvals/${p?.id}/approve`, { by: 'alice', grant: { ttl: '600', uses: 2 } })).rejects.toThrow(
      'grant.ttl: invalid duration "600"; a bare number has no unit: write 600s, 600m or 600h',
    );
    await adminRequest(t.dirs.state, 'POST', `/approvals/${p?.id}/approve`, { by: 'alice', grant: { ttl: '1h30m', uses: 2 } });
    expect((await first).isError).toBeFalsy();
    // Two more pass on the grant without asking.
    for (let i = 0; i < 2; i++) expect((await c.callTool({ name: 'fx__slow', arguments: { ms: 2 } })).isError).toBeFalsy();
    expect(t.audit().filter((l) => l.event === 'grant.used')).toHaveLength(2);
    // The grant is used up: the next one asks again (and times out here).
    const again = (await c.callTool({ name: 'fx__slow', arguments: { ms: 3 } })) as CallToolResult;
    expect(again._meta?.['gatehouse/error']).toBe('APPROVAL_TIMEOUT');
    // A grant is for one agent only.
    const other = await t.client('reviewer');
    const theirs = (await other.callTool({ name: 'fx__slow', arguments: { ms: 1 } })) as CallToolResult;
    expect(theirs._meta?.['gatehouse/error']).toBe('APPROVAL_TIMEOUT');
  });

  it('hot_reload_swaps_a_valid_policy_and_keeps_the_old_one_when_the_new_file_is_invalid', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    expect((await c.callTool({ name: 'fx__echo', arguments: { text: 'a' } })).isError).toBeFalsy();
    const file = join(t.dirs.policies, 'test.yaml');
    // Garbage: rejected, audited, old policy in force.
    writeFileSync(file, 'version: 1\ndefault: deny\nrules:\n  - id: x\n    efect: allow\n');
    const tg = t;
    await until(() => tg.audit().find((l) => l.event === 'policy.reload' && l.ok === false), 'rejected reload');
    expect(String(t.audit().find((l) => l.event === 'policy.reload')?.error)).toMatch(/test\.yaml:5:\d+: rules\[0\]\.efect/);
    expect((await c.callTool({ name: 'fx__echo', arguments: { text: 'b' } })).isError).toBeFalsy();
    // Valid: swapped atomically; echo is now denied.
    writeFileSync(file, stringify({ ...POLICY, rules: [{ id: 'echo-now-denied', match: { tool: 'fx__echo' }, effect: 'deny' }] }));
    await until(() => tg.audit().find((l) => l.event === 'policy.reload' && l.ok === true), 'accepted reload');
    // Denied in every case now: hidden, so the agent sees an unknown tool.
    await expect(c.callTool({ name: 'fx__echo', arguments: { text: 'c' } })).rejects.toThrow(/Unknown tool: fx__echo/);
    expect((await c.listTools()).tools.map((x) => x.name)).not.toContain('fx__echo');
    expect(t.calls().filter((l) => l.tool === 'echo')).toHaveLength(2);
  });

  it('a_grant_expires_with_its_ttl', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    const first = c.callTool({ name: 'fx__slow', arguments: { ms: 1 } });
    const [p] = await pending(t);
    await adminRequest(t.dirs.state, 'POST', `/approvals/${p?.id}/approve`, { by: 'alice', grant: { ttl: '1s', uses: 100 } });
    await first;
    expect((await c.callTool({ name: 'fx__slow', arguments: { ms: 1 } })).isError).toBeFalsy();
    const tg = t;
    await until(() => tg.audit().find((l) => l.event === 'grant.expired'), 'grant expiry', 20_000);
    const after = (await c.callTool({ name: 'fx__slow', arguments: { ms: 1 } })) as CallToolResult;
    expect(after._meta?.['gatehouse/error']).toBe('APPROVAL_TIMEOUT');
  });

  it('the_approvals_cli_lists_and_approves_with_a_grant', async () => {
    // A patient rule: each CLI process takes a while to start on a loaded machine.
    const patient = { ...POLICY, rules: POLICY.rules.map((r) => (r.id === 'slow-asks' ? { ...r, ask: { timeout: '60s', grant: { ttl: '1h', maxUses: 2 } } } : r)) };
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: patient });
    const c = await t.client('coder');
    const call = c.callTool({ name: 'fx__slow', arguments: { ms: 7 } });
    const [p] = await pending(t);
    const env = { ...process.env, GATEHOUSE_STATE: t.dirs.state };
    const list = await run(process.execPath, [CLI, 'approvals', 'list'], { env });
    expect(list.stdout).toMatch(new RegExp(`${p?.id}\\s+coder\\s+fx__slow\\s+slow-asks\\s+\\{"ms":7\\}`));
    const json = JSON.parse((await run(process.execPath, [CLI, 'approvals', 'list', '--json'], { env })).stdout) as { pending: PendingApproval[] };
    expect(json.pending.map((x) => x.id)).toEqual([p?.id]);
    const ok = await run(process.execPath, [CLI, 'approvals', 'approve', String(p?.id), '--grant', '30m', '--uses', '1', '--by', 'carol'], { env });
    expect(ok.stdout).toMatch(/approved .*grant gr_/);
    expect((await call).isError).toBeFalsy();
    // Deciding twice is a clear error with exit code 1.
    const again = await run(process.execPath, [CLI, 'approvals', 'deny', String(p?.id)], { env }).catch((e: { code: number; stderr: string }) => e);
    expect(again).toMatchObject({ code: 1 });
    expect((again as { stderr: string }).stderr).toMatch(/no pending approval/);
  });

  it('the_approvals_cli_says_how_to_start_a_gateway_when_none_runs', async () => {
    const r = await run(process.execPath, [CLI, 'approvals', 'list'], { env: { ...process.env, GATEHOUSE_STATE: '/nonexistent/gatehouse-state' } }).catch((e: { code: number; stderr: string }) => e);
    expect(r).toMatchObject({ code: 3 });
    expect((r as { stderr: string }).stderr).toMatch(/no gateway is running .*gatehouse serve/);
  });
});
