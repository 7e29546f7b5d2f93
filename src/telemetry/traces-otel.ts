/**
 * The OpenTelemetry side of traces.ts, loaded only when tracing is on.
 * Semantic conventions: MCP (gen-ai/mcp.md: SERVER and CLIENT spans,
 * `mcp.method.name`, `mcp.session.id`, `mcp.protocol.version`,
 * `jsonrpc.request.id`, `error.type`, `rpc.response.status_code`), GenAI
 * (`gen_ai.operation.name`, `gen_ai.tool.name`, `gen_ai.request.model`,
 * `gen_ai.usage.*`) and GenAI guardrails (gen-ai-security.md:
 * `run_guardrail` spans with `gen_ai.guardrail.verdict.type`,
 * `gen_ai.guardrail.action.type`, `gen_ai.guardrail.security.policy.rule.id`).
 * Attributes of Gatehouse's own are under `gatehouse.*`.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { parseKeyPairsIntoRecord, setGlobalErrorHandler, W3CTraceContextPropagator } from '@opentelemetry/core';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type Sampler, type SpanExporter } from '@opentelemetry/sdk-trace';
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { VERSION } from '../config/paths.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { scrub } from './siem/sinks/http.js';
import type { CallTrace, ModelSpan, PolicySpan, PolicyVerdict, RequestTrace, TraceContext, TracedRequest, Tracing, TracingConfig, UpstreamSpan } from './traces.js';

/** Methods named in the MCP semantic conventions; another method's span is named `unknown_method` (its name is the agent's text). */
const MCP_METHODS = new Set([
  'completion/complete', 'elicitation/create', 'initialize', 'logging/setLevel', 'notifications/cancelled', 'notifications/initialized',
  'notifications/message', 'notifications/progress', 'notifications/prompts/list_changed', 'notifications/resources/list_changed',
  'notifications/resources/updated', 'notifications/roots/list_changed', 'notifications/tools/list_changed', 'ping', 'prompts/get',
  'prompts/list', 'resources/list', 'resources/read', 'resources/subscribe', 'resources/templates/list', 'resources/unsubscribe',
  'roots/list', 'sampling/createMessage', 'tools/call', 'tools/list',
]);

/** Requests traced at once per session; past it a request gets no span (an agent can't grow this map without end). */
const MAX_OPEN_PER_SESSION = 1024;
/** The most of an agent-sent string put on a span. */
const MAX_TEXT = 256;
/** The most of captured arguments or results (JSON) put on a span. */
const MAX_CONTENT = 8192;
/** Failed exports are logged at most this often. */
const EXPORT_ERROR_LOG_MS = 60_000;

const propagator = new W3CTraceContextPropagator();
const getter: TextMapGetter<Record<string, unknown>> = {
  keys: (c) => Object.keys(c),
  get: (c, k) => (typeof c[k] === 'string' ? (c[k] as string) : undefined),
};

function cut(s: string, max = MAX_TEXT): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** A context with the remote parent of a W3C Trace Context carrier; ROOT_CONTEXT (a new trace) when it holds none or a malformed one. */
function extract(carrier: Record<string, unknown> | undefined): Context {
  if (carrier === undefined || typeof carrier.traceparent !== 'string') return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, carrier, getter);
}

/** The W3C Trace Context of a span (what the propagator would inject, without a context and a carrier per call). */
function contextOf(span: Span): TraceContext {
  const c = span.spanContext();
  const traceparent = `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  const state = c.traceState?.serialize();
  return state !== undefined && state !== '' ? { traceparent, tracestate: state } : { traceparent };
}

/** server.address and server.port of an upstream or provider URL, parsed once per URL (a handful per gateway). */
const addresses = new Map<string, Attributes>();
function addressOf(url: string): Attributes {
  let a = addresses.get(url);
  if (a === undefined) {
    try {
      const u = new URL(url);
      a = { 'server.address': u.hostname, 'server.port': Number(u.port || (u.protocol === 'https:' ? 443 : 80)) };
    } catch {
      a = {};
    }
    // Bounded: URLs come from the registry, but a cap costs nothing.
    if (addresses.size >= 256) addresses.clear();
    addresses.set(url, a);
  }
  return a;
}

/**
 * The configured sampler. A `parentbased_*` one follows the parent only
 * within the gateway (its own child spans); for a remote parent (the agent's
 * `traceparent`) it decides as its root sampler does, whatever the agent's
 * sampled flag says: flag 00 must not hide an agent's calls from the tracing
 * backend, nor flag 01 defeat ratio sampling. The agent's trace id and parent
 * span are still used (correlation), only not its decision.
 */
function samplerOf(c: TracingConfig['sampler']): Sampler {
  const ratio = () => new TraceIdRatioBasedSampler(c.arg ?? 1);
  const ours = (root: Sampler) => new ParentBasedSampler({ root, remoteParentSampled: root, remoteParentNotSampled: root });
  switch (c.name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return ours(new AlwaysOffSampler());
    case 'parentbased_traceidratio':
      return ours(ratio());
    default:
      return ours(new AlwaysOnSampler());
  }
}

/**
 * The credential values of OTEL_EXPORTER_OTLP_[TRACES_]HEADERS (as the
 * exporters parse them: W3C baggage-style `key=value` pairs, percent-decoded),
 * each whole, as written, and without its scheme (`Bearer <token>`: the
 * token alone, which a collector may quote without it): scrubbed from what a
 * collector says before it is logged.
 */
function headerSecrets(env: NodeJS.ProcessEnv): string[] {
  const out = new Set<string>();
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    for (const value of Object.values(parseKeyPairsIntoRecord(raw))) {
      out.add(value);
      const scheme = /^\S+\s+(\S.*)$/.exec(value);
      if (scheme?.[1] !== undefined) out.add(scheme[1]);
    }
    for (const pair of raw.split(',')) {
      const eq = pair.indexOf('=');
      if (eq >= 0) out.add(pair.slice(eq + 1).trim());
    }
  }
  // Longest first: a whole value is replaced before the token in it.
  return [...out].filter((s) => s !== '').sort((a, b) => b.length - a.length);
}

interface OpenRequest {
  span: Span;
  method: string;
  call?: OtelCallTrace;
}

export class OtelTracing implements Tracing {
  readonly config: TracingConfig;
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;
  /** Requests in flight per MCP session id (only sessions with an id; initialize is traced through its transport). */
  readonly #sessions = new Map<string, Map<string | number, OpenRequest>>();

  /** `exporter`: the OTLP exporter of the configured protocol (it reads OTEL_EXPORTER_OTLP_* itself, from `env`). */
  constructor(config: TracingConfig, exporter: SpanExporter, logger: Logger, env: NodeJS.ProcessEnv = process.env) {
    this.config = config;
    const resource = resourceFromAttributes({ 'service.name': config.serviceName, 'service.version': VERSION }).merge(detectResources({ detectors: [envDetector] }));
    this.#provider = new TracerProvider({
      resource,
      sampler: samplerOf(config.sampler),
      spanProcessors: [new BatchSpanProcessor({ exporter, ...config.batch })],
    });
    this.#tracer = this.#provider.getTracer('gatehouse', VERSION);
    // A collector that is down costs a log line a minute, never a call.
    let lastLogged = Number.NEGATIVE_INFINITY;
    // What a collector says (its status text, its error body) may quote the headers it was sent.
    const secrets = headerSecrets(env);
    setGlobalErrorHandler((e) => {
      const now = Date.now();
      if (now - lastLogged < EXPORT_ERROR_LOG_MS) return;
      lastLogged = now;
      const data = (e as { data?: unknown } | undefined)?.data;
      const answer = typeof data === 'string' && data !== '' ? { answer: cut(scrub(data, secrets)) } : {};
      logger.warn({ err: scrub(errorMessage(e), secrets), ...answer, endpoint: config.endpoint }, 'tracing: spans could not be exported (they are dropped, calls go on)');
    });
    logger.info({ protocol: config.protocol, endpoint: config.endpoint }, 'tracing on: OTLP export');
  }

  traceTransport(transport: Transport, session: { id(): string; agent: string; via: 'token' | 'sandbox' }): void {
    const open = new Map<string | number, OpenRequest>();
    let registered = '';
    const register = (): void => {
      if (registered !== '') return;
      const sid = session.id();
      if (sid === '') return;
      registered = sid;
      this.#sessions.set(sid, open);
    };
    const receive = transport.onmessage;
    transport.onmessage = (message, extra) => {
      try {
        register();
        this.#received(message, extra, open, session);
      } catch {
        // Telemetry never fails a request.
      }
      receive?.call(transport, message, extra);
    };
    const send = transport.send.bind(transport);
    transport.send = (message, options) => {
      try {
        register();
        this.#responded(message, open, session);
      } catch {
        // Telemetry never fails a response.
      }
      return send(message, options);
    };
    const closed = transport.onclose;
    transport.onclose = () => {
      closed?.call(transport);
      for (const r of open.values()) r.span.end();
      open.clear();
      if (registered !== '') this.#sessions.delete(registered);
    };
  }

  #received(message: JSONRPCMessage, extra: MessageExtraInfo | undefined, open: Map<string | number, OpenRequest>, session: { id(): string; agent: string; via: 'token' | 'sandbox' }): void {
    if (!('method' in message) || typeof message.method !== 'string') return;
    const isRequest = 'id' in message && (typeof message.id === 'string' || typeof message.id === 'number');
    if (isRequest && open.size >= MAX_OPEN_PER_SESSION) return;
    const method = message.method;
    const params = (message.params ?? undefined) as Record<string, unknown> | undefined;
    const headers = extra?.requestInfo?.headers ?? {};
    const header = (name: string): string | undefined => {
      const v = headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    const sid = session.id();
    const version = method === 'initialize' && typeof params?.protocolVersion === 'string' ? params.protocolVersion : header('mcp-protocol-version');
    const span = this.#serverSpan({
      method,
      id: isRequest ? (message as { id: string | number }).id : undefined,
      params,
      agent: session.agent,
      via: session.via,
      ...(sid !== '' ? { session: sid } : {}),
      ...(version !== undefined ? { version } : {}),
      header,
    });
    if (!isRequest) {
      span.end();
      return;
    }
    const id = (message as { id: string | number }).id;
    open.get(id)?.span.end();
    open.set(id, { span, method });
  }

  /**
   * The SERVER span of an MCP request the gateway received, in either era:
   * the MCP request's context (params._meta) is the parent; the HTTP
   * request's, if any, a link (mcp.md "Context propagation").
   */
  #serverSpan(r: {
    method: string;
    id: string | number | undefined;
    params: Record<string, unknown> | undefined;
    agent: string;
    via: 'token' | 'sandbox';
    session?: string;
    version?: string;
    header: (name: string) => string | null | undefined;
  }): Span {
    const { method, params } = r;
    const meta = params?._meta as Record<string, unknown> | undefined;
    const attributes: Attributes = {
      'mcp.method.name': cut(method, 100),
      'network.transport': r.via === 'sandbox' ? 'unix' : 'tcp',
      'network.protocol.name': 'http',
      'gatehouse.agent': r.agent,
    };
    if (r.session !== undefined) attributes['mcp.session.id'] = r.session;
    if (r.version !== undefined) attributes['mcp.protocol.version'] = cut(r.version, 32);
    if (r.id !== undefined) attributes['jsonrpc.request.id'] = cut(String(r.id), 64);
    if (method === 'tools/call') {
      attributes['gen_ai.operation.name'] = 'execute_tool';
      if (typeof params?.name === 'string') attributes['gen_ai.tool.name'] = cut(params.name);
    }
    const parent = extract(typeof meta === 'object' && meta !== null ? meta : undefined);
    const links: Link[] = [];
    const http = r.header('traceparent');
    if (typeof http === 'string') {
      const state = r.header('tracestate');
      const linked = trace.getSpanContext(extract({ traceparent: http, tracestate: typeof state === 'string' ? state : undefined }));
      if (linked !== undefined) links.push({ context: linked });
    }
    return this.#tracer.startSpan(MCP_METHODS.has(method) ? method : 'unknown_method', { kind: SpanKind.SERVER, attributes, links }, parent);
  }

  #responded(message: JSONRPCMessage, open: Map<string | number, OpenRequest>, session: { id(): string }): void {
    if (!('id' in message) || (!('result' in message) && !('error' in message))) return;
    const id = message.id as string | number;
    const r = open.get(id);
    if (r === undefined) return;
    open.delete(id);
    const sid = session.id();
    if (sid !== '') r.span.setAttribute('mcp.session.id', sid);
    endServerSpan(r.span, 'error' in message ? { error: message.error } : { result: message.result as Record<string, unknown> });
  }

  request(r: TracedRequest): RequestTrace {
    const span = this.#serverSpan({ method: r.method, id: r.id, params: r.params, agent: r.agent, via: r.via, version: r.version, header: r.header ?? (() => undefined) });
    let call: OtelCallTrace | undefined;
    let ended = false;
    const tracer = this.#tracer;
    const captureContent = this.config.captureContent;
    return {
      call: () => (r.method === 'tools/call' ? (call ??= new OtelCallTrace(tracer, span, captureContent)) : undefined),
      end: (answer) => {
        if (ended) return;
        ended = true;
        if (answer === undefined) span.end();
        else endServerSpan(span, answer);
      },
    };
  }

  call(session: string, request: string | number): CallTrace | undefined {
    const r = this.#sessions.get(session)?.get(request);
    if (r === undefined || r.method !== 'tools/call') return undefined;
    return (r.call ??= new OtelCallTrace(this.#tracer, r.span, this.config.captureContent));
  }

  modelCall(a: { provider: string; api: string; agent: string; url?: string; traceparent?: string | null; tracestate?: string | null }): ModelSpan {
    const parent = typeof a.traceparent === 'string' ? extract({ traceparent: a.traceparent, tracestate: a.tracestate ?? undefined }) : ROOT_CONTEXT;
    const attributes: Attributes = { 'gen_ai.provider.name': a.api, 'gatehouse.provider': cut(a.provider, 64), 'gatehouse.agent': a.agent };
    if (a.url !== undefined) Object.assign(attributes, addressOf(a.url));
    return new OtelModelSpan(this.#tracer.startSpan('model call', { kind: SpanKind.CLIENT, attributes }, parent));
  }

  flush(): Promise<void> {
    return this.#provider.forceFlush();
  }

  async close(graceMs = 2_000): Promise<void> {
    for (const open of this.#sessions.values()) for (const r of open.values()) r.span.end();
    this.#sessions.clear();
    // A collector that is down must not hold the gateway's shutdown.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#provider.shutdown().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
  }
}

/** Ends a request's SERVER span with what it was answered (mcp.md: error.type is the JSON-RPC code, or `tool_error` for a result with isError). */
function endServerSpan(span: Span, answer: { result: Record<string, unknown> } | { error: { code: number; message: string } }): void {
  if ('error' in answer) {
    const code = String(answer.error.code);
    span.setAttributes({ 'error.type': code, 'rpc.response.status_code': code });
    span.setStatus({ code: SpanStatusCode.ERROR, message: cut(answer.error.message) });
  } else if ((answer.result as { isError?: unknown } | undefined)?.isError === true) {
    const meta = (answer.result as { _meta?: Record<string, unknown> })._meta;
    const code = typeof meta?.['gatehouse/error'] === 'string' ? (meta['gatehouse/error'] as string) : undefined;
    span.setAttribute('error.type', 'tool_error');
    span.setStatus(code === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message: code });
  }
  span.end();
}

class OtelCallTrace implements CallTrace {
  readonly #ctx: Context;
  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
    readonly captureContent: boolean,
  ) {
    this.#ctx = trace.setSpan(ROOT_CONTEXT, span);
  }

  tool(name: string, connector: string): void {
    this.span.updateName(`tools/call ${name}`);
    this.span.setAttributes({ 'gen_ai.tool.name': name, 'gatehouse.connector': connector });
  }

  policy(): PolicySpan {
    const span = this.tracer.startSpan(
      'run_guardrail gatehouse-policy',
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          'gen_ai.operation.name': 'run_guardrail',
          'gen_ai.guardrail.component.name': 'gatehouse-policy',
          'gen_ai.guardrail.target.type': 'input',
          'gen_ai.guardrail.target.subtype': 'tool_call',
        },
      },
      this.#ctx,
    );
    const tracer = this.tracer;
    return {
      end(v: PolicyVerdict) {
        const attrs: Attributes = {
          'gen_ai.guardrail.verdict.type': v.decision === 'ask' ? 'escalate' : v.decision,
          'gen_ai.guardrail.action.type': v.allowed ? 'allow' : 'block',
          'gatehouse.policy.decision': v.decision,
        };
        if (v.rule !== null) {
          attrs['gen_ai.guardrail.security.policy.rule.id'] = v.rule;
          attrs['gatehouse.policy.rule'] = v.rule;
        }
        if (!v.allowed && v.code !== undefined) attrs['gen_ai.guardrail.verdict.reason'] = v.code;
        span.setAttributes(attrs);
        if (v.approvalWait !== undefined) {
          const outcome = v.allowed ? 'approved' : v.code === 'APPROVAL_TIMEOUT' ? 'timeout' : 'denied';
          const wait = tracer.startSpan(
            'approval wait',
            { kind: SpanKind.INTERNAL, startTime: v.approvalWait.from, attributes: { 'gatehouse.approval.outcome': outcome, ...(v.approvalId !== undefined ? { 'gatehouse.approval.id': v.approvalId } : {}) } },
            trace.setSpan(ROOT_CONTEXT, span),
          );
          wait.end(v.approvalWait.to);
        }
        span.end();
      },
    };
  }

  upstream(connector: string, upstreamTool: string, target: { transport: 'tcp' | 'pipe' | 'inproc'; url?: string }): UpstreamSpan {
    const attributes: Attributes = {
      'mcp.method.name': 'tools/call',
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': upstreamTool,
      'gatehouse.connector': connector,
    };
    if (target.transport !== 'inproc') attributes['network.transport'] = target.transport;
    if (target.url !== undefined) Object.assign(attributes, addressOf(target.url));
    const span = this.tracer.startSpan(`tools/call ${upstreamTool}`, { kind: SpanKind.CLIENT, attributes }, this.#ctx);
    return {
      context: contextOf(span),
      end(errorType?: string) {
        if (errorType !== undefined) {
          span.setAttribute('error.type', errorType);
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      },
    };
  }

  audit<T>(p: Promise<T>, event: string): Promise<T> {
    const span = this.tracer.startSpan('audit write', { kind: SpanKind.INTERNAL, attributes: { 'gatehouse.audit.event': event } }, this.#ctx);
    p.then(
      () => span.end(),
      (e: unknown) => {
        span.setAttribute('error.type', (e as { code?: unknown }).code === undefined ? '_OTHER' : String((e as { code: unknown }).code));
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    );
    return p;
  }

  outcome(r: Readonly<Record<string, unknown>>): void {
    const attrs: Attributes = {};
    if (typeof r.outcome === 'string') attrs['gatehouse.outcome'] = r.outcome;
    if (typeof r.decision === 'string') attrs['gatehouse.policy.decision'] = r.decision;
    if (typeof r.rule === 'string') attrs['gatehouse.policy.rule'] = r.rule;
    const err = r.error as { code?: unknown } | undefined;
    if (typeof err?.code === 'string') attrs['gatehouse.error.code'] = err.code;
    this.span.setAttributes(attrs);
  }

  content(what: 'arguments' | 'result', value: unknown): void {
    if (!this.captureContent) return;
    let text: string;
    try {
      text = JSON.stringify(value) ?? 'null';
    } catch {
      return;
    }
    this.span.setAttribute(what === 'arguments' ? 'gen_ai.tool.call.arguments' : 'gen_ai.tool.call.result', cut(text, MAX_CONTENT));
  }
}

class OtelModelSpan implements ModelSpan {
  constructor(private readonly span: Span) {}

  request(r: { model?: string | undefined; operation: string; stream?: boolean }): void {
    const attrs: Attributes = { 'gen_ai.operation.name': r.operation };
    if (r.model !== undefined) attrs['gen_ai.request.model'] = cut(r.model);
    if (r.stream !== undefined) attrs['gen_ai.request.stream'] = r.stream;
    this.span.setAttributes(attrs);
    // GenAI spans: `{gen_ai.operation.name} {gen_ai.request.model}`.
    this.span.updateName(r.model === undefined ? r.operation : `${r.operation} ${cut(r.model, 100)}`);
  }

  end(r: Parameters<ModelSpan['end']>[0]): void {
    const attrs: Attributes = { 'gatehouse.outcome': r.outcome };
    if (r.status !== undefined) attrs['http.response.status_code'] = r.status;
    if (r.inputTokens !== undefined) attrs['gen_ai.usage.input_tokens'] = r.inputTokens;
    if (r.outputTokens !== undefined) attrs['gen_ai.usage.output_tokens'] = r.outputTokens;
    if (r.cacheReadTokens !== undefined) attrs['gen_ai.usage.cache_read.input_tokens'] = r.cacheReadTokens;
    if (r.cacheWriteTokens !== undefined) attrs['gen_ai.usage.cache_creation.input_tokens'] = r.cacheWriteTokens;
    if (r.responseModel !== undefined) attrs['gen_ai.response.model'] = cut(r.responseModel);
    if (r.stopReason !== undefined) attrs['gen_ai.response.finish_reasons'] = [cut(r.stopReason, 64)];
    if (r.errorType !== undefined) attrs['error.type'] = r.errorType;
    this.span.setAttributes(attrs);
    if (r.errorType !== undefined) this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end();
  }
}
