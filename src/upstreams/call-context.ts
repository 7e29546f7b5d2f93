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

/** The store set around an upstream call; `owner` is the Upstream making it. */
export interface CallScope {
  owner: object;
  origin: CallOrigin;
}

export const callContext = new AsyncLocalStorage<CallScope>();

/**
 * Picks the call a message belongs to. The async context is trusted only where
 * it follows the wire (HTTP response streams) and only for a call still in flight
 * on this upstream; otherwise the single in-flight call, or none.
 */
export function routeMessage(owner: object, contextFollowsCall: boolean, inFlight: ReadonlySet<CallOrigin>): Route {
  const scope = contextFollowsCall ? callContext.getStore() : undefined;
  if (scope && scope.owner === owner && inFlight.has(scope.origin)) return { ok: true, origin: scope.origin, via: 'call-stream' };
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
