/**
 * /llm/<provider>/…: a real gateway in front of the scripted provider
 * simulator (test/helpers/model-sim.ts). Each test is named after the attack
 * or fault it covers.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/errors.js';
import type { SecretStore } from '../../src/secrets/store.js';
import { MemoryStore } from '../connectors/helpers.js';
import { startTestGateway, until, type TestGateway } from '../helpers/gateway.js';
import { startModelSim, type ModelSim } from '../helpers/model-sim.js';
import { OPENAI_KEY, POLICY, REAL_KEY } from './helpers.js';

const OTHER_SECRET = 'ghp_otherConnectorSecret123456';

let sim: ModelSim;
beforeAll(async () => {
  sim = await startModelSim({ models: ['claude-sim', 'gpt-sim'] });
});
afterAll(async () => {
  await sim.close();
});

function providers(over: Record<string, unknown> = {}, openaiOver: Record<string, unknown> = {}) {
  return [
    { name: 'anth', kind: 'inference', api: 'anthropic', url: sim.url, headers: { 'x-api-key': '${secret:anth-key}' }, models: { allow: ['claude-*'] }, ...over },
    { name: 'oai', kind: 'inference', api: 'openai', url: sim.url, headers: { Authorization: 'Bearer ${secret:oai-key}' }, models: { allow: ['gpt-*'] }, ...openaiOver },
    // Another connector's secret: known to the gateway, so redacted everywhere.
    { name: 'other', kind: 'http', url: 'http://127.0.0.1:9/mcp', headers: { Authorization: 'Bearer ${secret:other-token}' } },
  ];
}

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function start(opts: { anth?: Record<string, unknown>; oai?: Record<string, unknown>; store?: SecretStore } = {}): Promise<TestGateway> {
  const store = opts.store ?? new MemoryStore({ 'anth-key': REAL_KEY, 'oai-key': OPENAI_KEY, 'other-token': OTHER_SECRET });
  t = await startTestGateway({ connectors: () => providers(opts.anth, opts.oai), policy: POLICY, runtime: { secrets: store, upstreamWaitMs: 100 } });
  return t;
}

const messages = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'claude-sim', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }], ...extra });

async function llm(gw: TestGateway, path: string, init: RequestInit & { agent?: string; key?: string | null } = {}): Promise<Response> {
  const key = init.key === undefined ? await gw.mint(init.agent ?? 'coder') : init.key;
  const headers: Record<string, string> = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...(init.headers as Record<string, string> | undefined) };
  if (key !== null) headers['x-api-key'] = key;
  return fetch(`http://127.0.0.1:${gw.port}/llm${path}`, { method: 'POST', ...init, headers });
}

const modelRecords = (gw: TestGateway) => gw.audit().filter((r) => r.event === 'model.call');
const sinceHere = () => {
  const n = sim.requests.length;
  return () => sim.requests.slice(n);
};

describe('the key: the agent never holds it, the provider never sees the agent’s', () => {
  it('agent key swap: the agent token (sent as x-api-key) is dropped, the keychain key is sent instead', async () => {
    const gw = await start();
    const seen = sinceHere();
    const token = await gw.mint('coder');
    const res = await llm(gw, '/anth/v1/messages?beta=true', { key: token, headers: { authorization: 'Bearer sk-agent-made-up', cookie: 'session=1', 'openai-organization': 'org-x' }, body: messages() });
    expect(res.status).toBe(200);
    const [r] = seen();
    expect(r?.headers['x-api-key']).toBe(REAL_KEY);
    expect(r?.headers.authorization).toBeUndefined();
    expect(r?.headers.cookie).toBeUndefined();
    expect(r?.headers['openai-organization']).toBeUndefined();
    expect(r?.headers['anthropic-version']).toBe('2023-06-01');
    expect(r?.url).toBe('/v1/messages?beta=true');
    expect(JSON.stringify(r?.headers)).not.toContain(token);
  });

  it('OpenAI: the Authorization the agent sends is replaced by the provider key', async () => {
    const gw = await start();
    const seen = sinceHere();
    const token = await gw.mint('coder');
    const res = await fetch(`http://127.0.0.1:${gw.port}/llm/oai/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-sim', messages: [{ role: 'user', content: 'hi' }] }) });
    expect(res.status).toBe(200);
    expect(seen()[0]?.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
  });

  it('a key in the query string (?key=, ?api_key=) is not forwarded', async () => {
    const gw = await start();
    const seen = sinceHere();
    await llm(gw, '/anth/v1/messages?beta=true&key=sk-leak&api_key=sk-leak2', { body: messages() });
    expect(seen()[0]?.url).toBe('/v1/messages?beta=true');
  });

  it('no agent token: 401 in the provider’s format; an admin token is refused', async () => {
    const gw = await start();
    const none = await llm(gw, '/anth/v1/messages', { key: null, body: messages() });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    const forged = await llm(gw, '/anth/v1/messages', { key: 'sk-ant-api03-not-a-gatehouse-token', body: messages() });
    expect(forged.status).toBe(401);
  });
});

describe('decisions before anything leaves', () => {
  it('a model not in models.allow: 403 in the provider’s format, the provider saw nothing', async () => {
    const gw = await start();
    const seen = sinceHere();
    const res = await llm(gw, '/anth/v1/messages', { body: messages({ model: 'gpt-sim' }) });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { type: string; message: string; code: string } };
    expect(body.error).toMatchObject({ type: 'permission_error', code: 'gatehouse_model_not_allowed' });
    expect(body.error.message).toContain('model "gpt-sim" is not allowed for provider "anth"');
    expect(seen()).toEqual([]);
    expect(modelRecords(gw).at(-1)).toMatchObject({ agent: 'coder', provider: 'anth', model: 'gpt-sim', decision: 'deny', outcome: 'refused', status: 403 });
  });

  it('a policy deny names its rule, in the agent’s SDK format; audited with the rule', async () => {
    const gw = await start();
    const seen = sinceHere();
    const res = await llm(gw, '/oai/v1/chat/completions', { agent: 'mallory', body: JSON.stringify({ model: 'gpt-sim', messages: [] }) });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { type: 'permission_denied', message: 'Gatehouse: mallory may not use models', code: 'gatehouse_policy_denied' } });
    expect(seen()).toEqual([]);
    expect(modelRecords(gw).at(-1)).toMatchObject({ agent: 'mallory', decision: 'deny', rule: 'mallory-no-models', outcome: 'refused' });
  });

  it('a route the gateway does not carry (the provider’s admin API) is 404, never forwarded', async () => {
    const gw = await start();
    const seen = sinceHere();
    const res = await llm(gw, '/anth/v1/organizations/api_keys', { body: '{}' });
    expect(res.status).toBe(404);
    expect(seen()).toEqual([]);
    const unknown = await llm(gw, '/nobody/v1/messages', { body: messages() });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toContain('providers: anth, oai');
  });

  it('a body over the cap: 413 before anything is sent', async () => {
    const gw = await start({ anth: { maxBodyBytes: 4096 } });
    const seen = sinceHere();
    const res = await llm(gw, '/anth/v1/messages', { body: messages({ pad: 'x'.repeat(10_000) }) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { type: 'request_too_large' } });
    expect(seen()).toEqual([]);
  });

  it('a body that is not a JSON object, or names no model: 400', async () => {
    const gw = await start();
    expect((await llm(gw, '/anth/v1/messages', { body: '[1,2]' })).status).toBe(400);
    expect((await llm(gw, '/anth/v1/messages', { body: '{"model": 5}' })).status).toBe(400);
    expect((await llm(gw, '/anth/v1/messages', { body: '\xff\xfe' })).status).toBe(400);
  });

  it('a spent token budget: 429 with retry-after; the provider saw only the calls within budget', async () => {
    // The simulator reports 21 input + 7 output tokens per call: the second call crosses 40, the third is refused.
    const gw = await start({ anth: { budget: { tokens: '40/hour' } } });
    const seen = sinceHere();
    expect((await llm(gw, '/anth/v1/messages', { body: messages() })).status).toBe(200);
    expect((await llm(gw, '/anth/v1/messages', { body: messages() })).status).toBe(200);
    const res = await llm(gw, '/anth/v1/messages', { body: messages() });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(3000);
    expect(await res.json()).toMatchObject({ error: { type: 'rate_limit_error', code: 'gatehouse_budget_tokens' } });
    expect(seen()).toHaveLength(2);
    // Another agent has its own budget.
    expect((await llm(gw, '/anth/v1/messages', { agent: 'other-agent', body: messages() })).status).toBe(200);
  });

  it('a request budget per agent: the call past it is refused up front', async () => {
    const gw = await start({ anth: { budget: { requests: '1/minute' } } });
    expect((await llm(gw, '/anth/v1/messages', { body: messages() })).status).toBe(200);
    const res = await llm(gw, '/anth/v1/messages', { body: messages() });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});

describe('the provider answer: streamed, redacted, audited', () => {
  it('a stream reaches the agent event by event, before the provider has finished', async () => {
    const gw = await start();
    sim.misbehave({ kind: 'slow-events', gapMs: 400 });
    const res = await llm(gw, '/anth/v1/messages', { body: messages({ stream: true }) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('message_start');
    // The call is still running: its outcome record is written only when the stream ends.
    expect(modelRecords(gw)).toEqual([]);
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toContain('message_stop');
    const rec = await until(() => modelRecords(gw)[0], 'the model.call record');
    expect(rec).toMatchObject({ agent: 'coder', provider: 'anth', api: 'anthropic', model: 'claude-sim', stream: true, decision: 'allow', rule: 'models', outcome: 'ok', status: 200, inputTokens: 21, outputTokens: 7, via: 'token' });
    expect(rec.stopReason).toBeTypeOf('string');
    expect(rec.ttfbMs as number).toBeLessThan(rec.durationMs as number);
    expect(rec.bytesOut as number).toBeGreaterThan(100);
    // Prompts and answers are not stored by default.
    expect(JSON.stringify(rec)).not.toContain('hello');
    expect(gw.audit().find((r) => r.event === 'model.call.intent' && r.call === rec.call)).toBeDefined();
  });

  it('an agent that disconnects mid-stream: the provider request is aborted, the audit says cancelled', async () => {
    const gw = await start();
    sim.misbehave({ kind: 'slow-events', gapMs: 1000 });
    const ac = new AbortController();
    const res = await llm(gw, '/anth/v1/messages', { body: messages({ stream: true }), signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    const rec = await until(() => modelRecords(gw)[0], 'the cancelled record');
    expect(rec).toMatchObject({ outcome: 'cancelled', reason: expect.stringContaining('went away') });
    // Ended at once, not when the provider would have finished (several events, a second apart).
    expect(rec.durationMs as number).toBeLessThan(3000);
  });

  it('a provider cut mid-stream: the agent’s stream ends in error, the audit says failed', async () => {
    const gw = await start();
    sim.misbehave({ kind: 'cut-mid-stream', afterEvents: 2 });
    const res = await llm(gw, '/anth/v1/messages', { body: messages({ stream: true }) });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    const rec = await until(() => modelRecords(gw)[0], 'the failed record');
    expect(rec).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('the stream broke') });
  });

  it('garbage SSE from the provider passes through as sent; usage unknown; the gateway is unhurt', async () => {
    const gw = await start();
    sim.misbehave({ kind: 'garbage-sse' });
    const res = await llm(gw, '/anth/v1/messages', { body: messages({ stream: true }) });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('this is not');
    const rec = await until(() => modelRecords(gw)[0], 'the record');
    expect(rec).toMatchObject({ outcome: 'ok' });
    expect(rec.inputTokens).toBeUndefined();
    expect((await llm(gw, '/anth/v1/messages', { body: messages() })).status).toBe(200);
  });

  it('a 429 storm: each provider 429 reaches the agent verbatim (status, body, retry-after), then calls work again', async () => {
    const gw = await start();
    const body = { type: 'error', error: { type: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit' } };
    sim.misbehave({ kind: 'status', status: 429, body, retryAfter: '17' }, { times: 20 });
    const all = await Promise.all(Array.from({ length: 20 }, () => llm(gw, '/anth/v1/messages', { body: messages() })));
    for (const r of all) {
      expect(r.status).toBe(429);
      expect(r.headers.get('retry-after')).toBe('17');
      expect(await r.json()).toEqual(body);
    }
    await until(() => modelRecords(gw).length >= 20 || undefined, '20 records');
    expect(modelRecords(gw).every((r) => r.outcome === 'provider_error' && r.status === 429)).toBe(true);
    expect((await llm(gw, '/anth/v1/messages', { body: messages() })).status).toBe(200);
  });

  it('provider down: 502 in the provider’s format, audited as failed', async () => {
    const gw = await start({ anth: { url: 'http://127.0.0.1:9' } });
    const res = await llm(gw, '/anth/v1/messages', { body: messages() });
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'api_error', code: 'gatehouse_provider_unreachable' } });
    expect((await until(() => modelRecords(gw)[0], 'record')).outcome).toBe('failed');
  });

  it('a provider slower than timeouts.firstByte: 504, the call is not left hanging', async () => {
    const gw = await start({ anth: { timeouts: { firstByte: '300ms' } } });
    sim.misbehave({ kind: 'slow-first-byte', delayMs: 3000 });
    const res = await llm(gw, '/anth/v1/messages', { body: messages() });
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ error: { type: 'timeout_error', code: 'gatehouse_provider_timeout' } });
  });

  it('a secret of another connector in the prompt is redacted before it leaves', async () => {
    const gw = await start();
    const seen = sinceHere();
    await llm(gw, '/anth/v1/messages', { body: messages({ messages: [{ role: 'user', content: `my token is ${OTHER_SECRET}` }] }) });
    const sent = JSON.stringify(seen()[0]?.body);
    expect(sent).not.toContain(OTHER_SECRET);
    expect(sent).toContain('my token is');
  });

  it('a known secret in the provider’s answer is redacted before the agent sees it (stream and whole)', async () => {
    const gw = await start();
    sim.misbehave({ kind: 'status', status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: `bad key ${REAL_KEY} and ${OTHER_SECRET}` } } });
    const res = await llm(gw, '/anth/v1/messages', { body: messages() });
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(text).not.toContain(REAL_KEY);
    expect(text).not.toContain(OTHER_SECRET);
    expect(text).toContain('bad key');
  });

  it('Chat Completions streams: the gateway asks for usage and records it', async () => {
    const gw = await start();
    const seen = sinceHere();
    const res = await llm(gw, '/oai/v1/chat/completions', { body: JSON.stringify({ model: 'gpt-sim', stream: true, messages: [{ role: 'user', content: 'hi' }] }) });
    await res.text();
    expect((seen()[0]?.body as { stream_options?: unknown }).stream_options).toEqual({ include_usage: true });
    expect(await until(() => modelRecords(gw)[0], 'record')).toMatchObject({ api: 'openai', inputTokens: 21, outputTokens: 7, outcome: 'ok' });
  });

  it('audit content: hash keeps digests of the prompt and answer, not the text', async () => {
    const gw = await start({ anth: { audit: { content: 'hash' } } });
    await (await llm(gw, '/anth/v1/messages', { body: messages() })).text();
    const rec = await until(() => modelRecords(gw)[0], 'record');
    expect(rec.requestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(rec.responseSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(rec)).not.toContain('hello');
  });

  it('audit content: full keeps the (redacted) prompt and answer', async () => {
    const gw = await start({ anth: { audit: { content: 'full' } } });
    await (await llm(gw, '/anth/v1/messages', { body: messages({ messages: [{ role: 'user', content: `hello ${OTHER_SECRET}` }] }) })).text();
    const rec = await until(() => modelRecords(gw)[0], 'record');
    expect(rec.request as string).toContain('hello');
    expect(rec.request as string).not.toContain(OTHER_SECRET);
    expect(typeof rec.response).toBe('string');
  });
});

describe('a provider that is not ready', () => {
  it('a missing secret: 503 in the provider’s format naming the fix; nothing sent', async () => {
    const gw = await start({ store: new MemoryStore({ 'oai-key': OPENAI_KEY }) });
    const seen = sinceHere();
    const res = await llm(gw, '/anth/v1/messages', { body: messages() });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { message: string; code: string } };
    expect(body.error.code).toBe('gatehouse_provider_not_ready');
    expect(body.error.message).toContain('gatehouse secret set anth-key');
    expect(seen()).toEqual([]);
    // What `gatehouse serve` prints: which provider is not ready, and the fix.
    const report = await gw.gw.inference.report();
    expect(report.find((p) => p.name === 'anth')).toMatchObject({ state: 'not-ready', fix: 'gatehouse secret set anth-key' });
    expect(report.find((p) => p.name === 'oai')).toMatchObject({ state: 'ready', api: 'openai', models: ['gpt-*'] });
  });

  it('a locked or unreachable keychain: 503, fail closed', async () => {
    const locked: SecretStore = {
      description: 'a locked keychain',
      get: async () => {
        throw new GatehouseError('KEYCHAIN_UNAVAILABLE', 'the keychain is locked');
      },
      set: async () => undefined,
      delete: async () => false,
      list: async () => [],
    };
    const gw = await start({ store: locked });
    const seen = sinceHere();
    const res = await llm(gw, '/anth/v1/messages', { body: messages() });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { code: 'gatehouse_keychain_unavailable' } });
    expect(seen()).toEqual([]);
  });
});

/**
 * An InferenceRouter in this process (no HTTP server: the Web Request path), in front of the simulator,
 * writing its records to `append`; `redact` stands in for the secret redaction.
 */
async function inProcessRouter(append: (e: Record<string, unknown>) => Promise<void>, redact: (t: string) => string = (t) => t) {
  const { InferenceRouter } = await import('../../src/inference/proxy.js');
  const { Budgets } = await import('../../src/inference/budget.js');
  const { loadPolicyFiles, memorySource } = await import('../../src/policy/load.js');
  const { silentLogger } = await import('../../src/log.js');
  const policy = loadPolicyFiles(['/p/a.yaml'], memorySource({ '/p/a.yaml': 'version: 1\nrules:\n  - id: models\n    match: { model: "*" }\n    effect: allow\n' }));
  const audit = { append, assertWritable: () => undefined, close: async () => undefined };
  const provider = { name: 'anth', kind: 'inference', api: 'anthropic', url: sim.url, headers: {}, models: { allow: ['*'], deny: [] }, budget: { tokens: { capacity: 1000, perMs: 3_600_000 } }, budgets: {}, audit: { content: 'none' }, maxBodyBytes: 1 << 20, timeouts: {}, enabled: true, file: '/r/anth.yaml' } as never;
  const budgets = new Budgets();
  const router = new InferenceRouter({ providers: () => new Map([['anth', provider]]), policy: () => policy, secrets: { render: async (t: string) => t }, redact, redactValue: (v) => v, audit, budgets, logger: silentLogger });
  const call = async () => {
    const req = new Request('http://127.0.0.1/llm/anth/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: messages({ stream: true }) });
    const res = await router.handle(req, { agent: 'coder', via: 'token' }, 'anth', '/v1/messages');
    if (!(res instanceof Response)) throw new Error('without the Node objects the router must answer with a Response');
    return res;
  };
  return { router, budgets, call };
}

describe('the audit log cannot take the call', () => {
  it('audit down: the intent cannot be written, so no byte of the answer reaches the agent (503); the budget is charged its estimate (the provider did the work)', async () => {
    const written: Array<Record<string, unknown>> = [];
    const { router, budgets, call } = await inProcessRouter(async (e) => {
      if (e.event === 'model.call.intent') throw new GatehouseError('AUDIT_UNAVAILABLE', 'disk full');
      written.push(e);
    });
    const res = await call();
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(text).toContain('gatehouse_audit_unavailable');
    expect(text).not.toContain('message_start');
    expect(written.at(-1)).toMatchObject({ event: 'model.call', outcome: 'failed', status: 503 });
    expect(budgets.used('anth\u0000coder').tokens).toBeGreaterThan(0);
    await router.close();
  });
});

describe('a model call served without the Node server (an in-process fetch)', () => {
  it('web-stream path: without the Node request and response the answer still streams event by event, redacted, with its record', async () => {
    const written: Array<Record<string, unknown>> = [];
    // "claude-sim" stands for a secret here: it is in every event the simulator sends.
    const { router, call } = await inProcessRouter(async (e) => void written.push(e), (t) => t.replaceAll('claude-sim', '[REDACTED]'));
    const res = await call();
    expect(res.status, await res.clone().text()).toBe(200);
    const text = await res.text();
    expect(text).toContain('event: message_start');
    expect(text).toContain('event: message_stop');
    expect(text).not.toContain('claude-sim');
    await until(() => written.some((e) => e.event === 'model.call'), 'the model.call record');
    expect(written.find((e) => e.event === 'model.call')).toMatchObject({ outcome: 'ok', stream: true, agent: 'coder' });
    await router.close();
  });
});
