import { describe, expect, it } from 'vitest';
import { evaluate, explain, hiddenFor } from '../../src/policy/evaluate.js';
import { call, issuesOf, rules } from './helpers.js';

/** A model call as src/inference decides it: the provider as connector, the model as tool. */
const modelCall = (model: string, over: Parameters<typeof call>[0] = {}) => call({ kind: 'model', connector: 'anthropic', tool: model, upstreamTool: model, ...over });

describe('policy: model rules (model:) and tool rules (tool:) apply to their own kind of call', () => {
  const p = rules(`  - id: models
    match: { model: "claude-*" }
    effect: allow
  - id: tools
    match: { tool: "*" }
    effect: allow
`);

  it('a model: rule allows a model call of a matching model', () => {
    expect(evaluate(p, modelCall('claude-sonnet-4'))).toMatchObject({ effect: 'allow', ruleId: 'models' });
  });

  it('a tool: "*" rule does not let a model through (a model named like a tool is still a model)', () => {
    expect(evaluate(p, modelCall('gpt-4o'))).toMatchObject({ effect: 'deny', ruleId: null });
  });

  it('a model: rule does not allow a tool call whose name matches its pattern', () => {
    const onlyModels = rules(`  - id: models
    match: { model: "*" }
    effect: allow
`);
    expect(evaluate(onlyModels, call({ tool: 'claude-x' }))).toMatchObject({ effect: 'deny', ruleId: null });
    expect(evaluate(onlyModels, modelCall('anything'))).toMatchObject({ effect: 'allow', ruleId: 'models' });
  });

  it('a rule with neither tool: nor model: applies to both (an agent-wide deny stops its model calls too)', () => {
    const q = rules(`  - id: intern-nothing
    match: { agent: intern }
    effect: deny
  - id: models
    match: { model: "*" }
    effect: allow
`);
    expect(evaluate(q, modelCall('claude-x', { agent: 'intern' }))).toMatchObject({ effect: 'deny', ruleId: 'intern-nothing' });
    expect(evaluate(q, modelCall('claude-x', { agent: 'coder' }))).toMatchObject({ effect: 'allow', ruleId: 'models' });
  });

  it('a deny model: rule by provider (connector) and agent outranks the allow', () => {
    const q = rules(`  - id: models
    match: { model: "*" }
    effect: allow
  - id: no-opus-for-ci
    match: { agent: "ci-*", connector: anthropic, model: "*opus*" }
    effect: deny
    message: CI agents use the smaller models.
`);
    expect(evaluate(q, modelCall('claude-opus-4', { agent: 'ci-1' }))).toMatchObject({ effect: 'deny', ruleId: 'no-opus-for-ci', message: 'CI agents use the smaller models.' });
    expect(evaluate(q, modelCall('claude-opus-4', { agent: 'ci-1', connector: 'other' }))).toMatchObject({ effect: 'allow' });
  });

  it('explain says why a tool rule did not match a model call', () => {
    const e = explain(p, modelCall('gpt-4o'));
    expect(e.rules.find((r) => r.id === 'tools')).toMatchObject({ matched: false, reason: 'a tool rule; this is a model call' });
  });

  it('tools/list hiding ignores model rules (a deny model: "*" hides no tool)', () => {
    const q = rules(`  - id: no-models
    match: { model: "*" }
    effect: deny
  - id: tools
    match: { tool: "*" }
    effect: allow
`);
    expect(hiddenFor(q, 'coder', 'github', 'github__x')).toBe(false);
  });
});

describe('policy: model rules refused at load', () => {
  it('ask on a model rule is refused: a model call cannot wait for a human', () => {
    const issues = issuesOf(() => rules(`  - id: m\n    match: { model: "*" }\n    effect: ask\n`));
    expect(issues.map((i) => i.message).join('\n')).toMatch(/ask: a model call cannot wait for a human approval/);
  });
  it('tool: and model: in one rule is refused', () => {
    const issues = issuesOf(() => rules(`  - id: m\n    match: { model: "*", tool: "*" }\n    effect: allow\n`));
    expect(issues.map((i) => i.message).join('\n')).toMatch(/tool calls \(tool:\) or model calls \(model:\), not both/);
  });
  it('args on a model rule is refused', () => {
    const issues = issuesOf(() => rules(`  - id: m\n    match: { model: "*", args: { x: { equals: 1 } } }\n    effect: deny\n`));
    expect(issues.map((i) => `${i.key}: ${i.message}`).join('\n')).toMatch(/args: model calls have no tool args/);
  });
});
