import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Agent, Dispatcher } from 'undici';
import { GatehouseError } from '../errors.js';
import { undici } from '../undici.js';
import type { HttpConnector } from '../registry/schema.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { cappedEvents, readCapped } from './body-limit.js';
import { callContext } from './call-context.js';
import type { OAuthSession } from './oauth/session.js';

/** Connections to one HTTP upstream (calls beyond it wait for one). */
export const MAX_HTTP_CONNECTIONS = 128;

/** The connection pool of one HTTP upstream; its owner closes it when the upstream stops. */
export function httpDispatcher(connectTimeoutMs: number): Agent {
  return new (undici().Agent)({
    connect: { timeout: connectTimeoutMs },
    // An upstream that holds requests open (its pings answered, never acknowledged) holds at most this many fds.
    connections: MAX_HTTP_CONNECTIONS,
    keepAliveTimeout: 30_000,
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}

export interface HttpTransportDeps {
  /** The Upstream this transport belongs to: a call's own request is found by it (call-context.ts). */
  owner: object;
  /** The connector's connection pool, made on its first request (after the headers' secrets are rendered: a connector whose secret is missing never loads undici). */
  dispatcher: () => Agent;
  secrets: SecretResolver;
  connectTimeoutMs: number;
  /** Cap of a body that belongs to no call. */
  resultBytes: number;
  /** The login whose access token goes in Authorization (`oauth:` connectors; src/upstreams/oauth/). */
  oauth?: OAuthSession;
}

/**
 * The Streamable HTTP client transport of an `http` connector: its headers
 * rendered per request (a rotated secret takes effect without restart), no
 * request outside its origin, every body capped as it arrives, and a call's
 * own request ending with the call.
 */
export function httpTransport(c: HttpConnector, deps: HttpTransportDeps): Transport {
  return new StreamableHTTPClientTransport(new URL(c.url), { fetch: httpFetch(c, deps) });
}

/** The fetch of an `http` connector's transports (SDK v1 for 2025-11-25, v2 for 2026-07-28): see httpTransport. */
export function httpFetch(c: HttpConnector, deps: HttpTransportDeps): (url: string | URL, init?: RequestInit) => Promise<Response> {
  const { owner, dispatcher, secrets } = deps;
  return async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    for (const [k, v] of Object.entries(c.headers)) headers.set(k, await secrets.render(v, { connector: c.name, where: `header ${k}` }));
    const target = new URL(url);
    const base = new URL(c.url);
    if (target.origin !== base.origin) {
      throw new GatehouseError('UPSTREAM_PROTOCOL', `connector "${c.name}" tried to send a request to ${target.origin}, outside ${base.origin}`);
    }
    // undici.request, not fetch: headers and body leave in one write (fetch streams every body
    // chunked, in several), without fetch's per-call Request/Headers/AbortSignal objects; the
    // profile of a proxied call showed fetch as a quarter of the gateway's CPU. Like
    // redirect: 'error', a 3xx is never followed: it reaches the SDK as a failed response.
    const method = (init?.method ?? 'GET') as Dispatcher.HttpMethod;
    // A call's (or listing's) own request lives as long as the call: its end aborts the
    // request and closes the response stream (exchange.ts). The rest is the transport's.
    const scope = callContext.getStore();
    const exchange = scope?.owner === owner ? scope.exchange : undefined;
    const tie = exchange?.tie(method) ?? 'other';
    if (tie === 'ended') throw new DOMException(`connector "${c.name}": the request this stream belonged to has ended`, 'AbortError');
    const own = tie === 'own' ? exchange : undefined;
    // The call's trace context (W3C Trace Context over HTTP), unless the connector's own headers set one.
    if (own?.trace !== undefined) {
      if (!headers.has('traceparent')) headers.set('traceparent', own.trace.traceparent);
      if (own.trace.tracestate !== undefined && !headers.has('tracestate')) headers.set('tracestate', own.trace.tracestate);
    }
    // What is not a call's own request (answers to the upstream's requests, notifications, initialize, session
    // DELETE) gets the connect timeout to be answered: an upstream that never acknowledges cannot pile them up.
    // The standalone GET stream lives as long as the session, and a 2026-07-28 subscriptions/listen stream as long as it is wanted.
    const deadline = own || method === 'GET' || headers.get('mcp-method') === 'subscriptions/listen' ? undefined : AbortSignal.timeout(deps.connectTimeoutMs);
    const signal = own ? own.streamSignal : deadline && init?.signal ? AbortSignal.any([init.signal, deadline]) : (deadline ?? init?.signal ?? undefined);
    const send = async (): Promise<Dispatcher.ResponseData> => {
      try {
        return await undici().request(target, { method, headers: Object.fromEntries(headers), body: (init?.body ?? null) as string | null, signal, dispatcher: dispatcher() });
      } catch (e) {
        // fetch's error shape, so messages and classifyUpstreamError (cause.code) stay as they were.
        if (signal?.aborted) throw e;
        throw new TypeError('fetch failed', { cause: e });
      }
    };
    const oauth = deps.oauth;
    let token = oauth ? await oauth.token() : undefined;
    if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
    let res = await send();
    // A 401 to a token we held good (revoked, expired early): one refresh, one retry (RFC 6750 §3.1).
    if (oauth && token !== undefined && res.statusCode === 401) {
      await res.body.dump();
      token = await oauth.rejected(token);
      headers.set('authorization', `Bearer ${token}`);
      res = await send();
      if (res.statusCode === 401) {
        await res.body.dump();
        // The session is dead from here on: no refresh per call against a server that takes none (per-agent logins have no loginLost).
        throw oauth.refused('the server refused a freshly refreshed access token (HTTP 401)');
      }
    }
    const resHeaders = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (Array.isArray(v)) for (const x of v) resHeaders.append(k, x);
      else if (v !== undefined) resHeaders.set(k, v);
    }
    const status = res.statusCode;
    if (status === 204 || status === 205 || status === 304 || method === 'HEAD') {
      await res.body.dump();
      return new Response(null, { status, headers: resHeaders });
    }
    // Every body is capped as it arrives (body-limit.ts): a stream per event, anything else whole.
    const announced = Number(resHeaders.get('content-length') ?? Number.NaN);
    const cap = {
      limit: own?.limit ?? { bytes: deps.resultBytes, key: 'resultBytes' as const },
      connector: c.name,
      announced: Number.isFinite(announced) ? announced : undefined,
      ...(own ? { onOver: (e: GatehouseError) => own.fail(e) } : {}),
    };
    if ((resHeaders.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream')) {
      // An async iterable is a valid body for undici's Response (not in lib.dom's BodyInit).
      return new Response(cappedEvents(res.body, cap) as unknown as ReadableStream<Uint8Array>, { status, headers: resHeaders });
    }
    return new Response(await readCapped(res.body, cap), { status, headers: resHeaders });
  };
}
