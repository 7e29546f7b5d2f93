/**
 * /llm/<provider>/…: model calls through the one door. Each call is checked
 * (route, model list, policy, budget) before anything leaves; the agent's own
 * key is dropped and the provider's comes from the keychain; the request and
 * the answer are redacted of known secret values; the answer streams through
 * event by event (never held whole); one audit record per call says who asked
 * which model, what it used and how it ended. Refusals are written in the
 * provider's own error format so that the agent's SDK shows them.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { undici, undiciLoaded, type Undici } from '../undici.js';
import type { AuditSink } from '../audit/types.js';
import { GatehouseError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { evaluate } from '../policy/evaluate.js';
import { RateLimiter, rateKey } from '../policy/rate-limit.js';
import { appendOrQueue } from '../audit/append-or-queue.js';
import { formatDuration } from '../config/duration.js';
import type { Policy } from '../policy/types.js';
import { CONNECTOR_NAME } from '../registry/fields.js';
import type { InferenceProvider } from '../registry/schema.js';
import type { SecretResolver } from '../secrets/resolve.js';
import type { ModelSpan, Tracing } from '../telemetry/traces.js';
import picomatch from 'picomatch';
import { absorbUsage, billableTokens, forwardedRequestHeader, forwardedResponseHeader, KEY_QUERY_PARAMS, matchRoute, providerError, routeList, type ErrorKind, type Usage } from './apis.js';
import { Budgets, budgetFor } from './budget.js';
import { readNodeBody } from '../upstreams/body-limit.js';
import { SseSplitter, eventData } from './sse.js';

export interface InferenceDeps {
  /** The providers in force (a registry reload changes them). */
  providers(): ReadonlyMap<string, InferenceProvider>;
  policy(): Policy;
  secrets: SecretResolver;
  /** Removes known secret values from text. */
  redact(text: string): string;
  /** Removes known secret values from every string of a value (audit records: a provider's text may echo a key). */
  redactValue<T>(value: T): T;
  /** Length of the longest secret form looked for (a forced cut of a stream keeps that much together). */
  longestSecret?(): number;
  audit: AuditSink;
  budgets: Budgets;
  logger: Logger;
  limiter?: RateLimiter;
  /** Traces: a GenAI client span per model call (src/telemetry/traces.ts); absent when tracing is off. */
  tracing?: Tracing;
  /** Request bodies held at once, across all model calls (default 256 MiB): past it a call is refused with 503. */
  maxBodyBytesInFlight?: number;
  /** Default timeouts (a provider's `timeouts` win). */
  connectTimeoutMs?: number;
  firstByteTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/**
 * The Node request and response under the Web `Request`, when the HTTP server
 * hands them over: the body is read and the stream written without Web streams
 * in between (each costs a fraction of a millisecond per call on the first byte).
 */
export interface RawExchange {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
}

/** What `handle` answers: a Response to send, or `undefined` when the answer was written to `raw.outgoing` already. */
export type ModelAnswer = Response | undefined;

export interface ProviderReport {
  name: string;
  kind: 'inference';
  api: string;
  url: string;
  models: string[];
  file: string;
  state: 'ready' | 'not-ready' | 'disabled';
  reason?: string;
  fix?: string;
}

export interface Caller {
  agent: string;
  via: 'token' | 'sandbox';
  sandbox?: string;
}

const DEFAULT_CONNECT_MS = 10_000;
const DEFAULT_FIRST_BYTE_MS = 300_000;
const DEFAULT_IDLE_MS = 300_000;
/** A non-streamed answer is read whole (its usage is at its end); past this it is refused. */
const MAX_JSON_ANSWER = 64 * 1024 * 1024;
const DEFAULT_BODIES_IN_FLIGHT = 256 * 1024 * 1024;
/** `audit.content: full` keeps at most this much of a request and of an answer. */
const MAX_CONTENT = 1024 * 1024;

type Outcome = 'ok' | 'provider_error' | 'refused' | 'cancelled' | 'failed';

interface CallRecord {
  call: string;
  agent: string;
  provider: string;
  api?: string;
  method: string;
  path: string;
  model?: string | undefined;
  stream?: boolean;
  sandbox?: string;
  via: string;
  decision?: 'allow' | 'deny';
  rule?: string | null;
  outcome?: Outcome;
  status?: number;
  reason?: string;
  ttfbMs?: number;
  durationMs?: number;
  bytesIn?: number;
  bytesOut?: number;
  [k: string]: unknown;
}

/** A refusal's record and answer, together: the record is durable before the agent hears no. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly kind: ErrorKind,
    message: string,
    readonly code: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class InferenceRouter {
  #pool: Dispatcher | undefined;
  readonly #limiter: RateLimiter;
  readonly #inFlight = new Set<AbortController>();
  /** Bytes of request bodies being read or sent now (one agent's 128 connections × 32 MiB must not take the gateway's memory). */
  #bodyBytes = 0;
  readonly #models = new WeakMap<InferenceProvider, { allow: Array<(s: string) => boolean>; deny: Array<(s: string) => boolean> }>();

  constructor(private readonly deps: InferenceDeps) {
    this.#limiter = deps.limiter ?? new RateLimiter();
    // Loading undici blocks the event loop some 80 ms: at start when providers are registered, not on the first model call.
    if (deps.providers().size > 0) undici();
  }

  /**
   * Handles one agent request for `/llm/<provider><path>`; `path` starts with "/".
   * With `raw`, the body comes from the Node request and a streamed answer goes
   * straight to the Node response (then the result is `undefined`).
   */
  async handle(req: Request, caller: Caller, providerName: string, path: string, raw?: RawExchange): Promise<ModelAnswer> {
    const started = performance.now();
    const url = new URL(req.url);
    const rec: CallRecord = {
      call: randomUUID(),
      agent: caller.agent,
      provider: providerName.slice(0, 64),
      // `gatehouse logs --connector NAME` finds a provider's calls as it finds a connector's.
      connector: providerName.slice(0, 64),
      method: req.method,
      path: path.slice(0, 512),
      via: caller.via,
      ...(caller.sandbox !== undefined ? { sandbox: caller.sandbox } : {}),
    };
    const provider = CONNECTOR_NAME.test(providerName) ? this.deps.providers().get(providerName) : undefined;
    const span = this.deps.tracing?.modelCall({
      provider: rec.provider,
      api: provider?.api ?? '_OTHER',
      agent: caller.agent,
      ...(provider ? { url: provider.url } : {}),
      traceparent: req.headers.get('traceparent'),
      tracestate: req.headers.get('tracestate'),
    });
    const held = { bytes: 0 };
    let admitted: { key: string; budget: ReturnType<typeof budgetFor>; reserve: number } | undefined;
    try {
      if (!provider) {
        const names = [...this.deps.providers().keys()];
        throw new Refusal(404, 'not_found', `Gatehouse: no model provider "${providerName}"${names.length > 0 ? `; providers: ${names.join(', ')}` : '; none is registered (gatehouse connector add anthropic)'}`, 'unknown_provider');
      }
      rec.api = provider.api;
      if (!provider.enabled) throw new Refusal(403, 'permission', `Gatehouse: provider "${provider.name}" is disabled (enabled: false in ${provider.file})`, 'provider_disabled');
      const route = matchRoute(provider.api, req.method, path);
      if (!route) throw new Refusal(404, 'not_found', `Gatehouse: ${req.method} ${path} is not a route of the ${provider.api} API the gateway carries (${routeList(provider.api)})`, 'route_not_allowed');

      // The body is read (capped) before any decision: the model is in it, and secrets are taken out of it.
      const body = req.method === 'POST' ? await this.#readBody(req, raw?.incoming, provider.maxBodyBytes, held) : undefined;
      rec.bytesIn = body?.byteLength ?? 0;
      let json: Record<string, unknown> | undefined;
      if (body !== undefined) {
        try {
          const parsed: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
          json = parsed as Record<string, unknown>;
        } catch (e) {
          throw new Refusal(400, 'invalid_request', `Gatehouse: the request body is not a JSON object (${errorMessage(e)})`, 'invalid_body');
        }
      }
      const model = route.modelFrom === 'body' ? json?.model : route.pathModel;
      if (route.modelFrom !== 'none' && (typeof model !== 'string' || model === '' || model.length > 256)) {
        throw new Refusal(400, 'invalid_request', 'Gatehouse: the request names no model ("model" must be a non-empty string)', 'no_model');
      }
      rec.model = typeof model === 'string' ? model : undefined;
      rec.stream = json?.stream === true;
      span?.request({ model: rec.model, operation: operationOf(path, req.method), stream: rec.stream });
      if (typeof model === 'string') this.#checkModel(provider, model);
      this.#decide(provider, caller, typeof model === 'string' ? model : '*', rec, route.modelFrom === 'none');
      const budget = budgetFor(provider, caller.agent);
      const budgetKey = Budgets.key(provider.name, caller.agent);
      // Tokens held for this call until its usage is known: concurrent calls cannot all pass a nearly spent budget.
      const reserve = route.generates ? estimateTokens(rec.bytesIn, json) : 0;
      if (route.generates) {
        const v = this.deps.budgets.admit(budgetKey, budget, Date.now(), reserve);
        if (v.ok) admitted = { key: budgetKey, budget, reserve };
        if (!v.ok) {
          const per = formatDuration(v.limit.perMs);
          throw new Refusal(429, 'rate_limit', `Gatehouse: the ${v.kind} budget of agent "${caller.agent}" for provider "${provider.name}" is spent (${v.used}/${v.limit.capacity} per ${per}; budget in ${provider.file}); retry in ${formatDuration(v.retryAfterMs)}`, `budget_${v.kind}`, { 'retry-after': String(Math.max(1, Math.ceil(v.retryAfterMs / 1000))) });
        }
      }
      // Nothing may leave unaudited: a full audit disk refuses the call.
      try {
        this.deps.audit.assertWritable();
      } catch (e) {
        throw new Refusal(503, 'unavailable', `Gatehouse: ${errorMessage(e)}`, 'audit_unavailable');
      }
      if (json && rec.stream && provider.api === 'openai' && (path === '/v1/chat/completions' || path === '/v1/completions')) {
        // Usage arrives in a stream only when asked for: the gateway always asks (budgets count it; the agent's SDK skips the extra chunk).
        json.stream_options = { ...(obj(json.stream_options) ?? {}), include_usage: true };
      }
      const outText = json ? this.deps.redact(JSON.stringify(json)) : undefined;
      const contentMode = provider.audit.content;
      if (contentMode !== 'none' && outText !== undefined) Object.assign(rec, content(contentMode, 'request', outText));
      // The intent record is made durable while the key is read and the request goes out (a model call changes nothing
      // but spend, and its fsync would otherwise add milliseconds to every first byte); no byte of the answer passes
      // before it is on disk. A call refused after it (the key cannot be read) has its `model.call` record as for any refusal.
      const intent = this.deps.audit.append({ event: 'model.call.intent', ...rec, decision: 'allow' });
      intent.catch(() => undefined);
      const headers = await this.#headers(provider, req);
      const spend = route.generates ? { key: budgetKey, budget, reserve } : undefined;
      admitted = undefined; // from here #forward settles it, however the call ends
      const agent = raw ?? { signal: req.signal };
      return await this.#forward(provider, url, path, headers, outText, rec, started, agent, spend, intent, span);
    } catch (e) {
      const r = e instanceof Refusal ? e : undefined;
      const refusal = r ?? this.#failure(e);
      rec.outcome = r ? 'refused' : 'failed';
      rec.status = refusal.status;
      rec.reason = refusal.message;
      rec.decision ??= r ? 'deny' : 'allow';
      rec.durationMs = ms(started);
      span?.end({ outcome: rec.outcome, status: refusal.status, errorType: refusal.code });
      try {
        await this.deps.audit.append(this.deps.redactValue({ event: 'model.call', ...rec }));
      } catch (err) {
        this.deps.logger.error({ err: String(err) }, 'cannot audit a refused model call');
        return providerError(provider?.api, 503, 'unavailable', `Gatehouse: the audit log cannot take the record of this call (${errorMessage(err)}); nothing was sent`, 'audit_unavailable');
      }
      return providerError(provider?.api, refusal.status, refusal.kind, refusal.message, refusal.code, refusal.headers);
    } finally {
      this.#bodyBytes -= held.bytes;
      // Refused after its budget admitted it (a key missing, the audit full): nothing was spent.
      if (admitted) this.deps.budgets.settle(admitted.key, admitted.budget, admitted.reserve, 0);
    }
  }

  /** The request body, refused with 413 past `max` bytes (the rest is not read), and with 503 past the gateway's total. */
  async #readBody(req: Request, incoming: IncomingMessage | undefined, max: number, held: { bytes: number }): Promise<Uint8Array> {
    const limit = this.deps.maxBodyBytesInFlight ?? DEFAULT_BODIES_IN_FLIGHT;
    const tooLarge = () => new Refusal(413, 'too_large', `Gatehouse: the request body is larger than ${max} bytes (maxBodyBytes of the provider entry)`, 'body_too_large', { connection: 'close' });
    const busy = () => new Refusal(503, 'unavailable', 'Gatehouse: too many large model requests at once; retry shortly', 'gateway_busy', { 'retry-after': '1', connection: 'close' });
    const declared = Number(req.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > max) throw tooLarge();
    const chunks: Uint8Array[] = [];
    let size = 0;
    /** Takes one chunk, or refuses it (the rest of the body is not read; the refusal closes the connection). */
    const take = (value: Uint8Array): void => {
      size += value.byteLength;
      // Counted three times: the bytes, the parsed and the re-serialised request live together until it is sent.
      const cost = value.byteLength * 3;
      if (size > max || this.#bodyBytes + cost > limit) throw size > max ? tooLarge() : busy();
      held.bytes += cost;
      this.#bodyBytes += cost;
      chunks.push(value);
    };
    if (incoming) {
      await readNodeBody(incoming, take);
      return Buffer.concat(chunks);
    }
    if (!req.body) return new Uint8Array(0);
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      try {
        take(value);
      } catch (e) {
        await reader.cancel().catch(() => undefined);
        throw e;
      }
    }
    return Buffer.concat(chunks);
  }

  #checkModel(p: InferenceProvider, model: string): void {
    let m = this.#models.get(p);
    if (!m) {
      m = { allow: p.models.allow.map((g) => picomatch(g, { dot: true })), deny: p.models.deny.map((g) => picomatch(g, { dot: true })) };
      this.#models.set(p, m);
    }
    const allowed = m.allow.some((test) => test(model));
    const denied = m.deny.some((test) => test(model));
    if (!allowed || denied) {
      throw new Refusal(403, 'permission', `Gatehouse: model "${model}" is not allowed for provider "${p.name}" (models.${denied ? 'deny' : 'allow'} in ${p.file}: ${JSON.stringify(denied ? p.models.deny : p.models.allow)})`, 'model_not_allowed');
    }
  }

  /** Policy, as for tool calls: `connector` is the provider, the model is matched by `model:` rules. */
  #decide(p: InferenceProvider, caller: Caller, model: string, rec: CallRecord, listing: boolean): void {
    const d = evaluate(this.deps.policy(), { kind: 'model', agent: caller.agent, connector: p.name, tool: model, upstreamTool: model, args: {}, time: new Date() });
    rec.rule = d.ruleId;
    // Listing the models (no model named): a rule that names no model cannot judge it, so only an explicit deny refuses.
    if (listing && d.ruleId === null) return void (rec.decision = 'allow');
    if (d.effect === 'ask') {
      throw new Refusal(403, 'permission', `Gatehouse: ${d.ruleId === null ? 'the policy default' : `policy rule "${d.ruleId}"`} asks for a human approval, which a model call cannot wait for: it is refused (write an allow or deny rule with model:)`, 'policy_ask');
    }
    if (d.effect === 'deny') throw new Refusal(403, 'permission', `Gatehouse: ${d.message}${d.ruleId === null ? ' (add a rule: match: { model: "…" }, effect: allow)' : ''}`, 'policy_denied');
    if (d.limit) {
      const took = this.#limiter.take(rateKey(d.limit.ruleId, caller.agent), d.limit, Date.now());
      if (!took.ok) {
        throw new Refusal(429, 'rate_limit', `Gatehouse: rate limit of rule "${d.limit.ruleId}" reached; retry in ${formatDuration(took.retryAfterMs)}`, 'rate_limited', { 'retry-after': String(Math.max(1, Math.ceil(took.retryAfterMs / 1000))) });
      }
    }
    rec.decision = 'allow';
  }

  /** The agent's harmless headers, then the provider's own (the key), rendered from the keychain. */
  async #headers(p: InferenceProvider, req: Request): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    req.headers.forEach((value, name) => {
      if (forwardedRequestHeader(name)) out[name] = value;
    });
    out['accept-encoding'] = 'identity';
    for (const [name, template] of Object.entries(p.headers)) {
      try {
        out[name.toLowerCase()] = await this.deps.secrets.render(template, { connector: p.name, where: `header ${name}` });
      } catch (e) {
        const why = errorMessage(e);
        throw new Refusal(503, 'unavailable', `Gatehouse: provider "${p.name}" is not ready: ${why}`, e instanceof GatehouseError && e.code === 'KEYCHAIN_UNAVAILABLE' ? 'keychain_unavailable' : 'provider_not_ready');
      }
    }
    return out;
  }

  async #forward(
    p: InferenceProvider,
    agentUrl: URL,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    rec: CallRecord,
    started: number,
    agent: { signal: AbortSignal; outgoing?: undefined } | RawExchange,
    spend: { key: string; budget: ReturnType<typeof budgetFor>; reserve: number } | undefined,
    intent: Promise<void>,
    span: ModelSpan | undefined,
  ): Promise<ModelAnswer> {
    const abort = new AbortController();
    this.#inFlight.add(abort);
    const unwatch = watchAgent(agent, () => abort.abort(new Error('the agent went away')));
    const target = new URL(p.url.replace(/\/+$/, '') + path);
    for (const [k, v] of agentUrl.searchParams) if (!KEY_QUERY_PARAMS.has(k.toLowerCase())) target.searchParams.append(k, v);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const usage: Usage = {};
    let bytesOut = 0;
    let ttfb: number | undefined;
    let finished = false;
    const hashOut = p.audit.content === 'hash' ? createHash('sha256') : undefined;
    let fullOut = p.audit.content === 'full' ? '' : undefined;
    /** The call's record; `lazy` once the agent has its whole answer (the record rides with the log's next write). */
    const finish = async (outcome: Outcome, extra: Record<string, unknown> = {}, lazy = false) => {
      if (finished) return;
      finished = true;
      await intent.catch(() => undefined);
      unwatch();
      this.#inFlight.delete(abort);
      // A call that ended without usage (cancelled, cut) is charged its estimate: stopping early is no way around a budget.
      const tokens = billableTokens(p.api, usage);
      if (spend) this.deps.budgets.settle(spend.key, spend.budget, spend.reserve, tokens > 0 || outcome === 'ok' ? tokens : spend.reserve);
      const fields: Record<string, unknown> = {
        ...rec,
        outcome,
        ...usageFields(usage),
        ...(ttfb !== undefined ? { ttfbMs: ttfb } : {}),
        durationMs: ms(started),
        bytesOut,
        ...extra,
      };
      if (hashOut) fields.responseSha256 = hashOut.digest('hex');
      if (fullOut !== undefined) Object.assign(fields, content('full', 'response', fullOut));
      // The provider's own text (errors, stop reasons, model names) may echo a key: the record is redacted whole.
      const record = this.deps.redactValue({ event: 'model.call', ...fields });
      // The call happened: its record is written now or kept until the log recovers, never dropped.
      span?.end({
        outcome,
        status: rec.status,
        errorType: outcome === 'ok' ? undefined : outcome,
        inputTokens: usage.inputTokens,
        outputTokens: usage.outputTokens,
        cacheReadTokens: usage.cacheReadTokens,
        cacheWriteTokens: usage.cacheWriteTokens,
        // From the redacted record: the provider's own text may echo the key it was sent.
        responseModel: text((record as Record<string, unknown>).responseModel),
        stopReason: text((record as Record<string, unknown>).stopReason),
      });
      await appendOrQueue(this.deps.audit, record, this.deps.logger, { lazy });
    };

    let res: Dispatcher.ResponseData<unknown>;
    try {
      res = await undici().request(target, {
        method: rec.method as Dispatcher.HttpMethod,
        headers,
        ...(body !== undefined ? { body } : {}),
        dispatcher: this.#dispatcher(),
        signal: abort.signal,
        headersTimeout: p.timeouts.firstByte ?? this.deps.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_MS,
        bodyTimeout: p.timeouts.idle ?? this.deps.idleTimeoutMs ?? DEFAULT_IDLE_MS,
        maxRedirections: 0,
      } as Parameters<typeof Undici.request>[1]);
    } catch (e) {
      const cancelled = abort.signal.aborted;
      const f = cancelled ? undefined : this.#failure(e, p);
      await finish(cancelled ? 'cancelled' : 'failed', { status: f?.status ?? 499, reason: cancelled ? 'the agent went away before the provider answered' : f?.message });
      return providerError(p.api, f?.status ?? 499, f?.kind ?? 'upstream', f?.message ?? 'cancelled', f?.code ?? 'cancelled');
    }
    try {
      await intent;
    } catch (e) {
      abort.abort(e);
      res.body.destroy();
      const why = `the audit log cannot take this call (${errorMessage(e)}); its answer was not passed on`;
      await finish('failed', { status: 503, reason: why });
      return providerError(p.api, 503, 'unavailable', `Gatehouse: ${why}`, 'audit_unavailable');
    }
    rec.status = res.statusCode;
    const outHeaders = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined || !forwardedResponseHeader(name)) continue;
      for (const v of Array.isArray(value) ? value : [value]) outHeaders.append(name, this.deps.redact(v));
    }
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    const outcomeOf = (): Outcome => (!ok || usage.streamError !== undefined ? 'provider_error' : 'ok');
    const ctype = String(res.headers['content-type'] ?? '');
    const isSse = /^text\/event-stream/i.test(ctype);
    const encoder = new TextEncoder();
    /** One event as the agent gets it: redacted, counted, and hashed or kept as the provider's `audit.content` asks. */
    const emit = (text: string, out: Uint8Array[]): void => {
      if (text === '') return;
      const clean = this.deps.redact(text);
      const bytes = encoder.encode(clean);
      ttfb ??= ms(started);
      bytesOut += bytes.byteLength;
      hashOut?.update(bytes);
      if (fullOut !== undefined && fullOut.length < MAX_CONTENT) fullOut += clean;
      out.push(bytes);
    };

    if (!isSse) {
      // A whole answer (JSON, or a provider error): read it, redact it, read its usage.
      let text: string;
      try {
        text = await readAll(res.body, MAX_JSON_ANSWER);
      } catch (e) {
        const cancelled = abort.signal.aborted;
        const f = cancelled ? undefined : this.#failure(e, p);
        await finish(cancelled ? 'cancelled' : 'failed', { reason: cancelled ? 'the agent went away' : f?.message });
        return providerError(p.api, f?.status ?? 499, f?.kind ?? 'upstream', f?.message ?? 'cancelled', f?.code ?? 'cancelled');
      }
      try {
        absorbUsage(usage, JSON.parse(text));
      } catch {
        // Not JSON: passed on as it is (the agent's SDK reports it), usage unknown.
      }
      const redacted = this.deps.redact(text);
      const bytes = encoder.encode(redacted);
      ttfb = ms(started);
      bytesOut = bytes.byteLength;
      hashOut?.update(bytes);
      if (fullOut !== undefined) fullOut = redacted.slice(0, MAX_CONTENT);
      await finish(outcomeOf(), ok ? {} : { reason: `the provider answered ${res.statusCode}` });
      return new Response(bytes, { status: res.statusCode, headers: outHeaders });
    }

    const splitter = new SseSplitter(1 << 20, () => this.deps.longestSecret?.() ?? 0);
    const upstream = res.body[Symbol.asyncIterator]();
    /**
     * The next bytes to pass on: the whole events that the provider's next chunks complete, read until
     * there is something (or the end). A failure is recorded as the call's end and thrown.
     */
    const next = async (): Promise<{ bytes: Uint8Array | undefined; done: boolean }> => {
      try {
        for (;;) {
          const step = await upstream.next();
          const out: Uint8Array[] = [];
          if (step.done) {
            const rest = splitter.end();
            if (rest !== '') {
              readEvent(usage, rest);
              emit(rest, out);
            }
          } else {
            for (const ev of splitter.push(step.value as Uint8Array)) {
              readEvent(usage, ev);
              emit(ev, out);
            }
          }
          const bytes = out.length === 0 ? undefined : out.length === 1 ? out[0] : Buffer.concat(out);
          if (bytes !== undefined || step.done) return { bytes, done: step.done === true };
        }
      } catch (e) {
        const cancelled = abort.signal.aborted;
        const f = cancelled ? undefined : this.#failure(e, p);
        await finish(cancelled ? 'cancelled' : 'failed', { reason: cancelled ? 'the agent went away mid-stream' : `the stream broke: ${f?.message ?? ''}` });
        throw e;
      }
    };
    const ended = () => finish(outcomeOf(), usage.streamError !== undefined ? { reason: `the provider reported an error in the stream: ${usage.streamError}` } : {}, true);

    const raw = agent.outgoing;
    if (raw) {
      // Straight to the agent's socket: no Web stream between the provider's chunk and the write.
      raw.writeHead(res.statusCode, [...outHeaders].flat());
      void (async () => {
        try {
          for (;;) {
            const step = await next();
            if (step.bytes !== undefined && !raw.write(step.bytes)) await drained(raw);
            if (step.done) {
              raw.end();
              await ended();
              return;
            }
          }
        } catch {
          // The agent sees the stream end abruptly, as a provider that cut it would look (the record says why).
          raw.destroy();
        }
      })();
      return undefined;
    }
    const stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const step = await next();
          if (step.bytes !== undefined) controller.enqueue(step.bytes);
          if (step.done) {
            controller.close();
            await ended();
          }
        } catch (e) {
          controller.error(e);
        }
      },
      cancel: async () => {
        abort.abort(new Error('the agent went away'));
        res.body.destroy();
        await finish('cancelled', { reason: 'the agent went away mid-stream' }, true);
      },
    });
    return new Response(stream, { status: res.statusCode, headers: outHeaders });
  }

  /** A failure on the way to the provider, as a refusal-shaped answer (502/504), without secrets. */
  #failure(e: unknown, p?: InferenceProvider): Refusal {
    if (e instanceof Refusal) return e;
    const name = p ? `provider "${p.name}"` : 'the provider';
    const undiciErrors = undiciLoaded() ? undici().errors : undefined;
    if (undiciErrors && e instanceof undiciErrors.HeadersTimeoutError) return new Refusal(504, 'timeout', `Gatehouse: ${name} did not answer in time (timeouts.firstByte)`, 'provider_timeout');
    if (undiciErrors && e instanceof undiciErrors.BodyTimeoutError) return new Refusal(504, 'timeout', `Gatehouse: ${name} stopped sending (timeouts.idle)`, 'provider_timeout');
    if (undiciErrors && e instanceof undiciErrors.ConnectTimeoutError) return new Refusal(504, 'timeout', `Gatehouse: cannot connect to ${name} in time`, 'provider_timeout');
    if (e instanceof TooLarge) return new Refusal(502, 'upstream', `Gatehouse: ${name} answered more than ${MAX_JSON_ANSWER} bytes`, 'provider_answer_too_large');
    const code = (e as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ECONNRESET' || code === 'EAI_AGAIN' || code === 'UND_ERR_SOCKET') {
      return new Refusal(502, 'upstream', `Gatehouse: ${name} is unreachable (${code})`, 'provider_unreachable');
    }
    this.deps.logger.warn({ err: this.deps.redact(errorMessage(e)) }, 'model call failed');
    return new Refusal(502, 'upstream', `Gatehouse: the call to ${name} failed: ${this.deps.redact(errorMessage(e)).slice(0, 300)}`, 'provider_failed');
  }

  /** Each provider's readiness (its key can be read), for `serve` and the admin status: offline, nothing is sent. */
  async report(): Promise<ProviderReport[]> {
    const out: ProviderReport[] = [];
    for (const p of this.deps.providers().values()) {
      const base = { name: p.name, kind: 'inference' as const, api: p.api, url: p.url, models: p.models.allow, file: p.file };
      if (!p.enabled) {
        out.push({ ...base, state: 'disabled' });
        continue;
      }
      try {
        for (const [name, template] of Object.entries(p.headers)) await this.deps.secrets.render(template, { connector: p.name, where: `header ${name}` });
        out.push({ ...base, state: 'ready' });
      } catch (e) {
        const secret = e instanceof GatehouseError ? (e.details as { secret?: string } | undefined)?.secret : undefined;
        const fix = e instanceof GatehouseError && e.code === 'SECRET_MISSING' && secret !== undefined ? `gatehouse secret set ${secret}` : 'gatehouse doctor';
        out.push({ ...base, state: 'not-ready', reason: errorMessage(e), fix });
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Each agent's model budgets and what is spent of them in the current window (metrics). */
  budgetUse(): ReturnType<Budgets['usage']> {
    return this.deps.budgets.usage((name, agent) => {
      const p = this.deps.providers().get(name);
      return p === undefined ? undefined : budgetFor(p, agent);
    });
  }

  /** Aborts every model call in flight (gateway shutdown). */
  async close(): Promise<void> {
    for (const a of this.#inFlight) a.abort(new Error('the gateway is stopping'));
    await this.deps.budgets.close();
    await this.#pool?.close().catch(() => undefined);
  }

  /** The connection pool to the providers, made on the first model call (undici is loaded then: src/undici.ts). */
  #dispatcher(): Dispatcher {
    // pipelining 1: one request at a time per connection, kept alive between calls (0 would close it after each).
    this.#pool ??= new (undici().Agent)({ connect: { timeout: this.deps.connectTimeoutMs ?? DEFAULT_CONNECT_MS }, keepAliveTimeout: 30_000, pipelining: 1 });
    return this.#pool;
  }
}

class TooLarge extends Error {}

/** gen_ai.operation.name of a route (GenAI semantic conventions); the route itself for one that generates nothing. */
function operationOf(path: string, method: string): string {
  if (path === '/v1/messages' || path === '/v1/chat/completions' || path === '/v1/responses') return 'chat';
  if (path === '/v1/completions') return 'text_completion';
  if (path === '/v1/embeddings') return 'embeddings';
  return `${method} ${path.startsWith('/v1/models/') ? '/v1/models/{model}' : path}`;
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function ms(since: number): number {
  return Math.round((performance.now() - since) * 1000) / 1000;
}

function usageFields(u: Usage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (u.inputTokens !== undefined) out.inputTokens = u.inputTokens;
  if (u.outputTokens !== undefined) out.outputTokens = u.outputTokens;
  if (u.cacheReadTokens !== undefined) out.cacheReadTokens = u.cacheReadTokens;
  if (u.cacheWriteTokens !== undefined) out.cacheWriteTokens = u.cacheWriteTokens;
  if (u.stopReason !== undefined) out.stopReason = u.stopReason;
  if (u.responseModel !== undefined) out.responseModel = u.responseModel;
  if (u.streamError !== undefined) out.streamError = u.streamError;
  return out;
}

/** Reads usage from one event when it may hold some (most are text deltas: skipped cheaply). */
function readEvent(u: Usage, event: string): void {
  if (!/usage|stop_reason|finish_reason|error|"response\.(completed|incomplete|failed)"|message_start/.test(event)) return;
  const data = eventData(event);
  if (data === undefined || data === '[DONE]') return;
  try {
    absorbUsage(u, JSON.parse(data));
  } catch {
    // Garbage in a stream is the provider's; it is passed on, usage stays unknown.
  }
}

/** Tokens a generating call may use, before its usage is known: its input (~4 bytes a token) and the output it asks for at most. */
function estimateTokens(bytesIn: number, json: Record<string, unknown> | undefined): number {
  const out = [json?.max_tokens, json?.max_output_tokens, json?.max_completion_tokens].find((v): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0) ?? 1024;
  return Math.ceil(bytesIn / 4) + Math.min(Math.floor(out), 1_000_000);
}

function content(mode: 'hash' | 'full', what: 'request' | 'response', text: string): Record<string, unknown> {
  if (mode === 'hash') return { [`${what}Sha256`]: createHash('sha256').update(text).digest('hex') };
  return text.length > MAX_CONTENT ? { [what]: text.slice(0, MAX_CONTENT), [`${what}Truncated`]: true } : { [what]: text };
}

/**
 * Calls `gone` when the agent goes away before its answer ended: its Node
 * response closes (the listener closes a pipelined one, which has no socket
 * yet, with its connection: server/listen.ts), or its request's signal
 * aborts. No AbortSignal is made per call for it. Returns the function that
 * stops watching.
 */
function watchAgent(agent: { signal: AbortSignal; outgoing?: undefined } | RawExchange, gone: () => void): () => void {
  const out = agent.outgoing;
  if (out !== undefined) {
    const onClose = (): void => {
      if (!out.writableFinished) gone();
    };
    if (out.destroyed) onClose();
    out.once('close', onClose);
    return () => out.off('close', onClose);
  }
  const signal = agent.signal;
  if (signal.aborted) gone();
  signal.addEventListener('abort', gone, { once: true });
  return () => signal.removeEventListener('abort', gone);
}

/** Resolves when `w` can take more, or is closed. */
function drained(w: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.off('drain', done).off('close', done);
      resolve();
    };
    w.on('drain', done).on('close', done);
  });
}

async function readAll(body: Dispatcher.ResponseData<unknown>['body'], max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).byteLength;
    if (size > max) {
      body.destroy();
      throw new TooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
