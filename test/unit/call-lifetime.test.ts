import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/errors.js';
import { callContext, routeMessage, type AgentChannel, type CallOrigin } from '../../src/upstreams/call-context.js';
import { Exchange } from '../../src/upstreams/exchange.js';

const origin = (agent: string): CallOrigin => ({ agent, session: `s-${agent}`, tool: 'x__t', signal: new AbortController().signal, channel: {} as AgentChannel });
const limit = { bytes: 1, key: 'resultBytes' as const };

describe("routeMessage: nothing read on a finished call's stream reaches anyone", () => {
  it("a message on a finished call's stream is not handed to the only other call in flight", () => {
    const owner = {};
    const finished = origin('alice');
    const other = origin('bob');
    const route = callContext.run({ owner, origin: finished }, () => routeMessage(owner, true, new Set([other])));
    expect(route).toEqual({ ok: false, reason: 'it arrived on the response stream of a call that has finished', candidates: [] });
  });

  it("a message on a tool listing's stream belongs to no call", () => {
    const owner = {};
    const route = callContext.run({ owner }, () => routeMessage(owner, true, new Set([origin('bob')])));
    expect(route).toMatchObject({ ok: false, reason: 'it arrived on the response stream of a tool listing, not of a call' });
  });

  it('a message on a call in flight goes to that call; one from another upstream’s scope falls back as before', () => {
    const owner = {};
    const a = origin('alice');
    const b = origin('bob');
    expect(callContext.run({ owner, origin: a }, () => routeMessage(owner, true, new Set([a, b])))).toMatchObject({ ok: true, origin: a, via: 'call-stream' });
    expect(callContext.run({ owner: {}, origin: a }, () => routeMessage(owner, true, new Set([b])))).toMatchObject({ ok: true, origin: b, via: 'only-call' });
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
