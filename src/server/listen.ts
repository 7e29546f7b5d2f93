import type { Server as HttpServer } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';

/**
 * Connection limits of every listener that serves /mcp (TCP and sandbox sockets).
 * Node's defaults leave a request body unbounded in time (requestTimeout 0 here
 * before) and connections unbounded in number: a slowloris client could hold
 * sockets forever.
 */
export interface HttpLimits {
  /** The request's headers must be complete within this (408 and close otherwise). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this. Response streams (SSE) are not limited. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. Longer than clients' own (undici: 4 s), so the client closes first and never reuses a socket the server is closing. */
  keepAliveTimeoutMs: number;
  /** Connections beyond this are refused at accept. */
  maxConnections: number;
  /** How often the timeouts above are checked (Node's default is 30 s, which would let a slow client stay that much longer). */
  checkIntervalMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  maxConnections: 4096,
  checkIntervalMs: 1_000,
};

export function createHttpServer(fetch: (req: Request, env: unknown) => Response | Promise<Response>, limits: Partial<HttpLimits> = {}): HttpServer {
  const l = { ...DEFAULT_HTTP_LIMITS, ...limits };
  const server = createAdaptorServer({
    fetch: (req: Request, env: unknown) => fetch(req, env),
    serverOptions: {
      headersTimeout: l.headersTimeoutMs,
      // Node requires requestTimeout >= headersTimeout when both are set.
      requestTimeout: Math.max(l.requestTimeoutMs, l.headersTimeoutMs),
      keepAliveTimeout: l.keepAliveTimeoutMs,
      connectionsCheckingInterval: l.checkIntervalMs,
    },
  }) as HttpServer;
  server.maxConnections = l.maxConnections;
  return server;
}
