/**
 * Plain-HTTP forwarding reuses kept-alive upstream connections (issue: +1.39 ms
 * per request for a new connection each time), and only where that is safe:
 * per caller, per checked address and port, after a clean exchange, never
 * with bytes the upstream sent unasked. Real sockets, the real audit writer;
 * the upstreams are raw TCP servers, so each test says exactly what they send.
 * Each test is named after what it stops.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EgressProxy, type EgressIdentity, type EgressLimits } from '../../src/egress/proxy.js';
import { silentLogger } from '../../src/log.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';
import { until } from '../helpers/gateway.js';
import { answer, egressFixtures, served, sleep } from './pool-fixtures.js';

const fx = egressFixtures();
const { cleanups, upstream, client, rawClient, records, recordOf, paths } = fx;
/** The injected resolver's answer for up.test (changed by the rebinding test). */
let upTest = ['127.0.0.1'];
afterEach(() => {
  upTest = ['127.0.0.1'];
});

interface Proxy {
  proxy: EgressProxy;
  /** A listener whose connections are `who`'s; `clients` counts the connections it accepted. */
  listen(who: EgressIdentity): Promise<{ port: number; clients: () => number }>;
}

function startProxy(upPort: number, limits: Partial<EgressLimits> = {}): Proxy {
  const text = `version: 1
default: deny
rules:
  - id: up
    match: { agent: coder, egress: { host: up.test, port: ${upPort} } }
    effect: allow
  - id: up-connector
    match: { connector: github, egress: { host: up.test, port: ${upPort} } }
    effect: allow
`;
  const policy = loadPolicyFiles(['/p/reuse.yaml'], memorySource({ '/p/reuse.yaml': text }));
  const resolve = async (host: string): Promise<string[]> => {
    if (host !== 'up.test') throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return upTest;
  };
  const proxy = new EgressProxy({ policy: () => policy, audit: fx.log(), logger: silentLogger, resolve, limits: { connectTimeoutMs: 2_000, ...limits } });
  cleanups.push(() => proxy.close());
  return {
    proxy,
    async listen(who) {
      let clients = 0;
      const server = createServer((s) => {
        clients++;
        proxy.accept(s, who);
      });
      cleanups.push(() => server.close());
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { port: (server.address() as AddressInfo).port, clients: () => clients };
    },
  };
}

const coder = (sandbox: string): EgressIdentity => ({ caller: { kind: 'agent', name: 'coder' }, sandbox });

describe('kept-alive upstream connections', () => {
  it('two requests on one kept-alive client connection go on one upstream connection, each decided and recorded on its own', async () => {
    const up = await upstream();
    const { listen } = startProxy(up.port);
    const { port, clients } = await listen(coder('sb-1'));
    const c = client(port);
    const [one, two] = paths('one', 'two') as [string, string];
    expect(await c.send('GET', `http://up.test:${up.port}${one}`)).toMatchObject({ status: 200, text: `answer to ${one} #1` });
    expect(await c.send('GET', `http://up.test:${up.port}${two}`)).toMatchObject({ status: 200, text: `answer to ${two} #2` });
    expect(clients()).toBe(1);
    expect(up.conns.map((x) => x.paths)).toEqual([[one, two]]);
    const [r1, r2] = [await recordOf(one), await recordOf(two)];
    expect(r1).toMatchObject({ agent: 'coder', sandbox: 'sb-1', rule: 'up', address: '127.0.0.1', outcome: 'ok', status: 200, bytesUp: 0, bytesDown: `answer to ${one} #1`.length });
    expect(r2).toMatchObject({ agent: 'coder', sandbox: 'sb-1', rule: 'up', address: '127.0.0.1', outcome: 'ok', status: 200, bytesUp: 0, bytesDown: `answer to ${two} #2`.length });
    expect(r1.conn).not.toBe(r2.conn);
    for (const r of [r1, r2]) {
      const intent = records().find((i) => i.event === 'egress.intent' && i.conn === r.conn);
      expect(intent).toMatchObject({ path: r.path, addresses: ['127.0.0.1'] });
      expect(Number(intent?.seq)).toBeLessThan(Number(r.seq));
    }
  });

  it('the upstream request asks to keep the connection alive, never Connection: close', async () => {
    const heads: string[] = [];
    const up = await upstream((r, s) => {
      heads.push(r.head);
      s.write(served(r));
    });
    const { listen } = startProxy(up.port);
    const { port } = await listen(coder('sb-1'));
    const [p] = paths('head') as [string];
    // The client's own connection is kept alive too, and says so.
    await client(port).send('GET', `http://up.test:${up.port}${p}`);
    expect(heads).toHaveLength(1);
    expect(heads[0]).toMatch(/\r\nconnection: keep-alive(\r\n|$)/i);
    expect(heads[0]).not.toMatch(/close/i);
  });

  it('thirty requests in a row share one upstream connection and leave no listener behind (no MaxListenersExceededWarning)', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    cleanups.push(() => process.off('warning', onWarning));
    const up = await upstream();
    const { listen } = startProxy(up.port);
    const c = client((await listen(coder('sb-1'))).port);
    const [p] = paths('many') as [string];
    for (let i = 1; i <= 30; i++) expect((await c.send('GET', `http://up.test:${up.port}${p}?i=${i}`)).text).toBe(`answer to ${p}?i=${i} #${i}`);
    expect(up.conns).toHaveLength(1);
    await sleep(20);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});

describe('hostile upstreams on a kept-alive connection', () => {
  it.each([
    ['in the same write as the first', (s: Socket, first: string) => s.write(first + answer('EARLY: not yours'))],
    ['right behind the first', (s: Socket, first: string) => {
      s.write(first);
      setImmediate(() => s.write(answer('EARLY: not yours')));
    }],
    ['a moment after the first (while the connection is idle)', (s: Socket, first: string) => {
      s.write(first);
      setTimeout(() => s.write(answer('EARLY: not yours')), 30);
    }],
  ])('an upstream that sends a second answer ahead of the next request (%s): the next request gets its own answer, never the early one', async (_when, twice) => {
    const up = await upstream((r, s) => (r.n === 1 ? twice(s, served(r)) : s.write(served(r))));
    const { listen } = startProxy(up.port);
    const c = client((await listen(coder('sb-1'))).port);
    const [first, second] = paths('first', 'second') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${first}`)).text).toBe(`answer to ${first} #1`);
    await sleep(150);
    expect(await c.send('GET', `http://up.test:${up.port}${second}`)).toMatchObject({ status: 200, text: `answer to ${second} #1` });
    expect(up.conns.map((x) => x.paths)).toEqual([[first], [second]]);
    await until(() => up.conns[0]?.closed, 'the proxy to close the connection that spoke out of turn', 2_000);
  });

  it('an upstream that answers before the request body is all sent and then sends another answer: that connection is not kept', async () => {
    // The answer is complete long before the connection could go back to the pool (the body is still on its way): the gap an idle guard alone would miss.
    const [post, next] = paths('early-post', 'next') as [string, string];
    // Answers each connection's first request as soon as its head arrives, and once more 50 ms later.
    const conns: Array<{ closed: boolean }> = [];
    const hasty = createServer((s) => {
      const conn = { closed: false };
      conns.push(conn);
      s.on('error', () => undefined);
      s.on('close', () => (conn.closed = true));
      s.once('data', () => {
        s.write(answer('early bird'));
        setTimeout(() => s.write(answer('EARLY: not yours')), 50);
      });
    });
    cleanups.push(() => hasty.close());
    await new Promise<void>((r) => hasty.listen(0, '127.0.0.1', r));
    const hastyPort = (hasty.address() as AddressInfo).port;
    const policy = loadPolicyFiles(['/p/h.yaml'], memorySource({ '/p/h.yaml': `version: 1\ndefault: deny\nrules:\n  - { id: h, match: { agent: coder, egress: { host: 127.0.0.1, port: ${hastyPort} } }, effect: allow }\n` }));
    const proxy = new EgressProxy({ policy: () => policy, audit: fx.log(), logger: silentLogger });
    cleanups.push(() => proxy.close());
    const server = createServer((s) => proxy.accept(s, coder('sb-1')));
    cleanups.push(() => server.close());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const c = rawClient((server.address() as AddressInfo).port);
    c.write(`POST http://127.0.0.1:${hastyPort}${post} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 10\r\n\r\nhello`);
    expect(await c.next()).toMatchObject({ status: 200, text: 'early bird' });
    await sleep(400);
    c.write('world');
    await until(() => conns[0]?.closed, 'the proxy to close the connection that spoke out of turn', 2_000);
    // The same caller's next request to that upstream goes on a new connection.
    c.write(`GET http://127.0.0.1:${hastyPort}${next} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    expect(await c.next()).toMatchObject({ status: 200, text: 'early bird' });
    expect(conns).toHaveLength(2);
    expect(await recordOf(post)).toMatchObject({ outcome: 'ok', status: 200 });
  });

  it('a kept-alive upstream connection opened for one caller is never used for another caller\'s request', async () => {
    const up = await upstream();
    const { listen } = startProxy(up.port);
    const a = client((await listen(coder('sb-1'))).port);
    const b = client((await listen(coder('sb-2'))).port);
    const conn = client((await listen({ caller: { kind: 'connector', name: 'github' } })).port);
    const [a1, b1, c1, a2, b2] = paths('a1', 'b1', 'c1', 'a2', 'b2') as [string, string, string, string, string];
    const url = (p: string): string => `http://up.test:${up.port}${p}`;
    // One sandbox's connection is idle while another sandbox of the same agent, and a connector, ask for the same upstream.
    expect((await a.send('GET', url(a1))).status).toBe(200);
    expect((await b.send('GET', url(b1))).status).toBe(200);
    expect((await conn.send('GET', url(c1))).status).toBe(200);
    // Each caller's own idle connection is reused: the pool held them all the while.
    expect((await a.send('GET', url(a2))).status).toBe(200);
    expect((await b.send('GET', url(b2))).status).toBe(200);
    expect(up.conns.map((x) => x.paths)).toEqual([[a1, a2], [b1, b2], [c1]]);
    expect((await recordOf(c1)).connector).toBe('github');
    expect(await recordOf(b2)).toMatchObject({ sandbox: 'sb-2', outcome: 'ok' });
  });

  it('a name that now resolves to a different address does not reuse the connection to the old one', async () => {
    const up = await upstream(undefined, ['127.0.0.1', '127.0.0.2']);
    const { listen } = startProxy(up.port);
    const c = client((await listen(coder('sb-1'))).port);
    const [old, moved, either] = paths('old', 'moved', 'either') as [string, string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${old}`)).text).toBe(`answer to ${old} #1`);
    upTest = ['127.0.0.2'];
    expect((await c.send('GET', `http://up.test:${up.port}${moved}`)).text).toBe(`answer to ${moved} #1`);
    expect(up.conns.map((x) => [x.local, x.paths])).toEqual([
      ['127.0.0.1', [old]],
      ['127.0.0.2', [moved]],
    ]);
    expect(await recordOf(moved)).toMatchObject({ address: '127.0.0.2', addresses: ['127.0.0.2'] });
    // Both checked this time: an idle connection to either may serve it, and no third is opened.
    upTest = ['127.0.0.1', '127.0.0.2'];
    expect((await c.send('GET', `http://up.test:${up.port}${either}`)).status).toBe(200);
    expect(up.conns).toHaveLength(2);
    expect(['127.0.0.1', '127.0.0.2']).toContain((await recordOf(either)).address);
  });

  it('a connection to the same address on another port is not reused', async () => {
    const one = await upstream();
    const other = await upstream();
    const policy = loadPolicyFiles(['/p/two.yaml'], memorySource({ '/p/two.yaml': `version: 1\ndefault: deny\nrules:\n  - { id: two, match: { agent: coder, egress: { host: 127.0.0.1, port: [${one.port}, ${other.port}] } }, effect: allow }\n` }));
    const proxy = new EgressProxy({ policy: () => policy, audit: fx.log(), logger: silentLogger });
    cleanups.push(() => proxy.close());
    const server = createServer((s) => proxy.accept(s, coder('sb-1')));
    cleanups.push(() => server.close());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const c = client((server.address() as AddressInfo).port);
    const [p1, p2] = paths('port-1', 'port-2') as [string, string];
    expect((await c.send('GET', `http://127.0.0.1:${one.port}${p1}`)).text).toBe(`answer to ${p1} #1`);
    expect((await c.send('GET', `http://127.0.0.1:${other.port}${p2}`)).text).toBe(`answer to ${p2} #1`);
    expect([one.conns.length, other.conns.length]).toEqual([1, 1]);
  });

  it.each([
    ['HTTP/1.1 with Connection: close', 'HTTP/1.1 200 OK\r\nconnection: close'],
    ['HTTP/1.0, even with Connection: keep-alive', 'HTTP/1.0 200 OK\r\nconnection: keep-alive'],
  ])('an upstream answering %s is not reused', async (_name, head) => {
    // The upstream itself keeps the connection open: only the proxy's judgement closes it.
    const up = await upstream((r, s) => s.write(answer(`answer to ${r.path} #${r.n}`, head)));
    const { listen } = startProxy(up.port);
    const c = client((await listen(coder('sb-1'))).port);
    const [p1, p2] = paths('close-1', 'close-2') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).text).toBe(`answer to ${p1} #1`);
    expect((await c.send('GET', `http://up.test:${up.port}${p2}`)).text).toBe(`answer to ${p2} #1`);
    expect(up.conns).toHaveLength(2);
    await until(() => up.conns[0]?.closed, 'the proxy to close the connection', 2_000);
  });

  it('an upstream that closes an idle kept-alive connection: the next GET succeeds on a new connection', async () => {
    const up = await upstream((r, s) => {
      s.write(served(r));
      setTimeout(() => s.end(), 30);
    });
    const { listen } = startProxy(up.port);
    const c = client((await listen(coder('sb-1'))).port);
    const [p1, p2] = paths('closed-1', 'closed-2') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    await until(() => up.conns[0]?.closed, 'the idle connection to close', 2_000);
    expect(await c.send('GET', `http://up.test:${up.port}${p2}`)).toMatchObject({ status: 200, text: `answer to ${p2} #1` });
    expect(await recordOf(p2)).toMatchObject({ outcome: 'ok', status: 200 });
  });

  it.each([
    ['closes', (s: Socket) => s.destroy()],
    ['resets', (s: Socket) => s.resetAndDestroy()],
  ])('an upstream that %s a kept-alive connection as the next GET arrives (the idle race): the GET is sent once more on a new connection, the client sees no error', async (_how, hangUp) => {
    const up = await upstream((r, s) => (r.n === 2 ? hangUp(s) : s.write(served(r))));
    const { listen } = startProxy(up.port);
    const c = client((await listen(coder('sb-1'))).port);
    const [p1, p2] = paths('race-1', 'race-2') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    expect(await c.send('GET', `http://up.test:${up.port}${p2}`)).toMatchObject({ status: 200, text: `answer to ${p2} #1` });
    expect(up.conns.map((x) => x.paths)).toEqual([[p1, p2], [p2]]);
    expect(await recordOf(p2)).toMatchObject({ outcome: 'ok', status: 200, address: '127.0.0.1' });
  });

  it('a request with a body whose kept-alive connection is closed under it gets 502: it is never sent twice', async () => {
    const up = await upstream((r, s) => (r.n === 2 ? s.destroy() : s.write(served(r))));
    const { listen } = startProxy(up.port);
    const c = client((await listen(coder('sb-1'))).port);
    const [p1, p2] = paths('body-1', 'body-2') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    expect((await c.send('POST', `http://up.test:${up.port}${p2}`, 'pay once')).status).toBe(502);
    expect(up.conns.map((x) => x.paths)).toEqual([[p1, p2]]);
    expect(await recordOf(p2)).toMatchObject({ outcome: expect.stringMatching(/^error: upstream/), bytesUp: 8 });
  });

  it('a GET whose kept-alive connection breaks after part of an answer gets 502: it is not sent again', async () => {
    const up = await upstream((r, s) => (r.n === 2 ? s.end('HTTP/1.1 200 OK\r\ncontent-len') : s.write(served(r))));
    const { listen } = startProxy(up.port);
    const c = client((await listen(coder('sb-1'))).port);
    const [p1, p2] = paths('part-1', 'part-2') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    expect((await c.send('GET', `http://up.test:${up.port}${p2}`)).status).toBe(502);
    expect(up.conns).toHaveLength(1);
  });
});

describe('idle upstream connections are closed', () => {
  it('after the idle time: the upstream sees the close', async () => {
    const up = await upstream();
    const { listen } = startProxy(up.port, { upstreamIdleMs: 200 });
    const c = client((await listen(coder('sb-1'))).port);
    const [p] = paths('idle') as [string];
    const started = Date.now();
    expect((await c.send('GET', `http://up.test:${up.port}${p}`)).status).toBe(200);
    await until(() => up.conns[0]?.closed, 'the idle connection to be closed', 3_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('sooner when the upstream announces a shorter Keep-Alive timeout', async () => {
    const up = await upstream((r, s) => s.write(answer(`answer to ${r.path}`, 'HTTP/1.1 200 OK\r\nkeep-alive: timeout=2')));
    const { listen } = startProxy(up.port, { upstreamIdleMs: 60_000 });
    const c = client((await listen(coder('sb-1'))).port);
    const [p] = paths('hint') as [string];
    expect((await c.send('GET', `http://up.test:${up.port}${p}`)).status).toBe(200);
    await sleep(300);
    expect(up.conns[0]?.closed).toBe(false);
    await until(() => up.conns[0]?.closed, 'the connection to be closed a second before the upstream would', 3_000);
  });

  it('when the proxy closes: no idle connection is left open', async () => {
    const up = await upstream();
    const { proxy, listen } = startProxy(up.port);
    const c = client((await listen(coder('sb-1'))).port);
    const [p] = paths('shut') as [string];
    expect((await c.send('GET', `http://up.test:${up.port}${p}`)).status).toBe(200);
    await sleep(20);
    expect(up.conns[0]?.closed).toBe(false);
    proxy.close();
    await until(() => up.conns[0]?.closed, 'the proxy to close its idle connection', 1_000);
  });
});
