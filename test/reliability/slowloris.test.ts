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
import { acceptedOn, sleep } from './helpers.js';

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

interface Slow {
  socket: Socket;
  closed: Promise<number>;
  received: () => string;
}

/** Opens a connection that sends `head` and then one more byte of `drip` every `everyMs`; resolves `closed` with the ms it lived. */
function slow(port: number, head: string, drip: string, everyMs: number): Slow {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  const t0 = performance.now();
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => undefined);
  let i = 0;
  const timer = setInterval(() => {
    if (i < drip.length && socket.writable) socket.write(drip[i++] ?? '');
  }, everyMs);
  socket.once('connect', () => {
    if (head !== '') socket.write(head);
  });
  const closed = new Promise<number>((resolve) =>
    socket.once('close', () => {
      clearInterval(timer);
      resolve(performance.now() - t0);
    }),
  );
  return { socket, closed, received: () => got };
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
    const drip = 'x-slow: ' + 'a'.repeat(200);
    const attack = Array.from({ length: 60 }, () => slow(t.port, head, drip, 200));
    await until(() => acceptedOn(t.port) >= 60, 'the attack to connect');
    expect(await legitCall('during the attack')).toBe('during the attack');
    const lived = await Promise.all(attack.map((a) => a.closed));
    for (const ms of lived) expect(ms).toBeLessThan(LIMITS.headersTimeoutMs + LIMITS.checkIntervalMs + 2500);
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
    const a = slow(t.port, head, body, 150);
    const lived = await a.closed;
    expect(lived).toBeLessThan(LIMITS.requestTimeoutMs + LIMITS.checkIntervalMs + 2500);
    expect(lived).toBeGreaterThan(LIMITS.headersTimeoutMs - 500);
    expect(t.calls().length).toBe(before);
    expect(await legitCall('after the trickle')).toBe('after the trickle');
  });

  it('silent connections beyond the cap are refused at once; those held are closed by the headers timeout; then agents are served again', async () => {
    const attack = Array.from({ length: 160 }, () => slow(t.port, '', '', 1000));
    await sleep(500);
    const held = acceptedOn(t.port);
    expect(held).toBeLessThanOrEqual(LIMITS.maxConnections);
    expect(held).toBeGreaterThan(0);
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
      const t0 = performance.now();
      socket.write('POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:8931\r\n');
      const drip = setInterval(() => socket.writable && socket.write('x'), 200);
      await new Promise((r) => socket.once('close', r));
      clearInterval(drip);
      expect(performance.now() - t0).toBeLessThan(LIMITS.headersTimeoutMs + LIMITS.checkIntervalMs + 2500);
    } finally {
      await t.gw.sandboxes.close(s.id);
    }
  });
});
