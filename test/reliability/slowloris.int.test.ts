/**
 * Slowloris: clients that trickle headers or a body, or just connect and say
 * nothing. The server must close each within its timeouts, hold no more than
 * its connection cap, and keep serving well-behaved agents. Limits are
 * shortened here (the defaults are checked to be finite).
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HTTP_LIMITS } from '../../src/server/listen.js';
import { MCP_HEADERS, rawRequest, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';
import { acceptedOn } from './helpers.js';

const LIMITS = { headersTimeoutMs: 1500, requestTimeoutMs: 2500, checkIntervalMs: 250, maxConnections: 100 };

let t: TestGateway;
let token: string;
let sid: string;
const sockets: Socket[] = [];

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], runtime: { http: LIMITS } });
  token = await t.mint('alice');
  sid = await t.openSession(token);
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await t?.close();
});

/** Who ended a slow connection first: the server closing it, or the client running out of bytes to trickle. */
type Outcome = 'closed by the server' | 'the client finished trickling first';

interface Slow {
  socket: Socket;
  /** Resolves when the server closed the connection. */
  closed: Promise<void>;
  /**
   * Resolves when the server closed the connection, or when the client has sent its
   * last byte (its own clock, in the same process as the server's timers, so load
   * slows both alike): no wall-clock bound, and it cannot hang when a timeout is broken.
   */
  outcome: Promise<Outcome>;
  /** Bytes of `drip` sent so far. */
  dripped: () => number;
  received: () => string;
}

/** Opens a connection that sends `head` and then one more byte of `drip` every `everyMs`. */
function slow(port: number, head: string, drip: string, everyMs: number): Slow {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => undefined);
  let i = 0;
  let finished: () => void = () => undefined;
  const dripDone = new Promise<void>((r) => (finished = r));
  const timer = setInterval(() => {
    if (i < drip.length && socket.writable) socket.write(drip[i++] ?? '');
    // One more period after the last byte: the server had that long to answer it.
    else if (i >= drip.length) finished();
  }, everyMs);
  socket.once('connect', () => {
    if (head !== '') socket.write(head);
  });
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      clearInterval(timer);
      resolve();
    }),
  );
  const outcome = Promise.race([closed.then((): Outcome => 'closed by the server'), dripDone.then((): Outcome => 'the client finished trickling first')]);
  return { socket, closed, outcome, dripped: () => i, received: () => got };
}

async function legitCall(text: string): Promise<string> {
  const r = await rawRequest(t.port, {
    headers: { ...MCP_HEADERS, authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fx__echo', arguments: { text } } }),
  });
  return ((r.messages()[0] as { result?: { content: Array<{ text: string }> } }).result?.content[0]?.text ?? `status ${r.status}`);
}

describe('slowloris', () => {
  it('the default limits are finite', () => {
    expect(DEFAULT_HTTP_LIMITS.headersTimeoutMs).toBeGreaterThan(0);
    expect(DEFAULT_HTTP_LIMITS.headersTimeoutMs).toBeLessThanOrEqual(30_000);
    expect(DEFAULT_HTTP_LIMITS.requestTimeoutMs).toBeGreaterThan(0);
    expect(DEFAULT_HTTP_LIMITS.requestTimeoutMs).toBeLessThanOrEqual(120_000);
    expect(Number.isFinite(DEFAULT_HTTP_LIMITS.maxConnections)).toBe(true);
    expect(DEFAULT_HTTP_LIMITS.checkIntervalMs).toBeLessThanOrEqual(5_000);
  });

  it('60 connections trickling their headers are each closed (408) within the headers timeout; agents are served meanwhile', async () => {
    const head = `POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:${t.port}\r\n`;
    // 100 bytes at 200 ms: 20 s of trickling, against a 1.5 s headers timeout.
    const drip = 'x-slow: ' + 'a'.repeat(92);
    const attack = Array.from({ length: 60 }, () => slow(t.port, head, drip, 200));
    await until(() => acceptedOn(t.port) >= 60, 'the attack to connect');
    expect(await legitCall('during the attack')).toBe('during the attack');
    const outcomes = await Promise.all(attack.map((a) => a.outcome));
    expect(outcomes.filter((o) => o !== 'closed by the server')).toEqual([]);
    expect(attack.filter((a) => a.received().startsWith('HTTP/1.1 408')).length).toBeGreaterThan(0);
    await until(() => acceptedOn(t.port) === 0, 'every attack socket to be gone');
  });

  it('a body trickled one byte at a time is cut off by the request timeout, and nothing is forwarded', async () => {
    const before = t.calls().length;
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'trickled' } } });
    const head = [
      'POST /mcp HTTP/1.1',
      `host: 127.0.0.1:${t.port}`,
      `authorization: Bearer ${token}`,
      'content-type: application/json',
      'accept: application/json, text/event-stream',
      `mcp-session-id: ${sid}`,
      'mcp-protocol-version: 2025-11-25',
      `content-length: ${body.length}`,
      '',
      '',
    ].join('\r\n');
    // About 170 bytes at 150 ms: 25 s of trickling, against a 2.5 s request timeout.
    const t0 = performance.now();
    const a = slow(t.port, head, body, 150);
    expect(await a.outcome).toBe('closed by the server');
    // A lower bound only (load can only make it longer): the server read the body for a while, it did not refuse it at once.
    expect(performance.now() - t0).toBeGreaterThan(LIMITS.headersTimeoutMs - 500);
    expect(a.dripped()).toBeGreaterThan(3);
    expect(t.calls().length).toBe(before);
    expect(await legitCall('after the trickle')).toBe('after the trickle');
  });

  it('silent connections beyond the cap are refused at once; those held are closed by the headers timeout; then agents are served again', async () => {
    const attack = Array.from({ length: 160 }, () => slow(t.port, '', '', 1000));
    let closed = 0;
    for (const a of attack) void a.closed.then(() => closed++);
    // "At once": the 60 past the cap are closed while the others are still held (before any headers timeout).
    let peak = 0;
    await until(() => {
      const held = acceptedOn(t.port);
      peak = Math.max(peak, held);
      return closed >= attack.length - LIMITS.maxConnections && held > 0;
    }, 'the connections past the cap to be refused while the rest are held', 30_000);
    expect(peak).toBeLessThanOrEqual(LIMITS.maxConnections);
    await Promise.all(attack.map((a) => a.closed));
    await until(() => acceptedOn(t.port) === 0, 'the held sockets to be closed');
    expect(await legitCall('after the flood')).toBe('after the flood');
  });

  it('the sandbox session socket has the same limits (the agent inside is untrusted)', async () => {
    const s = await t.gw.sandboxes.create('boxed', 8931);
    try {
      const socket = connect(s.socketPath);
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.write('POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:8931\r\n');
      // 100 bytes at 200 ms: 20 s of trickling, against a 1.5 s headers timeout.
      let sent = 0;
      let finished: () => void = () => undefined;
      const dripDone = new Promise<string>((r) => (finished = () => r('the client finished trickling first')));
      const drip = setInterval(() => (sent < 100 ? socket.writable && (sent++, socket.write('x')) : finished()), 200);
      const closed = new Promise<string>((r) => socket.once('close', () => r('closed by the server')));
      const outcome = await Promise.race([closed, dripDone]);
      clearInterval(drip);
      expect(outcome).toBe('closed by the server');
    } finally {
      await t.gw.sandboxes.close(s.id);
    }
  });
});
