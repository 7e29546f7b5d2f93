import type { Pool } from 'undici';
import { undici } from '../undici.js';
import { GatehouseError } from '../errors.js';
import { ProviderError, retryAfterMs, sanitize, type ErrorContext, type ResponseFacts } from './errors.js';

export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export interface RestClientOptions {
  /** e.g. https://api.github.com, https://ghe.example.com/api/v3, https://slack.com/api */
  baseUrl: string;
  connectTimeoutMs: number;
  /** Per request: time to the response headers, and between body chunks. */
  requestTimeoutMs: number;
  maxResponseBytes?: number;
  /** Content-Type of JSON request bodies (Slack wants the charset). */
  jsonContentType?: string;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RestRequest {
  method: 'GET' | 'POST' | 'PUT';
  /** Already-encoded path below the base URL, starting with '/'. */
  path: string;
  query?: Query;
  json?: unknown;
  headers: Record<string, string>;
  signal?: AbortSignal;
  /**
   * Read a 2xx body as bytes (a Buffer, never parsed), keeping at most this
   * many and dropping the rest (`truncated`), instead of failing past the cap.
   */
  bytes?: number;
}

export interface RestResponse extends ResponseFacts {
  headers: Record<string, string | string[] | undefined>;
  /** Set when `bytes` cut the body short. */
  truncated?: boolean;
}

/**
 * One keep-alive connection pool to a provider's origin (undici Pool), with
 * connect/headers/body timeouts, a capped body read and no redirects (a
 * redirect could carry the credential elsewhere).
 */
export class RestClient {
  readonly origin: string;
  readonly basePath: string;
  private readonly pool: Pool;
  private readonly maxBytes: number;
  private readonly jsonType: string;

  constructor(opts: RestClientOptions) {
    const base = new URL(opts.baseUrl);
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new GatehouseError('CONFIG_INVALID', `base URL ${opts.baseUrl} is not http(s)`);
    this.origin = base.origin;
    this.basePath = base.pathname.replace(/\/+$/, '');
    this.maxBytes = opts.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    this.jsonType = opts.jsonContentType ?? 'application/json';
    this.pool = new (undici().Pool)(this.origin, {
      connections: 8,
      connect: { timeout: opts.connectTimeoutMs },
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  /** The request target (path and query) for a path below the base. */
  target(path: string, query: Query = {}): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    const s = qs.toString();
    return `${this.basePath}${path}${s === '' ? '' : `?${s}`}`;
  }

  /**
   * The path (below the base) of an absolute URL a provider handed back (a
   * Link header's next page), or undefined when it points anywhere else:
   * the credential is only ever sent to the configured origin and base path.
   */
  relativePath(absolute: string): { path: string; search: string } | undefined {
    let u: URL;
    try {
      u = new URL(absolute);
    } catch {
      return undefined;
    }
    if (u.origin !== this.origin || u.username !== '' || u.password !== '') return undefined;
    if (this.basePath !== '' && !u.pathname.startsWith(`${this.basePath}/`)) return undefined;
    const path = u.pathname.slice(this.basePath.length);
    if (/(?:^|\/)\.{1,2}(?:\/|$)|%2e|%2f|%5c/i.test(path)) return undefined;
    return { path, search: u.search };
  }

  async send(req: RestRequest, rawTarget?: string): Promise<RestResponse> {
    const headers: Record<string, string> = { ...req.headers };
    let body: string | undefined;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers['content-type'] = this.jsonType;
    }
    const res = await this.pool.request({
      method: req.method,
      path: rawTarget ?? this.target(req.path, req.query),
      headers,
      ...(body !== undefined ? { body } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    const keep = req.bytes !== undefined && res.statusCode >= 200 && res.statusCode < 300 ? Math.min(req.bytes, this.maxBytes) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      if (keep !== undefined && size + buf.length > keep) {
        chunks.push(buf.subarray(0, keep - size));
        res.body.destroy();
        return { status: res.statusCode, headers: res.headers as RestResponse['headers'], body: Buffer.concat(chunks), truncated: true };
      }
      size += buf.length;
      if (size > this.maxBytes) {
        res.body.destroy();
        throw new ProviderError('protocol', `the response is larger than ${this.maxBytes} bytes; ask for fewer items`);
      }
      chunks.push(buf);
    }
    if (keep !== undefined) return { status: res.statusCode, headers: res.headers as RestResponse['headers'], body: Buffer.concat(chunks), truncated: false };
    const text = Buffer.concat(chunks).toString('utf8');
    const type = String(res.headers['content-type'] ?? '');
    let parsed: unknown = text;
    if (/\bjson\b/i.test(type) && text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: res.statusCode, headers: res.headers as RestResponse['headers'], body: parsed };
  }

  /**
   * Ends the pool without waiting for requests still in flight: once the
   * connector (or `connector test`) is done, no caller waits for them, and a
   * site trickling its answer must not hold the close until their deadline.
   */
  async close(): Promise<void> {
    await this.pool.destroy().catch(() => undefined);
  }
}

/**
 * Remembers, per rate-limit bucket, until when a provider said not to call
 * again (a 429's Retry-After, or "remaining 0" with a reset time), so a
 * limited connector fails fast with when to retry instead of hammering.
 */
export class RateGate {
  private readonly until = new Map<string, number>();
  constructor(private readonly now: () => number = Date.now) {}

  /** Throws ProviderError('rate_limited') while the bucket is blocked. */
  check(bucket: string, ctx: ErrorContext): void {
    const t = this.until.get(bucket);
    if (t === undefined) return;
    const left = t - this.now();
    if (left <= 0) {
      this.until.delete(bucket);
      return;
    }
    const s = Math.ceil(left / 1000);
    throw new ProviderError(
      'rate_limited',
      `${ctx.provider} rate limit is exhausted for this connector; retry in ${s} s (after ${new Date(t).toISOString()}). The request was not sent.`,
      { retryAfterMs: left },
    );
  }

  /** Learns from a response's rate-limit headers. */
  observe(bucket: string, res: ResponseFacts): void {
    const now = this.now();
    const remaining = res.headers['x-ratelimit-remaining'];
    const limited = res.status === 429 || String(remaining) === '0';
    if (!limited) return;
    const wait = retryAfterMs(res.headers, now) ?? (res.status === 429 ? 60_000 : undefined);
    if (wait !== undefined && wait > 0) this.until.set(bucket, now + Math.min(wait, 3_600_000));
  }

  block(bucket: string, ms: number): void {
    this.until.set(bucket, this.now() + Math.min(ms, 3_600_000));
  }
}

/** Turns a network-level failure (undici UND_ERR_*, ECONNREFUSED...) into a ProviderError. */
export function networkFailure(e: unknown, ctx: ErrorContext): ProviderError {
  if (e instanceof ProviderError) return e;
  const err = e as { name?: string; code?: unknown; message?: string; cause?: { code?: unknown } };
  if (err?.name === 'AbortError' || err?.code === 'UND_ERR_ABORTED') return new ProviderError('unavailable', `the call to ${ctx.provider} was cancelled`);
  // AbortSignal.timeout aborts with a DOMException named TimeoutError (its numeric legacy `code` says nothing).
  const code = typeof err?.code === 'string' ? err.code : typeof err?.cause?.code === 'string' ? err.cause.code : 'error';
  const timeout = err?.name === 'TimeoutError' || /TIMEOUT/.test(code);
  return new ProviderError(
    'unavailable',
    `${ctx.provider} could not be reached (${timeout ? 'timed out' : sanitize(code, ctx.scrub)}). Check the connector's baseUrl and the network, then try again.`,
  );
}
