/**
 * Matchers for names (agent, connector, tool) and for tool arguments.
 * Every test is total: a value of the wrong type does not match, nothing throws.
 */
import picomatch from 'picomatch';
import { RE2JS } from 're2js';
import { compileArgGlob, dotSegmentReason } from './arg-glob.js';
import { compilePathCheck, type PathMatcherSpec } from './path-match.js';
import type { ArgCheck, ArgRule, Effect, NameMatcher } from './types.js';

/**
 * Names are matched with picomatch in `bash` mode, where `*` also crosses "/"
 * (a name is not a path). A pattern without glob characters is an exact name.
 */
export function compileName(pattern: string): NameMatcher {
  const scan = picomatch.scan(pattern);
  if (!scan.isGlob && !pattern.includes('\\')) {
    return { pattern, exact: true, prefix: pattern, test: (name) => name === pattern };
  }
  const re = picomatch.makeRe(pattern, { bash: true, dot: true });
  // The leading run of plain characters must appear literally: a cheap reject before the regex.
  const prefix = /^[A-Za-z0-9_-]*/.exec(pattern)?.[0] ?? '';
  if (prefix === '') return { pattern, exact: false, prefix, test: (name) => re.test(name) };
  return { pattern, exact: false, prefix, test: (name) => name.startsWith(prefix) && re.test(name) };
}


/**
 * `regex` uses RE2 semantics (re2js, pure JS, linear time in the input: no
 * ReDoS whatever the agent sends) and must match the whole string.
 * Throws RE2's syntax error on a bad pattern.
 */
export function compileRegex(pattern: string): RE2JS {
  return RE2JS.compile(pattern);
}

/** The matcher keys an argument may have, in the order they are checked. */
export interface ArgMatcherSpec {
  absent?: boolean;
  equals?: unknown;
  in?: unknown[];
  prefix?: string;
  glob?: string;
  regex?: string;
  min?: number;
  max?: number;
  maxLength?: number;
  path?: PathMatcherSpec;
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** Structural equality over JSON values; numbers by value, no coercion between types. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Compiles one argument's matcher object into checks; all must hold. Assumes the spec was validated. */
export function compileArgChecks(spec: ArgMatcherSpec): ArgCheck[] {
  const checks: ArgCheck[] = [];
  if (spec.absent !== undefined) {
    const want = spec.absent;
    checks.push({ describe: want ? 'absent' : 'present', test: (v) => (v === undefined) === want });
  }
  if (Object.hasOwn(spec, 'equals')) {
    const want = spec.equals;
    checks.push({ describe: `equals ${show(want)}`, test: (v) => v !== undefined && jsonEqual(v, want) });
  }
  if (spec.in !== undefined) {
    const set = spec.in;
    checks.push({ describe: `in ${show(set)}`, test: (v) => v !== undefined && set.some((x) => jsonEqual(v, x)) });
  }
  if (spec.prefix !== undefined) {
    const p = spec.prefix;
    checks.push({ describe: `prefix ${show(p)}`, test: (v) => typeof v === 'string' && v.startsWith(p) });
  }
  if (spec.glob !== undefined) {
    const test = compileArgGlob(spec.glob);
    checks.push({ describe: `glob ${show(spec.glob)}`, test: (v) => typeof v === 'string' && test(v), unjudgeable: dotSegmentReason });
  }
  if (spec.regex !== undefined) {
    const re = compileRegex(spec.regex);
    checks.push({ describe: `regex ${show(spec.regex)}`, test: (v) => typeof v === 'string' && re.matches(v) });
  }
  if (spec.min !== undefined) {
    const min = spec.min;
    checks.push({ describe: `min ${min}`, test: (v) => typeof v === 'number' && Number.isFinite(v) && v >= min });
  }
  if (spec.max !== undefined) {
    const max = spec.max;
    checks.push({ describe: `max ${max}`, test: (v) => typeof v === 'number' && Number.isFinite(v) && v <= max });
  }
  if (spec.path !== undefined) checks.push(compilePathCheck(spec.path));
  if (spec.maxLength !== undefined) {
    const n = spec.maxLength;
    // UTF-16 length: never smaller than the count of code points, so the bound is never looser.
    checks.push({ describe: `maxLength ${n}`, test: (v) => (typeof v === 'string' || Array.isArray(v)) && v.length <= n });
  }
  return checks;
}

/**
 * Argument keys are dotted paths: "repo.owner" reads args.repo.owner; a numeric
 * segment indexes an array ("labels.0"). Only own properties are read, so
 * "__proto__" or "constructor" never reach the prototype.
 */
export function splitPath(key: string): string[] {
  return key.split('.');
}

export function resolvePath(args: unknown, path: readonly string[]): unknown {
  let cur: unknown = args;
  for (const seg of path) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9]\d*)$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else if (typeof cur === 'object' && cur !== null) {
      if (!Object.hasOwn(cur, seg)) return undefined;
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      return undefined;
    }
  }
  return cur;
}

/**
 * Checks one argument rule; on failure says which matcher failed and what the value was.
 * A value a check cannot judge (see ArgCheck.unjudgeable) fails an allow rule and
 * satisfies that check in a deny or ask rule: fail closed, like `when` errors.
 */
export function testArgRule(rule: ArgRule, args: Record<string, unknown>, effect: Effect = 'allow'): { ok: true; note?: string } | { ok: false; reason: string } {
  const v = resolvePath(args, rule.path);
  let note: string | undefined;
  for (const c of rule.checks) {
    if (c.test(v)) continue;
    const why = c.unjudgeable?.(v);
    if (why !== undefined && effect !== 'allow') {
      note ??= `args.${rule.key}: ${why}; a ${effect} rule fails closed: counts as matching`;
      continue;
    }
    const got = v === undefined ? 'nothing' : show(v);
    return { ok: false, reason: `args.${rule.key}: ${c.describe} failed (got ${got}${why !== undefined ? `: ${why}` : ''})` };
  }
  return note === undefined ? { ok: true } : { ok: true, note };
}
