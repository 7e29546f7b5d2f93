/**
 * Why an egress connection gets its decision (`gatehouse policy explain
 * --egress`): the decision of `evaluateEgress` plus, for every rule in load
 * order, whether `matchEgress` matched it and why (not). Pure, like `explain`
 * for tool calls; a rule that is not an egress rule never matches.
 */
import { evaluateEgress, matchEgress } from './egress.js';
import type { ExplainedRule } from './evaluate.js';
import type { EgressDecision, EgressRequest, Policy } from './types.js';

export interface EgressExplanation {
  decision: EgressDecision;
  rules: ExplainedRule[];
}

export function explainEgress(policy: Policy, req: EgressRequest): EgressExplanation {
  const decision = evaluateEgress(policy, req);
  const rules = policy.rules.map((rule): ExplainedRule => {
    const m = matchEgress(rule, req);
    const decisive = m.ok && rule.id === decision.ruleId;
    let reason: string;
    if (!m.ok) reason = m.reason;
    else if (decisive) reason = m.note ?? 'matches: this rule decides';
    else reason = `${m.note ?? 'matches'}; outranked by ${decision.effect} rule "${decision.ruleId ?? ''}"`;
    return { id: rule.id, file: rule.file, line: rule.line, effect: rule.effect, matched: m.ok, reason, decisive };
  });
  return { decision, rules };
}
