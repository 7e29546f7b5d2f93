/**
 * What the kept-alive upstream tests share (upstream-reuse.int.test.ts,
 * hostile-upstream-pool.int.test.ts): a durable audit log in a temp state, a
 * raw upstream that parses what reaches it, clients of the proxy, and the
 * log's records. `egressFixtures()` registers the file's hooks: whatever a
 * test pushes on `cleanups` is undone after it.
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { AuditLog } from '../../src/audit/writer.js';
import { openLog, tempState } from '../audit/helpers.js';
import { until } from '../helpers/gateway.js';

/** One request an upstream parsed. */
export interface Req {
  /** Request line and header fields. */
  head: string;
  path: string;
  method: string;
  /** 1 for the first request on its connection. */
  n: number;
  body: string;
}

export interface Conn {
  socket: Socket;
  /** The upstream address it came in on. */
  local: string;
  reqs: Req[];
  /** The paths of `reqs`, in order. */
  paths: string[];
  closed: boolean;
}

export interface Up {
  port: number;
  conns: Conn[];
  /** Every request line the upstream parsed, in order, over all connections. */
  all: () => string[];
}

export const answer = (text: string, head = 'HTTP/1.1 200 OK'): string => `${head}\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
export const served = (r: Req): string => answer(`answer to ${r.path} #${r.n}`);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The next request in `buf` (framed by content-length, or chunked and de-chunked), and what follows it; undefined while incomplete. */
function nextRequest(buf: string): { head: string; body: string; rest: string } | undefined {
  // Leading CRLFs between requests are skipped (RFC 9112 §2.2).
  buf = buf.replace(/^(\r\n)+/, '');
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = buf.slice(0, end);
  if (!/\r\ntransfer-encoding: *chunked/i.test(head)) {
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (buf.length < end + 4 + length) return undefined;
    return { head, body: buf.slice(end + 4, end + 4 + length), rest: buf.slice(end + 4 + length) };
  }
  let body = '';
  let i = end + 4;
  for (;;) {
    const nl = buf.indexOf('\r\n', i);
    if (nl === -1) return undefined;
    const size = parseInt(buf.slice(i, nl), 16);
    if (size === 0) {
      const fin = buf.indexOf('\r\n\r\n', nl - 2);
      return fin === -1 ? undefined : { head, body, rest: buf.slice(fin + 4) };
    }
    if (buf.length < nl + 2 + size + 2) return undefined;
    body += buf.slice(nl + 2, nl + 2 + size);
    i = nl + 2 + size + 2;
  }
}

type Answer = { status: number; text: string };

export function egressFixtures() {
  const state = tempState();
  let log: AuditLog | undefined;
  const cleanups: Array<() => void> = [];
  let run = 0;

  beforeAll(async () => {
    log = await openLog(state.dir);
  });
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });
  afterAll(async () => {
    await log?.close();
    rmSync(state.state, { recursive: true, force: true });
  });

  /** A raw HTTP/1.1 upstream on `hosts` (one port): each request it parses is answered by `respond` (default: "answer to PATH #N", kept alive). */
  async function upstream(respond: (r: Req, s: Socket, c: Conn) => void = (r, s) => s.write(served(r)), hosts = ['127.0.0.1']): Promise<Up> {
    const up: Up = { port: 0, conns: [], all: () => up.conns.flatMap((c) => c.reqs.map((r) => `${r.method} ${r.path}`)) };
    const onConnection = (socket: Socket): void => {
      const conn: Conn = { socket, local: socket.localAddress ?? '', reqs: [], paths: [], closed: false };
      up.conns.push(conn);
      socket.on('error', () => undefined);
      socket.on('close', () => (conn.closed = true));
      let buf = '';
      socket.on('data', (b: Buffer) => {
        buf += b.toString('latin1');
        for (let got = nextRequest(buf); got !== undefined; got = nextRequest(buf)) {
          buf = got.rest;
          const [method = '', path = ''] = got.head.split(' ');
          const r: Req = { head: got.head, path, method, n: conn.reqs.length + 1, body: got.body };
          conn.reqs.push(r);
          conn.paths.push(path);
          respond(r, socket, conn);
        }
      });
    };
    for (const host of hosts) {
      const server: Server = createServer(onConnection);
      await new Promise<void>((r) => server.listen(up.port, host, r));
      up.port = (server.address() as AddressInfo).port;
      cleanups.push(() => {
        server.close();
        for (const c of up.conns) c.socket.destroy();
      });
    }
    return up;
  }

  /** A client of the proxy whose requests go on one kept-alive connection while it stays open. */
  function client(port: number): { send(method: string, url: string, body?: string, headers?: Record<string, string>): Promise<Answer & { headers: Record<string, unknown> }> } {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    return {
      send: (method, url, body, headers = {}) =>
        new Promise((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, method, path: url, agent, headers }, (res) => {
            let text = '';
            res.on('data', (b: Buffer) => (text += b.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end(body);
        }),
    };
  }

  /** A raw client connection to the proxy: bytes written as given, answers read one at a time by content-length (status 0 once it closed). */
  function rawClient(port: number): { write(bytes: string): void; next(): Promise<Answer>; closed: () => boolean; raw: () => string } {
    const s = connect(port, '127.0.0.1');
    cleanups.push(() => s.destroy());
    s.on('error', () => undefined);
    let buf = '';
    let all = '';
    let closed = false;
    let waiting: (() => void) | undefined;
    s.on('close', () => {
      closed = true;
      waiting?.();
    });
    s.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      all += b.toString('latin1');
      waiting?.();
    });
    const answerIn = (): Answer | undefined => {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return undefined;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
      if (buf.length < end + 4 + length) return undefined;
      const a = { status: Number(buf.slice(9, 12)), text: buf.slice(end + 4, end + 4 + length) };
      buf = buf.slice(end + 4 + length);
      return a;
    };
    return {
      write: (bytes) => void s.write(bytes),
      closed: () => closed,
      raw: () => all,
      next: () =>
        new Promise((resolve) => {
          const check = (): void => {
            const a = answerIn();
            if (a === undefined) {
              if (closed) resolve({ status: 0, text: '<closed>' });
              return;
            }
            waiting = undefined;
            resolve(a);
          };
          waiting = check;
          check();
        }),
    };
  }

  function records(): Array<Record<string, unknown>> {
    return readFileSync(join(state.dir, 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  return {
    cleanups,
    /** The durable audit log the proxies write to (open from beforeAll on). */
    log: (): AuditLog => {
      if (log === undefined) throw new Error('the audit log opens in beforeAll');
      return log;
    },
    upstream,
    client,
    rawClient,
    records,
    recordOf: (path: string): Promise<Record<string, unknown>> => until(() => records().find((r) => r.event === 'egress' && r.path === path), `the egress record of ${path}`),
    /** Paths unique to one test, so its records are its own. */
    paths: (...names: string[]): string[] => {
      run++;
      return names.map((n) => `/${n}-${process.pid}-${run}`);
    },
  };
}
