import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/policy/evaluate.js';
import { compileName, resolvePath } from '../../src/policy/matchers.js';
import { call, rules } from './helpers.js';

/** One allow rule with one argument matcher; the call is allowed iff the matcher holds. */
function allows(matcher: string, args: Record<string, unknown>, key = 'x'): boolean {
  const p = rules(`  - id: r\n    match: { tool: t, args: { "${key}": ${matcher} } }\n    effect: allow\n`);
  return evaluate(p, call({ tool: 't', args })).effect === 'allow';
}

/**
 * `allows` in a child process, killed after `hangGuardMs`: a backtracking blow-up is synchronous
 * and would hang this test process for good (no test timeout can interrupt it). The guard is far
 * above the work (milliseconds) on a loaded machine, and far below an exponential match.
 */
function allowsInChild(matcher: string, value: string, hangGuardMs = 20_000): Promise<boolean> {
  const url = (rel: string) => new URL(rel, import.meta.url).href;
  const code = [
    `const { evaluate } = await import(${JSON.stringify(url('../../src/policy/evaluate.ts'))});`,
    `const { call, rules } = await import(${JSON.stringify(url('./helpers.ts'))});`,
    `const p = rules(${JSON.stringify(`  - id: r\n    match: { tool: t, args: { "x": ${matcher} } }\n    effect: allow\n`)});`,
    `process.stdout.write(evaluate(p, call({ tool: 't', args: { x: ${JSON.stringify(value)} } })).effect);`,
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const guard = setTimeout(() => child.kill('SIGKILL'), hangGuardMs);
  return new Promise((resolve, reject) =>
    child.once('exit', (code, signal) => {
      clearTimeout(guard);
      if (signal === 'SIGKILL') reject(new Error(`hang guard: the match ran over ${hangGuardMs} ms (backtracking?)`));
      else if (code !== 0 || (out !== 'allow' && out !== 'deny')) reject(new Error(`the child failed (exit ${String(code)}): ${out}`));
      else resolve(out === 'allow');
    }),
  );
}

interface Case {
  name: string;
  matcher: string;
  value: unknown;
  matches: boolean;
}

const cases: Case[] = [
  { name: 'equals matches the same string', matcher: '{ equals: acme }', value: 'acme', matches: true },
  { name: 'equals is case-sensitive', matcher: '{ equals: acme }', value: 'ACME', matches: false },
  { name: 'equals does not coerce a number to a string', matcher: '{ equals: "1" }', value: 1, matches: false },
  { name: 'equals matches numbers by value', matcher: '{ equals: 1 }', value: 1.0, matches: true },
  { name: 'equals matches booleans', matcher: '{ equals: true }', value: true, matches: true },
  { name: 'equals null matches null only', matcher: '{ equals: null }', value: null, matches: true },
  { name: 'equals null does not match an absent argument', matcher: '{ equals: null }', value: undefined, matches: false },
  { name: 'equals compares objects structurally', matcher: '{ equals: { a: [1, 2] } }', value: { a: [1, 2] }, matches: true },
  { name: 'equals rejects an object with an extra key', matcher: '{ equals: { a: 1 } }', value: { a: 1, b: 2 }, matches: false },
  { name: 'equals does not match an array holding the value', matcher: '{ equals: acme }', value: ['acme'], matches: false },
  { name: 'in matches a listed value', matcher: '{ in: [web, api] }', value: 'api', matches: true },
  { name: 'in rejects an unlisted value', matcher: '{ in: [web, api] }', value: 'infra', matches: false },
  { name: 'in does not coerce types', matcher: '{ in: ["1", "2"] }', value: 1, matches: false },
  { name: 'in rejects an absent argument', matcher: '{ in: [web] }', value: undefined, matches: false },
  { name: 'glob matches inside one path segment', matcher: '{ glob: "src/*.ts" }', value: 'src/a.ts', matches: true },
  { name: 'glob star does not cross a slash', matcher: '{ glob: "src/*.ts" }', value: 'src/x/a.ts', matches: false },
  { name: 'glob double star crosses slashes', matcher: '{ glob: "src/**" }', value: 'src/x/a.ts', matches: true },
  { name: 'glob matches dot files', matcher: '{ glob: "**/*.env" }', value: 'a/.env', matches: true },
  { name: 'glob never matches a number', matcher: '{ glob: "*" }', value: 5, matches: false },
  { name: 'prefix matches the start', matcher: '{ prefix: "#eng-" }', value: '#eng-web', matches: true },
  { name: 'prefix rejects a value that only contains it', matcher: '{ prefix: "#eng-" }', value: '#x-#eng-web', matches: false },
  { name: 'prefix never matches a non-string', matcher: '{ prefix: "1" }', value: 12, matches: false },
  { name: 'regex must match the whole value', matcher: '{ regex: "[a-z]+" }', value: 'abc', matches: true },
  { name: 'regex is anchored: a partial match is no match', matcher: '{ regex: "acme" }', value: 'evil-acme', matches: false },
  { name: 'regex never matches a non-string', matcher: '{ regex: "\\\\d+" }', value: 42, matches: false },
  { name: 'min is inclusive', matcher: '{ min: 1 }', value: 1, matches: true },
  { name: 'min rejects a smaller number', matcher: '{ min: 1 }', value: 0.5, matches: false },
  { name: 'max is inclusive', matcher: '{ max: 10 }', value: 10, matches: true },
  { name: 'max rejects a larger number', matcher: '{ max: 10 }', value: 11, matches: false },
  { name: 'max never matches a numeric string', matcher: '{ max: 10 }', value: '5', matches: false },
  { name: 'min/max never match an absent argument', matcher: '{ min: 0, max: 10 }', value: undefined, matches: false },
  { name: 'maxLength bounds a string', matcher: '{ maxLength: 3 }', value: 'abc', matches: true },
  { name: 'maxLength rejects a longer string', matcher: '{ maxLength: 3 }', value: 'abcd', matches: false },
  { name: 'maxLength bounds an array', matcher: '{ maxLength: 2 }', value: [1, 2, 3], matches: false },
  { name: 'maxLength never matches a number', matcher: '{ maxLength: 3 }', value: 1, matches: false },
  { name: 'absent true matches a missing argument', matcher: '{ absent: true }', value: undefined, matches: true },
  { name: 'absent true does not match null (null is present)', matcher: '{ absent: true }', value: null, matches: false },
  { name: 'absent false requires the argument', matcher: '{ absent: false }', value: undefined, matches: false },
  { name: 'several matchers on one argument must all hold', matcher: '{ prefix: a, maxLength: 3 }', value: 'abcd', matches: false },
  { name: 'several matchers on one argument: all hold', matcher: '{ prefix: a, maxLength: 3, glob: "a*" }', value: 'abc', matches: true },
];

describe('argument matchers', () => {
  it('has cases to run (guard)', () => {
    expect(cases.length).toBeGreaterThan(30);
  });
  it.each(cases)('$name', ({ matcher, value, matches }) => {
    expect(allows(matcher, value === undefined ? {} : { x: value })).toBe(matches);
  });
});

describe('argument paths', () => {
  it('a dotted key reads a nested argument', () => {
    expect(allows('{ equals: acme }', { repo: { owner: 'acme' } }, 'repo.owner')).toBe(true);
    expect(allows('{ equals: acme }', { repo: { owner: 'evil' } }, 'repo.owner')).toBe(false);
  });
  it('a numeric segment indexes an array', () => {
    expect(allows('{ equals: bug }', { labels: ['bug', 'p1'] }, 'labels.0')).toBe(true);
    expect(allows('{ equals: bug }', { labels: ['p1'] }, 'labels.0')).toBe(false);
  });
  it('a path through a non-object is absent, not an error', () => {
    expect(allows('{ absent: true }', { repo: 'acme' }, 'repo.owner')).toBe(true);
    expect(allows('{ equals: acme }', { repo: null }, 'repo.owner')).toBe(false);
  });
  it('prototype keys never resolve to inherited properties (no prototype walking)', () => {
    expect(resolvePath({}, ['constructor'])).toBeUndefined();
    expect(resolvePath({}, ['__proto__'])).toBeUndefined();
    expect(resolvePath({ a: {} }, ['a', 'toString'])).toBeUndefined();
    expect(allows('{ absent: true }', {}, 'constructor.name')).toBe(true);
  });
  it('a literal key containing a dot is not addressable as one key (dots are paths)', () => {
    expect(allows('{ equals: 1 }', { 'a.b': 1 }, 'a.b')).toBe(false);
  });
});

describe('regex safety', () => {
  it('a catastrophic-backtracking pattern runs in linear time on a long agent-controlled value (RE2)', async () => {
    // A backtracking engine takes far longer than minutes on this input; RE2 takes milliseconds.
    expect(await allowsInChild('{ regex: "(a+)+$" }', `${'a'.repeat(50_000)}!`)).toBe(false);
    // The same pattern still matches where it should (the child really evaluates it).
    expect(await allowsInChild('{ regex: "(a+)+$" }', 'aaaa')).toBe(true);
  }, 60_000);
});

describe('name globs (agent, connector, tool)', () => {
  it('a plain name matches exactly that name', () => {
    const m = compileName('github__get_issue');
    expect(m.exact).toBe(true);
    expect(m.test('github__get_issue')).toBe(true);
    expect(m.test('github__get_issues')).toBe(false);
  });
  it('a star matches any characters, "/" included (names are not paths)', () => {
    const m = compileName('coder*');
    expect(m.test('coder-1')).toBe(true);
    expect(m.test('coder/team-a')).toBe(true);
    expect(m.test('admin')).toBe(false);
  });
  it('braces give a choice', () => {
    const m = compileName('*__{get_*,list_*}');
    expect(m.test('github__get_issue')).toBe(true);
    expect(m.test('slack__list_channels')).toBe(true);
    expect(m.test('github__create_issue')).toBe(false);
  });
  it('names are case-sensitive', () => {
    expect(compileName('github__*').test('GitHub__get')).toBe(false);
  });
  it('agent, connector and tool must all match', () => {
    const p = rules('  - id: r\n    match: { agent: "coder*", connector: github, tool: "github__*" }\n    effect: allow\n');
    expect(evaluate(p, call()).effect).toBe('allow');
    expect(evaluate(p, call({ agent: 'ops' })).effect).toBe('deny');
    expect(evaluate(p, call({ connector: 'other' })).effect).toBe('deny');
    expect(evaluate(p, call({ tool: 'slack__post_message' })).effect).toBe('deny');
  });
});

describe('argument globs run in linear time (RE2), with picomatch-like meaning', () => {
  const globCases: Array<[string, string, boolean]> = [
    ['src/*.ts', 'src/a.ts', true],
    ['src/*.ts', 'src/a/b.ts', false],
    ['src/**', 'src', true],
    ['src/**', 'src/a/b/c.ts', true],
    ['src/**', 'srcx/a', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['**/*.env', '.env', true],
    ['**/*.env', 'deep/dir/prod.env', true],
    ['**', 'anything/at/all', true],
    ['file?.txt', 'file1.txt', true],
    ['file?.txt', 'file/.txt', false],
    ['[abc]*.js', 'b-x.js', true],
    ['[!abc]*.js', 'b-x.js', false],
    ['[a-c]?', 'bz', true],
    ['{web,api}/*.md', 'api/readme.md', true],
    ['{web,api}/*.md', 'infra/readme.md', false],
    ['{a,{b,c}}x', 'cx', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['a.b', 'axb', false],
    ['(x)', '(x)', true],
    ['src/**', 'src/../etc/passwd', false],
    ['*', '..', false],
  ];
  it('has cases (guard)', () => expect(globCases.length).toBeGreaterThan(20));
  it.each(globCases)('glob %j on %j → %s', (glob, value, want) => {
    expect(allows(`{ glob: ${JSON.stringify(glob)} }`, { x: value })).toBe(want);
  });
  it('a glob with many stars on a long agent value stays fast (no backtracking blow-up)', async () => {
    expect(await allowsInChild('{ glob: "*a*a*a*a*a*a*b" }', 'a'.repeat(100_000))).toBe(false);
    expect(await allowsInChild('{ glob: "*a*a*a*a*a*a*b" }', `${'a'.repeat(100_000)}b`)).toBe(true);
  }, 60_000);
});
