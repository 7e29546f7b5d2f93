import { ErrorCode as McpCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { GatehouseError } from '../errors.js';

export interface CallFacts {
  /** The call's timeout, for the message. */
  timeoutMs: number;
  /**
   * Whether the connection to the upstream really closed. The SDK reports a closed
   * connection as McpError -32000 (ErrorCode.ConnectionClosed), and -32000 is also
   * JSON-RPC's first server-defined error code, which an upstream may answer with:
   * only the connection's state tells them apart.
   */
  connectionClosed: boolean;
}

/** Turns whatever an upstream call threw into a GatehouseError with a stable code. */
export function classifyUpstreamError(connector: string, e: unknown, facts: CallFacts): GatehouseError {
  if (e instanceof GatehouseError) return e;
  if (e instanceof McpError) {
    if (e.code === McpCode.RequestTimeout) {
      return new GatehouseError('UPSTREAM_TIMEOUT', `connector "${connector}" did not answer within ${facts.timeoutMs} ms`, { cause: e });
    }
    if (e.code === McpCode.ConnectionClosed && facts.connectionClosed) {
      return new GatehouseError('UPSTREAM_UNAVAILABLE', `connector "${connector}" closed the connection during the call (it will be restarted)`, { cause: e });
    }
    return new GatehouseError('UPSTREAM_ERROR', `connector "${connector}" answered with an error: ${stripMcpPrefix(e.message)}`, {
      cause: e,
      details: { upstreamCode: e.code },
    });
  }
  const err = e as { name?: string; message?: string; code?: string; cause?: { code?: string } };
  if (err?.name === 'AbortError') {
    return new GatehouseError('UPSTREAM_ERROR', `call to connector "${connector}" was cancelled`, { cause: e });
  }
  const netCode = err?.cause?.code ?? err?.code;
  if (typeof netCode === 'string' && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|UND_ERR_)/.test(netCode)) {
    return new GatehouseError('UPSTREAM_UNAVAILABLE', `connector "${connector}" is unreachable (${netCode})`, { cause: e });
  }
  // A TypeError or ReferenceError is a fault of ours, not the upstream's: its text (paths, code) stays in the logs.
  if (e instanceof TypeError || e instanceof ReferenceError) {
    return new GatehouseError('INTERNAL', `call to connector "${connector}" hit a gateway fault: ${e.message}`, { cause: e });
  }
  return new GatehouseError('UPSTREAM_PROTOCOL', `connector "${connector}" failed: ${err?.message ?? String(e)}`, { cause: e });
}

function stripMcpPrefix(m: string): string {
  return m.replace(/^MCP error -?\d+: /, '');
}
