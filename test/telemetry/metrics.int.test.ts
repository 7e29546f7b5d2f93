/**
 * /metrics of a real gateway: where it is served and who may read it, what
 * real calls count for, and the attack on label cardinality (an agent sending
 * random tool names must not create series). Each test is named after what
 * it stops.
 */
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/server/tokens.js';
import { MemoryStore } from '../connectors/helpers.js';
import { rawRequest, startTestGateway, stdioFixture, TEST_POLICY, until, type TestGateway } from '../helpers/gateway.js';
import { startModelSim, type ModelSim } from '../helpers/model-sim.js';
import { parseExposition, pick, valueOf, type Series } from './prom-text.js';

const FX_SECRET = 'fx-secret-value-0123456789';
const KEY = 'sk-ant-metrics-0123456789abcdef';
const MAX_AGENTS = 3;
const POLICY = {
  ...TEST_POLICY,
  rules: [{ id: 'add-asks', match: { tool: 'fx__add' }, effect: 'ask', ask: { timeout: '2m' } }, ...TEST_POLICY.rules, { id: 'models', match: { model: '*' }, effect: 'allow' }],
};

let t: TestGateway;
let sim: ModelSim;
let metricsUrl: URL;

beforeAll(async () => {
  sim = await startModelSim({ models: ['claude-sim'] });
  t = await startTestGateway({
    connectors: (log) => [
      stdioFixture('fx', log, {}, { FX_TOKEN: '${secret:fx-token}' }),
      { name: 'anth', kind: 'inference', api: 'anthropic', url: sim.url, headers: { 'x-api-key': '${secret:anth-key}' }, models: { allow: ['claude-*'] }, budget: { tokens: '100000/hour' } },
    ],
    policy: POLICY,
    runtime: { secrets: new MemoryStore({ 'fx-token': FX_SECRET, 'anth-key': KEY }), metrics: { maxAgents: MAX_AGENTS }, metricsListen: { host: '127.0.0.1', port: 0 } },
  });
  metricsUrl = new URL(t.gw.metricsUrl ?? '');
});

afterAll(async () => {
  await t?.close();
  await sim?.close();
});

/** GET on the --metrics-listen listener, Host and Origin ours to set. */
function getMetrics(path = '/metrics', headers: Record<string, string> = {}) {
  return rawRequest(Number(metricsUrl.port), { method: 'GET', path, headers: { host: metricsUrl.host, ...headers } });
}

async function scrape(): Promise<{ text: string; series: Series[] }> {
  const res = await getMetrics();
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return { text: res.text, series: parseExposition(res.text) };
}

/** GET /metrics on the control socket (the local admin's door: file permissions are the authentication). */
function controlMetrics(): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const r = request({ socketPath: t.gw.controlSocket, path: '/metrics', method: 'GET' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    r.on('error', reject);
    r.end();
  });
}

describe('who may read /metrics', () => {
  it('on the MCP port: no token 401, an agent token 403, an admin token 200', async () => {
    const none = await t.raw({ method: 'GET', path: '/metrics' });
    expect(none.status).toBe(401);
    expect(none.text).not.toContain('gatehouse_');
    const agent = await t.raw({ method: 'GET', path: '/metrics', token: await t.mint('alice') });
    expect(agent.status).toBe(403);
    expect(agent.text).not.toContain('gatehouse_');
    const admin = (await mintToken(t.gw.keys, 'ops', 60_000, Date.now(), { admin: true })).token;
    const ok = await t.raw({ method: 'GET', path: '/metrics', token: admin });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('gatehouse_info{version=');
  });

  it('on the control socket without a token', async () => {
    const res = await controlMetrics();
    expect(res.status).toBe(200);
    expect(res.text).toContain('# TYPE gatehouse_tool_calls_total counter');
  });

  it('the --metrics-listen listener refuses a foreign Host (DNS rebinding) and any browser Origin, and serves nothing else', async () => {
    expect((await getMetrics('/metrics', { host: `attacker.example:${metricsUrl.port}` })).status).toBe(403);
    expect((await getMetrics('/metrics', { origin: 'http://attacker.example' })).status).toBe(403);
    expect((await getMetrics('/mcp')).status).toBe(404);
    expect((await getMetrics('/admin/v1/status')).status).toBe(404);
    expect((await getMetrics()).status).toBe(200);
  });
});

describe('what real calls count for', () => {
  let client: Client;
  beforeAll(async () => {
    client = await t.client('alice');
  });

  it('a forwarded call: its counter, its three duration histograms, the audit batches and the upstream state', async () => {
    await client.callTool({ name: 'fx__echo', arguments: { text: 'counted' } });
    const { series } = await scrape();
    expect(valueOf(series, 'gatehouse_tool_calls_total', { agent: 'alice', connector: 'fx', tool: 'fx__echo', decision: 'allow', outcome: 'ok' })).toBe(1);
    for (const h of ['gatehouse_tool_call_duration_seconds', 'gatehouse_tool_call_gateway_seconds', 'gatehouse_tool_call_upstream_seconds']) {
      expect(valueOf(series, `${h}_count`, { connector: 'fx' }), h).toBe(1);
      expect(valueOf(series, `${h}_bucket`, { connector: 'fx', le: '+Inf' }), h).toBe(1);
    }
    expect(valueOf(series, 'gatehouse_audit_write_seconds_count')).toBeGreaterThan(0);
    expect(valueOf(series, 'gatehouse_audit_batch_records_count')).toBeGreaterThan(0);
    expect(valueOf(series, 'gatehouse_upstream_state', { connector: 'fx', state: 'ready' })).toBe(1);
    expect(valueOf(series, 'gatehouse_mcp_sessions')).toBeGreaterThanOrEqual(1);
    expect(valueOf(series, 'gatehouse_audit_headroom_low')).toBe(0);
    expect(valueOf(series, 'gatehouse_audit_disk_free_bytes')).toBeGreaterThan(0);
  });

  it('a denied call counts as denied, under its rule’s decision', async () => {
    const mallory = await t.client('mallory');
    await mallory.callTool({ name: 'fx__echo', arguments: { text: 'no' } });
    const { series } = await scrape();
    expect(valueOf(series, 'gatehouse_tool_calls_total', { agent: 'mallory', tool: 'fx__echo', decision: 'deny', outcome: 'denied' })).toBe(1);
    expect(pick(series, 'gatehouse_tool_call_upstream_seconds_count', { connector: 'fx' })[0]?.value).toBe(1);
  });

  it('an approval: pending while it waits, then counted with its wait', async () => {
    const pending = client.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } });
    const approval = await until(() => t.gw.approvals.list().find((a) => a.tool === 'fx__add'), 'the approval');
    expect(valueOf((await scrape()).series, 'gatehouse_approvals_pending', { kind: 'tool' })).toBe(1);
    await t.gw.approvals.approve(approval.id, { by: 'test-admin' });
    await pending;
    const { series } = await scrape();
    expect(valueOf(series, 'gatehouse_approvals_pending', { kind: 'tool' })).toBe(0);
    expect(valueOf(series, 'gatehouse_approvals_total', { kind: 'tool', outcome: 'requested' })).toBe(1);
    expect(valueOf(series, 'gatehouse_approvals_total', { kind: 'tool', outcome: 'approved' })).toBe(1);
    expect(valueOf(series, 'gatehouse_approval_wait_seconds_count', { kind: 'tool', outcome: 'approved' })).toBe(1);
    expect(valueOf(series, 'gatehouse_tool_calls_total', { tool: 'fx__add', decision: 'ask', outcome: 'ok' })).toBe(1);
  });

  it('a result that held a secret counts a redaction (the secret itself appears nowhere in /metrics)', async () => {
    const before = valueOf((await scrape()).series, 'gatehouse_redactions_total', { path: 'mcp' });
    const r = await client.callTool({ name: 'fx__env', arguments: {} });
    expect(JSON.stringify(r)).not.toContain(FX_SECRET);
    const { text, series } = await scrape();
    expect(valueOf(series, 'gatehouse_redactions_total', { path: 'mcp' })).toBeGreaterThan(before);
    expect(text).not.toContain(FX_SECRET);
  });

  it('a model call counts its tokens and budget; a made-up provider name is not a label', async () => {
    const key = await t.mint('alice');
    const call = (provider: string) =>
      fetch(`http://127.0.0.1:${t.port}/llm/${provider}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': key },
        body: JSON.stringify({ model: 'claude-sim', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] }),
      });
    const ok = await call('anth');
    expect(ok.status).toBe(200);
    await ok.text();
    const made = `made-up-${randomBytes(6).toString('hex')}`;
    expect((await call(made)).status).toBe(404);
    const { text, series } = await scrape();
    expect(valueOf(series, 'gatehouse_model_calls_total', { agent: 'alice', provider: 'anth', model: 'claude-sim', outcome: 'ok' })).toBe(1);
    expect(valueOf(series, 'gatehouse_model_tokens_total', { agent: 'alice', provider: 'anth', type: 'input' })).toBeGreaterThan(0);
    expect(valueOf(series, 'gatehouse_model_call_duration_seconds_count', { provider: 'anth' })).toBe(1);
    expect(valueOf(series, 'gatehouse_model_budget_used_ratio', { agent: 'alice', provider: 'anth', kind: 'tokens' })).toBeGreaterThan(0);
    expect(valueOf(series, 'gatehouse_model_calls_total', { provider: '_unknown', outcome: 'refused' })).toBe(1);
    expect(text).not.toContain(made);
    expect(text).not.toContain(KEY);
  });
});

describe('label cardinality', () => {
  it('10,000 random tool names from a hostile agent share one label value and create no series', async () => {
    const client = await t.client('alice');
    // One unknown name first: the series every unknown name shares exist from then on.
    await expect(client.callTool({ name: `fx__${randomBytes(8).toString('hex')}`, arguments: {} })).rejects.toThrow('Unknown tool');
    const before = (await scrape()).series;
    const names = Array.from({ length: 10_000 }, () => `fx__${randomBytes(8).toString('hex')}`);
    // Guard: the attack really sends what the assertions look for.
    expect(new Set(names).size).toBe(10_000);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((name) => client.callTool({ name, arguments: {} }).then(
        () => {
          throw new Error(`${name} was called`);
        },
        (e: unknown) => expect(String(e)).toContain('Unknown tool'),
      )));
    }
    const { text, series } = await scrape();
    const calls = pick(series, 'gatehouse_tool_calls_total');
    const unknown = pick(series, 'gatehouse_tool_calls_total', { agent: 'alice', tool: '_unknown', outcome: 'rejected' });
    expect(unknown).toHaveLength(1);
    expect((unknown[0]?.value ?? 0) - valueOf(before, 'gatehouse_tool_calls_total', { agent: 'alice', tool: '_unknown', outcome: 'rejected' })).toBe(10_000);
    // No new series but that one (if it was new), whatever the metric.
    const key = (s: Series) => `${s.name}${JSON.stringify(s.labels)}`;
    const had = new Set(before.map(key));
    expect(series.filter((s) => !had.has(key(s)) && s.name.startsWith('gatehouse_')).map(key)).toEqual([]);
    expect(calls.length).toBeLessThan(50);
    for (const n of names.slice(0, 200)) expect(text).not.toContain(n.slice(4));
  }, 240_000);

  it('agents past the label cap share _other', async () => {
    const agents = Array.from({ length: MAX_AGENTS + 4 }, (_, i) => `agent-${i}-${randomBytes(4).toString('hex')}`);
    for (const a of agents) await (await t.client(a)).callTool({ name: 'fx__echo', arguments: { text: a } });
    const { text, series } = await scrape();
    const labels = new Set(pick(series, 'gatehouse_tool_calls_total').map((s) => s.labels.agent));
    expect(labels.has('_other')).toBe(true);
    expect([...labels].filter((a) => a !== '_other').length).toBeLessThanOrEqual(MAX_AGENTS);
    expect(agents.filter((a) => text.includes(a)).length).toBeLessThan(agents.length);
  });
});

describe('upstream restarts', () => {
  it('an upstream that exits is counted as restarted', async () => {
    const client = await t.client('alice');
    await client.callTool({ name: 'fx__crash', arguments: {} }).catch(() => undefined);
    await until(async () => valueOf((await scrape()).series, 'gatehouse_upstream_restarts_total', { connector: 'fx' }) >= 1, 'a counted restart');
    await until(async () => valueOf((await scrape()).series, 'gatehouse_upstream_state', { connector: 'fx', state: 'ready' }) === 1, 'the upstream back');
  });
});
