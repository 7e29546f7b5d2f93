/**
 * Both protocol eras on both sides of the gateway (issue #20): each upstream
 * is spoken to in the newest revision it supports, asked once and then kept;
 * a 2026-07-28 agent reaches a 2025-11-25 upstream and a 2025-11-25 agent a
 * 2026-07-28 one, with progress, cancellation, elicitation and sampling.
 * Upstreams: the SDK v1 fixtures (2025-11-25) and the SDK v2 conformance
 * fixture (2026-07-28), over stdio and Streamable HTTP.
 */
import { join } from 'node:path';
import { CreateMessageRequestSchema, ElicitRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, ROOT, TEST_POLICY, readJsonLines, spawnListening, startTestGateway, until, type HttpFixture, type TestGateway } from '../helpers/gateway.js';
import { modernRequest, notificationsOf, responseOf } from '../helpers/modern.js';
import { spawnConformanceFixture } from '../conformance/helpers.js';

const V2 = join(ROOT, 'test', 'fixtures', 'conformance-upstream-v2.mjs');
const MODERN = '2026-07-28';
const BOTH = { sampling: {}, elicitation: {} };

let t: TestGateway;
let v1http: HttpFixture;
let v2http: HttpFixture;
let v2log: string;
let methodLog: string;
let token: string;

beforeAll(async () => {
  const { tempDir } = await import('../helpers/tmp.js');
  const dir = tempDir('gh-era-');
  v2log = join(dir, 'v2-calls.jsonl');
  methodLog = join(dir, 'old-methods.jsonl');
  [v1http, v2http] = await Promise.all([spawnConformanceFixture(), spawnListening(V2, ['http', '0'], { FIXTURE_CALL_LOG: v2log })]);
  const ask = { sampling: 'allow', elicitation: 'allow' };
  t = await startTestGateway({
    connectors: (callLog) => [
      { name: 'old', kind: 'stdio', command: 'node', args: [FIXTURE, 'stdio'], env: { FIXTURE_CALL_LOG: callLog, FIXTURE_METHOD_LOG: methodLog } },
      { name: 'oldh', kind: 'http', url: v1http.url, ...ask },
      { name: 'new', kind: 'http', url: v2http.url, ...ask },
      { name: 'news', kind: 'stdio', command: 'node', args: [V2, 'stdio'], env: { FIXTURE_CALL_LOG: v2log }, ...ask },
      // A 2025-11-25 server the registry wrongly pins to 2026-07-28.
      { name: 'pinned', kind: 'stdio', command: 'node', args: [FIXTURE, 'stdio'], protocol: MODERN },
    ],
    // A tool with Mcp-Param declarations hidden from mallory: its declarations must not answer for it.
    policy: { ...TEST_POLICY, rules: [{ id: 'mallory-no-params', match: { agent: 'mallory', tool: 'new__test_x_mcp_header' }, effect: 'deny' }, ...TEST_POLICY.rules] },
    runtime: { upstreamWaitMs: 30_000 },
  });
  token = await t.mint('alice');
}, 90_000);

afterAll(async () => {
  await t?.close();
  await Promise.all([v1http?.close(), v2http?.close()]);
});

const report = (name: string) => t.gw.gateway.report().find((r) => r.name === name);
const v2calls = () => readJsonLines(v2log);
/** Calls of test_slow for a minute the upstreams have seen ("new" and "news" log to one file: count, don't look for one). */
const slowCalls = () => v2calls().filter((c) => c.tool === 'test_slow' && (c.args as { ms?: number } | undefined)?.ms === 60_000).length;

async function modern(params: Record<string, unknown>, capabilities: Record<string, unknown> = BOTH) {
  const req = modernRequest('tools/call', params, { capabilities });
  const r = await t.raw({ token, headers: req.headers, body: req.body });
  return { r, res: responseOf(r, req.id) };
}

/** A 2026-07-28 call through its rounds, each question answered by `answer`. */
async function modernWithAnswers(params: Record<string, unknown>, answer: (method: string, key: string) => Record<string, unknown>) {
  let res = (await modern(params)).res;
  for (let round = 0; round < 5; round++) {
    const result = res.result as { resultType?: string; inputRequests?: Record<string, { method: string }>; requestState?: string };
    if (result?.resultType !== 'input_required') return res;
    const inputResponses = Object.fromEntries(Object.entries(result.inputRequests ?? {}).map(([k, q]) => [k, answer(q.method, k)]));
    res = (await modern({ ...params, inputResponses, requestState: result.requestState })).res;
  }
  throw new Error('too many rounds');
}

const ELICITED = { action: 'accept', content: { username: 'ada', email: 'ada@example.com' } };
const SAMPLED = { role: 'assistant', content: { type: 'text', text: 'forty-two' }, model: 'agent-model', stopReason: 'endTurn' };
const answer = (method: string) => (method === 'elicitation/create' ? ELICITED : SAMPLED);

describe('each upstream is spoken to in the newest revision it supports', () => {
  it('2026-07-28 with the SDK v2 servers, 2025-11-25 with the SDK v1 ones, over stdio and HTTP', () => {
    expect(report('old')).toMatchObject({ status: { state: 'ready' }, protocol: '2025-11-25' });
    expect(report('oldh')).toMatchObject({ status: { state: 'ready' }, protocol: '2025-11-25' });
    expect(report('new')).toMatchObject({ status: { state: 'ready' }, protocol: MODERN });
    expect(report('news')).toMatchObject({ status: { state: 'ready' }, protocol: MODERN });
  });

  it('a connector pinned to 2026-07-28 whose server speaks only 2025-11-25 does not start, and says why', async () => {
    const r = await until(() => {
      const s = report('pinned')?.status;
      return s?.state === 'failed' ? s : undefined;
    }, 'the pinned connector to fail');
    expect(r.reason).toMatch(/does not speak MCP 2026-07-28/);
    expect(report('pinned')).not.toHaveProperty('protocol');
  });

  it('the revision is asked once and kept: a restarted 2025-11-25 stdio server is not asked again', async () => {
    // Only "old" notes unknown methods (the pinned one has no FIXTURE_METHOD_LOG).
    const probes = () => readJsonLines(methodLog).filter((c) => c.method === 'server/discover').length;
    expect(probes()).toBe(1);
    const client = await t.client('alice');
    const started = t.calls().length;
    await client.callTool({ name: 'old__crash', arguments: {} }).catch(() => undefined);
    await until(() => report('old')?.status.state === 'ready' && t.calls().length > started, 'old to restart');
    await until(() => report('old')?.status.state === 'ready', 'old to be ready again');
    expect((await client.callTool({ name: 'old__echo', arguments: { text: 'back' } })).content).toEqual([{ type: 'text', text: 'back' }]);
    expect(report('old')?.protocol).toBe('2025-11-25');
    expect(probes()).toBe(1);
  });

  it('the revision is asked once and kept: a restarted 2026-07-28 HTTP upstream connects without a second server/discover', async () => {
    const stats = async () => (await (await fetch(`http://127.0.0.1:${v2http.port}/stats`)).json()) as { discover: number };
    expect((await stats()).discover).toBe(1);
    await t.gw.gateway.upstreamsByName().get('new')?.restart();
    expect(report('new')).toMatchObject({ status: { state: 'ready' }, protocol: MODERN });
    expect((await stats()).discover).toBe(1);
  });
});

describe('a 2026-07-28 agent and a 2025-11-25 upstream', () => {
  it('progress: the upstream’s notifications reach the agent on its request’s stream', async () => {
    const { r, res } = await modern({ name: 'old__slow', arguments: { ms: 150, steps: 3 }, _meta: { progressToken: 'pg' } });
    expect(notificationsOf(r).filter((n) => n.method === 'notifications/progress').length).toBeGreaterThan(0);
    expect(res.result).toMatchObject({ content: [{ text: 'slept 150' }] });
  });

  it('elicitation and sampling: the upstream’s requests become InputRequiredResults, answered by the retry', async () => {
    const e = await modernWithAnswers({ name: 'oldh__test_elicitation', arguments: { message: 'Who?' } }, answer);
    expect(e.result).toMatchObject({ content: [{ text: expect.stringContaining('"username":"ada"') }] });
    const s = await modernWithAnswers({ name: 'oldh__test_sampling', arguments: { prompt: 'Meaning?' } }, answer);
    expect(s.result).toMatchObject({ content: [{ text: 'LLM response: forty-two' }] });
  });
});

describe('a 2025-11-25 agent and a 2026-07-28 upstream', () => {
  it('elicitation and sampling: the upstream’s InputRequiredResults become requests on the agent’s session, over HTTP and stdio', async () => {
    const client = await t.client('alice', { capabilities: BOTH });
    const asked: string[] = [];
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(`elicit:${req.params.message}`);
      return ELICITED as never;
    });
    client.setRequestHandler(CreateMessageRequestSchema, async () => {
      asked.push('sample');
      return SAMPLED as never;
    });
    for (const c of ['new', 'news']) {
      const e = (await client.callTool({ name: `${c}__test_elicitation`, arguments: { message: `Who at ${c}?` } })) as CallToolResult;
      expect(e.content).toEqual([{ type: 'text', text: `User response: action=accept, content=${JSON.stringify(ELICITED.content)}` }]);
      const s = (await client.callTool({ name: `${c}__test_sampling`, arguments: { prompt: 'Meaning?' } })) as CallToolResult;
      expect(s.content).toEqual([{ type: 'text', text: 'LLM response: forty-two' }]);
    }
    expect(asked).toEqual(['elicit:Who at new?', 'sample', 'elicit:Who at news?', 'sample']);
    const recs = t.audit().filter((a) => (a.event === 'elicitation.request' || a.event === 'sampling.request') && (a.connector === 'new' || a.connector === 'news'));
    expect(recs.length).toBe(4);
    for (const a of recs) expect(a).toMatchObject({ decision: 'allow', outcome: 'ok', via: 'input-required' });
  });

  it('progress: the upstream’s notifications reach the agent', async () => {
    const client = await t.client('alice');
    const seen: number[] = [];
    const r = (await client.callTool({ name: 'new__test_slow', arguments: { ms: 200 } }, undefined, { onprogress: (p) => seen.push(p.progress) })) as CallToolResult;
    expect(r.content).toEqual([{ type: 'text', text: 'slept 200' }]);
    expect(seen.length).toBeGreaterThan(0);
  });

  it('cancellation: the agent’s notifications/cancelled ends the upstream call (its stream closed, over HTTP)', async () => {
    const client = await t.client('alice');
    const ac = new AbortController();
    const slow = slowCalls();
    const call = client.callTool({ name: 'new__test_slow', arguments: { ms: 60_000 } }, undefined, { signal: ac.signal }).catch((e: unknown) => e);
    await until(() => slowCalls() > slow, 'the call upstream');
    ac.abort('changed my mind');
    await call;
    await until(() => v2calls().some((c) => c.event === 'cancelled'), 'the upstream to see the cancellation');
    await until(() => t.audit().some((a) => a.tool === 'new__test_slow' && a.outcome === 'cancelled'), 'the cancelled record');
  });

  it('the session’s log level is the upstream call’s logLevel: below it nothing is sent, and nothing forwarded', async () => {
    const client = await t.client('alice');
    await client.setLoggingLevel('error');
    const logs: unknown[] = [];
    const { LoggingMessageNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n));
    await client.callTool({ name: 'new__test_tool_with_logging', arguments: {} });
    expect(v2calls().filter((c) => c.tool === 'test_tool_with_logging').at(-1)).toMatchObject({ logLevel: 'error' });
    expect(logs).toEqual([]);
  });
});

describe('a 2026-07-28 agent and a 2026-07-28 upstream', () => {
  it('the upstream’s own input request keys reach the agent, and its answers go back', async () => {
    const first = (await modern({ name: 'new__test_input_required_result_elicitation', arguments: {} })).res.result as { inputRequests: Record<string, unknown> };
    expect(Object.keys(first.inputRequests)).toEqual(['user_name']);
    const done = await modernWithAnswers({ name: 'new__test_input_required_result_elicitation', arguments: {} }, () => ({ action: 'accept', content: { name: 'Ada' } }));
    expect(done.result).toMatchObject({ content: [{ text: 'Hello, Ada!' }] });
  });

  it('the upstream is asked only for what this agent declared: a capability it lacks is its -32021 (HTTP 400), not the registry’s grant', async () => {
    const { r, res } = await modern({ name: 'new__test_missing_capability', arguments: {} }, { elicitation: {} });
    expect(r.status).toBe(400);
    expect(res.error).toMatchObject({ code: -32021, data: { requiredCapabilities: { sampling: {} } } });
  });

  it('without a logLevel in the request the upstream is asked for no log messages', async () => {
    await modern({ name: 'new__test_logging_tool', arguments: {} });
    const last = v2calls().filter((c) => c.tool === 'test_logging_tool').at(-1);
    expect(last).toBeDefined();
    expect(last).not.toHaveProperty('logLevel');
  });

  it('cancellation: closing the agent’s request closes the upstream’s', async () => {
    const before = v2calls().filter((c) => c.event === 'cancelled').length;
    // The earlier test's call is in the same log: wait for this one, or the hang-up may come before it is sent (and nothing is then cancelled upstream).
    const slow = slowCalls();
    const req = modernRequest('tools/call', { name: 'news__test_slow', arguments: { ms: 60_000 } }, { capabilities: BOTH });
    const { request } = await import('node:http');
    const h = request({ host: '127.0.0.1', port: t.port, method: 'POST', path: '/mcp', headers: { host: `127.0.0.1:${t.port}`, authorization: `Bearer ${token}`, ...req.headers } });
    h.on('error', () => undefined);
    h.end(req.body);
    await until(() => slowCalls() > slow, 'the call upstream');
    h.destroy();
    await until(() => v2calls().filter((c) => c.event === 'cancelled').length > before, 'the upstream to see the cancellation');
    await until(() => t.audit().some((a) => a.tool === 'news__test_slow' && a.outcome === 'cancelled'), 'the cancelled record');
  });

  it('Mcp-Param headers: checked against the arguments before anything is decided, and sent to the upstream as its tool declares them', async () => {
    const params = { name: 'new__test_x_mcp_header', arguments: { region: 'eu-west-1', priority: 5 } };
    const ok = modernRequest('tools/call', params, { headers: { 'mcp-param-region': 'eu-west-1', 'mcp-param-priority': '5.0' } });
    const r = await t.raw({ token, headers: ok.headers, body: ok.body });
    // The upstream (SDK v2) checks the headers it gets against the body too: it answered.
    expect(responseOf(r, ok.id).result).toMatchObject({ content: [{ text: 'region=eu-west-1 priority=5' }] });
    const before = v2calls().length;
    for (const headers of [{ 'mcp-param-priority': '5' }, { 'mcp-param-region': 'us-east-1', 'mcp-param-priority': '5' }, { 'mcp-param-region': 'eu-west-1', 'mcp-param-priority': '6' }]) {
      const bad = modernRequest('tools/call', params, { headers });
      const res = await t.raw({ token, headers: bad.headers, body: bad.body });
      expect(res.status).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: -32020 } });
    }
    expect(v2calls().length).toBe(before);
  });

  it('a tool hidden from the agent is unknown, whatever its Mcp-Param headers say (its declarations are no oracle)', async () => {
    const bad = modernRequest('tools/call', { name: 'new__test_x_mcp_header', arguments: { region: 'eu' } }, { headers: { 'mcp-param-region': 'not-eu' } });
    const r = await t.raw({ token: await t.mint('mallory'), headers: bad.headers, body: bad.body });
    expect(r.json()).toMatchObject({ error: { code: -32602, message: 'Unknown tool: new__test_x_mcp_header' } });
  });

  it('a 2025-11-25 agent’s call gets the Mcp-Param headers its 2026-07-28 upstream declared', async () => {
    const client = await t.client('alice');
    const r = (await client.callTool({ name: 'new__test_x_mcp_header', arguments: { region: 'ap-south-1', priority: 1 } })) as CallToolResult;
    expect(r.content).toEqual([{ type: 'text', text: 'region=ap-south-1 priority=1' }]);
  });

  it('a W3C traceparent reaches the upstream', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const req = modernRequest('tools/call', { name: 'new__test_simple_text', arguments: {} }, { meta: { traceparent } });
    await t.raw({ token, headers: req.headers, body: req.body });
    expect(v2calls().filter((c) => c.tool === 'test_simple_text').at(-1)).toMatchObject({ traceparent });
  });
});
