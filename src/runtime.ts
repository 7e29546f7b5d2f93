import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import type { Server as HttpServer } from 'node:http';
import { JsonlAudit } from './audit/jsonl.js';
import type { AuditSink } from './audit/types.js';
import { Gateway } from './broker/gateway.js';
import { policyAuthorizer } from './broker/policy-gate.js';
import { createSessionServer } from './broker/session.js';
import type { Dirs } from './config/paths.js';
import { VERSION } from './config/paths.js';
import { GatehouseError } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { loadPolicies } from './policy/load.js';
import type { Policy } from './policy/types.js';
import { loadRegistry } from './registry/load.js';
import type { SecretStore } from './secrets/store.js';
import { StoreResolver } from './secrets/resolve.js';
import { createApp, type Authenticate } from './server/app.js';
import { allowedHosts, allowedOrigins } from './server/guards.js';
import { SessionManager } from './server/sessions.js';
import { loadTokenKeys, verifyToken, type TokenKeys } from './server/tokens.js';

export interface GatewayRuntimeOptions {
  dirs: Dirs;
  host?: string;
  port?: number;
  /** Extra Host header values (host:port) accepted, e.g. when behind a proxy. */
  allowedHosts?: string[];
  allowedOrigins?: string[];
  logger?: Logger;
  secrets?: SecretStore;
  maxBodyBytes?: number;
  /** How long start-up waits for upstreams before serving anyway. */
  upstreamWaitMs?: number;
  backoffMs?: number;
}

export interface RunningGateway {
  url: string;
  port: number;
  host: string;
  gateway: Gateway;
  keys: TokenKeys;
  sessions: SessionManager;
  audit: AuditSink;
  logger: Logger;
  close(graceMs?: number): Promise<void>;
}

export function bearerAuthenticator(keys: TokenKeys): Authenticate {
  return async (req) => {
    const h = req.headers.get('authorization');
    if (h === null) return { ok: false, description: 'a bearer token is required (gatehouse token mint --agent NAME)' };
    const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(h);
    if (!m?.[1]) return { ok: false, error: 'invalid_token', description: 'malformed Authorization header; expected "Bearer <token>"' };
    try {
      const t = await verifyToken(keys, m[1]);
      return { ok: true, identity: { agent: t.agent, via: 'token' } };
    } catch (e) {
      return { ok: false, error: 'invalid_token', description: e instanceof GatehouseError ? e.message : 'invalid token' };
    }
  };
}

/** Loads configuration, starts upstreams and serves /mcp on TCP. */
export async function startGateway(opts: GatewayRuntimeOptions): Promise<RunningGateway> {
  const logger = opts.logger ?? createLogger();
  const registry = loadRegistry(opts.dirs.registry);
  let policy: Policy = loadPolicies(opts.dirs.policies);
  const keys = await loadTokenKeys(opts.dirs.state);
  const audit = new JsonlAudit(join(opts.dirs.state, 'audit', 'audit.jsonl'));
  const { authorize, hidden } = policyAuthorizer({ policy: () => policy });
  const gateway = new Gateway({
    registry,
    baseDir: dirname(opts.dirs.registry),
    secrets: new StoreResolver(opts.secrets),
    authorize,
    hidden,
    audit,
    redact: (v) => v,
    logger,
    ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
  });
  await audit.append({ event: 'gateway.start', version: VERSION, connectors: registry.connectors.map((c) => c.name) });
  await gateway.start(opts.upstreamWaitMs);

  const sessions = new SessionManager({
    makeServer: (identity, id) => createSessionServer(gateway, { agent: identity.agent, id }),
    audit,
    logger,
  });
  const host = opts.host ?? '127.0.0.1';
  // The app needs the bound port (for Host/Origin checks), so it is plugged in after listen.
  let fetchApp: (req: Request, env: unknown) => Response | Promise<Response> = () => new Response(null, { status: 503 });
  const server = createAdaptorServer({ fetch: (req, env) => fetchApp(req, env) }) as HttpServer;
  server.headersTimeout = 30_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8931, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const app = createApp({
    sessions,
    authenticate: bearerAuthenticator(keys),
    hosts: allowedHosts(port, opts.allowedHosts),
    origins: allowedOrigins(port, opts.allowedOrigins),
    logger,
    protectedResource: true,
    ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
  });
  fetchApp = (req, env) => app.fetch(req, env as object);

  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}/mcp`,
    port,
    host,
    gateway,
    keys,
    sessions,
    audit,
    logger,
    close(graceMs = 10_000) {
      closed ??= (async () => {
        server.close();
        await gateway.close(graceMs);
        await sessions.closeAll();
        server.closeAllConnections();
        await audit.append({ event: 'gateway.stop' }).catch(() => undefined);
        await audit.close();
      })();
      return closed;
    },
  };
}
