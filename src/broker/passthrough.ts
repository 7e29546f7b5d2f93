/**
 * Server-to-client traffic through the gateway: an upstream's `sampling/createMessage`
 * and `elicitation/create` made during an agent's call go to that agent, on the
 * call's own stream, and the agent's answer goes back; its `notifications/message`
 * during a call go to the call's stream at the session's log level.
 *
 * An upstream may not drive the agent's model or ask its user unless the registry
 * says `sampling: allow` / `elicitation: allow` for it (default deny). Every such
 * request is audited (`sampling.request` / `elicitation.request`, decision allow|deny)
 * before the upstream gets its answer or its error.
 *
 * Each call may make `limits.requestsPerMinute` of them, and each connector as
 * many outside any call; beyond that they are refused at once, and
 * only the first refusal of an interval has its own record: the rest are
 * counted into one summary record (refusal-summary.ts).
 */
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ErrorCode,
  LoggingLevelSchema,
  McpError,
  type CreateMessageRequest,
  type ElicitRequest,
  type LoggingMessageNotification,
} from '@modelcontextprotocol/sdk/types.js';
import { appendOrQueue } from '../audit/append-or-queue.js';
import type { AuditSink } from '../audit/types.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { ToolConnector } from '../registry/schema.js';
import type { CallOrigin, Route, ServerMessageHandler } from '../upstreams/call-context.js';
import { limitsOf } from '../upstreams/limits.js';
import { RefusalSummaries } from './refusal-summary.js';
import { TokenBucket } from './token-bucket.js';

export interface PassthroughLimits {
  /** Largest sampling request (JSON bytes) forwarded to an agent. */
  samplingBytes: number;
  /** Largest elicitation request forwarded to an agent. */
  elicitationBytes: number;
  /** Largest answer from the agent passed back to the upstream. */
  answerBytes: number;
  /** Larger log `data` is replaced by a truncated string. */
  logDataBytes: number;
}

export const DEFAULT_PASSTHROUGH_LIMITS: PassthroughLimits = {
  samplingBytes: 1024 * 1024,
  elicitationBytes: 64 * 1024,
  answerBytes: 1024 * 1024,
  logDataBytes: 16 * 1024,
};

export interface PassthroughDeps {
  audit: AuditSink;
  /** Removes secret values from anything leaving the gateway. */
  redact: <T>(value: T) => T;
  logger: Logger;
  limits?: Partial<PassthroughLimits>;
  /** How often the counts of rate-limited refusals are written as summary records (default 60 s). */
  summaryIntervalMs?: number;
  /** A monotonic clock in ms for the rate limits (tests). */
  now?: () => number;
}

/** The passthrough, and how to write its last refusal summaries at shutdown. */
export interface Passthrough extends ServerMessageHandler {
  close(): Promise<void>;
}

type Kind = 'sampling' | 'elicitation';

export type Decision =
  | { allow: true; origin: CallOrigin; params: Record<string, unknown> }
  | { allow: false; reason: string };

const LEVELS = LoggingLevelSchema.options;
/** The most of an upstream's logger name an agent is sent. */
const LOGGER_CHARS = 200;

function jsonBytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v) ?? '');
}

/**
 * Whether an upstream's request may go to the agent, and in what form. Pure: the
 * registry entry, the request, the route and the agent's declared capabilities.
 */
export function decide(kind: Kind, connector: ToolConnector, params: unknown, route: Route, limits: PassthroughLimits): Decision {
  if (connector[kind] !== 'allow') {
    return { allow: false, reason: `${kind} is not allowed for connector "${connector.name}" (an admin can set "${kind}: allow" in its registry entry)` };
  }
  const method = kind === 'sampling' ? 'sampling/createMessage' : 'elicitation/create';
  const parsed = (kind === 'sampling' ? CreateMessageRequestSchema : ElicitRequestSchema).safeParse({ method, params });
  if (!parsed.success) return { allow: false, reason: `invalid ${method} request` };
  const bytes = jsonBytes(params);
  const max = kind === 'sampling' ? limits.samplingBytes : limits.elicitationBytes;
  if (bytes > max) return { allow: false, reason: `the ${kind} request is ${bytes} bytes, over the limit of ${max}` };
  if (!route.ok) return { allow: false, reason: `cannot tell which agent call it belongs to: ${route.reason}` };
  const caps = route.origin.channel.capabilities();
  const p = params as Record<string, unknown>;
  if (kind === 'sampling') {
    if (!caps?.sampling) return { allow: false, reason: 'the agent did not declare the sampling capability' };
    // We declare neither sampling.tools nor sampling.context to upstreams (MCP 2025-11-25, client/sampling).
    if (p.tools !== undefined || p.toolChoice !== undefined) return { allow: false, reason: 'sampling with tools is not supported through the gateway' };
    // Context from the agent's other servers must not flow to this upstream.
    const { includeContext: _ignored, ...rest } = p;
    return { allow: true, origin: route.origin, params: { ...rest, includeContext: 'none' } };
  }
  if (!caps?.elicitation) return { allow: false, reason: 'the agent did not declare the elicitation capability' };
  // Only form mode is declared to upstreams; a URL-mode request would send the user to a page of the upstream's choosing.
  if (p.mode !== undefined && p.mode !== 'form') return { allow: false, reason: `elicitation mode "${String(p.mode)}" is not supported through the gateway` };
  return { allow: true, origin: route.origin, params: p };
}

/** Who a request was for, in its audit record (a 2026-07-28 call has no session). */
function originFields(route: Extract<Route, { ok: true }>): Record<string, unknown> {
  const o = route.origin;
  return { agent: o.agent, ...(o.session !== undefined ? { session: o.session } : {}), tool: o.tool, via: route.via };
}

/** The broker's handler for an upstream's server-to-client traffic (given to every Upstream). */
export function createPassthrough(deps: PassthroughDeps): Passthrough {
  const limits = { ...DEFAULT_PASSTHROUGH_LIMITS, ...deps.limits };
  // Held by the call or the connector definition they limit: they go with it (a changed definition starts afresh).
  const perCall = new WeakMap<CallOrigin, TokenBucket>();
  const outsideCalls = new WeakMap<ToolConnector, TokenBucket>();
  const summaries = new RefusalSummaries({ audit: deps.audit, logger: deps.logger, intervalMs: deps.summaryIntervalMs ?? 60_000 });

  const bucketOf = <K extends object>(held: WeakMap<K, TokenBucket>, key: K, connector: ToolConnector): TokenBucket => {
    let b = held.get(key);
    if (b === undefined) held.set(key, (b = new TokenBucket(limitsOf(connector).requestsPerMinute, 60_000, deps.now)));
    return b;
  };
  // One error per distinct refusal, thrown again and again: a flood must not cost a stack trace each (one McpError is ~25 µs).
  const refusals = new Map<string, McpError>();
  const refusal = (message: string): McpError => {
    let e = refusals.get(message);
    if (e === undefined) {
      if (refusals.size >= 64) refusals.clear();
      refusals.set(message, (e = new McpError(ErrorCode.InvalidRequest, message, { code: 'RATE_LIMITED' })));
    }
    return e;
  };

  return {
    async request({ connector, method, params, route, signal, timeoutMs, key }) {
      const kind: Kind = method === 'sampling/createMessage' ? 'sampling' : 'elicitation';
      // First, and before anything that costs (serialising the params, a record): a flood is refused at the price of a counter.
      const bucket = route.ok ? bucketOf(perCall, route.origin, connector) : bucketOf(outsideCalls, connector, connector);
      if (!bucket.take()) {
        const reason = `over the limit of ${bucket.capacity} sampling/elicitation requests per minute ${route.ok ? 'in one call' : 'outside any call'} (limits.requestsPerMinute)`;
        if (summaries.note({ connector: connector.name, kind }, reason, route.ok)) {
          const record = {
            event: `${kind}.request`,
            connector: connector.name,
            ...(route.ok ? originFields(route) : {}),
            decision: 'deny',
            outcome: 'denied',
            rateLimited: true,
            reason,
          };
          await appendOrQueue(deps.audit, record, deps.logger);
        }
        throw refusal(`Gatehouse refused the ${kind} request: ${reason}`);
      }
      const started = performance.now();
      const base = {
        event: `${kind}.request`,
        connector: connector.name,
        ...(route.ok
          ? originFields(route)
          : route.candidates.length > 0
            ? { candidates: route.candidates }
            : {}),
        requestBytes: jsonBytes(params),
      };
      const durationMs = () => Math.round((performance.now() - started) * 1000) / 1000;
      // Every record here is of something decided or done: kept if the log cannot take it now (appendOrQueue).
      const audit = (fields: Record<string, unknown>) => appendOrQueue(deps.audit, deps.redact({ ...base, ...fields, durationMs: durationMs() }), deps.logger);

      const d = decide(kind, connector, params, route, limits);
      if (!d.allow) {
        await audit({ decision: 'deny', outcome: 'denied', reason: d.reason });
        throw new McpError(ErrorCode.InvalidRequest, `Gatehouse refused the ${kind} request: ${d.reason}`);
      }

      // Forwarded as sent (decide() checked the shape): the SDK's parsed copy would drop fields it does not know.
      const forwarded: unknown = deps.redact({ ...d.params, _meta: { ...(d.params._meta as object | undefined), 'gatehouse/connector': connector.name } });
      const opts = { signal: AbortSignal.any([signal, d.origin.signal]), timeout: timeoutMs, ...(key !== undefined ? { key } : {}) };
      let result: Record<string, unknown>;
      try {
        result =
          kind === 'sampling'
            ? await d.origin.channel.createMessage(forwarded as CreateMessageRequest['params'], opts)
            : await d.origin.channel.elicit(forwarded as ElicitRequest['params'], opts);
      } catch (e) {
        const message = deps.redact(errorMessage(e));
        const outcome = opts.signal.aborted ? 'cancelled' : 'error';
        await audit({ decision: 'allow', outcome, error: { message } });
        throw e instanceof McpError ? new McpError(e.code, message) : new McpError(ErrorCode.InternalError, `the agent did not answer the ${kind} request: ${message}`);
      }
      const resultBytes = jsonBytes(result);
      if (resultBytes > limits.answerBytes) {
        const reason = `the agent's answer is ${resultBytes} bytes, over the limit of ${limits.answerBytes}`;
        await audit({ decision: 'allow', outcome: 'error', resultBytes, error: { message: reason } });
        throw new McpError(ErrorCode.InternalError, `Gatehouse refused to pass on the ${kind} answer: ${reason}`);
      }
      const summary = kind === 'sampling' ? { model: String(result.model).slice(0, 200) } : { action: result.action };
      const kept = await audit({ decision: 'allow', outcome: 'ok', resultBytes, ...summary });
      // Fail closed: no answer passes without its record on disk.
      if (kept.state !== 'written') throw new McpError(ErrorCode.InternalError, `Gatehouse could not audit the ${kind} request: ${errorMessage(kept.error)}`);
      return result;
    },

    log({ connector, params, route }) {
      if (!route.ok) {
        deps.logger.debug({ connector: connector.name, reason: route.reason }, 'upstream log message not forwarded');
        return;
      }
      const min = route.origin.channel.logLevel();
      if (min !== undefined && LEVELS.indexOf(params.level) < LEVELS.indexOf(min)) return;
      // Prepared only if the call's rate lets it through. Redacted first, so truncation cannot cut a
      // secret into pieces the redactor no longer recognises; only the fields a log message has, each bounded.
      route.origin.channel.log(params, (raw) => {
        const clean = deps.redact({ level: raw.level, logger: raw.logger, data: raw.data });
        const bytes = jsonBytes(clean.data);
        const data = bytes > limits.logDataBytes ? `${(JSON.stringify(clean.data) ?? '').slice(0, limits.logDataBytes)}… (truncated by Gatehouse, ${bytes} bytes)` : clean.data;
        const out: LoggingMessageNotification['params'] = { level: clean.level, data };
        if (typeof clean.logger === 'string') out.logger = clean.logger.length > LOGGER_CHARS ? `${clean.logger.slice(0, LOGGER_CHARS)}…` : clean.logger;
        return out;
      });
    },

    close: () => summaries.close(),
  };
}
