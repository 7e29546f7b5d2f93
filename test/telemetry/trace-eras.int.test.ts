/**
 * Trace context across both protocol eras (issue #19 meets issue #20). A
 * 2026-07-28 request has no session and no SDK transport, yet with tracing on
 * the `traceparent` in its `params._meta` parents the gateway's spans exactly
 * as a 2025-11-25 request's does, and every upstream (2025-11-25 over the SDK
 * v1 client, 2026-07-28 over the v2 one) gets the gateway's own upstream span.
 * With tracing off nothing of the gateway's is made up: the agent's context
 * reaches the upstream as it was sent.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, readJsonLines, spawnListening, startTestGateway, tempDir, TEST_POLICY, until, type HttpFixture, type TestGateway } from '../helpers/gateway.js';
import { modernRequest, responseOf } from '../helpers/modern.js';
import { KIND, startHttpCollector, type Collector, type ReceivedSpan } from './otlp.js';

const TRACE_UPSTREAM = join(import.meta.dirname, 'trace-upstream.mjs');
const V2 = join(ROOT, 'test', 'fixtures', 'conformance-upstream-v2.mjs');
const MODERN = '2026-07-28';

const AGENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const AGENT_SPAN = 'b7ad6b7169203331';
const AGENT_PARENT = `00-${AGENT_TRACE}-${AGENT_SPAN}-01`;
const AGENT_STATE = 'vendor=agent';

let v1: HttpFixture;
let v2: HttpFixture;
let v1log: string;
let v2log: string;

beforeAll(async () => {
  const dir = tempDir();
  v1log = join(dir, 'trace-upstream.jsonl');
  v2log = join(dir, 'v2-calls.jsonl');
  [v1, v2] = await Promise.all([spawnListening(TRACE_UPSTREAM, ['http', '0'], { TRACE_LOG: v1log }), spawnListening(V2, ['http', '0'], { FIXTURE_CALL_LOG: v2log })]);
});

afterAll(async () => {
  await Promise.all([v1?.close(), v2?.close()]);
});

function start(tracing: 'on' | 'off', collector?: Collector): Promise<TestGateway> {
  const go = () =>
    startTestGateway({
      connectors: () => [
        { name: 'web', kind: 'http', url: v1.url },
        { name: 'new', kind: 'http', url: v2.url },
      ],
      policy: TEST_POLICY,
      runtime: { upstreamWaitMs: 30_000, ...(tracing === 'off' ? { tracing: false } : {}) },
    });
  if (tracing === 'off') return go();
  // The exporter reads this process's environment when the gateway makes it.
  const before = { ...process.env };
  Object.assign(process.env, { OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_EXPORTER_OTLP_ENDPOINT: collector?.endpoint ?? '', OTEL_SERVICE_NAME: 'gatehouse-eras' });
  return go().finally(() => {
    for (const k of Object.keys(process.env)) if (!(k in before)) delete process.env[k];
    Object.assign(process.env, before);
  });
}

/** A 2026-07-28 tools/call (no session) with the agent's trace context in `_meta`. */
async function modernCall(t: TestGateway, name: string, args: Record<string, unknown>, id: string): Promise<Record<string, unknown>> {
  const req = modernRequest('tools/call', { name, arguments: args }, { id, meta: { traceparent: AGENT_PARENT, tracestate: AGENT_STATE } });
  const r = await t.raw({ token: await t.mint('alice'), headers: req.headers, body: req.body });
  const res = responseOf(r, id);
  expect(res.error).toBeUndefined();
  return res.result as Record<string, unknown>;
}

const serverSpan = (spans: ReceivedSpan[], id: string) => spans.find((s) => s.kind === KIND.SERVER && s.attributes['jsonrpc.request.id'] === id && s.attributes['mcp.protocol.version'] === MODERN);
const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);

describe('tracing on: a 2026-07-28 agent', () => {
  let c: Collector;
  let t: TestGateway;
  beforeAll(async () => {
    c = await startHttpCollector();
    t = await start('on', c);
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await c?.close();
  });

  async function spansOf(done: (spans: ReceivedSpan[]) => boolean, what: string): Promise<ReceivedSpan[]> {
    return until(async () => {
      await t.gw.tracing?.flush();
      return done(c.spans) ? c.spans : undefined;
    }, what, 20_000);
  }

  it('modern_traceparent_parents_gateway_spans: the traceparent in a 2026-07-28 request’s _meta is the parent of its SERVER span, whose children are the policy, audit and upstream spans', async () => {
    const result = await modernCall(t, 'web__echo', { text: 'modern traced' }, 'trace-eras-1');
    expect(result).toMatchObject({ resultType: 'complete', content: [{ type: 'text', text: 'modern traced' }] });
    const spans = await spansOf((s) => {
      const server = serverSpan(s, 'trace-eras-1');
      return server !== undefined && childrenOf(s, server).length >= 4;
    }, 'the spans of the 2026-07-28 call');
    const server = serverSpan(spans, 'trace-eras-1') as ReceivedSpan;
    expect(server.name).toBe('tools/call web__echo');
    expect(server.traceId).toBe(AGENT_TRACE);
    expect(server.parentSpanId).toBe(AGENT_SPAN);
    expect(server.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'mcp.protocol.version': MODERN, 'gen_ai.tool.name': 'web__echo', 'gatehouse.agent': 'alice', 'gatehouse.connector': 'web', 'gatehouse.outcome': 'ok' });
    // No session in this era: none is made up for the span.
    expect(server.attributes['mcp.session.id']).toBeUndefined();
    expect(childrenOf(spans, server).map((s) => s.name).sort()).toEqual(['audit write', 'audit write', 'run_guardrail gatehouse-policy', 'tools/call echo']);
  });

  it('modern_agent_upstreams_get_gateway_span: a 2025-11-25 upstream (in _meta and the traceparent header) and a 2026-07-28 upstream (in _meta) get the gateway’s upstream span, in the agent’s trace', async () => {
    await modernCall(t, 'web__echo', { text: 'to v1' }, 'trace-eras-2');
    await modernCall(t, 'new__test_simple_text', {}, 'trace-eras-3');
    const spans = await spansOf((s) => [serverSpan(s, 'trace-eras-2'), serverSpan(s, 'trace-eras-3')].every((x) => x !== undefined && childrenOf(s, x).some((y) => y.kind === KIND.CLIENT)), 'both client spans');
    const clientOf = (id: string) => childrenOf(spans, serverSpan(spans, id) as ReceivedSpan).find((x) => x.kind === KIND.CLIENT) as ReceivedSpan;

    const toV1 = `00-${AGENT_TRACE}-${clientOf('trace-eras-2').spanId}-01`;
    const seenV1 = readJsonLines(v1log).filter((l) => (l.meta as { traceparent?: string } | null)?.traceparent === toV1);
    expect(seenV1).toHaveLength(1);
    expect(seenV1[0]?.traceparent).toBe(toV1);

    const toV2 = `00-${AGENT_TRACE}-${clientOf('trace-eras-3').spanId}-01`;
    expect(readJsonLines(v2log).filter((l) => l.tool === 'test_simple_text' && l.traceparent === toV2)).toHaveLength(1);
    // The agent's own span went to no upstream: the gateway's stands between.
    expect(readJsonLines(v1log).some((l) => (l.meta as { traceparent?: string } | null)?.traceparent === AGENT_PARENT)).toBe(false);
    expect(readJsonLines(v2log).some((l) => l.traceparent === AGENT_PARENT)).toBe(false);
  });
});

describe('tracing off: a 2026-07-28 agent', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await start('off');
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  it('modern_traceparent_passed_through_without_tracing: the agent’s traceparent and tracestate reach a 2025-11-25 and a 2026-07-28 upstream as sent', async () => {
    expect(t.gw.tracing).toBeUndefined();
    await modernCall(t, 'web__echo', { text: 'untraced' }, 'trace-eras-4');
    await modernCall(t, 'new__test_simple_text', {}, 'trace-eras-5');
    const v1seen = readJsonLines(v1log).filter((l) => (l.meta as { traceparent?: string } | null)?.traceparent === AGENT_PARENT);
    expect(v1seen).toHaveLength(1);
    expect(v1seen[0]?.meta).toMatchObject({ traceparent: AGENT_PARENT, tracestate: AGENT_STATE });
    // To an http upstream, in the W3C headers as well (as the gateway's own span is when it traces).
    expect(v1seen[0]).toMatchObject({ traceparent: AGENT_PARENT, tracestate: AGENT_STATE });
    expect(readJsonLines(v2log).filter((l) => l.tool === 'test_simple_text' && l.traceparent === AGENT_PARENT)).toHaveLength(1);
  });

  it('legacy_traceparent_passed_through_without_tracing: a 2025-11-25 session’s traceparent reaches a 2026-07-28 upstream as sent', async () => {
    const traceparent = `00-${AGENT_TRACE}-${'c'.repeat(16)}-01`;
    const token = await t.mint('alice');
    const sid = await t.openSession(token);
    const r = await t.raw({
      token,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'new__test_simple_text', arguments: {}, _meta: { traceparent } } }),
    });
    expect(responseOf(r, 9).error).toBeUndefined();
    expect(readJsonLines(v2log).filter((l) => l.tool === 'test_simple_text' && l.traceparent === traceparent)).toHaveLength(1);
  });
});
