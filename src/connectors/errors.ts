/**
 * Provider failures → tool errors an agent (and its human) can act on.
 * Pure: a response's status, a few headers and its parsed body in; a
 * message out. Never a header value, never a credential, and provider text
 * only after `sanitize`.
 */
import { GatehouseError, type ErrorCode } from '../errors.js';

export type FailureKind = 'auth' | 'forbidden' | 'not_found' | 'invalid' | 'rate_limited' | 'unavailable' | 'protocol' | 'args' | 'secret';

/** Each kind of provider failure as a gateway error code (ERROR_TABLE maps it further). */
export const FAILURE_CODE: Readonly<Record<FailureKind, ErrorCode>> = {
  auth: 'UPSTREAM_ERROR',
  forbidden: 'UPSTREAM_ERROR',
  not_found: 'NOT_FOUND',
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

function fixCredential(ctx: ErrorContext): string {
  const set = ctx.secrets.length > 0 ? ctx.secrets.map((s) => `gatehouse secret set ${s}`).join(' and ') : 'update the credential in the registry';
  return `Ask an admin to store a valid credential (${set}) and check it with: gatehouse connector test ${ctx.connector}`;
}

function whenText(ms: number, now: number): string {
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
    case 401:
      return new ProviderError('auth', `${P} rejected the connector's credential (${said}). The token is missing, expired or revoked. ${fixCredential(ctx)}.`, { status: 401 });
    case 403:
      return new ProviderError('forbidden', `${P} refused this request (${said}). The credential lacks a permission, scope or access for this resource: grant it to the token, or ask for something it can see.`, { status: 403 });
    case 404:
      return new ProviderError(
        'not_found',
        `${P} found nothing there (${said}). Check the names and ids${P === 'GitHub' ? '; GitHub also answers 404 for a private repository the token cannot see' : P === 'Jira' ? '; Jira also answers 404 for an issue the account may not browse' : ''}.`,
        { status: 404 },
      );
    case 400:
    case 409:
    case 422:
      return new ProviderError('invalid', `${P} rejected the request as invalid (${said}). Fix the arguments and try again.`, { status: res.status });
    default:
      if (res.status >= 500) {
        return new ProviderError('unavailable', `${P} is unavailable (${said}). Try again later${wait !== undefined ? `, in ${whenText(wait, now)}` : ''}.`, { status: res.status, ...(wait !== undefined ? { retryAfterMs: wait } : {}) });
      }
      return new ProviderError('protocol', `${P} answered with an unexpected status (${said}).`, { status: res.status });
  }
}

// https://docs.slack.dev/reference/methods (each method's "Errors" table)
const SLACK_AUTH = new Set(['invalid_auth', 'not_authed', 'account_inactive', 'token_revoked', 'token_expired', 'no_permission', 'ekm_access_denied', 'team_access_not_granted']);
const SLACK_FORBIDDEN = new Set(['missing_scope', 'not_in_channel', 'is_archived', 'restricted_action', 'cannot_reply_to_message', 'not_allowed_token_type', 'access_denied', 'channel_is_archived']);
const SLACK_NOT_FOUND = new Set(['channel_not_found', 'thread_not_found', 'message_not_found', 'user_not_found']);
const SLACK_INVALID = new Set(['invalid_arguments', 'invalid_cursor', 'invalid_ts_latest', 'invalid_ts_oldest', 'msg_too_long', 'no_text', 'too_many_attachments', 'invalid_blocks', 'invalid_limit']);

/** Maps a Slack `{"ok": false, "error": ...}` body (HTTP 200) to a ProviderError. */
export function slackFailure(res: ResponseFacts, ctx: ErrorContext): ProviderError {
  const now = ctx.now ?? Date.now();
  const b = (res.body ?? {}) as Record<string, unknown>;
  const code = typeof b.error === 'string' ? b.error : 'unknown_error';
  const detail = sanitize(providerDetail('Slack', b), ctx.scrub);
  if (code === 'ratelimited' || code === 'rate_limited' || res.status === 429) {
    const ms = retryAfterMs(res.headers, now) ?? 60_000;
    return new ProviderError('rate_limited', `Slack rate limit reached (${detail}). Retry in ${whenText(ms, now)}; until then this connector does not call this Slack method.`, { status: res.status, retryAfterMs: ms });
  }
  if (SLACK_AUTH.has(code)) return new ProviderError('auth', `Slack rejected the connector's token (${detail}). ${fixCredential(ctx)}.`, { status: res.status });
  if (code === 'not_in_channel') {
    return new ProviderError('forbidden', `Slack refused: the bot is not a member of that channel (${detail}). Invite the app to the channel (/invite @app) and try again.`, { status: res.status });
  }
  if (SLACK_FORBIDDEN.has(code)) return new ProviderError('forbidden', `Slack refused this request (${detail}). Add the missing scope to the Slack app and reinstall it, or ask for something the bot can see.`, { status: res.status });
  if (SLACK_NOT_FOUND.has(code)) return new ProviderError('not_found', `Slack found nothing there (${detail}). Check the channel id and timestamps (list_channels gives ids).`, { status: res.status });
  if (SLACK_INVALID.has(code)) return new ProviderError('invalid', `Slack rejected the request as invalid (${detail}). Fix the arguments and try again.`, { status: res.status });
  if (code === 'fatal_error' || code === 'internal_error' || code === 'service_unavailable' || code === 'request_timeout') {
    return new ProviderError('unavailable', `Slack is unavailable (${detail}). Try again later.`, { status: res.status });
  }
  return new ProviderError('protocol', `Slack answered with an error (${detail}).`, { status: res.status });
}
