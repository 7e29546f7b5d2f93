/**
 * Shared plumbing of the provider simulators: a Hono app served on
 * 127.0.0.1 port 0 that records every request exactly as it arrived (the raw
 * request target, before any URL normalisation), with one-shot error injection.
 */
import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { serve, type HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';

export interface Recorded {
  method: string;
  /** Raw path as sent on the wire (no query), e.g. "/repos/octo/app/issues/1". */
  path: string;
  query: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: string;
  /** What the simulator answered (set once the answer is built; contract tests check it). */
  response?: Answer;
}

export interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
  /** True when a test's inject() gave the answer rather than a simulator route. */
  injected: boolean;
}

export interface Injection {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
  /** Only requests whose raw path matches (default: any). */
  path?: RegExp;
  /** How many requests it applies to (default 1). */
  times?: number;
}

export type SimEnv = { Bindings: HttpBindings };

export interface Sim {
  url: string;
  origin: string;
  requests: Recorded[];
  inject(i: Injection): void;
  /** Paths the simulator saw (for "never reached another route" assertions). */
  paths(): string[];
  reset(): void;
  close(): Promise<void>;
}

export function json(_c: Context, status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers } });
}

/** Builds the app with recording and injection in front of `routes`, then serves it. */
export async function startSim(basePath: string, routes: (app: Hono<SimEnv>, sim: () => Sim) => void): Promise<Sim> {
  const requests: Recorded[] = [];
  const injections: Injection[] = [];
  const app = new Hono<SimEnv>();
  let self: Sim | undefined;
  app.use('*', async (c, next) => {
    const incoming = c.env.incoming as IncomingMessage;
    const raw = incoming.url ?? '';
    const q = raw.indexOf('?');
    const body = c.req.method === 'GET' ? '' : await c.req.raw.clone().text();
    const rec: Recorded = {
      method: c.req.method,
      path: q >= 0 ? raw.slice(0, q) : raw,
      query: q >= 0 ? raw.slice(q + 1) : '',
      authorization: c.req.header('authorization'),
      contentType: c.req.header('content-type'),
      body,
    };
    requests.push(rec);
    const answered = async (res: Response, injected: boolean) => {
      rec.response = { status: res.status, contentType: res.headers.get('content-type') ?? undefined, body: await res.clone().text(), injected };
      return res;
    };
    const inj = injections.find((i) => !i.path || i.path.test(raw));
    if (inj) {
      inj.times = (inj.times ?? 1) - 1;
      if (inj.times <= 0) injections.splice(injections.indexOf(inj), 1);
      const text = typeof inj.body === 'string' ? inj.body : JSON.stringify(inj.body);
      return answered(new Response(text, { status: inj.status, headers: { 'content-type': typeof inj.body === 'string' ? 'text/plain' : 'application/json; charset=utf-8', ...inj.headers } }), true);
    }
    await next();
    await answered(c.res, false);
    return undefined;
  });
  const sub = new Hono<SimEnv>();
  routes(sub, () => self as Sim);
  app.route(basePath === '' ? '/' : basePath, sub);
  app.notFound((c) => json(c, 404, { message: 'Not Found', simulator: 'no such route' }));

  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((r) => (server.listening ? r() : server.once('listening', () => r())));
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;
  self = {
    url: `${origin}${basePath}`,
    origin,
    requests,
    inject: (i) => injections.push(i),
    paths: () => requests.map((r) => r.path),
    reset: () => {
      requests.length = 0;
      injections.length = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => r());
      }),
  };
  return self;
}
