import { screenResult, toolResultCap } from './result-screen.js';
import { randomUUID } from 'node:crypto';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { CALL_INTENT_EVENT, type AuditSink } from '../audit/types.js';
import { cutString, summarizeArgs } from '../audit/summarize.js';
import { GatehouseError, INTERNAL_MESSAGE, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { CallContext } from '../policy/types.js';
import type { CallTrace, PolicySpan, TraceContext, UpstreamSpan } from '../telemetry/traces.js';
import type { AgentChannel } from '../upstreams/call-context.js';
import type { Upstream } from '../upstreams/upstream.js';
import { checkArgs, type SchemaChecker } from './args.js';
import type { Authorize, Hidden, Verdict } from './authorize.js';
import { hintsOf, type Catalog, type CatalogEntry } from './catalog.js';
import { notReadyError, type ConnectorState } from './not-ready.js';

export interface PipelineDeps {
  catalog: () => Catalog;
  upstream: (connector: string) => Upstream | undefined;
  /** The connector's argument checker (one per connector and tool list); without it, one shared checker. */
  schemaChecker?: (connector: string) => SchemaChecker;
  authorize: Authorize;
  /** Tools the policy denies this agent in every case: hidden from tools/list, and unknown when called. */
  hidden?: Hidden;
  /** Every registered tool connector's namespace and state: a call into one that lists no tools is told why. */
  connectors?: () => readonly ConnectorState[];
  audit: AuditSink;
  /** Removes secret values from anything leaving the gateway (results, errors, audit). */
  redact: <T>(value: T) => T;
  logger: Logger;
  now?: () => Date;
  /** Told of each call's outcome record with its exact durations in ms (metrics, src/telemetry/metrics.ts). */
  observe?: (record: Readonly<Record<string, unknown>>, totalMs: number, upstreamMs: number | undefined) => void;
}

export interface CallRequest {
  agent: string;
  /** The 2025-11-25 MCP session it came on (the 2026-07-28 era has none). */
  session?: string;
  /** The sandbox session whose socket it came in on (2026-07-28 calls, which have no MCP session to tie it to). */
  sandbox?: string;
  /** The protocol revision the agent spoke, for the audit record. */
  protocol?: string;
  name: string;
  args: unknown;
  signal: AbortSignal;
  onprogress?: (p: Progress) => void;
  /** The agent's side of this call, for the upstream's sampling/elicitation requests and log messages. */
  channel?: AgentChannel;
  /** Counters of what the call's upstream sent that was coalesced or dropped, for its outcome record. */
  stats?: () => Record<string, number>;
  /** This call's trace (src/telemetry/traces.ts), when tracing is on: its spans are children of the request's SERVER span. */
  trace?: CallTrace;
  /**
   * The agent's W3C trace context from the request's `_meta` (traceparent,
   * tracestate; checked by trace.ts). Sent upstream as is when the gateway
   * has no span of its own for the call (tracing off); with tracing on, the
   * gateway's upstream span (a descendant of it) is sent instead.
   */
  traceMeta?: TraceContext;
}

/** MissingRequiredClientCapability (MCP 2026-07-28, basic/index §Error Codes). */
const MISSING_CLIENT_CAPABILITY = -32021;

export type Outcome = 'ok' | 'error' | 'denied' | 'timeout' | 'rejected' | 'cancelled';

function unknownTool(name: unknown): GatehouseError {
  return new GatehouseError('TOOL_UNKNOWN', `Unknown tool: ${String(name).slice(0, 100)}`);
}

/** Stage 1: the catalog. A tool that is not exposed does not exist for the agent. */
export function lookupTool(catalog: Catalog, name: string): CatalogEntry {
  const entry = typeof name === 'string' ? catalog.byName.get(name) : undefined;
  if (!entry) throw unknownTool(name);
  return entry;
}

/**
 * Stage 1a: a name the catalog lacks that falls in the namespace of a
 * connector listing no tools now (a missing secret, starting, failed) gets
 * CONNECTOR_NOT_READY saying why, unless the policy hides it from this
 * agent; anything else stays unknown.
 */
export function missingTool(deps: Pick<PipelineDeps, 'connectors' | 'hidden' | 'redact'>, agent: string, name: unknown): GatehouseError {
  const e = typeof name === 'string' && deps.connectors ? notReadyError(deps.connectors(), name) : undefined;
  const connector = e?.details?.connector;
  if (e === undefined || typeof connector !== 'string' || deps.hidden?.(agent, connector, name as string, undefined) === true) return unknownTool(name);
  return new GatehouseError(e.code, deps.redact(e.message), { details: { connector } });
}

/**
 * Stage 1b: a tool the policy hides from this agent is unknown to it, with
 * the very error an absent tool gets, and before its arguments are looked at
 * (a schema error would confirm that the tool exists and what it takes).
 */
export function visibleTool(deps: Pick<PipelineDeps, 'hidden'>, agent: string, entry: CatalogEntry): CatalogEntry {
  if (deps.hidden?.(agent, entry.connector, entry.name, hintsOf(entry.tool.annotations)) === true) {
    throw new GatehouseError('TOOL_UNKNOWN', unknownTool(entry.name).message, { details: { hiddenByPolicy: true } });
  }
  return entry;
}

export function toolError(text: string, code: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true, _meta: { 'gatehouse/error': code } };
}

function deniedText(v: Extract<Verdict, { allowed: false }>): string {
  const rule = v.decision.ruleId === null ? 'the policy default' : `rule "${v.decision.ruleId}"`;
  return `${v.message} (${v.code === 'POLICY_DENIED' ? 'denied by' : 'decided by'} ${rule})`;
}

/**
 * Deeper than any tool result needs (as for agent arguments, 100 levels in
 * src/server/json-body.ts); far below what exhausts the stack of the
 * recursive walks that follow (redaction, JSON.stringify: ~5,000 levels).
 */
export const MAX_RESULT_DEPTH = 100;

/**
 * Stage 5a: why a result cannot be handed on as it came, if it can't: nested
 * deeper than MAX_RESULT_DEPTH (or cyclic), or holding a number JSON cannot
 * carry (it would reach the agent as `null`). Walked without recursion, each
 * object once.
 */
export function resultProblem(result: unknown): string | undefined {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: result, depth: 1 }];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const { v, depth } = stack.pop() as { v: unknown; depth: number };
    if (typeof v === 'number' && !Number.isFinite(v)) return `the connector's result holds a number JSON cannot carry (${v})`;
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    if (depth > MAX_RESULT_DEPTH) return `the connector's result is nested deeper than ${MAX_RESULT_DEPTH} levels`;
    seen.add(v);
    for (const x of Object.values(v)) stack.push({ v: x, depth: depth + 1 });
  }
  return undefined;
}

/** Stage 5b: the result redacted, and its size as JSON; or why it can't be handed on. */
export function deliverable(redact: PipelineDeps['redact'], result: CallToolResult): { safe: CallToolResult; bytes: number } | { problem: string } {
  const problem = resultProblem(result);
  if (problem !== undefined) return { problem };
  let safe: CallToolResult;
  try {
    safe = redact(result);
  } catch (e) {
    return { problem: `the connector's result could not be checked for secrets (${cutString(errorMessage(e))})` };
  }
  try {
    return { safe, bytes: Buffer.byteLength(JSON.stringify(safe)) };
  } catch (e) {
    return { problem: `the connector's result could not be serialized (${cutString(errorMessage(e))})` };
  }
}

function outcomeOf(e: GatehouseError): Outcome {
  if (e.code === 'UPSTREAM_TIMEOUT') return 'timeout';
  return 'error';
}

/**
 * The call pipeline: catalog → argument check → policy → intent record →
 * upstream → result check and redaction → outcome record. A call refused
 * before the upstream has one record; a forwarded call (whatever its result
 * looked like) has an intent on disk before it is forwarded and its outcome
 * on disk before the result is returned, linked by a random `call` id (an
 * intent alone: the gateway stopped mid-call).
 * Throws GatehouseError (TOOL_UNKNOWN, CONNECTOR_NOT_READY, ARGS_INVALID, AUDIT_UNAVAILABLE) for
 * JSON-RPC errors; every other failure is a tool result with isError.
 */
export async function handleToolCall(deps: PipelineDeps, req: CallRequest): Promise<CallToolResult> {
  const started = performance.now();
  const trace = req.trace === undefined ? undefined : guarded(req.trace);
  // Exact, for metrics (the record keeps whole milliseconds).
  let upstreamMs: number | undefined;
  // The tool name is agent data: stored as sent; only a very long one is cut, with its size noted (as arguments are).
  const base = {
    event: 'tools/call',
    agent: req.agent,
    ...(req.session !== undefined ? { session: req.session } : {}),
    ...(req.sandbox !== undefined ? { sandbox: req.sandbox } : {}),
    ...(req.protocol !== undefined ? { protocol: req.protocol } : {}),
    tool: summarizeArgs(String(req.name)) as string,
  };
  const recordOf = (fields: Record<string, unknown>) => {
    const ms = performance.now() - started;
    const r = deps.redact({ ...base, ...fields, durationMs: Math.round(ms * 1000) / 1000 });
    // The call's one outcome record (an intent names its own event).
    if (fields.event === undefined) {
      try {
        deps.observe?.(r, ms, upstreamMs);
      } catch {
        // Telemetry never fails a call, nor costs it its record.
      }
      trace?.outcome(r);
    }
    return r;
  };
  const traced = (p: Promise<void>, fields: Record<string, unknown>) => (trace === undefined ? p : trace.audit(p, typeof fields.event === 'string' ? fields.event : base.event));
  const record = (fields: Record<string, unknown>) => traced(deps.audit.append(recordOf(fields)), fields);
  // Once the upstream has run, its record must land even if the log fails right now (AuditSink.appendOutcome).
  const recordForwarded = (fields: Record<string, unknown>) => (deps.audit.appendOutcome ? traced(deps.audit.appendOutcome(recordOf(fields)), fields) : record(fields));

  let entry: CatalogEntry;
  try {
    deps.audit.assertWritable();
    const found = typeof req.name === 'string' ? deps.catalog().byName.get(req.name) : undefined;
    if (found === undefined) throw missingTool(deps, req.agent, req.name);
    entry = visibleTool(deps, req.agent, found);
    trace?.tool(entry.name, entry.connector);
    checkArgs(entry.name, entry.tool.inputSchema, req.args ?? {}, deps.schemaChecker?.(entry.connector));
  } catch (e) {
    if (e instanceof GatehouseError && e.code !== 'AUDIT_UNAVAILABLE') {
      // The admin sees why (hiddenByPolicy); the agent sees an unknown tool.
      const connector = e.code === 'CONNECTOR_NOT_READY' && typeof e.details?.connector === 'string' ? { connector: e.details.connector } : {};
      await record({ ...connector, outcome: 'rejected', error: { code: e.code, message: e.message }, ...(e.details?.hiddenByPolicy === true ? { hiddenByPolicy: true } : {}) });
    }
    throw e;
  }
  const args = (req.args ?? {}) as Record<string, unknown>;
  const where = { connector: entry.connector, upstreamTool: entry.upstreamName, args: summarizeArgs(args) };

  const annotations = hintsOf(entry.tool.annotations);
  const ctx: CallContext = {
    agent: req.agent,
    connector: entry.connector,
    tool: entry.name,
    upstreamTool: entry.upstreamName,
    args,
    ...(annotations ? { annotations } : {}),
    time: deps.now?.() ?? new Date(),
  };
  const policySpan = trace?.policy();
  const verdict = await deps.authorize(ctx, req.signal);
  policySpan?.end({
    decision: verdict.decision.effect,
    rule: verdict.decision.ruleId,
    allowed: verdict.allowed,
    ...(verdict.allowed ? {} : { code: verdict.code }),
    ...(verdict.approvalId !== undefined ? { approvalId: verdict.approvalId } : {}),
    ...(verdict.approvalWait !== undefined ? { approvalWait: verdict.approvalWait } : {}),
  });
  const decided = {
    decision: verdict.decision.effect,
    rule: verdict.decision.ruleId,
    ...(verdict.approvalId !== undefined ? { approvalId: verdict.approvalId } : {}),
  };
  if (!verdict.allowed) {
    const text = deniedText(verdict);
    await record({ ...where, ...decided, outcome: 'denied', error: { code: verdict.code, message: text } });
    return toolError(text, verdict.code);
  }

  const upstream = deps.upstream(entry.connector);
  // Refused here (log failing, disk below headroom): a JSON-RPC error, nothing forwarded.
  deps.audit.assertWritable();
  if (!upstream) {
    const message = `connector "${entry.connector}" is not running`;
    await record({ ...where, ...decided, outcome: 'error', error: { code: 'CONNECTOR_NOT_READY', message } });
    return toolError(message, 'CONNECTOR_NOT_READY');
  }
  const call = randomUUID();
  await record({ ...where, ...decided, event: CALL_INTENT_EVENT, call });
  if (trace?.captureContent === true) trace.content('arguments', deps.redact(args));
  const upSpan = trace?.upstream(entry.connector, entry.upstreamName, upstreamTarget(upstream));
  const upTrace = upSpan?.context ?? req.traceMeta;
  const upStart = performance.now();
  let result: CallToolResult;
  try {
    result = await upstream.call(entry.upstreamName, args, {
      signal: req.signal,
      ...(req.onprogress ? { onprogress: req.onprogress } : {}),
      ...(req.channel ? { origin: { agent: req.agent, ...(req.session !== undefined ? { session: req.session } : {}), tool: entry.name, signal: req.signal, channel: req.channel } } : {}),
      // The gateway's own upstream span when it traces; otherwise the agent's context, passed through (issue #20).
      ...(upTrace ? { trace: upTrace } : {}),
    });
  } catch (e) {
    upstreamMs = performance.now() - upStart;
    const err = e instanceof GatehouseError ? e : new GatehouseError('INTERNAL', errorMessage(e));
    upSpan?.end(err.code);
    const cancelled = req.signal.aborted;
    const message = deps.redact(err.message);
    // The upstream's text: cut for the record and the log, its size noted (the agent gets it whole).
    const noted = cutString(message);
    await recordForwarded({
      ...where,
      ...decided,
      call,
      outcome: cancelled ? 'cancelled' : outcomeOf(err),
      upstreamMs: Math.round(upstreamMs),
      error: { code: err.code, message: noted },
      ...req.stats?.(),
    });
    if (err.code === 'INTERNAL') deps.logger.error({ err: noted }, 'tool call failed');
    // A 2026-07-28 upstream needing a client capability the agent did not declare: the agent's error to fix, not a tool result.
    if (err.details?.upstreamCode === MISSING_CLIENT_CAPABILITY) throw err;
    // The record keeps an internal error's text; the agent gets none of it (a path, a stack).
    return toolError(err.code === 'INTERNAL' ? INTERNAL_MESSAGE : message, err.code);
  }
  upstreamMs = performance.now() - upStart;
  upSpan?.end((result as { isError?: unknown }).isError === true ? 'tool_error' : undefined);
  const upMs = Math.round(upstreamMs);
  // Whatever shape the result has, the call that ran gets its record.
  const out = deliverable(deps.redact, result);
  if ('problem' in out) {
    await recordForwarded({ ...where, ...decided, call, outcome: 'error', upstreamMs: upMs, error: { code: 'UPSTREAM_PROTOCOL', message: out.problem }, ...req.stats?.() });
    return toolError(out.problem, 'UPSTREAM_PROTOCOL');
  }
  const cap = toolResultCap(upstream.connector.limits.toolResultBytes, entry.upstreamName);
  if (cap !== undefined && out.bytes > cap) {
    const problem = `the result of ${entry.name} is ${out.bytes} bytes, over its ${cap}-byte cap (limits.toolResultBytes of connector "${entry.connector}"); ask for less (a narrower query, a page) or raise the cap`;
    await recordForwarded({ ...where, ...decided, call, outcome: 'error', upstreamMs: upMs, resultBytes: out.bytes, error: { code: 'RESULT_TOO_LARGE', message: problem }, ...req.stats?.() });
    return toolError(problem, 'RESULT_TOO_LARGE');
  }
  const screened = screenResult(out.safe, upstream.connector.results.invisible);
  await recordForwarded({
    ...where,
    ...decided,
    call,
    outcome: out.safe.isError === true ? 'error' : 'ok',
    upstreamMs: upMs,
    resultBytes: out.bytes,
    ...(screened.findings ? { resultFindings: screened.findings } : {}),
    ...(screened.stripped !== undefined ? { invisibleStripped: screened.stripped } : {}),
    ...req.stats?.(),
  });
  if (trace?.captureContent === true) trace.content('result', screened.result);
  return screened.result;
}

/** A hook's result, or `fallback` when it throws. */
function quiet<R>(f: () => R, fallback: R): R {
  try {
    return f();
  } catch {
    return fallback;
  }
}

/**
 * `t` with every hook guarded: a trace that throws (a bug, a broken
 * exporter) costs its spans, never the call or its records.
 */
function guarded(t: CallTrace): Omit<CallTrace, 'policy' | 'upstream'> & { policy(): PolicySpan | undefined; upstream(...a: Parameters<CallTrace['upstream']>): UpstreamSpan | undefined } {
  return {
    captureContent: t.captureContent,
    tool: (name, connector) => quiet(() => t.tool(name, connector), undefined),
    policy: () => {
      const span = quiet(() => t.policy(), undefined);
      return span && { end: (v) => quiet(() => span.end(v), undefined) };
    },
    upstream: (...a) => {
      const span = quiet(() => t.upstream(...a), undefined);
      const context = quiet(() => span?.context, undefined);
      return span && context && { context, end: (errorType) => quiet(() => span.end(errorType), undefined) };
    },
    audit: (p, event) => quiet(() => t.audit(p, event), p),
    outcome: (r) => quiet(() => t.outcome(r), undefined),
    content: (what, value) => quiet(() => t.content(what, value), undefined),
  };
}

/** How the upstream is reached, for its trace span (network.transport, server.address). */
function upstreamTarget(u: Upstream): { transport: 'tcp' | 'pipe' | 'inproc'; url?: string } {
  const c = u.connector;
  if (c.kind === 'http') return { transport: 'tcp', url: c.url };
  return { transport: c.kind === 'stdio' ? 'pipe' : 'inproc' };
}
