/**
 * The policy file format (version 1), as strict zod schemas: an unknown or
 * misspelt key is an error. Expressions, regexes, rates and durations are
 * compiled here, so their errors carry the file:line:key of the bad value.
 */
import { z } from 'zod';
import { durationField, parseRate } from '../config/duration.js';
import { globString } from '../config/glob.js';
import { compileArgGlob } from './arg-glob.js';
import { compileArgChecks, compileRegex, type ArgMatcherSpec } from './matchers.js';
import { checkPathGlob, checkUnderDir } from './path-match.js';
import { compileWhen } from './when.js';
import { ANNOTATION_KEYS, type ArgCheck, type CompiledWhen } from './types.js';

export const EffectSchema = z.enum(['allow', 'deny', 'ask']);

const SECOND = 1_000;
const DAY = 86_400_000;

const Json: z.ZodType<unknown> = z.json();

/** `path: { under: DIR | [DIR, ...], glob: G }`: filesystem paths, normalised (see path-match.ts). */
const PathMatcherSchema = z
  .strictObject({
    under: z.union([z.string(), z.array(z.string()).min(1, 'under: needs at least one directory')]).optional(),
    glob: z.string().min(1).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.under === undefined && p.glob === undefined) ctx.addIssue({ code: 'custom', message: 'empty path matcher: give under (a directory or a list) and/or glob' });
    for (const dir of p.under === undefined ? [] : Array.isArray(p.under) ? p.under : [p.under]) {
      try {
        checkUnderDir(dir);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['under'], message: (e as Error).message });
      }
    }
    if (p.glob !== undefined) {
      try {
        checkPathGlob(p.glob);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['glob'], message: (e as Error).message });
      }
    }
  });

const ArgMatcherSchema = z
  .strictObject({
    absent: z.boolean().optional(),
    equals: Json.optional(),
    in: z.array(Json).min(1, 'in: needs at least one value').optional(),
    prefix: z.string().optional(),
    glob: z
      .string()
      .min(1)
      .superRefine((s, ctx) => {
        try {
          compileArgGlob(s);
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: `glob: ${(e as Error).message}` });
        }
      })
      .optional(),
    regex: z
      .string()
      .superRefine((s, ctx) => {
        try {
          compileRegex(s);
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: `regex (RE2 syntax): ${(e as Error).message}` });
        }
      })
      .optional(),
    min: z.number().optional(),
    max: z.number().optional(),
    maxLength: z.number().int().nonnegative().optional(),
    path: PathMatcherSchema.optional(),
  })
  .superRefine((m, ctx) => {
    if (Object.keys(m).length === 0) ctx.addIssue({ code: 'custom', message: 'empty matcher: give at least one of path, equals, in, glob, prefix, regex, min, max, maxLength, absent' });
    if (m.min !== undefined && m.max !== undefined && m.min > m.max) ctx.addIssue({ code: 'custom', path: ['min'], message: 'min is greater than max' });
  })
  .transform((m): ArgCheck[] => compileArgChecks(m as ArgMatcherSpec));

const AnnotationsSchema = z.strictObject(
  Object.fromEntries(ANNOTATION_KEYS.map((k) => [k, z.boolean().optional()])) as Record<(typeof ANNOTATION_KEYS)[number], z.ZodOptional<z.ZodBoolean>>,
);

const ArgKey = z.string().regex(/^[^.]+(\.[^.]+)*$/, 'argument path: segments separated by single dots, none empty');

const PortSchema = z.number().int().min(1, 'port: 1 to 65535').max(65535, 'port: 1 to 65535');
const MethodSchema = z
  .string()
  .regex(/^[A-Za-z]{1,20}$/, 'method: an HTTP method such as GET')
  .transform((m) => m.toUpperCase())
  .refine((m) => m !== 'CONNECT', 'method: CONNECT is not a method to match: a tunnel is matched on host and port alone');

/**
 * `egress: { host, port, method?, path? }`: a connection out of a sandbox through
 * the egress proxy (see egress.ts). Host names are compared in lower case; an
 * IPv6 address is written without brackets.
 */
const EgressMatchSchema = z.strictObject({
  host: globString.superRefine((h, ctx) => {
    if (h.startsWith('[')) ctx.addIssue({ code: 'custom', message: 'host: write an IPv6 address without brackets, e.g. "::1"' });
    else if (/[/@\s]/.test(h)) ctx.addIssue({ code: 'custom', message: 'host: a host name or address only (no scheme, path, port or userinfo)' });
  }),
  port: z.union([PortSchema, z.array(PortSchema).min(1, 'port: needs at least one port')]),
  method: z.union([MethodSchema, z.array(MethodSchema).min(1, 'method: needs at least one method')]).optional(),
  path: z
    .string()
    .startsWith('/', 'path: starts with "/"')
    .superRefine((s, ctx) => {
      try {
        compileArgGlob(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `path glob: ${(e as Error).message}` });
      }
    })
    .optional(),
});

export type EgressMatchSpec = z.output<typeof EgressMatchSchema>;

const MatchSchema = z.strictObject({
  agent: globString.optional(),
  connector: globString.optional(),
  tool: globString.optional(),
  /** Model calls (inference providers): the model asked for; `connector` is then the provider. */
  model: globString.optional(),
  args: z.record(ArgKey, ArgMatcherSchema).optional(),
  annotations: AnnotationsSchema.optional(),
  /** Egress connections (the egress proxy): matched on agent or connector and this. */
  egress: EgressMatchSchema.optional(),
});

const WhenSchema = z.string().transform((s, ctx): CompiledWhen => {
  try {
    return compileWhen(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** `N/second|minute|hour|day`: a rule's limit, and a provider's budget (src/registry/inference.ts). */
export const LimitSchema = z.string().transform((s, ctx) => {
  const r = parseRate(s);
  if (r === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not a rate: write N/second, N/minute, N/hour or N/day (N >= 1)` });
    return z.NEVER;
  }
  return r;
});

export const AskSchema = z.strictObject({
  timeout: durationField({ min: SECOND, max: DAY }).optional(),
  grant: z
    .strictObject({
      ttl: durationField({ min: SECOND, max: 30 * DAY }),
      maxUses: z.number().int().min(1).max(100_000),
    })
    .optional(),
});

export const RuleSchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'rule id: letters, digits, ".", "_", "-" (at most 128)'),
    match: MatchSchema.optional(),
    when: WhenSchema.optional(),
    effect: EffectSchema,
    message: z.string().max(500).optional(),
    limit: LimitSchema.optional(),
    ask: AskSchema.optional(),
  })
  .superRefine((r, ctx) => {
    // Annotations are untrusted hints from the upstream: they may only make a decision stricter.
    if (r.match?.annotations !== undefined && r.effect === 'allow') {
      ctx.addIssue({ code: 'custom', path: ['match', 'annotations'], message: 'annotations are untrusted hints: a rule that matches on them may only deny or ask' });
    }
    if (r.match?.annotations !== undefined && Object.keys(r.match.annotations).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['match', 'annotations'], message: 'empty annotations matcher' });
    }
    if (r.match?.model !== undefined) {
      if (r.match.tool !== undefined) ctx.addIssue({ code: 'custom', path: ['match', 'model'], message: 'a rule matches tool calls (tool:) or model calls (model:), not both: write two rules' });
      for (const key of ['args', 'annotations'] as const) {
        if (r.match[key] !== undefined) ctx.addIssue({ code: 'custom', path: ['match', key], message: `${key}: model calls have no tool ${key}; match them on agent, connector (the provider) and model` });
      }
      if (r.effect === 'ask') ctx.addIssue({ code: 'custom', path: ['effect'], message: 'ask: a model call cannot wait for a human approval; use allow or deny (a budget in the provider entry limits spending)' });
    }
    if (r.match?.egress !== undefined) {
      for (const key of ['tool', 'model', 'args', 'annotations'] as const) {
        if (r.match[key] !== undefined) ctx.addIssue({ code: 'custom', path: ['match', key], message: `${key}: an egress rule matches agent or connector and egress (host, port, method, path), nothing else` });
      }
      if (r.match.agent !== undefined && r.match.connector !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['match', 'connector'], message: 'an egress connection comes from an agent or from a connector, never both: write two rules' });
      }
      if (r.when !== undefined) ctx.addIssue({ code: 'custom', path: ['when'], message: 'when: not supported on egress rules yet' });
    }
    if (r.limit !== undefined && r.effect !== 'allow') {
      ctx.addIssue({ code: 'custom', path: ['limit'], message: 'limit: only an allow rule can have a rate limit' });
    }
    if (r.ask !== undefined && r.effect !== 'ask') {
      ctx.addIssue({ code: 'custom', path: ['ask'], message: 'ask: only a rule with effect ask can have ask settings' });
    }
  });

export const PolicyFileSchema = z
  .strictObject({
    version: z.literal(1, 'version: must be 1'),
    default: EffectSchema.optional(),
    extends: z.array(z.string().min(1)).optional(),
    rules: z.array(RuleSchema).optional(),
  })
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    (f.rules ?? []).forEach((r, i) => {
      if (seen.has(r.id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id "${r.id}"` });
      seen.add(r.id);
    });
  });

export type PolicyFile = z.output<typeof PolicyFileSchema>;
export type RuleSpec = z.output<typeof RuleSchema>;
export type AskInput = z.output<typeof AskSchema>;
