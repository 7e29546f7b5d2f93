import { ErrorCode as McpCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { ProtocolError, SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
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
  // The SDK v2 client (2026-07-28 upstreams): JSON-RPC errors are ProtocolError, its own failures SdkError.
  if (e instanceof ProtocolError) {
    // MissingRequiredClientCapability: what the upstream needs is relayed (the agent's to declare); nothing else of its data.
    const need = e.code === MISSING_CLIENT_CAPABILITY ? requiredCapabilities(e.data) : undefined;
    return new GatehouseError('UPSTREAM_ERROR', `connector "${connector}" answered with an error: ${stripMcpPrefix(e.message)}`, {
      cause: e,
      details: { upstreamCode: e.code, ...(need ? { upstreamData: { requiredCapabilities: need } } : {}) },
    });
  }
  if (e instanceof SdkError) {
    if (e.code === SdkErrorCode.RequestTimeout) return new GatehouseError('UPSTREAM_TIMEOUT', `connector "${connector}" did not answer within ${facts.timeoutMs} ms`, { cause: e });
    if (e.code === SdkErrorCode.ConnectionClosed && facts.connectionClosed) {
      return new GatehouseError('UPSTREAM_UNAVAILABLE', `connector "${connector}" closed the connection during the call (it will be restarted)`, { cause: e });
    }
    return new GatehouseError('UPSTREAM_PROTOCOL', `connector "${connector}" failed: ${e.message}`, { cause: e, details: { sdkCode: e.code } });
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

/** MissingRequiredClientCapability (MCP 2026-07-28, basic/index §Error Codes). */
const MISSING_CLIENT_CAPABILITY = -32021;

/** `data.requiredCapabilities` of a -32021, if it is a small object of capability names (nothing else is passed on). */
function requiredCapabilities(data: unknown): Record<string, object> | undefined {
  const need = (data as { requiredCapabilities?: unknown } | undefined)?.requiredCapabilities;
  if (typeof need !== 'object' || need === null || Array.isArray(need)) return undefined;
  const out: Record<string, object> = {};
  for (const k of Object.keys(need).slice(0, 8)) if (/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(k)) out[k] = {};
  return Object.keys(out).length > 0 ? out : undefined;
}
