/**
 * The egress proxy: a forward proxy for `CONNECT host:port` tunnels (no TLS
 * interception: the decision is on host and port) and plain-HTTP
 * absolute-form requests (also matched on method and path). It listens on
 * nothing itself: whoever owns a connection hands it over, so the identity
 * is the socket's, never something the client says. Either the whole
 * connection (`accept(socket, identity)`: a connector's egress socket, a
 * test), or one request an HTTP server of its own has parsed (`connect` for
 * CONNECT, `request` for an absolute-form request: the sandbox session
 * socket, where the same connection also carries MCP).
 *
 * A connection whose rule asks waits (its client connection open, idle
 * timeouts paused) for a human through `approvals`; the client hanging up
 * withdraws it.
 *
 * Every connection is decided (gate.ts) before anything is connected, and has
 * one `egress` record: refusals at once, connections when they end (bytes
 * each way, duration, outcome), after a durable `egress.intent`. A plain-HTTP
 * request is decided and recorded the same way, but may go on the caller's
 * idle kept-alive upstream connection to an address it was checked for
 * (upstream-pool.ts).
 */
import { createServer, request as httpRequest, STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { appendOrQueue } from '../audit/append-or-queue.js';
import type { AuditEvent, AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';
import { closeWithConnection } from '../pipelined.js';
import type { RateLimiter } from '../policy/rate-limit.js';
import type { Policy } from '../policy/types.js';
import { dial, DialError } from './dial.js';
import { gate, type EgressApprovals, type EgressIdentity, type GateDeps } from './gate.js';
import { systemResolver, type Resolver } from './resolve.js';
import { parseAuthority, parseHttpUrl, type EgressTarget, type HttpTarget } from './target.js';
import { LookupSlots } from './lookup-slots.js';
import { RefusalLog } from './refusal-log.js';
import { runTunnel } from './tunnel.js';
import { callerKey, UpstreamPool, type Upstream } from './upstream-pool.js';

export type { EgressApprovals, EgressIdentity } from './gate.js';

export interface EgressLimits {
  /** Request line plus headers, per request (larger: 431). */
  maxHeaderBytes: number;
  /** Until a request's headers have arrived. */
  headersTimeoutMs: number;
  resolveTimeoutMs: number;
  /** Until the upstream TCP connection is open (over all addresses). */
  connectTimeoutMs: number;
  /** A tunnel or forwarded request with no bytes either way this long is closed. */
  idleTimeoutMs: number;
  /** A kept-alive upstream connection of plain HTTP waiting this long for the caller's next request is closed (sooner if the upstream says so). */
  upstreamIdleMs: number;
  /** Open (and being decided) connections per caller; more get 429. */
  maxConnectionsPerCaller: number;
}

export const DEFAULT_EGRESS_LIMITS: EgressLimits = {
  maxHeaderBytes: 16_384,
  headersTimeoutMs: 10_000,
  resolveTimeoutMs: 5_000,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  upstreamIdleMs: 4_000,
  // As many as a sandbox session socket takes from one agent (server/listen.ts maxConnectionsPerAgent): 100 tunnels from one sandbox fit.
  maxConnectionsPerCaller: 128,
};

export interface EgressProxyOptions {
  /** The policy in force now (read per connection, so a reload applies to the next one). */
  policy: () => Policy;
  audit: AuditSink;
  logger: Logger;
  resolve?: Resolver;
  /** Shared with nothing else: egress rule limits are counted per (rule, caller). */
  rateLimiter?: RateLimiter;
  /** The gateway's Approvals (the one tool calls use), for rules with `effect: ask`; absent: those are refused. */
  approvals?: EgressApprovals;
  limits?: Partial<EgressLimits>;
  now?: () => number;
}

// RFC 9110 §7.6.1: hop-by-hop fields, plus the proxy's own credentials.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Fields a Connection header may not name (RFC 9110 §7.6.1: they are the message's own). */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'host']);

/** The options of a Connection header (RFC 9110 §7.6.1), lower case. */
function connectionOptions(headers: IncomingHttpHeaders | NodeJS.Dict<string | string[]>): Set<string> {
  return new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase()),
  );
}

function endToEnd(headers: IncomingHttpHeaders | NodeJS.Dict<string | string[]>, raw: readonly string[]): Record<string, string | string[]> {
  const listed = connectionOptions(headers);
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower) || lower === 'host') continue;
    const prev = out[name];
    out[name] = prev === undefined ? (raw[i + 1] as string) : [...(Array.isArray(prev) ? prev : [prev]), raw[i + 1] as string];
  }
  return out;
}

function rawReply(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  // A socket handed over by Node's parser (CONNECT, upgrade) has no error listener left: an error must not crash the gateway.
  socket.on('error', () => undefined);
  if (socket.destroyed) return;
  const body = `${message}\n`;
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n${extra}\r\n${body}`);
}

function reply(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close', ...headers }).end(`${message}\n`);
}

const dialStatus = (e: unknown): number => (e instanceof DialError && e.timedOut ? 504 : 502);

/** An answer after which its connection may carry another request: HTTP/1.1 and no `Connection: close` (RFC 9112 §9.3). */
const persists = (answer: IncomingMessage): boolean => answer.httpVersion === '1.1' && !connectionOptions(answer.headers).has('close');

/** A request that can be sent again as it is: GET or HEAD (idempotent, RFC 9110 §9.2.2) without a body to send twice. */
const resendable = (req: IncomingMessage): boolean =>
  (req.method === 'GET' || req.method === 'HEAD') && req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0';

export class EgressProxy {
  readonly #server: Server;
  readonly #who = new WeakMap<object, EgressIdentity>();
  readonly #open = new Map<string, number>();
  readonly #sockets = new Set<Duplex>();
  /** Tunnels on connections that were not handed over whole (see connect). */
  readonly #tunnels = new Set<Duplex>();
  readonly #deadlines = new Map<Duplex, NodeJS.Timeout>();
  readonly #limits: EgressLimits;
  readonly #gate: GateDeps;
  readonly #now: () => number;
  readonly #refusals: RefusalLog;
  /** Idle kept-alive upstream connections of plain HTTP, per caller. */
  readonly #pool: UpstreamPool;

  constructor(opts: EgressProxyOptions) {
    this.#limits = { ...DEFAULT_EGRESS_LIMITS, ...opts.limits };
    this.#now = opts.now ?? Date.now;
    this.#gate = { policy: opts.policy, audit: opts.audit, logger: opts.logger, resolve: opts.resolve ?? systemResolver, resolveTimeoutMs: this.#limits.resolveTimeoutMs, now: this.#now };
    if (opts.rateLimiter !== undefined) this.#gate.rateLimiter = opts.rateLimiter;
    // One caller looping over refused hosts must not fill the audit disk for everyone.
    this.#refusals = new RefusalLog(opts.audit, opts.logger);
    this.#gate.refusals = this.#refusals;
    // getaddrinfo shares libuv's pool with the audit writer: a few lookups at a time, never all its threads.
    this.#gate.lookups = new LookupSlots(2);
    if (opts.approvals !== undefined) this.#gate.approvals = opts.approvals;
    this.#pool = new UpstreamPool({ idleMs: this.#limits.upstreamIdleMs, perTarget: 4, perCaller: 16, perPrincipal: 16, total: 256 });
    this.#server = createServer({ maxHeaderSize: this.#limits.maxHeaderBytes, requireHostHeader: false, headersTimeout: this.#limits.headersTimeoutMs, requestTimeout: 0 }, (req, res) => {
      this.#onRequest(req, res).catch((e: unknown) => this.#crashed(e, req.socket));
    });
    this.#server.keepAliveTimeout = 5_000;
    this.#server.timeout = this.#limits.idleTimeoutMs;
    this.#server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#onConnect(req, socket, head).catch((e: unknown) => this.#crashed(e, socket));
    });
    this.#server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => rawReply(socket, 501, 'egress: protocol upgrades are not forwarded'));
    // Malformed input (bad request line, oversized headers) gets Node's own 400 / 431, and the socket is closed.
  }

  /** Hands over a client connection: everything that arrives on it is asked for by `who`. */
  accept(socket: Socket, who: EgressIdentity): void {
    this.#who.set(socket, who);
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#headersDue(socket, false);
    });
    this.#headersDue(socket, true);
    this.#server.emit('connection', socket);
  }

  /** A CONNECT request parsed by another HTTP server (its 'connect' event): the socket is the proxy's from now on. */
  connect(req: IncomingMessage, socket: Duplex, head: Buffer, who: EgressIdentity): void {
    this.#who.set(socket, who);
    this.#tunnels.add(socket);
    socket.once('close', () => this.#tunnels.delete(socket));
    this.#onConnect(req, socket, head).catch((e: unknown) => this.#crashed(e, socket));
  }

  /** An absolute-form request parsed by another HTTP server; its connection stays that server's (keep-alive, timeouts). */
  request(req: IncomingMessage, res: ServerResponse, who: EgressIdentity): void {
    this.#who.set(req.socket, who);
    this.#onRequest(req, res).catch((e: unknown) => this.#crashed(e, req.socket));
  }

  /**
   * A request's headers must arrive within headersTimeoutMs of the connection
   * (or of the previous answer on a kept-alive one), else 408 (slowloris).
   * Node enforces `headersTimeout` only for a server that listens itself, which this one does not.
   */
  #headersDue(socket: Duplex, arm: boolean): void {
    clearTimeout(this.#deadlines.get(socket));
    this.#deadlines.delete(socket);
    // Only connections handed over whole: another server's connection keeps that server's timeouts.
    if (!arm || socket.destroyed || !this.#sockets.has(socket)) return;
    const t = setTimeout(() => rawReply(socket, 408, 'egress: request headers too slow'), this.#limits.headersTimeoutMs);
    t.unref();
    this.#deadlines.set(socket, t);
  }

  /** Closes every connection, open tunnels and idle upstream connections included. */
  close(): void {
    this.#refusals.flushAll();
    this.#pool.close();
    for (const t of this.#deadlines.values()) clearTimeout(t);
    this.#deadlines.clear();
    for (const s of [...this.#sockets, ...this.#tunnels]) s.destroy();
    this.#sockets.clear();
    this.#tunnels.clear();
  }

  /** A bug must cost one connection, never the gateway (an unhandled rejection would end the process). */
  #crashed(e: unknown, socket: Duplex): void {
    this.#gate.logger.error({ err: e instanceof Error ? e.message : String(e) }, 'egress: connection failed unexpectedly');
    socket.destroy();
  }

  /** A connection slot for `who`, or undefined when it has too many open. */
  #acquire(who: EgressIdentity): (() => void) | undefined {
    const key = `${who.caller.kind}:${who.caller.name}`;
    const n = this.#open.get(key) ?? 0;
    if (n >= this.#limits.maxConnectionsPerCaller) return undefined;
    this.#open.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left <= 0) this.#open.delete(key);
      else this.#open.set(key, left);
    };
  }

  /**
   * Decides one connection, the client socket watched meanwhile: its closing aborts
   * the decision (a pending approval is withdrawn), and its idle timeout is paused,
   * so that a wait for a human ends by the rule's ask timeout, not by the socket's.
   */
  async #decide(socket: Duplex, who: EgressIdentity, target: EgressTarget, http?: { method: string; path: string }): Promise<Awaited<ReturnType<typeof gate>>> {
    const gone = new AbortController();
    const onClose = (): void => gone.abort('the client closed its connection');
    socket.once('close', onClose);
    const s = socket as Partial<Socket>;
    s.setTimeout?.(0);
    try {
      return await gate(this.#gate, who, target, http, gone.signal);
    } finally {
      socket.off('close', onClose);
      if (!socket.destroyed) s.setTimeout?.(this.#limits.idleTimeoutMs);
    }
  }

  /** The connection's record: it is over, nothing waits for the record (written with the log's next batch). */
  #finish(record: AuditEvent, started: number, fields: Record<string, unknown>): void {
    void appendOrQueue(this.#gate.audit, { ...record, event: 'egress', ...fields, durationMs: this.#now() - started }, this.#gate.logger, { lazy: true });
  }

  async #onConnect(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    this.#headersDue(client, false);
    client.on('error', () => undefined);
    const who = this.#who.get(client);
    if (who === undefined) return rawReply(client, 403, 'egress: unknown caller');
    const target = parseAuthority(req.url ?? '');
    if (!target.ok) return rawReply(client, 400, `egress: ${target.reason}`);
    const release = this.#acquire(who);
    if (release === undefined) return rawReply(client, 429, `egress: more than ${this.#limits.maxConnectionsPerCaller} open connections`);
    client.once('close', release);
    const started = this.#now();
    try {
      const v = await this.#decide(client, who, target.value);
      if (!v.go) return rawReply(client, v.status, `egress: ${v.message}`, v.headers);
      let up: Awaited<ReturnType<typeof dial>>;
      try {
        up = await dial(v.addresses, target.value.port, this.#limits.connectTimeoutMs);
      } catch (e) {
        this.#finish(v.record, started, { outcome: 'connect-failed', reason: (e as Error).message });
        return rawReply(client, dialStatus(e), `egress: ${(e as Error).message}`);
      }
      if (client.destroyed) {
        up.socket.destroy();
        return this.#finish(v.record, started, { address: up.address, outcome: 'client-gone', bytesUp: 0, bytesDown: 0 });
      }
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const end = await runTunnel(client as Socket, up.socket, head, this.#limits.idleTimeoutMs);
      this.#finish(v.record, started, { address: up.address, outcome: end.outcome, bytesUp: end.bytesUp, bytesDown: end.bytesDown });
    } finally {
      release();
    }
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Pipelined behind another and the client hangs up: its upstream request is aborted and its slot released then, not at the idle timeout.
    closeWithConnection(req, res);
    this.#headersDue(req.socket, false);
    res.once('finish', () => this.#headersDue(req.socket, true));
    const who = this.#who.get(req.socket);
    if (who === undefined) return reply(res, 403, 'egress: unknown caller');
    const target = parseHttpUrl(req.url ?? '');
    if (!target.ok) return reply(res, 400, `egress: ${target.reason}`);
    if (req.headers.upgrade !== undefined) return reply(res, 501, 'egress: protocol upgrades are not forwarded');
    // A Connection header naming the message's framing or Host would have them dropped as hop-by-hop (request smuggling).
    const named = [...connectionOptions(req.headers)].find((o) => FRAMING.has(o));
    if (named !== undefined) {
      req.resume();
      return reply(res, 400, `egress: the Connection header names ${named}, which is not hop-by-hop`);
    }
    const release = this.#acquire(who);
    if (release === undefined) return reply(res, 429, `egress: more than ${this.#limits.maxConnectionsPerCaller} open connections`);
    const started = this.#now();
    try {
      const t = target.value;
      const v = await this.#decide(req.socket, who, t, { method: req.method ?? 'GET', path: t.path });
      if (!v.go) {
        req.resume();
        return reply(res, v.status, `egress: ${v.message}`, v.headers);
      }
      await this.#forward(req, res, t, callerKey(who), v.addresses, v.record, started);
    } finally {
      release();
    }
  }

  /**
   * One plain-HTTP request to a checked address, the answer streamed back; its record written when it ends.
   * It goes on the caller's idle kept-alive connection to one of `addresses` when there is one, else on a new one.
   */
  #forward(req: IncomingMessage, res: ServerResponse, t: HttpTarget, caller: string, addresses: string[], record: AuditEvent, started: number): Promise<void> {
    return new Promise((resolve) => {
      const counts = { bytesUp: 0, bytesDown: 0 };
      let address: string | undefined;
      let done = false;
      const finish = (outcome: string, extra: Record<string, unknown> = {}): void => {
        if (done) return;
        done = true;
        this.#finish(record, started, { ...(address === undefined ? {} : { address }), outcome, ...counts, ...extra });
        resolve();
      };
      const send = (up: Upstream, retry?: () => void): void => {
        address = up.address;
        if (res.destroyed) {
          up.socket.destroy();
          return finish('client-gone');
        }
        try {
          this.#send(req, res, t, { up, caller, ...(retry === undefined ? {} : { retry }) }, counts, finish);
        } catch (e) {
          // An answer Node will not relay (e.g. an invalid status line) costs this request only.
          up.socket.destroy();
          reply(res, 502, 'egress: the upstream answer cannot be relayed');
          finish(`error: ${(e as Error).message}`);
        }
      };
      const connect = (): void => {
        dial(addresses, t.port, this.#limits.connectTimeoutMs).then(
          (up) => send(up),
          (e: unknown) => {
            req.resume();
            reply(res, dialStatus(e), `egress: ${(e as Error).message}`);
            finish('connect-failed', { reason: (e as Error).message });
          },
        );
      };
      const idle = this.#pool.take(caller, addresses, t.port);
      if (idle === undefined) connect();
      // If the upstream closed it meanwhile, a request that can be sent again is, on a new connection (see #send).
      else send(idle, resendable(req) ? connect : undefined);
    });
  }

  /**
   * Sends the request on the connected socket and streams the answer back, counting body bytes.
   * The socket goes back to the pool only after a clean exchange; otherwise it is destroyed.
   */
  #send(
    req: IncomingMessage,
    res: ServerResponse,
    t: HttpTarget,
    via: { up: Upstream; caller: string; retry?: () => void },
    counts: { bytesUp: number; bytesDown: number },
    finish: (outcome: string, extra?: Record<string, unknown>) => void,
  ): void {
    const { socket } = via.up;
    let retry = via.retry;
    // The body goes framed as it was parsed (chunked, or its Content-Length), whatever the Connection header names:
    // Node would write a GET's (or DELETE's) body unframed, and the upstream could read it as a second request
    // nobody decided (request smuggling).
    const length = req.headers['content-length'];
    const framing = req.headers['transfer-encoding'] !== undefined ? { 'transfer-encoding': 'chunked' } : length !== undefined ? { 'content-length': length } : {};
    const out = httpRequest({
      method: req.method ?? 'GET',
      path: t.pathAndQuery,
      headers: { ...endToEnd(req.headers, req.rawHeaders), ...framing, host: t.authority, connection: 'keep-alive' },
      setHost: false,
      createConnection: () => socket,
    });
    const readBefore = socket.bytesRead;
    let answer: IncomingMessage | undefined;
    let clean = true;
    // Attached before Node's client attaches its own (a tick later), so it sees each chunk before the parser does:
    // a byte after a complete answer was not asked for, and the connection is not kept.
    const late = (): void => {
      if (answer?.complete === true) clean = false;
    };
    socket.on('data', late);
    // Node's client frees a connection once the answer has ended and the request is fully sent, both framed for keep-alive.
    socket.once('free', () => {
      socket.off('data', late);
      if (clean && out.writableFinished && answer?.complete === true && persists(answer)) this.#pool.put(via.caller, via.up, t.port, String(answer.headers['keep-alive'] ?? ''));
      else socket.destroy();
    });
    out.setTimeout(this.#limits.idleTimeoutMs, () => out.destroy(new Error('idle')));
    out.on('error', (e) => {
      clean = false;
      // A kept-alive connection that broke before one byte of an answer came back: most likely closed by the upstream as the
      // request went out. An idempotent request may then be sent again on a new connection (RFC 9112 §9.3.1), once.
      if (retry !== undefined && answer === undefined && socket.bytesRead === readBefore && e.message !== 'idle' && !res.destroyed) {
        const again = retry;
        retry = undefined;
        return again();
      }
      reply(res, 502, `egress: upstream: ${e.message}`);
      finish(e.message === 'idle' ? 'idle' : `error: upstream ${e.message}`);
    });
    out.on('response', (a: IncomingMessage) => {
      answer = a;
      try {
        res.writeHead(a.statusCode ?? 502, a.statusMessage, endToEnd(a.headers, a.rawHeaders));
      } catch (e) {
        clean = false;
        out.destroy();
        reply(res, 502, 'egress: the upstream answer cannot be relayed');
        return finish(`error: ${(e as Error).message}`);
      }
      a.on('data', (b: Buffer) => (counts.bytesDown += b.length));
      a.pipe(res);
      a.on('end', () => {
        // Answered before the request was all sent: the upstream may read the rest as another request, and Node would
        // neither keep nor close this connection (the caller's slot is released now): it is closed.
        if (!out.writableFinished) {
          clean = false;
          socket.destroy();
        }
        finish('ok', { status: a.statusCode });
      });
      a.on('error', () => finish('error: upstream closed'));
    });
    req.on('data', (b: Buffer) => (counts.bytesUp += b.length));
    req.pipe(out);
    res.on('close', () => {
      if (!res.writableFinished) {
        clean = false;
        out.destroy();
        finish('client-gone');
      }
    });
  }
}

export function createEgressProxy(opts: EgressProxyOptions): EgressProxy {
  return new EgressProxy(opts);
}

export type { Resolver } from './resolve.js';
