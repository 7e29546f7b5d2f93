import { randomUUID } from 'node:crypto';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';

export interface Identity {
  agent: string;
  /** How the agent proved who it is: a bearer token, or the sandbox session socket it came in on. */
  via: 'token' | 'sandbox';
}

export interface Session {
  id: string;
  identity: Identity;
  transport: WebStandardStreamableHTTPServerTransport;
  server: Server;
  lastSeen: number;
}

export interface SessionManagerOptions {
  makeServer: (identity: Identity, id: () => string) => Server;
  audit: AuditSink;
  logger: Logger;
  maxSessions?: number;
  idleMs?: number;
}

/** MCP sessions (Mcp-Session-Id) across all listeners, each bound to the identity that opened it. */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly opts: SessionManagerOptions;
  private readonly sweeper: NodeJS.Timeout;
  readonly maxSessions: number;

  constructor(opts: SessionManagerOptions) {
    this.opts = opts;
    this.maxSessions = opts.maxSessions ?? 1000;
    const idle = opts.idleMs ?? 30 * 60_000;
    this.sweeper = setInterval(() => this.sweep(idle), Math.min(idle, 60_000));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** A session by id, only for the identity that opened it (anyone else gets nothing: 404). */
  get(id: string, identity: Identity): Session | undefined {
    const s = this.sessions.get(id);
    if (!s || s.identity.agent !== identity.agent || s.identity.via !== identity.via) return undefined;
    s.lastSeen = Date.now();
    return s;
  }

  /** Creates the transport and server for a new session; the id exists once `initialize` succeeds. */
  async open(identity: Identity): Promise<WebStandardStreamableHTTPServerTransport> {
    let sessionId = '';
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessionId = id;
        this.sessions.set(id, { id, identity, transport, server, lastSeen: Date.now() });
        void this.opts.audit.append({ event: 'session.opened', agent: identity.agent, session: id, via: identity.via }).catch((e: unknown) => {
          this.opts.logger.error({ err: String(e) }, 'cannot audit session open; closing it');
          void this.close(id);
        });
      },
      onsessionclosed: (id) => {
        void this.forget(id, 'deleted');
      },
    });
    const server = this.opts.makeServer(identity, () => sessionId);
    transport.onclose = () => {
      if (sessionId !== '') void this.forget(sessionId, 'closed');
    };
    await server.connect(transport);
    return transport;
  }

  private async forget(id: string, reason: string): Promise<void> {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    await s.server.close().catch(() => undefined);
    await this.opts.audit.append({ event: 'session.closed', agent: s.identity.agent, session: id, reason }).catch(() => undefined);
  }

  async close(id: string): Promise<void> {
    const s = this.sessions.get(id);
    if (!s) return;
    await s.transport.close().catch(() => undefined);
    await this.forget(id, 'closed');
  }

  private sweep(idleMs: number): void {
    const cutoff = Date.now() - idleMs;
    for (const s of this.sessions.values()) if (s.lastSeen < cutoff) void this.close(s.id);
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.sessions.keys()].map((id) => this.close(id)));
  }
}
