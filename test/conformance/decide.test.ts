/**
 * The pass-through's pure decision and its log forwarding, without a server:
 * what may reach an agent, in what form, and what is refused.
 */
import { Writable } from 'node:stream';
import type { ClientCapabilities, LoggingLevel, LoggingMessageNotification } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { createPassthrough, decide, DEFAULT_PASSTHROUGH_LIMITS } from '../../src/broker/passthrough.js';
import { createLogger, silentLogger } from '../../src/log.js';
import type { ToolConnector } from '../../src/registry/schema.js';
import { InFlightCalls, routeMessage, type AgentChannel, type CallOrigin, type Route } from '../../src/upstreams/call-context.js';

/** Calls that started one after another and are all still in flight. */
function inFlight(...calls: CallOrigin[]): InFlightCalls {
  const f = new InFlightCalls();
  for (const c of calls) f.add(c);
  return f;
}

const connector = (over: Partial<Record<'sampling' | 'elicitation', 'allow' | 'deny'>> = {}) =>
  ({ name: 'up', kind: 'stdio', sampling: 'deny', elicitation: 'deny', ...over }) as unknown as ToolConnector;

function origin(caps: ClientCapabilities | undefined, level?: LoggingLevel, logs: Array<LoggingMessageNotification['params']> = []): CallOrigin {
  const channel: AgentChannel = {
    capabilities: () => caps,
    logLevel: () => level,
    createMessage: async () => ({ role: 'assistant', content: { type: 'text', text: 'ok' }, model: 'm' }),
    elicit: async () => ({ action: 'decline' }),
    log: (p, prepare = (x) => x) => void logs.push(prepare(p)),
  };
  return { agent: 'alice', session: 's1', tool: 'up__t', signal: new AbortController().signal, channel };
}
const routed = (o: CallOrigin): Route => ({ ok: true, origin: o, via: 'call-stream' });
const sampling = { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 10 };
const form = { message: 'name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } };
const BOTH = { sampling: {}, elicitation: {} };

describe('decide', () => {
  it('denies by default, naming the registry key that would allow it', () => {
    const d = decide('sampling', connector(), sampling, routed(origin(BOTH)), DEFAULT_PASSTHROUGH_LIMITS);
    expect(d).toEqual({ allow: false, reason: 'sampling is not allowed for connector "up" (an admin can set "sampling: allow" in its registry entry)' });
    expect(decide('elicitation', connector({ sampling: 'allow' }), form, routed(origin(BOTH)), DEFAULT_PASSTHROUGH_LIMITS).allow).toBe(false);
  });

  it('forces includeContext to none: context from the agent other servers never flows to this upstream', () => {
    const d = decide('sampling', connector({ sampling: 'allow' }), { ...sampling, includeContext: 'allServers' }, routed(origin(BOTH)), DEFAULT_PASSTHROUGH_LIMITS);
    expect(d).toMatchObject({ allow: true, params: { includeContext: 'none', maxTokens: 10 } });
  });

  it('refuses sampling with tools, URL-mode elicitation, malformed and oversized requests, and unroutable ones', () => {
    const up = connector({ sampling: 'allow', elicitation: 'allow' });
    const r = routed(origin(BOTH));
    const reason = (kind: 'sampling' | 'elicitation', params: unknown, route: Route = r, limits = DEFAULT_PASSTHROUGH_LIMITS) => {
      const d = decide(kind, up, params, route, limits);
      return d.allow ? 'allowed' : d.reason;
    };
    expect(reason('sampling', { ...sampling, tools: [{ name: 'x', inputSchema: { type: 'object' } }] })).toMatch(/with tools is not supported/);
    expect(reason('elicitation', { mode: 'url', message: 'log in', url: 'https://evil.example', elicitationId: 'e1' })).toMatch(/mode "url" is not supported/);
    expect(reason('sampling', { messages: 'nope' })).toBe('invalid sampling/createMessage request');
    expect(reason('elicitation', form, r, { ...DEFAULT_PASSTHROUGH_LIMITS, elicitationBytes: 10 })).toMatch(/over the limit of 10/);
    expect(reason('sampling', sampling, { ok: false, reason: '2 tool calls are in flight', candidates: [] })).toBe('cannot tell which agent call it belongs to: 2 tool calls are in flight');
    expect(reason('sampling', sampling, routed(origin({ elicitation: {} })))).toBe('the agent did not declare the sampling capability');
    expect(reason('elicitation', form, routed(origin({ sampling: {} })))).toBe('the agent did not declare the elicitation capability');
    expect(reason('elicitation', form)).toBe('allowed');
  });
});

describe('log forwarding', () => {
  const secret = 'hunter2-secret-value';
  const pass = createPassthrough({
    audit: { append: async () => undefined, assertWritable: () => undefined, close: async () => undefined },
    redact: <T>(v: T): T => JSON.parse(JSON.stringify(v).replaceAll(secret, '[REDACTED]')) as T,
    logger: silentLogger,
    limits: { logDataBytes: 64 },
  });

  it('respects the session level, redacts secrets before truncating, and caps the size', () => {
    const logs: Array<LoggingMessageNotification['params']> = [];
    const o = origin(BOTH, 'warning', logs);
    pass.log({ connector: connector(), params: { level: 'info', data: 'filtered' }, route: routed(o) });
    pass.log({ connector: connector(), params: { level: 'error', data: `token ${secret}` }, route: routed(o) });
    pass.log({ connector: connector(), params: { level: 'critical', data: { big: 'x'.repeat(500) } }, route: routed(o) });
    expect(logs[0]).toEqual({ level: 'error', data: 'token [REDACTED]' });
    expect(logs[1]?.level).toBe('critical');
    expect(String(logs[1]?.data)).toMatch(/^\{"big":"x+… \(truncated by Gatehouse, 510 bytes\)$/);
    expect(logs).toHaveLength(2);
  });

  it('drops a message that belongs to no call rather than guessing a session: with two calls in flight, neither agent hears it', () => {
    const heardA: Array<LoggingMessageNotification['params']> = [];
    const heardB: Array<LoggingMessageNotification['params']> = [];
    const a = origin(BOTH, 'debug', heardA);
    const b = { ...origin(BOTH, 'debug', heardB), agent: 'bob', session: 's2' };
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString('utf8')), cb()) }) });
    const p = createPassthrough({ audit: { append: async () => undefined, assertWritable: () => undefined, close: async () => undefined }, redact: <T>(v: T): T => v, logger, limits: { logDataBytes: 64 } });
    const route = routeMessage({}, false, inFlight(a, b));
    expect(route).toMatchObject({ ok: false, candidates: [{ agent: 'alice' }, { agent: 'bob' }] });
    p.log({ connector: connector(), params: { level: 'emergency', data: 'for whom?' }, route });
    expect(heardA).toEqual([]);
    expect(heardB).toEqual([]);
    expect(lines.join('')).toContain('upstream log message not forwarded');
    // Control: with one call in flight, the same message reaches its agent.
    p.log({ connector: connector(), params: { level: 'emergency', data: 'for you' }, route: routeMessage({}, false, inFlight(a)) });
    expect(heardA).toEqual([{ level: 'emergency', data: 'for you' }]);
    expect(heardB).toEqual([]);
  });
});
