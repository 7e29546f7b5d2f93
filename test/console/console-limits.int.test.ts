/**
 * The console's connections against the listener's limits: once a request
 * proves its console session, its connection counts as that session's (like
 * an agent's), so a flood of token-less connections cannot evict the admin's
 * event stream, and one session is held to the per-agent limits.
 */
import { request, type ClientRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';
import { consoleSession, type ConsoleLogin } from './helpers.js';

const LIMITS = { maxConnections: 100, maxInFlightPerAgent: 3, unauthenticatedKeepAliveMs: 30_000, checkIntervalMs: 250 };

let t: TestGateway;
const sockets: Socket[] = [];
const requests: ClientRequest[] = [];

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], runtime: { http: LIMITS } });
});

afterAll(async () => {
  for (const r of requests) r.destroy();
  for (const s of sockets) s.destroy();
  await t?.close();
});

/** An open event stream: resolves once its first event came; `closed()` says whether the server ended it since. */
function stream(s: ConsoleLogin): Promise<{ first: string; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    const r = request({ host: '127.0.0.1', port: t.port, path: '/console/events', headers: s.headers, agent: false }, (res) => {
      res.once('data', (d: Buffer) => resolve({ first: String(d), closed: () => closed }));
      res.on('close', () => (closed = true));
      res.on('error', () => (closed = true));
    });
    r.on('error', (e) => {
      closed = true;
      reject(e);
    });
    r.end();
    requests.push(r);
  });
}

describe('console connections count as the session’s, not as anonymous ones', () => {
  it('a_flood_of_tokenless_connections_does_not_evict_the_console_stream', async () => {
    const s = await consoleSession(t);
    const sse = await stream(s);
    expect(sse.first).toContain('event: hello');
    // Any local process, no token: more idle connections than the anonymous share (75 of 100).
    for (let i = 0; i < 100; i++) {
      const so = connect(t.port, '127.0.0.1');
      so.on('error', () => undefined);
      sockets.push(so);
    }
    await until(() => sockets.filter((so) => so.destroyed).length >= 25 || undefined, 'the oldest anonymous connections to be closed');
    await new Promise((r) => setTimeout(r, 500));
    expect(sse.closed()).toBe(false);
    for (const so of sockets.splice(0)) so.destroy();
  });

  it('one_console_session_is_held_to_the_per_agent_request_limit', async () => {
    const s = await consoleSession(t);
    // Three streams in flight (the limit); the fourth request of that session is refused, another session's is not.
    for (let i = 0; i < LIMITS.maxInFlightPerAgent; i++) await stream(s);
    const refused = await t.raw({ method: 'GET', path: '/console/api/live', headers: s.headers });
    expect(refused.status).toBe(429);
    expect(refused.text).toMatch(/requests in progress/);
    const other = await consoleSession(t);
    expect((await t.raw({ method: 'GET', path: '/console/api/live', headers: other.headers })).status).toBe(200);
  });
});
