/**
 * An upstream's sampling/elicitation requests are rate-limited per call and,
 * outside any call, per connector; refusals past the limit are aggregated in
 * the audit (issue #24: "sampling/elicitation requests outside any call:
 * 100,000 audit records in 5.8 s, even with deny"). On createPassthrough,
 * without a server.
 */
import { McpError, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuditEvent, AuditSink } from '../../src/audit/types.js';
import { createPassthrough } from '../../src/broker/passthrough.js';
import { silentLogger } from '../../src/log.js';
import type { ToolConnector } from '../../src/registry/schema.js';
import type { AgentChannel, CallOrigin, Route } from '../../src/upstreams/call-context.js';

const connector = (over: Record<string, unknown> = {}) =>
  ({ name: 'evil', kind: 'stdio', sampling: 'deny', elicitation: 'deny', limits: {}, ...over }) as unknown as ToolConnector;

function sink(): AuditSink & { records: AuditEvent[] } {
  const records: AuditEvent[] = [];
  return {
    records,
    append: async (e) => void records.push(e),
    assertWritable: () => undefined,
    close: async () => undefined,
  };
}

function origin(caps: ClientCapabilities = { sampling: {} }): CallOrigin {
  const channel: AgentChannel = {
    capabilities: () => caps,
    logLevel: () => undefined,
    createMessage: async () => ({ role: 'assistant', content: { type: 'text', text: 'ok' }, model: 'm' }),
    elicit: async () => ({ action: 'decline' }),
    log: () => undefined,
  };
  return { agent: 'alice', session: 's1', tool: 'evil__t', signal: new AbortController().signal, channel };
}

const outside: Route = { ok: false, reason: 'no tool call is in flight on this connector', candidates: [] };
const sampling = { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 10 };

/** Sends `n` requests at once; resolves with how each ended. */
async function flood(p: ReturnType<typeof createPassthrough>, c: ToolConnector, route: Route, n: number, method = 'sampling/createMessage') {
  const ended = await Promise.allSettled(
    Array.from({ length: n }, () => p.request({ connector: c, method, params: sampling, route, signal: new AbortController().signal, timeoutMs: 1000 })),
  );
  const errors = ended.filter((e): e is PromiseRejectedResult => e.status === 'rejected').map((e) => e.reason as McpError);
  return { ok: ended.length - errors.length, errors, limited: errors.filter((e) => (e.data as { code?: string } | undefined)?.code === 'RATE_LIMITED') };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('sampling/elicitation request floods', () => {
  it('100,000 sampling requests outside any call, with deny: the limit gets individual records, the rest one refusal record and one summary', async () => {
    const audit = sink();
    // The clock stands still: the refill during a slow run would blur the count.
    const p = createPassthrough({ audit, redact: (v) => v, logger: silentLogger, now: () => 0 });
    const c = connector();
    const t0 = performance.now();
    const r = await flood(p, c, outside, 100_000);
    const perRefusalUs = ((performance.now() - t0) * 1000) / 100_000;
    expect(r.ok).toBe(0);
    // 60 per minute (the default) are decided one by one (denied: sampling is not allowed); the rest are over the rate.
    expect(r.errors.length - r.limited.length).toBe(60);
    expect(r.limited).toHaveLength(100_000 - 60);
    expect(r.limited[0]?.code).toBe(-32600);
    expect(r.limited[0]?.message).toContain('Gatehouse refused the sampling request: over the limit of 60 sampling/elicitation requests per minute outside any call (limits.requestsPerMinute)');
    const limitedRecords = () => audit.records.filter((a) => a.rateLimited === true);
    expect(audit.records.filter((a) => a.rateLimited !== true)).toHaveLength(60);
    expect(limitedRecords()).toEqual([expect.objectContaining({ event: 'sampling.request', connector: 'evil', decision: 'deny', outcome: 'denied' })]);
    await p.close();
    const summary = limitedRecords()[1];
    expect(limitedRecords()).toHaveLength(2);
    expect(summary).toMatchObject({ event: 'sampling.request', connector: 'evil', repeated: 100_000 - 61, outsideCalls: 100_000 - 61, inCalls: 0 });
    expect(audit.records.length).toBe(62);
    console.log(`100,000 requests refused at ${perRefusalUs.toFixed(1)} µs each`);
  });

  it('per call: one call gets limits.requestsPerMinute, another call of the same connector its own, outside calls their own', async () => {
    const audit = sink();
    const p = createPassthrough({ audit, redact: (v) => v, logger: silentLogger, now: () => 0 });
    const c = connector({ sampling: 'allow', limits: { requestsPerMinute: 5 } });
    const a = { ok: true, origin: origin(), via: 'call-stream' } as const;
    const b = { ok: true, origin: origin(), via: 'call-stream' } as const;
    expect((await flood(p, c, a, 20)).ok).toBe(5);
    expect((await flood(p, c, b, 20)).ok).toBe(5);
    const out = await flood(p, c, outside, 20);
    expect(out.errors.length - out.limited.length).toBe(5);
    expect(out.limited[0]?.message).toContain('outside any call');
    await p.close();
    const summary = audit.records.find((r) => typeof r.repeated === 'number');
    expect(summary).toMatchObject({ inCalls: 30 - 1, outsideCalls: 15, repeated: 44 });
  });

  it('summaries are written each interval while a flood goes on; a quiet interval writes nothing', async () => {
    vi.useFakeTimers();
    const audit = sink();
    const p = createPassthrough({ audit, redact: (v) => v, logger: silentLogger, summaryIntervalMs: 1_000, now: () => 0 });
    const c = connector({ limits: { requestsPerMinute: 1 } });
    await flood(p, c, outside, 10);
    await flood(p, c, outside, 10, 'elicitation/create');
    await vi.advanceTimersByTimeAsync(1_000);
    const summaries = () => audit.records.filter((r) => typeof r.repeated === 'number');
    expect(summaries().map((s) => [s.event, s.repeated])).toEqual([
      ['sampling.request', 8],
      ['elicitation.request', 10 - 1],
    ]);
    // The next interval starts afresh: its first refusal has its own record again.
    await flood(p, c, outside, 3);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(summaries()).toHaveLength(3);
    const before = audit.records.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(audit.records.length).toBe(before);
    await p.close();
    expect(audit.records.length).toBe(before);
  });
});
