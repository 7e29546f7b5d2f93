/**
 * Property-based fuzzing (fast-check) of the request path against a live
 * gateway: random JSON-RPC bodies, headers, tool names and arguments from
 * several agents. Properties, checked after every request:
 *   - the gateway never crashes: it answers, /healthz still answers, and no
 *     promise rejection goes unhandled;
 *   - it never forwards a call that policy would deny: every call an upstream
 *     logged is allowed by `evaluate()` (src/policy/evaluate.ts) for the agent
 *     that sent it, on the tool the catalog maps it to.
 * FUZZ_RUNS sets the number of requests (default 1000); a failure prints the
 * seed and the shrunk request.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hintsOf } from '../../src/broker/catalog.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { MCP_HEADERS, rawRequest, readJsonLines, startTestGateway, stdioFixture, tempDir, type TestGateway } from '../helpers/gateway.js';
import { FAULTY_HTTP, spawnListening, type Spawned } from './helpers.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? '1000');

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'mallory-no-echo', match: { agent: 'mallory', tool: '*__echo' }, effect: 'deny' },
    { id: 'no-big-sums', match: { tool: 'fx__add', args: { a: { min: 100 } } }, effect: 'deny' },
    { id: 'no-etc', match: { tool: 'any__anything', args: { path: { glob: '/etc/**' } } }, effect: 'deny' },
    { id: 'bob-only-ok', match: { agent: 'bob', connector: 'any', tool: 'any__anything' }, effect: 'deny' },
    { id: 'echo', match: { tool: 'fx__echo' }, effect: 'allow' },
    { id: 'add', match: { tool: 'fx__add' }, effect: 'allow' },
    { id: 'any', match: { connector: 'any' }, effect: 'allow' },
    // Everything else (fx__crash, fx__slow, fx__env, fx__add_tool, ...) falls to the default: deny.
  ],
};

const AGENTS = ['alice', 'mallory', 'bob'] as const;

let t: TestGateway;
let faulty: Spawned;
let faultyLog: string;
const tokens = new Map<string, string>();
const sessions = new Map<string, string>();
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  faultyLog = join(tempDir('gh-fuzz-'), 'faulty-calls.jsonl');
  faulty = await spawnListening(FAULTY_HTTP, ['0'], { FIXTURE_CALL_LOG: faultyLog });
  t = await startTestGateway({
    connectors: (log) => [stdioFixture('fx', log), { name: 'any', kind: 'http', url: faulty.url, tools: { allow: ['anything', 'ok'] } }],
    policy: POLICY,
  });
  for (const a of AGENTS) {
    tokens.set(a, await t.mint(a));
    sessions.set(a, await t.openSession(tokens.get(a) ?? ''));
  }
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await t?.close();
  await faulty?.close();
});

// ---- generators -------------------------------------------------------------

const exposed = ['fx__echo', 'fx__add', 'fx__slow', 'fx__crash', 'fx__env', 'fx__add_tool', 'fx__fail', 'fx__image', 'any__anything', 'any__ok', 'any__hang'];
const oddChars = fc.constantFrom('\u0000', '\u0435', '\u200b', 'E', '_', '__', ' ', '\n', '\uff46', '\ud800', '/', '.', '*');

const toolName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...exposed) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...exposed), fc.nat(30), oddChars).map(([n, i, c]) => n.slice(0, i % (n.length + 1)) + c + n.slice(i % (n.length + 1))) },
  { weight: 1, arbitrary: fc.constantFrom(...exposed).map((n) => n.toUpperCase()) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })) },
);

const path = fc.oneof(fc.constantFrom('/etc/passwd', '/etc/ssh/x', '/tmp/ok', '/etc', 'etc/passwd', '/ETC/passwd', '/etc/../tmp'), fc.string({ maxLength: 20 }));
const args = fc.oneof(
  { weight: 3, arbitrary: fc.record({ text: fc.oneof(fc.string({ maxLength: 50 }), fc.integer()) }, { requiredKeys: [] }) },
  { weight: 3, arbitrary: fc.record({ a: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double(), fc.string({ maxLength: 4 })), b: fc.integer() }, { requiredKeys: [] }) },
  { weight: 3, arbitrary: fc.record({ path, extra: fc.jsonValue({ maxDepth: 3 }) }, { requiredKeys: [] }) },
  { weight: 2, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

/** Tool and arguments drawn together: mostly shaped for the tool (so they pass the schema check and meet the policy), sometimes anything. */
const toolCall = fc.oneof(
  { weight: 3, arbitrary: fc.record({ name: fc.constant('fx__echo'), arguments: fc.record({ text: fc.string({ maxLength: 50 }) }) }) },
  { weight: 3, arbitrary: fc.record({ name: fc.constant('fx__add'), arguments: fc.record({ a: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double({ noNaN: true })), b: fc.integer() }) }) },
  { weight: 3, arbitrary: fc.record({ name: fc.constant('any__anything'), arguments: fc.record({ path, extra: fc.jsonValue({ maxDepth: 3 }) }, { requiredKeys: [] }) }) },
  { weight: 1, arbitrary: fc.record({ name: fc.constantFrom('fx__env', 'fx__crash', 'fx__slow', 'fx__add_tool', 'fx__fail', 'any__ok'), arguments: fc.constant({}) }) },
  { weight: 4, arbitrary: fc.record({ name: toolName, arguments: args }) },
);

const callMessage = fc.record({ id: fc.oneof(fc.integer(), fc.string({ maxLength: 10 })), call: toolCall, meta: fc.option(fc.record({ progressToken: fc.oneof(fc.integer(), fc.string({ maxLength: 5 })) }), { nil: undefined }) }).map(
  (m) => ({ jsonrpc: '2.0', id: m.id, method: 'tools/call', params: { name: m.call.name, arguments: m.call.arguments, ...(m.meta ? { _meta: m.meta } : {}) } }),
);

const otherMessage = fc.oneof(
  fc.record({ jsonrpc: fc.constant('2.0'), id: fc.integer(), method: fc.constantFrom('tools/list', 'ping', 'initialize', 'resources/list', 'prompts/get', 'logging/setLevel', 'completion/complete', 'tasks/get'), params: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }) }),
  fc.record({ jsonrpc: fc.constant('2.0'), method: fc.constantFrom('notifications/cancelled', 'notifications/initialized', 'notifications/progress', 'notifications/roots/list_changed'), params: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }) }),
  fc.record({ jsonrpc: fc.oneof(fc.constant('1.0'), fc.constant(2), fc.string({ maxLength: 3 })), id: fc.jsonValue({ maxDepth: 1 }), method: fc.oneof(fc.string({ maxLength: 20 }), fc.integer()) }, { requiredKeys: [] }),
);

const body = fc.oneof(
  { weight: 8, arbitrary: callMessage.map((m) => JSON.stringify(m)) },
  { weight: 2, arbitrary: otherMessage.map((m) => JSON.stringify(m)) },
  { weight: 1, arbitrary: fc.array(callMessage, { maxLength: 3 }).map((a) => JSON.stringify(a)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: callMessage.chain((m) => fc.nat(200).map((n) => JSON.stringify(m).slice(0, n))) },
);

const randomHeaders = fc.record({
  contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/JSON', 'application/jsonp', undefined),
  accept: fc.constantFrom(MCP_HEADERS.accept, 'application/json', 'text/event-stream', '*/*', undefined),
  protocol: fc.constantFrom('2025-11-25', '2025-06-18', '2025-03-26', '1999-01-01', 'x', undefined),
  session: fc.constantFrom('own', 'other', 'random', 'none'),
  auth: fc.constantFrom('own', 'none', 'garbage'),
});
/** Most requests are well-formed at the HTTP level, so that the fuzzing reaches the catalog, the schema check and the policy. */
const headers = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom({ contentType: 'application/json', accept: MCP_HEADERS.accept, protocol: '2025-11-25', session: 'own', auth: 'own' } as const) },
  { weight: 1, arbitrary: randomHeaders },
);

const request = fc.record({ agent: fc.constantFrom(...AGENTS), headers, body });

// ---- the property -----------------------------------------------------------

/** How many lines of each upstream's call log were already checked. */
const seen = { fx: 0, any: 0 };
/** Calls forwarded since the last look (requests are sequential: they came from the last request). */
function newForwarded(): Array<{ connector: string; tool: string; args: Record<string, unknown> }> {
  const fx = t.calls().filter((l) => l.event === 'call');
  const any = readJsonLines(faultyLog);
  const fresh = [
    ...fx.slice(seen.fx).map((l) => ({ connector: 'fx', tool: String(l.tool), args: (l.args ?? {}) as Record<string, unknown> })),
    ...any.slice(seen.any).map((l) => ({ connector: 'any', tool: String(l.tool), args: (l.args ?? {}) as Record<string, unknown> })),
  ];
  seen.fx = fx.length;
  seen.any = any.length;
  return fresh;
}

describe('fuzzing the request path (fast-check)', () => {
  it(`${RUNS} random requests: the gateway never crashes and never forwards a call policy would deny`, { timeout: 170_000 }, async () => {
    let forwardedTotal = 0;
    let deniedChecked = 0;
    await fc.assert(
      fc.asyncProperty(request, async (rq) => {
        const h: Record<string, string> = {};
        if (rq.headers.contentType !== undefined) h['content-type'] = rq.headers.contentType;
        if (rq.headers.accept !== undefined) h.accept = rq.headers.accept;
        if (rq.headers.protocol !== undefined) h['mcp-protocol-version'] = rq.headers.protocol;
        const own = sessions.get(rq.agent) ?? '';
        const otherAgent = AGENTS.find((a) => a !== rq.agent) ?? 'alice';
        if (rq.headers.session === 'own') h['mcp-session-id'] = own;
        if (rq.headers.session === 'other') h['mcp-session-id'] = sessions.get(otherAgent) ?? '';
        if (rq.headers.session === 'random') h['mcp-session-id'] = crypto.randomUUID();
        if (rq.headers.auth === 'own') h.authorization = `Bearer ${tokens.get(rq.agent)}`;
        if (rq.headers.auth === 'garbage') h.authorization = 'Bearer eyJhbGciOiJub25lIn0.e30.';

        const r = await rawRequest(t.port, { headers: h, body: rq.body });
        expect(r.status).toBeGreaterThanOrEqual(200);
        expect(r.status).toBeLessThan(500);

        // Never forwarded against policy: each call that reached an upstream is allowed for the sender.
        const catalog = t.gw.gateway.catalog;
        for (const f of newForwarded()) {
          forwardedTotal++;
          const entry = [...catalog.byName.values()].find((e) => e.connector === f.connector && e.upstreamName === f.tool);
          expect(entry, `forwarded a tool that is not exposed: ${f.connector}:${f.tool}`).toBeDefined();
          if (!entry) return;
          // Only the agent of this request could have sent it: its own token and session were needed.
          expect(rq.headers.auth).toBe('own');
          expect(rq.headers.session).toBe('own');
          const annotations = hintsOf(entry.tool.annotations);
          const decision = evaluate(t.gw.policies.current(), {
            agent: rq.agent,
            connector: entry.connector,
            tool: entry.name,
            upstreamTool: entry.upstreamName,
            args: f.args,
            ...(annotations ? { annotations } : {}),
            time: new Date(),
          });
          expect(decision.effect, `${rq.agent} ${entry.name} ${JSON.stringify(f.args)}`).toBe('allow');
        }
        if (rq.headers.session === 'own' && rq.headers.auth === 'own') deniedChecked++;

        const health = await rawRequest(t.port, { method: 'GET', path: '/healthz' });
        expect(health.status).toBe(200);
        expect(unhandled).toEqual([]);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    // The fuzzer did reach the upstreams and the policy (not everything bounced at the edge).
    expect(forwardedTotal).toBeGreaterThan(RUNS / 20);
    expect(deniedChecked).toBeGreaterThan(RUNS / 4);
    const denied = t.audit().filter((a) => a.event === 'tools/call' && a.outcome === 'denied');
    expect(denied.length).toBeGreaterThan(RUNS / 50);
    console.log(`[fuzz] ${RUNS} requests; ${forwardedTotal} forwarded (each allowed by evaluate()); ${denied.length} denied by policy; audit records ${t.audit().length}`);
  });
});
