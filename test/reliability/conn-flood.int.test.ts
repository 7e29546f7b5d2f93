/**
 * Connection slots: any local process can reach the TCP listener without a
 * token. Its connections must not take the slots agents need: an answer to an
 * unauthenticated or invalid request closes the connection, a connection that
 * never authenticated gets a short keep-alive and yields its slot to newcomers
 * before the agents' reserve, and one agent is bounded in connections and in
 * requests in progress. Limits are shortened here.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MCP_HEADERS, rawRequest, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';
import { acceptedOn, text, within } from './helpers.js';

const LIMITS = { maxConnections: 300, maxConnectionsPerAgent: 6, maxInFlightPerAgent: 3, unauthenticatedKeepAliveMs: 1000, checkIntervalMs: 250 };

let t: TestGateway;
const sockets: Socket[] = [];

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], runtime: { http: LIMITS } });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await t?.close();
});

interface Raw {
  socket: Socket;
  /** Resolves when the server closed the connection (or it failed). */
  closed: Promise<void>;
  received: () => string;
  /** Resolves once a whole response head has arrived. */
  head: Promise<string>;
}

/** A raw keep-alive connection that sends `request` once connected and then stays idle. */
function open(request: string): Raw {
  const socket = connect(t.port, '127.0.0.1');
  sockets.push(socket);
  let got = '';
  let gotHead: (h: string) => void = () => undefined;
  const head = new Promise<string>((r) => (gotHead = r));
  socket.on('data', (d: Buffer) => {
    got += d.toString('latin1');
    if (got.includes('\r\n\r\n')) gotHead(got.slice(0, got.indexOf('\r\n\r\n')));
  });
  socket.on('error', () => undefined);
  socket.once('connect', () => request !== '' && socket.write(request));
  const closed = new Promise<void>((r) =>
    socket.once('close', () => {
      gotHead('');
      r();
    }),
  );
  return { socket, closed, received: () => got, head };
}

function mcpRequest(token: string | undefined, method: 'GET' | 'POST', sid?: string, body?: object): string {
  const payload = body ? JSON.stringify(body) : '';
  return [
    `${method} /mcp HTTP/1.1`,
    `host: 127.0.0.1:${t.port}`,
    ...(token ? [`authorization: Bearer ${token}`] : []),
    ...(sid ? [`mcp-session-id: ${sid}`, 'mcp-protocol-version: 2025-11-25'] : []),
    method === 'GET' ? 'accept: text/event-stream' : 'accept: application/json, text/event-stream',
    ...(body ? ['content-type: application/json', `content-length: ${Buffer.byteLength(payload)}`] : []),
    '',
    payload,
  ].join('\r\n');
}

const echo = (s: string) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: s } } });

async function victimCalls(agent: string): Promise<string> {
  const c = await t.client(agent);
  return text(await c.callTool({ name: 'fx__echo', arguments: { text: `${agent} served` } }));
}

describe('connection slots', () => {
  it('a local process opens thousands of unauthenticated keep-alive connections: they are closed after their 401 and an agent with a token still connects', async () => {
    const flood: Raw[] = [];
    for (let batch = 0; batch < 4; batch++) {
      const wave = Array.from({ length: 500 }, () => open(mcpRequest(undefined, 'GET')));
      flood.push(...wave);
      await Promise.all(wave.map((r) => r.head));
    }
    // Every one is closed by the server, without our destroying any: the wait is for that event,
    // with a hang guard only. That it was the 401 that closed it (not a keep-alive running out) is
    // the `connection: close` each answer carries, below.
    await within(Promise.all(flood.map((r) => r.closed)), 40_000, 'the server to close every flood connection');
    expect(flood.filter((r) => !r.socket.destroyed).length).toBe(0);
    const answered = flood.filter((r) => r.received().startsWith('HTTP/1.1 401'));
    expect(answered.length).toBeGreaterThan(1000);
    for (const r of answered) expect(r.received().toLowerCase()).toContain('connection: close');
    await until(() => acceptedOn(t.port) <= 5, 'the flood sockets to be gone');
    expect(await victimCalls('victim')).toBe('victim served');
  });

  it('a local process holds silent connections up to the cap: the oldest unauthenticated ones make room and an agent with a token still connects', async () => {
    const silent = Array.from({ length: 400 }, () => open(''));
    let closed = 0;
    for (const r of silent) void r.closed.then(() => closed++);
    // The event: the server has dealt with all 400 (each is held or was closed), however long that took.
    await until(() => closed + acceptedOn(t.port) >= silent.length, 'the server to accept or close every silent connection', 30_000);
    // Never more than the share left after the agents' reserve (a quarter of 300).
    expect(acceptedOn(t.port)).toBeLessThanOrEqual(LIMITS.maxConnections - 75 + 10);
    expect(silent.filter((r) => !r.socket.destroyed).length).toBeGreaterThan(100);
    expect(await victimCalls('newcomer')).toBe('newcomer served');
    for (const r of silent) r.socket.destroy();
    await until(() => acceptedOn(t.port) <= 10, 'the silent sockets to be gone');
  });

  it('a connection that never authenticated gets a short keep-alive, announced; an agent keeps its connection', async () => {
    const anon = open(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:${t.port}\r\n\r\n`);
    expect((await anon.head).toLowerCase()).toContain('keep-alive: timeout=1');
    // Closed by the 1 s keep-alive, not the 65 s default: the guard is far from both.
    await within(anon.closed, 30_000, 'the short keep-alive to close the connection');

    const token = await t.mint('keeper');
    const sid = await t.openSession(token);
    const agent = open(mcpRequest(token, 'POST', sid, echo('kept')));
    expect(await agent.head).toMatch(/^HTTP\/1\.1 200/);
    await until(() => agent.received().includes('kept"'), 'the whole answer');
    // A witness: an anonymous connection answered after the agent's. When its short keep-alive
    // has closed it, the agent's would have run out before (same timer, set earlier).
    const witness = open(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:${t.port}\r\n\r\n`);
    await witness.head;
    await within(witness.closed, 30_000, 'the short keep-alive to close the witness');
    expect(agent.socket.destroyed).toBe(false);
    // And the kept connection still carries a request.
    const before = agent.received().length;
    agent.socket.write(mcpRequest(token, 'POST', sid, echo('kept again')));
    await until(() => agent.received().slice(before).includes('kept again"'), 'a second answer on the kept connection');
    agent.socket.destroy();
  });

  it('one token agent opens connections past its limit: refused, another agent still served', async () => {
    const token = await t.mint('greedy');
    const sid = await t.openSession(token);
    const held: Raw[] = [];
    for (let i = 0; i < LIMITS.maxConnectionsPerAgent + 4; i++) {
      const r = open(mcpRequest(token, 'POST', sid, echo(`greedy ${i}`)));
      // The whole answer (its result, or the refusal), so that only connections are held, not requests in progress.
      // Sequential: at most the one just answered can still count as in flight (limit 3), so no pause is needed.
      await until(() => r.received().includes(`greedy ${i}"`) || r.received().startsWith('HTTP/1.1 429') || r.socket.destroyed, 'an answer');
      held.push(r);
    }
    const ok = held.filter((r) => r.received().startsWith('HTTP/1.1 200'));
    const refused = held.filter((r) => r.received().startsWith('HTTP/1.1 429'));
    expect(ok.length).toBeGreaterThan(0);
    expect(ok.length).toBeLessThanOrEqual(LIMITS.maxConnectionsPerAgent);
    expect(refused.length).toBeGreaterThanOrEqual(4);
    for (const r of refused) {
      expect(r.received()).toContain('reuse connections');
      await r.closed;
    }
    // The connections it holds still work, and another agent is served.
    expect(await victimCalls('bystander')).toBe('bystander served');
    const again = await rawRequest(t.port, { headers: { ...MCP_HEADERS, authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }, body: JSON.stringify(echo('x')) });
    expect([200, 429]).toContain(again.status);
    for (const r of held) r.socket.destroy();
  });

  it('an agent pipelines requests behind one another and hangs up: the queued ones give their in-flight slots back (Node never closes a response that had no socket yet)', async () => {
    const token = await t.mint('pipeliner');
    const sids: string[] = [];
    for (let i = 0; i < 2 * LIMITS.maxInFlightPerAgent; i++) sids.push(await t.openSession(token));
    // Three response streams on one connection: the first answered, two queued behind it (each admitted, so counted).
    const piped = open(sids.slice(0, LIMITS.maxInFlightPerAgent).map((sid) => mcpRequest(token, 'GET', sid)).join(''));
    expect(await piped.head).toMatch(/^HTTP\/1\.1 200/);
    // The queued requests are parsed and admitted as soon as they arrive; nothing on the wire says when.
    await new Promise((r) => setTimeout(r, 300));
    piped.socket.destroy();
    await piped.closed;
    // Every slot came back: the agent holds its full number of streams again (two leaked slots would make the second a 429).
    await until(
      async () => {
        const streams = sids.slice(LIMITS.maxInFlightPerAgent).map((sid) => open(mcpRequest(token, 'GET', sid)));
        const heads = await Promise.all(streams.map((r) => r.head));
        for (const r of streams) r.socket.destroy();
        await Promise.all(streams.map((r) => r.closed));
        return heads.every((h) => /^HTTP\/1\.1 200/.test(h));
      },
      'the agent to hold its full number of streams again',
      10_000,
    );
  });

  it('an agent pipelines twenty requests behind a held stream: one listener on the connection, not one per queued response (no MaxListenersExceededWarning), and all close with it', async () => {
    const token = await t.mint('pipeliner2');
    const sid = await t.openSession(token);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const piped = open([mcpRequest(token, 'GET', sid), ...Array.from({ length: 20 }, () => mcpRequest(token, 'POST', sid, echo('queued')))].join(''));
      expect(await piped.head).toMatch(/^HTTP\/1\.1 200/);
      await new Promise((r) => setTimeout(r, 300));
      piped.socket.destroy();
      await piped.closed;
      // The agent's slots all came back (the queued responses closed with the connection).
      await until(async () => {
        const again = open(mcpRequest(token, 'POST', sid, echo('after')));
        const head = await again.head;
        again.socket.destroy();
        return /^HTTP\/1\.1 200/.test(head);
      }, 'the agent to be served again', 10_000);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
  });

  it('one token agent holds response streams past its in-flight limit: its next request is refused, another agent still served', async () => {
    const token = await t.mint('streamer');
    const sids: string[] = [];
    for (let i = 0; i < LIMITS.maxInFlightPerAgent + 1; i++) sids.push(await t.openSession(token));
    const streams: Raw[] = [];
    for (const sid of sids) {
      const r = open(mcpRequest(token, 'GET', sid));
      await r.head;
      streams.push(r);
    }
    const statuses = streams.map((r) => r.received().slice(9, 12));
    expect(statuses.slice(0, LIMITS.maxInFlightPerAgent)).toEqual(['200', '200', '200']);
    expect(statuses[LIMITS.maxInFlightPerAgent]).toBe('429');
    expect(streams[LIMITS.maxInFlightPerAgent]?.received()).toContain('requests in progress');
    expect(await victimCalls('bystander2')).toBe('bystander2 served');
    // Its streams closed, it is served again: the event is the server noticing the closes (a
    // request answered 200); a limit never released never gets there (hang guard).
    for (const r of streams) r.socket.destroy();
    await until(async () => {
      const again = open(mcpRequest(token, 'POST', sids[0], echo('after')));
      const head = await again.head;
      again.socket.destroy();
      return /^HTTP\/1\.1 200/.test(head);
    }, 'the agent to be served again after closing its streams', 30_000);
  });

  it('a sandboxed agent opens connections on its session socket past its limit: refused at accept, another sandbox still served', async () => {
    const a = await t.gw.sandboxes.create('boxed-a', 8931);
    const b = await t.gw.sandboxes.create('boxed-b', 8932);
    try {
      const flood = Array.from({ length: LIMITS.maxConnectionsPerAgent + 20 }, () => {
        const s = connect(a.socketPath);
        sockets.push(s);
        s.on('error', () => undefined);
        return s;
      });
      // Refused at accept: the server closes every one past the limit (the event; the guard only stops a hang).
      await until(() => flood.filter((s) => !s.destroyed).length <= LIMITS.maxConnectionsPerAgent, 'the connections past the limit to be closed', 30_000);
      const other = connect(b.socketPath);
      sockets.push(other);
      let got = '';
      other.on('data', (d: Buffer) => (got += d.toString('latin1')));
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
      other.write(`POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:8932\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      await until(() => got.startsWith('HTTP/1.1 200') && got.includes('serverInfo'), 'the other sandbox to be served');
      for (const s of flood) s.destroy();
      other.destroy();
    } finally {
      await t.gw.sandboxes.close(a.id);
      await t.gw.sandboxes.close(b.id);
    }
  });
});
