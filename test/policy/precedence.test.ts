import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/policy/evaluate.js';
import { call, policyOf, rules } from './helpers.js';

const allow = (id: string, extra = '') => `  - id: ${id}\n    match: { tool: "github__*" }\n    effect: allow\n${extra}`;
const ask = (id: string) => `  - id: ${id}\n    match: { tool: "github__*" }\n    effect: ask\n`;
const deny = (id: string) => `  - id: ${id}\n    match: { tool: "github__*" }\n    effect: deny\n`;

describe('precedence: deny, then ask, then allow, then the default', () => {
  it('nothing matches → the default, which is deny when not stated', () => {
    const d = evaluate(rules(allow('a').replace('github__*', 'slack__*')), call());
    expect(d).toMatchObject({ effect: 'deny', ruleId: null });
  });
  it('an empty policy denies', () => {
    expect(evaluate(policyOf('version: 1\n'), call()).effect).toBe('deny');
  });
  it('a stated default allow applies only when no rule matches', () => {
    const p = policyOf(`version: 1\ndefault: allow\nrules:\n${deny('d')}`);
    expect(evaluate(p, call()).effect).toBe('deny');
    expect(evaluate(p, call({ tool: 'slack__x' }))).toMatchObject({ effect: 'allow', ruleId: null });
  });
  it('a default ask carries ask settings', () => {
    const d = evaluate(policyOf('version: 1\ndefault: ask\n'), call());
    expect(d.effect).toBe('ask');
    expect(d.ask?.timeoutMs).toBe(300_000);
  });
  it('allow alone allows', () => {
    expect(evaluate(rules(allow('a')), call())).toMatchObject({ effect: 'allow', ruleId: 'a' });
  });
  it('ask beats allow, whatever the order', () => {
    expect(evaluate(rules(allow('a') + ask('k')), call())).toMatchObject({ effect: 'ask', ruleId: 'k' });
    expect(evaluate(rules(ask('k') + allow('a')), call())).toMatchObject({ effect: 'ask', ruleId: 'k' });
  });
  it('deny beats allow, whatever the order', () => {
    expect(evaluate(rules(allow('a') + deny('d')), call())).toMatchObject({ effect: 'deny', ruleId: 'd' });
    expect(evaluate(rules(deny('d') + allow('a')), call())).toMatchObject({ effect: 'deny', ruleId: 'd' });
  });
  it('deny beats ask, whatever the order', () => {
    expect(evaluate(rules(ask('k') + deny('d')), call())).toMatchObject({ effect: 'deny', ruleId: 'd' });
    expect(evaluate(rules(deny('d') + ask('k')), call())).toMatchObject({ effect: 'deny', ruleId: 'd' });
  });
  it('deny beats ask and allow together', () => {
    expect(evaluate(rules(allow('a') + ask('k') + deny('d')), call()).effect).toBe('deny');
  });
  it('among rules of the winning effect, the first in load order decides', () => {
    expect(evaluate(rules(deny('d1') + deny('d2')), call()).ruleId).toBe('d1');
    expect(evaluate(rules(allow('a1') + allow('a2')), call()).ruleId).toBe('a1');
  });
  it('an allow rule with a limit is preferred over an unlimited one (limits only restrict)', () => {
    const d = evaluate(rules(allow('free') + allow('limited', '    limit: 20/hour\n')), call());
    expect(d.ruleId).toBe('limited');
    expect(d.limit).toEqual({ ruleId: 'limited', capacity: 20, perMs: 3_600_000 });
  });
  it('limits parse /second, /minute, /hour and /day', () => {
    for (const [unit, ms] of [['second', 1_000], ['minute', 60_000], ['hour', 3_600_000], ['day', 86_400_000]] as const) {
      expect(evaluate(rules(allow('l', `    limit: 5/${unit}\n`)), call()).limit).toEqual({ ruleId: 'l', capacity: 5, perMs: ms });
    }
  });
  it('an ask decision carries the timeout and the grant bound', () => {
    const p = rules('  - id: k\n    match: { tool: "github__*" }\n    effect: ask\n    ask: { timeout: 90s, grant: { ttl: 1h, maxUses: 10 } }\n');
    expect(evaluate(p, call()).ask).toEqual({ timeoutMs: 90_000, grant: { ttlMs: 3_600_000, maxUses: 10 } });
  });
  it("a deny decision carries the rule's message", () => {
    const p = rules('  - id: d\n    match: { tool: "*__delete_*" }\n    effect: deny\n    message: "Deleting is not allowed for agents."\n');
    expect(evaluate(p, call({ tool: 'github__delete_repo' }))).toEqual({ effect: 'deny', ruleId: 'd', message: 'Deleting is not allowed for agents.' });
  });
  it('a rule without match applies to every call', () => {
    expect(evaluate(rules('  - id: d\n    effect: deny\n'), call({ tool: 'anything' })).ruleId).toBe('d');
  });
});

describe('several files merge', () => {
  it('rules from all files are in force and deny still wins across files', () => {
    const p = policyOf(`version: 1\nrules:\n${allow('a')}`, { '/p/zz.yaml': `version: 1\nrules:\n${deny('d')}` });
    expect(p.files).toEqual(['/p/main.yaml', '/p/zz.yaml']);
    expect(evaluate(p, call()).ruleId).toBe('d');
  });
  it('when files disagree on the default, the strictest stated default is in force, with a warning', () => {
    const p = policyOf('version: 1\ndefault: allow\n', { '/p/b.yaml': 'version: 1\ndefault: deny\n' });
    expect(p.default).toBe('deny');
    expect(p.warnings.join('\n')).toContain('disagree');
    const q = policyOf('version: 1\ndefault: allow\n', { '/p/b.yaml': 'version: 1\ndefault: ask\n' });
    expect(q.default).toBe('ask');
  });
  it('a file that states no default does not vote', () => {
    expect(policyOf('version: 1\ndefault: allow\n', { '/p/b.yaml': 'version: 1\n' }).default).toBe('allow');
  });
  it('extends pulls in a file that is not at the top level, before the extending file', () => {
    const p = policyOf('version: 1\nextends: [presets/base]\nrules:\n' + deny('d'), { '/p/presets/base.yaml': `version: 1\nrules:\n${allow('a')}` });
    expect(p.files).toEqual(['/p/presets/base.yaml', '/p/main.yaml']);
    expect(p.rules.map((r) => r.id)).toEqual(['a', 'd']);
  });
  it('a file extended twice is loaded once', () => {
    const base = { '/p/presets/base.yaml': `version: 1\nrules:\n${allow('a')}` };
    const p = policyOf('version: 1\nextends: [presets/base]\n', { ...base, '/p/other.yaml': 'version: 1\nextends: [presets/base.yaml]\n' });
    expect(p.rules.map((r) => r.id)).toEqual(['a']);
  });
});

describe('when expressions (CEL)', () => {
  const whenRule = (effect: string, expr: string) => rules(`  - id: w\n    match: { tool: "github__*" }\n    when: '${expr}'\n    effect: ${effect}\n`);

  it('a true expression matches, a false one does not', () => {
    expect(evaluate(whenRule('allow', 'args.channel != "#agents"'), call({ args: { channel: '#general' } })).effect).toBe('allow');
    expect(evaluate(whenRule('allow', 'args.channel != "#agents"'), call({ args: { channel: '#agents' } })).effect).toBe('deny');
  });
  it('sees agent, connector, tool and upstreamTool', () => {
    const p = whenRule('allow', 'agent.startsWith("coder") && connector == "github" && tool == "github__create_issue" && upstreamTool == "create_issue"');
    expect(evaluate(p, call()).effect).toBe('allow');
  });
  it('sees the call time, in UTC (office hours rule)', () => {
    const p = whenRule('allow', 'time.getHours() >= 9 && time.getHours() < 17');
    expect(evaluate(p, call({ time: new Date('2025-01-06T10:00:00Z') })).effect).toBe('allow');
    expect(evaluate(p, call({ time: new Date('2025-01-06T20:00:00Z') })).effect).toBe('deny');
  });
  it('compares JSON numbers with CEL ints', () => {
    expect(evaluate(whenRule('allow', 'args.n <= 5'), call({ args: { n: 5 } })).effect).toBe('allow');
  });
  it('fails closed: an allow rule whose expression errors does not match', () => {
    // args.channel is missing: "No such key" at evaluation time.
    expect(evaluate(whenRule('allow', 'args.channel == "#x"'), call({ args: {} }))).toMatchObject({ effect: 'deny', ruleId: null });
  });
  it('fails closed: a deny rule whose expression errors counts as matching', () => {
    expect(evaluate(whenRule('deny', 'args.channel == "#x"'), call({ args: {} }))).toMatchObject({ effect: 'deny', ruleId: 'w' });
    const p = rules(`${allow('a')}  - id: w\n    match: { tool: "github__*" }\n    when: 'args.n > 1'\n    effect: deny\n`);
    expect(evaluate(p, call({ args: { n: 'not a number' } }))).toMatchObject({ effect: 'deny', ruleId: 'w' });
  });
  it('fails closed: an ask rule whose expression errors counts as matching', () => {
    const p = rules(`${allow('a')}  - id: w\n    match: { tool: "github__*" }\n    when: 'args.channel == "#x"'\n    effect: ask\n`);
    expect(evaluate(p, call({ args: {} }))).toMatchObject({ effect: 'ask', ruleId: 'w' });
  });
  it('an expression with a non-bool result at call time is an error (fail closed)', () => {
    expect(evaluate(whenRule('allow', 'args.flag'), call({ args: { flag: 'yes' } })).effect).toBe('deny');
    expect(evaluate(whenRule('allow', 'args.flag'), call({ args: { flag: true } })).effect).toBe('allow');
  });
  it('has() tests for an argument without erroring', () => {
    expect(evaluate(whenRule('deny', 'has(args.channel) && args.channel == "#x"'), call({ args: {} })).ruleId).toBeNull();
  });
});

describe('annotations only make a decision stricter', () => {
  const p = rules(
    allow('a') +
      '  - id: destructive\n    match: { annotations: { destructiveHint: true } }\n    effect: deny\n' +
      '  - id: writes\n    match: { annotations: { readOnlyHint: false } }\n    effect: ask\n',
  );
  it('a matching annotation turns an allow into deny', () => {
    expect(evaluate(p, call({ annotations: { destructiveHint: true } })).ruleId).toBe('destructive');
  });
  it('a matching annotation turns an allow into ask', () => {
    expect(evaluate(p, call({ annotations: { readOnlyHint: false } })).ruleId).toBe('writes');
  });
  it('missing annotations never satisfy a matcher', () => {
    expect(evaluate(p, call()).ruleId).toBe('a');
    expect(evaluate(p, call({ annotations: {} })).ruleId).toBe('a');
  });
  it('an annotation with the other value does not match', () => {
    expect(evaluate(p, call({ annotations: { destructiveHint: false, readOnlyHint: true } })).ruleId).toBe('a');
  });
});

describe('evaluate is total', () => {
  it('never throws on odd arguments', () => {
    const p = rules('  - id: r\n    match: { args: { "a.b": { regex: "x+" }, c: { min: 1 } } }\n    when: \'args.z > 1\'\n    effect: deny\n');
    for (const args of [{}, { a: null }, { a: [1] }, { a: { b: 5 } }, { c: Number.NaN }, { z: 'str' }, Object.create(null) as Record<string, unknown>]) {
      expect(() => evaluate(p, call({ args }))).not.toThrow();
    }
  });
});
