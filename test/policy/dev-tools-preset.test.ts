import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAuthority } from '../../src/egress/target.js';
import { evaluateEgress } from '../../src/policy/egress.js';
import { evaluate, hiddenFor } from '../../src/policy/evaluate.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';
import { runPolicyTests, splitToolName } from '../../src/policy/test-cases.js';
import type { CallContext, EgressCaller, Policy } from '../../src/policy/types.js';
import { readFileSync } from 'node:fs';

const root = join(import.meta.dirname, '../../policies');
const preset = join(root, 'presets/dev-tools.yaml');
const balanced = join(root, 'presets/balanced.yaml');
const coder: EgressCaller = { kind: 'agent', name: 'coder-1' };

const npm = ['registry.npmjs.org'];
const pypi = ['pypi.org', 'files.pythonhosted.org'];
const github = ['github.com', 'api.github.com', 'codeload.github.com', 'raw.githubusercontent.com', 'objects.githubusercontent.com', 'release-assets.githubusercontent.com'];
const allowed = [...npm, ...pypi, ...github];

/** The decision for a CONNECT tunnel to `authority`, with the host read as the proxy reads it. */
function tunnel(p: Policy, authority: string, caller: EgressCaller = coder) {
  const t = parseAuthority(authority);
  if (!t.ok) throw new Error(t.reason);
  return evaluateEgress(p, { caller, host: t.value.host, port: t.value.port });
}

describe('presets/dev-tools.yaml', () => {
  const p = loadPolicyFiles([preset]);

  it('has hosts to check (guard)', () => {
    expect(allowed.length).toBe(9);
    expect(p.rules.length).toBeGreaterThan(0);
  });

  it('loads through the real loader with no warnings, egress rules only, no default of its own', () => {
    expect(p.warnings).toEqual([]);
    expect(p.rules.every((r) => r.on === 'egress')).toBe(true);
    expect(readFileSync(preset, 'utf8')).not.toMatch(/^default:/m);
  });

  it('no rule is a wildcard over hosts, and every rule is HTTPS (port 443) for agents only', () => {
    for (const r of p.rules) {
      expect(r.egress?.host.pattern, r.id).not.toMatch(/[*?[\]]/);
      expect(r.egress?.ports, r.id).toEqual([443]);
      expect(r.egress?.methods, r.id).toBeUndefined();
      expect(r.egress?.path, r.id).toBeUndefined();
      expect(r.connector, r.id).toBeNull();
      expect(r.limit, r.id).toBeUndefined();
    }
  });

  it.each(allowed)('allows any agent a tunnel to %s:443', (host) => {
    for (const name of ['coder-1', 'ci', 'x']) expect(tunnel(p, `${host}:443`, { kind: 'agent', name }).effect).toBe('allow');
  });

  it.each(allowed)('a glob decides %s:443, so the proxy still refuses it on a private or loopback address', (host) => {
    expect(tunnel(p, `${host}:443`).hostNamed).toBe(false);
  });

  it.each(allowed)('refuses plain http to %s:80', (host) => {
    expect(tunnel(p, `${host}:80`)).toMatchObject({ effect: 'deny', ruleId: null });
  });

  it('refuses git over ssh (github.com:22) and other ports', () => {
    for (const a of ['github.com:22', 'github.com:9418', 'registry.npmjs.org:8443', 'pypi.org:22']) expect(tunnel(p, a).effect, a).toBe('deny');
  });

  it.each([
    'evil.example',
    'registry.npmjs.org.evil.example',
    'evil.registry.npmjs.org',
    'registry-npmjs.org',
    'pypi.org.evil.example',
    'github.com.evil.example',
    'evilgithub.com',
    'gist.github.com',
    'uploads.github.com',
    'upload.pypi.org',
    'githubusercontent.com',
    '140.82.112.3',
  ])('refuses %s:443 (a look-alike, an upload endpoint or a host it does not name)', (host) => {
    expect(tunnel(p, `${host}:443`)).toMatchObject({ effect: 'deny', ruleId: null });
  });

  it('a trailing dot or upper case is the same name once the proxy has read it (parseAuthority); raw, the matcher refuses it', () => {
    expect(tunnel(p, 'registry.npmjs.org.:443').effect).toBe('allow');
    expect(tunnel(p, 'GitHub.COM:443').effect).toBe('allow');
    expect(evaluateEgress(p, { caller: coder, host: 'registry.npmjs.org.', port: 443 }).effect).toBe('deny');
  });

  it('does not open egress to connectors (they get only the hosts their own rules name)', () => {
    expect(tunnel(p, 'api.github.com:443', { kind: 'connector', name: 'github' }).effect).toBe('deny');
  });

  it('a rule without method or path matches any request to its host and port (plain HTTP to :443 too)', () => {
    expect(evaluateEgress(p, { caller: coder, host: 'pypi.org', port: 443, method: 'GET', path: '/simple/' }).effect).toBe('allow');
  });
});

describe('extending presets/dev-tools changes no tool-call decision', () => {
  const tools = [
    'everything__echo',
    'everything__get-env',
    'github__get_issue',
    'github__create_issue',
    'github__delete_repo',
    'github__fork_repo',
    'slack__post_message',
    'jira__search',
  ];
  const ctx = (tool: string, over: Partial<CallContext> = {}): CallContext => ({ agent: 'coder-1', ...splitToolName(tool), tool, args: {}, time: new Date('2025-01-06T10:00:00Z'), ...over });

  it('has tools to check (guard)', () => expect(tools.length).toBeGreaterThan(0));

  it('balanced + dev-tools decides every tool and model call as balanced alone, and hides the same tools', () => {
    const alone = loadPolicyFiles([balanced]);
    const both = loadPolicyFiles([balanced, preset]);
    expect(both.default).toBe(alone.default);
    expect(both.warnings).toEqual([]);
    for (const t of tools) {
      expect(evaluate(both, ctx(t)), t).toEqual(evaluate(alone, ctx(t)));
      expect(evaluate(both, ctx(t, { annotations: { destructiveHint: true } })), t).toEqual(evaluate(alone, ctx(t, { annotations: { destructiveHint: true } })));
      expect(hiddenFor(both, 'coder-1', splitToolName(t).connector, t), t).toBe(hiddenFor(alone, 'coder-1', splitToolName(t).connector, t));
    }
    const model = ctx('claude-x', { kind: 'model', connector: 'anthropic' });
    expect(evaluate(both, model)).toEqual(evaluate(alone, model));
  });

  it('a policy that states default: allow keeps it (the preset casts no vote, so no "files disagree" warning)', () => {
    const files = {
      '/p/main.yaml': 'version: 1\ndefault: allow\nextends: [dev-tools]\n',
      '/p/dev-tools.yaml': readFileSync(preset, 'utf8'),
    };
    const q = loadPolicyFiles(['/p/main.yaml'], memorySource(files));
    expect(q.default).toBe('allow');
    expect(q.warnings).toEqual([]);
    expect(evaluate(q, ctx('github__fork_repo')).effect).toBe('allow');
  });
});

describe('policies/tests/dev-tools.cases.yaml', () => {
  const cases = join(root, 'tests/dev-tools.cases.yaml');
  it.each([
    ['the preset alone', [preset]],
    ['balanced + dev-tools', [balanced, preset]],
  ])('passes against %s', (_name, files) => {
    const r = runPolicyTests(loadPolicyFiles(files), cases, parseAuthority);
    expect(r.results.length).toBeGreaterThan(5);
    expect(r.results.filter((x) => !x.ok)).toEqual([]);
  });
});
