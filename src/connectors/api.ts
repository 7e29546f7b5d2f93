import { httpFailure, ProviderError, type ErrorContext, type ProviderName } from './errors.js';
import { networkFailure, RateGate, type RestClient, type RestRequest, type RestResponse } from './http.js';

export interface Credential {
  headers: Record<string, string>;
  /** The credential's values, scrubbed from any provider text that is shown. */
  scrub: string[];
}

export interface ProviderApiOptions {
  provider: ProviderName;
  connector: string;
  /** Secret names behind the credential (for "how to fix" messages). */
  secrets: string[];
  client: RestClient;
  /** Rendered per request, after policy allowed the call: a rotated secret applies at once. */
  credential: () => Promise<Credential>;
  headers: Record<string, string>;
  /** A further check of a 2xx response (Slack answers errors with 200 and ok:false). */
  check?: (res: RestResponse, ctx: ErrorContext) => ProviderError | undefined;
}

export type ApiRequest = Omit<RestRequest, 'headers'> & {
  /** Rate-limit bucket: provider limits are per resource (GitHub search vs core) or per method (Slack). */
  bucket: string;
  /** A media type other than the connector's default (GitHub's raw file contents). */
  accept?: string;
};

/** An authenticated provider client: rate-limit gate → credential → request → error mapping. */
export class ProviderApi {
  readonly gate = new RateGate();
  constructor(readonly opts: ProviderApiOptions) {}

  get client(): RestClient {
    return this.opts.client;
  }

  get errorContext(): ErrorContext {
    return { provider: this.opts.provider, connector: this.opts.connector, secrets: this.opts.secrets };
  }

  /** Sends one request; a non-2xx answer (or a failed `check`) throws ProviderError. `rawTarget` is a pre-checked next-page target. */
  async request(req: ApiRequest, rawTarget?: string): Promise<RestResponse> {
    const base = this.errorContext;
    this.gate.check(req.bucket, base);
    const cred = await this.opts.credential();
    const ctx: ErrorContext = { ...base, scrub: cred.scrub, path: req.path };
    let res: RestResponse;
    try {
      const { bucket: _bucket, accept, ...rest } = req;
      res = await this.opts.client.send({ ...rest, headers: { ...this.opts.headers, ...(accept !== undefined ? { accept } : {}), ...cred.headers } }, rawTarget);
    } catch (e) {
      throw networkFailure(e, ctx);
    }
    this.gate.observe(req.bucket, res);
    const bad = res.status < 200 || res.status >= 300 ? httpFailure(res, ctx) : this.opts.check?.(res, ctx);
    if (bad) {
      // Told to wait: later calls fail fast until then instead of hammering the provider.
      if (bad.kind === 'rate_limited' && bad.retryAfterMs !== undefined) this.gate.block(req.bucket, bad.retryAfterMs);
      throw bad;
    }
    return res;
  }

  /**
   * The credential's values as rendered now, for `sanitize` on text a 2xx
   * answer echoes (a header such as X-OAuth-Scopes): errors are scrubbed in
   * `request`, successes are the caller's to scrub.
   */
  async scrub(): Promise<readonly string[]> {
    return (await this.opts.credential()).scrub;
  }

  async close(): Promise<void> {
    await this.opts.client.close();
  }
}

/** Base64 of `user:password` for HTTP Basic (RFC 7617). */
export function basic(user: string, password: string): string {
  return Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
}

export { ProviderError };
