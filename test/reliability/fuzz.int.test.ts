/**
 * Property-based fuzzing (fast-check) of the request path against a live
 * gateway: random JSON-RPC bodies, headers, tool names and arguments from
 * several agents. Properties, checked after every request:
 *   - the gateway never crashes: it answers, /healthz still answers, and no
 *     promise rejection goes unhandled;
 *   - it never forwards a call that policy would deny, and decides every call
 *     as the policy says: judged by `expected()` below, a reference decision
 *     for this one policy written by hand (not src/policy's evaluate(), which
 *     would judge itself): every call an upstream logged is one it allows for
 *     the agent that sent it, and every decision the audit log records for a
 *     call is the one it gives.
 * FUZZ_RUNS sets the number of requests (default 1000); a failure prints the
 * seed and the shrunk request.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/** A path segment "." or "..": argument globs cannot judge such a value, so a deny rule's glob counts it as matching (fail closed; src/policy/arg-glob.ts). */
const dotSegment = (p: string) => p.split('/').some((s) => s === '.' || s === '..');

/**
 * POLICY above, decided by hand for the calls the fuzzer makes: the reference
 * the gateway is judged by. Written from the policy's documented semantics
 * (any matching deny wins, then allow, else the default), not from src/policy.
 */
function expected(agent: string, connector: string, tool: string, args: Record<string, unknown>): 'allow' | 'deny' {
  const { a, path } = args;
  if (agent === 'mallory' && tool.endsWith('__echo')) return 'deny';
  if (tool === 'fx__add' && typeof a === 'number' && Number.isFinite(a) && a >= 100) return 'deny';
  if (tool === 'any__anything' && typeof path === 'string' && (dotSegment(path) || path === '/etc' || path.startsWith('/etc/'))) return 'deny';
  if (agent === 'bob' && connector === 'any' && tool === 'any__anything') return 'deny';
  if (tool === 'fx__echo' || tool === 'fx__add' || connector === 'any') return 'allow';
  return 'deny';
}

/** The tool and arguments of a body that is one tools/call request, else undefined. */
function singleCall(body: string | Buffer): { name: string; args: Record<string, unknown> } | undefined {
  try {
    const m = JSON.parse(String(body)) as { method?: unknown; params?: { name?: unknown; arguments?: unknown } };
    if (m.method !== 'tools/call' || typeof m.params?.name !== 'string') return undefined;
    const args = m.params.arguments;
    return { name: m.params.name, args: typeof args === 'object' && args !== null && !Array.isArray(args) ? (args as Record<string, unknown>) : {} };
  } catch {
    return undefined;
  }
}

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

const path = fc.oneof(
  fc.constantFrom('/etc/passwd', '/etc/ssh/x', '/tmp/ok', '/etc', 'etc/passwd', '/ETC/passwd', '/etc/../tmp', '/etc/cron.d/a\nb', '/etc/\n', '/etc/x\r\ny', '/etc/./passwd', '//etc/passwd', '/etc\u0000/x', '/etc/'),
  fc.tuple(fc.constantFrom('/etc/', '/etc', '/tmp/'), fc.string({ maxLength: 12 })).map(([p, rest]) => p + rest),
  fc.string({ maxLength: 20 }),
);
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
  { weight: 3, arbitrary: fc.record({ name: fc.constant('fx__add'), arguments: fc.record({ a: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double({ noNaN: true }), fc.constantFrom(99, 99.5, 100, 100.5)), b: fc.integer() }) }) },
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
const WELL_FORMED = { contentType: 'application/json', accept: MCP_HEADERS.accept, protocol: '2025-11-25', session: 'own', auth: 'own' } as const;
const headers = fc.oneof(
  { weight: 3, arbitrary: fc.constant(WELL_FORMED) },
  { weight: 1, arbitrary: randomHeaders },
);

const request = fc.record({ agent: fc.constantFrom(...AGENTS), headers, body });

/** Run first, every time: the boundaries of each rule (random runs may not draw them). */
const call = (agent: (typeof AGENTS)[number], name: string, args: Record<string, unknown>) => ({ agent, headers: WELL_FORMED, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }) });
const BOUNDARIES: Array<[ReturnType<typeof call>]> = [
  [call('alice', 'fx__add', { a: 100, b: 1 })],
  [call('alice', 'fx__add', { a: 99.5, b: 1 })],
  [call('alice', 'any__anything', { path: '/etc' })],
  [call('alice', 'any__anything', { path: '/etc/x\ny' })],
  [call('alice', 'any__anything', { path: '/etcetera' })],
  [call('bob', 'any__anything', { path: '/tmp/ok' })],
  [call('bob', 'any__ok', {})],
  [call('mallory', 'fx__echo', { text: 'hi' })],
  [call('mallory', 'fx__add', { a: 1, b: 1 })],
];

// ---- the property -----------------------------------------------------------

/** How many lines of each upstream's call log were already checked. */
const seen = { fx: 0, any: 0 };
/** How many audit records were already checked. */
let auditSeen = 0;
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

describe('the reference decision itself', () => {
  it('decides the cases it is written for (so a wrong reference cannot pass the fuzzer off as right)', () => {
    expect(expected('mallory', 'fx', 'fx__echo', {})).toBe('deny');
    expect(expected('alice', 'fx', 'fx__echo', {})).toBe('allow');
    expect(expected('alice', 'fx', 'fx__add', { a: 100 })).toBe('deny');
    expect(expected('alice', 'fx', 'fx__add', { a: 99.5 })).toBe('allow');
    expect(expected('alice', 'fx', 'fx__add', { a: '500' })).toBe('allow');
    expect(expected('alice', 'any', 'any__anything', { path: '/etc' })).toBe('deny');
    expect(expected('alice', 'any', 'any__anything', { path: '/etc/a\nb' })).toBe('deny');
    expect(expected('alice', 'any', 'any__anything', { path: '/etcx' })).toBe('allow');
    expect(expected('alice', 'any', 'any__anything', { path: '/etc/../x' })).toBe('deny');
    expect(expected('alice', 'any', 'any__anything', { path: '/tmp/./ok' })).toBe('deny');
    expect(expected('bob', 'any', 'any__anything', { path: '/tmp/ok' })).toBe('deny');
    expect(expected('bob', 'any', 'any__ok', {})).toBe('allow');
    expect(expected('alice', 'fx', 'fx__env', {})).toBe('deny');
  });
});

describe('a deny glob ending in "**" holds for values with a newline', () => {
  it('alice asks for /etc/cron.d/a<newline>b: denied by no-etc, nothing forwarded', async () => {
    const before = readJsonLines(faultyLog).length;
    const r = await rawRequest(t.port, {
      headers: { ...MCP_HEADERS, 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': sessions.get('alice') ?? '', authorization: `Bearer ${tokens.get('alice')}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'any__anything', arguments: { path: '/etc/cron.d/a\nb' } } }),
    });
    expect(r.status).toBe(200);
    expect(r.text).toContain('no-etc');
    expect(readJsonLines(faultyLog).length).toBe(before);
    expect(t.audit().at(-1)).toMatchObject({ event: 'tools/call', agent: 'alice', tool: 'any__anything', decision: 'deny', rule: 'no-etc' });
    // Let the fuzzer start from a clean slate.
    newForwarded();
    auditSeen = t.audit().length;
  });
});

describe('fuzzing the request path (fast-check)', () => {
  it(`${RUNS} random requests: the gateway never crashes, never forwards a call the policy denies, and decides each call as the hand-written reference does`, { timeout: 170_000 }, async () => {
    let forwardedTotal = 0;
    let deniedChecked = 0;
    let decisionsChecked = 0;
    newForwarded();
    auditSeen = t.audit().length;
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
          expect(expected(rq.agent, entry.connector, entry.name, f.args), `${rq.agent} ${entry.name} ${JSON.stringify(f.args)} was forwarded`).toBe('allow');
        }
        // Every decision the gateway made (and audited) is the reference's, both ways: no call allowed that should be denied, none denied that should be allowed.
        const audit = t.audit();
        const decided = audit.slice(auditSeen).filter((a) => a.event === 'tools/call' && typeof a.decision === 'string');
        auditSeen = audit.length;
        const sent = singleCall(rq.body);
        for (const a of decided) {
          if (!sent) continue; // a batch: which call a record belongs to is not known here
          decisionsChecked++;
          expect(a.agent).toBe(rq.agent);
          expect(a.decision, `${rq.agent} ${String(a.tool)} ${JSON.stringify(sent.args)}: rule ${String(a.rule)}`).toBe(expected(rq.agent, String(a.connector), String(a.tool), sent.args));
        }
        if (rq.headers.session === 'own' && rq.headers.auth === 'own') deniedChecked++;

        const health = await rawRequest(t.port, { method: 'GET', path: '/healthz' });
        expect(health.status).toBe(200);
        expect(unhandled).toEqual([]);
      }),
      { numRuns: RUNS, endOnFailure: true, examples: BOUNDARIES },
    );
    // The fuzzer did reach the upstreams and the policy (not everything bounced at the edge).
    expect(forwardedTotal).toBeGreaterThan(RUNS / 20);
    expect(deniedChecked).toBeGreaterThan(RUNS / 4);
    expect(decisionsChecked).toBeGreaterThan(RUNS / 10);
    const denied = t.audit().filter((a) => a.event === 'tools/call' && a.outcome === 'denied');
    expect(denied.length).toBeGreaterThan(RUNS / 50);
    console.log(`[fuzz] ${RUNS} requests; ${forwardedTotal} forwarded (each allowed by the reference); ${decisionsChecked} decisions checked against it; ${denied.length} denied by policy; audit records ${t.audit().length}`);
  });
});
