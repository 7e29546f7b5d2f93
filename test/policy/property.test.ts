import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { evaluate, explain, hiddenFor } from '../../src/policy/evaluate.js';
import type { CallContext, Effect } from '../../src/policy/types.js';
import { policyOf } from './helpers.js';

const STRICTNESS: Record<Effect, number> = { allow: 0, ask: 1, deny: 2 };

const agents = ['coder-1', 'coder-2', 'ops', 'x/y'];
const tools = ['github__create_issue', 'github__get_issue', 'github__delete_repo', 'slack__post_message'];

const argMatchers = fc.constantFrom<Record<string, unknown>>(
  { owner: { equals: 'acme' } },
  { owner: { in: ['acme', 'beta'] } },
  { owner: { regex: 'a.*' } },
  { owner: { absent: true } },
  { n: { min: 0, max: 5 } },
  { title: { maxLength: 3, prefix: 'a' } },
  { 'repo.name': { glob: 'web*' } },
  { path: { path: { under: '/safe' } } },
  { path: { path: { under: ['/safe', '/tmp'], glob: '/**/*.txt' } } },
);

const ruleArb = (effect: fc.Arbitrary<Effect>) =>
  fc.record(
    {
      agent: fc.constantFrom('coder*', 'coder-1', 'ops', '*', 'x/*'),
      tool: fc.constantFrom('github__*', 'github__create_issue', '*__delete_*', 'slack__post_message', '*', 'git{hub,lab}__*', '!github__*', 'github__get_*', 'g*e', '{github,slack}__*'),
      connector: fc.constantFrom('github', 'slack', 'git*'),
      args: argMatchers,
      annotations: fc.constantFrom({ destructiveHint: true }, { readOnlyHint: false }, { readOnlyHint: true }),
      when: fc.constantFrom('args.n > 2', 'time.getHours() < 12', 'has(args.owner)', 'args.owner == "acme"'),
      effect,
    },
    { requiredKeys: ['effect'] },
  ).map((r) => {
    const match: Record<string, unknown> = {};
    if (r.agent !== undefined) match['agent'] = r.agent;
    if (r.tool !== undefined) match['tool'] = r.tool;
    if (r.connector !== undefined) match['connector'] = r.connector;
    if (r.args !== undefined) match['args'] = r.args;
    // Annotations may only appear on deny/ask rules (a load error otherwise).
    if (r.annotations !== undefined && r.effect !== 'allow') match['annotations'] = r.annotations;
    const rule: Record<string, unknown> = { effect: r.effect, match };
    if (r.when !== undefined) rule['when'] = r.when;
    return rule;
  });

const effectArb = fc.constantFrom<Effect>('allow', 'deny', 'ask');

function build(ruleList: Array<Record<string, unknown>>, def?: Effect) {
  const doc: Record<string, unknown> = { version: 1, rules: ruleList.map((r, i) => ({ id: `r${i}`, ...r })) };
  if (def !== undefined) doc['default'] = def;
  return policyOf(stringify(doc));
}

const callArb: fc.Arbitrary<CallContext> = fc
  .record({
    agent: fc.oneof(fc.constantFrom(...agents), fc.string()),
    tool: fc.oneof(fc.constantFrom(...tools), fc.string(), fc.constantFrom('gitlab__x', 'ge', 'gitlab__delete_x')),
    args: fc.record(
      {
        owner: fc.oneof(fc.constantFrom('acme', 'beta', 'evil'), fc.jsonValue()),
        n: fc.oneof(fc.integer({ min: -3, max: 9 }), fc.double(), fc.string()),
        title: fc.oneof(fc.string({ maxLength: 5 }), fc.jsonValue()),
        repo: fc.oneof(fc.record({ name: fc.constantFrom('web', 'web-2', 'api') }), fc.jsonValue()),
        path: fc.oneof(fc.constantFrom('/safe/a.txt', '/safe/../etc/passwd', '/safe-evil', 'safe/x', '/tmp//b.txt', '/safe\\..\\x'), fc.string(), fc.jsonValue()),
      },
      { requiredKeys: [] },
    ),
    annotations: fc.option(fc.record({ readOnlyHint: fc.boolean(), destructiveHint: fc.boolean() }, { requiredKeys: [] }), { nil: undefined }),
    time: fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true }),
  })
  .map((c) => {
    const i = c.tool.indexOf('__');
    const ctx: CallContext = {
      agent: c.agent,
      connector: i > 0 ? c.tool.slice(0, i) : '',
      tool: c.tool,
      upstreamTool: i > 0 ? c.tool.slice(i + 2) : c.tool,
      args: c.args as Record<string, unknown>,
      time: c.time,
    };
    if (c.annotations !== undefined) ctx.annotations = c.annotations;
    return ctx;
  });

describe('policy properties (fast-check)', () => {
  it('default deny holds: with no rules every call is denied by the default', () => {
    const empty = [build([]), policyOf('version: 1\n'), policyOf('version: 1\ndefault: deny\nrules: []\n')];
    fc.assert(
      fc.property(callArb, (c) => {
        for (const p of empty) expect(evaluate(p, c)).toMatchObject({ effect: 'deny', ruleId: null });
      }),
      { numRuns: 300 },
    );
  });

  it('default deny holds for arbitrary agents, tools and argument values', () => {
    const p = build([]);
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.dictionary(fc.string(), fc.jsonValue()), (agent, tool, args) => {
        expect(evaluate(p, { agent, connector: '', tool, upstreamTool: tool, args, time: new Date() }).effect).toBe('deny');
      }),
    );
  });

  it('adding a deny rule never turns a denied call into allow or ask, and never makes any decision less strict', () => {
    fc.assert(
      fc.property(fc.array(ruleArb(effectArb), { maxLength: 6 }), ruleArb(fc.constant<Effect>('deny')), fc.nat(6), fc.option(effectArb, { nil: undefined }), callArb, (base, extra, at, def, c) => {
        const before = evaluate(build(base, def), c);
        const withDeny = [...base];
        withDeny.splice(Math.min(at, base.length), 0, extra);
        const after = evaluate(build(withDeny, def), c);
        if (before.effect === 'deny') expect(after.effect).toBe('deny');
        expect(STRICTNESS[after.effect]).toBeGreaterThanOrEqual(STRICTNESS[before.effect]);
      }),
      { numRuns: 200 },
    );
  });

  it('the indexed evaluator agrees with a rule-by-rule reading of precedence (explain checks every rule without the index)', () => {
    fc.assert(
      fc.property(fc.array(ruleArb(effectArb), { maxLength: 8 }), fc.option(effectArb, { nil: undefined }), callArb, (ruleList, def, c) => {
        const p = build(ruleList, def);
        const ex = explain(p, c);
        const d = evaluate(p, c);
        expect(ex.decision).toEqual(d);
        const matched = ex.rules.filter((r) => r.matched);
        if (matched.length === 0) {
          expect(d).toMatchObject({ effect: p.default, ruleId: null });
        } else {
          const strictest = matched.reduce((a, r) => (STRICTNESS[r.effect] > STRICTNESS[a] ? r.effect : a), 'allow' as Effect);
          expect(d.effect).toBe(strictest);
          expect(matched.filter((r) => r.effect === strictest).map((r) => r.id)).toContain(d.ruleId);
        }
        expect(ex.rules.filter((r) => r.decisive).length).toBe(d.ruleId === null ? 0 : 1);
      }),
      { numRuns: 300 },
    );
  });

  it('a hidden tool is denied for every argument and time (hiding is conservative)', () => {
    let hidden = 0;
    fc.assert(
      fc.property(fc.array(ruleArb(effectArb), { maxLength: 6 }), fc.option(effectArb, { nil: undefined }), callArb, (ruleList, def, c) => {
        const p = build(ruleList, def);
        if (hiddenFor(p, c.agent, c.connector, c.tool, c.annotations)) {
          hidden++;
          expect(evaluate(p, c).effect).toBe('deny');
        }
      }),
      { numRuns: 300 },
    );
    // Guard: the property was exercised on hidden tools, not only on visible ones.
    expect(hidden).toBeGreaterThan(0);
  });
});
