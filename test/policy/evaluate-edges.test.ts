/**
 * Edges of the policy engine that mutation testing (npm run test:mutation)
 * found unguarded: every argument condition of a rule must hold, values that
 * JSON can carry but a matcher must refuse (1e999 is Infinity, an object with
 * a `length`), argument paths that are not array indexes, glob syntax at its
 * corners, hiddenFor with conditional deny rules, and the reasons `explain`
 * gives (an admin reads them to fix a policy).
 */
import { describe, expect, it } from 'vitest';
import { compileArgGlob, globToRe2 } from '../../src/policy/arg-glob.js';
import { evaluate, explain, hiddenFor } from '../../src/policy/evaluate.js';
import { compileArgChecks, jsonEqual, resolvePath, splitPath, testArgRule } from '../../src/policy/matchers.js';
import { checkPathGlob, compilePathCheck, normalizePath } from '../../src/policy/path-match.js';
import type { ArgRule } from '../../src/policy/types.js';
import { call, policyOf, rules } from './helpers.js';

function argRule(key: string, spec: Parameters<typeof compileArgChecks>[0]): ArgRule {
  return { key, path: splitPath(key), checks: compileArgChecks(spec) } as ArgRule;
}
const passes = (spec: Parameters<typeof compileArgChecks>[0], value: unknown) => testArgRule(argRule('x', spec), { x: value }).ok;

describe('a rule with several argument conditions', () => {
  it('an allow rule needs every one of them: the first holding is not enough', () => {
    const p = rules('  - id: both\n    match: { tool: t, args: { a: { equals: 1 }, b: { equals: 2 } } }\n    effect: allow\n');
    expect(evaluate(p, call({ tool: 't', args: { a: 1, b: 2 } })).effect).toBe('allow');
    expect(evaluate(p, call({ tool: 't', args: { a: 1, b: 3 } })).effect).toBe('deny');
    expect(evaluate(p, call({ tool: 't', args: { a: 0, b: 2 } })).effect).toBe('deny');
  });

  it('among matching rules of one effect, the first in load order decides (also with many)', () => {
    const ids = ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'];
    const p = rules(ids.map((id) => `  - id: ${id}\n    match: { tool: "t*" }\n    effect: deny\n`).join(''));
    expect(evaluate(p, call({ tool: 't' })).ruleId).toBe('d1');
    const q = rules(ids.map((id) => `  - id: ${id}\n    match: { tool: "t*" }\n    effect: allow\n`).join(''));
    expect(evaluate(q, call({ tool: 't' })).ruleId).toBe('d1');
  });

  it('a decision carries `ask` only when the effect is ask', () => {
    const d = evaluate(rules('  - id: a\n    match: { tool: t }\n    effect: allow\n'), call({ tool: 't' }));
    expect(Object.hasOwn(d, 'ask')).toBe(false);
    const byDefault = evaluate(policyOf('version: 1\ndefault: deny\n'), call());
    expect(Object.hasOwn(byDefault, 'ask')).toBe(false);
    expect(byDefault.message).toBe('No policy rule matches this call; the default is deny.');
  });
});

describe('matchers: values JSON can carry that must not pass', () => {
  it('min/max: a number out of range fails; Infinity (1e999), NaN and numeric strings fail too', () => {
    expect(passes({ min: 5 }, 3)).toBe(false);
    expect(passes({ min: 5 }, 5)).toBe(true);
    expect(passes({ max: 10 }, 11)).toBe(false);
    expect(passes({ max: 10 }, 10)).toBe(true);
    const inf = (JSON.parse('{"x":1e999}') as { x: number }).x;
    expect(inf).toBe(Infinity);
    expect(passes({ min: 0 }, inf)).toBe(false);
    expect(passes({ max: 10 }, -inf)).toBe(false);
    expect(passes({ min: 0 }, NaN)).toBe(false);
    expect(passes({ max: 10 }, '5')).toBe(false);
    expect(passes({ min: 0 }, '5')).toBe(false);
  });

  it('maxLength: only strings and arrays have a length (an object with a `length` field fails)', () => {
    expect(passes({ maxLength: 3 }, 'abc')).toBe(true);
    expect(passes({ maxLength: 3 }, [1, 2, 3, 4])).toBe(false);
    expect(passes({ maxLength: 3 }, { length: 0 })).toBe(false);
    expect(passes({ maxLength: 3 }, 12)).toBe(false);
  });

  it('jsonEqual: structure and type, no coercion, no partial matches', () => {
    expect(jsonEqual([1, 2], [1, 2])).toBe(true);
    expect(jsonEqual([1, 2], [1, 3])).toBe(false);
    expect(jsonEqual([1, 2], [1, 2, 3])).toBe(false);
    expect(jsonEqual([1, 2, 3], [1, 2])).toBe(false);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
    expect(jsonEqual({ 0: 1 }, [1])).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 2 })).toBe(false);
    expect(jsonEqual({ a: 1, b: 2 }, { a: 1, b: 3 })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual({ a: null }, { b: null })).toBe(false);
    expect(jsonEqual({ a: undefined }, { b: undefined })).toBe(false);
    expect(jsonEqual(1, {})).toBe(false);
    expect(jsonEqual({}, 1)).toBe(false);
    expect(jsonEqual('', {})).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
    expect(jsonEqual({}, null)).toBe(false);
    expect(jsonEqual(1, '1')).toBe(false);
  });

  it('equals/in on an object argument: the whole object must match', () => {
    expect(passes({ equals: { owner: 'acme', repo: 'x' } }, { owner: 'acme', repo: 'x' })).toBe(true);
    expect(passes({ equals: { owner: 'acme', repo: 'x' } }, { owner: 'acme', repo: 'y' })).toBe(false);
    expect(passes({ in: [['a'], ['b']] }, ['b'])).toBe(true);
    expect(passes({ in: [['a'], ['b']] }, ['a', 'b'])).toBe(false);
  });
});

describe('argument paths', () => {
  const args = { labels: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k'], name: 'abc' };
  it('a numeric segment indexes an array: 0, 1, 10', () => {
    expect(resolvePath(args, ['labels', '0'])).toBe('a');
    expect(resolvePath(args, ['labels', '1'])).toBe('b');
    expect(resolvePath(args, ['labels', '10'])).toBe('k');
  });
  it('segments that are not canonical indexes read nothing from an array: length, 01, 1e0, -1, 1x', () => {
    for (const seg of ['length', '01', '1e0', '-1', '1x', ' 1']) expect(resolvePath(args, ['labels', seg]), seg).toBeUndefined();
  });
  it('a string is not indexed or measured like an object (name.0, name.length read nothing)', () => {
    expect(resolvePath(args, ['name', '0'])).toBeUndefined();
    expect(resolvePath(args, ['name', 'length'])).toBeUndefined();
  });
});

describe('argument globs at their corners', () => {
  it('a glob judges strings only: an array [".."] is neither a dot-segment string a deny rule fails closed on, nor a match', () => {
    const deny = testArgRule(argRule('x', { glob: '/etc/**' }), { x: ['..'] }, 'deny');
    expect(deny).toEqual({ ok: false, reason: 'args.x: glob "/etc/**" failed (got [".."])' });
    // The string form is what fails closed.
    expect(testArgRule(argRule('x', { glob: '/etc/**' }), { x: '/etc/../x' }, 'deny')).toMatchObject({ ok: true, note: expect.stringContaining('a "." or ".." path segment') });
  });

  const m = (glob: string, value: string) => compileArgGlob(glob)(value);
  it('"**" only counts as "any depth" as a whole segment; "a**" and "**x" stay within one segment', () => {
    expect(m('/src/a**', '/src/abc')).toBe(true);
    expect(m('/src/a**', '/src/x/y')).toBe(false);
    expect(m('/src/a**', '/src')).toBe(false);
    expect(m('/a/**x', '/a/bx')).toBe(true);
    expect(m('/a/**x', '/a/b/cx')).toBe(false);
  });
  it('a single "*" never crosses "/", at the end or before a "/"', () => {
    expect(m('/a/*', '/a/b')).toBe(true);
    expect(m('/a/*', '/a/b/c')).toBe(false);
    expect(m('/a/*/c', '/a/b/x/c')).toBe(false);
  });
  it('character classes: negation by "!" or "^" (the marker itself is not in the class), "]" first, "^" inside, an unclosed "["', () => {
    expect(m('[^a]', 'b')).toBe(true);
    expect(m('[^a]', 'a')).toBe(false);
    expect(m('[!a]', '!')).toBe(true);
    expect(m('[!a]', 'a')).toBe(false);
    expect(m('[x^]', '^')).toBe(true);
    expect(m('[x^]', 'x')).toBe(true);
    expect(m('[]a]', ']')).toBe(true);
    expect(m('[]a]', 'a')).toBe(true);
    // An unclosed "[" is refused at load (it silently matched only itself before); "\\[" is the literal.
    expect(() => m('a[b', 'a[b')).toThrow('unclosed "[" at character 2 (write "\\[" for a literal "[")');
    expect(m('a\\[b', 'a[b')).toBe(true);
    expect(m('a\\[b', 'ab')).toBe(false);
  });
  it('"," outside braces is literal, a stray "}" is refused ("\\}" is the literal); "(" after an ordinary character is literal; "@" without "(" is literal', () => {
    expect(m('a,b', 'a,b')).toBe(true);
    expect(m('a,b', 'a')).toBe(false);
    expect(() => m('a}', 'a}')).toThrow('unbalanced brace: "}" at character 2 closes no "{"');
    expect(m('a\\}', 'a}')).toBe(true);
    expect(m('f(x)', 'f(x)')).toBe(true);
    expect(m('*@example.com', 'bot@example.com')).toBe(true);
    expect(m('a+b', 'a+b')).toBe(true);
    expect(m('{a,b}c', 'bc')).toBe(true);
  });
  it('unsupported syntax is refused with a message that says what to use instead', () => {
    expect(() => globToRe2('!x')).toThrow('a leading "!" (negation) is not supported in argument globs; use a deny rule');
    expect(() => globToRe2('a\\')).toThrow('a trailing "\\" escapes nothing');
    expect(() => globToRe2('*(a)')).toThrow('extglobs like "*(..)" are not supported in argument globs; use regex');
    expect(() => globToRe2('?(a)')).toThrow('extglobs like "?(..)" are not supported in argument globs; use regex');
    for (const c of ['@', '+', '!']) expect(() => globToRe2(`x${c}(a)`)).toThrow(`extglobs like "${c}(..)" are not supported in argument globs; use regex`);
    expect(() => globToRe2('{a,b')).toThrow('unbalanced brace: "{" at character 1 is never closed (write "\\{" for a literal "{")');
  });
});

describe('the path matcher', () => {
  it('says why a value is refused, for each kind of refusal', () => {
    expect(normalizePath(5)).toEqual({ ok: false, reason: 'is not a string' });
    expect(normalizePath('')).toEqual({ ok: false, reason: 'is empty' });
    expect(normalizePath('/a\0b')).toEqual({ ok: false, reason: 'has a NUL byte' });
    expect(normalizePath('/a\\b')).toEqual({ ok: false, reason: 'has a backslash (paths are POSIX: "/" is the only separator)' });
    expect(normalizePath('/a/%2E%2e/b')).toEqual({ ok: false, reason: 'has a percent-encoded ".", "/", "\\" or NUL (the matcher does not decode)' });
    expect(normalizePath('a/b')).toEqual({ ok: false, reason: 'is relative (the gateway does not know the tool\'s working directory)' });
    expect(normalizePath('/a/../b')).toEqual({ ok: false, reason: 'has a ".." segment' });
  });

  it('a glob-only path check (no under:) works on the normalised path', () => {
    const c = compilePathCheck({ glob: '/repo/**/*.md' });
    expect(c.test('/repo//docs/./a.md')).toBe(true);
    expect(c.test('/etc/a.md')).toBe(false);
    expect(c.describe).toBe('path glob "/repo/**/*.md"');
  });

  it('describes itself as written (one dir, several dirs, dir and glob; long values shortened)', () => {
    expect(compilePathCheck({ under: '/a' }).describe).toBe('path under "/a"');
    expect(compilePathCheck({ under: ['/a', '/b'] }).describe).toBe('path under ["/a","/b"]');
    expect(compilePathCheck({ under: '/a', glob: '/a/*.txt' }).describe).toBe('path under "/a" and glob "/a/*.txt"');
    const long = `/${'d'.repeat(100)}`;
    const d = compilePathCheck({ under: long }).describe;
    expect(d).toBe(`path under ${JSON.stringify(long).slice(0, 57)}...`);
  });

  it('a path glob must be absolute or start with "**"', () => {
    expect(checkPathGlob('**/secret')('/x/secret')).toBe(true);
    expect(() => checkPathGlob('a/**')).toThrow('glob: "a/**" must start with "/" (or "**"): it is matched against the normalised absolute path');
  });
});

describe('testArgRule reasons (what explain shows the admin)', () => {
  it('names the matcher that failed and the value, or "nothing" when absent; long values are shortened', () => {
    expect(testArgRule(argRule('x', { absent: true }), { x: 1 })).toEqual({ ok: false, reason: 'args.x: absent failed (got 1)' });
    expect(testArgRule(argRule('x', { absent: false }), {})).toEqual({ ok: false, reason: 'args.x: present failed (got nothing)' });
    expect(testArgRule(argRule('x', { in: ['a'] }), { x: 'b' })).toEqual({ ok: false, reason: 'args.x: in ["a"] failed (got "b")' });
    expect(testArgRule(argRule('x', { glob: 'a*' }), { x: 'b' })).toEqual({ ok: false, reason: 'args.x: glob "a*" failed (got "b")' });
    expect(testArgRule(argRule('x', { regex: 'a+' }), { x: 'b' })).toEqual({ ok: false, reason: 'args.x: regex "a+" failed (got "b")' });
    expect(testArgRule(argRule('x', { min: 2 }), { x: 1 })).toEqual({ ok: false, reason: 'args.x: min 2 failed (got 1)' });
    expect(testArgRule(argRule('x', { max: 2 }), { x: 3 })).toEqual({ ok: false, reason: 'args.x: max 2 failed (got 3)' });
    expect(testArgRule(argRule('x', { maxLength: 2 }), { x: 'abc' })).toEqual({ ok: false, reason: 'args.x: maxLength 2 failed (got "abc")' });
    const long = 'v'.repeat(100);
    expect(testArgRule(argRule('x', { equals: 'a' }), { x: long })).toEqual({ ok: false, reason: `args.x: equals "a" failed (got ${JSON.stringify(long).slice(0, 57)}...)` });
  });

  it('without an effect, an unjudgeable value fails as for an allow rule (fail closed)', () => {
    const r = testArgRule(argRule('p', { path: { under: '/safe' } }), { p: '/safe/../etc' });
    expect(r).toEqual({ ok: false, reason: 'args.p: path under "/safe" failed (got "/safe/../etc": path has a ".." segment)' });
  });
});

describe('shortening long values in reasons: the boundary', () => {
  it('a name of exactly 80 characters and a value of exactly 60 characters (as JSON) are shown whole', () => {
    const p = rules('  - id: r\n    match: { tool: t }\n    effect: deny\n');
    const name = 'n'.repeat(80);
    expect(explain(p, call({ tool: name })).rules[0]?.reason).toBe(`tool "${name}" does not match "t"`);
    const v = 'v'.repeat(58);
    expect(testArgRule(argRule('x', { equals: 'a' }), { x: v })).toEqual({ ok: false, reason: `args.x: equals "a" failed (got "${v}")` });
    const dir = `/${'d'.repeat(57)}`;
    expect(compilePathCheck({ under: dir }).describe).toBe(`path under "${dir}"`);
  });
});

describe('argument globs and "." or ".." segments (globs do not judge them)', () => {
  it('a deny rule with a glob still denies "/etc/./passwd" and "/etc/x/../passwd" (fail closed); an allow rule does not allow them', () => {
    const deny = policyOf('version: 1\ndefault: allow\nrules:\n  - id: no-etc\n    match: { tool: t, args: { p: { glob: "/etc/**" } } }\n    effect: deny\n');
    for (const p of ['/etc/./passwd', '/etc/x/../passwd', './etc', '/etc/passwd']) expect(evaluate(deny, call({ tool: 't', args: { p } })).effect, p).toBe('deny');
    expect(evaluate(deny, call({ tool: 't', args: { p: '/home/x' } })).effect).toBe('allow');
    const allow = rules('  - id: docs\n    match: { tool: t, args: { p: { glob: "/docs/**" } } }\n    effect: allow\n');
    expect(evaluate(allow, call({ tool: 't', args: { p: '/docs/../etc/passwd' } })).effect).toBe('deny');
    expect(evaluate(allow, call({ tool: 't', args: { p: '/docs/a.md' } })).effect).toBe('allow');
    expect(explain(deny, call({ tool: 't', args: { p: '/etc/./passwd' } })).rules[0]?.reason).toContain('a "." or ".." path segment');
  });
});

describe('hiddenFor: only a tool no call can reach is hidden', () => {
  it('a deny rule with argument conditions neither hides the tool nor keeps it visible: the default decides', () => {
    const p = rules('  - id: some-args\n    match: { tool: t, args: { owner: { equals: evil } } }\n    effect: deny\n');
    expect(hiddenFor(p, 'coder', 'github', 't')).toBe(true);
    const q = policyOf('version: 1\ndefault: allow\nrules:\n  - id: some-args\n    match: { tool: t, args: { owner: { equals: evil } } }\n    effect: deny\n');
    expect(hiddenFor(q, 'coder', 'github', 't')).toBe(false);
  });
});

describe('explain: the reason given for each rule', () => {
  const p = rules(`  - id: other-connector
    match: { connector: slack }
    effect: allow
  - id: needs-destructive
    match: { annotations: { destructiveHint: true } }
    effect: deny
  - id: broken-when
    match: { tool: t }
    when: 'args.nope.deeper == 1'
    effect: allow
  - id: wins
    match: { tool: t }
    effect: deny
  - id: outranked
    match: { tool: t }
    effect: allow
`);
  const by = Object.fromEntries(explain(p, call({ tool: 't', annotations: { destructiveHint: false } })).rules.map((r) => [r.id, r.reason]));
  it('a connector that does not match, an annotation that differs, a `when` that errors in an allow rule, an outranked rule', () => {
    expect(by['other-connector']).toBe('connector "github" does not match "slack"');
    expect(by['needs-destructive']).toBe('annotation destructiveHint is false, rule needs true');
    expect(by['broken-when']).toMatch(/^when: error \(.+\); an allow rule fails closed: no match$/);
    expect(by.wins).toBe('matches: this rule decides');
    expect(by.outranked).toBe('matches; outranked by deny rule "wins"');
  });
  it('a missing annotation and a name too long to show whole', () => {
    const long = `t${'x'.repeat(100)}`;
    const r = Object.fromEntries(explain(p, call({ tool: long })).rules.map((x) => [x.id, x.reason]));
    expect(r['needs-destructive']).toBe('annotation destructiveHint is missing, rule needs true');
    expect(r.wins).toBe(`tool ${JSON.stringify(`${long.slice(0, 77)}...`)} does not match "t"`);
  });
});
