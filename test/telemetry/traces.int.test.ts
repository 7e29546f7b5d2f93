/**
 * OpenTelemetry traces, end to end: a real gateway exports over OTLP
 * (HTTP/protobuf, then gRPC) to a collector started here (otlp.ts decodes
 * what arrives), in front of a real Streamable HTTP upstream that records the
 * trace context it was called with. Each test is named after what it stops.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../connectors/helpers.js';
import { readJsonLines, spawnListening, startTestGateway, stdioFixture, tempDir, TEST_POLICY, until, type HttpFixture, type TestGateway } from '../helpers/gateway.js';
import { startModelSim, type ModelSim } from '../helpers/model-sim.js';
import { KIND, STATUS, startGrpcCollector, startHttpCollector, type Collector, type ReceivedSpan } from './otlp.js';

const TRACE_UPSTREAM = join(import.meta.dirname, 'trace-upstream.mjs');
const KEY = 'sk-ant-trace-0123456789abcdef';

const POLICY = {
  ...TEST_POLICY,
  rules: [
    { id: 'add-asks', match: { tool: 'fx__add' }, effect: 'ask', ask: { timeout: '2m' } },
    ...TEST_POLICY.rules,
    { id: 'models', match: { model: '*' }, effect: 'allow' },
  ],
};

/** An agent's own trace: the parent it sends in params._meta. */
const AGENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const AGENT_SPAN = '00f067aa0ba902b7';
const AGENT_PARENT = `00-${AGENT_TRACE}-${AGENT_SPAN}-01`;

let upstream: HttpFixture;
let traceLog: string;
let sim: ModelSim;

/** OTEL_* for one gateway start (the exporters read this process's environment when they are made). */
async function withOtelEnv<T>(env: Record<string, string>, start: () => Promise<T>): Promise<T> {
  const before = { ...process.env };
  Object.assign(process.env, { OTEL_BSP_SCHEDULE_DELAY: '100', ...env });
  try {
    return await start();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in before)) delete process.env[k];
    Object.assign(process.env, before);
  }
}

function startTraced(collector: Collector | { endpoint: string }, env: Record<string, string> = {}): Promise<TestGateway> {
  return withOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_SERVICE_NAME: 'gatehouse-test', ...env }, () =>
    startTestGateway({
      connectors: (log) => [
        stdioFixture('fx', log),
        { name: 'web', kind: 'http', url: upstream.url },
        { name: 'anth', kind: 'inference', api: 'anthropic', url: sim.url, headers: { 'x-api-key': '${secret:anth-key}' }, models: { allow: ['claude-*'] } },
      ],
      policy: POLICY,
      runtime: { secrets: new MemoryStore({ 'anth-key': KEY }) },
    }),
  );
}

/** A tools/call sent by hand, so that params._meta is ours to write. */
async function rawCall(t: TestGateway, agent: string, name: string, args: Record<string, unknown>, meta?: Record<string, unknown>): Promise<{ sid: string; id: number; result: Record<string, unknown> }> {
  const token = await t.mint(agent);
  const sid = await t.openSession(token);
  const id = 7;
  const res = await t.raw({
    token,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } }),
  });
  const msg = res.messages().find((m) => (m as { id?: unknown }).id === id) as Record<string, unknown> | undefined;
  if (msg === undefined) throw new Error(`no answer: ${res.status} ${res.text}`);
  return { sid, id, result: msg };
}

/** The spans of one trace once `count` of them match `done` (the exporter batches). */
async function spansOf(t: TestGateway, c: Collector, done: (spans: ReceivedSpan[]) => boolean, what: string): Promise<ReceivedSpan[]> {
  return until(async () => {
    await t.gw.tracing?.flush();
    return done(c.spans) ? c.spans : undefined;
  }, what, 20_000);
}

const serverSpan = (spans: ReceivedSpan[], tool: string, sid: string) => spans.find((s) => s.kind === KIND.SERVER && s.attributes['mcp.method.name'] === 'tools/call' && s.attributes['mcp.session.id'] === sid && s.attributes['gen_ai.tool.name'] === tool);
const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);

beforeAll(async () => {
  traceLog = join(tempDir(), 'trace-upstream.jsonl');
  upstream = await spawnListening(TRACE_UPSTREAM, ['http', '0'], { TRACE_LOG: traceLog });
  sim = await startModelSim({ models: ['claude-sim'] });
});

afterAll(async () => {
  await upstream?.close();
  await sim?.close();
});

describe('OTLP over HTTP/protobuf', () => {
  let c: Collector;
  let t: TestGateway;
  beforeAll(async () => {
    c = await startHttpCollector();
    t = await startTraced(c);
  });
  afterAll(async () => {
    await t?.close();
    await c?.close();
  });

  it('a tool call is one MCP SERVER span (agent trace as parent) with policy, audit and upstream children', async () => {
    const { sid, id, result } = await rawCall(t, 'alice', 'web__echo', { text: 'hi' }, { traceparent: AGENT_PARENT, tracestate: 'vendor=1' });
    expect((result.result as { content: Array<{ text: string }> }).content[0]?.text).toBe('hi');
    const spans = await spansOf(t, c, (s) => {
      const server = serverSpan(s, 'web__echo', sid);
      return server !== undefined && childrenOf(s, server).length >= 4;
    }, 'the spans of the call');
    const server = serverSpan(spans, 'web__echo', sid) as ReceivedSpan;
    expect(server.name).toBe('tools/call web__echo');
    expect(server.traceId).toBe(AGENT_TRACE);
    expect(server.parentSpanId).toBe(AGENT_SPAN);
    expect(server.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'mcp.session.id': sid,
      'mcp.protocol.version': '2025-11-25',
      'jsonrpc.request.id': String(id),
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'web__echo',
      'gatehouse.agent': 'alice',
      'gatehouse.connector': 'web',
      'gatehouse.outcome': 'ok',
    });
    expect(server.status.code).toBe(STATUS.UNSET);
    expect(server.resource['service.name']).toBe('gatehouse-test');

    const children = childrenOf(spans, server);
    const policy = children.find((s) => s.name === 'run_guardrail gatehouse-policy');
    expect(policy?.attributes).toMatchObject({
      'gen_ai.operation.name': 'run_guardrail',
      'gen_ai.guardrail.target.type': 'input',
      'gen_ai.guardrail.target.subtype': 'tool_call',
      'gen_ai.guardrail.verdict.type': 'allow',
      'gen_ai.guardrail.action.type': 'allow',
      'gen_ai.guardrail.security.policy.rule.id': 'fixture-tools',
      'gatehouse.policy.decision': 'allow',
    });
    expect(children.filter((s) => s.name === 'audit write').map((s) => s.attributes['gatehouse.audit.event']).sort()).toEqual(['tools/call', 'tools/call.intent']);
    const client = children.find((s) => s.kind === KIND.CLIENT);
    expect(client?.name).toBe('tools/call echo');
    expect(client?.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'echo', 'server.address': '127.0.0.1', 'server.port': upstream.port, 'network.transport': 'tcp' });
  });

  it('the upstream gets the gateway’s client span as parent, in the traceparent header and in params._meta alike', async () => {
    const { sid } = await rawCall(t, 'alice', 'web__echo', { text: 'propagate' }, { traceparent: AGENT_PARENT });
    const spans = await spansOf(t, c, (s) => {
      const server = serverSpan(s, 'web__echo', sid);
      return server !== undefined && childrenOf(s, server).some((x) => x.kind === KIND.CLIENT);
    }, 'the client span');
    const server = serverSpan(spans, 'web__echo', sid) as ReceivedSpan;
    const client = childrenOf(spans, server).find((x) => x.kind === KIND.CLIENT) as ReceivedSpan;
    const seen = readJsonLines(traceLog).filter((l) => (l.meta as { traceparent?: string } | null)?.traceparent?.includes(client.spanId));
    expect(seen).toHaveLength(1);
    const expected = `00-${AGENT_TRACE}-${client.spanId}-01`;
    expect((seen[0]?.meta as Record<string, unknown>).traceparent).toBe(expected);
    expect(seen[0]?.traceparent).toBe(expected);
  });

  it('a malformed traceparent from the agent is ignored: the call runs in a new trace', async () => {
    for (const bad of ['garbage', `00-${'0'.repeat(32)}-${AGENT_SPAN}-01`, `00-${AGENT_TRACE}-${'0'.repeat(16)}-01`, `ff-${AGENT_TRACE}-${AGENT_SPAN}-01`, { not: 'a string' }]) {
      const { sid, result } = await rawCall(t, 'alice', 'web__echo', { text: 'x' }, { traceparent: bad });
      expect(result.error).toBeUndefined();
      const spans = await spansOf(t, c, (s) => serverSpan(s, 'web__echo', sid) !== undefined, 'the server span');
      const server = serverSpan(spans, 'web__echo', sid) as ReceivedSpan;
      expect(server.parentSpanId).toBe('');
      expect(server.traceId).not.toBe(AGENT_TRACE);
      expect(server.traceId).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it('an agent sending traceparent with the sampled flag 00 cannot hide its calls: the default sampler still exports them, in the agent’s trace', async () => {
    const unsampled = `00-${AGENT_TRACE}-${AGENT_SPAN}-00`;
    const { sid, result } = await rawCall(t, 'alice', 'web__echo', { text: 'hidden?' }, { traceparent: unsampled });
    expect(result.error).toBeUndefined();
    const spans = await spansOf(t, c, (s) => {
      const server = serverSpan(s, 'web__echo', sid);
      return server !== undefined && childrenOf(s, server).length >= 4;
    }, 'the spans of the unsampled-flag call');
    const server = serverSpan(spans, 'web__echo', sid) as ReceivedSpan;
    // The agent's trace id and parent are kept (correlation); only its sampling decision is not.
    expect(server.traceId).toBe(AGENT_TRACE);
    expect(server.parentSpanId).toBe(AGENT_SPAN);
    expect(childrenOf(spans, server).map((x) => x.name).sort()).toEqual(['audit write', 'audit write', 'run_guardrail gatehouse-policy', 'tools/call echo']);
  });

  it('a denied call’s guardrail span says deny, block and the rule; the call span has error.type tool_error', async () => {
    const { sid } = await rawCall(t, 'mallory', 'fx__echo', { text: 'no' });
    const spans = await spansOf(t, c, (s) => {
      const server = serverSpan(s, 'fx__echo', sid);
      return server !== undefined && childrenOf(s, server).some((x) => x.name.startsWith('run_guardrail'));
    }, 'the denied call');
    const server = serverSpan(spans, 'fx__echo', sid) as ReceivedSpan;
    expect(server.attributes['error.type']).toBe('tool_error');
    expect(server.status).toEqual({ code: STATUS.ERROR, message: 'POLICY_DENIED' });
    const policy = childrenOf(spans, server).find((x) => x.name.startsWith('run_guardrail'));
    expect(policy?.attributes).toMatchObject({
      'gen_ai.guardrail.verdict.type': 'deny',
      'gen_ai.guardrail.action.type': 'block',
      'gen_ai.guardrail.security.policy.rule.id': 'mallory-may-not-echo',
      'gen_ai.guardrail.verdict.reason': 'POLICY_DENIED',
    });
    // Nothing was forwarded: no client span.
    expect(childrenOf(spans, server).some((x) => x.kind === KIND.CLIENT)).toBe(false);
  });

  it('an approval wait is a child span of the policy span (verdict escalate, then allowed)', async () => {
    const pending = rawCall(t, 'alice', 'fx__add', { a: 1, b: 2 });
    const approval = await until(() => t.gw.approvals.list().find((a) => a.tool === 'fx__add'), 'the approval to wait');
    await t.gw.approvals.approve(approval.id, { by: 'test-admin' });
    const { sid } = await pending;
    const spans = await spansOf(t, c, (s) => s.some((x) => x.name === 'approval wait' && x.attributes['gatehouse.approval.id'] === approval.id) && serverSpan(s, 'fx__add', sid) !== undefined, 'the approval span');
    const server = serverSpan(spans, 'fx__add', sid) as ReceivedSpan;
    const policy = childrenOf(spans, server).find((x) => x.name.startsWith('run_guardrail')) as ReceivedSpan;
    expect(policy.attributes).toMatchObject({ 'gen_ai.guardrail.verdict.type': 'escalate', 'gen_ai.guardrail.action.type': 'allow', 'gatehouse.policy.decision': 'ask', 'gatehouse.policy.rule': 'add-asks' });
    const wait = childrenOf(spans, policy).find((x) => x.name === 'approval wait');
    expect(wait?.attributes).toMatchObject({ 'gatehouse.approval.outcome': 'approved', 'gatehouse.approval.id': approval.id });
  });

  it('arguments and results are not put on spans unless configured', async () => {
    const { sid } = await rawCall(t, 'alice', 'web__echo', { text: 'private words' });
    const spans = await spansOf(t, c, (s) => serverSpan(s, 'web__echo', sid) !== undefined, 'the call');
    const server = serverSpan(spans, 'web__echo', sid) as ReceivedSpan;
    for (const s of [server, ...childrenOf(spans, server)]) {
      expect(s.attributes['gen_ai.tool.call.arguments']).toBeUndefined();
      expect(s.attributes['gen_ai.tool.call.result']).toBeUndefined();
      expect(JSON.stringify(s.attributes)).not.toContain('private words');
    }
  });

  it('a span per MCP request: initialize and tools/list too, and an unknown method is not a span name', async () => {
    const token = await t.mint('alice');
    const sid = await t.openSession(token);
    await t.raw({ token, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) });
    const random = `x/${Math.random().toString(36).slice(2)}`;
    await t.raw({ token, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }, body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: random }) });
    const spans = await spansOf(t, c, (s) => ['initialize', 'tools/list', 'unknown_method'].every((n) => s.some((x) => x.name === n && x.attributes['mcp.session.id'] === sid)), 'the session’s spans');
    const unknown = spans.find((x) => x.name === 'unknown_method' && x.attributes['mcp.session.id'] === sid);
    expect(unknown?.attributes['mcp.method.name']).toBe(random);
    expect(unknown?.attributes['error.type']).toBe('-32601');
    expect(spans.some((x) => x.name === random)).toBe(false);
    const init = spans.find((x) => x.name === 'initialize' && x.attributes['mcp.session.id'] === sid);
    expect(init?.attributes['mcp.protocol.version']).toBe('2025-11-25');
  });

  it('a model call is a GenAI CLIENT span with the model and the token usage, its parent the agent’s traceparent header', async () => {
    const key = await t.mint('alice');
    const res = await fetch(`http://127.0.0.1:${t.port}/llm/anth/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': key, traceparent: AGENT_PARENT },
      body: JSON.stringify({ model: 'claude-sim', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(res.status).toBe(200);
    await res.text();
    const spans = await spansOf(t, c, (s) => s.some((x) => x.name === 'chat claude-sim'), 'the model span');
    const span = spans.find((x) => x.name === 'chat claude-sim') as ReceivedSpan;
    expect(span.kind).toBe(KIND.CLIENT);
    expect(span.traceId).toBe(AGENT_TRACE);
    expect(span.parentSpanId).toBe(AGENT_SPAN);
    expect(span.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'anthropic', 'gen_ai.request.model': 'claude-sim', 'gatehouse.agent': 'alice' });
    expect(span.attributes['gen_ai.usage.input_tokens']).toEqual(expect.any(Number));
    expect(span.attributes['gen_ai.usage.output_tokens']).toEqual(expect.any(Number));
    // The provider key never reaches a span.
    expect(JSON.stringify(spans)).not.toContain(KEY);
  });
});

describe('OTLP over gRPC, and content capture when configured', () => {
  let c: Collector;
  let t: TestGateway;
  beforeAll(async () => {
    c = await startGrpcCollector();
    t = await startTraced(c, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true' });
  });
  afterAll(async () => {
    await t?.close();
    await c?.close();
  });

  it('the spans of a tool call arrive over OTLP/gRPC with the same structure', async () => {
    const { sid } = await rawCall(t, 'alice', 'web__echo', { text: 'over grpc' }, { traceparent: AGENT_PARENT });
    const spans = await spansOf(t, c, (s) => {
      const server = serverSpan(s, 'web__echo', sid);
      return server !== undefined && childrenOf(s, server).length >= 4;
    }, 'the spans over gRPC');
    const server = serverSpan(spans, 'web__echo', sid) as ReceivedSpan;
    expect(server.traceId).toBe(AGENT_TRACE);
    expect(childrenOf(spans, server).map((s) => s.name).sort()).toEqual(['audit write', 'audit write', 'run_guardrail gatehouse-policy', 'tools/call echo']);
    expect(c.exports).toBeGreaterThan(0);
  });

  it('with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true the arguments and the result are on the call span', async () => {
    const { sid } = await rawCall(t, 'alice', 'web__echo', { text: 'captured words' });
    const spans = await spansOf(t, c, (s) => serverSpan(s, 'web__echo', sid)?.attributes['gen_ai.tool.call.result'] !== undefined, 'the captured call');
    const server = serverSpan(spans, 'web__echo', sid) as ReceivedSpan;
    expect(JSON.parse(server.attributes['gen_ai.tool.call.arguments'] as string)).toEqual({ text: 'captured words' });
    expect(JSON.parse(server.attributes['gen_ai.tool.call.result'] as string)).toMatchObject({ content: [{ type: 'text', text: 'captured words' }] });
  });
});

describe('sampling is the gateway’s, not the agent’s', () => {
  let c: Collector;
  let t: TestGateway;
  beforeAll(async () => {
    c = await startHttpCollector();
    t = await startTraced(c, { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' });
  });
  afterAll(async () => {
    await t?.close();
    await c?.close();
  });

  it('with a ratio sampler of 0, an agent sending traceparent with the sampled flag 01 (params._meta or the HTTP header) gets no span exported', async () => {
    const sampled = `00-${AGENT_TRACE}-${AGENT_SPAN}-01`;
    const { result } = await rawCall(t, 'alice', 'web__echo', { text: 'force me' }, { traceparent: sampled });
    expect((result.result as { content: Array<{ text: string }> }).content[0]?.text).toBe('force me');
    const key = await t.mint('alice');
    const res = await fetch(`http://127.0.0.1:${t.port}/llm/anth/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': key, traceparent: sampled },
      body: JSON.stringify({ model: 'claude-sim', max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(res.status).toBe(200);
    await res.text();
    // Past the batch delay (100 ms here) and a flush: whatever was recorded has been exported by now.
    await new Promise((r) => setTimeout(r, 500));
    await t.gw.tracing?.flush();
    expect(c.spans).toEqual([]);
    expect(c.exports).toBe(0);
  });
});

describe('a collector that is down', () => {
  it('does not affect calls: they answer, and the gateway stops', async () => {
    const down = await startHttpCollector();
    await down.close();
    const t = await startTraced(down);
    try {
      for (let i = 0; i < 5; i++) {
        const { result } = await rawCall(t, 'alice', 'web__echo', { text: `still ${i}` });
        expect((result.result as { content: Array<{ text: string }> }).content[0]?.text).toBe(`still ${i}`);
      }
      expect(t.gw.tracing).toBeDefined();
    } finally {
      await t.close();
    }
  });
});
