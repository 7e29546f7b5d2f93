/**
 * `/metrics` (Prometheus text format) on the admin side: the control socket
 * (filesystem permissions are the authentication), the TCP listener behind
 * an admin token, or a listener of its own (`serve --metrics-listen
 * HOST:PORT`) that serves nothing else.
 */
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono, type Context } from 'hono';
import { GatehouseError } from '../errors.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import { allowedHosts, checkHost } from './guards.js';
import { createHttpServer, isWildcard, listenerAddresses } from './listen.js';
import { jsonRpcError } from './rpc-error.js';

/** GET /metrics: every series, as Prometheus scrapes them. */
export function metricsHandler(metrics: Pick<GatewayMetrics, 'render' | 'contentType'>) {
  return async (c: Context): Promise<Response> => c.body(await metrics.render(), 200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
}

/** `HOST:PORT` of --metrics-listen (`[::1]:9464` for IPv6), or a USAGE error saying what is wrong. */
export function parseListenAddress(text: string, flag = '--metrics-listen'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port > 65535) throw new GatehouseError('USAGE', `${flag} ${JSON.stringify(text)}: use HOST:PORT, e.g. 127.0.0.1:9464 ([::1]:9464 for IPv6; port 0 = any free port)`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/**
 * A listener that serves GET /metrics and nothing else, without a token:
 * what it shows (agent, connector and tool names, counts) is for whoever can
 * reach the address, so bind it where only the scraper can. Host is checked
 * (DNS rebinding: a web page must not read it through a name that resolves
 * to this machine) and a browser's cross-origin request (any Origin) is refused.
 */
export async function listenMetrics(host: string, wanted: number, metrics: Pick<GatewayMetrics, 'render' | 'contentType'>): Promise<{ server: HttpServer; port: number; url: string }> {
  let app: Hono | undefined;
  const server = createHttpServer((req) => (app ? app.fetch(req) : new Response(null, { status: 503 })));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(wanted, host, () => resolve());
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new GatehouseError('USAGE', `--metrics-listen: port ${wanted} on ${host} is in use; pick another (0 = any free port)`);
    if (code === 'EADDRNOTAVAIL') throw new GatehouseError('USAGE', `--metrics-listen: cannot bind ${host}: no such local address`);
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const hosts = allowedHosts(port, listenerAddresses(host, port));
  const a = new Hono();
  a.use('*', async (c, next) => {
    const verdict = checkHost(c.req.header('host'), hosts);
    if (!verdict.ok) return c.text(verdict.message, verdict.status);
    if (c.req.header('origin') !== undefined) return c.text('Forbidden: /metrics is not for browsers', 403);
    return next();
  });
  a.get('/metrics', metricsHandler(metrics));
  a.notFound(() => jsonRpcError(404, -32601, 'Not Found: this listener serves /metrics only'));
  app = a;
  const shown = isWildcard(host) ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return { server, port, url: `http://${shown}:${port}/metrics` };
}
