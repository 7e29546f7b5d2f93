import type { RegExpEngine } from 'ajv/dist/types/index.js';
import { RE2JS } from 're2js';

/** Thrown for a schema pattern RE2 cannot run; the tool's schema is then uncheckable. */
export class UnsupportedPattern extends Error {
  constructor(pattern: string, reason: string) {
    const shown = pattern.length > 100 ? `${pattern.slice(0, 97)}...` : pattern;
    super(`pattern ${JSON.stringify(shown)} cannot run on the gateway's linear-time regex engine (RE2): ${reason}`);
    this.name = 'UnsupportedPattern';
  }
}

/**
 * RE2 matches in time linear in the input, but the constant grows with the
 * compiled program (its instructions): `\p{L}{1000}x` against 1 MiB takes
 * ~0.2 s where `^[a-z]+$` takes ~1 ms. Real schemas' patterns are tens of
 * instructions; these caps keep the worst check of a 4 MiB request in seconds.
 */
export const PATTERN_LIMITS = { maxInstructions: 1_000, maxInstructionsPerSchema: 5_000 } as const;

/** What the patterns of one schema may still spend; reset before each compile. */
export interface PatternBudget {
  instructions: number;
}

/**
 * ajv's `code.regExp`: `pattern` and `patternProperties` run on RE2 (re2js),
 * not on JavaScript's backtracking RegExp, where `^(a+)+$` against "a"×31 + "!"
 * blocks the event loop for seconds. JSON Schema patterns are ECMA-262 and
 * unanchored (2020-12 validation §6.3.3): translated to RE2 syntax, searched
 * with `test`. RE2 has no backreferences or lookaround: such a pattern throws
 * UnsupportedPattern. RE2 is always Unicode-aware, so ajv's `u` flag needs nothing.
 */
export function re2Engine(budget: PatternBudget): RegExpEngine {
  const engine = (pattern: string) => {
    let re: RE2JS;
    try {
      re = RE2JS.compile(RE2JS.translateRegExp(pattern));
    } catch (e) {
      throw new UnsupportedPattern(pattern, `${e instanceof Error ? e.message : String(e)} (no backreferences or lookaround)`);
    }
    const size = (re.re2Input.prog as { numInst(): number }).numInst();
    if (size > PATTERN_LIMITS.maxInstructions) {
      throw new UnsupportedPattern(pattern, `it compiles to ${size} instructions, over the ${PATTERN_LIMITS.maxInstructions} limit`);
    }
    budget.instructions -= size;
    if (budget.instructions < 0) {
      throw new UnsupportedPattern(pattern, `the schema's patterns compile to more than ${PATTERN_LIMITS.maxInstructionsPerSchema} instructions in all`);
    }
    // ajv keys compiled patterns by toString(): it must differ per pattern.
    return { test: (s: string) => re.test(s), toString: () => `re2:${pattern}` };
  };
  return Object.assign(engine, { code: 're2' });
}
