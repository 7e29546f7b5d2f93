import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluate, hiddenFor } from '../../src/policy/evaluate.js';
import { loadPolicies, loadPolicyFiles } from '../../src/policy/load.js';
import { runPolicyTests, splitToolName } from '../../src/policy/test-cases.js';
import type { CallContext, Effect, ToolAnnotations } from '../../src/policy/types.js';
import { rules } from './helpers.js';

const root = join(import.meta.dirname, '../../policies');

function decide(policy: ReturnType<typeof loadPolicies>, tool: string, annotations?: ToolAnnotations): Effect {
  const ctx: CallContext = { agent: 'coder-1', ...splitToolName(tool), tool, args: {}, time: new Date() };
  if (annotations !== undefined) ctx.annotations = annotations;
  return evaluate(policy, ctx).effect;
}

const everythingTools = ['echo', 'get-sum', 'get-tiny-image', 'get-structured-content', 'get-annotated-message', 'trigger-long-running-operation'];
const reads = ['github__get_issue', 'github__list_issues', 'github__search_issues', 'slack__list_channels', 'jira__search'];
const writes = ['github__create_issue', 'github__comment_on_issue', 'slack__post_message', 'slack__reply_in_thread', 'jira__create_issue', 'jira__transition_issue'];
const deletes = ['github__delete_repo', 'slack__delete_message', 'jira__delete_issue'];

describe('shipped policies', () => {
  it('has tools to check (guard)', () => {
    expect(everythingTools.length * reads.length * writes.length * deletes.length).toBeGreaterThan(0);
  });

  it('every preset file loads without errors or warnings', () => {
    const presets = readdirSync(join(root, 'presets')).filter((f) => f.endsWith('.yaml'));
    expect(presets.sort()).toEqual(['balanced.yaml', 'dev-tools.yaml', 'restricted.yaml']);
    for (const f of presets) expect(loadPolicyFiles([join(root, 'presets', f)]).warnings).toEqual([]);
  });

  describe('the active policy (default.yaml → balanced)', () => {
    const p = loadPolicies(root);
    it('is the balanced preset', () => {
      expect(p.files.map((f) => f.slice(root.length + 1))).toEqual(['presets/balanced.yaml', 'default.yaml']);
      expect(p.default).toBe('deny');
    });
    it.each(everythingTools)("allows the everything demo server's %s so npm start works", (t) => {
      expect(decide(p, `everything__${t}`)).toBe('allow');
    });
    it('asks before the demo server dumps its environment (get-env)', () => {
      expect(decide(p, 'everything__get-env')).toBe('ask');
    });
    it.each(reads)('allows the read %s', (t) => expect(decide(p, t)).toBe('allow'));
    it.each(writes)('asks before the write %s', (t) => expect(decide(p, t)).toBe('ask'));
    it.each(deletes)('denies the delete %s', (t) => expect(decide(p, t)).toBe('deny'));
    it('asks when a read-named tool says it is destructive', () => {
      expect(decide(p, 'github__get_issue', { destructiveHint: true })).toBe('ask');
    });
    it('denies a tool no rule names', () => {
      expect(decide(p, 'github__fork_repo')).toBe('deny');
    });
  });

  describe('the restricted preset', () => {
    const p = loadPolicyFiles([join(root, 'presets/restricted.yaml')]);
    it.each(reads)('allows the read %s', (t) => expect(decide(p, t)).toBe('allow'));
    it.each([...writes, ...deletes, 'everything__get-env', 'everything__toggle-simulated-logging'])('denies %s', (t) => expect(decide(p, t)).toBe('deny'));
    it('allows the read-only demo tools', () => {
      expect(decide(p, 'everything__echo')).toBe('allow');
    });
    it('denies a read-named tool that says it is not read-only', () => {
      expect(decide(p, 'github__get_issue', { readOnlyHint: false })).toBe('deny');
      expect(decide(p, 'github__get_issue', { destructiveHint: true })).toBe('deny');
    });
  });
});

describe('hiddenFor (tools/list)', () => {
  const p = rules(`  - id: reads
    match: { tool: "github__get_*" }
    effect: allow
  - id: ops-no-github
    match: { agent: ops, connector: github }
    effect: deny
  - id: never-delete
    match: { tool: "*__delete_*" }
    effect: deny
  - id: only-acme
    match: { tool: github__create_issue, args: { owner: { equals: acme } } }
    effect: allow
  - id: destructive
    match: { annotations: { destructiveHint: true } }
    effect: deny
  - id: deny-some-args
    match: { tool: github__update_issue, args: { owner: { equals: evil } } }
    effect: deny
  - id: night
    match: { tool: github__merge_pr }
    when: 'time.getHours() < 6'
    effect: deny
`);
  it('hides a tool that an unconditional deny rule covers', () => {
    expect(hiddenFor(p, 'coder', 'github', 'github__delete_repo')).toBe(true);
    expect(hiddenFor(p, 'ops', 'github', 'github__get_issue')).toBe(true);
  });
  it('hides a tool that no allow or ask rule can match when the default is deny', () => {
    expect(hiddenFor(p, 'coder', 'slack', 'slack__post_message')).toBe(true);
  });
  it('keeps a tool visible that an allow rule may match depending on its arguments', () => {
    expect(hiddenFor(p, 'coder', 'github', 'github__create_issue')).toBe(false);
  });
  it('does not hide for a deny rule that depends on arguments or time (not certain)', () => {
    const q = rules(`  - id: all
    match: { tool: "github__*" }
    effect: allow
  - id: deny-some-args
    match: { tool: github__update_issue, args: { owner: { equals: evil } } }
    effect: deny
  - id: night
    match: { tool: github__merge_pr }
    when: 'time.getHours() < 6'
    effect: deny
`);
    expect(hiddenFor(q, 'coder', 'github', 'github__update_issue')).toBe(false);
    expect(hiddenFor(q, 'coder', 'github', 'github__merge_pr')).toBe(false);
  });
  it('hides on annotations only when they are given and match', () => {
    expect(hiddenFor(p, 'coder', 'github', 'github__get_issue', { destructiveHint: true })).toBe(true);
    expect(hiddenFor(p, 'coder', 'github', 'github__get_issue', {})).toBe(false);
    expect(hiddenFor(p, 'coder', 'github', 'github__get_issue')).toBe(false);
  });
  it('never hides when the default is not deny and no deny rule applies', () => {
    expect(hiddenFor(rules('  - id: d\n    match: { tool: x }\n    effect: deny\n', 'version: 1\ndefault: ask\n'), 'a', 'c', 'y')).toBe(false);
  });
});

describe('shipped test cases', () => {
  it('policies/tests/default.cases.yaml passes against the shipped policy', () => {
    const r = runPolicyTests(loadPolicies(root), join(root, 'tests/default.cases.yaml'));
    expect(r.results.length).toBeGreaterThan(0);
    expect(r.results.filter((x) => !x.ok)).toEqual([]);
  });
});
