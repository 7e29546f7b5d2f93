/**
 * Which protocol era a POST to /mcp belongs to, and the edge checks of the
 * 2026-07-28 era. Pure: headers and the parsed body in, a verdict out.
 *
 * A dual-era server "selects its behavior from how the client opens" (MCP
 * 2026-07-28, basic/versioning §Backward Compatibility): a request carrying the
 * per-request `_meta` envelope is served statelessly, anything else (an
 * `initialize`, a request on a 2025 session) keeps the 2025-11-25 path exactly
 * as it was. The body-primary classification is the SDK's own
 * (`classifyInboundRequest`); on top of it come the supported-revision gate and
 * the standard-header rung it leaves to the HTTP entry (transports/streamable-http
 * §Request Metadata, §Server Validation), in the SDK's order.
 */
import { classifyInboundRequest, type JSONRPCNotification, type JSONRPCRequest } from '@modelcontextprotocol/server';
import { MODERN_PROTOCOL_VERSIONS } from '../config/protocol.js';
import { decodeHeaderValue } from '../upstreams/param-headers.js';

export { decodeHeaderValue };

/** Spec error codes of the 2026-07-28 revision (basic/index §Error Codes). */
export const HEADER_MISMATCH = -32020;
export const MISSING_CLIENT_CAPABILITY = -32021;
export const UNSUPPORTED_PROTOCOL_VERSION = -32022;

export type RequestIdValue = string | number;

export type EraVerdict =
  | { era: 'legacy' }
  | { era: 'modern'; kind: 'request'; message: JSONRPCRequest; version: string }
  | { era: 'modern'; kind: 'notification'; message: JSONRPCNotification; version: string }
  | { era: 'reject'; status: number; code: number; message: string; data?: unknown; id: RequestIdValue | null };

/** The methods whose `params.name` / `params.uri` the `Mcp-Name` header mirrors (§Standard Request Headers). */
const NAME_SOURCE: Readonly<Record<string, 'name' | 'uri'>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };


function idOf(body: unknown): RequestIdValue | null {
  const id = typeof body === 'object' && body !== null ? (body as { id?: unknown }).id : undefined;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

function mismatch(id: RequestIdValue | null, message: string): EraVerdict {
  return { era: 'reject', status: 400, code: HEADER_MISMATCH, message: `Bad Request: ${message}`, id };
}

/**
 * Classifies one parsed POST body. `header(name)` reads a request header
 * (case-insensitive, as `Headers.get`).
 */
export function classifyEra(header: (name: string) => string | null | undefined, body: unknown): EraVerdict {
  const protocolVersionHeader = header('mcp-protocol-version') ?? undefined;
  const mcpMethodHeader = header('mcp-method') ?? undefined;
  const mcpNameHeader = header('mcp-name') ?? undefined;
  const outcome = classifyInboundRequest({
    httpMethod: 'POST',
    body,
    ...(protocolVersionHeader !== undefined ? { protocolVersionHeader } : {}),
    ...(mcpMethodHeader !== undefined ? { mcpMethodHeader } : {}),
    ...(mcpNameHeader !== undefined ? { mcpNameHeader } : {}),
  });
  // Not JSON-RPC at all: the 2025 path answers it as it always has (the same parse error as before).
  if (outcome.kind === 'legacy' || (outcome.kind === 'reject' && outcome.rung === 'jsonrpc-shape')) return { era: 'legacy' };
  const id = idOf(body);
  if (outcome.kind === 'reject') {
    return { era: 'reject', status: outcome.httpStatus, code: outcome.code, message: outcome.message, ...(outcome.data !== undefined ? { data: outcome.data } : {}), id };
  }
  const version = outcome.classification.revision;
  if (version === undefined || !MODERN_PROTOCOL_VERSIONS.includes(version)) {
    // basic/versioning §Protocol Version Negotiation: the versions served, and the one asked for.
    return {
      era: 'reject',
      status: 400,
      code: UNSUPPORTED_PROTOCOL_VERSION,
      message: `Unsupported protocol version: ${String(version ?? 'unknown').slice(0, 64)} (this gateway serves ${MODERN_PROTOCOL_VERSIONS.join(', ')} per request, and 2025-11-25 through initialize)`,
      data: { supported: [...MODERN_PROTOCOL_VERSIONS], requested: version ?? 'unknown' },
      id,
    };
  }
  if (outcome.messageKind === 'notification') return { era: 'modern', kind: 'notification', message: outcome.message, version };
  // §Server Validation: the standard headers are required on every request, each checked against the body.
  const message = outcome.message;
  if (protocolVersionHeader === undefined) return mismatch(id, 'the MCP-Protocol-Version header is required (it must equal _meta["io.modelcontextprotocol/protocolVersion"])');
  if (mcpMethodHeader === undefined) return mismatch(id, `the Mcp-Method header is required (it must equal the body's method, "${message.method.slice(0, 64)}")`);
  const source = NAME_SOURCE[message.method];
  if (source !== undefined) {
    const value = (message.params as Record<string, unknown> | undefined)?.[source];
    if (mcpNameHeader === undefined) {
      if (value !== undefined) return mismatch(id, `the Mcp-Name header is required for ${message.method} (it must equal params.${source})`);
    } else {
      const named = decodeHeaderValue(mcpNameHeader.trim());
      if (named === undefined) return mismatch(id, 'the Mcp-Name header is malformed (plain ASCII, or =?base64?…?= for other values)');
      if (named !== value) return mismatch(id, `the Mcp-Name header does not match params.${source} of the body`);
    }
  }
  return { era: 'modern', kind: 'request', message, version };
}
