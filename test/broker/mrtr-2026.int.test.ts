/**
 * An upstream's elicitation and sampling requests reach a 2026-07-28 agent as
 * an InputRequiredResult, and its retry (inputResponses + the echoed
 * requestState) answers them (MCP 2026-07-28, basic/patterns/mrtr). The
 * requestState is the gateway's, bound to the agent, the tool, the arguments
 * and the round: an altered, replayed, borrowed or stale one is refused. An
 * `ask` policy decision is never turned into a question the agent could
 * answer: it waits for the admins. Here the upstream is a 2025-11-25 server
 * (the conformance fixture on SDK v1, over Streamable HTTP) whose requests
 * wait mid-call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest } from '../../src/server/control-client.js';
import type { PendingApproval } from '../../src/policy/approvals.js';
import { startTestGateway, until, type TestGateway } from '../helpers/gateway.js';
import { modernRequest, responseOf } from '../helpers/modern.js';
import type { HttpFixture } from '../helpers/gateway.js';
import { spawnConformanceFixture } from '../conformance/helpers.js';

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'asks', match: { tool: 'cf__test_simple_text' }, effect: 'ask', ask: { timeout: '2m' } },
    { id: 'the-rest', match: { tool: 'cf__*' }, effect: 'allow' },
  ],
};
const BOTH = { sampling: {}, elicitation: {} };

let t: TestGateway;
let fixture: HttpFixture;
let alice: string;
let bob: string;

beforeAll(async () => {
  // Over HTTP each upstream request arrives on the stream of the call it belongs to, so calls parked side by side stay apart
  // (over stdio a message names no call: it is routed only while one call has the upstream to itself, call-context.ts).
  fixture = await spawnConformanceFixture();
  t = await startTestGateway({ connectors: () => [{ name: 'cf', kind: 'http', url: fixture.url, sampling: 'allow', elicitation: 'allow' }], policy: POLICY });
  alice = await t.mint('alice');
  bob = await t.mint('bob');
}, 60_000);

afterAll(async () => {
  await t?.close();
  await fixture?.close();
});

type InputRequired = { resultType: 'input_required'; inputRequests: Record<string, { method: string; params: Record<string, unknown> }>; requestState: string };

async function call(params: Record<string, unknown>, o: { token?: string; capabilities?: Record<string, unknown> } = {}) {
  const req = modernRequest('tools/call', params, { capabilities: o.capabilities ?? BOTH });
  const r = await t.raw({ token: o.token ?? alice, headers: req.headers, body: req.body });
  return { r, res: responseOf(r, req.id) };
}

const ELICIT = { name: 'cf__test_elicitation', arguments: { message: 'Who are you?' } };
const ANSWER = { action: 'accept', content: { username: 'alice', email: 'alice@example.com' } };

describe('elicitation and sampling from a 2025-11-25 upstream reach a 2026-07-28 agent as MRTR', () => {
  it('elicitation: an InputRequiredResult, then the retry with the answer completes the call', async () => {
    const first = (await call(ELICIT)).res.result as InputRequired;
    expect(first.resultType).toBe('input_required');
    const [key, ask] = Object.entries(first.inputRequests)[0] ?? [];
    expect(ask).toMatchObject({ method: 'elicitation/create', params: { message: 'Who are you?' } });
    expect(typeof first.requestState).toBe('string');
    const done = (await call({ ...ELICIT, inputResponses: { [key as string]: ANSWER }, requestState: first.requestState })).res.result as Record<string, unknown>;
    expect(done).toMatchObject({ resultType: 'complete', content: [{ type: 'text', text: expect.stringContaining('action=accept') }] });
    const rec = await until(() => t.audit().find((a) => a.event === 'elicitation.request' && a.outcome === 'ok'), 'the elicitation record');
    expect(rec).toMatchObject({ agent: 'alice', connector: 'cf', decision: 'allow', action: 'accept' });
    expect(rec).not.toHaveProperty('session');
  });

  it('sampling: the same, with the agent model’s answer', async () => {
    const params = { name: 'cf__test_sampling', arguments: { prompt: 'What is 2+2?' } };
    const first = (await call(params)).res.result as InputRequired;
    const [key, ask] = Object.entries(first.inputRequests)[0] ?? [];
    expect(ask).toMatchObject({ method: 'sampling/createMessage' });
    const answer = { role: 'assistant', content: { type: 'text', text: 'four' }, model: 'test-model', stopReason: 'endTurn' };
    const done = (await call({ ...params, inputResponses: { [key as string]: answer }, requestState: first.requestState })).res.result;
    expect(done).toMatchObject({ content: [{ text: 'LLM response: four' }] });
  });

  it('a retry that leaves the question unanswered gets it again, not an error', async () => {
    const first = (await call(ELICIT)).res.result as InputRequired;
    const again = (await call({ ...ELICIT, inputResponses: { unrelated: { action: 'accept' } }, requestState: first.requestState })).res.result as InputRequired;
    expect(again.resultType).toBe('input_required');
    expect(Object.keys(again.inputRequests)).toEqual(Object.keys(first.inputRequests));
    expect(again.requestState).not.toBe(first.requestState);
    const done = (await call({ ...ELICIT, inputResponses: { [Object.keys(again.inputRequests)[0] as string]: ANSWER }, requestState: again.requestState })).res.result;
    expect(done).toMatchObject({ resultType: 'complete' });
  });

  it('an agent that did not declare elicitation is not asked: the request is refused and audited as denied', async () => {
    const { res } = await call(ELICIT, { capabilities: {} });
    expect((res.result as { resultType?: string }).resultType).toBe('complete');
    expect(res.result).toMatchObject({ isError: true });
    expect(t.audit().some((a) => a.event === 'elicitation.request' && a.decision === 'deny' && String(a.reason).includes('did not declare the elicitation capability'))).toBe(true);
  });
});

describe('the requestState is attacker-controlled input (mrtr §Server Requirements): every misuse is refused with -32602', () => {
  async function parked() {
    const first = (await call(ELICIT)).res.result as InputRequired;
    return { state: first.requestState, key: Object.keys(first.inputRequests)[0] as string };
  }

  it('an altered requestState is refused', async () => {
    const { state, key } = await parked();
    const { res } = await call({ ...ELICIT, inputResponses: { [key]: ANSWER }, requestState: `${state}-TAMPERED` });
    expect(res.error).toMatchObject({ code: -32602 });
    const last = state.slice(0, -1) + (state.endsWith('A') ? 'B' : 'A');
    expect((await call({ ...ELICIT, inputResponses: { [key]: ANSWER }, requestState: last })).res.error).toMatchObject({ code: -32602 });
  });

  it('another agent cannot answer (or hijack) a parked call with its state', async () => {
    const { state, key } = await parked();
    const { res } = await call({ ...ELICIT, inputResponses: { [key]: ANSWER }, requestState: state }, { token: bob });
    expect(res.error).toMatchObject({ code: -32602 });
    // The owner still can.
    expect((await call({ ...ELICIT, inputResponses: { [key]: ANSWER }, requestState: state })).res.result).toMatchObject({ resultType: 'complete' });
  });

  it('the state of one call cannot resume it with other arguments or for another tool', async () => {
    const { state, key } = await parked();
    const other = await call({ name: 'cf__test_elicitation', arguments: { message: 'something else' }, inputResponses: { [key]: ANSWER }, requestState: state });
    expect(other.res.error).toMatchObject({ code: -32602 });
    const tool = await call({ name: 'cf__test_sampling', arguments: { message: 'Who are you?' }, inputResponses: { [key]: ANSWER }, requestState: state });
    expect(tool.res.error).toMatchObject({ code: -32602 });
  });

  it('a state of an earlier round (a replay) is refused once the call moved on', async () => {
    const first = (await call(ELICIT)).res.result as InputRequired;
    const again = (await call({ ...ELICIT, inputResponses: {}, requestState: first.requestState })).res.result as InputRequired;
    expect(again.resultType).toBe('input_required');
    const replay = await call({ ...ELICIT, inputResponses: { [Object.keys(first.inputRequests)[0] as string]: ANSWER }, requestState: first.requestState });
    expect(replay.res.error).toMatchObject({ code: -32602 });
  });

  it('inputResponses that are not an object of results are invalid params', async () => {
    for (const inputResponses of [42, null, { a: 1 }, ['x']]) {
      const { res } = await call({ ...ELICIT, inputResponses });
      expect(res.error).toMatchObject({ code: -32602 });
    }
  });
});

describe('approvals stay out of band', () => {
  it('an `ask` rule is never an InputRequiredResult the agent could answer: the call waits for the admin', async () => {
    const pending = call({ name: 'cf__test_simple_text', arguments: {} });
    const p = await until(async () => ((await adminRequest(t.dirs.state, 'GET', '/approvals')) as { pending: PendingApproval[] }).pending[0], 'the pending approval');
    expect(p).toMatchObject({ agent: 'alice', tool: 'cf__test_simple_text' });
    await adminRequest(t.dirs.state, 'POST', `/approvals/${p.id}/approve`, { by: 'admin' });
    const { res } = await pending;
    expect(res.result).toMatchObject({ resultType: 'complete', content: [{ text: 'This is a simple text response for testing.' }] });
  });
});
