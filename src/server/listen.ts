import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { createAdaptorServer } from '@hono/node-server';
import { closeWithConnection } from '../pipelined.js';
import { GatehouseError } from '../errors.js';

/**
 * Connection limits of every listener that serves /mcp (TCP and sandbox sockets).
 * Node's defaults leave a request body unbounded in time (requestTimeout 0 here
 * before) and connections unbounded in number: a slowloris client could hold
 * sockets forever. This file is the one place that owns connection limits.
 */
export interface HttpLimits {
  /** The request's headers must be complete within this (408 and close otherwise). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this. Response streams (SSE) are not limited. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection of an agent is closed after this. Longer than clients' own (undici: 4 s), so the client closes first and never reuses a socket the server is closing. */
  keepAliveTimeoutMs: number;
  /** An idle keep-alive connection that has not yet carried an agent's request (no token) is closed after this. */
  unauthenticatedKeepAliveMs: number;
  /** Connections beyond this are refused at accept. */
  maxConnections: number;
  /** Share of maxConnections that connections without an agent may never take: when they would, the oldest of them is closed. */
  agentReservedFraction: number;
  /** Connections that have carried requests of one agent (or one sandbox); beyond it the agent's request is refused (429, close). */
  maxConnectionsPerAgent: number;
  /** Requests of one agent in progress at once, response streams included (HTTP/1.1 pipelining would otherwise let one connection carry many). */
  maxInFlightPerAgent: number;
  /** How often the timeouts above are checked (Node's default is 30 s, which would let a slow client stay that much longer). */
  checkIntervalMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  unauthenticatedKeepAliveMs: 5_000,
  maxConnections: 4096,
  agentReservedFraction: 0.25,
  maxConnectionsPerAgent: 128,
  maxInFlightPerAgent: 256,
  checkIntervalMs: 1_000,
};

/**
 * 'shared': a TCP listener any local process can reach (agents prove who they are per request).
 * 'one-agent': a sandbox session socket; every connection is that sandbox's, so the listener's
 * cap is the per-agent cap (one sandbox cannot exhaust another's, nor the process's descriptors).
 */
export type ListenerKind = 'shared' | 'one-agent';

/** Answers after which the connection is closed: a client that sent them is wrong or unknown, and must not idle on a slot. */
const CLOSE_AFTER = new Set([400, 401, 403, 404, 405, 408, 413, 415, 421, 429, 431, 503]);

interface Conn {
  socket: Socket;
  /** The agents whose requests this connection has carried (quota keys). */
  agents: Set<string>;
}

interface AgentUse {
  connections: number;
  inFlight: number;
}

export interface AgentRefusal {
  status: 429;
  message: string;
}

/** Counts connections and requests per agent; keeps the agents' reserve free of unauthenticated connections. */
class ConnectionLimiter {
  /** Connections that have carried no agent's request yet, oldest first. */
  private readonly anonymous = new Set<Conn>();
  private readonly byAgent = new Map<string, AgentUse>();
  readonly conns = new WeakMap<Socket, Conn>();

  constructor(
    private readonly l: HttpLimits,
    private readonly anonymousCap: number,
  ) {}

  accept(socket: Socket): void {
    const conn: Conn = { socket, agents: new Set() };
    this.conns.set(socket, conn);
    this.anonymous.add(conn);
    if (this.anonymous.size > this.anonymousCap) {
      // Like a proxy under overload: the oldest connection that never authenticated makes room (an agent connecting now must not be locked out).
      const oldest = this.anonymous.values().next().value as Conn;
      this.anonymous.delete(oldest);
      oldest.socket.destroy();
    }
    socket.once('close', () => {
      this.anonymous.delete(conn);
      for (const key of conn.agents) this.release(key, 'connections');
    });
  }

  authenticated(conn: Conn): boolean {
    return conn.agents.size > 0;
  }

  /** Counts a request of agent `key` on `conn`; a refusal says which limit and how to fix it. */
  admit(conn: Conn, key: string, res: ServerResponse): AgentRefusal | undefined {
    if (conn.socket.destroyed) return undefined;
    const use = this.byAgent.get(key) ?? { connections: 0, inFlight: 0 };
    if (!conn.agents.has(key) && use.connections >= this.l.maxConnectionsPerAgent) {
      return { status: 429, message: `Too Many Requests: this agent already holds ${use.connections} connections (limit ${this.l.maxConnectionsPerAgent}); reuse connections (HTTP keep-alive) instead of opening new ones` };
    }
    if (use.inFlight >= this.l.maxInFlightPerAgent) {
      return { status: 429, message: `Too Many Requests: this agent already has ${use.inFlight} requests in progress (limit ${this.l.maxInFlightPerAgent}); wait for some to finish` };
    }
    this.byAgent.set(key, use);
    if (!conn.agents.has(key)) {
      conn.agents.add(key);
      use.connections++;
      this.anonymous.delete(conn);
    }
    use.inFlight++;
    res.once('close', () => this.release(key, 'inFlight'));
    return undefined;
  }

  private release(key: string, what: keyof AgentUse): void {
    const use = this.byAgent.get(key);
    if (!use) return;
    use[what]--;
    if (use.connections <= 0 && use.inFlight <= 0) this.byAgent.delete(key);
  }
}

/** The connection a request came in on, for `admitAgent` (a Request is the app's only handle). */
const admissions = new WeakMap<Request, { limiter: ConnectionLimiter; conn: Conn; res: ServerResponse }>();

/**
 * Called once a request has proved its agent (`key`: one token agent or one sandbox).
 * Returns a refusal when the agent is over its connection or in-flight limit. A request
 * that did not come through `createHttpServer` (an in-process fetch) is not limited here.
 */
export function admitAgent(req: Request, key: string): AgentRefusal | undefined {
  const a = admissions.get(req);
  return a ? a.limiter.admit(a.conn, key, a.res) : undefined;
}

function withHeaders(res: Response, headers: Record<string, string>): Response {
  try {
    for (const [k, v] of Object.entries(headers)) res.headers.set(k, v);
    return res;
  } catch {
    // Immutable headers (a Response from fetch): copy it.
    const copy = new Response(res.body, { status: res.status, statusText: res.statusText, headers: res.headers });
    for (const [k, v] of Object.entries(headers)) copy.headers.set(k, v);
    return copy;
  }
}

export function createHttpServer(fetch: (req: Request, env: unknown) => Response | Promise<Response>, limits: Partial<HttpLimits> = {}, kind: ListenerKind = 'shared'): HttpServer {
  const l = { ...DEFAULT_HTTP_LIMITS, ...limits };
  const maxConnections = kind === 'one-agent' ? Math.min(l.maxConnections, l.maxConnectionsPerAgent) : l.maxConnections;
  const reserved = Math.floor(l.maxConnections * Math.min(Math.max(l.agentReservedFraction, 0), 0.9));
  const limiter = new ConnectionLimiter(l, kind === 'one-agent' ? Infinity : Math.max(1, l.maxConnections - reserved));
  const shortKeepAlive = Math.min(l.unauthenticatedKeepAliveMs, l.keepAliveTimeoutMs);

  const limited = async (req: Request, env: unknown): Promise<Response> => {
    const { incoming, outgoing } = (env ?? {}) as { incoming?: IncomingMessage; outgoing?: ServerResponse };
    if (incoming && outgoing) closeWithConnection(incoming, outgoing);
    const conn = incoming ? limiter.conns.get(incoming.socket) : undefined;
    if (!conn || !outgoing) return fetch(req, env);
    admissions.set(req, { limiter, conn, res: outgoing });
    const res = await fetch(req, env);
    if (CLOSE_AFTER.has(res.status)) return withHeaders(res, { connection: 'close' });
    if (limiter.authenticated(conn)) return res;
    // Not yet an agent's connection: a short keep-alive, announced so the client does not reuse it later.
    outgoing.once('finish', () => {
      if (!limiter.authenticated(conn) && !conn.socket.destroyed) conn.socket.setTimeout(shortKeepAlive);
    });
    return withHeaders(res, { 'keep-alive': `timeout=${Math.max(1, Math.floor(shortKeepAlive / 1000))}` });
  };

  const server = createAdaptorServer({
    fetch: limited,
    serverOptions: {
      headersTimeout: l.headersTimeoutMs,
      // Node requires requestTimeout >= headersTimeout when both are set.
      requestTimeout: Math.max(l.requestTimeoutMs, l.headersTimeoutMs),
      keepAliveTimeout: l.keepAliveTimeoutMs,
      connectionsCheckingInterval: l.checkIntervalMs,
    },
  }) as HttpServer;
  server.maxConnections = maxConnections;
  server.on('connection', (socket: Socket) => limiter.accept(socket));
  return server;
}

type FetchApp = (req: Request, env: unknown) => Response | Promise<Response>;

/** Listens on TCP; the app is built once the port is known (Host/Origin checks need it). */
export async function listenTcp(host: string, wanted: number, makeApp: (port: number) => FetchApp, limits: Partial<HttpLimits> = {}): Promise<{ server: HttpServer; port: number }> {
  let fetchApp: FetchApp = () => new Response(null, { status: 503 });
  const server = createHttpServer((req, env) => fetchApp(req, env), limits);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(wanted, host, () => resolve());
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new GatehouseError('USAGE', `port ${wanted} on ${host} is in use; pick another with --port (0 = any free port)`);
    if (code === 'EADDRNOTAVAIL') throw new GatehouseError('USAGE', `cannot bind ${host}: no such local address (--host)`);
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  fetchApp = makeApp(port);
  return { server, port };
}

/** A bind address that listens on every interface. */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** An address as it appears in a URL or a Host header (IPv6 in brackets). */
function urlHost(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

/**
 * The `host:port` values a client can reach the listener at: the bound
 * address, or for a wildcard bind each interface's address (loopback first;
 * IPv6 only for `::`, link-local addresses left out: they need a zone).
 * IP literals are not a DNS-rebinding vector, so these are accepted as Host.
 */
export function listenerAddresses(host: string, port: number, nets: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string[] {
  if (!isWildcard(host)) return [`${urlHost(host)}:${port}`];
  const v6 = host !== '0.0.0.0';
  const all = Object.values(nets)
    .flatMap((list) => list ?? [])
    .filter((n) => n.family === 'IPv4' || (v6 && n.family === 'IPv6' && n.scopeid === 0 && !n.address.toLowerCase().startsWith('fe80:')))
    .sort((a, b) => Number(b.internal) - Number(a.internal) || Number(a.family === 'IPv6') - Number(b.family === 'IPv6'));
  return [...new Set(all.map((n) => `${urlHost(n.address)}:${port}`))];
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * What `serve` says about a bind beyond loopback: every URL it is reachable
 * at, and how to let clients in by a host name (the Host check refuses names
 * it was not given).
 */
export function reachableNote(host: string, urls: readonly string[]): string {
  if (LOOPBACK.has(host)) return '';
  const list = isWildcard(host) ? urls.map((u) => `  reachable at ${u}\n`).join('') : '';
  return `${list}  bound to ${host}: other machines can connect (each still needs a token); a client that names this machine by a host name needs: --allowed-host NAME (repeatable)\n`;
}
