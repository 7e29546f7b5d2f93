/**
 * W3C trace context carried in a request's `_meta` (MCP basic/index §_meta
 * reserves `traceparent` and `tracestate` for it), passed on to the upstream so
 * a trace crosses the gateway. Only well-formed values pass: they go into
 * another party's request, and into the audit record.
 *
 * With tracing on (src/telemetry/traces.ts) the same context is the parent of
 * the gateway's spans, and the upstream gets the gateway's own span instead.
 */
import type { TraceContext } from '../telemetry/traces.js';

/** W3C Trace Context §3.2: version-traceid-parentid-flags, lowercase hex; version ff is invalid. */
const TRACEPARENT = /^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;
/** §3.3: at most 32 list members of key=value, printable ASCII without ',' and '='; bounded here by length. */
const TRACESTATE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]*(?:=[\x20-\x2b\x2d-\x3c\x3e-\x7e]*)?(?:,[\x20-\x2b\x2d-\x3c\x3e-\x7e]*=[\x20-\x2b\x2d-\x3c\x3e-\x7e]*)*$/;
const MAX_TRACESTATE = 512;

/** The trace context of a request's `_meta`, if it carries a valid one. */
export function traceContext(meta: unknown): TraceContext | undefined {
  if (typeof meta !== 'object' || meta === null) return undefined;
  const { traceparent, tracestate } = meta as { traceparent?: unknown; tracestate?: unknown };
  if (typeof traceparent !== 'string' || !TRACEPARENT.test(traceparent)) return undefined;
  const state = typeof tracestate === 'string' && tracestate.length <= MAX_TRACESTATE && TRACESTATE.test(tracestate) ? { tracestate } : {};
  return { traceparent, ...state };
}
