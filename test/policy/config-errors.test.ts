import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load-yaml.js';
import { loadPolicies } from '../../src/policy/load.js';
import { issuesOf, policyOf, tmpDir } from './helpers.js';

interface BadCase {
  name: string;
  text: string;
  line: number;
  key: string;
  message: RegExp;
}

const head = 'version: 1\nrules:\n';
const bad: BadCase[] = [
  { name: 'a misspelt rule key', text: `${head}  - id: r\n    efect: allow\n`, line: 4, key: 'rules[0].efect', message: /unknown key "efect"/ },
  { name: 'a misspelt match key', text: `${head}  - id: r\n    match: { tol: x }\n    effect: allow\n`, line: 4, key: 'rules[0].match.tol', message: /unknown key/ },
  { name: 'a misspelt matcher key', text: `${head}  - id: r\n    match:\n      args:\n        owner: { equal: acme }\n    effect: allow\n`, line: 6, key: 'rules[0].match.args.owner.equal', message: /unknown key/ },
  { name: 'a misspelt top-level key', text: 'version: 1\ndefualt: deny\n', line: 2, key: 'defualt', message: /unknown key/ },
  { name: 'a bad effect', text: `${head}  - id: r\n    effect: permit\n`, line: 4, key: 'rules[0].effect', message: /allow|deny|ask/ },
  { name: 'a missing effect', text: `${head}  - id: r\n    match: { tool: x }\n`, line: 3, key: 'rules[0].effect', message: /allow.*deny.*ask/ },
  { name: 'a bad limit string', text: `${head}  - id: r\n    effect: allow\n    limit: 20 per hour\n`, line: 5, key: 'rules[0].limit', message: /not a rate/ },
  { name: 'a zero limit', text: `${head}  - id: r\n    effect: allow\n    limit: 0/hour\n`, line: 5, key: 'rules[0].limit', message: /not a rate/ },
  { name: 'a limit on a deny rule', text: `${head}  - id: r\n    effect: deny\n    limit: 1/hour\n`, line: 5, key: 'rules[0].limit', message: /only an allow rule/ },
  { name: 'a bad duration', text: `${head}  - id: r\n    effect: ask\n    ask: { timeout: 5 minutes }\n`, line: 5, key: 'rules[0].ask.timeout', message: /invalid duration "5 minutes"; use a duration like 250ms, 30s, 5m, 1h30m or 7d/ },
  { name: 'a bad grant ttl', text: `${head}  - id: r\n    effect: ask\n    ask:\n      grant: { ttl: forever, maxUses: 3 }\n`, line: 6, key: 'rules[0].ask.grant.ttl', message: /invalid duration "forever"/ },
  { name: 'a bare-number ask timeout (no unit)', text: `${head}  - id: r\n    effect: ask\n    ask:\n      timeout: 300\n`, line: 6, key: 'rules[0].ask.timeout', message: /invalid duration 300; a bare number has no unit: write 300s, 300m or 300h/ },
  { name: 'an ask timeout over a day', text: `${head}  - id: r\n    effect: ask\n    ask: { timeout: 1d1s }\n`, line: 5, key: 'rules[0].ask.timeout', message: /must be between 1s and 1d/ },
  { name: 'ask settings on an allow rule', text: `${head}  - id: r\n    effect: allow\n    ask: { timeout: 5m }\n`, line: 5, key: 'rules[0].ask', message: /only a rule with effect ask/ },
  { name: 'an allow rule that matches on annotations', text: `${head}  - id: r\n    match:\n      annotations: { readOnlyHint: true }\n    effect: allow\n`, line: 5, key: 'rules[0].match.annotations', message: /untrusted hints/ },
  { name: 'a misspelt annotation', text: `${head}  - id: r\n    match:\n      annotations: { readonly: true }\n    effect: deny\n`, line: 5, key: 'rules[0].match.annotations.readonly', message: /unknown key/ },
  { name: 'bad when syntax', text: `${head}  - id: r\n    effect: deny\n    when: 'args.x =='\n`, line: 5, key: 'rules[0].when', message: /CEL syntax/ },
  { name: 'a when with an unknown variable', text: `${head}  - id: r\n    effect: deny\n    when: 'user == "x"'\n`, line: 5, key: 'rules[0].when', message: /Unknown variable: user/ },
  { name: 'a when that is not a bool', text: `${head}  - id: r\n    effect: deny\n    when: '1 + 2'\n`, line: 5, key: 'rules[0].when', message: /must be a bool/ },
  { name: 'a when using a backtracking regex', text: `${head}  - id: r\n    effect: deny\n    when: 'args.x.matches("(a+)+$")'\n`, line: 5, key: 'rules[0].when', message: /matches\(\) is not allowed/ },
  { name: 'a bad regex', text: `${head}  - id: r\n    match:\n      args:\n        x: { regex: "(a" }\n    effect: allow\n`, line: 6, key: 'rules[0].match.args.x.regex', message: /RE2 syntax.*missing closing/ },
  { name: 'a lookbehind regex (not RE2)', text: `${head}  - id: r\n    match:\n      args:\n        x: { regex: "(?<=a)b" }\n    effect: allow\n`, line: 6, key: 'rules[0].match.args.x.regex', message: /RE2 syntax/ },
  { name: 'an empty matcher', text: `${head}  - id: r\n    match:\n      args:\n        x: {}\n    effect: allow\n`, line: 6, key: 'rules[0].match.args.x', message: /empty matcher/ },
  { name: 'min above max', text: `${head}  - id: r\n    match:\n      args:\n        x: { min: 5, max: 1 }\n    effect: allow\n`, line: 6, key: 'rules[0].match.args.x.min', message: /greater than max/ },
  { name: 'a duplicate rule id in one file', text: `${head}  - id: r\n    effect: allow\n  - id: r\n    effect: deny\n`, line: 5, key: 'rules[1].id', message: /duplicate rule id "r"/ },
  { name: 'a missing version', text: 'rules: []\n', line: 1, key: 'version', message: /must be 1|missing/ },
  { name: 'a bad rule id', text: `${head}  - id: "has space"\n    effect: allow\n`, line: 3, key: 'rules[0].id', message: /rule id/ },
  { name: 'a tool glob with an unbalanced brace {a,b', text: `${head}  - id: r\n    match: { tool: "gh__{create,delete" }\n    effect: deny\n`, line: 4, key: 'rules[0].match.tool', message: /malformed glob "gh__\{create,delete": unbalanced brace: "\{" at character 5 is never closed/ },
  { name: 'an agent glob with a reversed range [z-a]', text: `${head}  - id: r\n    match: { agent: "coder-[9-1]" }\n    effect: deny\n`, line: 4, key: 'rules[0].match.agent', message: /reversed range "9-1"/ },
  { name: 'a connector glob with a stray }', text: `${head}  - id: r\n    match: { connector: "git}" }\n    effect: deny\n`, line: 4, key: 'rules[0].match.connector', message: /"\}" at character 4 closes no "\{"/ },
  { name: 'a model glob with an unclosed [', text: `${head}  - id: r\n    match: { model: "claude-[3" }\n    effect: deny\n`, line: 4, key: 'rules[0].match.model', message: /unclosed "\["/ },
  { name: 'an argument glob with a reversed range [z-a]', text: `${head}  - id: r\n    match:\n      args:\n        branch: { glob: "release-[z-a]" }\n    effect: allow\n`, line: 6, key: 'rules[0].match.args.branch.glob', message: /glob: reversed range "z-a"/ },
  { name: 'an argument glob with an unbalanced brace {a,b', text: `${head}  - id: r\n    match:\n      args:\n        file: { glob: "*.{ts,js" }\n    effect: allow\n`, line: 6, key: 'rules[0].match.args.file.glob', message: /glob: unbalanced brace/ },
  { name: 'a path glob with a reversed range [z-a]', text: `${head}  - id: r\n    match:\n      args:\n        file: { path: { glob: "/repo/[z-a]/**" } }\n    effect: deny\n`, line: 6, key: 'rules[0].match.args.file.path.glob', message: /reversed range "z-a"/ },
  { name: 'a YAML syntax error', text: 'version: 1\nrules: [\n', line: 3, key: '', message: /YAML syntax/ },
];

describe('durations in a policy file', () => {
  it('1h30m is one duration (ask.timeout and grant ttl)', () => {
    const p = policyOf(`${head}  - id: r\n    effect: ask\n    ask: { timeout: 1h30m, grant: { ttl: 1d12h, maxUses: 3 } }\n`);
    expect(p.rules[0]?.ask).toEqual({ timeoutMs: 5_400_000, grant: { ttlMs: 129_600_000, maxUses: 3 } });
  });
});

describe('config errors name file:line:key', () => {
  it('has cases to run (guard)', () => {
    expect(bad.length).toBeGreaterThan(20);
  });
  it.each(bad)('$name', ({ text, line, key, message }) => {
    const issues = issuesOf(() => policyOf(text));
    const hit = issues.find((i) => i.key === key);
    expect(hit, JSON.stringify(issues)).toBeDefined();
    expect(hit?.file).toBe('/p/main.yaml');
    expect(hit?.line).toBe(line);
    expect(hit?.message).toMatch(message);
  });

  it('a rule id defined in two files is an error at the second definition', () => {
    const issues = issuesOf(() =>
      policyOf('version: 1\nrules:\n  - id: same\n    effect: allow\n', { '/p/second.yaml': 'version: 1\n\nrules:\n  - id: other\n    effect: deny\n  - id: same\n    effect: deny\n' }),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: '/p/second.yaml', line: 6, key: 'rules[1].id' });
    expect(issues[0]?.message).toMatch(/duplicate rule id "same" \(first defined at \/p\/main.yaml:3\)/);
  });

  it('a rule id in a preset and in the extending file is a duplicate', () => {
    const issues = issuesOf(() =>
      policyOf('version: 1\nextends: [presets/b]\nrules:\n  - id: reads\n    effect: allow\n', { '/p/presets/b.yaml': 'version: 1\nrules:\n  - id: reads\n    effect: allow\n' }),
    );
    expect(issues[0]).toMatchObject({ file: '/p/main.yaml', line: 4, key: 'rules[0].id' });
  });

  it('an extends naming a missing file is an error at that entry', () => {
    const issues = issuesOf(() => policyOf('version: 1\nextends:\n  - presets/nope\n'));
    expect(issues[0]).toMatchObject({ file: '/p/main.yaml', line: 3, key: 'extends[0]' });
  });

  it('an extends cycle is an error', () => {
    const issues = issuesOf(() => policyOf('version: 1\nextends: [presets/a]\n', { '/p/presets/a.yaml': 'version: 1\nextends: [../main]\n' }));
    expect(issues[0]?.message).toMatch(/cycle/);
  });

  it('errors from several files are all reported at once', () => {
    const issues = issuesOf(() => policyOf('version: 1\nrules:\n  - id: a\n    effect: nope\n', { '/p/b.yaml': 'version: 2\n' }));
    expect(new Set(issues.map((i) => i.file))).toEqual(new Set(['/p/main.yaml', '/p/b.yaml']));
  });

  it('the ConfigError message lists file:line:col: key: problem, with code CONFIG_INVALID', () => {
    try {
      policyOf(`${head}  - id: r\n    effect: permit\n`);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).code).toBe('CONFIG_INVALID');
      expect((e as ConfigError).message).toMatch(/^\/p\/main\.yaml:4:\d+: rules\[0\]\.effect: /);
    }
  });

  it('a missing policies folder is a config error', () => {
    expect(() => loadPolicies('/nonexistent/policies')).toThrow(ConfigError);
  });

  it('loads only top-level *.yaml / *.yml, skipping dot files and sub-folders', () => {
    const dir = tmpDir({
      'a.yaml': 'version: 1\nrules:\n  - id: a\n    effect: deny\n',
      'b.yml': 'version: 1\nrules:\n  - id: b\n    effect: deny\n',
      '.swap.yaml': 'not: valid',
      'notes.txt': 'ignored',
      'presets/p.yaml': 'version: 1\nrules:\n  - id: p\n    effect: allow\n',
    });
    expect(loadPolicies(dir).rules.map((r) => r.id)).toEqual(['a', 'b']);
  });

  it('an allow rule that matches every call is loaded with a warning', () => {
    expect(policyOf(`${head}  - id: all\n    effect: allow\n`).warnings.join()).toMatch(/allows every call/);
  });
});

describe('argument glob syntax that RE2 globs do not support is refused at load', () => {
  it.each(['!secret*', '@(a|b)', '+(a)', '*(a)', '?(a)', '{a,b'])('%s', (glob) => {
    const issues = issuesOf(() => policyOf(`version: 1\nrules:\n  - id: r\n    match:\n      args:\n        x: { glob: ${JSON.stringify(glob)} }\n    effect: allow\n`));
    expect(issues[0]).toMatchObject({ line: 6, key: 'rules[0].match.args.x.glob' });
  });
});
