/**
 * The MRTR bridge for 2026-07-28 agents (src/broker/input-required.ts): a
 * parked call's requestState resumes it only for its agent, tool, arguments
 * and round; parking is bounded per agent; a state is good for one retry.
 */
import { describe, expect, it } from 'vitest';
import { ParkedCalls, type AgentCall, type RoundOutcome } from '../../src/broker/input-required.js';

type Outcome = RoundOutcome<string>;
const binding = (over: Partial<{ principal: string; tool: string; args: unknown }> = {}) => ({ principal: 'token:alice', tool: 'fx__ask', args: { a: 1, b: { c: [1, 2] } }, ...over });
const ask = (call: AgentCall<string, string>) => call.ask('elicitation/create', { message: 'Name?' }, { signal: new AbortController().signal, timeout: 60_000 });

/** A call that asked one question and was parked: its requestState and the question's answer. */
async function parkedCall(parked: ParkedCalls, b = binding()) {
  const call = parked.create<string, string>(b);
  let finish!: (v: string) => void;
  call.attach(new Promise<string>((r) => (finish = r)));
  const first = call.serve('round 1');
  const answer = ask(call);
  const out = (await first) as Extract<Outcome, { kind: 'input' }>;
  expect(out.kind).toBe('input');
  return { call, state: out.requestState, key: Object.keys(out.inputRequests)[0] as string, answer, finish };
}

describe('requestState (mrtr §Server Requirements: attacker-controlled input)', () => {
  it('resumes its own call, for the same agent, tool and arguments (key order aside)', async () => {
    const parked = new ParkedCalls();
    const { call, state } = await parkedCall(parked);
    expect(parked.resume(state, binding({ args: { b: { c: [1, 2] }, a: 1 } }))).toBe(call);
  });

  it.each([
    ['another agent', binding({ principal: 'token:mallory' })],
    ['the same agent in a sandbox', binding({ principal: 'sandbox:abc' })],
    ['another tool', binding({ tool: 'fx__other' })],
    ['other arguments', binding({ args: { a: 2, b: { c: [1, 2] } } })],
    ['arguments that differ only deep down', binding({ args: { a: 1, b: { c: [1, 2] }, deep: deep(60, 'x') } })],
  ])('refuses %s', async (_, other) => {
    const parked = new ParkedCalls();
    const b = binding({ args: { a: 1, b: { c: [1, 2] }, deep: deep(60, 'y') } });
    const { state } = await parkedCall(parked, b);
    expect(parked.resume(state, other)).toBeUndefined();
    expect(parked.resume(state, b)).toBeDefined();
  });

  it('refuses an altered state, including in the spare bits of its last base64url character', async () => {
    const parked = new ParkedCalls();
    const { state } = await parkedCall(parked);
    const last = state.at(-1) as string;
    const twin = String.fromCharCode(last.charCodeAt(0) ^ 1);
    for (const bad of [`${state}x`, state.slice(0, -1) + twin, state.replace(/\.1\./, '.2.'), state.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')), '', 'not-a-state'])
      expect(parked.resume(bad, binding()), bad).toBeUndefined();
  });

  it('is good for one retry: once the call is resumed, the same state resumes nothing (a second concurrent retry cannot steal the answer)', async () => {
    const parked = new ParkedCalls();
    const { call, state, key, answer } = await parkedCall(parked);
    const resumed = parked.resume<string, string>(state, binding());
    expect(resumed).toBe(call);
    const served = call.serve('round 2', { [key]: { action: 'accept', content: { name: 'Ada' } } });
    expect(parked.resume(state, binding())).toBeUndefined();
    expect(await answer).toEqual({ action: 'accept', content: { name: 'Ada' } });
    void served;
  });

  it('of an earlier round is refused once the call asked again', async () => {
    const parked = new ParkedCalls();
    const { call, state } = await parkedCall(parked);
    const again = call.serve('round 2', {});
    const out = (await again) as Extract<Outcome, { kind: 'input' }>;
    expect(out.kind).toBe('input');
    expect(out.requestState).not.toBe(state);
    expect(parked.resume(state, binding())).toBeUndefined();
    expect(parked.resume(out.requestState, binding())).toBe(call);
  });
});

describe('parking is bounded (invariant 11)', () => {
  it('one agent cannot park more than its share; another still can; a refused question fails, its call goes on', async () => {
    const parked = new ParkedCalls({ maxPerAgent: 2, max: 10 });
    await parkedCall(parked);
    await parkedCall(parked);
    const call = parked.create<string, string>(binding());
    call.attach(new Promise<string>(() => undefined));
    void call.serve('round 1');
    await expect(ask(call)).rejects.toThrow(/already has 2 calls waiting/);
    expect(parked.size).toBe(2);
    await parkedCall(parked, binding({ principal: 'token:bob' }));
    expect(parked.size).toBe(3);
  });

  it('a parked call whose agent does not come back is cancelled', async () => {
    const parked = new ParkedCalls({ parkedMs: 20 });
    const { call } = await parkedCall(parked);
    await new Promise<void>((r) => call.signal.addEventListener('abort', () => r(), { once: true }));
    expect(call.signal.aborted).toBe(true);
  });

  it('a sandbox session ending cancels that sandbox’s parked calls, and only those', async () => {
    const parked = new ParkedCalls();
    const mine = await parkedCall(parked, binding({ principal: 'sandbox:s1' }));
    const other = await parkedCall(parked, binding({ principal: 'sandbox:s2' }));
    parked.closePrincipal('sandbox:s1', 'the sandbox session ended');
    expect(mine.call.signal.aborted).toBe(true);
    expect(other.call.signal.aborted).toBe(false);
  });

  it('the gateway closing cancels every parked call', async () => {
    const parked = new ParkedCalls();
    const { call } = await parkedCall(parked);
    parked.closeAll();
    expect(call.signal.aborted).toBe(true);
  });
});

describe('rounds', () => {
  it('questions asked in the same turn go out in one InputRequiredResult, under the upstream’s own keys where it gave plain ones', async () => {
    const parked = new ParkedCalls();
    const call = parked.create<string, string>(binding());
    call.attach(new Promise<string>(() => undefined));
    const first = call.serve('round 1');
    const signal = new AbortController().signal;
    void call.ask('elicitation/create', { message: 'a' }, { signal, timeout: 60_000, key: 'user_name' });
    void call.ask('sampling/createMessage', { messages: [] }, { signal, timeout: 60_000, key: 'bad key\n' });
    void call.ask('elicitation/create', { message: 'c' }, { signal, timeout: 60_000, key: 'user_name' });
    const out = (await first) as Extract<Outcome, { kind: 'input' }>;
    expect(Object.keys(out.inputRequests).sort()).toEqual(['input-1', 'input-2', 'user_name']);
  });

  it('the call’s result reaches the request waiting on it', async () => {
    const parked = new ParkedCalls();
    const { call, key, finish } = await parkedCall(parked);
    const last = call.serve('round 2', { [key]: { action: 'decline' } });
    finish('done');
    expect(await last).toEqual({ kind: 'result', result: 'done' });
    expect(parked.size).toBe(0);
  });
});

function deep(n: number, leaf: string): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < n; i++) v = { n: v };
  return v;
}
