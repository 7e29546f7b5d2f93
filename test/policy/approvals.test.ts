import { describe, expect, it } from 'vitest';
import { Approvals, type ApprovalEvent, type Clock } from '../../src/policy/approvals.js';
import { isGatehouseError } from '../../src/errors.js';
import type { Decision } from '../../src/policy/types.js';
import { FakeClock } from './fake-clock.js';
import { call } from './helpers.js';

const askDecision: Decision = {
  effect: 'ask',
  ruleId: 'posting-needs-a-human',
  message: 'A human decides.',
  ask: { timeoutMs: 5 * 60_000, grant: { ttlMs: 3_600_000, maxUses: 2 } },
};
const noGrantDecision: Decision = { effect: 'ask', ruleId: 'one-off', message: 'x', ask: { timeoutMs: 60_000 } };

function setup() {
  const clock = new FakeClock();
  const events: ApprovalEvent[] = [];
  const approvals = new Approvals({ clock, onEvent: (e) => events.push(e) });
  return { clock, events, approvals, types: () => events.map((e) => e.type) };
}

const slack = call({ connector: 'slack', tool: 'slack__post_message', upstreamTool: 'post_message', args: { channel: '#general', text: 'hi' } });

describe('Approvals', () => {
  it('a pending ask shows agent, tool and the exact secret-free arguments', async () => {
    const { approvals } = setup();
    void approvals.request(slack, askDecision, { channel: '#general', text: 'hi' });
    const [p] = approvals.list();
    expect(p).toMatchObject({ agent: 'coder-1', tool: 'slack__post_message', ruleId: 'posting-needs-a-human', args: { channel: '#general', text: 'hi' } });
    expect(p?.grantLimit).toEqual({ ttlMs: 3_600_000, maxUses: 2 });
  });

  it('the shown arguments are a copy: changing the caller object later does not change what is approved', async () => {
    const { approvals } = setup();
    const args = { text: 'hi' };
    void approvals.request(slack, askDecision, args);
    args.text = 'changed';
    expect(approvals.list()[0]?.args).toEqual({ text: 'hi' });
  });

  it('approve lets the call through and is reported', async () => {
    const { approvals, types } = setup();
    const pending = approvals.request(slack, askDecision, {});
    const id = approvals.list()[0]?.id ?? '';
    await approvals.approve(id, { by: 'alice' });
    await expect(pending).resolves.toMatchObject({ approved: true, approvalId: id, by: 'alice' });
    expect(approvals.list()).toEqual([]);
    expect(types()).toEqual(['requested', 'approved']);
  });

  it('deny refuses the call with the reason and is reported', async () => {
    const { approvals, events } = setup();
    const pending = approvals.request(slack, askDecision, {});
    const id = approvals.list()[0]?.id ?? '';
    approvals.deny(id, { by: 'bob', reason: 'not now' });
    await expect(pending).resolves.toEqual({ approved: false, approvalId: id, by: 'bob', reason: 'not now' });
    expect(events.at(-1)).toMatchObject({ type: 'denied', by: 'bob', reason: 'not now' });
  });

  it('no answer by the timeout → denied', async () => {
    const { approvals, clock, types } = setup();
    const pending = approvals.request(slack, askDecision, {});
    clock.advance(5 * 60_000 - 1);
    expect(approvals.list()).toHaveLength(1);
    clock.advance(1);
    await expect(pending).resolves.toMatchObject({ approved: false, timedOut: true });
    expect(approvals.list()).toEqual([]);
    expect(types()).toEqual(['requested', 'timed_out']);
  });

  it('an answer after the timeout is refused with NOT_FOUND', async () => {
    const { approvals, clock } = setup();
    void approvals.request(slack, askDecision, {});
    const id = approvals.list()[0]?.id ?? '';
    clock.advance(10 * 60_000);
    await expect(approvals.approve(id, { by: 'alice' })).rejects.toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });

  it('a grant lets matching calls through without asking until its uses run out', async () => {
    const { approvals, types } = setup();
    const first = approvals.request(slack, askDecision, {});
    const { grant } = await approvals.approve(approvals.list()[0]?.id ?? '', { by: 'alice', grant: { ttlMs: 3_600_000, maxUses: 2 } });
    expect(grant).toMatchObject({ agent: 'coder-1', ruleId: 'posting-needs-a-human', tool: 'slack__post_message', maxUses: 2, uses: 0 });
    await expect(first).resolves.toMatchObject({ approved: true, grantId: grant?.id });
    // Different arguments: the grant is per agent, rule and tool.
    await expect(approvals.request({ ...slack, args: { text: 'other' } }, askDecision, {})).resolves.toMatchObject({ approved: true, grantId: grant?.id });
    await expect(approvals.request(slack, askDecision, {})).resolves.toMatchObject({ approved: true, grantId: grant?.id });
    expect(approvals.grants()).toEqual([]);
    // Used up: the next call waits for a human again.
    void approvals.request(slack, askDecision, {});
    expect(approvals.list()).toHaveLength(1);
    expect(types()).toEqual(['requested', 'approved', 'grant_used', 'grant_used', 'grant_expired', 'requested']);
  });

  it('a grant timer that fires a millisecond before the wall clock reaches the expiry is armed again: the expiry is still reported', async () => {
    const clock = new FakeClock();
    const events: ApprovalEvent[] = [];
    // Node's timers run on the loop's monotonic clock and may fire while Date.now() is still a millisecond short.
    const early: Clock = { now: () => clock.now(), setTimeout: (fn, ms) => clock.setTimeout(fn, Math.max(0, ms - 1)), clearTimeout: (h) => clock.clearTimeout(h) };
    const approvals = new Approvals({ clock: early, onEvent: (e) => events.push(e) });
    void approvals.request(slack, askDecision, {});
    await approvals.approve(approvals.list()[0]?.id ?? '', { by: 'alice', grant: { ttlMs: 60_000, maxUses: 100 } });
    clock.advance(59_999);
    expect(events.at(-1)?.type).not.toBe('grant_expired');
    clock.advance(1);
    expect(events.at(-1)).toMatchObject({ type: 'grant_expired', reason: 'ttl' });
  });

  it('a grant expires after its ttl (reported when it happens)', async () => {
    const { approvals, clock, events } = setup();
    void approvals.request(slack, askDecision, {});
    await approvals.approve(approvals.list()[0]?.id ?? '', { by: 'alice', grant: { ttlMs: 60_000, maxUses: 100 } });
    await expect(approvals.request(slack, askDecision, {})).resolves.toMatchObject({ approved: true });
    clock.advance(60_000);
    expect(events.at(-1)).toMatchObject({ type: 'grant_expired', reason: 'ttl' });
    void approvals.request(slack, askDecision, {});
    expect(approvals.list()).toHaveLength(1);
  });

  it('a grant does not cover another agent, another rule or another tool', async () => {
    const { approvals } = setup();
    void approvals.request(slack, askDecision, {});
    await approvals.approve(approvals.list()[0]?.id ?? '', { by: 'alice', grant: { ttlMs: 60_000, maxUses: 100 } });
    void approvals.request({ ...slack, agent: 'coder-2' }, askDecision, {});
    void approvals.request(slack, { ...askDecision, ruleId: 'other-rule' }, {});
    void approvals.request({ ...slack, tool: 'slack__reply_in_thread' }, askDecision, {});
    expect(approvals.list()).toHaveLength(3);
  });

  it("a grant is clamped to the rule's grant bound", async () => {
    const { approvals } = setup();
    void approvals.request(slack, askDecision, {});
    const { grant } = await approvals.approve(approvals.list()[0]?.id ?? '', { by: 'alice', grant: { ttlMs: 7 * 86_400_000, maxUses: 1_000 } });
    expect(grant?.maxUses).toBe(2);
    expect(Date.parse(grant?.expiresAt ?? '') - Date.parse(grant?.createdAt ?? '')).toBe(3_600_000);
  });

  it("with exact, a grant beyond the rule's grant bound is refused (USAGE, naming the bound), and the call stays pending", async () => {
    const { approvals } = setup();
    void approvals.request(slack, askDecision, {});
    const id = approvals.list()[0]?.id ?? '';
    await expect(approvals.approve(id, { by: 'alice', exact: true, grant: { ttlMs: 2 * 3_600_000, maxUses: 1 } })).rejects.toThrow(/a grant of 2h is longer than rule "posting-needs-a-human" allows \(1h\)/);
    await expect(approvals.approve(id, { by: 'alice', exact: true, grant: { ttlMs: 60_000, maxUses: 3 } })).rejects.toThrow(/a grant of 3 uses is more than rule "posting-needs-a-human" allows \(2\)/);
    expect(approvals.list()).toHaveLength(1);
    expect(approvals.grants()).toEqual([]);
    // At the bound: given as asked.
    const { grant } = await approvals.approve(id, { by: 'alice', exact: true, grant: { ttlMs: 3_600_000, maxUses: 2 } });
    expect(grant?.maxUses).toBe(2);
    expect(Date.parse(grant?.expiresAt ?? '') - Date.parse(grant?.createdAt ?? '')).toBe(3_600_000);
  });

  it('a rule without ask.grant allows no grant (USAGE), and the call stays pending', async () => {
    const { approvals } = setup();
    void approvals.request(slack, noGrantDecision, {});
    const id = approvals.list()[0]?.id ?? '';
    await expect(approvals.approve(id, { by: 'alice', grant: { ttlMs: 1_000, maxUses: 1 } })).rejects.toSatisfy((e) => isGatehouseError(e, 'USAGE'));
    expect(approvals.list()).toHaveLength(1);
  });

  it('a revoked grant stops covering calls', async () => {
    const { approvals, events } = setup();
    void approvals.request(slack, askDecision, {});
    const { grant } = await approvals.approve(approvals.list()[0]?.id ?? '', { by: 'alice', grant: { ttlMs: 60_000, maxUses: 2 } });
    await approvals.revokeGrant(grant?.id ?? '');
    expect(events.at(-1)).toMatchObject({ type: 'grant_expired', reason: 'revoked' });
    void approvals.request(slack, askDecision, {});
    expect(approvals.list()).toHaveLength(1);
  });

  it('a cancelled call is withdrawn: it leaves the queue and cannot be approved later', async () => {
    const { approvals, clock, types } = setup();
    const ac = new AbortController();
    const pending = approvals.request(slack, askDecision, {}, { signal: ac.signal });
    ac.abort();
    await expect(pending).resolves.toMatchObject({ approved: false });
    expect(approvals.list()).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
    expect(types()).toEqual(['requested', 'withdrawn']);
    expect(approvals.withdrawn()).toMatchObject([{ agent: 'coder-1', tool: 'slack__post_message' }]);
    await expect(approvals.approve(approvals.withdrawn()[0]?.id ?? '', { by: 'alice' })).rejects.toThrow(/was withdrawn at .*the caller is gone/);
  });

  it('too many pending asks from one agent are refused at once (no unbounded queue)', async () => {
    const clock = new FakeClock();
    const approvals = new Approvals({ clock, maxPendingPerAgent: 2 });
    void approvals.request(slack, askDecision, {});
    void approvals.request(slack, askDecision, {});
    await expect(approvals.request(slack, askDecision, {})).resolves.toMatchObject({ approved: false });
    expect(approvals.list()).toHaveLength(2);
  });

  it('close denies everything pending', async () => {
    const { approvals, clock } = setup();
    const pending = approvals.request(slack, askDecision, {});
    await approvals.close();
    await expect(pending).resolves.toMatchObject({ approved: false });
    expect(clock.pendingTimers).toBe(0);
  });

  it('request refuses a decision that is not ask', async () => {
    const { approvals } = setup();
    await expect(approvals.request(slack, { effect: 'allow', ruleId: 'a', message: '' }, {})).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('a throwing event callback does not change the outcome', async () => {
    const clock = new FakeClock();
    const approvals = new Approvals({
      clock,
      onEvent: () => {
        throw new Error('audit sink down');
      },
    });
    const pending = approvals.request(slack, askDecision, {});
    await approvals.approve(approvals.list()[0]?.id ?? '', { by: 'alice' });
    await expect(pending).resolves.toMatchObject({ approved: true });
  });
});
