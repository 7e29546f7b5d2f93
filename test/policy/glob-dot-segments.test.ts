/**
 * Argument globs do not judge "." and ".." path segments (as picomatch's
 * wildcards do not match them). An allow rule's glob must not let such a
 * value through, and a deny rule's glob must still catch it: "/etc/./passwd"
 * and "/srv/../etc/passwd" may not slip past a deny on "/etc/**".
 */
import { describe, expect, it } from 'vitest';
import { compileArgChecks, splitPath, testArgRule } from '../../src/policy/matchers.js';
import type { ArgRule } from '../../src/policy/types.js';

const rule = (glob: string): ArgRule => ({ key: 'path', path: splitPath('path'), checks: compileArgChecks({ glob }) });

describe('argument globs and dot segments', () => {
  it('agent sends /etc/./passwd to slip past a deny on /etc/**: the deny rule matches (fail closed) and says why', () => {
    for (const value of ['/etc/./passwd', '/srv/../etc/passwd', '/etc/x/..', './etc']) {
      const r = testArgRule(rule('/etc/**'), { path: value }, 'deny');
      expect(r.ok, value).toBe(true);
      expect(r.ok && r.note, value).toMatch(/"\." or "\.\." path segment.*deny rule fails closed/);
    }
  });

  it('the same values never satisfy an allow rule with a glob', () => {
    for (const value of ['/safe/../etc/passwd', '/safe/./x']) expect(testArgRule(rule('/safe/**'), { path: value }, 'allow').ok, value).toBe(false);
  });

  it('control: plain values are judged as before, in allow and deny rules alike', () => {
    expect(testArgRule(rule('/etc/**'), { path: '/etc/passwd' }, 'deny')).toEqual({ ok: true });
    expect(testArgRule(rule('/etc/**'), { path: '/tmp/x' }, 'deny').ok).toBe(false);
    expect(testArgRule(rule('/safe/**'), { path: '/safe/x' }, 'allow')).toEqual({ ok: true });
    expect(testArgRule(rule('**/*.env'), { path: 'a/.env' }, 'allow')).toEqual({ ok: true });
  });
});
