import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';

/** The reason a call's handler sees when its HTTP client went away. */
export const HANG_UP_REASON = 'the client disconnected before the result';

/** The ids of the JSON-RPC requests in a parsed body (one message or a batch). */
function requestIds(body: unknown): Array<string | number> {
  const ids: Array<string | number> = [];
  for (const m of Array.isArray(body) ? body : [body]) {
    if (typeof m !== 'object' || m === null) continue;
    const { id, method } = m as { id?: unknown; method?: unknown };
    if (typeof method === 'string' && (typeof id === 'string' || typeof id === 'number')) ids.push(id);
  }
  return ids;
}

/**
 * A client that hangs up on a POST before its responses were written has
 * abandoned those requests. The SDK does not notice (the SSE stream is only
 * unmapped), so a call waiting for a human would run later for nobody. Deliver
 * what the client would have sent, MCP `notifications/cancelled` for each of
 * its requests, so their handlers' `signal` aborts. `signal` is the HTTP
 * request's: @hono/node-server aborts it when the connection closes before the
 * response finished, never after a complete response.
 * Call after `handleRequest` returned (the requests are dispatched by then).
 * This also cancels a forwarded call at the upstream: with no event store on
 * the transport, a dropped stream cannot be resumed, so nobody can get the
 * result any more. (Add an event store, and this must wait for resumption.)
 */
export function cancelOnHangUp(signal: AbortSignal, transport: Transport, body: unknown): void {
  const ids = requestIds(body);
  if (ids.length === 0) return;
  const cancel = () => {
    for (const requestId of ids) {
      transport.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: HANG_UP_REASON } });
    }
  };
  if (signal.aborted) cancel();
  else signal.addEventListener('abort', cancel, { once: true });
}
