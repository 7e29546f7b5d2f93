import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../errors.js';
import type { Logger } from '../log.js';
import { createApp, type ModelRoutes } from '../server/app.js';
import { ensureRunDir } from '../server/control.js';
import { allowedHosts, allowedOrigins } from '../server/guards.js';
import { createHttpServer, type HttpLimits } from '../server/listen.js';
import type { SessionManager } from '../server/mcp-sessions.js';
import { AGENT_NAME } from '../server/tokens.js';
import { appendOrQueue } from '../audit/append-or-queue.js';
import type { EgressIdentity, EgressProxy } from '../egress/proxy.js';
import type { AuditSink } from '../audit/types.js';

export interface SandboxSession {
  id: string;
  agent: string;
  /** The unix socket the launcher's relay connects to; connections on it are this agent. */
  socketPath: string;
  /** Port of the relay inside the sandbox. */
  port: number;
  /** What the agent uses inside the sandbox. */
  url: string;
  /** The egress proxy is reachable on the same socket (`gatehouse run --egress`): HTTP_PROXY inside. */
  egress: boolean;
}

export interface SandboxSessionsDeps {
  stateDir: string;
  sessions: SessionManager;
  audit: AuditSink;
  logger: Logger;
  maxBodyBytes?: number;
  /** Model calls (/llm/<provider>/…) through the same socket. */
  llm?: ModelRoutes;
  /** Connection limits of the session sockets: the agent is untrusted (a slowloris from inside the box must not hold the gateway). */
  http?: Partial<HttpLimits>;
  /** The egress proxy, for sessions opened with `egress: true` or whose agent the policy gives an egress rule. */
  egress?: EgressProxy;
  /** Whether the policy in force has an egress rule (allow or ask) for this agent. */
  egressFor?: (agent: string) => boolean;
  /** Told when a session has closed (its session-scoped grants end). */
  onClosed?: (id: string) => void;
}

/**
 * One unix socket per sandbox session, in its own 0700 directory. No token is
 * involved: whoever connects on the socket is the agent it was made for, and
 * only the launcher's relay (outside the agent's view) can reach it.
 */
export class SandboxSessions {
  private readonly open = new Map<string, { session: SandboxSession; server: HttpServer; dir: string; closeTunnels: () => void }>();
  private readonly closing = new Map<string, Promise<void>>();
  constructor(private readonly deps: SandboxSessionsDeps) {}

  list(): SandboxSession[] {
    return [...this.open.values()].map((o) => o.session);
  }

  async create(agent: string, port: number, opts: { egress?: boolean } = {}): Promise<SandboxSession> {
    if (!AGENT_NAME.test(agent)) throw new GatehouseError('USAGE', `invalid agent name ${JSON.stringify(agent)}: use 1-64 letters, digits, '.', '_', '@' or '-'`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new GatehouseError('USAGE', 'port must be 1-65535');
    const id = randomBytes(6).toString('hex');
    const dir = join(ensureRunDir(this.deps.stateDir), `s-${id}`);
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700);
    const socketPath = join(dir, 'mcp.sock');
    const app = createApp({
      sessions: this.deps.sessions,
      authenticate: async () => ({ ok: true, identity: { agent, via: 'sandbox', sandbox: id } }),
      hosts: allowedHosts(port),
      origins: allowedOrigins(port),
      logger: this.deps.logger,
      ...(this.deps.llm ? { llm: this.deps.llm } : {}),
      ...(this.deps.maxBodyBytes !== undefined ? { maxBodyBytes: this.deps.maxBodyBytes } : {}),
    });
    if (opts.egress === true && this.deps.egress === undefined) throw new GatehouseError('SANDBOX_FAILED', 'this gateway has no egress proxy');
    const egress = opts.egress === true || this.deps.egressFor?.(agent) === true;
    const server = createHttpServer((req, env) => app.fetch(req, env as object), this.deps.http, 'one-agent');
    const closeTunnels = egress && this.deps.egress !== undefined ? routeEgress(server, this.deps.egress, { caller: { kind: 'agent', name: agent }, sandbox: id }) : () => undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => resolve());
      });
      chmodSync(socketPath, 0o600);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw new GatehouseError('SANDBOX_FAILED', `cannot open the session socket ${socketPath}: ${(e as Error).message}`);
    }
    const session: SandboxSession = { id, agent, socketPath, port, url: `http://127.0.0.1:${port}/mcp`, egress: egress && this.deps.egress !== undefined };
    this.open.set(id, { session, server, dir, closeTunnels });
    try {
      await this.deps.audit.append({ event: 'sandbox.opened', agent, sandbox: id, port, egress: session.egress });
    } catch (e) {
      // Fail closed: no sandbox whose opening is not on record.
      this.deps.logger.error({ err: String(e) }, 'cannot audit a sandbox session; closing it');
      await this.close(id);
      throw new GatehouseError('AUDIT_UNAVAILABLE', `cannot record the sandbox session (${(e as Error).message}); it was not opened`);
    }
    return session;
  }

  /** Closes a sandbox session; a second caller (the lease dropping, then DELETE) waits for the same close. */
  async close(id: string): Promise<boolean> {
    const running = this.closing.get(id);
    if (running) return running.then(() => true);
    const o = this.open.get(id);
    if (!o) return false;
    this.open.delete(id);
    const done = this.shut(id, o).finally(() => this.closing.delete(id));
    this.closing.set(id, done);
    await done;
    return true;
  }

  private async shut(id: string, o: { session: SandboxSession; server: HttpServer; dir: string; closeTunnels: () => void }): Promise<void> {
    // The sandbox is gone: so are the MCP sessions that came in on its socket (they would otherwise hold quota until idle).
    await this.deps.sessions.closeSandbox(id);
    await new Promise<void>((resolve) => {
      o.server.close(() => resolve());
      o.server.closeAllConnections();
      o.closeTunnels();
    });
    rmSync(o.dir, { recursive: true, force: true });
    this.deps.onClosed?.(id);
    await appendOrQueue(this.deps.audit, { event: 'sandbox.closed', agent: o.session.agent, sandbox: id }, this.deps.logger);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.open.keys(), ...this.closing.keys()].map((id) => this.close(id)));
  }
}

/**
 * The session socket also carries the agent's egress: a CONNECT request, or a
 * request in absolute form (`GET http://host/…`, what a client sends to a
 * proxy), goes to the egress proxy as this sandbox's agent; every other
 * request is MCP (or a model call) as before. Without this, CONNECT is
 * refused by Node and an absolute-form request fails the Host check.
 */
function routeEgress(server: HttpServer, proxy: EgressProxy, who: EgressIdentity): () => void {
  const mcp = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(req.url ?? '')) return proxy.request(req, res, who);
    for (const l of mcp) l.call(server, req, res);
  });
  // A CONNECT's socket leaves the HTTP server (closeAllConnections no longer sees it): this session closes its tunnels itself.
  const tunnels = new Set<Duplex>();
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    proxy.connect(req, socket, head, who);
  });
  return () => {
    for (const t of tunnels) t.destroy();
    tunnels.clear();
  };
}
