import { randomUUID } from 'node:crypto';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import type { StatelessMcp } from '../broker/stateless-server.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { appendOrQueue } from '../audit/append-or-queue.js';
import type { AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';
import type { Tracing } from '../telemetry/traces.js';

export interface Identity {
  agent: string;
  /** How the agent proved who it is: a bearer token, or the sandbox session socket it came in on. */
  via: 'token' | 'sandbox';
  /** The sandbox session whose socket the request came in on (via 'sandbox' only). */
  sandbox?: string;
}

export const DEFAULT_MAX_SESSIONS = 1000;
/** Well below the global cap: one agent can hold at most this many, so others always find room. */
export const DEFAULT_MAX_SESSIONS_PER_AGENT = 32;
export const DEFAULT_SESSION_IDLE_MS = 30 * 60_000;
/** A session that never sent a second request (a flood of bare `initialize`s) is dropped after this. */
export const UNUSED_SESSION_MS = 60_000;

/** Why a new session was refused: the HTTP status and a message that says how to fix it. */
export interface SessionRefusal {
  status: 429 | 503;
  message: string;
  headers: Record<string, string>;
}

/** Whose quota a session counts against: its sandbox (the socket), or its agent name for token agents. */
function quotaKey(identity: Identity): string {
  return identity.via === 'sandbox' ? `sandbox:${identity.sandbox ?? identity.agent}` : `token:${identity.agent}`;
}

export interface Session {
  id: string;
  identity: Identity;
  transport: WebStandardStreamableHTTPServerTransport;
  server: Server;
  lastSeen: number;
  /** False until a request after `initialize` arrives. */
  used: boolean;
  /** Calls in progress (one may wait hours for an approval): a busy session is never swept as idle. */
  activity: { busy: number };
}

export interface SessionManagerOptions {
  /** `protocol`: the revision the session's `initialize` negotiated (for audit records). */
  makeServer: (identity: Identity, id: () => string, busy: (delta: 1 | -1) => void, protocol: string) => Server;
  /** The 2026-07-28 era's stateless server (no session): without it, only 2025-11-25 sessions are served. */
  stateless?: StatelessMcp;
  audit: AuditSink;
  logger: Logger;
  /** Open sessions across every agent (default 1000). */
  maxSessions?: number;
  /** Open sessions of one token agent or one sandbox (default 32). */
  maxSessionsPerAgent?: number;
  /** A session with no request for this long is closed (default 30 min). */
  idleMs?: number;
  /** A session with no request after its `initialize` is closed after this (default 1 min). */
  unusedMs?: number;
  /** Traces: a span per MCP request of each session (src/telemetry/traces.ts); absent when tracing is off. */
  tracing?: Tracing;
}

/** The revision an `initialize` gets (the SDK's rule: the requested one if supported, else the latest). */
function negotiatedVersion(body: unknown): string {
  const v = (body as { params?: { protocolVersion?: unknown } } | undefined)?.params?.protocolVersion;
  return typeof v === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(v) ? v : LATEST_PROTOCOL_VERSION;
}

/** MCP sessions (Mcp-Session-Id) across all listeners, each bound to the identity that opened it. */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly opts: SessionManagerOptions;
  private readonly sweeper: NodeJS.Timeout;
  readonly maxSessions: number;
  readonly maxPerAgent: number;
  /** The 2026-07-28 era's server, if this gateway serves that revision. */
  readonly stateless: StatelessMcp | undefined;
  /** Sessions per quota key, counting `initialize` requests still in progress (so a parallel burst cannot overshoot). */
  private readonly counts = new Map<string, number>();
  private pending = 0;
  /** Quota keys refused since their last admitted session: a burst of refusals is audited once. */
  private readonly refusing = new Set<string>();

  constructor(opts: SessionManagerOptions) {
    this.opts = opts;
    this.stateless = opts.stateless;
    this.maxSessions = opts.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.maxPerAgent = Math.min(opts.maxSessionsPerAgent ?? DEFAULT_MAX_SESSIONS_PER_AGENT, this.maxSessions);
    const idle = opts.idleMs ?? DEFAULT_SESSION_IDLE_MS;
    const unused = opts.unusedMs ?? UNUSED_SESSION_MS;
    this.sweeper = setInterval(() => this.sweep(idle, unused), Math.max(1000, Math.min(idle, unused) / 2));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Open sessions per identity (for `gatehouse status`): counts and times only, no session ids. */
  summary(): Array<Identity & { sessions: number; busy: number; lastSeen: string }> {
    const by = new Map<string, Identity & { sessions: number; busy: number; last: number }>();
    for (const s of this.sessions.values()) {
      const key = quotaKey(s.identity);
      const e = by.get(key) ?? { ...s.identity, sessions: 0, busy: 0, last: 0 };
      e.sessions++;
      e.busy += s.activity.busy;
      e.last = Math.max(e.last, s.lastSeen);
      by.set(key, e);
    }
    return [...by.values()].map(({ last, ...e }) => ({ ...e, lastSeen: new Date(last).toISOString() }));
  }

  /** A session by id, only for the identity that opened it (anyone else gets nothing: 404). */
  get(id: string, identity: Identity): Session | undefined {
    const s = this.sessions.get(id);
    if (!s || s.identity.agent !== identity.agent || s.identity.via !== identity.via || s.identity.sandbox !== identity.sandbox) return undefined;
    s.lastSeen = Date.now();
    s.used = true;
    return s;
  }

  /** Whether `identity` may open one more session: its own quota first, then the global cap. */
  private admit(identity: Identity): SessionRefusal | undefined {
    const key = quotaKey(identity);
    const mine = this.counts.get(key) ?? 0;
    let refusal: SessionRefusal | undefined;
    if (mine >= this.maxPerAgent) {
      const who = identity.via === 'sandbox' ? `the sandbox of agent "${identity.agent}"` : `agent "${identity.agent}"`;
      refusal = {
        status: 429,
        message:
          `Too Many Requests: ${who} already has ${mine} open MCP sessions, the per-agent limit; ` +
          `close unused ones (HTTP DELETE /mcp with their Mcp-Session-Id) or raise the limit with ` +
          `gatehouse serve --max-sessions-per-agent N (env GATEHOUSE_MAX_SESSIONS_PER_AGENT)`,
        headers: { 'retry-after': '5' },
      };
    } else if (this.sessions.size + this.pending >= this.maxSessions) {
      refusal = {
        status: 503,
        message: `Service Unavailable: the gateway has ${this.maxSessions} open MCP sessions, its limit; retry later, or raise it with gatehouse serve --max-sessions N (env GATEHOUSE_MAX_SESSIONS)`,
        headers: { 'retry-after': '5' },
      };
    }
    if (refusal && !this.refusing.has(key)) {
      this.refusing.add(key);
      const limit = refusal.status === 429 ? this.maxPerAgent : this.maxSessions;
      this.opts.logger.warn({ agent: identity.agent, via: identity.via, limit }, 'session refused: limit reached');
      const record = { event: 'session.refused', agent: identity.agent, via: identity.via, ...(identity.sandbox !== undefined ? { sandbox: identity.sandbox } : {}), limit, scope: refusal.status === 429 ? 'agent' : 'gateway', open: mine };
      void appendOrQueue(this.opts.audit, record, this.opts.logger);
    }
    return refusal;
  }

  /**
   * Answers an `initialize` request without a session id: admission (quota),
   * then a new transport and server. A transport that did not become a session
   * (a refused or invalid initialize) is closed, so it leaks nothing.
   */
  async initialize(identity: Identity, req: Request, parsedBody: unknown): Promise<Response> {
    const refusal = this.admit(identity);
    if (refusal) {
      return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: refusal.message }, id: null }), {
        status: refusal.status,
        headers: { 'content-type': 'application/json', ...refusal.headers },
      });
    }
    const key = quotaKey(identity);
    this.refusing.delete(key);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.pending++;
    let registered = false;
    let server: Server | undefined;
    try {
      const made = await this.create(identity, () => (registered = true), negotiatedVersion(parsedBody));
      server = made.server;
      return await made.transport.handleRequest(req, { parsedBody });
    } finally {
      this.pending--;
      if (!registered) {
        this.release(key);
        await server?.close().catch(() => undefined);
      }
    }
  }

  private release(key: string): void {
    // Below its limit again: the next refusal starts a new burst (and is audited).
    this.refusing.delete(key);
    const n = (this.counts.get(key) ?? 0) - 1;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }

  /** Creates the transport and server for a new session; the id exists once `initialize` succeeds. */
  private async create(identity: Identity, onRegistered: () => void, protocol: string): Promise<{ transport: WebStandardStreamableHTTPServerTransport; server: Server }> {
    let sessionId = '';
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessionId = id;
        onRegistered();
        this.sessions.set(id, { id, identity, transport, server, lastSeen: Date.now(), used: false, activity });
        const record = { event: 'session.opened', agent: identity.agent, session: id, via: identity.via, ...(identity.sandbox !== undefined ? { sandbox: identity.sandbox } : {}), protocol };
        // A session not on record is closed before its first call (a queued record lands after recovery).
        void appendOrQueue(this.opts.audit, record, this.opts.logger).then((kept) => {
          if (kept.state !== 'written') void this.close(id);
        });
      },
      onsessionclosed: (id) => {
        void this.forget(id, 'deleted');
      },
    });
    const activity = { busy: 0 };
    const server = this.opts.makeServer(
      identity,
      () => sessionId,
      (delta) => {
        activity.busy += delta;
        // Idle time counts from the end of the last call, not from its start.
        const s = this.sessions.get(sessionId);
        if (s) s.lastSeen = Date.now();
      },
      protocol,
    );
    transport.onclose = () => {
      if (sessionId !== '') void this.forget(sessionId, 'closed');
    };
    await server.connect(transport);
    this.opts.tracing?.traceTransport(transport, { id: () => sessionId, agent: identity.agent, via: identity.via });
    return { transport, server };
  }

  private async forget(id: string, reason: string): Promise<void> {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    this.release(quotaKey(s.identity));
    await s.server.close().catch(() => undefined);
    await appendOrQueue(this.opts.audit, { event: 'session.closed', agent: s.identity.agent, session: id, reason }, this.opts.logger);
  }

  async close(id: string, reason = 'closed'): Promise<void> {
    const s = this.sessions.get(id);
    if (!s) return;
    // Forgotten first (synchronously), so the transport's onclose does not record it as plainly 'closed'.
    const forgotten = this.forget(id, reason);
    await s.transport.close().catch(() => undefined);
    await forgotten;
  }

  /** Closes every session that came in on a sandbox's socket (its sandbox session ended). */
  async closeSandbox(sandbox: string): Promise<void> {
    const ids = [...this.sessions.values()].filter((s) => s.identity.via === 'sandbox' && s.identity.sandbox === sandbox).map((s) => s.id);
    await Promise.all(ids.map((id) => this.close(id, 'sandbox-closed')));
    // Its 2026-07-28 calls parked for input go with it.
    this.stateless?.parked.closePrincipal(quotaKey({ agent: '', via: 'sandbox', sandbox }), 'the sandbox session ended');
    this.refusing.delete(quotaKey({ agent: '', via: 'sandbox', sandbox }));
  }

  private sweep(idleMs: number, unusedMs: number): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (s.activity.busy > 0) continue;
      if (s.lastSeen < now - idleMs) void this.close(s.id, 'idle');
      else if (!s.used && s.lastSeen < now - unusedMs) void this.close(s.id, 'unused');
    }
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    this.stateless?.close();
    await Promise.all([...this.sessions.keys()].map((id) => this.close(id)));
  }
}
