/**
 * Provider failures → tool errors an agent (and its human) can act on.
 * Pure: a response's status, a few headers and its parsed body in; a
 * message out. Never a header value, never a credential, and provider text
 * only after `sanitize`.
 */
import { GatehouseError, type ErrorCode } from '../errors.js';

export type FailureKind = 'auth' | 'forbidden' | 'not_found' | 'moved' | 'gone' | 'too_large' | 'conflict' | 'invalid' | 'rate_limited' | 'unavailable' | 'protocol' | 'args' | 'secret';

/** Each kind of provider failure as a gateway error code (ERROR_TABLE maps it further). */
export const FAILURE_CODE: Readonly<Record<FailureKind, ErrorCode>> = {
  auth: 'UPSTREAM_ERROR',
  forbidden: 'UPSTREAM_ERROR',
  not_found: 'NOT_FOUND',
  /** A redirect the connector does not follow (renamed repository, a sign-on page in front of the API). */
  moved: 'NOT_FOUND',
  /** 410: deleted, or an endpoint the provider removed. */
  gone: 'NOT_FOUND',
  /** The provider will not serve something this large through its API. */
  too_large: 'UPSTREAM_ERROR',
  /** 409: the change clashes with the resource's current state (an empty repository, a concurrent update), not with the arguments. */
  conflict: 'UPSTREAM_ERROR',
  invalid: 'ARGS_INVALID',
  args: 'ARGS_INVALID',
  rate_limited: 'RATE_LIMITED',
  unavailable: 'UPSTREAM_UNAVAILABLE',
  protocol: 'UPSTREAM_PROTOCOL',
  secret: 'SECRET_MISSING',
};

/** A provider's failure: a GatehouseError whose code follows its kind; the kind stays for the tool result. */
export class ProviderError extends GatehouseError {
  readonly kind: FailureKind;
  readonly status: number | undefined;
  /** For rate limits: how long until a retry may succeed. */
  readonly retryAfterMs: number | undefined;
  constructor(kind: FailureKind, message: string, opts: { status?: number; retryAfterMs?: number } = {}) {
    super(FAILURE_CODE[kind], message, { details: { kind, ...(opts.status !== undefined ? { status: opts.status } : {}) } });
    this.name = 'ProviderError';
    this.kind = kind;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

export type ProviderName = 'GitHub' | 'Slack' | 'Jira';

export interface ErrorContext {
  provider: ProviderName;
  connector: string;
  /** Secret names the connector's credential comes from (for the fix). */
  secrets: readonly string[];
  /** Credential values to scrub from any provider text (defence in depth). */
  scrub?: readonly string[];
  /** The request's path below the base URL (what the answer is about: a repository, an issue, the API itself). */
  path?: string;
  now?: number;
}

export interface ResponseFacts {
  status: number;
  /** Lower-case header names. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: unknown;
}

const MAX_DETAIL = 300;
// Shapes of well-known credentials, removed wherever provider text echoes one.
const TOKEN_SHAPES = /\b(?:gh[pousr]_[A-Za-z0-9_]{10,}|github_pat_[A-Za-z0-9_]{10,}|xox[abeprs]-[A-Za-z0-9-]{6,}|ATATT[A-Za-z0-9_=-]{10,})|(?:Bearer|Basic|token)\s+[A-Za-z0-9._~+/=-]{8,}/g;

/** Provider text made safe to show: no control characters, no credential, bounded length. */
export function sanitize(text: string, scrub: readonly string[] = []): string {
  let t = text;
  for (const s of scrub) if (s.length >= 4) t = t.split(s).join('[redacted]');
  t = t.replace(TOKEN_SHAPES, '[redacted]').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return t.length > MAX_DETAIL ? `${t.slice(0, MAX_DETAIL)}…` : t;
}

export function header(headers: ResponseFacts['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Milliseconds until a retry may succeed, from `Retry-After` (seconds or an
 * HTTP date, RFC 9110 §10.2.3) or GitHub's `x-ratelimit-reset` (epoch seconds)
 * when `x-ratelimit-remaining` is 0. Undefined when the response says nothing.
 */
export function retryAfterMs(headers: ResponseFacts['headers'], now = Date.now()): number | undefined {
  const ra = header(headers, 'retry-after');
  if (ra !== undefined) {
    if (/^\d{1,9}$/.test(ra.trim())) return Number(ra.trim()) * 1000;
    const at = Date.parse(ra);
    if (!Number.isNaN(at)) return Math.max(0, at - now);
  }
  const remaining = header(headers, 'x-ratelimit-remaining');
  const reset = header(headers, 'x-ratelimit-reset');
  if (remaining !== undefined && Number(remaining) === 0 && reset !== undefined && /^\d{1,12}$/.test(reset)) {
    return Math.max(0, Number(reset) * 1000 - now);
  }
  return undefined;
}

/** The provider's own explanation, from the documented error body shapes. */
export function providerDetail(provider: ProviderName, body: unknown): string {
  if (typeof body === 'string') return body;
  if (body === null || typeof body !== 'object') return '';
  const b = body as Record<string, unknown>;
  const parts: string[] = [];
  if (provider === 'GitHub') {
    // https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
    if (typeof b.message === 'string') parts.push(b.message);
    if (Array.isArray(b.errors)) {
      for (const e of b.errors.slice(0, 5)) {
        if (typeof e === 'string') parts.push(e);
        else if (e && typeof e === 'object') {
          const o = e as Record<string, unknown>;
          const msg = typeof o.message === 'string' ? o.message : [o.resource, o.field, o.code].filter((x) => typeof x === 'string').join(' ');
          if (msg !== '') parts.push(msg);
        }
      }
    }
  } else if (provider === 'Jira') {
    // https://developer.atlassian.com/cloud/jira/platform/rest/v3/intro/#status-codes
    if (Array.isArray(b.errorMessages)) parts.push(...b.errorMessages.filter((m): m is string => typeof m === 'string').slice(0, 5));
    if (b.errors && typeof b.errors === 'object') {
      for (const [k, v] of Object.entries(b.errors as Record<string, unknown>).slice(0, 5)) if (typeof v === 'string') parts.push(`${k}: ${v}`);
    }
    if (parts.length === 0 && typeof b.message === 'string') parts.push(b.message);
  } else {
    if (typeof b.error === 'string') parts.push(b.error);
    if (typeof b.needed === 'string') parts.push(`needed scope: ${b.needed}`);
    if (typeof b.provided === 'string') parts.push(`token has: ${b.provided}`);
  }
  return parts.join('; ');
}

/**
 * A redirect's `Location` made safe to show: http(s) only, without user info,
 * query or fragment (a download URL carries its token in the query), then
 * `sanitize`d. A path on the provider's own host ("/x") stays a path; anything
 * that leads elsewhere ("//host", "/\\host", an absolute URL) shows the origin it
 * really leads to, as a URL parser reads it. Undefined when there is nothing
 * safe to show (another scheme, or a path relative to the request's own).
 */
export function safeLocation(value: string | undefined, scrub: readonly string[] = []): string | undefined {
  const raw = value?.trim();
  if (raw === undefined || raw === '') return undefined;
  let u: URL;
  try {
    u = new URL(raw, SENTINEL_BASE);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  // A path on the same host stays a path; anything else ("//evil", "/\\evil", "https://…") shows its real origin.
  const sameHost = u.origin === SENTINEL_BASE && raw.startsWith('/');
  if (u.origin === SENTINEL_BASE && !sameHost) return undefined; // relative to the request's own path, which is not shown
  const shown = sanitize(sameHost ? u.pathname : `${u.origin}${u.pathname}`, scrub);
  return shown === '' ? undefined : shown;
}

/** A base no answer can name: a Location resolved against it and still on it was a path on the provider's own host. */
const SENTINEL_BASE = 'https://relative.invalid';

/** GitHub's `errors[].code` values (https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api). */
function githubErrorCodes(body: unknown): string[] {
  const errors = body && typeof body === 'object' ? (body as Record<string, unknown>).errors : undefined;
  if (!Array.isArray(errors)) return [];
  return errors.flatMap((e) => {
    const code = e && typeof e === 'object' ? (e as Record<string, unknown>).code : undefined;
    return typeof code === 'string' ? [code] : [];
  });
}

/** A 3xx: the connector never follows one (the credential would go along), so it says where it pointed. */
function redirected(res: ResponseFacts, ctx: ErrorContext, said: string): ProviderError {
  const P = ctx.provider;
  const to = safeLocation(header(res.headers, 'location'), ctx.scrub);
  const where = to === undefined ? '' : ` New location: ${to}.`;
  const permanent = res.status === 301 || res.status === 308;
  // GitHub answers 301 (and 302/307 for some endpoints) for a renamed or transferred repository.
  const why =
    P === 'GitHub' && ctx.path?.startsWith('/repos/') === true
      ? `The repository was renamed or transferred${permanent ? '' : ' (a temporary redirect)'}: use its new owner/name (GitHub names it by id in the new location; its page on github.com shows the new name).`
      : `Check the connector's baseUrl: a proxy or a single sign-on page may stand in front of the ${P} API.`;
  return new ProviderError('moved', `${P} ${permanent ? 'says this moved permanently' : 'redirected this request'} (${said}).${where} ${why} The connector does not follow redirects, so the credential is never sent elsewhere.`, { status: res.status });
}

function gone(ctx: ErrorContext, said: string, status: number): ProviderError {
  const P = ctx.provider;
  const why =
    P === 'GitHub'
      ? /^\/repos\/[^/]+\/[^/]+\/issues(\/|$)/.test(ctx.path ?? '')
        ? 'The issue was deleted, or issues are disabled for this repository.'
        : 'It was deleted, or GitHub no longer offers that endpoint.'
      : P === 'Jira'
        ? `It was deleted, or this Jira site no longer offers that endpoint (Jira Cloud removed /rest/api/2/search and /rest/api/3/search). If every call fails so, check deployment: cloud | datacenter in ${ctx.connector}'s registry file.`
        : 'Slack retired this method or the item was deleted.';
  return new ProviderError('gone', `${P} says this is gone (${said}). ${why}`, { status });
}

/** 406: the provider would not answer in the form asked. */
function notAcceptable(ctx: ErrorContext, said: string): ProviderError {
  const P = ctx.provider;
  // GitHub answers 406 on GET /repos/{owner}/{repo}/pulls/{pull_number} when a pull request's diff is too large or too slow to generate.
  if (P === 'GitHub') {
    return new ProviderError(
      'too_large',
      `GitHub would not give this in the form asked (${said}): for a pull request, its diff is too large or too slow to generate; otherwise the media type asked for is not one GitHub serves here. Open it on github.com, or clone the repository and compare the branches there.`,
      { status: 406 },
    );
  }
  return new ProviderError('protocol', `${P} would not answer in the media type the connector asked for (${said}). Check that the connector's baseUrl points at the ${P} API, not at a web page or a proxy.`, { status: 406 });
}

/** 409: the request clashes with the current state of what it touches. */
function conflict(ctx: ErrorContext, said: string): ProviderError {
  const P = ctx.provider;
  const why =
    P === 'GitHub'
      ? 'The repository is empty (nothing has been pushed yet), or the change conflicts with its current state (a Git conflict, or a change made at the same time). Check the repository on github.com, then try again.'
      : P === 'Jira'
        ? 'The issue could not be updated because of a conflicting update: someone or something changed it at the same time. Read it again (get_issue), then retry.'
        : 'It conflicts with the current state of the item. Read it again, then retry.';
  return new ProviderError('conflict', `${P} reports a conflict (${said}). ${why}`, { status: 409 });
}

/** 413: too large for the provider to take. */
function payloadTooLarge(ctx: ErrorContext, said: string): ProviderError {
  const P = ctx.provider;
  // Jira Cloud REST v3 addComment and doTransition: "Returned if the per-issue limit has been breached" (comments, worklogs, attachments, links).
  const why =
    P === 'Jira'
      ? 'The issue has reached a per-issue limit (comments, worklogs, attachments or links), or the text is too long. Shorten the text; if the issue is at its limit, use another issue or ask a Jira admin.'
      : 'Shorten the text and try again.';
  return new ProviderError('too_large', `${P} refused this as too large (${said}). ${why}`, { status: 413 });
}

/** "Store a valid credential": the fix when the credential itself is bad. */
export function fixCredential(ctx: ErrorContext): string {
  const set = ctx.secrets.length > 0 ? ctx.secrets.map((s) => `gatehouse secret set ${s}`).join(' and ') : 'update the credential in the registry';
  return `Ask an admin to store a valid credential (${set}) and check it with: gatehouse connector test ${ctx.connector}`;
}

export function whenText(ms: number, now: number): string {
  const s = Math.ceil(ms / 1000);
  return `${s} s (after ${new Date(now + ms).toISOString()})`;
}

/** Maps a non-2xx HTTP response to a ProviderError with a message that says what to do. */
export function httpFailure(res: ResponseFacts, ctx: ErrorContext): ProviderError {
  const now = ctx.now ?? Date.now();
  const P = ctx.provider;
  const raw = providerDetail(P, res.body);
  const detail = sanitize(raw, ctx.scrub);
  const said = detail === '' ? `${res.status}` : `${res.status}: ${detail}`;
  const wait = retryAfterMs(res.headers, now);
  // GitHub signals primary and secondary rate limits with 403 or 429 (docs: "rate limits for the REST API").
  const githubLimited = P === 'GitHub' && res.status === 403 && (wait !== undefined || /rate limit/i.test(raw));
  if (res.status === 429 || githubLimited) {
    const ms = wait ?? 60_000;
    return new ProviderError('rate_limited', `${P} rate limit reached (${said}). Retry in ${whenText(ms, now)}; until then this connector does not call ${P} for it.`, { status: res.status, retryAfterMs: ms });
  }
  switch (res.status) {
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
      return redirected(res, ctx, said);
    case 304:
      // RFC 9110 §15.4.5: 304 answers only a conditional request (If-None-Match, If-Modified-Since), and the connector
      // sends none, so something other than the provider's API answered: a protocol fault, said plainly.
      return new ProviderError(
        'protocol',
        `${P} answered Not Modified (${said}), which answers only a conditional request, and the connector sends none: a cache or proxy between the gateway and ${P} probably answered. Check the connector's baseUrl and any proxy in front of the ${P} API.`,
        { status: 304 },
      );
    case 401:
      return new ProviderError('auth', `${P} rejected the connector's credential (${said}). The token is missing, expired or revoked. ${fixCredential(ctx)}.`, { status: 401 });
    case 403:
      // Contents over 1 MB come only as raw or object media types; over 100 MB never (GET /repos/{owner}/{repo}/contents/{path}).
      if (P === 'GitHub' && githubErrorCodes(res.body).includes('too_large')) {
        return new ProviderError('too_large', `GitHub will not serve this through the API in this form (${said}): a file over 1 MB comes only as raw content, and one over 100 MB not at all. Clone the repository for it.`, { status: 403 });
      }
      return new ProviderError('forbidden', `${P} refused this request (${said}). The credential lacks a permission, scope or access for this resource: grant it to the token, or ask for something it can see.`, { status: 403 });
    case 404:
      return new ProviderError(
        'not_found',
        `${P} found nothing there (${said}). Check the names and ids${P === 'GitHub' ? '; GitHub also answers 404 for a private repository the token cannot see' : P === 'Jira' ? '; Jira also answers 404 for an issue the account may not browse' : ''}.`,
        { status: 404 },
      );
    case 406:
      return notAcceptable(ctx, said);
    case 409:
      return conflict(ctx, said);
    case 410:
      return gone(ctx, said, res.status);
    case 413:
      return payloadTooLarge(ctx, said);
    case 400:
    case 422:
      // Jira Cloud REST v3 createIssue and doTransition: 422 "Returned if a configuration problem prevents the creation of the issue."
      if (P === 'Jira' && res.status === 422) {
        return new ProviderError(
          'invalid',
          `Jira's configuration prevents this (${said}): a field the project requires that the tool cannot set, or a workflow condition or validator. Choose another issue type or transition, or ask a Jira admin to change the configuration.`,
          { status: 422 },
        );
      }
      return new ProviderError('invalid', `${P} rejected the request as invalid (${said}). Fix the arguments and try again.`, { status: res.status });
    default:
      if (res.status >= 500) {
        return new ProviderError('unavailable', `${P} is unavailable (${said}). Try again later${wait !== undefined ? `, in ${whenText(wait, now)}` : ''}.`, { status: res.status, ...(wait !== undefined ? { retryAfterMs: wait } : {}) });
      }
      return new ProviderError('protocol', `${P} answered with an unexpected status (${said}).`, { status: res.status });
  }
}
