/**
 * Which agent call an upstream's own request or notification belongs to.
 *
 * An upstream `Client` is shared by every session, so a `sampling/createMessage`,
 * `elicitation/create` or `notifications/message` it receives carries no agent.
 * For Streamable HTTP upstreams such a message made during a call arrives on that
 * call's POST response stream, which is read by a loop started inside
 * `client.request(tools/call)`: running the request inside `callContext.run()`
 * makes the call's origin visible to the client's handlers (AsyncLocalStorage
 * follows the reader's promise chain). A stdio child has one stdout for all calls,
 * so there the message can only be tied to a call when exactly one is in flight.
 *
 * The same scope carries the request's `Exchange` (exchange.ts), which owns the
 * HTTP request and stream the custom fetch opens for it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type {
  ClientCapabilities,
  CreateMessageRequest,
  CreateMessageResult,
  ElicitRequest,
  ElicitResult,
  LoggingLevel,
  LoggingMessageNotification,
} from '@modelcontextprotocol/sdk/types.js';
import type { ToolConnector } from '../registry/schema.js';
import type { Exchange } from './exchange.js';

export interface ForwardOptions {
  signal: AbortSignal;
  timeout: number;
  /** The upstream's own name for the request (a 2026-07-28 `inputRequests` key), kept where the agent sees one. */
  key?: string;
}

/** The agent's side of one tools/call: what is sent here rides that call's own response stream. */
export interface AgentChannel {
  /** What the agent's MCP client declared at initialize. */
  capabilities(): ClientCapabilities | undefined;
  /** The level the session asked for with logging/setLevel, if it did. */
  logLevel(): LoggingLevel | undefined;
  /**
   * The level to ask a 2026-07-28 upstream for (its `_meta` logLevel; none: no
   * log messages). Absent: the 2025-11-25 default, every level.
   */
  upstreamLogLevel?(): LoggingLevel | undefined;
  createMessage(params: CreateMessageRequest['params'], opts: ForwardOptions): Promise<CreateMessageResult>;
  elicit(params: ElicitRequest['params'], opts: ForwardOptions): Promise<ElicitResult>;
  /**
   * A log message for the agent. `prepare` (redaction, bounds) runs only for
   * a message the call's rate lets through: a dropped one costs nothing more.
   */
  log(params: LoggingMessageNotification['params'], prepare?: (p: LoggingMessageNotification['params']) => LoggingMessageNotification['params']): void;
}

/** One agent call in flight on an upstream. */
export interface CallOrigin {
  agent: string;
  /** The agent's 2025-11-25 MCP session (2026-07-28 calls have none). */
  session?: string;
  /** The tool name as the agent called it. */
  tool: string;
  /** Aborted when the agent cancels the call. */
  signal: AbortSignal;
  channel: AgentChannel;
}

export type Route =
  | { ok: true; origin: CallOrigin; /** How the call was found. */ via: 'call-stream' | 'only-call' | 'input-required' }
  | { ok: false; reason: string; /** The calls in flight it could have belonged to. */ candidates: Array<Pick<CallOrigin, 'agent' | 'session' | 'tool'>> };

/** The store set around an upstream request; `owner` is the Upstream making it. */
export interface CallScope {
  owner: object;
  /** The agent call, if the request is one (a tool listing is not). */
  origin?: CallOrigin;
  exchange?: Exchange;
}

export const callContext = new AsyncLocalStorage<CallScope>();

/**
 * The agent calls in flight on one upstream, and which of them ever shared the
 * upstream with another call: a message that names no call (stdio, in-memory)
 * can only be tied to a call that had the upstream to itself from start to
 * now. Once two calls overlapped, a message could be either's (the finished
 * one's, sent late), so it goes to neither.
 */
export class InFlightCalls {
  readonly calls = new Set<CallOrigin>();
  readonly #shared = new WeakSet<CallOrigin>();

  add(o: CallOrigin): void {
    if (this.calls.size > 0) {
      this.#shared.add(o);
      for (const c of this.calls) this.#shared.add(c);
    }
    this.calls.add(o);
  }

  delete(o: CallOrigin): void {
    this.calls.delete(o);
    for (const c of this.calls) this.#shared.add(c);
  }

  /** In flight, and alone on the upstream since it started. */
  alone(o: CallOrigin): boolean {
    return this.calls.size === 1 && this.calls.has(o) && !this.#shared.has(o);
  }
}

/**
 * Picks the call a message belongs to (a timed-out call's log
 * messages and sampling request reached another agent's call).
 *
 * Where the async context follows the wire (HTTP), only the context decides: a
 * message read on the response stream of a call in flight on this upstream is
 * that call's; one read on a finished call's stream, a tool listing's, or the
 * standalone GET stream (whose messages "SHOULD be unrelated to any
 * concurrently-running JSON-RPC request", transports §listening) is nobody's.
 * Where nothing names the call (stdio), the message goes to the one call in
 * flight only if that call has had the upstream to itself since it started;
 * never to "the only other call" left after one finished.
 */
export function routeMessage(owner: object, contextFollowsCall: boolean, inFlight: InFlightCalls): Route {
  const calls = inFlight.calls;
  if (contextFollowsCall) {
    const scope = callContext.getStore();
    if (scope && scope.owner === owner && scope.origin && calls.has(scope.origin)) return { ok: true, origin: scope.origin, via: 'call-stream' };
    const reason =
      scope && scope.owner === owner
        ? scope.origin
          ? 'it arrived on the response stream of a call that has finished'
          : 'it arrived on the response stream of a tool listing, not of a call'
        : "it arrived outside any call's response stream";
    return { ok: false, reason, candidates: [] };
  }
  if (calls.size === 0) return { ok: false, reason: 'no tool call is in flight on this connector', candidates: [] };
  const [only] = calls;
  if (only && inFlight.alone(only)) return { ok: true, origin: only, via: 'only-call' };
  const candidates = [...calls].slice(0, 20).map(({ agent, session, tool }) => ({ agent, ...(session !== undefined ? { session } : {}), tool }));
  const reason =
    calls.size === 1
      ? 'another tool call shared this connector while this one was in flight, and the message does not say which one it belongs to'
      : `${calls.size} tool calls are in flight on this connector and the message does not say which one it belongs to`;
  return { ok: false, reason, candidates };
}

/**
 * The call an `InputRequiredResult`'s input request belongs to (a 2026-07-28
 * upstream): it is part of the call's own answer, read and fulfilled inside the
 * request that the call made, so only the context decides.
 */
export function routeInputRequest(owner: object, inFlight: InFlightCalls): Route {
  const scope = callContext.getStore();
  if (scope && scope.owner === owner && scope.origin && inFlight.calls.has(scope.origin)) return { ok: true, origin: scope.origin, via: 'input-required' };
  return { ok: false, reason: scope?.owner === owner ? 'it came with a tool listing, not a call' : 'it came outside any call', candidates: [] };
}

/** Server-to-client traffic from an upstream, handed to the broker (src/broker/passthrough.ts). */
export interface ServerMessageHandler {
  /** Answers `sampling/createMessage` or `elicitation/create`; throws McpError to refuse. */
  request(req: { connector: ToolConnector; method: string; params: unknown; route: Route; signal: AbortSignal; timeoutMs: number; key?: string }): Promise<Record<string, unknown>>;
  /** A `notifications/message` from the upstream. */
  log(n: { connector: ToolConnector; params: LoggingMessageNotification['params']; route: Route }): void;
}
