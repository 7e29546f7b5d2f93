/**
 * Talking to an upstream in the newest MCP revision it supports (issue #20).
 *
 * The era is a property of the server (basic/versioning §Backward
 * Compatibility): asked once, the answer kept by the Upstream for as long as
 * its definition lasts, and asked again when a kept "modern" no longer
 * connects. Over HTTP the SDK v2 client asks (`server/discover`, pinned to
 * 2026-07-28; any non-modern answer rejects with ERA_NEGOTIATION_FAILED, which
 * is the 2025-11-25 verdict). Over stdio the question is asked in place on the
 * child already started (one process, not a sibling per probe): silence, an
 * error or an exit is the 2025-11-25 verdict (transports/stdio §Backward
 * Compatibility).
 *
 * A 2026-07-28 upstream gets the SDK v2 client; a 2025-11-25 one keeps the SDK
 * v1 client exactly as before. The v2 client's multi round-trip driver answers
 * the upstream's `InputRequiredResult`s through the same broker handler that
 * answers a 2025 upstream's requests (passthrough.ts): the agent's side decides
 * whether that becomes a request on its session (2025) or an
 * `InputRequiredResult` of its own (2026).
 */
import { randomUUID } from 'node:crypto';
import {
  CLIENT_CAPABILITIES_META_KEY,
  Client as ModernSdkClient,
  CLIENT_INFO_META_KEY,
  LOG_LEVEL_META_KEY,
  PROTOCOL_VERSION_META_KEY,
  SdkError,
  SdkErrorCode,
  StreamableHTTPClientTransport as ModernHttpTransport,
  type DiscoverResult,
  type Transport as ModernTransport,
} from '@modelcontextprotocol/client';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { ClientCapabilities, JSONRPCMessage, LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import { MODERN_PROTOCOL_VERSION } from '../config/protocol.js';
import { VERSION } from '../config/paths.js';
import type { HttpConnector, ToolConnector } from '../registry/schema.js';
import { callContext, type AgentChannel, type CallScope } from './call-context.js';
import { httpFetch, type HttpTransportDeps } from './http-transport.js';
import { clientCapabilities } from './shims.js';
import type { TraceContext } from '../telemetry/traces.js';

export type ModernClient = ModernSdkClient;

/** What the Upstream keeps of the question "which era?". */
export type EraVerdict = { kind: 'modern'; discover: DiscoverResult } | { kind: 'legacy' };

/** How long a silent stdio server is given to answer `server/discover` before it counts as 2025-11-25. */
export const STDIO_PROBE_MS = 3_000;

/** The call each request (by the signal it was sent with) belongs to. */
const scopes = new WeakMap<AbortSignal, CallScope>();

/** Ties a request sent with `signal` to its call, for the input requests of its answer (see modernClient). */
export function bindScope(signal: AbortSignal, scope: CallScope): void {
  scopes.set(signal, scope);
}

/**
 * The SDK v2 client for a 2026-07-28 upstream: it declares what the registry
 * allows (each call narrows it to the agent's). Its multi round-trip driver
 * runs where the answer was read: over stdio that is the pipe's reader, in no
 * call's context; it is run in the context of the call whose request it
 * answers, so the input requests find their agent (call-context.ts).
 */
export function modernClient(c: ToolConnector, connectTimeoutMs: number): ModernClient {
  const client = new ModernSdkClient(
    { name: 'gatehouse', version: VERSION },
    {
      // The same as clientCapabilities(c), in the v2 package's types.
      capabilities: { ...(c.sampling === 'allow' ? { sampling: {} } : {}), ...(c.elicitation === 'allow' ? { elicitation: { form: {} } } : {}) },
      versionNegotiation: { mode: { pin: MODERN_PROTOCOL_VERSION }, probe: { timeoutMs: connectTimeoutMs } },
    },
  );
  type Resolve = (decoded: unknown, flow: { options?: { signal?: AbortSignal } }) => Promise<unknown>;
  const hooks = client as unknown as { _resolveNonCompleteResult: Resolve };
  const resolve = hooks._resolveNonCompleteResult.bind(client) as Resolve;
  hooks._resolveNonCompleteResult = (decoded, flow) => {
    const scope = flow.options?.signal ? scopes.get(flow.options.signal) : undefined;
    return scope ? callContext.run(scope, () => resolve(decoded, flow)) : resolve(decoded, flow);
  };
  return client;
}

/** The 2026-07-28 transport of an `http` connector: the same fetch (secrets, origin, body caps) as its 2025-11-25 one. */
export function modernHttpTransport(c: HttpConnector, deps: HttpTransportDeps): ModernTransport {
  return new ModernHttpTransport(new URL(c.url), { fetch: httpFetch(c, deps) });
}

/** Whether a connect failed because the upstream is not a 2026-07-28 server (its 2025-11-25 verdict). */
export function isLegacyVerdict(e: unknown): boolean {
  return e instanceof SdkError && e.code === SdkErrorCode.EraNegotiationFailed;
}

/**
 * The transport already started by the stdio probe, for a client whose
 * connect() starts it again: that start is a no-op, the rest is the transport.
 */
export function alreadyStarted<T extends object>(t: T): T {
  return new Proxy(t, {
    get(target, prop) {
      if (prop === 'start') return async () => undefined;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
    set(target, prop, value) {
      return Reflect.set(target, prop, value, target);
    },
  });
}

/**
 * Asks a started-by-us stdio server which era it speaks, on its own pipe.
 * `alive`: the child is still there to be handed on (to either client).
 */
export async function probeStdio(t: Transport, timeoutMs: number): Promise<{ verdict: EraVerdict; alive: boolean }> {
  const id = `gatehouse-discover-${randomUUID()}`;
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (verdict: EraVerdict, alive: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      t.onmessage = undefined;
      t.onclose = undefined;
      t.onerror = undefined;
      resolve({ verdict, alive });
    };
    const timer = setTimeout(() => finish({ kind: 'legacy' }, true), timeoutMs);
    // Nothing but the answer is expected before a handshake; anything else is dropped.
    t.onmessage = (m: JSONRPCMessage) => {
      if ('id' in m && m.id === id && !('method' in m)) finish(verdictOf(m), true);
    };
    t.onclose = () => finish({ kind: 'legacy' }, false);
    t.onerror = () => undefined;
    t.start()
      .then(() =>
        t.send({
          jsonrpc: '2.0',
          id,
          method: 'server/discover',
          params: { _meta: { [PROTOCOL_VERSION_META_KEY]: MODERN_PROTOCOL_VERSION, [CLIENT_INFO_META_KEY]: { name: 'gatehouse', version: VERSION }, [CLIENT_CAPABILITIES_META_KEY]: {} } },
        }),
      )
      .catch((e: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        reject(e);
      });
  });
}

function verdictOf(m: JSONRPCMessage): EraVerdict {
  const result = 'result' in m ? (m.result as Partial<DiscoverResult> | undefined) : undefined;
  const versions = result?.supportedVersions;
  return Array.isArray(versions) && versions.includes(MODERN_PROTOCOL_VERSION) ? { kind: 'modern', discover: result as DiscoverResult } : { kind: 'legacy' };
}

const LEVELS: readonly LoggingLevel[] = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/**
 * The `_meta` of one tools/call to a 2026-07-28 upstream: the call's trace
 * context (the gateway's span when tracing is on, else the agent's own); the client capabilities of this call, what the agent declared and
 * the registry allows (an upstream must not ask for more, mrtr §Server
 * Requirements); and the log level the agent wants (none: no log messages).
 */
export function modernCallMeta(c: ToolConnector, channel: AgentChannel | undefined, trace: TraceContext | undefined): Record<string, unknown> {
  const allowed = clientCapabilities(c);
  const agent: ClientCapabilities = channel?.capabilities() ?? {};
  const caps: ClientCapabilities = {
    ...(allowed.sampling && agent.sampling ? { sampling: allowed.sampling } : {}),
    ...(allowed.elicitation && agent.elicitation ? { elicitation: allowed.elicitation } : {}),
  };
  // A 2025-11-25 session that never set a level gets every message (its revision's default).
  const level = channel ? (channel.upstreamLogLevel ? channel.upstreamLogLevel() : (channel.logLevel() ?? 'debug')) : undefined;
  return {
    ...trace,
    [CLIENT_CAPABILITIES_META_KEY]: caps,
    ...(level !== undefined && LEVELS.includes(level) ? { [LOG_LEVEL_META_KEY]: level } : {}),
  };
}
