/**
 * The one way OAuth traffic leaves the gateway or the CLI: to an authorization
 * server or for metadata. No redirect is followed (a 3xx is an answer, as RFC
 * 8414 §3 and RFC 9728 §3 want), every body is capped as it arrives (metadata
 * and token answers are small; a huge one is refused, not buffered), and a
 * server that cannot be reached says so by name.
 */
import type { Dispatcher } from 'undici';
import { GatehouseError } from '../../errors.js';
import { undici } from '../../undici.js';

/** Bytes of one metadata, registration or token answer. */
export const OAUTH_BODY_BYTES = 256 * 1024;
export const OAUTH_TIMEOUT_MS = 15_000;

export interface OAuthFetchInit {
  method?: string;
  headers?: Record<string, string> | Headers;
  body?: string | URLSearchParams | null | undefined;
  signal?: AbortSignal | undefined;
}

/** fetch's shape (what oauth4webapi's customFetch and our discovery take). */
export type OAuthFetch = (url: string, init?: OAuthFetchInit) => Promise<Response>;

export interface OAuthFetchOptions {
  timeoutMs?: number;
  bodyBytes?: number;
  dispatcher?: Dispatcher;
}

/** A fetch for OAuth traffic: capped, no redirects, errors that name the server. */
export function oauthFetch(opts: OAuthFetchOptions = {}): OAuthFetch {
  const cap = opts.bodyBytes ?? OAUTH_BODY_BYTES;
  const timeoutMs = opts.timeoutMs ?? OAUTH_TIMEOUT_MS;
  return async (url, init = {}) => {
    const target = new URL(url);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    const body = init.body instanceof URLSearchParams ? init.body.toString() : (init.body ?? null);
    let res: Dispatcher.ResponseData;
    try {
      res = await undici().request(target, { method: (init.method ?? 'GET') as Dispatcher.HttpMethod, headers, body, signal, ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}) });
    } catch (e) {
      if (init.signal?.aborted) throw e;
      const code = (e as { code?: string }).code ?? (deadline.aborted ? 'timeout' : (e as Error).name);
      throw new GatehouseError('UPSTREAM_UNAVAILABLE', `${target.origin} could not be reached (${code})`, { cause: e, details: { origin: target.origin } });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const c of res.body as AsyncIterable<Buffer>) {
        size += c.length;
        if (size > cap) {
          res.body.destroy();
          throw new GatehouseError('OAUTH_REFUSED', `${target.origin} answered ${target.pathname} with more than ${cap / 1024} KiB; an OAuth answer is small, so it is refused`, { details: { origin: target.origin } });
        }
        chunks.push(c);
      }
    } catch (e) {
      if (e instanceof GatehouseError) throw e;
      throw new GatehouseError('UPSTREAM_UNAVAILABLE', `${target.origin} broke off its answer (${(e as { code?: string }).code ?? (e as Error).name})`, { cause: e });
    }
    const out = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (Array.isArray(v)) for (const x of v) out.append(k, x);
      else if (v !== undefined) out.set(k, v);
    }
    const nullBody = res.statusCode === 204 || res.statusCode === 205 || res.statusCode === 304 || (res.statusCode >= 100 && res.statusCode < 200);
    return new Response(nullBody ? null : Buffer.concat(chunks), { status: res.statusCode, headers: out });
  };
}
