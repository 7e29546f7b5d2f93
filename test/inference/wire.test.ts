import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { absorbUsage, billableTokens, matchRoute, providerError, type Usage } from '../../src/inference/apis.js';
import { Budgets, budgetFor } from '../../src/inference/budget.js';
import { SseSplitter, eventData } from '../../src/inference/sse.js';
import { tempDir } from '../helpers/tmp.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('routes an agent may call', () => {
  it('Anthropic: messages and the model list; nothing else of the provider', () => {
    expect(matchRoute('anthropic', 'POST', '/v1/messages')).toMatchObject({ modelFrom: 'body', generates: true });
    expect(matchRoute('anthropic', 'GET', '/v1/models')).toMatchObject({ modelFrom: 'none' });
    expect(matchRoute('anthropic', 'POST', '/v1/organizations/api_keys')).toBeUndefined();
    expect(matchRoute('anthropic', 'GET', '/v1/messages')).toBeUndefined();
    expect(matchRoute('anthropic', 'POST', '/v1/chat/completions')).toBeUndefined();
  });
  it('OpenAI: chat, responses, embeddings, models', () => {
    for (const p of ['/v1/chat/completions', '/v1/responses', '/v1/embeddings', '/v1/completions']) expect(matchRoute('openai', 'POST', p)?.generates).toBe(true);
    expect(matchRoute('openai', 'POST', '/v1/files')).toBeUndefined();
    expect(matchRoute('openai', 'DELETE', '/v1/models/ft-x')).toBeUndefined();
  });
  it('path traversal through a model id is refused (GET /v1/models/../files)', () => {
    expect(matchRoute('openai', 'GET', '/v1/models/../files')).toBeUndefined();
    expect(matchRoute('openai', 'GET', '/v1/models/a//b')).toBeUndefined();
    expect(matchRoute('openai', 'GET', '/v1/models/anthropic/claude-3')).toMatchObject({ modelFrom: 'path', pathModel: 'anthropic/claude-3' });
  });
});

describe('refusals in the provider’s own error format', () => {
  it('Anthropic shape: { type: "error", error: { type, message } }', async () => {
    const r = providerError('anthropic', 429, 'rate_limit', 'spent', 'budget_tokens', { 'retry-after': '9' });
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('9');
    expect(await r.json()).toEqual({ type: 'error', error: { type: 'rate_limit_error', message: 'spent', code: 'gatehouse_budget_tokens' } });
  });
  it('OpenAI shape: { error: { message, type, param, code } }', async () => {
    const r = providerError('openai', 403, 'permission', 'no', 'policy_denied');
    expect(await r.json()).toEqual({ error: { message: 'no', type: 'permission_denied', param: null, code: 'gatehouse_policy_denied' } });
  });
});

describe('usage as each API reports it', () => {
  it('Anthropic stream: message_start input and cache, message_delta output and stop reason', () => {
    const u: Usage = {};
    absorbUsage(u, { type: 'message_start', message: { model: 'claude-x', usage: { input_tokens: 100, cache_read_input_tokens: 40, cache_creation_input_tokens: 5, output_tokens: 1 } } });
    absorbUsage(u, { type: 'content_block_delta', delta: { type: 'text_delta', text: 'hi' } });
    absorbUsage(u, { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 33 } });
    expect(u).toEqual({ inputTokens: 100, outputTokens: 33, cacheReadTokens: 40, cacheWriteTokens: 5, stopReason: 'tool_use', responseModel: 'claude-x' });
    expect(billableTokens('anthropic', u)).toBe(100 + 33 + 5 + 40);
  });
  it('Chat Completions: the final usage chunk and finish_reason', () => {
    const u: Usage = {};
    absorbUsage(u, { object: 'chat.completion.chunk', model: 'gpt-x', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    absorbUsage(u, { object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 12, completion_tokens: 3, prompt_tokens_details: { cached_tokens: 2 } } });
    expect(u).toMatchObject({ inputTokens: 12, outputTokens: 3, cacheReadTokens: 2, stopReason: 'stop', responseModel: 'gpt-x' });
    // OpenAI's input count already holds its cached tokens.
    expect(billableTokens('openai', u)).toBe(15);
  });
  it('Responses: response.completed carries usage and status; response.failed is an error', () => {
    const u: Usage = {};
    absorbUsage(u, { type: 'response.completed', response: { object: 'response', status: 'completed', model: 'gpt-5', usage: { input_tokens: 9, output_tokens: 4 } } });
    expect(u).toMatchObject({ inputTokens: 9, outputTokens: 4, stopReason: 'completed', responseModel: 'gpt-5' });
    const f: Usage = {};
    absorbUsage(f, { type: 'response.failed', response: { status: 'failed', error: { message: 'overloaded' } } });
    expect(f).toMatchObject({ stopReason: 'failed', streamError: 'overloaded' });
  });
  it('an Anthropic error event inside a 200 stream is seen', () => {
    const u: Usage = {};
    absorbUsage(u, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    expect(u.streamError).toBe('Overloaded');
  });
  it('hostile usage values (negative, strings, NaN, nested junk) are ignored, never thrown on', () => {
    const u: Usage = {};
    for (const junk of [null, 7, 'x', [], { usage: { input_tokens: -5, output_tokens: '9' } }, { message: { usage: { input_tokens: Number.NaN } } }, { choices: 'x' }]) absorbUsage(u, junk);
    expect(u).toEqual({});
  });
});

describe('server-sent events split as they arrive', () => {
  it('an event split across chunks comes out whole, once', () => {
    const s = new SseSplitter();
    expect(s.push(enc('event: a\ndata: {"x"'))).toEqual([]);
    expect(s.push(enc(':1}\n\nevent: b\n'))).toEqual(['event: a\ndata: {"x":1}\n\n']);
    expect(s.push(enc('data: 2\n\n'))).toEqual(['event: b\ndata: 2\n\n']);
    expect(s.end()).toBe('');
  });
  it('a multi-byte character split between chunks is not mangled', () => {
    const s = new SseSplitter();
    const bytes = enc('data: héllo €\n\n');
    const at = bytes.indexOf(0xe2) + 1; // inside "€"
    expect(s.push(bytes.slice(0, at))).toEqual([]);
    expect(s.push(bytes.slice(at))).toEqual(['data: héllo €\n\n']);
  });
  it('CRLF framing is understood', () => {
    expect(new SseSplitter().push(enc('data: 1\r\n\r\ndata: 2\r\n\r\n'))).toEqual(['data: 1\r\n\r\n', 'data: 2\r\n\r\n']);
  });
  it('a stream that never ends an event is passed on past the cap, not held without bound', () => {
    const s = new SseSplitter(64);
    expect(s.push(enc('x'.repeat(50)))).toEqual([]);
    expect(s.push(enc('y'.repeat(50)))).toEqual(['x'.repeat(50) + 'y'.repeat(50)]);
  });
  it('eventData joins data lines and ignores the rest', () => {
    expect(eventData('event: m\ndata: a\ndata:b\nid: 3\n\n')).toBe('a\nb');
    expect(eventData(': comment\n\n')).toBeUndefined();
  });
});

describe('budgets per agent and provider', () => {
  const hour = 3_600_000;
  it('requests per period: the call past the limit is refused until the window ends', () => {
    const b = new Budgets();
    const budget = { requests: { capacity: 2, perMs: hour } };
    expect(b.admit('p\0a', budget, 1000).ok).toBe(true);
    expect(b.admit('p\0a', budget, 2000).ok).toBe(true);
    const v = b.admit('p\0a', budget, 3000);
    expect(v).toMatchObject({ ok: false, kind: 'requests', used: 2, retryAfterMs: hour - 2000 });
    // Another agent has its own budget; the window's end resets it.
    expect(b.admit('p\0b', budget, 3000).ok).toBe(true);
    expect(b.admit('p\0a', budget, 1000 + hour).ok).toBe(true);
  });
  it('tokens per period: counted after the call; once spent, the next call is refused', () => {
    const b = new Budgets();
    const budget = { tokens: { capacity: 100, perMs: hour } };
    expect(b.admit('k', budget, 0).ok).toBe(true);
    b.spend('k', budget, 150, 10);
    expect(b.admit('k', budget, 20)).toMatchObject({ ok: false, kind: 'tokens', used: 150 });
  });
  it('per-agent overrides by glob, else the provider budget', () => {
    const p = { budget: { requests: { capacity: 5, perMs: hour } }, budgets: { 'ci-*': { requests: { capacity: 1, perMs: hour } } } };
    expect(budgetFor(p, 'ci-7').requests?.capacity).toBe(1);
    expect(budgetFor(p, 'coder').requests?.capacity).toBe(5);
  });
  it('spent budgets survive a restart (a restart is not a way around a budget)', async () => {
    const state = tempDir('gatehouse-budget-');
    const budget = { tokens: { capacity: 100, perMs: hour } };
    const now = Date.now();
    const a = new Budgets({ stateDir: state });
    a.admit('p\0coder', budget, now);
    a.spend('p\0coder', budget, 120, now);
    await a.close();
    const b = new Budgets({ stateDir: state });
    expect(b.admit('p\0coder', budget, now + 1000)).toMatchObject({ ok: false, kind: 'tokens', used: 120 });
  });
  it('a corrupt counters file is reported and the counters restart (the gateway still starts)', () => {
    const state = tempDir('gatehouse-budget-');
    mkdirSync(join(state, 'inference'), { mode: 0o700 });
    writeFileSync(join(state, 'inference', 'budgets.json'), '{not json', { mode: 0o600 });
    const errors: string[] = [];
    const logger = { error: (_o: unknown, m: string) => errors.push(m) } as never;
    const b = new Budgets({ stateDir: state, logger });
    expect(errors).toEqual(['budget counters unreadable: they restart from zero']);
    expect(b.used('p\0a')).toEqual({ requests: 0, tokens: 0 });
  });
});
