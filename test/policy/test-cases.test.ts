import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load-yaml.js';
import { runPolicyTests, splitToolName } from '../../src/policy/test-cases.js';
import { rules, tmpDir } from './helpers.js';
import { join } from 'node:path';

const p = rules(`  - id: gh-issues
    match: { tool: github__create_issue, args: { owner: { equals: acme } } }
    effect: allow
  - id: never-delete
    match: { tool: "*__delete_*" }
    effect: deny
  - id: destructive
    match: { annotations: { destructiveHint: true } }
    effect: ask
  - id: office-hours
    match: { tool: slack__post_message }
    when: 'time.getHours() < 18'
    effect: allow
`);

function casesFile(text: string): string {
  const dir = tmpDir({ 'cases.yaml': text });
  return join(dir, 'cases.yaml');
}

describe('runPolicyTests', () => {
  it('passes cases whose decision and rule are as expected', () => {
    const file = casesFile(`cases:
  - name: acme issues allowed
    agent: coder-1
    tool: github__create_issue
    args: { owner: acme }
    expect: allow
    expectRule: gh-issues
  - agent: coder-1
    tool: github__delete_repo
    expect: deny
  - agent: coder-1
    tool: github__create_issue
    args: { owner: acme }
    annotations: { destructiveHint: true }
    expect: ask
  - agent: coder-1
    tool: slack__post_message
    time: "2025-01-06T20:00:00Z"
    expect: deny
    expectRule: null
`);
    const r = runPolicyTests(p, file);
    expect(r).toMatchObject({ passed: 4, failed: 0 });
    expect(r.results[0]).toMatchObject({ name: 'acme issues allowed', line: 2, ok: true });
    expect(r.results[1]?.name).toBe('coder-1 → github__delete_repo');
  });

  it('reports a failing case with what was expected, what came and the line', () => {
    const file = casesFile(`cases:
  - agent: coder-1
    tool: github__create_issue
    args: { owner: evil }
    expect: allow
  - agent: coder-1
    tool: github__delete_repo
    expect: deny
    expectRule: some-other-rule
`);
    const r = runPolicyTests(p, file);
    expect(r).toMatchObject({ passed: 0, failed: 2 });
    expect(r.results[0]).toMatchObject({ ok: false, line: 2, problem: 'expected allow, got deny' });
    expect(r.results[1]?.problem).toBe('expected rule some-other-rule, got never-delete');
  });

  it('an invalid cases file is a ConfigError naming file:line:key', () => {
    const file = casesFile('cases:\n  - agent: a\n    tool: t\n    expect: maybe\n');
    expect(() => runPolicyTests(p, file)).toThrow(ConfigError);
    try {
      runPolicyTests(p, file);
    } catch (e) {
      expect((e as ConfigError).issues[0]).toMatchObject({ line: 4, key: 'cases[0].expect' });
    }
  });

  it('splits connector and upstream tool from the exposed name', () => {
    expect(splitToolName('github__create_issue')).toEqual({ connector: 'github', upstreamTool: 'create_issue' });
    expect(splitToolName('jira__search__x')).toEqual({ connector: 'jira', upstreamTool: 'search__x' });
    expect(splitToolName('plain')).toEqual({ connector: '', upstreamTool: 'plain' });
  });
});
