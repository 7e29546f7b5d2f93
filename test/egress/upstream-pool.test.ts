/**
 * The pool of idle upstream connections on its own, over loopback socket
 * pairs: whose connection is handed to whom, what closes an idle one, and
 * the bounds. Named after what each rule stops.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callerKey, idleTimeFor, UpstreamPool } from '../../src/egress/upstream-pool.js';
import { until } from '../helpers/gateway.js';

let server: Server;
let port: number;
/** The upstream ends of the pairs, in the order they connected. */
const accepted: Socket[] = [];
const opened: Socket[] = [];

beforeAll(async () => {
  server = createServer((s) => {
    s.on('error', () => undefined);
    accepted.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => {
  for (const s of [...opened, ...accepted]) s.destroy();
  server.close();
});

/** A connected pair: `proxy` is the proxy's end (what the pool holds), `upstream` the server's. */
async function pair(): Promise<{ proxy: Socket; upstream: Socket }> {
  const before = accepted.length;
  const proxy = connect(port, '127.0.0.1');
  opened.push(proxy);
  proxy.on('error', () => undefined);
  await new Promise<void>((r) => proxy.once('connect', () => r()));
  const upstream = await until(() => accepted[before], 'the upstream end');
  return { proxy, upstream };
}

const limits = { idleMs: 60_000, perTarget: 4, perCaller: 16, perPrincipal: 64, total: 1_000 };
const A = callerKey({ caller: { kind: 'agent', name: 'coder' }, sandbox: 'sb-1' });
const B = callerKey({ caller: { kind: 'agent', name: 'coder' }, sandbox: 'sb-2' });

describe('idleTimeFor', () => {
  const cases: Array<[string | undefined, number, number]> = [
    [undefined, 4_000, 4_000],
    ['', 4_000, 4_000],
    ['timeout=5', 4_000, 4_000],
    ['timeout=5', 60_000, 4_000],
    ['timeout=2, max=100', 60_000, 1_000],
    ['max=100, timeout=3', 60_000, 2_000],
    ['Timeout = 3', 60_000, 2_000],
    ['timeout=1', 60_000, 0],
    ['timeout=0', 60_000, -1_000],
    ['max=5', 4_000, 4_000],
    ['mytimeout=1', 4_000, 4_000],
  ];
  it('the table is not empty', () => expect(cases.length).toBeGreaterThan(5));
  it.each(cases)('Keep-Alive %j with a limit of %i ms: %i ms (a second short of the upstream\'s own)', (header, limit, ms) => {
    expect(idleTimeFor(header, limit)).toBe(ms);
  });
});

describe('callerKey', () => {
  it('two sandboxes of one agent, an agent and a connector of one name, and a name with a separator in it never share a key', () => {
    const keys = [
      A,
      B,
      callerKey({ caller: { kind: 'agent', name: 'coder' } }),
      callerKey({ caller: { kind: 'connector', name: 'coder' } }),
      callerKey({ caller: { kind: 'agent', name: 'coder","sb-1' } }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    // The rules a connector carries are not part of who it is.
    expect(callerKey({ caller: { kind: 'connector', name: 'gh' }, rules: [] })).toBe(callerKey({ caller: { kind: 'connector', name: 'gh' } }));
  });
});

describe('UpstreamPool', () => {
  it('a connection is handed back only to its caller, for a request checked for its address and port', async () => {
    const pool = new UpstreamPool(limits);
    const { proxy } = await pair();
    pool.put(A, { socket: proxy, address: '127.0.0.1' }, 8080, undefined);
    expect(pool.take(B, ['127.0.0.1'], 8080)).toBeUndefined();
    expect(pool.take(A, ['127.0.0.2'], 8080)).toBeUndefined();
    expect(pool.take(A, ['127.0.0.1'], 8081)).toBeUndefined();
    expect(pool.take(A, ['10.0.0.1', '127.0.0.1'], 8080)).toEqual({ socket: proxy, address: '127.0.0.1' });
    // Lent out: not handed to a second request.
    expect(pool.take(A, ['127.0.0.1'], 8080)).toBeUndefined();
    expect(proxy.destroyed).toBe(false);
    pool.close();
  });

  it.each([
    ['a byte (an answer nobody asked for)', (s: Socket) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n')],
    ['an end', (s: Socket) => s.end()],
    ['a reset', (s: Socket) => s.resetAndDestroy()],
  ])('%s on an idle connection closes it, and it is never handed out', async (_what, act) => {
    const pool = new UpstreamPool(limits);
    const { proxy, upstream } = await pair();
    pool.put(A, { socket: proxy, address: '127.0.0.1' }, 8080, undefined);
    act(upstream);
    await until(() => proxy.destroyed, 'the idle connection to be closed', 2_000);
    expect(pool.size).toBe(0);
    expect(pool.take(A, ['127.0.0.1'], 8080)).toBeUndefined();
  });

  it('an idle connection is closed after the idle time, and the Keep-Alive hint of 1 s means it is not kept at all', async () => {
    const pool = new UpstreamPool({ ...limits, idleMs: 100 });
    const idle = await pair();
    pool.put(A, { socket: idle.proxy, address: '127.0.0.1' }, 8080, undefined);
    expect(pool.size).toBe(1);
    await until(() => idle.proxy.destroyed, 'the idle time to pass', 2_000);
    expect(pool.size).toBe(0);
    const hinted = await pair();
    pool.put(A, { socket: hinted.proxy, address: '127.0.0.1' }, 8080, 'timeout=1');
    expect(hinted.proxy.destroyed).toBe(true);
    expect(pool.size).toBe(0);
  });

  it('an idle connection does not keep the process alive (neither its socket nor its timer); taken back, its socket does again', async () => {
    const pool = new UpstreamPool(limits);
    const { proxy } = await pair();
    const alive = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length;
    const before = alive();
    pool.put(A, { socket: proxy, address: '127.0.0.1' }, 8080, undefined);
    expect(alive()).toBe(before - 1);
    expect(pool.take(A, ['127.0.0.1'], 8080)?.socket).toBe(proxy);
    expect(alive()).toBe(before);
    proxy.destroy();
  });

  it('one caller holds at most 4 idle connections per address and port and 16 in all: the one past the bound is closed', async () => {
    const pool = new UpstreamPool(limits);
    const five = await Promise.all([1, 2, 3, 4, 5].map(() => pair()));
    for (const { proxy } of five) pool.put(A, { socket: proxy, address: '127.0.0.1' }, 8080, undefined);
    expect(five.map((p) => p.proxy.destroyed)).toEqual([false, false, false, false, true]);
    const more = await Promise.all(Array.from({ length: 13 }, () => pair()));
    more.forEach(({ proxy }, i) => pool.put(A, { socket: proxy, address: '127.0.0.1' }, 9000 + Math.floor(i / 4), undefined));
    expect(pool.size).toBe(16);
    expect(more.filter((p) => p.proxy.destroyed)).toHaveLength(1);
    // Another caller has bounds of its own.
    const other = await pair();
    pool.put(B, { socket: other.proxy, address: '127.0.0.1' }, 8080, undefined);
    expect(other.proxy.destroyed).toBe(false);
    pool.close();
  });

  it('close() closes every idle connection, and one put back afterwards is closed too', async () => {
    const pool = new UpstreamPool(limits);
    const [a, b, late] = await Promise.all([pair(), pair(), pair()]);
    pool.put(A, { socket: a.proxy, address: '127.0.0.1' }, 8080, undefined);
    pool.put(B, { socket: b.proxy, address: '127.0.0.1' }, 8080, undefined);
    pool.close();
    expect([a.proxy.destroyed, b.proxy.destroyed]).toEqual([true, true]);
    pool.put(A, { socket: late.proxy, address: '127.0.0.1' }, 8080, undefined);
    expect(late.proxy.destroyed).toBe(true);
    expect(pool.size).toBe(0);
  });
});
