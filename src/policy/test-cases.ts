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
 */
import { z } from 'zod';
import { loadYamlConfig } from '../config/load-yaml.js';
import { evaluate } from './evaluate.js';
import { EffectSchema } from './schema.js';
import { itemLines } from './yaml-pos.js';
import { readFileSync } from 'node:fs';
import { ANNOTATION_KEYS, type CallContext, type Decision, type Effect, type Policy, type ToolAnnotations } from './types.js';

const CaseSchema = z.strictObject({
  name: z.string().optional(),
  agent: z.string().min(1),
  tool: z.string().min(1),
  connector: z.string().min(1).optional(),
  upstreamTool: z.string().min(1).optional(),
  args: z.record(z.string(), z.json()).optional(),
  annotations: z.strictObject(Object.fromEntries(ANNOTATION_KEYS.map((k) => [k, z.boolean().optional()])) as Record<(typeof ANNOTATION_KEYS)[number], z.ZodOptional<z.ZodBoolean>>).optional(),
  time: z.iso.datetime({ offset: true }).optional(),
  expect: EffectSchema,
  expectRule: z.string().nullable().optional(),
});

const CasesFileSchema = z.strictObject({ cases: z.array(CaseSchema).min(1, 'cases: give at least one case') });

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

/** Runs every case against the policy. Throws ConfigError when the cases file is invalid. */
export function runPolicyTests(policy: Policy, casesFile: string): PolicyTestReport {
  const spec = loadYamlConfig(casesFile, CasesFileSchema);
  const lines = itemLines(readFileSync(casesFile, 'utf8'), 'cases');
  const results = spec.cases.map((c, i): PolicyTestResult => {
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
    const decision = evaluate(policy, ctx);
    const problems: string[] = [];
    if (decision.effect !== c.expect) problems.push(`expected ${c.expect}, got ${decision.effect}`);
    if (c.expectRule !== undefined && decision.ruleId !== c.expectRule) {
      problems.push(`expected rule ${c.expectRule ?? '(default)'}, got ${decision.ruleId ?? '(default)'}`);
    }
    const r: PolicyTestResult = {
      name: c.name ?? `${c.agent} → ${c.tool}`,
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
