/**
 * A call that ran upstream always has its record, whatever shape its result
 * had (issue #24): a result nested 5,000 deep, a cyclic one, one holding a
 * number JSON cannot carry, one the redactor chokes on, or a huge error
 * message. The agent gets a clear tool error and the record says why; the
 * pipeline runs against the real audit writer, so the record is also bounded.
 */
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { MAX_RECORD_BYTES } from '../../src/audit/bound.js';
import type { AuditRecord } from '../../src/audit/types.js';
import { verifyAudit } from '../../src/audit/verify.js';
import type { Catalog, CatalogEntry } from '../../src/broker/catalog.js';
import { MAX_RESULT_DEPTH, handleToolCall, resultProblem, type PipelineDeps } from '../../src/broker/pipeline.js';
import { GatehouseError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { Upstream } from '../../src/upstreams/upstream.js';
import { lines, openLog, tempState } from '../audit/helpers.js';

const entry: CatalogEntry = { name: 'evil__get', connector: 'evil', upstreamName: 'get', tool: { name: 'evil__get', inputSchema: { type: 'object' } } };
const catalog: Catalog = { byName: new Map([[entry.name, entry]]), sorted: [entry], problems: [] };

function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

/** Calls `evil__get` once through the pipeline, its upstream answering with `answer()`, against a real audit log. */
async function callWith(answer: () => CallToolResult, redact: PipelineDeps['redact'] = (v) => v) {
  const { dir } = tempState();
  const audit = await openLog(dir);
  let ran = 0;
  const upstream = {
    connector: { limits: {}, results: { invisible: 'flag' } },
    async call(): Promise<CallToolResult> {
      ran++;
      return answer();
    },
  } as unknown as Upstream;
  const deps: PipelineDeps = {
    catalog: () => catalog,
    upstream: () => upstream,
    authorize: async () => ({ allowed: true, decision: { effect: 'allow', ruleId: 'allow-all', message: '' } }),
    audit,
    redact,
    logger: silentLogger,
  };
  const result = await handleToolCall(deps, { agent: 'alice', session: 's1', name: 'evil__get', args: {}, signal: new AbortController().signal });
  await audit.close();
  const raw = lines(join(dir, 'audit.jsonl'));
  const recs = raw.map((l) => JSON.parse(l) as AuditRecord);
  expect((await verifyAudit(dir)).problems).toEqual([]);
  for (const l of raw) expect(Buffer.byteLength(l) + 1).toBeLessThanOrEqual(MAX_RECORD_BYTES);
  const intent = recs.find((r) => r.event === 'tools/call.intent');
  const outcomes = recs.filter((r) => r.event === 'tools/call');
  // Exactly one outcome for the executed call, linked to its intent.
  expect(ran).toBe(1);
  expect(outcomes).toHaveLength(1);
  expect(outcomes[0]?.call).toBe(intent?.call);
  return { result, outcome: outcomes[0] as AuditRecord };
}

const textOf = (r: CallToolResult) => (r.content[0] as { text: string }).text;

describe('a hostile result the gateway cannot hand on', () => {
  it('structuredContent nested 5,000 deep: a tool error naming the depth, and the record says so (no -32603, no missing record)', async () => {
    const { result, outcome } = await callWith(() => ({ content: [], structuredContent: nested(5_000) }));
    expect(result).toEqual({
      content: [{ type: 'text', text: `the connector's result is nested deeper than ${MAX_RESULT_DEPTH} levels` }],
      isError: true,
      _meta: { 'gatehouse/error': 'UPSTREAM_PROTOCOL' },
    });
    expect(outcome).toMatchObject({ agent: 'alice', tool: 'evil__get', connector: 'evil', outcome: 'error', error: { code: 'UPSTREAM_PROTOCOL', message: "the connector's result is nested deeper than 100 levels" } });
    expect(outcome).not.toHaveProperty('resultBytes');
  });

  it('a cyclic result (an in-process upstream) is refused the same way, and recorded', async () => {
    const cyclic: Record<string, unknown> = { type: 'text', text: 'x' };
    cyclic.self = cyclic;
    const { result, outcome } = await callWith(() => ({ content: [cyclic as never] }));
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/^the connector's result (is nested deeper than 100 levels|could not be serialized)/);
    expect(outcome).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_PROTOCOL' } });
  });

  it('±Infinity or NaN in a result is not silently null for the agent: a tool error, recorded', async () => {
    for (const bad of [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN]) {
      const { result, outcome } = await callWith(() => ({ content: [], structuredContent: { deep: [{ n: bad }] } }));
      expect(textOf(result)).toBe(`the connector's result holds a number JSON cannot carry (${bad})`);
      expect(outcome).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_PROTOCOL', message: `the connector's result holds a number JSON cannot carry (${bad})` } });
    }
  });

  it('a result the redactor throws on is not handed on (it was not checked for secrets), and is recorded', async () => {
    const redact = <T,>(v: T): T => {
      if (typeof v === 'object' && v !== null && 'content' in v && !('event' in v)) throw new RangeError('Maximum call stack size exceeded');
      return v;
    };
    const { result, outcome } = await callWith(() => ({ content: [{ type: 'text', text: 'sk-secret' }] }), redact);
    expect(textOf(result)).toBe("the connector's result could not be checked for secrets (Maximum call stack size exceeded)");
    expect(JSON.stringify(result)).not.toContain('sk-secret');
    expect(outcome).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_PROTOCOL', message: "the connector's result could not be checked for secrets (Maximum call stack size exceeded)" } });
  });

  it('a result that cannot be serialized (a throwing toJSON) is a tool error, recorded', async () => {
    const { result, outcome } = await callWith(() => ({ content: [], structuredContent: { toJSON: () => { throw new Error('nope'); } } as never }));
    expect(textOf(result)).toBe("the connector's result could not be serialized (nope)");
    expect(outcome).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_PROTOCOL' } });
  });
});

describe('results the gateway hands on', () => {
  it('nested exactly MAX_RESULT_DEPTH deep is fine, and its size is recorded', async () => {
    const { result, outcome } = await callWith(() => ({ content: [], structuredContent: nested(MAX_RESULT_DEPTH - 1) }));
    expect(result.isError).toBeUndefined();
    expect(outcome).toMatchObject({ outcome: 'ok', resultBytes: Buffer.byteLength(JSON.stringify(result)) });
  });

  it('resultProblem counts the result object itself as level 1, and visits a shared object once', () => {
    expect(resultProblem(nested(MAX_RESULT_DEPTH))).toBeUndefined();
    expect(resultProblem(nested(MAX_RESULT_DEPTH + 1))).toBe("the connector's result is nested deeper than 100 levels");
    expect(resultProblem([[1, 2, 'x', null, true]])).toBeUndefined();
    expect(resultProblem(Number.NaN)).toBe("the connector's result holds a number JSON cannot carry (NaN)");
    // 40 levels of a value shared twice per level: 2^40 paths, one object per level.
    let dag: unknown = { leaf: 1 };
    for (let i = 0; i < 40; i++) dag = { l: dag, r: dag };
    expect(resultProblem(dag)).toBeUndefined();
  });
});

describe('a hostile upstream\'s huge error message', () => {
  it('3 MB of error text: the agent gets it, the record holds it cut to 1 KiB with its size noted', async () => {
    const { dir } = tempState();
    const audit = await openLog(dir);
    const upstream = {
      connector: { limits: {}, results: { invisible: 'flag' } },
      async call(): Promise<CallToolResult> {
        throw new GatehouseError('UPSTREAM_ERROR', 'E'.repeat(3_000_000));
      },
    } as unknown as Upstream;
    const deps: PipelineDeps = {
      catalog: () => catalog,
      upstream: () => upstream,
      authorize: async () => ({ allowed: true, decision: { effect: 'allow', ruleId: 'allow-all', message: '' } }),
      audit,
      redact: (v) => v,
      logger: silentLogger,
    };
    const result = await handleToolCall(deps, { agent: 'alice', session: 's1', name: 'evil__get', args: {}, signal: new AbortController().signal });
    await audit.close();
    expect(textOf(result)).toHaveLength(3_000_000);
    const recs = lines(join(dir, 'audit.jsonl')).map((l) => JSON.parse(l) as AuditRecord);
    const outcome = recs.find((r) => r.event === 'tools/call');
    expect(outcome).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_ERROR', message: `${'E'.repeat(1024)}…[truncated, 3000000 bytes]` } });
    expect(outcome).not.toHaveProperty('bounded');
  });
});
