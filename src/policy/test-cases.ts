/**
 * Table-driven policy tests (`gatehouse policy test FILE`), so a team can
 * review a policy change in its own CI:
 *
 *   cases:
 *     - name: coders may file issues in our repos
 *       agent: coder-1
 *       tool: github__create_issue        # connector = text before "__" unless given
 *       args: { owner: acme, repo: web, title: Bug }
 *       expect: allow
 *       expectRule: issues-only-in-our-repos   # optional; null = the default decided
 *     - name: coders may fetch npm packages
 *       agent: coder-1                      # or connector: NAME (the caller)
 *       egress: registry.npmjs.org:443      # a CONNECT tunnel; add method + path for plain HTTP
 *       expect: allow
 */
import { z } from 'zod';
import { loadYamlConfig } from '../config/load-yaml.js';
import { evaluateEgress } from './egress.js';
import { evaluate } from './evaluate.js';
import { EffectSchema } from './schema.js';
import { itemLines } from './yaml-pos.js';
import { readFileSync } from 'node:fs';
import { ANNOTATION_KEYS, type CallContext, type Decision, type EgressRequest, type Effect, type Policy, type ToolAnnotations } from './types.js';

/**
 * Reads an egress case's "host:port" exactly as the egress proxy does
 * (src/egress/target.ts `parseAuthority`, which the caller hands in: the
 * policy room sits below the egress room), so a case decides on the host the
 * proxy would (lower case, no trailing dot, canonical IP).
 */
export type EgressTargetParser = (s: string) => { ok: true; value: { host: string; port: number } } | { ok: false; reason: string };

const TOOL_ONLY = ['upstreamTool', 'args', 'annotations', 'time'] as const;

function caseSchema(parseTarget: EgressTargetParser | undefined) {
  return z
    .strictObject({
      name: z.string().optional(),
      agent: z.string().min(1).optional(),
      tool: z.string().min(1).optional(),
      /** An egress connection instead of a tool call: "host:port", as the proxy reads a CONNECT target. */
      egress: z.string().min(1).optional(),
      method: z
        .string()
        .regex(/^[A-Za-z]{1,20}$/, 'method: an HTTP method such as GET')
        .transform((m) => m.toUpperCase())
        .refine((m) => m !== 'CONNECT', 'method: leave out method and path for a CONNECT tunnel')
        .optional(),
      path: z
        .string()
        .regex(/^\/[^\s?#\x00-\x1f\x7f]*$/, 'path: starts with "/"; no spaces, controls, "?" or "#" (the proxy matches the path without the query)')
        .optional(),
      connector: z.string().min(1).optional(),
      upstreamTool: z.string().min(1).optional(),
      args: z.record(z.string(), z.json()).optional(),
      annotations: z.strictObject(Object.fromEntries(ANNOTATION_KEYS.map((k) => [k, z.boolean().optional()])) as Record<(typeof ANNOTATION_KEYS)[number], z.ZodOptional<z.ZodBoolean>>).optional(),
      time: z.iso.datetime({ offset: true }).optional(),
      expect: EffectSchema,
      expectRule: z.string().nullable().optional(),
    })
    .superRefine((c, ctx) => {
      const issue = (key: string, message: string): void => ctx.addIssue({ code: 'custom', path: [key], message });
      if ((c.tool === undefined) === (c.egress === undefined)) {
        issue('tool', 'a case is a tool call (tool: NAME) or an egress connection (egress: "host:port"): give one of them');
        return;
      }
      if (c.tool !== undefined) {
        if (c.agent === undefined) issue('agent', 'agent: required for a tool call');
        for (const key of ['method', 'path'] as const) if (c[key] !== undefined) issue(key, `${key}: only for an egress case`);
        return;
      }
      for (const key of TOOL_ONLY) if (c[key] !== undefined) issue(key, `${key}: only for a tool call (egress rules match the caller, host, port, method and path)`);
      if ((c.agent === undefined) === (c.connector === undefined)) issue('agent', 'an egress case comes from agent: NAME or from connector: NAME, one of them');
      if ((c.method === undefined) !== (c.path === undefined)) issue('method', 'method and path go together (plain HTTP); leave both out for a CONNECT tunnel');
      if (parseTarget === undefined) issue('egress', 'egress cases cannot be read here (no target parser was given)');
      else {
        const t = parseTarget(c.egress as string);
        if (!t.ok) issue('egress', `egress: not host:port (${t.reason}); e.g. registry.npmjs.org:443`);
      }
    });
}

type Case = z.output<ReturnType<typeof caseSchema>>;

const casesFileSchema = (parseTarget: EgressTargetParser | undefined) =>
  z.strictObject({ cases: z.array(caseSchema(parseTarget)).min(1, 'cases: give at least one case') });

/** "github__create_issue" → connector "github", upstream tool "create_issue" (the catalog's namespacing). */
export function splitToolName(tool: string): { connector: string; upstreamTool: string } {
  const i = tool.indexOf('__');
  return i <= 0 ? { connector: '', upstreamTool: tool } : { connector: tool.slice(0, i), upstreamTool: tool.slice(i + 2) };
}

export interface PolicyTestResult {
  name: string;
  /** Line of the case in the cases file. */
  line: number;
  ok: boolean;
  expect: Effect;
  expectRule?: string | null;
  decision: Decision;
  /** Why it failed (empty when ok). */
  problem: string;
}

export interface PolicyTestReport {
  file: string;
  passed: number;
  failed: number;
  results: PolicyTestResult[];
}

function toolDecision(policy: Policy, c: Case & { tool: string; agent: string }): Decision {
  const split = splitToolName(c.tool);
  const ctx: CallContext = {
    agent: c.agent,
    connector: c.connector ?? split.connector,
    tool: c.tool,
    upstreamTool: c.upstreamTool ?? split.upstreamTool,
    args: (c.args ?? {}) as Record<string, unknown>,
    time: c.time === undefined ? new Date() : new Date(c.time),
  };
  if (c.annotations !== undefined) {
    ctx.annotations = Object.fromEntries(Object.entries(c.annotations).filter(([, v]) => typeof v === 'boolean')) as ToolAnnotations;
  }
  return evaluate(policy, ctx);
}

/** The schema has checked the target with `parseTarget` and that exactly one caller is given. */
function egressDecision(policy: Policy, c: Case & { egress: string }, parseTarget: EgressTargetParser): Decision {
  const t = parseTarget(c.egress);
  if (!t.ok) throw new Error(`egress case target was not checked: ${t.reason}`);
  const req: EgressRequest = {
    caller: c.agent !== undefined ? { kind: 'agent', name: c.agent } : { kind: 'connector', name: c.connector ?? '' },
    host: t.value.host,
    port: t.value.port,
  };
  if (c.method !== undefined && c.path !== undefined) {
    req.method = c.method;
    req.path = c.path;
  }
  return evaluateEgress(policy, req);
}

/**
 * Runs every case against the policy. Throws ConfigError when the cases file
 * is invalid. Egress cases need `parseTarget` (see EgressTargetParser).
 */
export function runPolicyTests(policy: Policy, casesFile: string, parseTarget?: EgressTargetParser): PolicyTestReport {
  const spec = loadYamlConfig(casesFile, casesFileSchema(parseTarget));
  const lines = itemLines(readFileSync(casesFile, 'utf8'), 'cases');
  const results = spec.cases.map((c, i): PolicyTestResult => {
    const egress = c.egress !== undefined && parseTarget !== undefined;
    const decision = egress
      ? egressDecision(policy, { ...c, egress: c.egress as string }, parseTarget)
      : toolDecision(policy, { ...c, tool: c.tool ?? '', agent: c.agent ?? '' });
    const problems: string[] = [];
    if (decision.effect !== c.expect) problems.push(`expected ${c.expect}, got ${decision.effect}`);
    if (c.expectRule !== undefined && decision.ruleId !== c.expectRule) {
      problems.push(`expected rule ${c.expectRule ?? '(default)'}, got ${decision.ruleId ?? '(default)'}`);
    }
    const r: PolicyTestResult = {
      name: c.name ?? `${c.agent ?? c.connector ?? ''} → ${c.tool ?? c.egress ?? ''}`,
      line: lines[i] ?? 0,
      ok: problems.length === 0,
      expect: c.expect,
      decision,
      problem: problems.join('; '),
    };
    if (c.expectRule !== undefined) r.expectRule = c.expectRule;
    return r;
  });
  const passed = results.filter((r) => r.ok).length;
  return { file: casesFile, passed, failed: results.length - passed, results };
}
