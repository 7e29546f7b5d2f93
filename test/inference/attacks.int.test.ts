/**
 * Hostile review of /llm/<provider>/… (issue #13): each test is named after
 * the attack. A red test is a finding (it passes once fixed); the green ones
 * are the few attacks that hold and are worth keeping as guards.
 *
 * Two upstreams: the scripted simulator (test/helpers/model-sim.ts) and, for
 * what the simulator cannot do (hostile headers, split secrets), a tiny
 * hand-written hostile provider.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../connectors/helpers.js';
import { rawRequest, startTestGateway, until, type TestGateway } from '../helpers/gateway.js';
import { startModelSim, type ModelSim } from '../helpers/model-sim.js';
import { overlaps, protectedPaths } from '../../src/sandbox/overlap.js';
import { OPENAI_KEY, POLICY, REAL_KEY } from './helpers.js';
import { tempDir } from '../helpers/tmp.js';

/** The hostile provider's own key (a secret is bound to one connector). */
const EVIL_KEY = 'sk-evil-real-0123456789abcdef';

// ------------------------------------------------------------ a hostile provider

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
let evil: Server;
let evilUrl = '';
let evilHandler: Handler = (_q, r) => void r.end('{}');
const evilSeen: string[] = [];

let sim: ModelSim;
beforeAll(async () => {
  sim = await startModelSim({ models: ['claude-sim', 'gpt-sim'] });
  evil = createServer((req, res) => {
    evilSeen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => void evilHandler(req, res));
  });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
  evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await sim.close();
  evil.closeAllConnections();
  await new Promise((r) => evil.close(r));
});

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function start(opts: { anth?: Record<string, unknown>; oai?: Record<string, unknown>; evil?: Record<string, unknown> } = {}): Promise<TestGateway> {
  const store = new MemoryStore({ 'anth-key': REAL_KEY, 'oai-key': OPENAI_KEY, 'evil-key': EVIL_KEY });
  const connectors = () => [
    { name: 'anth', kind: 'inference', api: 'anthropic', url: sim.url, headers: { 'x-api-key': '${secret:anth-key}' }, models: { allow: ['claude-*'], deny: ['claude-denied*'] }, ...opts.anth },
    { name: 'oai', kind: 'inference', api: 'openai', url: sim.url, headers: { Authorization: 'Bearer ${secret:oai-key}' }, models: { allow: ['gpt-*'] }, ...opts.oai },
    { name: 'evil', kind: 'inference', api: 'anthropic', url: evilUrl, headers: { 'x-api-key': '${secret:evil-key}' }, models: { allow: ['*'] }, ...opts.evil },
  ];
  t = await startTestGateway({ connectors, policy: POLICY, runtime: { secrets: store, upstreamWaitMs: 100 } });
  return t;
}

const messages = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'claude-sim', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }], ...extra });
const chat = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'gpt-sim', messages: [{ role: 'user', content: 'hi' }], ...extra });

async function llm(gw: TestGateway, path: string, init: RequestInit & { agent?: string } = {}): Promise<Response> {
  const key = await gw.mint(init.agent ?? 'coder');
  const headers: Record<string, string> = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': key, ...(init.headers as Record<string, string> | undefined) };
  return fetch(`http://127.0.0.1:${gw.port}/llm${path}`, { method: 'POST', ...init, headers });
}

const modelRecords = (gw: TestGateway) => gw.audit().filter((r) => r.event === 'model.call');
const sinceHere = () => {
  const n = sim.requests.length;
  return () => sim.requests.slice(n);
};


const sseEvent = (text: string) => `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } })}\n\n`;

// ------------------------------------------------------------------ findings

describe('the provider key reaching the agent or the audit log', () => {
  it('audit leak: a provider error that echoes the key is written unredacted into the model.call record (streamError)', async () => {
    const gw = await start();
    sim.misbehave({ kind: 'status', status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: `bad key ${REAL_KEY}` } } });
    const res = await llm(gw, '/anth/v1/messages', { body: messages() });
    expect(await res.text()).not.toContain(REAL_KEY); // the agent's copy is redacted…
    const rec = await until(() => modelRecords(gw)[0], 'record');
    // …but the audit record is not (invariant 5: never in the audit log).
    expect(JSON.stringify(rec)).not.toContain(REAL_KEY);
  });

  it('audit leak: audit.content full keeps the SSE answer as the provider sent it, key included', async () => {
    const gw = await start({ evil: { audit: { content: 'full' } } });
    evilHandler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sseEvent(`the key is ${EVIL_KEY}`));
    };
    const res = await llm(gw, '/evil/v1/messages', { body: messages({ stream: true }) });
    expect(await res.text()).not.toContain(EVIL_KEY);
    const rec = await until(() => modelRecords(gw)[0], 'record');
    expect(rec.response as string).toContain('the key is');
    expect(JSON.stringify(rec)).not.toContain(EVIL_KEY);
  });

  it('response header leak: a provider header on the allowlist (request-id, x-ratelimit-*, openai-*) carries the key to the agent unredacted', async () => {
    const gw = await start();
    evilHandler = (_q, res) => {
      res.writeHead(302, {
        'content-type': 'application/json',
        location: `http://attacker.example/?k=${EVIL_KEY}`,
        'set-cookie': `s=${EVIL_KEY}`,
        'request-id': EVIL_KEY,
        'x-ratelimit-note': Buffer.from(EVIL_KEY).toString('base64'),
        'openai-organization': EVIL_KEY,
      });
      res.end('{}');
    };
    const res = await llm(gw, '/evil/v1/messages', { body: messages() });
    await res.text();
    // Held: no Location, no Set-Cookie, no redirect followed.
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('set-cookie')).toBeNull();
    const all = JSON.stringify([...res.headers]);
    expect(all).not.toContain(EVIL_KEY);
    expect(all).not.toContain(Buffer.from(EVIL_KEY).toString('base64'));
  });

  it('stalled stream: an SSE event that arrives in three reads hangs the agent forever (pull() that enqueues nothing is never called again)', async () => {
    const gw = await start();
    const ev = sseEvent('hello world');
    evilHandler = async (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Three pieces (a big event, e.g. Responses' response.completed that repeats the whole answer, arrives in several reads).
      res.write(ev.slice(0, 20));
      await new Promise((r) => setTimeout(r, 200));
      res.write(ev.slice(20, 40));
      await new Promise((r) => setTimeout(r, 200));
      res.end(ev.slice(40));
    };
    const res = await llm(gw, '/evil/v1/messages', { body: messages({ stream: true }) });
    const text = await Promise.race([res.text(), new Promise<string>((r) => setTimeout(() => r('<hung>'), 3000))]);
    expect(text).toBe(ev);
    // The call is audited as ended (a hung one never is: no outcome, no tokens spent, a slot held).
    await until(() => modelRecords(gw)[0], 'record', 3000);
  }, 10_000);

  it('1 MiB pending cap: an SSE event longer than the cap is flushed mid-way, cutting the key at the flush and leaking it', async () => {
    const gw = await start();
    const head = `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`;
    // The first write ends 9 bytes past the splitter's cap (1 MiB), inside the key: that is where it flushes.
    const first = head + 'a'.repeat((1 << 20) - head.length - 5) + EVIL_KEY.slice(0, 14);
    evilHandler = async (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(first);
      await new Promise((r) => setTimeout(r, 300));
      res.end(`${EVIL_KEY.slice(14)}"}}\n\n`);
    };
    const res = await llm(gw, '/evil/v1/messages', { body: messages({ stream: true }) });
    const text = await res.text();
    expect(text.length).toBeGreaterThan(1 << 20);
    expect(text).not.toContain(EVIL_KEY);
  }, 10_000);
});

describe('budget and policy bypass', () => {
  it('token budget bypass: stream_options.include_usage=false keeps OpenAI streams from ever being counted', async () => {
    // 21 + 7 tokens a call: the second call crosses 40, the third must be refused.
    const gw = await start({ oai: { budget: { tokens: '40/hour' } } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await llm(gw, '/oai/v1/chat/completions', { body: chat({ stream: true, stream_options: { include_usage: false } }) });
      statuses.push(res.status);
      await res.text();
      await until(() => modelRecords(gw).length > i || undefined, 'record');
    }
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('token budget bypass: cancelling a Chat Completions stream after finish_reason, before the usage chunk, spends nothing', async () => {
    const gw = await start({ oai: { budget: { tokens: '20/hour' } } });
    sim.misbehave({ kind: 'slow-events', gapMs: 300 }, { path: /chat\/completions$/ });
    const ac = new AbortController();
    const res = await llm(gw, '/oai/v1/chat/completions', { body: chat({ stream: true }), signal: ac.signal });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('"finish_reason":"stop"')) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    ac.abort(); // the whole answer is in hand; the usage chunk is not
    await until(() => modelRecords(gw)[0], 'the cancelled record');
    // The provider billed 28 tokens for that call: the budget of 20 is spent.
    const next = await llm(gw, '/oai/v1/chat/completions', { body: chat() });
    await next.text();
    expect(next.status).toBe(429);
  });

  it('token budget race: concurrent calls are all admitted, so N calls spend N times the budget', async () => {
    const gw = await start({ anth: { budget: { tokens: '40/hour' } } });
    const seen = sinceHere();
    sim.misbehave({ kind: 'slow-first-byte', delayMs: 400 }, { times: 8 });
    const all = await Promise.all(Array.from({ length: 8 }, () => llm(gw, '/anth/v1/messages', { body: messages() })));
    await Promise.all(all.map((r) => r.text()));
    // 8 x 28 = 224 tokens against a 40-token budget. At most the call that crosses it may run over.
    expect(seen().length).toBeLessThanOrEqual(2);
  });

  it('policy bypass: an agent denied every model still lists the provider’s models (GET /v1/models sent with the key)', async () => {
    const gw = await start();
    const seen = sinceHere();
    const res = await llm(gw, '/oai/v1/models', { method: 'GET', agent: 'mallory' });
    await res.text();
    expect(res.status).toBe(403);
    expect(seen()).toEqual([]);
  });
});

// ------------------------------------------------------------------ attacks that hold

describe('attacks that hold', () => {
  it('pipelined call: an agent that hangs up with a second call queued behind the first has both upstream requests aborted at once and both calls recorded', async () => {
    const gw = await start();
    const token = await gw.mint('coder');
    const opened: Array<{ closedAt?: number }> = [];
    evilHandler = (_req, res) => {
      const u: { closedAt?: number } = {};
      opened.push(u);
      res.on('close', () => (u.closedAt = Date.now()));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const tick = setInterval(() => res.write(sseEvent('x'.repeat(8000))), 20);
      res.on('close', () => clearInterval(tick));
    };
    const body = messages({ stream: true });
    const one = `POST /llm/evil/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nx-api-key: ${token}\r\ncontent-type: application/json\r\nanthropic-version: 2023-06-01\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const s = connect(gw.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    await new Promise((r) => s.once('connect', r));
    // Two requests in one write: Node gives the second response no socket until the first one ends.
    s.write(one + one);
    await until(() => (opened.length >= 2 ? true : undefined), 'both calls reached the provider', 5000);
    const gone = Date.now();
    s.destroy();
    await until(() => (opened.every((u) => u.closedAt !== undefined) ? true : undefined), 'both upstream requests aborted', 3000);
    for (const u of opened) expect((u.closedAt ?? Infinity) - gone).toBeLessThan(1000);
    const recs = await until(() => {
      const r = modelRecords(gw).filter((x) => x.provider === 'evil');
      return r.length >= 2 ? r : undefined;
    }, 'both model.call records', 5000);
    expect(recs.map((r) => r.outcome)).toEqual(['cancelled', 'cancelled']);
  });

  it('path tricks (%2e%2e, encoded slashes, //host, backslashes, absolute-form, ?/# in the model id) never reach another path or host', async () => {
    const gw = await start();
    const token = await gw.mint('coder');
    const seen = sinceHere();
    const paths = [
      '/llm/anth/v1/models/%2e%2e/%2e%2e/v1/organizations/api_keys',
      '/llm/anth/v1/models/..%2f..%2fv1%2forganizations',
      '/llm/anth/v1/models/claude-sim%3Fx=1',
      '/llm/anth/v1/models/claude-sim%23frag',
      '/llm/anth/v1/models/claude-sim/../../organizations',
      '/llm/anth/v1/models/claude-sim\\..\\..\\organizations',
      '/llm/anth//attacker.example/v1/messages',
      '/llm/anth/v1/models//attacker.example',
      '/llm/anth/v1/models/claude-sim@attacker.example',
      '/llm/an%74h/v1/models',
      '/llm/%2e%2e/anth/v1/models',
      'http://attacker.example/llm/anth/v1/models',
      '/llm/anth/v1/models/claude-denied-x',
    ];
    for (const path of paths) {
      const r = await rawRequest(gw.port, { method: 'GET', path, headers: { 'x-api-key': token } });
      expect(r.text).not.toContain(REAL_KEY);
    }
    for (const r of seen()) {
      expect(r.path).toMatch(/^\/v1\/models(\/claude-sim(@attacker\.example)?)?$/);
      expect(r.url).not.toMatch(/organizations|attacker\.example\//);
    }
  });

  it('model smuggling: an array, object, or a denied model in the path is refused before anything leaves', async () => {
    const gw = await start();
    const seen = sinceHere();
    for (const model of [['claude-sim'], { id: 'claude-sim' }, 'claude-denied-1', 'CLAUDE-SIM']) {
      const res = await llm(gw, '/anth/v1/messages', { body: messages({ model }) });
      expect([JSON.stringify(model), res.status]).toEqual([JSON.stringify(model), res.status >= 400 ? res.status : 'forwarded']);
    }
    expect((await llm(gw, '/anth/v1/models/claude-denied-1', { method: 'GET' })).status).toBe(403);
    expect((await llm(gw, '/anth/v1/messages/count_tokens', { body: messages({ model: 'claude-denied-1' }) })).status).toBe(403);
    // Duplicate keys: the gateway forwards what it decided on (it re-serializes the parsed body).
    await llm(gw, '/anth/v1/messages', { body: '{"model":"claude-denied-1","model":"claude-sim","max_tokens":5,"messages":[]}' });
    expect(seen().map((r) => (r.body as { model?: string }).model)).toEqual(['claude-sim']);
  });

  it('auth: with Authorization and x-api-key of two agents, the Authorization agent is the one billed', async () => {
    const gw = await start({ anth: { budget: { requests: '1/hour' } } });
    // Bob spends his own request; alice's x-api-key beside bob's bearer does not move alice's budget.
    const alice = await gw.mint('alice');
    const bob = await gw.mint('bob');
    const r2 = await fetch(`http://127.0.0.1:${gw.port}/llm/anth/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${bob}`, 'x-api-key': alice, 'content-type': 'application/json' }, body: messages() });
    expect(r2.status).toBe(200);
    await r2.text();
    const r3 = await llm(gw, '/anth/v1/messages', { agent: 'alice', body: messages() });
    expect(r3.status).toBe(200);
    await r3.text();
  });

  it('header smuggling: host, x-forwarded-*, forwarded, proxy-authorization and a wrong content-type from the agent are not forwarded', async () => {
    const gw = await start();
    const seen = sinceHere();
    const token = await gw.mint('coder');
    const r = await rawRequest(gw.port, {
      path: '/llm/anth/v1/messages',
      headers: { 'x-api-key': token, 'content-type': 'text/plain', 'x-forwarded-for': '10.0.0.1', 'x-forwarded-host': 'attacker.example', forwarded: 'for=1', 'proxy-authorization': 'Basic eA==', 'anthropic-version': '2023-06-01', 'x-stainless-x': 'ok' },
      body: messages(),
    });
    expect(r.status).toBe(200);
    const h = seen()[0]!.headers;
    expect(h['x-forwarded-for']).toBeUndefined();
    expect(h['x-forwarded-host']).toBeUndefined();
    expect(h.forwarded).toBeUndefined();
    expect(h['proxy-authorization']).toBeUndefined();
    expect(h['content-type']).toBe('application/json');
    expect(h['x-api-key']).toBe(REAL_KEY);
    expect(h.host).toBe(new URL(sim.url).host);
  });
});

describe('agent homes in the state directory (overlap.ts except)', () => {
  it('only <state>/homes/<x> is let through: homes itself, homes/.. and a link named homes are still refused', () => {
    const base = tempDir('gh-attack-');
    try {
      const dirs = { state: join(base, 'state'), policies: join(base, 'pol'), registry: join(base, 'reg') };
      mkdirSync(join(dirs.state, 'homes', 'alice'), { recursive: true });
      mkdirSync(join(dirs.state, 'audit'), { recursive: true });
      // A link the agent left in its own home, pointing back into the state directory.
      symlinkSync(join(dirs.state, 'audit'), join(dirs.state, 'homes', 'alice', 'esc'));
      const prot = protectedPaths(dirs, { HOME: join(base, 'home') }, [join(base, 'home')]);
      const refused = (path: string, flag: '--rw' | '--ro' | '--home' = '--rw') => overlaps([{ flag, path }], prot).length > 0;
      expect(refused(join(dirs.state, 'homes', 'alice'), '--home')).toBe(false);
      expect(refused(join(dirs.state, 'homes'))).toBe(true);
      expect(refused(join(dirs.state, 'homes', '..', 'audit'))).toBe(true);
      expect(refused(join(dirs.state, 'homes', 'alice', 'esc'), '--ro')).toBe(true);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
