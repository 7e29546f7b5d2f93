/**
 * The metrics module without a gateway: label bounds, what each audit
 * record counts for, the exposition prom-client renders from our cells, and
 * the SIEM backlog hook.
 */
import { describe, expect, it } from 'vitest';
import { BoundedLabel, Children, NONE, OTHER, UNKNOWN } from '../../src/telemetry/labels.js';
import { GatewayMetrics, registerBacklogSource } from '../../src/telemetry/metrics.js';
import { parseExposition, pick, valueOf } from './prom-text.js';

const rendered = async (m: GatewayMetrics) => parseExposition(await m.render());

describe('label bounds', () => {
  it('a label past its cap shares _other, and keeps what it admitted', () => {
    const l = new BoundedLabel(2);
    expect(['a', 'b', 'c', 'a', 'd'].map((v) => l.value(v))).toEqual(['a', 'b', OTHER, 'a', OTHER]);
    expect(l.size).toBe(2);
  });

  it('a name the catalog does not know shares the fallback, whatever the cap', () => {
    const known = new Set(['fx__echo']);
    const l = new BoundedLabel(1000, UNKNOWN);
    expect(l.value('fx__echo', (v) => known.has(v))).toBe('fx__echo');
    expect(l.value('x'.repeat(10), (v) => known.has(v))).toBe(UNKNOWN);
    expect(l.value({ not: 'a string' }, (v) => known.has(v))).toBe(NONE);
    expect(l.size).toBe(1);
  });

  it('children are found again by their label values (one cell per label set)', () => {
    let made = 0;
    const c = new Children(() => ({ n: ++made }));
    expect(c.get('a', 'b')).toBe(c.get('a', 'b'));
    expect(c.get('a', 'c')).not.toBe(c.get('a', 'b'));
    expect(made).toBe(2);
    const none = new Children(() => ({ n: 0 }));
    expect(none.get()).toBe(none.get());
  });
});

describe('GatewayMetrics', () => {
  it('a tool call record counts once, and its durations land in cumulative buckets', async () => {
    const m = new GatewayMetrics({ processMetrics: false, knownTool: (n) => n === 'fx__echo' });
    m.toolCall({ agent: 'alice', connector: 'fx', tool: 'fx__echo', decision: 'allow', outcome: 'ok' }, 3, 1);
    m.toolCall({ agent: 'alice', connector: 'fx', tool: 'fx__echo', decision: 'allow', outcome: 'ok' }, 30, 20);
    const s = await rendered(m);
    expect(valueOf(s, 'gatehouse_tool_calls_total', { agent: 'alice', connector: 'fx', tool: 'fx__echo', decision: 'allow', outcome: 'ok' })).toBe(2);
    expect(valueOf(s, 'gatehouse_tool_call_duration_seconds_count', { connector: 'fx' })).toBe(2);
    expect(valueOf(s, 'gatehouse_tool_call_duration_seconds_sum', { connector: 'fx' })).toBeCloseTo(0.033);
    // 3 ms and 30 ms: le=0.005 holds one, le=0.05 both, +Inf both (cumulative).
    expect(valueOf(s, 'gatehouse_tool_call_duration_seconds_bucket', { connector: 'fx', le: '0.005' })).toBe(1);
    expect(valueOf(s, 'gatehouse_tool_call_duration_seconds_bucket', { connector: 'fx', le: '0.05' })).toBe(2);
    expect(valueOf(s, 'gatehouse_tool_call_duration_seconds_bucket', { connector: 'fx', le: '+Inf' })).toBe(2);
    expect(valueOf(s, 'gatehouse_tool_call_gateway_seconds_sum', { connector: 'fx' })).toBeCloseTo(0.012);
    expect(valueOf(s, 'gatehouse_tool_call_upstream_seconds_count', { connector: 'fx' })).toBe(2);
  });

  it('a call refused before it had a connector counts under tool _unknown, and a hostile record never throws', async () => {
    const m = new GatewayMetrics({ processMetrics: false, knownTool: () => true });
    m.toolCall({ agent: 'alice', tool: 'nope', outcome: 'rejected' }, 1, undefined);
    m.toolCall({ agent: { evil: true }, connector: ['x'], tool: { v: 1 }, decision: 'perhaps', outcome: 42 }, NaN, undefined);
    const s = await rendered(m);
    expect(valueOf(s, 'gatehouse_tool_calls_total', { agent: 'alice', connector: NONE, tool: UNKNOWN, decision: NONE, outcome: 'rejected' })).toBe(1);
    expect(valueOf(s, 'gatehouse_tool_calls_total', { agent: NONE, connector: NONE, tool: UNKNOWN, decision: OTHER, outcome: OTHER })).toBe(1);
    expect(pick(s, 'gatehouse_tool_call_gateway_seconds_count')).toHaveLength(0);
  });

  it('egress records count by caller, decision and outcome; a folded run of refusals counts each', async () => {
    const m = new GatewayMetrics({ processMetrics: false });
    m.audit.record({ event: 'egress.intent', agent: 'a', decision: 'allow' });
    m.audit.record({ event: 'egress', agent: 'a', decision: 'allow', outcome: 'closed' });
    m.audit.record({ event: 'egress', connector: 'gh', decision: 'deny', outcome: 'denied' });
    m.audit.record({ event: 'egress', agent: 'a', outcome: 'suppressed', count: 40 });
    const s = await rendered(m);
    expect(valueOf(s, 'gatehouse_egress_decisions_total', { caller: 'agent', decision: 'allow', outcome: 'closed' })).toBe(1);
    expect(valueOf(s, 'gatehouse_egress_decisions_total', { caller: 'connector', decision: 'deny', outcome: 'denied' })).toBe(1);
    expect(valueOf(s, 'gatehouse_egress_decisions_total', { caller: 'agent', decision: NONE, outcome: 'suppressed' })).toBe(40);
    expect(valueOf(s, 'gatehouse_egress_decisions_total')).toBe(42);
  });

  it('a model call record counts tokens; a model or provider name from a refused call is not a label', async () => {
    const m = new GatewayMetrics({ processMetrics: false, knownProvider: (p) => p === 'anth' });
    m.audit.record({ event: 'model.call', agent: 'a', provider: 'anth', model: 'claude-sim', decision: 'allow', outcome: 'ok', inputTokens: 12, outputTokens: 5, durationMs: 250 });
    m.audit.record({ event: 'model.call', agent: 'a', provider: 'anth', model: 'random-1234', decision: 'deny', outcome: 'refused' });
    m.audit.record({ event: 'model.call', agent: 'a', provider: 'made-up-7', decision: 'deny', outcome: 'refused' });
    const s = await rendered(m);
    expect(valueOf(s, 'gatehouse_model_tokens_total', { agent: 'a', provider: 'anth', type: 'input' })).toBe(12);
    expect(valueOf(s, 'gatehouse_model_tokens_total', { agent: 'a', provider: 'anth', type: 'output' })).toBe(5);
    expect(valueOf(s, 'gatehouse_model_calls_total', { provider: 'anth', model: UNKNOWN, outcome: 'refused' })).toBe(1);
    expect(valueOf(s, 'gatehouse_model_calls_total', { provider: UNKNOWN, outcome: 'refused' })).toBe(1);
    const text = await m.render();
    expect(text).not.toContain('random-1234');
    expect(text).not.toContain('made-up-7');
  });

  it('audit batches, approvals and scrape-time sources are rendered', async () => {
    const m = new GatewayMetrics({ processMetrics: false });
    m.audit.batch(8, 4096, 0.4);
    m.approval('tool', 'requested');
    m.approval('tool', 'approved', 90_000);
    m.setSources({
      sessions: () => 3,
      pendingApprovals: () => ({ tool: 2, egress: 1 }),
      upstreams: () => [{ connector: 'fx', state: 'failed', restarts: 4 }],
      audit: () => ({ backlog: 5, freeBytes: 1e9, headroomBytes: 32 << 20, low: false }),
      budgets: () => [{ provider: 'anth', agent: 'a', kind: 'tokens', used: 30, capacity: 40 }],
      sandboxes: () => {
        throw new Error('a source that fails shows nothing');
      },
    });
    const s = await rendered(m);
    expect(valueOf(s, 'gatehouse_audit_batch_records_bucket', { le: '8' })).toBe(1);
    expect(valueOf(s, 'gatehouse_audit_batch_records_bucket', { le: '4' })).toBe(0);
    expect(valueOf(s, 'gatehouse_audit_write_seconds_count')).toBe(1);
    expect(valueOf(s, 'gatehouse_approvals_total', { kind: 'tool', outcome: 'approved' })).toBe(1);
    expect(valueOf(s, 'gatehouse_approval_wait_seconds_bucket', { kind: 'tool', outcome: 'approved', le: '300' })).toBe(1);
    expect(valueOf(s, 'gatehouse_approval_wait_seconds_bucket', { kind: 'tool', outcome: 'approved', le: '60' })).toBe(0);
    expect(valueOf(s, 'gatehouse_mcp_sessions')).toBe(3);
    expect(valueOf(s, 'gatehouse_approvals_pending', { kind: 'tool' })).toBe(2);
    expect(valueOf(s, 'gatehouse_upstream_state', { connector: 'fx', state: 'failed' })).toBe(1);
    expect(valueOf(s, 'gatehouse_upstream_state', { connector: 'fx', state: 'ready' })).toBe(0);
    expect(valueOf(s, 'gatehouse_upstream_restarts_total', { connector: 'fx' })).toBe(4);
    expect(valueOf(s, 'gatehouse_audit_backlog_records')).toBe(5);
    expect(valueOf(s, 'gatehouse_audit_headroom_low')).toBe(0);
    expect(valueOf(s, 'gatehouse_model_budget_used_ratio', { agent: 'a', provider: 'anth', kind: 'tokens' })).toBeCloseTo(0.75);
    expect(pick(s, 'gatehouse_sandbox_sessions')).toHaveLength(0);
  });

  it('the process’s own metrics are read at scrape time (no timer, no GC observer)', async () => {
    const s = await rendered(new GatewayMetrics());
    expect(valueOf(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(valueOf(s, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(pick(s, 'nodejs_eventloop_lag_seconds')).toHaveLength(0);
    expect(pick(await rendered(new GatewayMetrics({ processMetrics: false })), 'process_resident_memory_bytes')).toHaveLength(0);
  });

  it('a SIEM sink publishes its backlog through registerBacklogSource, and unregisters it', async () => {
    const m = new GatewayMetrics({ processMetrics: false });
    let backlog = 7;
    const unregister = registerBacklogSource('syslog-test', () => backlog);
    expect(valueOf(await rendered(m), 'gatehouse_siem_backlog_records', { sink: 'syslog-test' })).toBe(7);
    backlog = 0;
    expect(valueOf(await rendered(m), 'gatehouse_siem_backlog_records', { sink: 'syslog-test' })).toBe(0);
    unregister();
    expect(pick(await rendered(m), 'gatehouse_siem_backlog_records', { sink: 'syslog-test' })).toHaveLength(0);
  });
});
