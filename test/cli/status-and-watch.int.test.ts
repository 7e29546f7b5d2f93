/**
 * `gatehouse status` and `gatehouse approvals watch` against a real gateway
 * (in-process, real control socket, real MCP SDK client, real ask policy).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { watchApprovals } from '../../src/cli/approvals-watch.js';
import { fetchStatus, formatStatus } from '../../src/cli/status.js';
import { adminRequest } from '../../src/server/control-client.js';
import { runCli } from '../helpers/cli.js';
import { startTestGateway, stdioFixture, tempDir, until, type TestGateway } from '../helpers/gateway.js';

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'echo-asks', match: { tool: 'fx__echo' }, effect: 'ask', ask: { timeout: '2m' } },
    { id: 'rest', match: { tool: 'fx__*' }, effect: 'allow' },
  ],
};

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('gatehouse status', () => {
  it('shows connectors (state, tools), sessions per agent and the pending approval, from the admin API', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('alice');
    const call = c.callTool({ name: 'fx__echo', arguments: { text: 'hi' } }).catch((e: unknown) => e);
    const pending = await until(async () => (await fetchStatus(t!.dirs.state)).approvals[0], 'a pending approval');
    const s = await fetchStatus(t.dirs.state);
    expect(s.connectors.map((r) => [r.name, r.status.state])).toEqual([['fx', 'ready']]);
    expect(s.connectors[0]?.tools).toBeGreaterThan(0);
    expect(s.sessions.agents).toEqual([expect.objectContaining({ agent: 'alice', via: 'token', sessions: 1, busy: 1 })]);
    expect(s.sandboxes).toEqual([]);
    expect(pending).toMatchObject({ agent: 'alice', tool: 'fx__echo' });
    // Session ids are not listed: each one is a handle on an agent's session.
    expect(JSON.stringify(s.sessions)).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/);
    const text = formatStatus(s, 'gatehouse');
    expect(text).toMatch(/^fx +stdio +ready +\d+/m);
    expect(text).toMatch(/^alice +token +1 +1 /m);
    expect(text).toContain(`Pending approvals: 1\n`);
    expect(text).toContain('gatehouse approvals approve ID');
    await adminRequest(t.dirs.state, 'POST', `/approvals/${pending.id}/approve`, { by: 'test' });
    await call;
  });

  it('a not-ready connector says why and how to fix it', async () => {
    // An empty store (not the keychain): the secret is simply not set.
    const secrets = { description: 'an empty store', get: async () => null, set: async () => undefined, delete: async () => false, list: async () => [] };
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log, {}, { TOKEN: '${secret:fx-token-never-set}' })], policy: POLICY, runtime: { secrets } });
    const s = await fetchStatus(t.dirs.state);
    const text = formatStatus(s, 'gatehouse');
    expect(text).toMatch(/^fx +stdio +not ready +- +.*fx-token-never-set.*fix: .*secret set fx-token-never-set/m);
  });

  it('no gateway: exit 3 with a message that says how to start one', async () => {
    const state = join(tempDir(), 'state');
    const r = await runCli(['status', '--state', state]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no gateway is running for state directory .*start one with: gatehouse serve/);
  });
});

describe('gatehouse approvals watch (real gateway)', () => {
  it('prints the call when it starts waiting and when it is approved, then ends when the gateway stops', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const state = t.dirs.state;
    const lines: string[] = [];
    const done = watchApprovals((p) => adminRequest(state, 'GET', p), { json: true, cli: 'gatehouse', out: (s) => void lines.push(s), err: () => undefined, signal: new AbortController().signal, intervalMs: 100 });
    const c = await t.client('bob');
    const call = c.callTool({ name: 'fx__echo', arguments: { text: 'ship it' } });
    const waiting = await until(() => lines.map((l) => JSON.parse(l) as Record<string, any>).find((o) => o.event === 'waiting'), 'a waiting line');
    expect(waiting.approval).toMatchObject({ agent: 'bob', tool: 'fx__echo' });
    await adminRequest(state, 'POST', `/approvals/${waiting.approval.id}/approve`, { by: 'carol' });
    await call;
    const decided = await until(() => lines.map((l) => JSON.parse(l) as Record<string, any>).find((o) => o.event === 'decided'), 'a decided line');
    expect(decided).toMatchObject({ id: waiting.approval.id, outcome: 'approved', by: 'carol' });
    await t.close();
    t = undefined;
    expect(await done).toBe(0);
  });
});
