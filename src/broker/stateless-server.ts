/**
 * The agent-facing MCP server of the 2026-07-28 revision: no session, no
 * `initialize`; every request carries its protocol version, its client's
 * capabilities and (optionally) its log level in `_meta`, and is answered on
 * its own (basic/versioning). One instance serves every agent; nothing here
 * knows HTTP (the edge, src/server/stateless-http.ts, hands over a reply).
 *
 * Served: `server/discover`, `tools/list` (with cache hints, in the
 * catalog's stable order), `tools/call` (the same pipeline as 2025-11-25;
 * upstream questions become `InputRequiredResult`s, input-required.ts) and
 * `subscriptions/listen` (tool list changes). Anything else is an unknown
 * method. A tools/call is decided by name (unknown, hidden by policy) before
 * its arguments are looked at: the pipeline's own order.
 *
 * Traces: with tracing on, each request is a SERVER span whose parent is the
 * agent's `params._meta` traceparent (as a 2025-11-25 request's is); a
 * tools/call's pipeline spans are children of its first round's span.
 */
import type { CallToolResult, ClientCapabilities, ListToolsResult, LoggingLevel, Progress } from '@modelcontextprotocol/sdk/types.js';
import { LoggingLevelSchema } from '@modelcontextprotocol/sdk/types.js';
import { META, MODERN_PROTOCOL_VERSIONS } from '../config/protocol.js';
import { VERSION } from '../config/paths.js';
import { GatehouseError, JsonRpc, toJsonRpcError } from '../errors.js';
import type { AgentChannel } from '../upstreams/call-context.js';
import type { CallTrace, RequestTrace } from '../telemetry/traces.js';
import { CallNotifications } from './call-notifications.js';
import { hintsOf, pageOf } from './catalog.js';
import type { Gateway } from './gateway.js';
import { ParkedCalls, type AgentCall, type RoundOutcome } from './input-required.js';
import { boundedProgress, fingerprint, notificationRate, TOOLS_PAGE_SIZE } from './session-server.js';
import { traceContext } from './trace.js';
import { paramDeclarations, paramHeaderProblem } from '../upstreams/param-headers.js';

/** How long an agent may keep its tools/list (caching §Time-to-Live); a change is also announced on subscriptions/listen. */
export const TOOLS_LIST_TTL_MS = 60_000;
/** What server/discover says does not change while the gateway runs. */
export const DISCOVER_TTL_MS = 300_000;
/** subscriptions/listen streams of one agent (one sandbox or one token agent), and of all together. */
export const MAX_LISTENERS_PER_AGENT = 8;
export const MAX_LISTENERS = 512;
/** The upstream's -32021 (MissingRequiredClientCapability): relayed as such, the agent must declare the capability. */
const MISSING_CLIENT_CAPABILITY = -32021;
/** HeaderMismatch (MCP 2026-07-28, basic/index §Error Codes). */
const HEADER_MISMATCH = -32020;

const LEVELS = LoggingLevelSchema.options;

export interface StatelessCaller {
  agent: string;
  /** One sandbox or one token agent: who may resume a parked call, and whose limits count. */
  principal: string;
  /** The sandbox session it came in on (for the audit record: there is no MCP session). */
  sandbox?: string;
}

export interface StatelessRequest {
  caller: StatelessCaller;
  id: string | number;
  method: string;
  params: Record<string, unknown>;
  /** The protocol revision the request named (already checked to be served). */
  version: string;
  /** The request's HTTP headers (case-insensitive), for the `Mcp-Param-*` check; none on other transports. */
  header?: (name: string) => string | null | undefined;
}

/** The edge's side of one request: what is written here reaches the agent on that request's response. */
export interface McpReply {
  /** Aborted when the agent closed the response before its end: that is cancellation (transports §Cancellation). */
  readonly signal: AbortSignal;
  /** A notification about this request, sent before its response (turns the response into an SSE stream). */
  notify(method: string, params: Record<string, unknown>): void;
  result(result: Record<string, unknown>): void;
  /** A JSON-RPC error; `status` when the spec gives it one (default 200, in band). */
  error(code: number, message: string, data?: unknown, status?: number): void;
  /** Opens the response as a stream now and keeps it open (subscriptions/listen). */
  stream(): void;
}

/** What one round of a tools/call request brings: its reply and its own `_meta`. */
interface CallView {
  reply: McpReply;
  progressToken: string | number | undefined;
  logLevel: LoggingLevel | undefined;
  capabilities: ClientCapabilities;
}

/** The request's tools/call trace, if any (a hook that throws costs the spans, never the call). */
function quietCall(t: RequestTrace | undefined): CallTrace | undefined {
  try {
    return t?.call();
  } catch {
    return undefined;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function viewOf(reply: McpReply, meta: Record<string, unknown> | undefined): CallView {
  const token = meta?.progressToken;
  const level = meta?.[META.logLevel];
  const caps = meta?.[META.clientCapabilities];
  return {
    reply,
    progressToken: typeof token === 'string' || typeof token === 'number' ? token : undefined,
    logLevel: typeof level === 'string' && (LEVELS as readonly string[]).includes(level) ? (level as LoggingLevel) : undefined,
    capabilities: isPlainObject(caps) ? (caps as ClientCapabilities) : {},
  };
}

export class StatelessMcp {
  private readonly gateway: Gateway;
  readonly parked: ParkedCalls;
  private listeners = 0;
  private readonly listenersOf = new Map<string, number>();
  private readonly closers = new Set<() => void>();

  constructor(gateway: Gateway, opts: { parked?: ParkedCalls } = {}) {
    this.gateway = gateway;
    this.parked = opts.parked ?? new ParkedCalls();
    gateway.on('closing', () => this.close());
  }

  async handle(req: StatelessRequest, reply: McpReply): Promise<void> {
    const traced = this.traced(req, reply);
    if (traced === undefined) return this.dispatch(req, reply, undefined);
    try {
      await this.dispatch(req, traced.reply, traced.trace);
    } catch (e) {
      traced.end({ error: { code: JsonRpc.InternalError, message: 'Internal gateway error' } });
      throw e;
    } finally {
      traced.end();
    }
  }

  private dispatch(req: StatelessRequest, reply: McpReply, trace: RequestTrace | undefined): Promise<void> | void {
    switch (req.method) {
      case 'server/discover':
        return reply.result(this.discover());
      case 'tools/list':
        return this.listTools(req, reply);
      case 'tools/call':
        return this.callTool(req, reply, trace);
      case 'subscriptions/listen':
        return this.listen(req, reply);
      default:
        // transports/streamable-http §Protocol Version Header: an unknown method is 404 with -32601.
        return reply.error(JsonRpc.MethodNotFound, `Method not found: ${req.method.slice(0, 100)}`, undefined, 404);
    }
  }

  /**
   * With tracing on, the request's SERVER span (src/telemetry/traces.ts), its
   * parent the agent's `params._meta` traceparent as for a 2025-11-25
   * request, ended by the answer (or the agent hanging up); and the reply
   * that ends it. Telemetry never fails a request: a hook that throws costs
   * the span only.
   */
  private traced(req: StatelessRequest, reply: McpReply): { reply: McpReply; trace: RequestTrace; end: RequestTrace['end'] } | undefined {
    const tracing = this.gateway.opts.tracing;
    if (tracing === undefined) return undefined;
    let trace: RequestTrace;
    try {
      const via = req.caller.sandbox !== undefined ? 'sandbox' : 'token';
      trace = tracing.request({ method: req.method, id: req.id, params: req.params, version: req.version, agent: req.caller.agent, via, ...(req.header ? { header: req.header } : {}) });
    } catch {
      return undefined;
    }
    const end: RequestTrace['end'] = (answer) => {
      try {
        trace.end(answer);
      } catch {
        // Telemetry never fails a request.
      }
    };
    const onHangUp = () => end();
    reply.signal.addEventListener('abort', onHangUp, { once: true });
    const ended: RequestTrace['end'] = (answer) => {
      reply.signal.removeEventListener('abort', onHangUp);
      end(answer);
    };
    const wrapped: McpReply = {
      get signal() {
        return reply.signal;
      },
      notify: (method, params) => reply.notify(method, params),
      stream: () => reply.stream(),
      result: (result) => {
        ended({ result });
        reply.result(result);
      },
      error: (code, message, data, status) => {
        ended({ error: { code, message } });
        reply.error(code, message, data, status);
      },
    };
    return { reply: wrapped, trace, end: ended };
  }

  discover(): Record<string, unknown> {
    return {
      resultType: 'complete',
      supportedVersions: [...MODERN_PROTOCOL_VERSIONS],
      capabilities: { tools: { listChanged: true }, logging: {} },
      instructions: 'Tools brokered by Gatehouse. Every call is decided by policy and audited.',
      _meta: { [META.serverInfo]: { name: 'gatehouse', version: VERSION, title: 'Gatehouse MCP gateway' } },
      ttlMs: DISCOVER_TTL_MS,
      // The same for every agent: what each may see is tools/list's business.
      cacheScope: 'public',
    };
  }

  private visible(agent: string) {
    const g = this.gateway;
    return g.catalog.sorted.filter((e) => !g.opts.hidden(agent, e.connector, e.name, hintsOf(e.tool.annotations)));
  }

  private async listTools(req: StatelessRequest, reply: McpReply): Promise<void> {
    const { caller } = req;
    const cursor = req.params.cursor;
    if (cursor !== undefined && typeof cursor !== 'string') return reply.error(JsonRpc.InvalidParams, 'Invalid cursor');
    let page;
    try {
      page = pageOf(this.visible(caller.agent), cursor, TOOLS_PAGE_SIZE);
    } catch {
      return reply.error(JsonRpc.InvalidParams, 'Invalid cursor');
    }
    try {
      await this.gateway.opts.audit.append({ event: 'tools/list', agent: caller.agent, ...(caller.sandbox !== undefined ? { sandbox: caller.sandbox } : {}), protocol: req.version, count: page.page.length });
    } catch (e) {
      const j = toJsonRpcError(e);
      return reply.error(j.code, j.message, j.data);
    }
    const result: ListToolsResult & Record<string, unknown> = {
      resultType: 'complete',
      tools: this.gateway.opts.redact(page.page.map((e) => e.tool)),
      ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}),
      ttlMs: TOOLS_LIST_TTL_MS,
      // Filtered by this agent's policy: never to be shared with another (caching §Cache Scope).
      cacheScope: 'private',
    };
    reply.result(result);
  }

  private async callTool(req: StatelessRequest, reply: McpReply, trace?: RequestTrace): Promise<void> {
    const p = req.params;
    if (this.gateway.isClosing) return reply.error(JsonRpc.InternalError, 'the gateway is shutting down');
    if (typeof p.name !== 'string') return reply.error(JsonRpc.InvalidParams, 'Invalid params: name must be a string');
    if (p.arguments !== undefined && !isPlainObject(p.arguments)) return reply.error(JsonRpc.InvalidParams, 'Invalid params: arguments must be an object');
    const responses = p.inputResponses;
    if (responses !== undefined && !(isPlainObject(responses) && Object.values(responses).every(isPlainObject))) {
      return reply.error(JsonRpc.InvalidParams, 'Invalid params: inputResponses must be an object of results, one per input request');
    }
    const args = (p.arguments ?? {}) as Record<string, unknown>;
    // Mcp-Param-* headers against the arguments (transports §Server Behavior for Custom Headers), before any
    // decision; only for a tool this agent can see, so a hidden tool's declarations tell it nothing.
    const entry = this.gateway.catalog.byName.get(p.name);
    if (entry && req.header && !this.gateway.opts.hidden(req.caller.agent, entry.connector, entry.name, hintsOf(entry.tool.annotations))) {
      const problem = paramHeaderProblem(paramDeclarations(entry.tool.inputSchema), args, req.header);
      if (problem !== undefined) return reply.error(HEADER_MISMATCH, `Bad Request: ${problem}`, undefined, 400);
    }
    const meta = isPlainObject(p._meta) ? p._meta : undefined;
    const view = viewOf(reply, meta);
    const binding = { principal: req.caller.principal, tool: p.name, args };
    let call: AgentCall<CallView, CallToolResult>;
    let served: Promise<RoundOutcome<CallToolResult>>;
    if (p.requestState !== undefined) {
      const resumed = typeof p.requestState === 'string' ? this.parked.resume<CallView, CallToolResult>(p.requestState, binding) : undefined;
      // mrtr §Server Requirements: state that fails verification is rejected.
      if (!resumed) {
        return reply.error(
          JsonRpc.InvalidParams,
          'Invalid params: requestState is not valid for this call (altered, expired, of an earlier round, or of another agent, tool or arguments); call the tool again without it',
        );
      }
      call = resumed;
      served = call.serve(view, responses as Record<string, Record<string, unknown>> | undefined);
    } else {
      // Answers without a requestState answer nothing the gateway asked: ignored (mrtr §Error Handling).
      call = this.parked.create<CallView, CallToolResult>(binding);
      served = call.serve(view);
      // A first round runs the pipeline: its spans are children of this request's (a resumed round's span has none).
      call.attach(this.run(req, call, args, meta, quietCall(trace)));
    }
    const onHangUp = () => call.hangUp();
    reply.signal.addEventListener('abort', onHangUp, { once: true });
    let outcome: RoundOutcome<CallToolResult>;
    try {
      outcome = await served;
    } finally {
      reply.signal.removeEventListener('abort', onHangUp);
    }
    if (outcome.kind === 'input') return reply.result({ resultType: 'input_required', inputRequests: outcome.inputRequests, requestState: outcome.requestState });
    if (outcome.kind === 'result') return reply.result({ ...outcome.result, resultType: 'complete' });
    const e = outcome.error;
    if (e instanceof GatehouseError && e.details?.upstreamCode === MISSING_CLIENT_CAPABILITY) {
      // The upstream needs a capability this request did not declare (basic/versioning; HTTP 400 by the spec).
      return reply.error(MISSING_CLIENT_CAPABILITY, e.message, e.details.upstreamData, 400);
    }
    const j = toJsonRpcError(e);
    return reply.error(j.code, j.message, j.data);
  }

  /** The call through the pipeline; its questions to the agent go through `call` (input-required.ts). */
  private async run(
    req: StatelessRequest,
    call: AgentCall<CallView, CallToolResult>,
    args: Record<string, unknown>,
    meta: Record<string, unknown> | undefined,
    trace: CallTrace | undefined,
  ): Promise<CallToolResult> {
    const name = req.params.name as string;
    const first = call.view;
    const notes = new CallNotifications({
      perSecond: notificationRate(this.gateway, name),
      // Progress and logs ride the request now waiting on the call, if any (a parked call has nobody to tell).
      sendProgress: async (p: Progress) => {
        const v = call.view;
        if (v?.progressToken !== undefined) v.reply.notify('notifications/progress', { ...boundedProgress(this.gateway.opts.redact(p)), progressToken: v.progressToken });
      },
      sendLog: async (params) => {
        const v = call.view;
        if (v?.logLevel !== undefined) v.reply.notify('notifications/message', params);
      },
    });
    const channel: AgentChannel = {
      capabilities: () => call.view?.capabilities ?? first?.capabilities,
      logLevel: () => call.view?.logLevel,
      // No logLevel in the request: no log messages (2026-07-28 server/utilities/logging).
      upstreamLogLevel: () => (call.view ?? first)?.logLevel,
      createMessage: (params, o) => call.ask('sampling/createMessage', params as Record<string, unknown>, o) as never,
      elicit: (params, o) => call.ask('elicitation/create', params as Record<string, unknown>, o) as never,
      log: (params, prepare) => {
        const v = call.view;
        if (v?.logLevel === undefined || LEVELS.indexOf(params.level) < LEVELS.indexOf(v.logLevel)) return;
        notes.log(params, prepare);
      },
    };
    // The agent's trace context: passed upstream as is when the gateway traces nothing itself (with tracing on it parents `trace`).
    const traceMeta = traceContext(meta);
    try {
      const result = await this.gateway.callTool({
        agent: req.caller.agent,
        ...(req.caller.sandbox !== undefined ? { sandbox: req.caller.sandbox } : {}),
        protocol: req.version,
        name,
        args,
        signal: call.signal,
        channel,
        stats: () => notes.stats(),
        onprogress: (p) => notes.progress(p),
        ...(traceMeta ? { traceMeta } : {}),
        ...(trace ? { trace } : {}),
      });
      await notes.finish();
      return result;
    } catch (e) {
      await notes.finish();
      throw e;
    }
  }

  private async listen(req: StatelessRequest, reply: McpReply): Promise<void> {
    const { caller } = req;
    const mine = this.listenersOf.get(caller.principal) ?? 0;
    if (mine >= MAX_LISTENERS_PER_AGENT || this.listeners >= MAX_LISTENERS) {
      const limit = mine >= MAX_LISTENERS_PER_AGENT ? `${MAX_LISTENERS_PER_AGENT} per agent` : `${MAX_LISTENERS} on this gateway`;
      return reply.error(-32000, `Too Many Requests: subscriptions/listen streams are limited to ${limit}; close one first`, undefined, 429);
    }
    this.listenersOf.set(caller.principal, mine + 1);
    this.listeners++;
    const filter = isPlainObject(req.params.notifications) ? req.params.notifications : {};
    // Only tool list changes exist here (the gateway brokers tools alone); the acknowledgment says what is honoured.
    const honoured = filter.toolsListChanged === true ? { toolsListChanged: true } : {};
    const sub = { [META.subscriptionId]: req.id };
    reply.stream();
    reply.notify('notifications/subscriptions/acknowledged', { _meta: sub, notifications: honoured });
    let listed = fingerprint(this.visible(caller.agent));
    // Only this agent's own list: a change to a tool hidden from it must not reach it (an oracle on hidden tools).
    const onCatalog = () => {
      const now = fingerprint(this.visible(caller.agent));
      if (now === listed) return;
      listed = now;
      reply.notify('notifications/tools/list_changed', { _meta: sub });
    };
    if (honoured.toolsListChanged) this.gateway.on('catalog', onCatalog);
    await new Promise<void>((resolve) => {
      const end = (graceful: boolean) => {
        this.closers.delete(closer);
        reply.signal.removeEventListener('abort', onAbort);
        // subscriptions §Graceful Closure: the server ending a stream answers the listen request.
        if (graceful) reply.result({ resultType: 'complete', _meta: sub });
        resolve();
      };
      const closer = () => end(true);
      const onAbort = () => end(false);
      this.closers.add(closer);
      if (reply.signal.aborted) return end(false);
      reply.signal.addEventListener('abort', onAbort, { once: true });
    });
    this.gateway.off('catalog', onCatalog);
    this.listeners--;
    const left = (this.listenersOf.get(caller.principal) ?? 1) - 1;
    if (left <= 0) this.listenersOf.delete(caller.principal);
    else this.listenersOf.set(caller.principal, left);
  }

  /** Ends every listen stream (gracefully) and cancels every parked call. */
  close(): void {
    for (const c of [...this.closers]) c();
    this.parked.closeAll();
  }

  /** For `gatehouse status`-like views and tests: calls parked for input, listen streams open. */
  stats(): { parked: number; listeners: number } {
    return { parked: this.parked.size, listeners: this.listeners };
  }
}

