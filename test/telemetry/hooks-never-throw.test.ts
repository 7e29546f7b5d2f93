/**
 * Telemetry must never fail a call: an observer (metrics) or a trace hook
 * that throws — a bug, a broken exporter — may cost the numbers or the span,
 * never the call's answer or its audit records (invariant 6: every call that
 * ran upstream has its outcome on disk).
 */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditSink } from '../../src/audit/types.js';
import { buildCatalog } from '../../src/broker/catalog.js';
import { handleToolCall, type PipelineDeps } from '../../src/broker/pipeline.js';
import { silentLogger } from '../../src/log.js';
import type { CallTrace } from '../../src/telemetry/traces.js';
import type { Upstream } from '../../src/upstreams/upstream.js';

const addTool: Tool = { name: 'add', inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } } } };
const catalog = buildCatalog([{ connector: 'fx', prefix: 'fx', filter: { allow: ['*'], deny: [] }, tools: [addTool] }]);

class MemoryAudit implements AuditSink {
  records: AuditEvent[] = [];
  assertWritable(): void {}
  async append(e: AuditEvent): Promise<void> {
    this.records.push(e);
  }
  async close(): Promise<void> {}
}

const boom = () => {
  throw new Error('telemetry bug');
};

/** A call trace whose every hook throws. */
const throwingTrace: CallTrace = {
  captureContent: true,
  tool: boom,
  policy: boom,
  upstream: boom,
  audit: boom,
  outcome: boom,
  content: boom,
};

function setup(o: { observe?: PipelineDeps['observe']; trace?: CallTrace }) {
  const audit = new MemoryAudit();
  const forwarded: string[] = [];
  const upstream = {
    connector: { kind: 'stdio', limits: {}, results: { invisible: 'flag' } },
    async call(name: string, args: Record<string, unknown>) {
      forwarded.push(name);
      return { content: [{ type: 'text', text: String((args.a as number) + (args.b as number)) }] };
    },
  } as unknown as Upstream;
  const deps: PipelineDeps = {
    catalog: () => catalog,
    upstream: () => upstream,
    authorize: async () => ({ allowed: true, decision: { effect: 'allow', ruleId: 'r', message: '' } }),
    audit,
    redact: (v) => v,
    logger: silentLogger,
    ...(o.observe ? { observe: o.observe } : {}),
  };
  const call = (name: string) => handleToolCall(deps, { agent: 'alice', session: 's1', name, args: { a: 1, b: 2 }, signal: new AbortController().signal, ...(o.trace ? { trace: o.trace } : {}) });
  return { audit, forwarded, call };
}

describe('telemetry hooks in the call path', () => {
  it('a throwing metrics observer fails neither the call nor its audit records', async () => {
    const p = setup({ observe: boom });
    expect(await p.call('fx__add')).toEqual({ content: [{ type: 'text', text: '3' }] });
    expect(p.audit.records.map((r) => r.event)).toEqual(['tools/call.intent', 'tools/call']);
    expect(p.audit.records[1]).toMatchObject({ outcome: 'ok' });
  });

  it('a throwing metrics observer does not lose the record of a refused call', async () => {
    const p = setup({ observe: boom });
    await expect(p.call('fx__nope')).rejects.toMatchObject({ code: 'TOOL_UNKNOWN' });
    expect(p.audit.records).toEqual([expect.objectContaining({ event: 'tools/call', outcome: 'rejected' })]);
  });

  it('a trace whose every hook throws fails neither the call nor its audit records', async () => {
    const p = setup({ trace: throwingTrace });
    expect(await p.call('fx__add')).toEqual({ content: [{ type: 'text', text: '3' }] });
    expect(p.forwarded).toEqual(['add']);
    expect(p.audit.records.map((r) => r.event)).toEqual(['tools/call.intent', 'tools/call']);
  });
});
