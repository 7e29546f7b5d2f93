import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../src/config/load-yaml.js';
import { loadRegistry } from '../../src/registry/load.js';
import { bindSecrets, ownerByName } from '../../src/secrets/bindings.js';
import { writeTree } from './helpers.js';

function issuesOf(connectors: Record<string, unknown>[]): ConfigIssue[] {
  const { root, dirs } = writeTree(connectors);
  try {
    loadRegistry(dirs.registry);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return [];
}

const http = (name: string, headers: Record<string, string>) => ({ name, kind: 'http', url: 'https://example.com/mcp', headers });
const stdio = (name: string, env: Record<string, string>) => ({ name, kind: 'stdio', command: 'node', args: ['x.js'], env });

describe('secret ownership at load', () => {
  it("connector_referencing_another_connectors_secret_is_rejected (named after its owner): file, line and key", () => {
    const issues = issuesOf([http('github', { Authorization: 'Bearer ${secret:github-token}' }), http('thief', { 'X-Note': 'hi', Authorization: 'Bearer ${secret:github-token}' })]);
    expect(issues).toHaveLength(1);
    const [i] = issues;
    expect(i?.file).toMatch(/thief\.yaml$/);
    expect(i?.key).toBe('headers.Authorization');
    expect(i?.line).toBeGreaterThan(1);
    expect(i?.message).toContain('belongs to connector "github"');
  });

  it('a secret named after a connector belongs to it even when that connector does not use it', () => {
    const issues = issuesOf([stdio('jira', {}), stdio('other', { JIRA: '${secret:jira.api-token}' })]);
    expect(issues.map((i) => i.key)).toEqual(['env.JIRA']);
  });

  it('an unclaimed secret referenced by two connectors is rejected in the second, naming the first', () => {
    const issues = issuesOf([stdio('alpha', { T: '${secret:shared-token}' }), stdio('beta', { T: '${secret:shared-token}' })]);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.file).toMatch(/beta\.yaml$/);
    expect(issues[0]?.message).toMatch(/already bound to connector "alpha" at .*alpha\.yaml \(env\.T\)/);
  });

  it('a secret used by one connector only, under any name, is bound to it', () => {
    expect(issuesOf([stdio('alpha', { T: '${secret:shared-token}', U: 'x-${secret:shared-token}' }), http('github', { Authorization: 'Bearer ${secret:github-token}' })])).toEqual([]);
  });

  it('the longest connector name wins: github-enterprise-token belongs to github-enterprise', () => {
    expect(ownerByName('github-enterprise-token', ['github', 'github-enterprise'])).toBe('github-enterprise');
    expect(ownerByName('github-token', ['github', 'github-enterprise'])).toBe('github');
    expect(ownerByName('githubber', ['github'])).toBeUndefined();
    expect(ownerByName('github', ['github'])).toBe('github');
  });

  it('secrets cannot go into the URL or a routing header', () => {
    const url = issuesOf([{ name: 'u', kind: 'http', url: 'https://${secret:u-host}/mcp' }]);
    expect(url.map((i) => i.key)).toContain('url');
    const host = issuesOf([http('h', { Host: '${secret:h-token}' })]);
    expect(host.map((i) => i.key)).toEqual(['headers.Host']);
  });

  it('bindings map each secret to exactly one connector', () => {
    const { bindings, problems } = bindSecrets([
      { name: 'a', kind: 'stdio', file: 'a.yaml', env: { X: '${secret:one-token}' } } as never,
      { name: 'b', kind: 'http', file: 'b.yaml', headers: { Authorization: 'Bearer ${secret:b-token}' } } as never,
    ]);
    expect(problems).toEqual([]);
    expect([...bindings.owner]).toEqual([
      ['one-token', 'a'],
      ['b-token', 'b'],
    ]);
  });
});
