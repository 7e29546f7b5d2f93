/**
 * One error base class with a stable string `code` (as jose's JOSEError and
 * undici's UND_ERR_*). Codes are mapped to JSON-RPC errors at the edge, in
 * `toJsonRpcError`, and nowhere else.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'AUTH_REQUIRED'
  | 'AUTH_INVALID'
  | 'TOOL_UNKNOWN'
  | 'ARGS_INVALID'
  | 'POLICY_DENIED'
  | 'POLICY_INVALID'
  | 'RATE_LIMITED'
  | 'APPROVAL_DENIED'
  | 'APPROVAL_TIMEOUT'
  | 'SECRET_MISSING'
  | 'SECRET_UNSAFE'
  | 'KEYCHAIN_UNAVAILABLE'
  | 'CONNECTOR_NOT_READY'
  | 'UPSTREAM_TIMEOUT'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_ERROR'
  | 'UPSTREAM_PROTOCOL'
  | 'AUDIT_UNAVAILABLE'
  | 'GATEWAY_UNAVAILABLE'
  | 'STATE_UNAVAILABLE'
  | 'GATEWAY_RUNNING'
  | 'SANDBOX_UNAVAILABLE'
  | 'SANDBOX_FAILED'
  | 'USAGE'
  | 'NOT_FOUND'
  | 'INTERNAL';

export class GatehouseError extends Error {
  readonly code: ErrorCode;
  /** Extra, secret-free facts for logs and audit (never a secret value). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatehouseError';
    this.code = code;
    this.details = options?.details;
  }
}

export function isGatehouseError(e: unknown, code?: ErrorCode): e is GatehouseError {
  return e instanceof GatehouseError && (code === undefined || e.code === code);
}

/** JSON-RPC 2.0 error codes (https://www.jsonrpc.org/specification#error_object). */
export const JsonRpc = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
} as const;

/**
 * The single place where error codes become JSON-RPC errors. Anything that is
 * not a GatehouseError maps to -32603 (internal), never to a parse error.
 */
export function toJsonRpcError(e: unknown): { code: number; message: string; data?: { code: string } } {
  if (!(e instanceof GatehouseError)) {
    return { code: JsonRpc.InternalError, message: 'Internal gateway error' };
  }
  switch (e.code) {
    case 'TOOL_UNKNOWN':
    case 'ARGS_INVALID':
      return { code: JsonRpc.InvalidParams, message: e.message, data: { code: e.code } };
    case 'INTERNAL':
      return { code: JsonRpc.InternalError, message: 'Internal gateway error', data: { code: e.code } };
    default:
      return { code: JsonRpc.InternalError, message: e.message, data: { code: e.code } };
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
