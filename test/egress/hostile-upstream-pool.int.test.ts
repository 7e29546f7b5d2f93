/**
 * Hostile review of c8406e3 (kept-alive upstream connections in the egress
 * proxy). Each test is named after an attack and asserts the SAFE behaviour:
 * a failing test is a bug. Raw TCP upstreams and raw clients, so each test says
 * exactly which bytes cross.
 */
import { Agent, request as httpRequest } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EgressProxy, type EgressApprovals, type EgressIdentity, type EgressLimits } from '../../src/egress/proxy.js';
import { callerKey } from '../../src/egress/upstream-pool.js';
import { silentLogger } from '../../src/log.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';
import { RateLimiter } from '../../src/policy/rate-limit.js';
import type { Policy } from '../../src/policy/types.js';
import { until } from '../helpers/gateway.js';
import { answer, egressFixtures, served, sleep, type Req, type Up } from './pool-fixtures.js';

const fx = egressFixtures();
const { cleanups, upstream, client, rawClient, records, recordOf, paths } = fx;
/** The fake resolver's answers. */
let dns: Record<string, string[]> = {};
afterEach(() => {
  dns = {};
});

interface Started {
  proxy: EgressProxy;
  setPolicy(text: string): void;
  listen(who: EgressIdentity): Promise<number>;
}

const policyOf = (text: string): Policy => loadPolicyFiles(['/p/hostile.yaml'], memorySource({ '/p/hostile.yaml': text }));

/** Rules: agent coder and connector github may reach up.test:PORT; everything else denied unless `extra` says so. */
const basePolicy = (port: number, extra = ''): string => `version: 1
default: deny
rules:
${extra}  - id: up
    match: { agent: "*", egress: { host: up.test, port: ${port} } }
    effect: allow
  - id: up-connector
    match: { connector: "*", egress: { host: up.test, port: ${port} } }
    effect: allow
`;

function startProxy(text: string, opts: { limits?: Partial<EgressLimits>; approvals?: EgressApprovals; rateLimiter?: RateLimiter } = {}): Started {
  let policy = policyOf(text);
  const resolve = async (host: string): Promise<string[]> => {
    const a = dns[host] ?? (host === 'up.test' ? ['127.0.0.1'] : undefined);
    if (a === undefined) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return a;
  };
  const proxy = new EgressProxy({
    policy: () => policy,
    audit: fx.log(),
    logger: silentLogger,
    resolve,
    limits: { connectTimeoutMs: 2_000, ...opts.limits },
    ...(opts.approvals === undefined ? {} : { approvals: opts.approvals }),
    ...(opts.rateLimiter === undefined ? {} : { rateLimiter: opts.rateLimiter }),
  });
  cleanups.push(() => proxy.close());
  return {
    proxy,
    setPolicy: (t) => (policy = policyOf(t)),
    async listen(who) {
      const server = createServer((s) => proxy.accept(s, who));
      cleanups.push(() => server.close());
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return (server.address() as AddressInfo).port;
    },
  };
}

const coder = (sandbox?: string): EgressIdentity => (sandbox === undefined ? { caller: { kind: 'agent', name: 'coder' } } : { caller: { kind: 'agent', name: 'coder' }, sandbox });


// ---------------------------------------------------------------------------------------------

describe('request smuggling from the agent onto a kept-alive upstream connection', () => {
  it.each(['GET', 'HEAD', 'DELETE', 'OPTIONS'])(
    'smuggling: a %s with a Content-Length body whose Connection header lists content-length is refused (400): the upstream never parses the body as a second, undecided request',
    async (method) => {
      const up = await upstream();
      // Policy: only this method on /public* is allowed; /admin never.
      const pol = `version: 1
default: deny
rules:
  - id: public-only
    match: { agent: coder, egress: { host: up.test, port: ${up.port}, method: [${method}], path: "/public*" } }
    effect: allow
`;
      const p = startProxy(pol);
      const c = rawClient(await p.listen(coder('sb-1')));
      const [pub] = paths('public') as [string];
      const smuggled = `POST /admin-${process.pid} HTTP/1.1\r\nhost: internal.up.test\r\ncontent-length: 0\r\n\r\n`;
      c.write(`${method} http://up.test:${up.port}${pub} HTTP/1.1\r\nhost: up.test\r\nconnection: keep-alive, content-length\r\ncontent-length: ${smuggled.length}\r\n\r\n${smuggled}`);
      const a = await c.next();
      await sleep(150);
      // Safe: refused before anything is sent (a Connection header may not name the framing), so nothing reached the upstream.
      expect(a.status).toBe(400);
      expect(up.all()).toEqual([]);
    },
  );

  it('smuggling against a real node:http upstream: a GET whose Connection header lists content-length never makes the upstream run a second request (another method, path and Host) that no decision allowed', async () => {
    const { createServer: createHttpServer } = await import('node:http');
    const seen: string[] = [];
    const srv = createHttpServer((req, res) => {
      seen.push(`${req.method} ${req.headers.host} ${req.url}`);
      req.resume();
      res.end('ok');
    });
    cleanups.push(() => srv.closeAllConnections());
    cleanups.push(() => srv.close());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    const p = startProxy(`version: 1
default: deny
rules:
  - id: read-only
    match: { agent: coder, egress: { host: up.test, port: ${port}, method: GET, path: "/public*" } }
    effect: allow
`);
    const c = rawClient(await p.listen(coder('sb-1')));
    const [pub] = paths('public') as [string];
    const smuggled = `DELETE /admin/everything HTTP/1.1\r\nhost: internal.example\r\ncontent-length: 0\r\n\r\n`;
    c.write(`GET http://up.test:${port}${pub} HTTP/1.1\r\nhost: up.test\r\nconnection: content-length\r\ncontent-length: ${smuggled.length}\r\n\r\n${smuggled}`);
    expect((await c.next()).status).toBe(400);
    await sleep(200);
    expect(seen).toEqual([]);
  });

  it('smuggling: Content-Length and Transfer-Encoding together from the agent are refused (400) or forwarded as one request', async () => {
    const up = await upstream();
    const p = startProxy(basePolicy(up.port));
    const c = rawClient(await p.listen(coder('sb-1')));
    const [one] = paths('clte') as [string];
    const inner = `GET /smuggled-clte HTTP/1.1\r\nhost: up.test\r\n\r\n`;
    c.write(`POST http://up.test:${up.port}${one} HTTP/1.1\r\nhost: up.test\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n${inner}`);
    const a = await c.next();
    await sleep(150);
    expect(up.all().some((l) => l.includes('smuggled'))).toBe(false);
    expect([400, 200, 0]).toContain(a.status);
  });

  it('smuggling: two different Content-Length values from the agent are refused, never forwarded', async () => {
    const up = await upstream();
    const p = startProxy(basePolicy(up.port));
    const c = rawClient(await p.listen(coder('sb-1')));
    const [one] = paths('dupcl') as [string];
    c.write(`POST http://up.test:${up.port}${one} HTTP/1.1\r\nhost: up.test\r\ncontent-length: 0\r\ncontent-length: 40\r\n\r\nGET /smuggled-dupcl HTTP/1.1\r\nhost: x\r\n\r\n`);
    await c.next();
    await sleep(150);
    expect(up.all()).toEqual([]);
  });

  it('smuggling: a chunked GET body stays chunked upstream (one request), and the connection is still reusable safely', async () => {
    const up = await upstream();
    const p = startProxy(basePolicy(up.port));
    const c = rawClient(await p.listen(coder('sb-1')));
    const [one, two] = paths('chunked-get', 'after') as [string, string];
    const inner = 'GET /smuggled-chunked HTTP/1.1\r\nhost: x\r\n\r\n';
    c.write(`GET http://up.test:${up.port}${one} HTTP/1.1\r\nhost: up.test\r\ntransfer-encoding: chunked\r\n\r\n${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`);
    expect(await c.next()).toEqual({ status: 200, text: `answer to ${one} #1` });
    c.write(`GET http://up.test:${up.port}${two} HTTP/1.1\r\nhost: up.test\r\n\r\n`);
    expect(await c.next()).toEqual({ status: 200, text: `answer to ${two} #2` });
    expect(up.all()).toEqual([`GET ${one}`, `GET ${two}`]);
  });

  it('smuggling: Expect: 100-continue on a kept-alive upstream connection: one request upstream, the next request gets its own answer', async () => {
    const up = await upstream((r, s) => s.write(served(r)));
    const p = startProxy(basePolicy(up.port));
    const c = rawClient(await p.listen(coder('sb-1')));
    const [one, two] = paths('expect', 'expect-next') as [string, string];
    c.write(`POST http://up.test:${up.port}${one} HTTP/1.1\r\nhost: up.test\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n`);
    await sleep(50);
    c.write('hello');
    let a = await c.next();
    if (a.status === 100) a = await c.next();
    expect(a).toEqual({ status: 200, text: `answer to ${one} #1` });
    c.write(`GET http://up.test:${up.port}${two} HTTP/1.1\r\nhost: up.test\r\n\r\n`);
    // Its own answer, on the same upstream connection or a new one.
    expect(await c.next()).toMatchObject({ status: 200, text: expect.stringContaining(`answer to ${two} #`) });
    expect(up.all()).toEqual([`POST ${one}`, `GET ${two}`]);
  });

  it('pipelining: three requests pipelined on one agent connection are each decided, the denied one never reaches the upstream', async () => {
    const up = await upstream();
    const p = startProxy(`version: 1
default: deny
rules:
  - id: pub
    match: { agent: coder, egress: { host: up.test, port: ${up.port}, path: "/ok*" } }
    effect: allow
`);
    const c = rawClient(await p.listen(coder('sb-1')));
    const [a1, bad, a2] = paths('ok1', 'secret', 'ok2') as [string, string, string];
    const r = (path: string): string => `GET http://up.test:${up.port}${path} HTTP/1.1\r\nhost: up.test\r\n\r\n`;
    c.write(r(a1) + r(bad) + r(a2));
    const got = [await c.next(), await c.next(), await c.next()];
    expect(got[0]).toEqual({ status: 200, text: `answer to ${a1} #1` });
    expect(got[1]?.status).toBe(403);
    // A refusal closes the client connection (connection: close): the third is either dropped or answered with its own.
    if (got[2]?.status === 200) expect(got[2].text).toBe(`answer to ${a2} #2`);
    expect(up.all().filter((l) => l.includes('secret'))).toEqual([]);
  });
});

describe('hostile upstream answers: the next request never gets bytes of another exchange', () => {
  /** Request 1 answered by `first`; afterwards everything answered normally. */
  async function twoRequests(first: (r: Req, s: Socket) => void, method1 = 'GET'): Promise<{ up: Up; second: { status: number; text: string }; p2: string; first: { status: number; text: string } | Error }> {
    const up = await upstream((r, s) => (r.n === 1 && up.conns.length === 1 ? first(r, s) : s.write(served(r))));
    const p = startProxy(basePolicy(up.port), { limits: { idleTimeoutMs: 1_500 } });
    const c = client(await p.listen(coder('sb-1')));
    const [p1, p2] = paths('h1', 'h2') as [string, string];
    const firstAnswer = await c.send(method1, `http://up.test:${up.port}${p1}`).catch((e: Error) => e);
    await sleep(120);
    const second = await c.send('GET', `http://up.test:${up.port}${p2}`);
    return { up, second, p2, first: firstAnswer };
  }

  it.each([
    ['204 with a body in the same write', (_r: Req, s: Socket) => s.write(`HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n${answer('EVIL 204')}`)],
    ['204 with a body a moment later', (_r: Req, s: Socket) => {
      s.write('HTTP/1.1 204 No Content\r\n\r\n');
      setTimeout(() => s.write(answer('EVIL 204 late')), 20);
    }],
    ['304 with content-length and body', (_r: Req, s: Socket) => s.write(`HTTP/1.1 304 Not Modified\r\ncontent-length: ${answer('EVIL 304').length}\r\n\r\n${answer('EVIL 304')}`)],
    ['101 Switching Protocols to a request that asked for none, then raw bytes', (_r: Req, s: Socket) => {
      s.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: evil\r\n\r\n');
      setTimeout(() => s.write(answer('EVIL after 101')), 20);
    }],
    ['bare 101 without Upgrade headers', (_r: Req, s: Socket) => s.write('HTTP/1.1 101 Switching Protocols\r\n\r\n')],
    ['100 Continue then the answer then an extra answer', (r: Req, s: Socket) => {
      s.write('HTTP/1.1 100 Continue\r\n\r\n');
      s.write(served(r));
      setTimeout(() => s.write(answer('EVIL after 100')), 20);
    }],
    ['103 Early Hints after the final answer (an unasked informational answer)', (r: Req, s: Socket) => {
      s.write(served(r));
      setTimeout(() => s.write('HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n'), 20);
    }],
    ['both Content-Length and Transfer-Encoding (CL shorter than the chunked body)', (_r: Req, s: Socket) => {
      const evil = answer('EVIL CL.TE');
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${evil}`);
    }],
    ['chunked with trailers, then an extra answer later', (_r: Req, s: Socket) => {
      s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-t\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n');
      setTimeout(() => s.write(answer('EVIL after trailers')), 20);
    }],
    ['the last body byte and a complete extra answer in one later write', (_r: Req, s: Socket) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhell');
      setTimeout(() => s.write(`o${answer('EVIL glued')}`), 20);
    }],
    ['the last body byte and a partial extra answer, its remainder held for the next request', (_r: Req, s: Socket) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhell');
      setTimeout(() => s.write('oHTTP/1.1 200 OK\r\ncontent-length: 9\r\n'), 20);
    }],
    ['an answer that is a prefix of the next, then silence', (_r: Req, s: Socket) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello\r\n')],
  ])('desync: an upstream answering the first request with %s: the second request gets only its own answer', async (_name, first) => {
    const { second, p2 } = await twoRequests(first);
    expect(second.text).not.toMatch(/EVIL/);
    expect(second).toMatchObject({ status: 200, text: expect.stringContaining(`answer to ${p2}`) });
  });

  it('desync: an HTTP/1.1 answer framed by connection close (no length): never pooled, the next request gets its own answer on a new connection', async () => {
    const up = await upstream((r, s) => (r.n === 1 && up.conns.length === 1 ? s.write(`HTTP/1.1 200 OK\r\n\r\nuntil close ${answer('EVIL unframed')}`) : s.write(served(r))));
    const p = startProxy(basePolicy(up.port), { limits: { idleTimeoutMs: 500 } });
    const port = await p.listen(coder('sb-1'));
    const [p1, p2] = paths('unframed', 'after-unframed') as [string, string];
    const a = rawClient(port);
    a.write(`GET http://up.test:${up.port}${p1} HTTP/1.1\r\nhost: up.test\r\n\r\n`);
    await until(() => up.conns[0]?.reqs.length === 1, 'the first request upstream');
    await sleep(50);
    const second = await client(port).send('GET', `http://up.test:${up.port}${p2}`);
    expect(second).toMatchObject({ status: 200, text: `answer to ${p2} #1` });
    expect(up.conns).toHaveLength(2);
  });

  it('desync: a HEAD answered with content-length and body bytes: the next request gets its own answer', async () => {
    const { second, p2 } = await twoRequests((_r, s) => {
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${answer('EVIL HEAD').length}\r\n\r\n`);
      setTimeout(() => s.write(answer('EVIL HEAD')), 20);
    }, 'HEAD');
    expect(second.text).not.toMatch(/EVIL/);
    expect(second).toMatchObject({ status: 200, text: expect.stringContaining(`answer to ${p2}`) });
  });

  it('desync: a HEAD answered with content-length and the body in the same write: the next request gets its own answer', async () => {
    const { second, p2 } = await twoRequests((_r, s) => s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${answer('EVIL HEAD').length}\r\n\r\n${answer('EVIL HEAD')}`), 'HEAD');
    expect(second.text).not.toMatch(/EVIL/);
    expect(second).toMatchObject({ status: 200, text: expect.stringContaining(`answer to ${p2}`) });
  });

  it('desync: an answer that never ends holds its connection; a concurrent request of the same caller goes on another and gets its own answer', async () => {
    const up = await upstream((r, s) => (r.path.includes('slow') ? s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial') : s.write(served(r))));
    const p = startProxy(basePolicy(up.port));
    const port = await p.listen(coder('sb-1'));
    const [slow, fast] = paths('slow', 'fast') as [string, string];
    const a = rawClient(port);
    a.write(`GET http://up.test:${up.port}${slow} HTTP/1.1\r\nhost: up.test\r\n\r\n`);
    await until(() => up.conns[0]?.reqs.length === 1, 'the slow request upstream');
    await sleep(50);
    const b = client(port);
    expect(await b.send('GET', `http://up.test:${up.port}${fast}`)).toMatchObject({ status: 200, text: `answer to ${fast} #1` });
    expect(up.conns).toHaveLength(2);
  });

  it('desync: an answer sent before the request body, with the body then never finished: the upstream connection is not reused, the next request gets its own answer', async () => {
    const up = await upstream((r, s) => s.write(served(r)));
    // A server that answers on the request head.
    const hasty: Socket[] = [];
    const srv = createServer((s) => {
      hasty.push(s);
      s.on('error', () => undefined);
      s.on('data', () => s.write(answer('early')));
    });
    cleanups.push(() => {
      srv.close();
      for (const s of hasty) s.destroy();
    });
    await new Promise<void>((r) => srv.listen(up.port === 0 ? 0 : 0, '127.0.0.1', r));
    const hp = (srv.address() as AddressInfo).port;
    const p = startProxy(`version: 1\ndefault: deny\nrules:\n  - { id: h, match: { agent: coder, egress: { host: 127.0.0.1, port: ${hp} } }, effect: allow }\n`);
    const port = await p.listen(coder('sb-1'));
    const c = rawClient(port);
    const [post] = paths('unfinished') as [string];
    c.write(`POST http://127.0.0.1:${hp}${post} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc`);
    expect(await c.next()).toEqual({ status: 200, text: 'early' });
    const d = client(port);
    const r2 = await d.send('GET', `http://127.0.0.1:${hp}/second`);
    expect(r2.text).toBe('early');
    expect(hasty).toHaveLength(2);
  });
});

describe('cross-caller reuse', () => {
  it.each([
    ['no sandbox vs sandbox "null"', coder(), coder('null')],
    ['no sandbox vs empty sandbox', coder(), coder('')],
    ['agent vs connector of the same name', coder('sb'), { caller: { kind: 'connector', name: 'coder' }, sandbox: 'sb' } as EgressIdentity],
    ['names with JSON-special characters', { caller: { kind: 'agent', name: 'a","b' }, sandbox: 'c' } as EgressIdentity, { caller: { kind: 'agent', name: 'a' }, sandbox: 'b","c' } as EgressIdentity],
    ['lone surrogates', { caller: { kind: 'agent', name: '\ud800' } } as EgressIdentity, { caller: { kind: 'agent', name: '\ud801' } } as EgressIdentity],
    ['case differs', { caller: { kind: 'agent', name: 'Coder' } } as EgressIdentity, { caller: { kind: 'agent', name: 'coder' } } as EgressIdentity],
  ])('cross-caller: %s never share an upstream connection', async (_n, one, two) => {
    expect(callerKey(one)).not.toBe(callerKey(two));
    const up = await upstream();
    const p = startProxy(basePolicy(up.port));
    const a = client(await p.listen(one));
    const b = client(await p.listen(two));
    const [p1, p2, p3] = paths('x1', 'x2', 'x3') as [string, string, string];
    expect((await a.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    expect((await b.send('GET', `http://up.test:${up.port}${p2}`)).text).toBe(`answer to ${p2} #1`);
    expect((await a.send('GET', `http://up.test:${up.port}${p3}`)).text).toBe(`answer to ${p3} #2`);
    expect(up.conns.map((c) => c.reqs.map((r) => r.path))).toEqual([[p1, p3], [p2]]);
  });
});

describe('address checks on reuse', () => {
  it('rebinding: an idle connection to loopback opened under a host-named rule is not reused by a glob-rule request whose name now resolves to loopback', async () => {
    const up = await upstream();
    const p = startProxy(basePolicy(up.port, `  - id: glob\n    match: { agent: coder, egress: { host: "*.evil.example", port: ${up.port} } }\n    effect: allow\n`));
    dns['rebind.evil.example'] = ['127.0.0.1'];
    const c = client(await p.listen(coder('sb-1')));
    const [p1, p2] = paths('named', 'rebind') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    expect((await c.send('GET', `http://rebind.evil.example:${up.port}${p2}`)).status).toBe(403);
    expect(up.all()).toEqual([`GET ${p1}`]);
    expect(await recordOf(p2)).toMatchObject({ outcome: 'address-refused' });
  });

  it('audit: on reuse with two checked addresses, the record\'s address is the address the request actually went to', async () => {
    const up = await upstream(undefined, ['127.0.0.1', '127.0.0.2']);
    const p = startProxy(basePolicy(up.port));
    const c = client(await p.listen(coder('sb-1')));
    dns['up.test'] = ['127.0.0.2'];
    const [p1, p2] = paths('a1', 'a2') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    dns['up.test'] = ['127.0.0.1', '127.0.0.2'];
    expect((await c.send('GET', `http://up.test:${up.port}${p2}`)).status).toBe(200);
    const served2 = up.conns.find((x) => x.reqs.some((r) => r.path === p2));
    expect((await recordOf(p2)).address).toBe(served2?.local);
    expect(up.conns).toHaveLength(1);
  });

  it('two host names on one address: a connection opened for host A serves host B only when B\'s own decision allows it and checked that address', async () => {
    const up = await upstream();
    const p = startProxy(`version: 1
default: deny
rules:
  - { id: a, match: { agent: coder, egress: { host: a.test, port: ${up.port} } }, effect: allow }
  - { id: b, match: { agent: coder, egress: { host: b.test, port: ${up.port} } }, effect: allow }
`);
    dns['a.test'] = ['127.0.0.1'];
    dns['b.test'] = ['127.0.0.1'];
    dns['c.test'] = ['127.0.0.1'];
    const c = client(await p.listen(coder('sb-1')));
    const [pa, pb, pc] = paths('ha', 'hb', 'hc') as [string, string, string];
    expect((await c.send('GET', `http://a.test:${up.port}${pa}`)).status).toBe(200);
    expect((await c.send('GET', `http://b.test:${up.port}${pb}`)).status).toBe(200);
    expect((await c.send('GET', `http://c.test:${up.port}${pc}`)).status).toBe(403);
    expect(up.all()).toEqual([`GET ${pa}`, `GET ${pb}`]);
    // B went out with its own Host header.
    expect(up.conns.flatMap((x) => x.reqs).find((r) => r.path === pb)?.head).toMatch(/\r\nhost: b\.test:\d+/i);
  });
});

describe('retries', () => {
  it('retry: a GET resent after a closed kept-alive connection has one egress.intent and one egress record, with a checked address', async () => {
    const up = await upstream((r, s) => (r.n === 2 ? s.destroy() : s.write(served(r))));
    const p = startProxy(basePolicy(up.port));
    const c = client(await p.listen(coder('sb-1')));
    const [p1, p2] = paths('r1', 'r2') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    expect((await c.send('GET', `http://up.test:${up.port}${p2}`)).status).toBe(200);
    await recordOf(p2);
    await sleep(100);
    const mine = records().filter((r) => r.path === p2);
    expect(mine.filter((r) => r.event === 'egress.intent')).toHaveLength(1);
    expect(mine.filter((r) => r.event === 'egress')).toHaveLength(1);
    expect(mine.find((r) => r.event === 'egress')).toMatchObject({ address: '127.0.0.1', outcome: 'ok' });
  });

  it.each([
    ['GET with a chunked body', 'GET', { 'transfer-encoding': 'chunked' }, 'x'],
    ['GET with a Content-Length body', 'GET', { 'content-length': '4' }, 'body'],
    ['PUT (idempotent but not retried)', 'PUT', { 'content-length': '1' }, 'x'],
    ['DELETE without a body', 'DELETE', {}, undefined],
    ['POST without a body', 'POST', {}, undefined],
  ])('retry: a %s whose kept-alive connection is closed under it is never sent twice', async (_n, method, headers, body) => {
    const up = await upstream((r, s) => (r.n === 2 ? s.destroy() : s.write(served(r))));
    const p = startProxy(basePolicy(up.port));
    const c = client(await p.listen(coder('sb-1')));
    const [p1, p2] = paths('nr1', 'nr2') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    await c.send(method, `http://up.test:${up.port}${p2}`, body, headers).catch(() => undefined);
    await sleep(150);
    expect(up.all().filter((l) => l.endsWith(p2))).toHaveLength(1);
  });

  it('retry: a GET resent while the pool holds another idle connection to a now-unchecked address goes only to a checked address', async () => {
    const up = await upstream((r, s) => (r.n === 2 && r.path.includes('r2') ? s.destroy() : s.write(served(r))), ['127.0.0.1', '127.0.0.2']);
    const p = startProxy(basePolicy(up.port));
    const c = client(await p.listen(coder('sb-1')));
    const [p1, p2] = paths('ra1', 'r2') as [string, string];
    dns['up.test'] = ['127.0.0.1'];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    dns['up.test'] = ['127.0.0.1'];
    expect((await c.send('GET', `http://up.test:${up.port}${p2}`)).status).toBe(200);
    expect(up.conns.map((x) => x.local)).toEqual(['127.0.0.1', '127.0.0.1']);
  });
});

describe('policy, approvals and rate limits on reuse', () => {
  it('policy reload: a host now denied is refused on the next request even with an idle pooled connection to it', async () => {
    const up = await upstream();
    const p = startProxy(basePolicy(up.port));
    const c = client(await p.listen(coder('sb-1')));
    const [p1, p2] = paths('pr1', 'pr2') as [string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    p.setPolicy('version: 1\ndefault: deny\nrules: []\n');
    expect((await c.send('GET', `http://up.test:${up.port}${p2}`)).status).toBe(403);
    expect(up.all()).toEqual([`GET ${p1}`]);
  });

  it('rate limit: each request on a reused connection takes its own token', async () => {
    const up = await upstream();
    const p = startProxy(`version: 1\ndefault: deny\nrules:\n  - { id: lim, match: { agent: coder, egress: { host: up.test, port: ${up.port} } }, effect: allow, limit: 2/minute }\n`, { rateLimiter: new RateLimiter() });
    const c = client(await p.listen(coder('sb-1')));
    const ps = paths('l1', 'l2', 'l3');
    const got = [];
    for (const x of ps) got.push((await c.send('GET', `http://up.test:${up.port}${x}`)).status);
    expect(got).toEqual([200, 200, 429]);
    expect(up.all()).toHaveLength(2);
    expect(up.conns).toHaveLength(1);
  });

  it('ask: each request on a reused connection is asked on its own; a denial sends nothing upstream', async () => {
    const up = await upstream();
    const asked: string[] = [];
    let approve = true;
    const approvals: EgressApprovals = {
      requestEgress: async (ask) => {
        asked.push(ask.path ?? '');
        return approve ? { approved: true, reason: 'ok', by: 'test' } : { approved: false, reason: 'no', by: 'test' };
      },
    };
    const p = startProxy(`version: 1\ndefault: deny\nrules:\n  - { id: ask, match: { agent: coder, egress: { host: up.test, port: ${up.port} } }, effect: ask }\n`, { approvals });
    const c = client(await p.listen(coder('sb-1')));
    const [p1, p2, p3] = paths('k1', 'k2', 'k3') as [string, string, string];
    expect((await c.send('GET', `http://up.test:${up.port}${p1}`)).status).toBe(200);
    expect((await c.send('GET', `http://up.test:${up.port}${p2}`)).status).toBe(200);
    approve = false;
    expect((await c.send('GET', `http://up.test:${up.port}${p3}`)).status).toBe(403);
    expect(asked).toEqual([p1, p2, p3]);
    expect(up.all()).toEqual([`GET ${p1}`, `GET ${p2}`]);
    expect(up.conns).toHaveLength(1);
  });
});

describe('resources', () => {
  it('exhaustion: many sandboxes of one agent, in waves, cannot together hold more idle upstream connections than the agent\'s connection limit', async () => {
    const up = await upstream();
    const p = startProxy(basePolicy(up.port), { limits: { upstreamIdleMs: 10_000, maxConnectionsPerCaller: 32 } });
    const wave = async (from: number, to: number): Promise<void> => {
      const ports = await Promise.all(Array.from({ length: to - from }, (_, i) => p.listen(coder(`sb-${from + i}`))));
      await Promise.all(
        ports.flatMap((port, i) =>
          Array.from({ length: 4 }, (_, j) => {
            const agent = new Agent({ keepAlive: false });
            cleanups.push(() => agent.destroy());
            return new Promise<void>((resolve) => {
              httpRequest({ host: '127.0.0.1', port, path: `http://up.test:${up.port}/ex-${from + i}-${j}`, agent }, (res) => {
                res.resume();
                res.on('end', resolve);
              }).end();
            });
          }),
        ),
      );
    };
    // 8 sandboxes x 4 concurrent requests = 32, the agent's limit, per wave; 5 waves.
    for (let w = 0; w < 5; w++) await wave(w * 8, w * 8 + 8);
    await sleep(50);
    const open = up.conns.filter((c) => !c.closed).length;
    expect(open).toBeLessThanOrEqual(32);
  });

  it('exhaustion: an answer that ends before an endless request body frees the caller\'s slot but the upstream connection stays open (slot bypass)', async () => {
    const srvSockets: Socket[] = [];
    const srv = createServer((s) => {
      srvSockets.push(s);
      s.on('error', () => undefined);
      s.once('data', () => s.write(answer('413 early')));
    });
    cleanups.push(() => {
      srv.close();
      for (const s of srvSockets) s.destroy();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const hp = (srv.address() as AddressInfo).port;
    const p = startProxy(`version: 1\ndefault: deny\nrules:\n  - { id: h, match: { agent: coder, egress: { host: 127.0.0.1, port: ${hp} } }, effect: allow }\n`, { limits: { maxConnectionsPerCaller: 3 } });
    const port = await p.listen(coder('sb-1'));
    const clients = Array.from({ length: 6 }, () => rawClient(port));
    const got: number[] = [];
    for (const c of clients) {
      c.write(`POST http://127.0.0.1:${hp}/big HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\nabc`);
      got.push((await c.next()).status);
    }
    await sleep(50);
    const open = srvSockets.filter((s) => !s.destroyed && !s.readableEnded).length;
    // Safe: no more upstream connections held open for the caller than its limit.
    expect(open).toBeLessThanOrEqual(3);
  });

  it('listeners: 40 reused exchanges of mixed kinds (HEAD, POST, 204, chunked) leave no MaxListenersExceededWarning and a bounded listener count', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    cleanups.push(() => process.off('warning', onWarning));
    const up = await upstream((r, s) => {
      if (r.path.includes('204')) s.write('HTTP/1.1 204 No Content\r\n\r\n');
      else if (r.path.includes('chunk')) s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
      else if (r.method === 'HEAD') s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n');
      else s.write(served(r));
    });
    const p = startProxy(basePolicy(up.port));
    const c = client(await p.listen(coder('sb-1')));
    const kinds = [
      ['HEAD', '/h', undefined],
      ['POST', '/p', 'body'],
      ['GET', '/204', undefined],
      ['GET', '/chunk', undefined],
    ] as const;
    for (let i = 0; i < 40; i++) {
      const [m, path, body] = kinds[i % kinds.length] as (typeof kinds)[number];
      expect([200, 204]).toContain((await c.send(m, `http://up.test:${up.port}${path}?i=${i}`, body)).status);
    }
    expect(up.conns).toHaveLength(1);
    await sleep(20);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('close(): an exchange still in flight when the proxy closes leaves no upstream socket open', async () => {
    let release: (() => void) | undefined;
    const up = await upstream((r, s) => {
      if (r.path.includes('hold')) release = () => s.write(served(r));
      else s.write(served(r));
    });
    const p = startProxy(basePolicy(up.port));
    const c = rawClient(await p.listen(coder('sb-1')));
    const [held] = paths('hold') as [string];
    c.write(`GET http://up.test:${up.port}${held} HTTP/1.1\r\nhost: up.test\r\n\r\n`);
    await until(() => release !== undefined, 'the held request upstream');
    p.proxy.close();
    release?.();
    await until(() => up.conns.every((x) => x.closed), 'every upstream connection closed', 2_000);
  });

  it('close(): a request handed over via request() (another server\'s connection) whose answer ends after close() is not pooled', async () => {
    let release: (() => void) | undefined;
    const up = await upstream((r, s) => {
      if (r.path.includes('late')) release = () => s.write(served(r));
      else s.write(served(r));
    });
    const p = startProxy(basePolicy(up.port));
    const { createServer: createHttpServer } = await import('node:http');
    const srv = createHttpServer((req, res) => p.proxy.request(req, res, coder('sb-1')));
    cleanups.push(() => srv.close());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const c = client((srv.address() as AddressInfo).port);
    const [late] = paths('late') as [string];
    const pending = c.send('GET', `http://up.test:${up.port}${late}`);
    await until(() => release !== undefined, 'the request upstream');
    p.proxy.close();
    release?.();
    await pending.catch(() => undefined);
    await until(() => up.conns.every((x) => x.closed), 'every upstream connection closed after close()', 2_000);
  });
});
