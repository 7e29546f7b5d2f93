import type { PolicyIndex, Rule } from './types.js';

/** Evaluation order inside the candidate list: deny, ask, allow with a limit, allow. */
function rank(r: Rule): number {
  if (r.effect === 'deny') return 0;
  if (r.effect === 'ask') return 1;
  return r.limit !== undefined ? 2 : 3;
}

const MAX_CACHED = 10_000;

/**
 * Candidate rules per (agent, connector, tool): the rules whose name globs
 * match, already in decision order. Agents and tools come from a finite
 * catalog, so the memo is small; it is cleared when it grows past a bound.
 * The memo only caches a pure function of the immutable rule list.
 */
export function buildIndex(rules: readonly Rule[]): PolicyIndex {
  const ordered = rules
    .map((r, i) => ({ r, i }))
    .sort((a, b) => rank(a.r) - rank(b.r) || a.i - b.i)
    .map((x) => x.r);
  // Rules with an exact tool name are only looked at for that tool.
  const byTool = new Map<string, Rule[]>();
  for (const r of ordered) {
    if (r.tool?.exact === true) {
      const list = byTool.get(r.tool.pattern) ?? [];
      list.push(r);
      byTool.set(r.tool.pattern, list);
    }
  }
  const anyTool = ordered.filter((r) => r.tool?.exact !== true);
  const memo = new Map<string, readonly Rule[]>();

  const compute = (agent: string, connector: string, tool: string): Rule[] => {
    const exact = byTool.get(tool) ?? [];
    const out: Rule[] = [];
    // Merge the two ordered lists, keeping decision order.
    let i = 0;
    let j = 0;
    const pos = (r: Rule) => orderOf.get(r) ?? 0;
    while (i < exact.length || j < anyTool.length) {
      const a = exact[i];
      const b = anyTool[j];
      let r: Rule;
      if (a !== undefined && (b === undefined || pos(a) < pos(b))) {
        r = a;
        i++;
      } else {
        r = b as Rule;
        j++;
      }
      if (r.tool !== null && !r.tool.test(tool)) continue;
      if (r.connector !== null && !r.connector.test(connector)) continue;
      if (r.agent !== null && !r.agent.test(agent)) continue;
      out.push(r);
    }
    return out;
  };
  const orderOf = new Map<Rule, number>(ordered.map((r, i) => [r, i]));

  return {
    candidates(agent, connector, tool) {
      // Length-prefixed, so no choice of names can make two triples share a key.
      const key = `${agent.length}:${agent}${connector.length}:${connector}${tool}`;
      const hit = memo.get(key);
      if (hit !== undefined) return hit;
      const list = compute(agent, connector, tool);
      if (memo.size >= MAX_CACHED) memo.clear();
      memo.set(key, list);
      return list;
    },
  };
}
