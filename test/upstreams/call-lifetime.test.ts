import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/errors.js';
import { callContext, InFlightCalls, routeMessage, type AgentChannel, type CallOrigin } from '../../src/upstreams/call-context.js';
import { Exchange } from '../../src/upstreams/exchange.js';

const origin = (agent: string): CallOrigin => ({ agent, session: `s-${agent}`, tool: 'x__t', signal: new AbortController().signal, channel: {} as AgentChannel });
const limit = { bytes: 1, key: 'resultBytes' as const };

/** Calls that started one after another and are all still in flight. */
function inFlight(...calls: CallOrigin[]): InFlightCalls {
  const f = new InFlightCalls();
  for (const c of calls) f.add(c);
  return f;
}

describe("routeMessage: nothing read on a finished call's stream reaches anyone", () => {
  it("a message on a finished call's stream is not handed to the only other call in flight", () => {
    const owner = {};
    const finished = origin('alice');
    const other = origin('bob');
    const route = callContext.run({ owner, origin: finished }, () => routeMessage(owner, true, inFlight(other)));
    expect(route).toEqual({ ok: false, reason: 'it arrived on the response stream of a call that has finished', candidates: [] });
  });

  it("a message on a tool listing's stream belongs to no call", () => {
    const owner = {};
    const route = callContext.run({ owner }, () => routeMessage(owner, true, inFlight(origin('bob'))));
    expect(route).toMatchObject({ ok: false, reason: 'it arrived on the response stream of a tool listing, not of a call' });
  });

  it("a message on a call in flight goes to that call; one outside this upstream's call streams (the standalone GET stream, another upstream's scope) goes to nobody", () => {
    const owner = {};
    const a = origin('alice');
    const b = origin('bob');
    expect(callContext.run({ owner, origin: a }, () => routeMessage(owner, true, inFlight(a, b)))).toMatchObject({ ok: true, origin: a, via: 'call-stream' });
    expect(callContext.run({ owner: {}, origin: a }, () => routeMessage(owner, true, inFlight(b)))).toEqual({ ok: false, reason: "it arrived outside any call's response stream", candidates: [] });
    expect(routeMessage(owner, true, inFlight(b))).toEqual({ ok: false, reason: "it arrived outside any call's response stream", candidates: [] });
  });
});

describe('routeMessage on stdio (nothing names the call): never "the only other call"', () => {
  it('a call alone on the upstream from its start gets the message', () => {
    const a = origin('alice');
    expect(routeMessage({}, false, inFlight(a))).toMatchObject({ ok: true, origin: a, via: 'only-call' });
  });

  it("alice's call finishes while bob's runs: a late message (alice's, or anyone's) does not reach bob", () => {
    const calls = inFlight(origin('alice'));
    const [alice] = calls.calls;
    const bob = origin('bob');
    calls.add(bob);
    calls.delete(alice as CallOrigin);
    expect(routeMessage({}, false, calls)).toMatchObject({ ok: false, reason: expect.stringContaining('another tool call shared this connector'), candidates: [{ agent: 'bob' }] });
  });

  it('bob starts while alice runs, then alice finishes: the same (bob was never alone)', () => {
    const alice = origin('alice');
    const bob = origin('bob');
    const calls = inFlight(alice, bob);
    calls.delete(alice);
    expect(routeMessage({}, false, calls).ok).toBe(false);
  });

  it('a call that starts after the upstream fell idle is alone again', () => {
    const calls = inFlight(origin('alice'), origin('bob'));
    for (const c of [...calls.calls]) calls.delete(c);
    const carol = origin('carol');
    calls.add(carol);
    expect(routeMessage({}, false, calls)).toMatchObject({ ok: true, origin: carol });
  });

  it('two calls in flight: neither', () => {
    expect(routeMessage({}, false, inFlight(origin('alice'), origin('bob')))).toMatchObject({ ok: false, candidates: [{ agent: 'alice' }, { agent: 'bob' }] });
  });
});

describe('Exchange: a request owns its HTTP request and stream', () => {
  it('its first POST is its own; later POSTs (notifications, replies) are not; a GET resumes its stream until it ends', () => {
    const ex = new Exchange(limit);
    expect(ex.tie('POST')).toBe('own');
    expect(ex.tie('POST')).toBe('other');
    expect(ex.tie('GET')).toBe('own');
    ex.end();
    expect(ex.streamSignal.aborted).toBe(true);
    expect(ex.tie('GET')).toBe('ended');
  });

  it('end() aborts the stream but not the request (the SDK would cancel a finished request)', () => {
    const ex = new Exchange(limit);
    ex.end();
    expect(ex.requestSignal.aborted).toBe(false);
  });

  it('fail() keeps the first failure and cancels the request; deadline() fails it whatever progress it makes', async () => {
    const ex = new Exchange(limit);
    ex.deadline(10, () => new GatehouseError('UPSTREAM_TIMEOUT', 'callMax'));
    await new Promise((r) => setTimeout(r, 30));
    expect(ex.failure?.message).toBe('callMax');
    ex.fail(new GatehouseError('UPSTREAM_PROTOCOL', 'later'));
    expect(ex.failure?.message).toBe('callMax');
    expect(ex.requestSignal.aborted).toBe(true);
    ex.end();
  });

  it("follow(): the agent's cancellation cancels the request without a failure of the gateway's", () => {
    const agent = new AbortController();
    const ex = new Exchange(limit);
    ex.follow(agent.signal);
    agent.abort();
    expect(ex.requestSignal.aborted).toBe(true);
    expect(ex.failure).toBeUndefined();
    ex.end();
  });
});
