import { describe, expect, it } from 'vitest';
import { explain } from '../../src/policy/evaluate.js';
import { call, rules } from './helpers.js';

const p = rules(`  - id: github-read
    match: { tool: "github__get_*" }
    effect: allow
  - id: issues-only-in-our-repos
    match:
      agent: "coder*"
      tool: github__create_issue
      args:
        owner: { equals: acme }
        repo: { in: [web, api] }
        title: { maxLength: 10 }
    effect: allow
    limit: 20/hour
  - id: office-hours
    match: { tool: "github__*" }
    when: 'time.getHours() < 18'
    effect: allow
  - id: ops-never
    match: { agent: ops }
    effect: deny
  - id: destructive
    match: { annotations: { destructiveHint: true } }
    effect: ask
  - id: channel-check
    match: { tool: github__create_issue }
    when: 'args.channel == "#x"'
    effect: deny
`);

describe('explain', () => {
  it('says for each rule, in load order, whether it matched and why not', () => {
    const ex = explain(p, call({ args: { owner: 'evil', repo: 'web', title: 'Bug' }, time: new Date('2025-01-06T20:00:00Z') }));
    const by = Object.fromEntries(ex.rules.map((r) => [r.id, r]));
    expect(ex.rules.map((r) => r.id)).toEqual(['github-read', 'issues-only-in-our-repos', 'office-hours', 'ops-never', 'destructive', 'channel-check']);
    expect(by['github-read']?.reason).toBe('tool "github__create_issue" does not match "github__get_*"');
    expect(by['issues-only-in-our-repos']?.reason).toBe('args.owner: equals "acme" failed (got "evil")');
    expect(by['office-hours']?.reason).toBe('when is false: time.getHours() < 18');
    expect(by['ops-never']?.reason).toBe('agent "coder-1" does not match "ops"');
    expect(by['destructive']?.reason).toBe('annotation destructiveHint is missing, rule needs true');
    expect(by['channel-check']).toMatchObject({ matched: true, decisive: true });
    expect(by['channel-check']?.reason).toMatch(/when: error \(No such key: channel\); a deny rule fails closed: counts as matching/);
    expect(ex.decision).toMatchObject({ effect: 'deny', ruleId: 'channel-check' });
  });

  it('marks the deciding rule and says which rule outranks the other matches', () => {
    const ex = explain(p, call({ args: { owner: 'acme', repo: 'web', title: 'Bug', channel: '#y' }, time: new Date('2025-01-06T10:00:00Z') }));
    expect(ex.decision).toMatchObject({ effect: 'allow', ruleId: 'issues-only-in-our-repos', limit: { capacity: 20, perMs: 3_600_000 } });
    const by = Object.fromEntries(ex.rules.map((r) => [r.id, r]));
    expect(by['issues-only-in-our-repos']).toMatchObject({ matched: true, decisive: true, reason: 'matches: this rule decides' });
    expect(by['office-hours']).toMatchObject({ matched: true, decisive: false, reason: 'matches; outranked by allow rule "issues-only-in-our-repos"' });
    expect(by['channel-check']?.reason).toBe('when is false: args.channel == "#x"');
  });

  it('names the file and line of each rule', () => {
    const ex = explain(p, call());
    expect(ex.rules[0]).toMatchObject({ file: '/p/main.yaml', line: 3 });
    expect(ex.rules[1]).toMatchObject({ line: 6 });
  });

  it('shows the default deciding when nothing matches', () => {
    const ex = explain(p, call({ agent: 'x', tool: 'slack__post_message', connector: 'slack' }));
    expect(ex.decision).toMatchObject({ effect: 'deny', ruleId: null });
    expect(ex.rules.every((r) => !r.matched && !r.decisive)).toBe(true);
  });
});
