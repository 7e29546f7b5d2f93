import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConfigIssue } from '../../src/config/load-yaml.js';
import { parseAuthority } from '../../src/egress/target.js';
import { runPolicyTests } from '../../src/policy/test-cases.js';
import { issuesOf, rules, tmpDir } from './helpers.js';

const p = rules(`  - id: npm
    match: { agent: "coder*", egress: { host: registry.npmjs.org, port: 443 } }
    effect: allow
  - id: pypi-simple
    match: { agent: coder, egress: { host: pypi.org, port: 80, method: GET, path: "/simple/**" } }
    effect: allow
  - id: gh-connector
    match: { connector: github, egress: { host: api.github.com, port: 443 } }
    effect: allow
  - id: reads
    match: { tool: "github__get_*" }
    effect: allow
`);

function casesFile(text: string): string {
  return join(tmpDir({ 'cases.yaml': text }), 'cases.yaml');
}

const keys = (issues: ConfigIssue[]): string[] => issues.map((i) => `${i.line} ${i.key}`);

describe('policy test cases: egress connections (egress: "host:port")', () => {
  it('decides egress cases as the proxy would, next to tool cases', () => {
    const file = casesFile(`cases:
  - agent: coder-1
    egress: REGISTRY.npmjs.org.:443
    expect: allow
    expectRule: npm
  - agent: coder
    egress: pypi.org:80
    method: get
    path: /simple/requests/
    expect: allow
    expectRule: pypi-simple
  - name: a tunnel to the plain-http rule is not allowed
    agent: coder
    egress: pypi.org:80
    expect: deny
    expectRule: null
  - connector: github
    egress: api.github.com:443
    expect: allow
  - agent: github
    egress: api.github.com:443
    expect: deny
  - agent: coder-1
    tool: github__get_issue
    expect: allow
    expectRule: reads
`);
    const r = runPolicyTests(p, file, parseAuthority);
    expect(r.results.filter((x) => !x.ok)).toEqual([]);
    expect(r.passed).toBe(6);
    expect(r.results[0]?.name).toBe('coder-1 → REGISTRY.npmjs.org.:443');
    expect(r.results[3]?.name).toBe('github → api.github.com:443');
  });

  it('a failing egress case says what was expected and what came', () => {
    const file = casesFile('cases:\n  - agent: coder-1\n    egress: evil.example:443\n    expect: allow\n');
    const r = runPolicyTests(p, file, parseAuthority);
    expect(r.results[0]).toMatchObject({ ok: false, line: 2, problem: 'expected allow, got deny' });
  });

  it('a bad target (no port, port 0 or 65536, a URL, a space) is an error naming line and key', () => {
    for (const bad of ['registry.npmjs.org', 'registry.npmjs.org:0', 'registry.npmjs.org:65536', 'https://registry.npmjs.org', '"evil example:443"']) {
      const issues = issuesOf(() => runPolicyTests(p, casesFile(`cases:\n  - agent: a\n    egress: ${bad}\n    expect: deny\n`), parseAuthority));
      expect(keys(issues), bad).toEqual(['3 cases[0].egress']);
    }
  });

  it('refuses mixed or incomplete cases: tool and egress, two callers, no caller, method without path, tool-only keys, a query in the path', () => {
    const bad = [
      ['agent: a\n    tool: t\n    egress: h:443\n    expect: deny', 'cases[0].tool'],
      ['agent: a\n    connector: c\n    egress: h:443\n    expect: deny', 'cases[0].agent'],
      ['egress: h:443\n    expect: deny', 'cases[0].agent'],
      ['agent: a\n    egress: h:80\n    method: GET\n    expect: deny', 'cases[0].method'],
      ['agent: a\n    egress: h:443\n    args: { x: 1 }\n    expect: deny', 'cases[0].args'],
      ['agent: a\n    tool: t\n    path: /x\n    expect: deny', 'cases[0].path'],
      ['agent: a\n    egress: h:80\n    method: GET\n    path: "/x?token=1"\n    expect: deny', 'cases[0].path'],
    ] as const;
    for (const [text, key] of bad) {
      const issues = issuesOf(() => runPolicyTests(p, casesFile(`cases:\n  - ${text}\n`), parseAuthority));
      expect(issues.map((i) => i.key), text).toContain(key);
    }
  });

  it('without a target parser an egress case is refused, not guessed at', () => {
    const issues = issuesOf(() => runPolicyTests(p, casesFile('cases:\n  - agent: a\n    egress: h:443\n    expect: deny\n')));
    expect(keys(issues)).toEqual(['3 cases[0].egress']);
  });
});
