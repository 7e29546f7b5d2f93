/**
 * Server-to-client traffic through the gateway with real SDK clients and the
 * conformance fixture as the upstream: sampling and elicitation denied by
 * default (the upstream gets an error, the audit says so), each request routed to
 * the agent whose call made it (never another session's), the stdio fallback, and
 * upstream log messages at each session's own level.
 */
import type { Client, ClientOptions } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  type CallToolResult,
  type LoggingMessageNotification,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type HttpFixture, type TestGateway } from '../helpers/gateway.js';
import { spawnConformanceFixture, stdioConformance } from './helpers.js';

const CAPS: ClientOptions = { capabilities: { sampling: {}, elicitation: {} } };
const textOf = (r: CallToolResult) => (r.content[0]?.type === 'text' ? r.content[0].text : JSON.stringify(r.content));
const call = (c: Client, name: string, args: Record<string, unknown> = {}) => c.callTool({ name, arguments: args }) as Promise<CallToolResult>;

/** An agent whose model answers "I am <agent>" and whose user accepts; counts what it was asked. */
async function agentWithModel(t: TestGateway, agent: string, caps: ClientOptions = CAPS) {
  const c = await t.client(agent, caps);
  const asked = { sampling: [] as string[], elicitation: [] as string[] };
  if (caps.capabilities?.sampling) {
    c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      const m = req.params.messages[0]?.content;
      asked.sampling.push(m && 'text' in m ? String(m.text) : '');
      return { role: 'assistant', content: { type: 'text', text: `I am ${agent}` }, model: `${agent}-model` };
    });
    c.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.elicitation.push(req.params.message);
      return { action: 'accept', content: { username: agent, email: `${agent}@example.com` } };
    });
  }
  return { c, asked };
}

let gateways: TestGateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  gateways = [];
});
async function gateway(...args: Parameters<typeof startTestGateway>) {
  const g = await startTestGateway(...args);
  gateways.push(g);
  return g;
}

describe('sampling and elicitation are denied unless the registry allows them', () => {
  it('an upstream that asks anyway gets an error, the agent is never asked, and the audit records the denial', async () => {
    // FIXTURE_IGNORE_CAPABILITIES: the upstream asks although the gateway declared neither capability.
    const t = await gateway({ connectors: () => [stdioConformance('den', {}, { FIXTURE_IGNORE_CAPABILITIES: '1' })] });
    const { c, asked } = await agentWithModel(t, 'alice');

    const s = await call(c, 'den__test_sampling', { prompt: 'write me a poem' });
    expect(s.isError).toBe(true);
    expect(textOf(s)).toMatch(/sampling is not allowed for connector "den"/);
    const e = await call(c, 'den__test_elicitation', { message: 'your password please' });
    expect(e.isError).toBe(true);
    expect(textOf(e)).toMatch(/elicitation is not allowed for connector "den"/);
    expect(asked).toEqual({ sampling: [], elicitation: [] });

    const audit = t.audit();
    expect(audit.filter((r) => r.event === 'sampling.request')).toEqual([
      expect.objectContaining({ agent: 'alice', connector: 'den', tool: 'den__test_sampling', decision: 'deny', outcome: 'denied', reason: expect.stringMatching(/sampling: allow/) }),
    ]);
    expect(audit.filter((r) => r.event === 'elicitation.request')).toEqual([
      expect.objectContaining({ agent: 'alice', connector: 'den', tool: 'den__test_elicitation', decision: 'deny', outcome: 'denied' }),
    ]);
    // Neither the prompt nor the question is written to the pass-through records.
    // Only the call's own records (intent and outcome) carry its arguments.
    expect(JSON.stringify(audit.filter((r) => r.event !== 'tools/call' && r.event !== 'tools/call.intent'))).not.toMatch(/poem|password/);
  });

  it('a well-behaved upstream sees no sampling or elicitation capability from the gateway by default', async () => {
    const t = await gateway({ connectors: () => [stdioConformance('den')] });
    const { c, asked } = await agentWithModel(t, 'alice');
    expect(textOf(await call(c, 'den__test_sampling', { prompt: 'p' }))).toBe('the client does not support sampling');
    expect(textOf(await call(c, 'den__test_elicitation', { message: 'm' }))).toBe('the client does not support elicitation');
    expect(asked).toEqual({ sampling: [], elicitation: [] });
  });

  it('an allowed request is refused when the agent did not declare the capability', async () => {
    const t = await gateway({ connectors: () => [stdioConformance('ok', { sampling: 'allow', elicitation: 'allow' })] });
    const { c } = await agentWithModel(t, 'alice', { capabilities: {} });
    const s = await call(c, 'ok__test_sampling', { prompt: 'p' });
    expect(s.isError).toBe(true);
    expect(textOf(s)).toMatch(/the agent did not declare the sampling capability/);
    expect(t.audit().filter((r) => r.event === 'sampling.request')).toEqual([expect.objectContaining({ agent: 'alice', decision: 'deny', via: 'only-call' })]);
  });
});

describe('routing: each request reaches the agent whose call made it', () => {
  let web: HttpFixture;
  beforeAll(async () => {
    // The first 8 test_sampling calls wait for each other before asking: both sessions' calls surely overlap.
    web = await spawnConformanceFixture({ FIXTURE_SAMPLING_BARRIER: '8' });
  });
  afterAll(async () => {
    await web?.close();
  });

  it('two sessions sampling at once over HTTP: every answer comes from the caller own model, never the other', async () => {
    const t = await gateway({ connectors: () => [{ name: 'web', kind: 'http', url: web.url, prefix: '', sampling: 'allow', elicitation: 'allow' }] });
    const alice = await agentWithModel(t, 'alice');
    const bob = await agentWithModel(t, 'bob');
    const N = 4;
    const calls = [];
    for (let i = 0; i < N; i++) {
      calls.push(call(alice.c, 'test_sampling', { prompt: `alice #${i}` }).then((r) => ['alice', r] as const));
      calls.push(call(bob.c, 'test_sampling', { prompt: `bob #${i}` }).then((r) => ['bob', r] as const));
    }
    const results = await Promise.all(calls);
    for (const [who, r] of results) expect(textOf(r)).toBe(`LLM response: I am ${who}`);
    expect(alice.asked.sampling.sort()).toEqual(Array.from({ length: N }, (_, i) => `alice #${i}`));
    expect(bob.asked.sampling.sort()).toEqual(Array.from({ length: N }, (_, i) => `bob #${i}`));
    const audited = t.audit().filter((r) => r.event === 'sampling.request');
    expect(audited).toHaveLength(2 * N);
    for (const r of audited) expect(r).toMatchObject({ decision: 'allow', outcome: 'ok', via: 'call-stream', model: `${String(r.agent)}-model` });
  });

  it('over stdio, a request made while two calls are in flight is refused as ambiguous; a lone call gets its answer', async () => {
    const t = await gateway({
      // The first two test_sampling calls wait for each other: both are in flight when either asks.
      connectors: () => [stdioConformance('std', { prefix: '', sampling: 'allow' }, { FIXTURE_SAMPLING_BARRIER: '2' })],
    });
    const alice = await agentWithModel(t, 'alice');
    const bob = await agentWithModel(t, 'bob');
    const [a, b] = await Promise.all([call(alice.c, 'test_sampling', { prompt: 'a' }), call(bob.c, 'test_sampling', { prompt: 'b' })]);
    for (const r of [a, b]) {
      expect(textOf(r)).toMatch(/refused/);
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/cannot tell which agent call it belongs to: 2 tool calls are in flight/);
    }
    expect(alice.asked.sampling).toEqual([]);
    expect(bob.asked.sampling).toEqual([]);

    expect(textOf(await call(bob.c, 'test_sampling', { prompt: 'b alone' }))).toBe('LLM response: I am bob');
    expect(bob.asked.sampling).toEqual(['b alone']);
    const audited = t.audit().filter((r) => r.event === 'sampling.request');
    expect(audited.map((r) => [r.decision, r.agent ?? null])).toEqual([
      ['deny', null],
      ['deny', null],
      ['allow', 'bob'],
    ]);
    // A refused, unroutable request still names the calls it could have belonged to.
    for (const r of audited.slice(0, 2)) expect((r.candidates as Array<{ agent: string }>).map((x) => x.agent).sort()).toEqual(['alice', 'bob']);
    expect(audited[2]).toMatchObject({ via: 'only-call', tool: 'test_sampling', outcome: 'ok' });
  });
});

describe('upstream log messages during a call', () => {
  let web: HttpFixture;
  beforeAll(async () => {
    web = await spawnConformanceFixture();
  });
  afterAll(async () => {
    await web?.close();
  });

  it('go to the calling session only, at that session own level, before the result', async () => {
    const t = await gateway({ connectors: () => [{ name: 'web', kind: 'http', url: web.url, prefix: '' }] });
    const logs: Record<string, Array<LoggingMessageNotification['params']>> = { alice: [], bob: [], carol: [] };
    const clients: Record<string, Client> = {};
    for (const who of ['alice', 'bob', 'carol'] as const) {
      const c = await t.client(who);
      c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
        logs[who]?.push(n.params);
      });
      clients[who] = c;
    }
    await clients.alice?.setLoggingLevel('warning');
    await clients.bob?.setLoggingLevel('debug');
    const seenAtResult: Record<string, number> = {};
    await Promise.all(
      (['alice', 'bob'] as const).map(async (who) => {
        const c = clients[who];
        if (!c) throw new Error('no client');
        const r = await call(c, 'test_tool_with_logging');
        seenAtResult[who] = logs[who]?.length ?? -1;
        expect(r.isError).toBeFalsy();
      }),
    );
    // alice asked for warning and above: the fixture's info messages are filtered out.
    expect(logs.alice).toEqual([]);
    expect(logs.bob?.map((l) => [l.level, l.data])).toEqual([
      ['info', 'Tool execution started'],
      ['info', 'Tool processing data'],
      ['info', 'Tool execution completed'],
    ]);
    expect(seenAtResult.bob).toBe(3);
    // carol made no call: she gets nothing of anyone else's.
    expect(logs.carol).toEqual([]);
  });
});
