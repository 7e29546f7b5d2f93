/**
 * An escaped character inside a character class of an argument glob
 * ("[\]p]", "[a\-z]") is that character, as picomatch and the load check
 * (src/config/glob.ts) read it. The RE2 translation used to end the class at
 * the first "]" after the "[" (the escaped one) and keep the "\" as a member:
 * a deny rule then missed what it names, and an allow rule's "\-" became a
 * range of 60 characters.
 */
import picomatch from 'picomatch';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/policy/evaluate.js';
import { compileArgGlob } from '../../src/policy/arg-glob.js';
import { call, rules } from './helpers.js';

const policy = rules(
  [
    '  - id: no-passwd',
    '    match: { tool: t, args: { path: { glob: "/etc/[\\\\]p]asswd" } } }',
    '    effect: deny',
    '  - id: branches',
    '    match: { tool: t, args: { branch: { glob: "[a\\\\-z]" } } }',
    '    effect: allow',
    '  - id: reads',
    '    match: { tool: t, args: { path: { glob: "/etc/*" } } }',
    '    effect: allow',
  ].join('\n') + '\n',
);
const decide = (args: Record<string, unknown>) => evaluate(policy, call({ tool: 't', args })).effect;

describe('argument globs with escapes inside a character class', () => {
  it('agent reads /etc/passwd past a deny rule whose class holds an escaped "]": denied', () => {
    expect(decide({ path: '/etc/passwd' })).toBe('deny');
    expect(decide({ path: '/etc/]asswd' })).toBe('deny');
    expect(decide({ path: '/etc/hosts' })).toBe('allow');
  });

  it('agent sends a branch inside the range "\\-z" of an allow rule that names a, "-" and z: not allowed', () => {
    expect(decide({ branch: 'a' })).toBe('allow');
    expect(decide({ branch: '-' })).toBe('allow');
    expect(decide({ branch: 'b' })).toBe('deny');
    expect(decide({ branch: '\\' })).toBe('deny');
  });

  it.each([
    ['[\\]]', [']', '\\]', '\\', 'x']],
    ['[x\\]]y', ['xy', ']y', 'x]y']],
    ['[^\\]]', [']', 'a']],
    ['[a\\-z]', ['a', '-', 'z', 'b', '\\']],
    ['[\\\\]', ['\\', 'x']],
    ['{a,[\\]}]}', ['a', ']', '}', 'a]}']],
    ['[]a]', [']', 'a', 'b']],
    ['[[:digit:]x]', ['1', 'x', 'a', ':']],
  ])('%s matches as picomatch reads it', (glob, values) => {
    const pm = picomatch(glob, { dot: true });
    const re2 = compileArgGlob(glob);
    for (const v of values) expect(re2(v), `${glob} on ${JSON.stringify(v)}`).toBe(pm(v));
  });

  it('"!" negates as "^" does (picomatch itself is inconsistent there): [!\\]] is anything but "]"', () => {
    const re2 = compileArgGlob('[!\\]]');
    expect([re2(']'), re2('a'), re2('!')]).toEqual([false, true, true]);
  });
});
