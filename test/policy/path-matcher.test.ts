/**
 * The `path` argument matcher against the traversal tricks that beat `prefix`.
 * Real policies are loaded from YAML and decided by the real evaluator.
 */
import { posix } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate, explain } from '../../src/policy/evaluate.js';
import { isUnder, normalizePath } from '../../src/policy/path-match.js';
import { call, issuesOf, rules } from './helpers.js';

const ALLOW_SAFE = rules(`  - id: files-under-safe
    match: { tool: fs__read, args: { path: { path: { under: /safe } } } }
    effect: allow
`);
const PREFIX_SAFE = rules(`  - id: prefix-safe
    match: { tool: fs__read, args: { path: { prefix: /safe } } }
    effect: allow
`);
const DENY_ETC = rules(`  - id: never-etc
    match: { tool: fs__read, args: { path: { path: { under: /etc } } } }
    effect: deny
  - id: read-anything
    match: { tool: fs__read }
    effect: allow
`);

const read = (path: unknown) => call({ connector: 'fs', tool: 'fs__read', upstreamTool: 'read', args: { path } });
const decide = (p: typeof ALLOW_SAFE, path: unknown) => evaluate(p, read(path)).effect;

/** Values an agent sends to get out of /safe; each must not be allowed by `path: { under: /safe }`. */
const ATTACKS: Array<[string, unknown]> = [
  ['/safe/../etc/passwd', '/safe/../etc/passwd'],
  ['/safe-evil', '/safe-evil'],
  ['/safe-evil/x', '/safe-evil/x'],
  ['/safe/./../x', '/safe/./../x'],
  ['/safe//..//etc', '/safe//..//etc'],
  ['/safe/..', '/safe/..'],
  ['/safe/x/../../etc', '/safe/x/../../etc'],
  ['NUL: /safe/x\\0/../../etc', '/safe/x\0/../../etc'],
  ['NUL at the end: /safe/ok\\0', '/safe/ok\0'],
  ['backslashes: /safe\\..\\etc', '/safe\\..\\etc'],
  ['mixed separators: /safe/..\\..\\etc', '/safe/..\\..\\etc'],
  ['percent-encoded dots: /safe/%2e%2e/etc', '/safe/%2e%2e/etc'],
  ['percent-encoded slash: /safe%2f..%2fetc', '/safe%2f..%2fetc'],
  ['relative: safe/x', 'safe/x'],
  ['relative: ../safe/x', '../safe/x'],
  ['home-relative: ~/safe', '~/safe'],
  ['a file URI: file:///safe/x', 'file:///safe/x'],
  ['empty', ''],
  ['an array of paths', ['/safe/x']],
  ['a number', 7],
];

describe('path matcher: what prefix lets through, path does not', () => {
  it('the string-only prefix matcher is bypassed by /safe/../etc and /safe-evil (why path exists)', () => {
    expect(decide(PREFIX_SAFE, '/safe/../etc/passwd')).toBe('allow');
    expect(decide(PREFIX_SAFE, '/safe-evil')).toBe('allow');
  });

  it.each(ATTACKS)('agent sends %s: an allow rule with path under /safe does not match', (_name, value) => {
    expect(decide(ALLOW_SAFE, value)).toBe('deny');
  });

  it.each(ATTACKS.filter(([, v]) => typeof v !== 'string' || !v.startsWith('/safe-evil')))(
    'agent sends %s past a deny rule with path under /etc: the deny rule matches (fail closed)',
    (_name, value) => {
      expect(evaluate(DENY_ETC, read(value))).toMatchObject({ effect: 'deny', ruleId: 'never-etc' });
    },
  );

  it('a deny rule with path does not catch a clean path outside it, nor a call without the argument', () => {
    expect(evaluate(DENY_ETC, read('/safe-evil')).ruleId).toBe('read-anything');
    expect(evaluate(DENY_ETC, read('/etcetera/x')).ruleId).toBe('read-anything');
    expect(evaluate(DENY_ETC, call({ connector: 'fs', tool: 'fs__read', args: {} })).ruleId).toBe('read-anything');
  });

  it('a deny rule with path catches every spelling of a path inside it', () => {
    for (const v of ['/etc', '/etc/', '/etc/passwd', '//etc//passwd', '/./etc/./passwd', '/etc/ssh/']) {
      expect(evaluate(DENY_ETC, read(v)).ruleId, v).toBe('never-etc');
    }
  });

  it('clean spellings of a path under /safe are allowed: trailing slash, //, ./', () => {
    for (const v of ['/safe', '/safe/', '/safe/x', '/safe//x', '/safe/./x', '/./safe/x/', '//safe/a/b/c.txt']) expect(decide(ALLOW_SAFE, v), v).toBe('allow');
  });

  it('explain says why a refused path did not match an allow rule, and that a deny rule failed closed', () => {
    const allow = explain(ALLOW_SAFE, read('/safe/../etc/passwd')).rules[0];
    expect(allow?.reason).toContain('has a ".." segment');
    const deny = explain(DENY_ETC, read('/tmp/../etc/passwd')).rules[0];
    expect(deny).toMatchObject({ matched: true, decisive: true });
    expect(deny?.reason).toMatch(/has a "\.\." segment; a deny rule fails closed/);
  });

  it('an ask rule with path also fails closed (asks rather than letting an allow through)', () => {
    const p = rules(`  - id: ask-outside
    match: { tool: fs__read, args: { path: { path: { under: /tmp } } } }
    effect: ask
  - id: read-anything
    match: { tool: fs__read }
    effect: allow
`);
    expect(evaluate(p, read('/x/../tmp/y')).effect).toBe('ask');
    expect(evaluate(p, read('/home/x')).effect).toBe('allow');
  });

  it('under takes a list, and glob runs on the normalised path', () => {
    const p = rules(`  - id: ts-in-src-or-test
    match: { tool: fs__read, args: { path: { path: { under: [/repo/src, /repo/test], glob: "/repo/**/*.ts" } } } }
    effect: allow
`);
    expect(decide(p, '/repo/src/a/b.ts')).toBe('allow');
    expect(decide(p, '/repo//test/./x.ts')).toBe('allow');
    expect(decide(p, '/repo/src/a/b.js')).toBe('deny');
    expect(decide(p, '/repo/docs/a.ts')).toBe('deny');
    expect(decide(p, '/repo/src/../docs/a.ts')).toBe('deny');
  });

  it('under: / covers every clean absolute path and still refuses traversal', () => {
    const p = rules(`  - id: any-absolute
    match: { tool: fs__read, args: { path: { path: { under: / } } } }
    effect: allow
`);
    expect(decide(p, '/x/y')).toBe('allow');
    expect(decide(p, '/')).toBe('allow');
    expect(decide(p, '/x/../y')).toBe('deny');
    expect(decide(p, 'x')).toBe('deny');
  });

  it('a bad path matcher is a load error that says how to fix it', () => {
    const bad = (m: string) =>
      issuesOf(() => rules(`  - id: r\n    match: { args: { p: { path: ${m} } } }\n    effect: allow\n`))
        .map((i) => i.message)
        .join('\n');
    expect(bad('{ under: safe }')).toMatch(/under: "safe" is relative.*give an absolute directory/);
    expect(bad('{ under: /a/../b }')).toContain('".." segment');
    expect(bad('{ under: [] }')).toContain('needs at least one directory');
    expect(bad('{}')).toContain('empty path matcher');
    expect(bad('{ glob: "*.ts" }')).toContain('must start with "/"');
    expect(bad('{ glob: "/a/{b" }')).toContain('unbalanced');
    expect(bad('{ under: /a, prefix: /a }')).toMatch(/prefix/);
  });
});

describe('path matcher properties (fast-check)', () => {
  const segment = fc.constantFrom('safe', 'safe-evil', 'etc', 'x', '.', '..', '', '...', '.x', 'a\\..', '%2e%2e', 'a\0b', '~');
  const pathArb = fc.tuple(fc.boolean(), fc.array(segment, { maxLength: 7 }), fc.boolean()).map(([abs, segs, trail]) => `${abs ? '/' : ''}${segs.join('/')}${trail ? '/' : ''}`);
  const anyPath = fc.oneof(pathArb, fc.string({ unit: fc.constantFrom('/', '.', 's', 'a', 'f', 'e', '\\', '\0', '%', '2') }), fc.string());

  it('whatever the string, an allowed path resolves (as POSIX would, ignoring symlinks) to /safe or inside it', () => {
    fc.assert(
      fc.property(anyPath, (v) => {
        if (decide(ALLOW_SAFE, v) !== 'allow') return;
        const real = posix.resolve('/work/dir', v);
        expect(real === '/safe' || real.startsWith('/safe/')).toBe(true);
        expect(v.split('/')).not.toContain('..');
      }),
      { numRuns: 3000 },
    );
  });

  it('normalising is idempotent and only ever returns a clean absolute path', () => {
    fc.assert(
      fc.property(anyPath, (v) => {
        const n = normalizePath(v);
        if (!n.ok) return;
        expect(n.path).toBe(posix.normalize(n.path) === '/' ? '/' : posix.normalize(n.path).replace(/\/$/, ''));
        expect(normalizePath(n.path)).toEqual(n);
        expect(n.path).not.toMatch(/\/\/|\/\.\.?(\/|$)|\0|\\/);
        expect(n.path === '/' || !n.path.endsWith('/')).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('a deny rule with path matches every value its allow twin does not judge clean: allow and deny never both miss a dirty path', () => {
    const denySafe = rules(`  - id: deny-safe
    match: { tool: fs__read, args: { path: { path: { under: /safe } } } }
    effect: deny
  - id: rest
    match: { tool: fs__read }
    effect: allow
`);
    fc.assert(
      fc.property(anyPath, (v) => {
        const n = normalizePath(v);
        const denied = evaluate(denySafe, read(v)).ruleId === 'deny-safe';
        if (!n.ok) expect(denied).toBe(true);
        else expect(denied).toBe(isUnder(n.path, '/safe'));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('policy check warns about string-only matchers on paths', () => {
  it('an allow rule with prefix "/..." gets a warning that points at path: { under }', () => {
    expect(PREFIX_SAFE.warnings.join('\n')).toMatch(/rule "prefix-safe" args\.path: prefix is string-only.*use path: \{ under: DIR \}/);
    expect(ALLOW_SAFE.warnings).toEqual([]);
  });
});
