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
}

/** The agent's side of one tools/call: what is sent here rides that call's own response stream. */
export interface AgentChannel {
  /** What the agent's MCP client declared at initialize. */
  capabilities(): ClientCapabilities | undefined;
  /** The level the session asked for with logging/setLevel, if it did. */
  logLevel(): LoggingLevel | undefined;
  createMessage(params: CreateMessageRequest['params'], opts: ForwardOptions): Promise<CreateMessageResult>;
  elicit(params: ElicitRequest['params'], opts: ForwardOptions): Promise<ElicitResult>;
  log(params: LoggingMessageNotification['params']): void;
}

/** One agent call in flight on an upstream. */
export interface CallOrigin {
  agent: string;
  session: string;
  /** The tool name as the agent called it. */
  tool: string;
  /** Aborted when the agent cancels the call. */
  signal: AbortSignal;
  channel: AgentChannel;
}

export type Route =
  | { ok: true; origin: CallOrigin; /** How the call was found. */ via: 'call-stream' | 'only-call' }
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
 * Picks the call a message belongs to. The async context is trusted only where
 * it follows the wire (HTTP response streams): a message read on the stream of a
 * call still in flight on this upstream is that call's; one read on the stream of
 * a call that has finished, or of a tool listing, is nobody's (issue #24: a
 * timed-out call's log messages and sampling request reached another agent's
 * call). Otherwise the single in-flight call, or none.
 */
export function routeMessage(owner: object, contextFollowsCall: boolean, inFlight: ReadonlySet<CallOrigin>): Route {
  const scope = contextFollowsCall ? callContext.getStore() : undefined;
  if (scope && scope.owner === owner) {
    if (scope.origin && inFlight.has(scope.origin)) return { ok: true, origin: scope.origin, via: 'call-stream' };
    const reason = scope.origin ? 'it arrived on the response stream of a call that has finished' : 'it arrived on the response stream of a tool listing, not of a call';
    return { ok: false, reason, candidates: [] };
  }
  if (inFlight.size === 1) {
    const [only] = inFlight;
    if (only) return { ok: true, origin: only, via: 'only-call' };
  }
  if (inFlight.size === 0) return { ok: false, reason: 'no tool call is in flight on this connector', candidates: [] };
  const candidates = [...inFlight].slice(0, 20).map(({ agent, session, tool }) => ({ agent, session, tool }));
  return { ok: false, reason: `${inFlight.size} tool calls are in flight on this connector and the message does not say which one it belongs to`, candidates };
}

/** Server-to-client traffic from an upstream, handed to the broker (src/broker/passthrough.ts). */
export interface ServerMessageHandler {
  /** Answers `sampling/createMessage` or `elicitation/create`; throws McpError to refuse. */
  request(req: { connector: ToolConnector; method: string; params: unknown; route: Route; signal: AbortSignal; timeoutMs: number }): Promise<Record<string, unknown>>;
  /** A `notifications/message` from the upstream. */
  log(n: { connector: ToolConnector; params: LoggingMessageNotification['params']; route: Route }): void;
}
