/**
 * OpenTelemetry traces: OTLP over HTTP/protobuf or gRPC, configured by the
 * standard OTEL_* variables (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _PROTOCOL,
 * _HEADERS, _TIMEOUT, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*). Without an endpoint the SDK is not
 * loaded at all: `startTracing` returns undefined and every hook in the call
 * path is an `undefined?.` that costs nothing.
 *
 * Spans follow the OpenTelemetry semantic conventions for MCP (a SERVER span
 * per MCP request the gateway receives, `{mcp.method.name} {tool}`, with
 * `gen_ai.operation.name = execute_tool` for tools/call), with children for
 * the policy decision (a GenAI guardrail span), the approval wait, the
 * upstream call (an MCP CLIENT span whose context is sent upstream in
 * `params._meta` and the HTTP `traceparent` header) and each audit write.
 * Model calls are GenAI CLIENT spans. A `traceparent` in the agent's
 * `params._meta` is the parent (W3C Trace Context; a malformed one is
 * ignored and a new trace starts), in both protocol eras: a 2025-11-25
 * session's requests are traced through its transport, a 2026-07-28 request
 * (no session) on its own. Tool arguments and results are put on
 * spans only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true.
 *
 * Nothing here waits for the exporter: spans go to a bounded batch queue
 * (OTEL_BSP_MAX_QUEUE_SIZE, default 2048; past it spans are dropped) that
 * is exported off the call path.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { GatehouseError } from '../errors.js';
import type { Logger } from '../log.js';

export type TraceProtocol = 'http/protobuf' | 'grpc';

export interface TracingConfig {
  protocol: TraceProtocol;
  /** Where spans go, for the log (the exporter reads the variables itself). */
  endpoint: string;
  /** Tool arguments and results (redacted) on spans: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true. */
  captureContent: boolean;
  serviceName: string;
  sampler: { name: string; arg?: number };
  batch: { maxQueueSize?: number; maxExportBatchSize?: number; scheduledDelayMillis?: number; exportTimeoutMillis?: number };
}

/** W3C Trace Context for an upstream request. */
export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

export interface PolicyVerdict {
  decision: 'allow' | 'deny' | 'ask';
  rule: string | null;
  allowed: boolean;
  /** Why a call was refused (POLICY_DENIED, APPROVAL_TIMEOUT, …). */
  code?: string;
  approvalId?: string;
  /** A human approval was waited for, from…to (performance.now() ms). */
  approvalWait?: { from: number; to: number };
}

export interface PolicySpan {
  end(v: PolicyVerdict): void;
}

export interface UpstreamSpan {
  /** What the upstream is sent (params._meta, and the HTTP headers of an http connector). */
  readonly context: TraceContext;
  /** `errorType`: the call's error code, or `tool_error` for a result with isError. */
  end(errorType?: string): void;
}

/** The tracing side of one tools/call: child spans of its MCP SERVER span. */
export interface CallTrace {
  readonly captureContent: boolean;
  /** The catalog knows the tool: the span is named after it. */
  tool(name: string, connector: string): void;
  policy(): PolicySpan;
  upstream(connector: string, upstreamTool: string, target: { transport: 'tcp' | 'pipe' | 'inproc'; url?: string }): UpstreamSpan;
  /** A span from now until the audit write `p` settles; returns `p`. */
  audit<T>(p: Promise<T>, event: string): Promise<T>;
  /** The call's outcome record (decision, rule, outcome) on the call span. */
  outcome(record: Readonly<Record<string, unknown>>): void;
  /** gen_ai.tool.call.arguments / .result, when captureContent (the caller redacts). */
  content(what: 'arguments' | 'result', value: unknown): void;
}

/** The SERVER span of one request of the 2026-07-28 era (no session, no transport: src/broker/stateless-server.ts). */
export interface RequestTrace {
  /** Its tools/call's trace (the pipeline's spans, children of this one); undefined for another method. */
  call(): CallTrace | undefined;
  /** The answer it got (or none: the agent hung up, the handler failed): the span ends. */
  end(answer?: { result: Record<string, unknown> } | { error: { code: number; message: string } }): void;
}

/** What a sessionless request is traced by: its method, id and params (`_meta` holds the agent's trace context). */
export interface TracedRequest {
  method: string;
  id: string | number;
  params: Record<string, unknown>;
  /** The revision it named (mcp.protocol.version). */
  version: string;
  agent: string;
  via: 'token' | 'sandbox';
  /** Its HTTP headers (a `traceparent` there is a link, as for 2025-11-25 requests). */
  header?: (name: string) => string | null | undefined;
}

export interface ModelSpan {
  request(r: { model?: string | undefined; operation: string; stream?: boolean }): void;
  end(r: { outcome: string; status?: number | undefined; errorType?: string | undefined; inputTokens?: number | undefined; outputTokens?: number | undefined; cacheReadTokens?: number | undefined; cacheWriteTokens?: number | undefined; responseModel?: string | undefined; stopReason?: string | undefined }): void;
}

export interface Tracing {
  readonly config: TracingConfig;
  /** Wraps a session's server transport: one SERVER span per message it receives, ended when its response is sent. */
  traceTransport(transport: Transport, session: { id(): string; agent: string; via: 'token' | 'sandbox' }): void;
  /** The tools/call in flight as request `request` of session `session`. */
  call(session: string, request: string | number): CallTrace | undefined;
  /** A 2026-07-28 request (no session): its SERVER span, parented by the agent's `params._meta` as a 2025-11-25 request's is. */
  request(r: TracedRequest): RequestTrace;
  /** A model call (/llm); `traceparent` is the agent's HTTP header, if any. */
  modelCall(a: { provider: string; api: string; agent: string; url?: string; traceparent?: string | null; tracestate?: string | null }): ModelSpan;
  /** Exports what is queued (tests, shutdown). */
  flush(): Promise<void>;
  /** Exports what is queued, at most `graceMs`, then stops. */
  close(graceMs?: number): Promise<void>;
}

const PROTOCOLS: readonly TraceProtocol[] = ['http/protobuf', 'grpc'];
const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === '' ? undefined : t;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = nonEmpty(env[name]);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new GatehouseError('CONFIG_INVALID', `${name}=${JSON.stringify(v)}: expected a whole number greater than 0`);
  return n;
}

/**
 * Tracing as the OTEL_* variables configure it, or undefined when they
 * configure none (no endpoint, OTEL_SDK_DISABLED=true or
 * OTEL_TRACES_EXPORTER=none). A value it cannot use is an error naming the
 * variable (the gateway does not start on it).
 */
export function tracingConfig(env: NodeJS.ProcessEnv): TracingConfig | undefined {
  if (nonEmpty(env.OTEL_SDK_DISABLED)?.toLowerCase() === 'true') return undefined;
  const exporter = nonEmpty(env.OTEL_TRACES_EXPORTER)?.toLowerCase();
  if (exporter === 'none') return undefined;
  const endpoint = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ?? nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (endpoint === undefined) return undefined;
  if (exporter !== undefined && exporter !== 'otlp') {
    throw new GatehouseError('CONFIG_INVALID', `OTEL_TRACES_EXPORTER=${JSON.stringify(exporter)}: Gatehouse exports traces over OTLP only; unset it, or set it to otlp or none`);
  }
  let shown: string;
  try {
    // Shown in the log and the start-up report: without credentials or a query.
    const u = new URL(endpoint);
    shown = `${u.origin}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    throw new GatehouseError('CONFIG_INVALID', `${env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'}=${JSON.stringify(endpoint)} is not a URL (e.g. http://127.0.0.1:4318)`);
  }
  const protocolVar = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = (nonEmpty(env[protocolVar]) ?? 'http/protobuf').toLowerCase();
  if (!PROTOCOLS.includes(protocol as TraceProtocol)) {
    throw new GatehouseError('CONFIG_INVALID', `${protocolVar}=${JSON.stringify(protocol)}: use http/protobuf (the default) or grpc`);
  }
  const samplerName = (nonEmpty(env.OTEL_TRACES_SAMPLER) ?? 'parentbased_always_on').toLowerCase();
  if (!SAMPLERS.includes(samplerName)) throw new GatehouseError('CONFIG_INVALID', `OTEL_TRACES_SAMPLER=${JSON.stringify(samplerName)}: use one of ${SAMPLERS.join(', ')}`);
  const argText = nonEmpty(env.OTEL_TRACES_SAMPLER_ARG);
  const arg = argText === undefined ? undefined : Number(argText);
  if (arg !== undefined && !(Number.isFinite(arg) && arg >= 0 && arg <= 1)) throw new GatehouseError('CONFIG_INVALID', `OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(argText)}: expected a ratio from 0 to 1`);
  const batch: TracingConfig['batch'] = {};
  const q = positiveInt(env, 'OTEL_BSP_MAX_QUEUE_SIZE');
  const b = positiveInt(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE');
  const d = positiveInt(env, 'OTEL_BSP_SCHEDULE_DELAY');
  const t = positiveInt(env, 'OTEL_BSP_EXPORT_TIMEOUT');
  if (q !== undefined) batch.maxQueueSize = q;
  if (b !== undefined) batch.maxExportBatchSize = b;
  if (d !== undefined) batch.scheduledDelayMillis = d;
  if (t !== undefined) batch.exportTimeoutMillis = t;
  return {
    protocol: protocol as TraceProtocol,
    endpoint: shown,
    captureContent: nonEmpty(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)?.toLowerCase() === 'true',
    serviceName: nonEmpty(env.OTEL_SERVICE_NAME) ?? 'gatehouse',
    sampler: arg === undefined ? { name: samplerName } : { name: samplerName, arg },
    batch,
  };
}

/**
 * Starts tracing as configured. The OpenTelemetry SDK is loaded only now (not
 * at all when tracing is off), and only the exporter of the protocol in use
 * (gRPC's weighs some 5 MB more than HTTP/protobuf's).
 */
export async function startTracing(config: TracingConfig, logger: Logger): Promise<Tracing> {
  const [{ OtelTracing }, exporter] = await Promise.all([
    import('./traces-otel.js'),
    config.protocol === 'grpc'
      ? import('@opentelemetry/exporter-trace-otlp-grpc').then((m) => new m.OTLPTraceExporter())
      : import('@opentelemetry/exporter-trace-otlp-proto').then((m) => new m.OTLPTraceExporter()),
  ]);
  return new OtelTracing(config, exporter, logger);
}
