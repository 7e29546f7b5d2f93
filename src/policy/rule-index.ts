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
 * match, already in decision order. Two memos: per (connector, tool) the rules
 * whose tool and connector globs match (tools come from a finite catalog), and
 * per (agent, connector, tool) that list filtered by agent glob. Each memo is
 * cleared when it grows past a bound. They only cache a pure function of the
 * immutable rule list.
 */
export function buildIndex(rules: readonly Rule[]): PolicyIndex {
  const ordered = rules
    .map((r, i) => ({ r, i }))
    .sort((a, b) => rank(a.r) - rank(b.r) || a.i - b.i)
    .map((x) => x.r);
  const orderOf = new Map<Rule, number>(ordered.map((r, i) => [r, i]));
  // Rules by the literal start of their tool pattern: an exact name is its own
  // key; a glob is found under its leading plain characters ("" when none or no tool).
  const byExact = new Map<string, Rule[]>();
  const byPrefix = new Map<string, Rule[]>();
  for (const r of ordered) {
    const [map, key] = r.tool === null ? [byPrefix, ''] : r.tool.exact ? [byExact, r.tool.pattern] : [byPrefix, r.tool.prefix];
    const list = map.get(key) ?? [];
    list.push(r);
    map.set(key, list);
  }
  let longestPrefix = 0;
  for (const k of byPrefix.keys()) longestPrefix = Math.max(longestPrefix, k.length);
  const toolMemo = new Map<string, readonly Rule[]>();
  const fullMemo = new Map<string, readonly Rule[]>();

  const forTool = (connector: string, tool: string): readonly Rule[] => {
    const key = `${connector.length}:${connector}${tool}`;
    const hit = toolMemo.get(key);
    if (hit !== undefined) return hit;
    const found: Rule[] = [...(byExact.get(tool) ?? [])];
    for (let n = 0; n <= Math.min(tool.length, longestPrefix); n++) {
      const list = byPrefix.get(tool.slice(0, n));
      if (list !== undefined) found.push(...list);
    }
    found.sort((a, b) => (orderOf.get(a) ?? 0) - (orderOf.get(b) ?? 0));
    const out = found.filter((r) => (r.tool === null || r.tool.test(tool)) && (r.connector === null || r.connector.test(connector)));
    if (toolMemo.size >= MAX_CACHED) toolMemo.clear();
    toolMemo.set(key, out);
    return out;
  };

  return {
    candidates(agent, connector, tool) {
      // Length-prefixed, so no choice of names can make two triples share a key.
      const key = `${agent.length}:${agent}${connector.length}:${connector}${tool}`;
      const hit = fullMemo.get(key);
      if (hit !== undefined) return hit;
      const list = forTool(connector, tool).filter((r) => r.agent === null || r.agent.test(agent));
      if (fullMemo.size >= MAX_CACHED) fullMemo.clear();
      fullMemo.set(key, list);
      return list;
    },
  };
}
