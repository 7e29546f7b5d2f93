import { relative } from 'node:path';
import type { ExplainedRule } from '../policy/evaluate.js';
import { table } from './command.js';

/** `policy explain`'s rule-by-rule table (tool calls and egress): the deciding rule starred, files relative to the policy folder. */
export function explainedRulesTable(rules: readonly ExplainedRule[], dir: string): string {
  return table(
    ['RULE', 'EFFECT', 'MATCHED', 'WHERE', 'REASON'],
    rules.map((r) => [r.id, r.effect, r.decisive ? 'yes *' : r.matched ? 'yes' : 'no', `${relative(dir, r.file)}:${r.line}`, r.reason]),
  );
}
