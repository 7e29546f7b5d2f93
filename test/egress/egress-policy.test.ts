/**
 * Egress rules in the policy: validated at load, decided by a pure function,
 * default deny, and never confused with tool or model rules.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, hiddenFor } from '../../src/policy/evaluate.js';
import { evaluateEgress } from '../../src/policy/egress.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';
import type { EgressRequest, Policy } from '../../src/policy/types.js';
import { call, issuesOf } from '../policy/helpers.js';

function policy(yamlRules: string, head = 'version: 1\n'): Policy {
  return loadPolicyFiles(['/p/main.yaml'], memorySource({ '/p/main.yaml': `${head}rules:\n${yamlRules}` }));
}

const agent = (name = 'coder', over: Partial<EgressRequest> = {}): EgressRequest => ({ caller: { kind: 'agent', name }, host: 'registry.npmjs.org', port: 443, ...over });

const NPM = `
  - id: npm
    match: { agent: "coder*", egress: { host: registry.npmjs.org, port: 443 } }
    effect: allow
`;

describe('egress rules: load-time validation', () => {
  const refused: Array<[string, string, RegExp]> = [
    ['ask settings on an egress allow rule', `  - { id: a, match: { egress: { host: x.org, port: 443 } }, effect: allow, ask: { timeout: 1m } }`, /only a rule with effect ask/],
    ['an egress ask timeout over a day', `  - { id: a, match: { egress: { host: x.org, port: 443 } }, effect: ask, ask: { timeout: 2d } }`, /timeout/],
    ['a rule mixing a tool and egress', `  - { id: a, match: { tool: "gh__*", egress: { host: x.org, port: 443 } }, effect: allow }`, /egress rule matches agent or connector/],
    ['a rule naming both agent and connector', `  - { id: a, match: { agent: a, connector: c, egress: { host: x.org, port: 443 } }, effect: allow }`, /never both/],
    ['a malformed host glob', `  - { id: a, match: { egress: { host: "{a,b", port: 443 } }, effect: deny }`, /unbalanced brace/],
    ['port 0', `  - { id: a, match: { egress: { host: x.org, port: 0 } }, effect: allow }`, /1 to 65535/],
    ['port 65536', `  - { id: a, match: { egress: { host: x.org, port: [443, 65536] } }, effect: allow }`, /1 to 65535/],
    ['no port', `  - { id: a, match: { egress: { host: x.org } }, effect: allow }`, /port/],
    ['a bracketed IPv6 host', `  - { id: a, match: { egress: { host: "[::1]", port: 443 } }, effect: allow }`, /without brackets/],
    ['a URL for a host', `  - { id: a, match: { egress: { host: "https://x.org/", port: 443 } }, effect: allow }`, /host name or address only/],
    ['a misspelt key', `  - { id: a, match: { egress: { hots: x.org, port: 443 } }, effect: allow }`, /hots/],
    ['method CONNECT', `  - { id: a, match: { egress: { host: x.org, port: 80, method: CONNECT } }, effect: allow }`, /CONNECT/],
    ['a relative path', `  - { id: a, match: { egress: { host: x.org, port: 80, path: "simple/*" } }, effect: allow }`, /starts with/],
    ['when on an egress rule', `  - { id: a, match: { egress: { host: x.org, port: 80 } }, when: "true", effect: allow }`, /when/],
  ];
  it('the table is not empty', () => expect(refused.length).toBeGreaterThan(5));
  it.each(refused)('%s', (_name, yaml, message) => {
    const issues = issuesOf(() => policy(`${yaml}\n`));
    expect(issues.map((i) => `${i.key}: ${i.message}`).join('\n')).toMatch(message);
    expect(issues[0]?.file).toBe('/p/main.yaml');
  });

  it('an egress allow rule for everyone is loaded with a warning', () => {
    const p = policy(`  - { id: all, match: { egress: { host: "*", port: 443 } }, effect: allow }\n`);
    expect(p.warnings.join('\n')).toMatch(/egress rule "all" lets every agent and every connector reach \*/);
  });
});

describe('egress decisions', () => {
  it('default deny: no egress rule means deny even when the tool default is allow', () => {
    const p = policy(`  - { id: t, match: { tool: "gh__*" }, effect: allow }\n`, 'version: 1\ndefault: allow\n');
    expect(evaluateEgress(p, agent())).toMatchObject({ effect: 'deny', ruleId: null });
  });

  it('a rule allowing every tool call of an agent does not open egress for it', () => {
    const p = policy(`  - { id: everything, match: { agent: coder }, effect: allow }\n`);
    expect(evaluateEgress(p, agent()).effect).toBe('deny');
  });

  it('an egress rule never decides a tool or model call, nor unhides tools', () => {
    const p = policy(NPM);
    expect(evaluate(p, call({ agent: 'coder' })).ruleId).toBeNull();
    expect(evaluate(p, call({ agent: 'coder', kind: 'model' })).ruleId).toBeNull();
    expect(hiddenFor(p, 'coder', 'github', 'github__create_issue')).toBe(true);
  });

  it('allows the named host and port to the matching agent only', () => {
    const p = policy(NPM);
    expect(evaluateEgress(p, agent())).toMatchObject({ effect: 'allow', ruleId: 'npm', hostNamed: true });
    expect(evaluateEgress(p, agent('reviewer')).effect).toBe('deny');
    expect(evaluateEgress(p, agent('coder', { port: 80 })).effect).toBe('deny');
    expect(evaluateEgress(p, agent('coder', { host: 'registry.npmjs.org.evil.com' })).effect).toBe('deny');
  });

  it('an agent rule does not let a connector of the same name through, nor the reverse', () => {
    const p = policy(NPM + `  - { id: gh, match: { connector: github, egress: { host: api.github.com, port: 443 } }, effect: allow }\n`);
    expect(evaluateEgress(p, { caller: { kind: 'connector', name: 'coder' }, host: 'registry.npmjs.org', port: 443 }).effect).toBe('deny');
    expect(evaluateEgress(p, { caller: { kind: 'connector', name: 'github' }, host: 'api.github.com', port: 443 }).effect).toBe('allow');
    expect(evaluateEgress(p, { caller: { kind: 'agent', name: 'github' }, host: 'api.github.com', port: 443 }).effect).toBe('deny');
  });

  it('host globs match subdomains but are not "named": hostNamed is false', () => {
    const p = policy(`  - { id: gh, match: { egress: { host: "*.github.com", port: [443] } }, effect: allow }\n`);
    expect(evaluateEgress(p, agent('x', { host: 'api.github.com' }))).toMatchObject({ effect: 'allow', hostNamed: false });
    expect(evaluateEgress(p, agent('x', { host: 'github.com' })).effect).toBe('deny');
  });

  it('an exact allow rule names the host even when a limited glob rule decides', () => {
    const p = policy(`  - { id: glob, match: { egress: { host: "*.test", port: 443 } }, effect: allow, limit: 5/minute }\n  - { id: exact, match: { egress: { host: registry.test, port: 443 } }, effect: allow }\n`);
    expect(evaluateEgress(p, agent('x', { host: 'registry.test' }))).toMatchObject({ ruleId: 'glob', hostNamed: true, limit: { ruleId: 'glob' } });
    expect(evaluateEgress(p, agent('x', { host: 'other.test' }))).toMatchObject({ ruleId: 'glob', hostNamed: false });
  });

  it('a deny rule naming the host exactly does not make it "named"', () => {
    const p = policy(`  - { id: no, match: { egress: { host: evil.test, port: 443 } }, effect: deny }\n`);
    expect(evaluateEgress(p, agent('x', { host: 'evil.test' }))).toMatchObject({ effect: 'deny', hostNamed: false });
  });

  it('a rule host is compared in lower case and IP literals in one spelling', () => {
    const p = policy(`  - { id: up, match: { egress: { host: "Registry.NPMJS.org", port: 443 } }, effect: allow }\n  - { id: v6, match: { egress: { host: "0:0::1", port: 443 } }, effect: allow }\n`);
    expect(evaluateEgress(p, agent()).effect).toBe('allow');
    expect(evaluateEgress(p, agent('x', { host: '::1' })).effect).toBe('allow');
  });

  it('deny beats allow whatever the order', () => {
    const p = policy(NPM + `  - { id: no, match: { egress: { host: "*.npmjs.org", port: 443 } }, effect: deny }\n`);
    expect(evaluateEgress(p, agent())).toMatchObject({ effect: 'deny', ruleId: 'no' });
  });

  describe('plain HTTP: method and path', () => {
    const p = policy(`
  - id: simple
    match: { agent: coder, egress: { host: pypi.org, port: 80, method: [GET, head], path: "/simple/**" } }
    effect: allow
  - id: no-upload
    match: { egress: { host: upload.pypi.org, port: 443, method: POST } }
    effect: deny
  - id: upload
    match: { egress: { host: upload.pypi.org, port: 443 } }
    effect: allow
`);
    const http = (method: string, path: string, host = 'pypi.org', port = 80): EgressRequest => ({ caller: { kind: 'agent', name: 'coder' }, host, port, method, path });
    it('GET under the path is allowed, HEAD too', () => {
      expect(evaluateEgress(p, http('GET', '/simple/requests/')).ruleId).toBe('simple');
      expect(evaluateEgress(p, http('HEAD', '/simple/x')).effect).toBe('allow');
    });
    it('POST to an allowed path is refused', () => expect(evaluateEgress(p, http('POST', '/simple/requests/')).effect).toBe('deny'));
    it('a path outside the glob is refused', () => expect(evaluateEgress(p, http('GET', '/admin')).effect).toBe('deny'));
    it('dot segments and encoded slashes cannot walk out of an allowed path', () => {
      for (const path of ['/simple/../admin', '/simple/%2e%2e/admin', '/simple/a%2Fb', '/simple/..\\admin']) {
        expect(evaluateEgress(p, http('GET', path)).effect, path).toBe('deny');
      }
    });
    it('a CONNECT tunnel cannot use an allow rule on method and path', () => {
      expect(evaluateEgress(p, { caller: { kind: 'agent', name: 'coder' }, host: 'pypi.org', port: 80 }).effect).toBe('deny');
    });
    it('a deny rule on a method holds for a tunnel, which cannot show its method (fail closed)', () => {
      expect(evaluateEgress(p, { caller: { kind: 'agent', name: 'coder' }, host: 'upload.pypi.org', port: 443 })).toMatchObject({ effect: 'deny', ruleId: 'no-upload' });
    });
  });

  it('a rate limit on an allow rule is handed to the caller', () => {
    const p = policy(`  - { id: npm, match: { egress: { host: registry.npmjs.org, port: 443 } }, effect: allow, limit: 10/minute }\n`);
    expect(evaluateEgress(p, agent()).limit).toEqual({ ruleId: 'npm', capacity: 10, perMs: 60_000 });
  });
});
