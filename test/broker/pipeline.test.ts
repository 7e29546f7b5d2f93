/**
 * The call pipeline's order and fail-closed behaviour, stage by stage, with an
 * in-memory audit sink and a stand-in upstream that records what reached it.
 */
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditSink } from '../../src/audit/types.js';
import type { Authorize } from '../../src/broker/authorize.js';
import { buildCatalog } from '../../src/broker/catalog.js';
import { handleToolCall, lookupTool, toolError, type PipelineDeps } from '../../src/broker/pipeline.js';
import { GatehouseError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { Upstream } from '../../src/upstreams/upstream.js';

const addTool: Tool = {
  name: 'add',
  inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'], additionalProperties: false },
};
const catalog = buildCatalog([{ connector: 'fx', prefix: 'fx', filter: { allow: ['*'], deny: [] }, tools: [addTool] }]);

class MemoryAudit implements AuditSink {
  records: AuditEvent[] = [];
  broken = false;
  assertWritable(): void {
    if (this.broken) throw new GatehouseError('AUDIT_UNAVAILABLE', 'disk full');
  }
  async append(e: AuditEvent): Promise<void> {
    this.assertWritable();
    this.records.push(e);
  }
  async close(): Promise<void> {}
}

function setup(opts: { authorize?: Authorize; result?: CallToolResult | Error } = {}) {
  const audit = new MemoryAudit();
  const forwarded: Array<{ name: string; args: unknown }> = [];
  const upstream = {
    connector: { limits: {}, results: { invisible: 'flag' } },
    async call(name: string, args: Record<string, unknown>) {
      forwarded.push({ name, args });
      if (opts.result instanceof Error) throw opts.result;
      return opts.result ?? { content: [{ type: 'text', text: String((args.a as number) + (args.b as number)) }] };
    },
  } as unknown as Upstream;
  const allowAll: Authorize = async () => ({ allowed: true, decision: { effect: 'allow', ruleId: 'r-allow', message: '' } });
  const deps: PipelineDeps = {
    catalog: () => catalog,
    upstream: (c) => (c === 'fx' ? upstream : undefined),
    authorize: opts.authorize ?? allowAll,
    audit,
    redact: (v) => v,
    logger: silentLogger,
  };
  const call = (name: string, args: unknown) => handleToolCall(deps, { agent: 'alice', session: 's1', name, args, signal: new AbortController().signal });
  return { audit, forwarded, call };
}

describe('stage 1: catalog lookup', () => {
  it('finds an exposed tool and refuses anything else with TOOL_UNKNOWN', () => {
    expect(lookupTool(catalog, 'fx__add').upstreamName).toBe('add');
    expect(() => lookupTool(catalog, 'add')).toThrow(GatehouseError);
    expect(() => lookupTool(catalog, 'x'.repeat(10_000))).toThrow(/^Unknown tool: x{100}$/);
  });

  it('an unknown tool is audited as rejected and never forwarded', async () => {
    const p = setup();
    await expect(p.call('fx__nope', {})).rejects.toMatchObject({ code: 'TOOL_UNKNOWN' });
    expect(p.forwarded).toEqual([]);
    expect(p.audit.records).toEqual([expect.objectContaining({ event: 'tools/call', agent: 'alice', tool: 'fx__nope', outcome: 'rejected' })]);
  });
});

describe('stage 2: argument check', () => {
  it('invalid arguments are refused before policy and never forwarded', async () => {
    let asked = false;
    const p = setup({
      authorize: async () => {
        asked = true;
        return { allowed: true, decision: { effect: 'allow', ruleId: 'x', message: '' } };
      },
    });
    await expect(p.call('fx__add', { a: 1 })).rejects.toMatchObject({ code: 'ARGS_INVALID' });
    expect(asked).toBe(false);
    expect(p.forwarded).toEqual([]);
  });
});

describe('stage 3: policy', () => {
  it('a deny is a tool error naming the rule, audited with the decision, never forwarded', async () => {
    const p = setup({ authorize: async () => ({ allowed: false, decision: { effect: 'deny', ruleId: 'no-adding', message: 'no' }, code: 'POLICY_DENIED', message: 'adding is not allowed' }) });
    const r = await p.call('fx__add', { a: 1, b: 2 });
    expect(r).toEqual(toolError('adding is not allowed (denied by rule "no-adding")', 'POLICY_DENIED'));
    expect(p.forwarded).toEqual([]);
    expect(p.audit.records).toEqual([expect.objectContaining({ decision: 'deny', rule: 'no-adding', outcome: 'denied' })]);
  });

  it('the policy default is named when no rule decided', async () => {
    const p = setup({ authorize: async () => ({ allowed: false, decision: { effect: 'deny', ruleId: null, message: 'no rule' }, code: 'POLICY_DENIED', message: 'no rule' }) });
    const r = await p.call('fx__add', { a: 1, b: 2 });
    expect((r.content[0] as { text: string }).text).toBe('no rule (denied by the policy default)');
  });

  it('policy sees the exposed name, the connector, the upstream name and the arguments', async () => {
    let seen: unknown;
    const p = setup({
      authorize: async (ctx) => {
        seen = ctx;
        return { allowed: true, decision: { effect: 'allow', ruleId: 'r', message: '' } };
      },
    });
    await p.call('fx__add', { a: 1, b: 2 });
    expect(seen).toMatchObject({ agent: 'alice', connector: 'fx', tool: 'fx__add', upstreamTool: 'add', args: { a: 1, b: 2 } });
  });
});

describe('stage 4: upstream and audit', () => {
  it('an allowed call is forwarded under the upstream name, with an intent record before and its outcome after, linked by call id', async () => {
    const p = setup();
    expect(await p.call('fx__add', { a: 1, b: 2 })).toEqual({ content: [{ type: 'text', text: '3' }] });
    expect(p.forwarded).toEqual([{ name: 'add', args: { a: 1, b: 2 } }]);
    const call = expect.stringMatching(/^[0-9a-f-]{36}$/);
    expect(p.audit.records).toEqual([
      expect.objectContaining({ event: 'tools/call.intent', call, connector: 'fx', upstreamTool: 'add', args: { a: 1, b: 2 }, decision: 'allow', rule: 'r-allow' }),
      expect.objectContaining({ event: 'tools/call', call, connector: 'fx', upstreamTool: 'add', decision: 'allow', rule: 'r-allow', outcome: 'ok' }),
    ]);
    expect(p.audit.records[0]?.call).toBe(p.audit.records[1]?.call);
    expect(p.audit.records[0]).not.toHaveProperty('outcome');
  });

  it('an upstream failure becomes a tool error with its code, audited', async () => {
    const p = setup({ result: new GatehouseError('UPSTREAM_TIMEOUT', 'connector "fx" did not answer within 5 ms') });
    const r = await p.call('fx__add', { a: 1, b: 2 });
    expect(r).toEqual(toolError('connector "fx" did not answer within 5 ms', 'UPSTREAM_TIMEOUT'));
    expect(p.audit.records[1]).toMatchObject({ outcome: 'timeout', error: { code: 'UPSTREAM_TIMEOUT' } });
  });

  it('an unexpected upstream exception is an INTERNAL tool error (not a crash of the session)', async () => {
    const p = setup({ result: new TypeError('boom') });
    const r = await p.call('fx__add', { a: 1, b: 2 });
    expect(r.isError).toBe(true);
    expect(r._meta).toEqual({ 'gatehouse/error': 'INTERNAL' });
  });

  it("an internal error's text (a path, a stack) never reaches the agent; the record keeps it", async () => {
    const leak = new Error('ENOENT: /home/admin/.gatehouse/keys/secret.jwk\n    at Object.openSync (node:fs:573:3)');
    const p = setup({ result: leak });
    const r = await p.call('fx__add', { a: 1, b: 2 });
    expect(JSON.stringify(r)).not.toMatch(/home\/admin|openSync|ENOENT/);
    expect(r).toEqual(toolError('Internal gateway error', 'INTERNAL'));
    expect(p.audit.records[1]).toMatchObject({ error: { code: 'INTERNAL', message: expect.stringContaining('/home/admin') } });
  });

  it('fails closed when the audit log cannot be written: refused, never forwarded', async () => {
    const p = setup();
    p.audit.broken = true;
    await expect(p.call('fx__add', { a: 1, b: 2 })).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(p.forwarded).toEqual([]);
  });
});
