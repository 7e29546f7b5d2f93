/**
 * The Policy and Tools pages' own data: the files in force and the last
 * reload, the explain playground (`gatehouse policy explain` as JSON), and
 * each exposed tool's decision for one agent. Explaining is the policy's
 * pure `explain`; nothing here decides anything itself.
 */
import { relative } from 'node:path';
import { Hono } from 'hono';
import { z } from 'zod';
import type { Gateway } from '../broker/gateway.js';
import { hintsOf } from '../broker/catalog.js';
import { GatehouseError } from '../errors.js';
import { explain, type ExplainedRule } from '../policy/evaluate.js';
import type { PolicyChange, PolicyStore } from '../policy/store.js';
import { splitToolName } from '../policy/test-cases.js';
import { ANNOTATION_KEYS, type CallContext, type ToolAnnotations } from '../policy/types.js';
import { adminBody } from '../server/json-body.js';

const Annotations = z.strictObject(Object.fromEntries(ANNOTATION_KEYS.map((k) => [k, z.boolean().optional()])) as Record<(typeof ANNOTATION_KEYS)[number], z.ZodOptional<z.ZodBoolean>>);

const ExplainBody = z.strictObject({
  agent: z.string().min(1).max(200),
  tool: z.string().min(1).max(300),
  connector: z.string().max(200).optional(),
  upstreamTool: z.string().max(300).optional(),
  args: z.record(z.string(), z.unknown()).optional(),
  annotations: Annotations.optional(),
  time: z.string().max(64).optional(),
});

export interface LastReload {
  time: string;
  ok: boolean;
  /** true until the first reload: the policy loaded at start. */
  initial?: boolean;
  error?: string;
  changed?: string[];
  digest: string;
}

export function consolePolicyRoutes(policies: PolicyStore, gateway: Gateway): { routes: Hono; close(): void } {
  let last: LastReload = { time: new Date().toISOString(), ok: true, initial: true, digest: policies.current().digest };
  const unwatch = policies.watch((ev: PolicyChange) => {
    last = { time: new Date().toISOString(), ok: ev.ok, digest: ev.digest, changed: ev.changed.map((f) => relative(policies.dir, f)), ...(ev.error !== undefined ? { error: ev.error } : {}) };
  });
  const rel = (rules: ExplainedRule[]) => rules.map((r) => ({ ...r, file: relative(policies.dir, r.file) }));

  const r = new Hono();
  r.get('/policy', (c) => {
    const p = policies.current();
    const files = p.files.map((f) => ({ file: relative(policies.dir, f), rules: p.rules.filter((x) => x.file === f).length }));
    return c.json({ dir: policies.dir, default: p.default, digest: p.digest, rules: p.rules.length, files, warnings: p.warnings, lastReload: last });
  });

  r.post('/policy/explain', async (c) => {
    const b = await adminBody(c.req, ExplainBody);
    const time = b.time === undefined || b.time === '' ? new Date() : new Date(b.time);
    if (Number.isNaN(time.getTime())) throw new GatehouseError('USAGE', `time: "${b.time ?? ''}" is not a date (use ISO 8601, e.g. 2025-01-06T09:00:00Z)`);
    const split = splitToolName(b.tool);
    const ctx: CallContext = { agent: b.agent, connector: b.connector || split.connector, tool: b.tool, upstreamTool: b.upstreamTool || split.upstreamTool, args: b.args ?? {}, time };
    if (b.annotations !== undefined) ctx.annotations = b.annotations as ToolAnnotations;
    const ex = explain(policies.current(), ctx);
    return c.json({ call: { ...ctx, time: time.toISOString() }, decision: ex.decision, rules: rel(ex.rules) });
  });

  // Each exposed tool's decision for `agent`, called with no arguments (a rule on arguments may decide a real call otherwise).
  r.get('/tools/explain', (c) => {
    const agent = c.req.query('agent') ?? '';
    if (agent === '' || agent.length > 200) throw new GatehouseError('USAGE', 'agent is required (1-200 characters)');
    const policy = policies.current();
    const time = new Date();
    const tools = gateway.catalog.sorted.map((e) => {
      const annotations = hintsOf(e.tool.annotations);
      const ctx: CallContext = { agent, connector: e.connector, tool: e.name, upstreamTool: e.upstreamName, args: {}, time, ...(annotations ? { annotations } : {}) };
      const ex = explain(policy, ctx);
      return { name: e.name, connector: e.connector, upstreamName: e.upstreamName, description: e.tool.description ?? '', decision: ex.decision, rules: rel(ex.rules.filter((x) => x.matched)) };
    });
    return c.json({ agent, tools, notExposed: gateway.catalog.problems });
  });

  return { routes: r, close: unwatch };
}
