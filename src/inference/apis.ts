/**
 * What differs between the provider APIs the gateway carries: which paths an
 * agent may call, where the model is named, how an error looks (a refusal is
 * written in the provider's own format, so the agent's SDK shows it), and how
 * usage is reported. Pure functions; no I/O.
 */
import type { InferenceApi } from '../registry/inference.js';

export interface RouteMatch {
  /** The model asked for: from the JSON body, from the path (GET /v1/models/ID), or none (the model list). */
  modelFrom: 'body' | 'path' | 'none';
  pathModel?: string;
  /** An endpoint whose result is a model's answer (usage is counted against the budget). */
  generates: boolean;
}

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,255}$/;

const ROUTES: Record<InferenceApi, ReadonlyArray<{ method: string; path: RegExp; generates: boolean; modelFrom: RouteMatch['modelFrom'] }>> = {
  anthropic: [
    { method: 'POST', path: /^\/v1\/messages$/, generates: true, modelFrom: 'body' },
    { method: 'POST', path: /^\/v1\/messages\/count_tokens$/, generates: false, modelFrom: 'body' },
    { method: 'GET', path: /^\/v1\/models$/, generates: false, modelFrom: 'none' },
    { method: 'GET', path: /^\/v1\/models\/(.+)$/, generates: false, modelFrom: 'path' },
  ],
  openai: [
    { method: 'POST', path: /^\/v1\/chat\/completions$/, generates: true, modelFrom: 'body' },
    { method: 'POST', path: /^\/v1\/completions$/, generates: true, modelFrom: 'body' },
    { method: 'POST', path: /^\/v1\/responses$/, generates: true, modelFrom: 'body' },
    { method: 'POST', path: /^\/v1\/embeddings$/, generates: true, modelFrom: 'body' },
    { method: 'GET', path: /^\/v1\/models$/, generates: false, modelFrom: 'none' },
    { method: 'GET', path: /^\/v1\/models\/(.+)$/, generates: false, modelFrom: 'path' },
  ],
};

/** The route an agent's request is for, or undefined (refused with 404: nothing else of the provider is reachable). */
export function matchRoute(api: InferenceApi, method: string, path: string): RouteMatch | undefined {
  for (const r of ROUTES[api]) {
    if (r.method !== method) continue;
    const m = r.path.exec(path);
    if (!m) continue;
    if (r.modelFrom !== 'path') return { modelFrom: r.modelFrom, generates: r.generates };
    const id = m[1] ?? '';
    if (!MODEL_ID.test(id) || id.split('/').some((s) => s === '..' || s === '.' || s === '')) return undefined;
    return { modelFrom: 'path', pathModel: id, generates: r.generates };
  }
  return undefined;
}

/** The paths an api serves, for messages. */
export function routeList(api: InferenceApi): string {
  return ROUTES[api].map((r) => `${r.method} ${r.path.source.replace(/^\^|\$$/g, '').replace(/\\\//g, '/').replace('(.+)', '{model}')}`).join(', ');
}

export type ErrorKind = 'invalid_request' | 'authentication' | 'permission' | 'not_found' | 'too_large' | 'rate_limit' | 'unavailable' | 'upstream' | 'timeout';

const ANTHROPIC_TYPE: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'authentication_error',
  permission: 'permission_error',
  not_found: 'not_found_error',
  too_large: 'request_too_large',
  rate_limit: 'rate_limit_error',
  unavailable: 'api_error',
  upstream: 'api_error',
  timeout: 'timeout_error',
};

const OPENAI_TYPE: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'invalid_request_error',
  permission: 'permission_denied',
  not_found: 'invalid_request_error',
  too_large: 'invalid_request_error',
  rate_limit: 'rate_limit_exceeded',
  unavailable: 'server_error',
  upstream: 'server_error',
  timeout: 'server_error',
};

/**
 * A gateway refusal as the provider itself would answer (the agent's SDK
 * reads `error.message`). `code` says which check refused (policy, model,
 * budget…); the message names the rule or the registry key and the fix.
 */
export function providerError(api: InferenceApi | undefined, status: number, kind: ErrorKind, message: string, code: string, headers: Record<string, string> = {}): Response {
  const body =
    api === 'openai'
      ? { error: { message, type: OPENAI_TYPE[kind], param: null, code: `gatehouse_${code}` } }
      : { type: 'error', error: { type: ANTHROPIC_TYPE[kind], message, code: `gatehouse_${code}` } };
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

/** What a model call used, as the provider reported it (any field may stay unknown). */
export interface Usage {
  inputTokens?: number;
  outputTokens?: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
  stopReason?: string;
  responseModel?: string;
  /** An error the provider sent inside a 200 stream (Anthropic `event: error`, Responses `response.failed`). */
  streamError?: string;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined);
const str = (v: unknown, max = 200): string | undefined => (typeof v === 'string' && v !== '' ? v.slice(0, max) : undefined);
const obj = (v: unknown): Record<string, unknown> | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

/** Counts already seen stay unless a later event reports a larger one (Anthropic's output_tokens grow; totals come last). */
function keepMax(u: Usage, key: 'inputTokens' | 'outputTokens' | 'cacheReadTokens' | 'cacheWriteTokens', v: number | undefined): void {
  if (v !== undefined && (u[key] === undefined || v > (u[key] ?? 0))) u[key] = v;
}

/**
 * Folds one JSON object of a provider answer into `u`: a whole non-streamed
 * answer, or one server-sent event's data (Anthropic Messages events, Chat
 * Completions chunks, Responses events). Hostile input: never throws.
 */
export function absorbUsage(u: Usage, data: unknown): void {
  const d = obj(data);
  if (!d) return;
  const type = str(d.type);
  const holder = obj(d.message) ?? obj(d.response) ?? d;
  const usage = obj(holder.usage) ?? obj(d.usage);
  if (usage) {
    keepMax(u, 'inputTokens', num(usage.input_tokens) ?? num(usage.prompt_tokens));
    keepMax(u, 'outputTokens', num(usage.output_tokens) ?? num(usage.completion_tokens));
    keepMax(u, 'cacheReadTokens', num(usage.cache_read_input_tokens) ?? num(obj(usage.input_tokens_details)?.cached_tokens) ?? num(obj(usage.prompt_tokens_details)?.cached_tokens));
    keepMax(u, 'cacheWriteTokens', num(usage.cache_creation_input_tokens));
  }
  const model = str(holder.model);
  if (model !== undefined) u.responseModel = model;
  const choice = Array.isArray(d.choices) ? obj(d.choices[0]) : undefined;
  const stop = str(obj(d.delta)?.stop_reason) ?? str(holder.stop_reason) ?? str(choice?.finish_reason);
  if (stop !== undefined) u.stopReason = stop;
  if (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed' || (holder === d && str(d.object) === 'response')) {
    const status = str(holder.status);
    const why = str(obj(holder.incomplete_details)?.reason);
    if (status !== undefined) u.stopReason = why !== undefined ? `${status}: ${why}` : status;
  }
  const err = obj(d.error) ?? (type === 'response.failed' ? obj(obj(d.response)?.error) : undefined);
  if (err && (type === 'error' || type === 'response.failed' || type === undefined)) u.streamError = str(err.message, 500) ?? str(err.type) ?? 'error';
}

/** Tokens that count against a token budget: input, output and cache writes; cache reads where the provider bills them apart (Anthropic). */
export function billableTokens(api: InferenceApi, u: Usage): number {
  const cacheRead = api === 'anthropic' ? (u.cacheReadTokens ?? 0) : 0;
  return (u.inputTokens ?? 0) + (u.outputTokens ?? 0) + (u.cacheWriteTokens ?? 0) + cacheRead;
}

/** Headers an agent may send on to the provider (everything else, its keys first, is dropped). */
export function forwardedRequestHeader(name: string): boolean {
  return FORWARD_REQUEST.has(name) || name.startsWith('x-stainless-');
}
const FORWARD_REQUEST = new Set(['content-type', 'accept', 'anthropic-version', 'anthropic-beta', 'openai-beta', 'user-agent', 'idempotency-key', 'x-request-id']);

/** Headers of the provider's answer the agent gets (no cookies, no framing: the gateway frames it). */
export function forwardedResponseHeader(name: string): boolean {
  return FORWARD_RESPONSE.has(name) || name.startsWith('anthropic-ratelimit-') || name.startsWith('x-ratelimit-') || name.startsWith('openai-');
}
const FORWARD_RESPONSE = new Set(['content-type', 'retry-after', 'retry-after-ms', 'request-id', 'x-request-id', 'cache-control']);

/** Query parameters that could carry a key the agent holds (some SDKs put it there): never forwarded. */
export const KEY_QUERY_PARAMS = new Set(['key', 'api_key', 'api-key', 'apikey', 'access_token', 'token']);
