/**
 * The decision: a pure function of (policy, call). No I/O, never throws.
 *
 * Precedence: any matching deny wins, then ask, then allow; nothing matches →
 * the policy default. Among rules of the winning effect the first in load
 * order decides, except that an allow rule with a `limit` is preferred over
 * one without (limits only restrict).
 *
 * `when` errors fail closed: a deny or ask rule whose expression errors counts
 * as matching; an allow rule whose expression errors does not match.
 */
import { celErrorLine } from './when.js';
import { testArgRule } from './matchers.js';
import type { CallContext, Decision, Effect, Policy, Rule, ToolAnnotations } from './types.js';

type RuleMatch = { ok: true; note?: string } | { ok: false; reason: string };

function showName(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

function matchNames(rule: Rule, ctx: CallContext): RuleMatch {
  const kind = ctx.kind ?? 'tool';
  if (rule.on !== 'any' && rule.on !== kind) return { ok: false, reason: `${rule.on === 'egress' ? 'an' : 'a'} ${rule.on} rule; this is a ${kind} call` };
  if (rule.tool !== null && !rule.tool.test(ctx.tool)) return { ok: false, reason: `tool ${showName(ctx.tool)} does not match ${showName(rule.tool.pattern)}` };
  if (rule.connector !== null && !rule.connector.test(ctx.connector)) {
    return { ok: false, reason: `connector ${showName(ctx.connector)} does not match ${showName(rule.connector.pattern)}` };
  }
  if (rule.agent !== null && !rule.agent.test(ctx.agent)) return { ok: false, reason: `agent ${showName(ctx.agent)} does not match ${showName(rule.agent.pattern)}` };
  return { ok: true };
}

/** Missing annotations never satisfy a matcher. */
function matchAnnotations(rule: Rule, annotations: ToolAnnotations | undefined): RuleMatch {
  for (const [key, want] of rule.annotations) {
    const got = annotations?.[key];
    if (got !== want) return { ok: false, reason: `annotation ${key} is ${got === undefined ? 'missing' : String(got)}, rule needs ${String(want)}` };
  }
  return { ok: true };
}

/** Everything but the names (the index has checked those). */
function matchRest(rule: Rule, ctx: CallContext): RuleMatch {
  const ann = matchAnnotations(rule, ctx.annotations);
  if (!ann.ok) return ann;
  const args: Record<string, unknown> = typeof ctx.args === 'object' && ctx.args !== null ? ctx.args : {};
  let note: string | undefined;
  for (const a of rule.args) {
    const r = testArgRule(a, args, rule.effect);
    if (!r.ok) return r;
    note ??= r.note;
  }
  if (rule.when !== null) {
    let result: boolean;
    try {
      result = rule.when.evaluate(ctx);
    } catch (e) {
      const why = celErrorLine(e);
      return rule.effect === 'allow'
        ? { ok: false, reason: `when: error (${why}); an allow rule fails closed: no match` }
        : { ok: true, note: `when: error (${why}); a ${rule.effect} rule fails closed: counts as matching` };
    }
    if (!result) return { ok: false, reason: `when is false: ${rule.when.source}` };
  }
  return note === undefined ? { ok: true } : { ok: true, note };
}

function decide(rule: Rule): Decision {
  const d: Decision = { effect: rule.effect, ruleId: rule.id, message: rule.message };
  if (rule.limit !== undefined) d.limit = { ruleId: rule.id, capacity: rule.limit.capacity, perMs: rule.limit.perMs };
  if (rule.ask !== undefined) d.ask = rule.ask;
  return d;
}

function byDefault(policy: Policy): Decision {
  const d: Decision = { effect: policy.default, ruleId: null, message: `No policy rule matches this call; the default is ${policy.default}.` };
  if (policy.default === 'ask') d.ask = policy.defaultAsk;
  return d;
}

export function evaluate(policy: Policy, ctx: CallContext): Decision {
  // Candidates come in decision order (deny, ask, allow with limit, allow): the first full match decides.
  const kind = ctx.kind ?? 'tool';
  for (const rule of policy.index.candidates(ctx.agent, ctx.connector, ctx.tool)) {
    if ((rule.on === 'any' || rule.on === kind) && matchRest(rule, ctx).ok) return decide(rule);
  }
  return byDefault(policy);
}

export interface ExplainedRule {
  id: string;
  file: string;
  line: number;
  effect: Effect;
  matched: boolean;
  /** Why it did not match, or how it matched. */
  reason: string;
  /** true for the rule that made the decision. */
  decisive: boolean;
}

export interface Explanation {
  decision: Decision;
  rules: ExplainedRule[];
}

/** The decision plus, for every rule in load order, whether it matched and why (not). */
export function explain(policy: Policy, ctx: CallContext): Explanation {
  const decision = evaluate(policy, ctx);
  return {
    decision,
    rules: explainRules(policy, decision, (rule) => {
      const names = matchNames(rule, ctx);
      return names.ok ? matchRest(rule, ctx) : names;
    }),
  };
}

/** Every rule in load order against `decision`: matched or not, why, and which one decided (tool calls and egress alike). */
export function explainRules(
  policy: Policy,
  decision: { effect: string; ruleId: string | null },
  match: (rule: Rule) => RuleMatch,
): ExplainedRule[] {
  return policy.rules.map((rule): ExplainedRule => {
    const m = match(rule);
    const decisive = m.ok && rule.id === decision.ruleId;
    let reason: string;
    if (!m.ok) reason = m.reason;
    else if (decisive) reason = m.note ?? 'matches: this rule decides';
    else reason = `${m.note ?? 'matches'}; outranked by ${decision.effect} rule "${decision.ruleId ?? ''}"`;
    return { id: rule.id, file: rule.file, line: rule.line, effect: rule.effect, matched: m.ok, reason, decisive };
  });
}

/**
 * true when the tool is denied to this agent whatever the arguments and time,
 * so tools/list may hide it. Conservative: any allow or ask rule that could
 * match (its args or `when` are unknown here) keeps the tool visible. Pass the
 * same annotations that calls will be evaluated with.
 */
export function hiddenFor(policy: Policy, agent: string, connector: string, tool: string, annotations?: ToolAnnotations): boolean {
  const candidates = policy.index.candidates(agent, connector, tool).filter((r) => r.on === 'tool' || r.on === 'any');
  for (const r of candidates) {
    if (r.effect === 'deny' && r.args.length === 0 && r.when === null && matchAnnotations(r, annotations).ok) return true;
  }
  for (const r of candidates) {
    if (r.effect !== 'deny' && matchAnnotations(r, annotations).ok) return false;
  }
  return policy.default === 'deny';
}
