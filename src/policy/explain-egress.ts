/**
 * Why an egress connection gets its decision (`gatehouse policy explain
 * --egress`): the decision of `evaluateEgress` plus, for every rule in load
 * order, whether `matchEgress` matched it and why (not). Pure, like `explain`
 * for tool calls; a rule that is not an egress rule never matches.
 */
import { evaluateEgress, matchEgress } from './egress.js';
import { explainRules, type ExplainedRule } from './evaluate.js';
import type { EgressDecision, EgressRequest, Policy } from './types.js';

export interface EgressExplanation {
  decision: EgressDecision;
  rules: ExplainedRule[];
}

export function explainEgress(policy: Policy, req: EgressRequest): EgressExplanation {
  const decision = evaluateEgress(policy, req);
  return { decision, rules: explainRules(policy, decision, (rule) => matchEgress(rule, req)) };
}
