/**
 * The egress proxy over real sockets, with the real audit writer: a loopback
 * "registry simulator" stands for an allowed registry, an injected resolver
 * for DNS (so a name can be made to point anywhere). Each test is named after
 * what it stops.
 */
import { createServer as createHttpServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/writer.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { EgressProxy, type EgressIdentity, type Resolver } from '../../src/egress/proxy.js';
import { silentLogger } from '../../src/log.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';
import { RateLimiter } from '../../src/policy/rate-limit.js';
import { openLog, tempState } from '../audit/helpers.js';
import { until } from '../helpers/gateway.js';

const state = tempState();
let log: AuditLog;
let registry: HttpServer;
let regPort: number;
const listeners: NetServer[] = [];
const proxies: EgressProxy[] = [];
const connects: string[] = [];
/** Endless downloads (`/stream/<name>`) of the registry simulator: open until their request closes. */
const streams = new Map<string, 'open' | 'closed'>();

/** Names the injected resolver answers: anything else does not exist. */
const DNS: Record<string, string[]> = {
  'registry.test': ['127.0.0.1'],
  'rebind.test': ['127.0.0.1'],
  'mapped.test': ['::ffff:127.0.0.1'],
  'mixed.test': ['93.184.215.14', '10.0.0.7'],
  'metadata.test': ['169.254.169.254'],
};
const resolver: Resolver = async (host) => {
  const a = DNS[host];
  if (a === undefined) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  return a;
};

function policyText(port: number): string {
  return `version: 1
default: allow
rules:
  - id: registry
    match: { agent: coder, egress: { host: registry.test, port: ${port} } }
    effect: allow
  - id: loopback-by-address
    match: { agent: coder, egress: { host: 127.0.0.1, port: ${port} } }
    effect: allow
  - id: any-test-name
    match: { agent: coder, egress: { host: "*.test", port: [80, 443, ${port}] } }
    effect: allow
  - id: anywhere
    match: { agent: roamer, egress: { host: "*", port: [80, 443, ${port}] } }
    effect: allow
  - id: evil
    match: { egress: { host: evil.test, port: 443 } }
    effect: deny
  - id: http-get
    match: { agent: web, egress: { host: registry.test, port: ${port}, method: GET, path: "/-/**" } }
    effect: allow
  - id: github-connector
    match: { connector: github, egress: { host: registry.test, port: ${port} } }
    effect: allow
  - id: limited
    match: { agent: limited, egress: { host: registry.test, port: ${port} } }
    effect: allow
    limit: 1/hour
`;
}

async function startProxy(who: EgressIdentity, limits: ConstructorParameters<typeof EgressProxy>[0]['limits'] = {}): Promise<number> {
  const policy = loadPolicyFiles(['/p/egress.yaml'], memorySource({ '/p/egress.yaml': policyText(regPort) }));
  const proxy = new EgressProxy({ policy: () => policy, audit: log, logger: silentLogger, resolve: resolver, rateLimiter: new RateLimiter(), limits: { connectTimeoutMs: 2_000, ...limits } });
  proxies.push(proxy);
  const server = createNetServer((s) => proxy.accept(s, who));
  listeners.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const agent = (name: string): EgressIdentity => ({ caller: { kind: 'agent', name }, sandbox: `sb-${name}` });

beforeAll(async () => {
  log = await openLog(state.dir);
  registry = createHttpServer((req, res) => {
    connects.push(`${req.method} ${req.url}`);
    if (req.url?.startsWith('/stream/') === true) {
      // An endless download: a chunk every 20 ms until its request is closed.
      const name = req.url.slice('/stream/'.length);
      streams.set(name, 'open');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const tick = setInterval(() => res.write(Buffer.alloc(4096, 'x')), 20);
      res.once('close', () => {
        clearInterval(tick);
        streams.set(name, 'closed');
      });
      return;
    }
    let body = '';
    req.on('data', (b: Buffer) => (body += b.toString()));
    req.on('end', () => res.end(`pong ${req.method} ${req.url} host=${req.headers.host} proxy-auth=${req.headers['proxy-authorization'] ?? '-'} body=${body}`));
  });
  await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
  regPort = (registry.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const p of proxies) p.close();
  for (const l of listeners) l.close();
  registry.closeAllConnections();
  registry.close();
  await log.close();
  rmSync(state.state, { recursive: true, force: true });
});

interface Exchange {
  /** The proxy's answer head, e.g. "HTTP/1.1 200 Connection Established". */
  status: number;
  /** Everything after the proxy's answer head (the tunnelled bytes, or the refusal's text). */
  rest: string;
}

/** Sends `head` raw to the proxy; after a 200 to a CONNECT sends `then` through the tunnel; reads to the end. */
function raw(port: number, head: string, then?: string): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    let sent = false;
    s.setTimeout(10_000, () => s.destroy(new Error('client timeout')));
    s.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (!sent && then !== undefined && end !== -1 && buf.startsWith('HTTP/1.1 200')) {
        sent = true;
        s.write(then);
      }
    });
    s.on('error', reject);
    s.on('close', () => {
      const end = buf.indexOf('\r\n\r\n');
      resolve({ status: Number(buf.slice(9, 12)), rest: end === -1 ? '' : buf.slice(end + 4) });
    });
    s.write(head);
  });
}

const GET = (path: string, host = 'registry.test'): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

function records(): Array<Record<string, unknown>> {
  return readFileSync(join(state.dir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The `egress` record (one per connection) for host:port, once written. */
function outcomeFor(host: string, port: number, agentName: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return until(
    () => records().find((r) => r.event === 'egress' && r.host === host && r.port === port && r.agent === agentName && Object.entries(extra).every(([k, v]) => r[k] === v)),
    `egress record for ${agentName} → ${host}:${port}`,
  );
}

describe('CONNECT tunnels', () => {
  it('a rule naming the host reaches the loopback registry simulator, with bytes counted both ways', async () => {
    const port = await startProxy(agent('coder'));
    const request = GET('/-/ping');
    const x = await raw(port, `CONNECT registry.test:${regPort} HTTP/1.1\r\nHost: registry.test:${regPort}\r\n\r\n`, request);
    expect(x.status).toBe(200);
    expect(x.rest).toMatch(/^HTTP\/1.1 200 OK[\s\S]*pong GET \/-\/ping host=registry.test/);
    const r = await outcomeFor('registry.test', regPort, 'coder');
    expect(r).toMatchObject({ decision: 'allow', rule: 'registry', address: '127.0.0.1', outcome: 'closed', sandbox: 'sb-coder', bytesUp: request.length, bytesDown: x.rest.length });
    expect(typeof r.durationMs).toBe('number');
    const intent = records().find((i) => i.event === 'egress.intent' && i.conn === r.conn);
    expect(intent).toMatchObject({ decision: 'allow', rule: 'registry', addresses: ['127.0.0.1'] });
    expect(Number(intent?.seq)).toBeLessThan(Number(r.seq));
  });

  it('bytes sent right behind the CONNECT line (before its answer) are forwarded only after the decision, and counted', async () => {
    const port = await startProxy(agent('coder'));
    const request = GET('/-/pipelined');
    const x = await raw(port, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n${request}`);
    expect(x.status).toBe(200);
    expect(x.rest).toMatch(/pong GET \/-\/pipelined/);
    expect(await outcomeFor('registry.test', regPort, 'coder', { bytesUp: request.length })).toMatchObject({ outcome: 'closed', bytesDown: x.rest.length });
  });

  it('bytes pipelined behind a refused CONNECT never reach anything', async () => {
    const port = await startProxy(agent('coder'));
    const before = connects.length;
    const x = await raw(port, `CONNECT rebind.test:${regPort} HTTP/1.1\r\n\r\n${GET('/-/smuggled')}`);
    expect(x.status).toBe(403);
    expect(x.rest).not.toMatch(/pong/);
    expect(connects.length).toBe(before);
  });

  it('a connector is matched as a connector: its record names it, and an agent of the same name gets nothing', async () => {
    const port = await startProxy({ caller: { kind: 'connector', name: 'github' } });
    expect((await raw(port, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n`, GET('/-/conn'))).status).toBe(200);
    const rec = await until(() => records().find((r) => r.event === 'egress' && r.connector === 'github'), 'the connector record');
    expect(rec).toMatchObject({ rule: 'github-connector', outcome: 'closed' });
    expect(rec.agent).toBeUndefined();
    const asAgent = await startProxy(agent('github'));
    expect((await raw(asAgent, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n`)).status).toBe(403);
  });

  it('a rule naming 127.0.0.1 reaches loopback by address', async () => {
    const port = await startProxy(agent('coder'));
    const x = await raw(port, `CONNECT 127.0.0.1:${regPort} HTTP/1.1\r\n\r\n`, GET('/-/v'));
    expect(x.status).toBe(200);
    expect(x.rest).toMatch(/pong GET \/-\/v/);
  });

  it('DNS rebinding: a name that resolves to loopback is refused under a glob rule, before connecting', async () => {
    const port = await startProxy(agent('coder'));
    const before = connects.length;
    for (const host of ['rebind.test', 'mapped.test']) {
      const x = await raw(port, `CONNECT ${host}:${regPort} HTTP/1.1\r\n\r\n`, GET('/-/leak'));
      expect(x.status, host).toBe(403);
      expect(x.rest).toMatch(/loopback address; only a rule naming this host exactly/);
      expect(await outcomeFor(host, regPort, 'coder')).toMatchObject({ decision: 'allow', rule: 'any-test-name', outcome: 'address-refused' });
    }
    expect(connects.length).toBe(before);
  });

  it('a name with one private address among public ones is refused (rebinding by mixed answers)', async () => {
    const port = await startProxy(agent('coder'));
    const x = await raw(port, 'CONNECT mixed.test:443 HTTP/1.1\r\n\r\n');
    expect(x.status).toBe(403);
    expect(x.rest).toMatch(/10\.0\.0\.7, a private/);
  });

  it('a glob rule does not reach loopback by address: 127.0.0.1 is refused to a "*" rule', async () => {
    const port = await startProxy(agent('roamer'));
    const x = await raw(port, `CONNECT 127.0.0.1:${regPort} HTTP/1.1\r\n\r\n`, GET('/-/x'));
    expect(x.status).toBe(403);
    expect(x.rest).toMatch(/loopback/);
  });

  it.each([
    ['169.254.169.254:80', '169.254.169.254', /cloud metadata/],
    ['[::ffff:169.254.169.254]:80', '169.254.169.254', /cloud metadata/],
    ['[fd00:ec2::254]:80', 'fd00:ec2::254', /cloud metadata/],
    ['metadata.test:80', 'metadata.test', /cloud metadata/],
    ['10.0.0.1:443', '10.0.0.1', /private/],
    ['192.168.1.1:443', '192.168.1.1', /private/],
    ['[fc00::1]:443', 'fc00::1', /unique local/],
    ['[::1]:443', '::1', /loopback/],
    ['100.64.0.1:443', '100.64.0.1', /carrier-grade/],
    ['0.0.0.0:443', '0.0.0.0', /unspecified/],
  ])('cloud metadata and private ranges: %s is refused even to a "*" rule', async (authority, host, why) => {
    const port = await startProxy(agent('roamer'));
    const x = await raw(port, `CONNECT ${authority} HTTP/1.1\r\n\r\n`);
    expect(x.status).toBe(403);
    expect(x.rest).toMatch(why);
    expect(await outcomeFor(host, Number(authority.split(':').pop()), 'roamer')).toMatchObject({ outcome: 'address-refused', rule: 'anywhere' });
  });

  it('a denied host gets 403 and an audit record naming the rule', async () => {
    const port = await startProxy(agent('coder'));
    const x = await raw(port, 'CONNECT evil.test:443 HTTP/1.1\r\n\r\n');
    expect(x.status).toBe(403);
    expect(x.rest).toMatch(/Denied by policy rule "evil"/);
    expect(await outcomeFor('evil.test', 443, 'coder')).toMatchObject({ decision: 'deny', rule: 'evil', outcome: 'denied', sandbox: 'sb-coder' });
  });

  it('default deny: an agent without egress rules is refused, though the tool default is allow', async () => {
    const port = await startProxy(agent('stranger'));
    const x = await raw(port, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n`);
    expect(x.status).toBe(403);
    expect(await outcomeFor('registry.test', regPort, 'stranger')).toMatchObject({ decision: 'deny', rule: null, outcome: 'denied' });
  });

  it('an unknown name is refused with 502 and a record', async () => {
    const port = await startProxy(agent('coder'));
    const x = await raw(port, 'CONNECT nowhere.test:443 HTTP/1.1\r\n\r\n');
    expect(x.status).toBe(502);
    expect(await outcomeFor('nowhere.test', 443, 'coder')).toMatchObject({ outcome: 'unresolved' });
  });

  it('a rate limit on the rule refuses the second connection with 429', async () => {
    const port = await startProxy(agent('limited'));
    expect((await raw(port, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n`, GET('/-/1'))).status).toBe(200);
    const x = await raw(port, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n`);
    expect(x.status).toBe(429);
    expect(await outcomeFor('registry.test', regPort, 'limited', { outcome: 'rate-limited' })).toMatchObject({ rule: 'limited' });
  });

  it('resource exhaustion: more open tunnels than allowed per caller get 429', async () => {
    const port = await startProxy(agent('coder'), { maxConnectionsPerCaller: 2 });
    const open = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    const established = open.map(
      (s) =>
        new Promise<void>((r) => {
          s.once('data', () => r());
          s.write(`CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n`);
        }),
    );
    await Promise.all(established);
    expect((await raw(port, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n`)).status).toBe(429);
    for (const s of open) s.destroy();
    await until(async () => (await raw(port, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n`, GET('/-/again'))).status === 200, 'a slot to free up');
  });

  it('a tunnel idle past the timeout is closed and recorded as idle', async () => {
    const idle = createNetServer(() => undefined);
    await new Promise<void>((r) => idle.listen(0, '127.0.0.1', r));
    const idlePort = (idle.address() as AddressInfo).port;
    try {
      const policy = loadPolicyFiles(['/p/i.yaml'], memorySource({ '/p/i.yaml': `version: 1\nrules:\n  - { id: idle, match: { egress: { host: 127.0.0.1, port: ${idlePort} } }, effect: allow }\n` }));
      const proxy = new EgressProxy({ policy: () => policy, audit: log, logger: silentLogger, resolve: resolver, limits: { idleTimeoutMs: 300 } });
      proxies.push(proxy);
      const server = createNetServer((s) => proxy.accept(s, agent('sleepy')));
      listeners.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const x = await raw((server.address() as AddressInfo).port, `CONNECT 127.0.0.1:${idlePort} HTTP/1.1\r\n\r\n`);
      expect(x.status).toBe(200);
      expect(await outcomeFor('127.0.0.1', idlePort, 'sleepy')).toMatchObject({ outcome: 'idle' });
    } finally {
      idle.close();
    }
  });
});

describe('slow clients', () => {
  it('slowloris: headers trickled past the header timeout get 408 and the socket is closed', async () => {
    const port = await startProxy(agent('coder'), { headersTimeoutMs: 300 });
    const s = connect(port, '127.0.0.1');
    let text = '';
    s.on('data', (b: Buffer) => (text += b.toString()));
    s.write('GET http://registry.test/ HTTP/1.1\r\nX-A: 1\r\n');
    const timer = setInterval(() => s.writable && s.write('X-B: 1\r\n'), 100);
    try {
      await until(() => s.destroyed || s.readableEnded, 'the proxy to close a slow client', 10_000);
    } finally {
      clearInterval(timer);
      s.destroy();
    }
    expect(text).toMatch(/^HTTP\/1.1 408/);
  });
});

describe('plain HTTP', () => {
  function viaProxy(port: number, method: string, url: string, body?: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method, path: url, headers: { 'proxy-authorization': 'Basic c2VjcmV0', connection: 'close' } }, (res) => {
        let text = '';
        res.on('data', (b: Buffer) => (text += b.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('GET allowed by method and path is forwarded to the checked address, without the proxy credentials', async () => {
    const port = await startProxy(agent('web'));
    const r = await viaProxy(port, 'GET', `http://registry.test:${regPort}/-/package/x?token=s3cr3t`);
    expect(r).toEqual({ status: 200, text: `pong GET /-/package/x?token=s3cr3t host=registry.test:${regPort} proxy-auth=- body=` });
    const rec = await outcomeFor('registry.test', regPort, 'web', { method: 'GET' });
    expect(rec).toMatchObject({ rule: 'http-get', path: '/-/package/x', outcome: 'ok', status: 200, address: '127.0.0.1', bytesUp: 0, bytesDown: r.text.length });
    expect(JSON.stringify(records())).not.toContain('s3cr3t');
  });

  it('POST to the same path is refused: the rule allows GET only', async () => {
    const port = await startProxy(agent('web'));
    const before = connects.length;
    const r = await viaProxy(port, 'POST', `http://registry.test:${regPort}/-/package/x`, 'payload');
    expect(r.status).toBe(403);
    expect(connects.length).toBe(before);
    expect(await outcomeFor('registry.test', regPort, 'web', { method: 'POST' })).toMatchObject({ decision: 'deny', outcome: 'denied' });
  });

  it('a path walking out of the allowed prefix is refused', async () => {
    const port = await startProxy(agent('web'));
    expect((await viaProxy(port, 'GET', `http://registry.test:${regPort}/-/../admin`)).status).toBe(403);
    expect((await viaProxy(port, 'GET', `http://registry.test:${regPort}/admin`)).status).toBe(403);
  });

  it('an agent pipelines two endless downloads on one connection and hangs up: the queued one\'s upstream request is closed then, not at the idle timeout, and recorded client-gone', async () => {
    const port = await startProxy(agent('coder'), { idleTimeoutMs: 120_000 });
    const get = (name: string) => `GET http://registry.test:${regPort}/stream/${name} HTTP/1.1\r\nHost: registry.test:${regPort}\r\n\r\n`;
    const id = `${process.pid}-${Date.now()}`;
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    s.write(get(`first-${id}`) + get(`queued-${id}`));
    // Both forwarded: the second one's answer waits behind the first's, which never ends.
    await until(() => streams.get(`first-${id}`) === 'open' && streams.get(`queued-${id}`) === 'open', 'both downloads to start', 5_000);
    s.destroy();
    await until(() => streams.get(`first-${id}`) === 'closed', 'the first download to be closed', 5_000);
    await until(() => streams.get(`queued-${id}`) === 'closed', 'the queued download to be closed with the connection', 5_000);
    const queued = await until(() => records().find((r) => r.event === 'egress' && r.path === `/stream/queued-${id}`), 'the queued download\'s record', 5_000);
    expect(queued).toMatchObject({ agent: 'coder', outcome: 'client-gone' });
  });

  it('a request body is forwarded and counted', async () => {
    const port = await startProxy(agent('roamer'));
    const r = await viaProxy(port, 'PUT', `http://registry.test:${regPort}/x`, 'twelve bytes');
    expect(r.status).toBe(403); // "*" rule: registry.test resolves to loopback and is not named
    const p2 = await startProxy(agent('coder'));
    const ok = await viaProxy(p2, 'PUT', `http://registry.test:${regPort}/upload`, 'twelve bytes');
    expect(ok.text).toMatch(/body=twelve bytes$/);
    expect(await outcomeFor('registry.test', regPort, 'coder', { method: 'PUT' })).toMatchObject({ bytesUp: 12, outcome: 'ok' });
  });
});

describe('malformed requests never crash the proxy and get a clear 4xx', () => {
  const cases: Array<[string, string, number]> = [
    ['garbage request line', 'HELLO THERE\r\n\r\n', 400],
    ['CONNECT without a port', 'CONNECT registry.test HTTP/1.1\r\n\r\n', 400],
    ['CONNECT to port 0', 'CONNECT registry.test:0 HTTP/1.1\r\n\r\n', 400],
    ['CONNECT to port 65536', 'CONNECT registry.test:65536 HTTP/1.1\r\n\r\n', 400],
    ['CONNECT with userinfo', 'CONNECT user:pw@registry.test:443 HTTP/1.1\r\n\r\n', 400],
    ['CONNECT to a disguised IPv4', 'CONNECT 2130706433:443 HTTP/1.1\r\n\r\n', 400],
    ['CONNECT to an unclosed IPv6 literal', 'CONNECT [::1:443 HTTP/1.1\r\n\r\n', 400],
    ['an origin-form request (not a proxy request)', 'GET /etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['an https:// absolute URL', 'GET https://registry.test/ HTTP/1.1\r\n\r\n', 400],
    ['an absurdly long authority', `CONNECT ${'a'.repeat(5_000)}.test:443 HTTP/1.1\r\n\r\n`, 400],
    ['headers past the size limit', `GET http://registry.test/ HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['a websocket upgrade', 'GET http://registry.test/ HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 501],
  ];
  it('the table is not empty', () => expect(cases.length).toBeGreaterThan(8));
  it.each(cases)('%s', async (_name, head, status) => {
    const port = await startProxy(agent('coder'));
    const x = await raw(port, head);
    expect(x.status).toBe(status);
    // Still serving:
    expect((await raw(port, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n`, GET('/-/after'))).status).toBe(200);
  });
});

describe('audit first', () => {
  it('an unwritable audit log refuses the connection (503) before anything is connected', async () => {
    const other = tempState();
    const closed = await openLog(other.dir);
    await closed.close();
    try {
      const policy = loadPolicyFiles(['/p/a.yaml'], memorySource({ '/p/a.yaml': `version: 1\nrules:\n  - { id: r, match: { egress: { host: registry.test, port: ${regPort} } }, effect: allow }\n` }));
      const proxy = new EgressProxy({ policy: () => policy, audit: closed, logger: silentLogger, resolve: resolver });
      proxies.push(proxy);
      const server = createNetServer((sock) => proxy.accept(sock, agent('unaudited')));
      listeners.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const before = connects.length;
      const x = await raw((server.address() as AddressInfo).port, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n${GET('/-/unaudited')}`);
      expect(x.status).toBe(503);
      expect(connects.length).toBe(before);
    } finally {
      rmSync(other.state, { recursive: true, force: true });
    }
  });
});

describe('hostile upstreams', () => {
  it.each([
    ['a garbage status line', 'HELLO\r\n\r\n'],
    ['status 000', 'HTTP/1.1 000 Zero\r\ncontent-length: 0\r\n\r\n'],
    ['a header with a NUL', 'HTTP/1.1 200 OK\r\nx: a\u0000b\r\ncontent-length: 0\r\n\r\n'],
  ])('%s in an answer costs that request a 502, not the gateway', async (_name, answer) => {
    const hostile = createNetServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.end(answer));
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
    const hostilePort = (hostile.address() as AddressInfo).port;
    try {
      const policy = loadPolicyFiles(['/p/h.yaml'], memorySource({ '/p/h.yaml': `version: 1\nrules:\n  - { id: h, match: { egress: { host: 127.0.0.1, port: [${hostilePort}, ${regPort}] } }, effect: allow }\n` }));
      const proxy = new EgressProxy({ policy: () => policy, audit: log, logger: silentLogger, resolve: resolver });
      proxies.push(proxy);
      const server = createNetServer((s) => proxy.accept(s, agent('hostile')));
      listeners.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      const x = await raw(port, `GET http://127.0.0.1:${hostilePort}/ HTTP/1.1\r\nConnection: close\r\n\r\n`);
      expect(x.status).toBe(502);
      expect(await outcomeFor('127.0.0.1', hostilePort, 'hostile')).toMatchObject({ outcome: expect.stringMatching(/^error/) });
      expect((await raw(port, `GET http://127.0.0.1:${regPort}/-/alive HTTP/1.1\r\nConnection: close\r\n\r\n`)).status).toBe(200);
    } finally {
      hostile.close();
    }
  });
});

describe('random bytes', () => {
  it('random bytes on the proxy port never crash it and never reach anything', async () => {
    const port = await startProxy(agent('coder'));
    const before = connects.length;
    const inputs = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 2_000 }), fc.string({ maxLength: 300 }).map((t) => `CONNECT ${t}\r\n\r\n`)), 40);
    await Promise.all(
      inputs.map(
        (input) =>
          new Promise<void>((resolve) => {
            const s = connect(port, '127.0.0.1');
            s.on('error', () => undefined);
            s.on('data', () => undefined);
            s.on('close', () => resolve());
            s.setTimeout(3_000, () => s.destroy());
            s.end(typeof input === 'string' ? input : Buffer.from(input));
          }),
      ),
    );
    expect(connects.length).toBe(before);
    expect((await raw(port, `CONNECT registry.test:${regPort} HTTP/1.1\r\n\r\n`, GET('/-/alive'))).status).toBe(200);
  });
});

describe('the audit log', () => {
  it('stays a valid hash chain after all of the above', async () => {
    const report = await verifyAudit(state.dir);
    expect(report.ok).toBe(true);
  });
});
