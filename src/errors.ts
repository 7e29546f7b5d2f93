/**
 * One error base class with a stable string `code` (as jose's JOSEError and
 * undici's UND_ERR_*). Each code maps in ERROR_TABLE below, and nowhere else,
 * to its JSON-RPC code, HTTP status and CLI exit code.
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
  | 'OAUTH_LOGIN_REQUIRED'
  | 'OAUTH_REFUSED'
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

/** CLI exit codes (README, "Commands"): scripts rely on them. */
export const Exit = { Ok: 0, Failed: 1, Usage: 2, Unavailable: 3 } as const;

interface Mapping {
  /** JSON-RPC error code the agent sees. */
  readonly jsonRpc: number;
  /** HTTP status on the admin API and plain-HTTP edges. */
  readonly http: number;
  /** Exit code of the `gatehouse` command. */
  readonly exit: number;
}

const rpc = (jsonRpc: number, http: number, exit: number): Mapping => ({ jsonRpc, http, exit });
const { InvalidParams: P, InternalError: I } = JsonRpc;
const { Failed: F, Usage: U, Unavailable: N } = Exit;

/** The one table: every error code's JSON-RPC code, HTTP status and CLI exit code. */
export const ERROR_TABLE: Readonly<Record<ErrorCode, Mapping>> = {
  CONFIG_INVALID: rpc(I, 500, U),
  // The /mcp edge answers a missing or bad token itself (HTTP 401, -32001) before any JSON-RPC.
  AUTH_REQUIRED: rpc(I, 401, F),
  AUTH_INVALID: rpc(I, 401, F),
  TOOL_UNKNOWN: rpc(P, 404, F),
  ARGS_INVALID: rpc(P, 400, F),
  POLICY_DENIED: rpc(I, 403, F),
  POLICY_INVALID: rpc(I, 400, U),
  RATE_LIMITED: rpc(I, 429, F),
  APPROVAL_DENIED: rpc(I, 403, F),
  APPROVAL_TIMEOUT: rpc(I, 408, F),
  SECRET_MISSING: rpc(I, 503, F),
  SECRET_UNSAFE: rpc(I, 400, F),
  KEYCHAIN_UNAVAILABLE: rpc(I, 503, N),
  // Not ready means a secret is missing: the admin's to fix, not a service that is down.
  CONNECTOR_NOT_READY: rpc(I, 503, F),
  // An upstream OAuth login is missing, revoked or expired: `gatehouse connector login NAME` fixes it.
  OAUTH_LOGIN_REQUIRED: rpc(I, 503, F),
  // An authorization server's metadata or answer was refused (wrong issuer, another origin, not https, malformed).
  OAUTH_REFUSED: rpc(I, 502, F),
  UPSTREAM_TIMEOUT: rpc(I, 504, F),
  UPSTREAM_UNAVAILABLE: rpc(I, 502, N),
  UPSTREAM_ERROR: rpc(I, 502, F),
  UPSTREAM_PROTOCOL: rpc(I, 502, F),
  AUDIT_UNAVAILABLE: rpc(I, 503, N),
  GATEWAY_UNAVAILABLE: rpc(I, 503, N),
  STATE_UNAVAILABLE: rpc(I, 503, N),
  GATEWAY_RUNNING: rpc(I, 409, F),
  SANDBOX_UNAVAILABLE: rpc(I, 503, N),
  SANDBOX_FAILED: rpc(I, 500, F),
  USAGE: rpc(I, 400, U),
  NOT_FOUND: rpc(I, 404, F),
  INTERNAL: rpc(I, 500, F),
};

/** What an agent or API client is told instead of an internal error's own text (a path, a stack). */
export const INTERNAL_MESSAGE = 'Internal gateway error';

/** The message an agent or API client may see: an INTERNAL error's own text never leaves the gateway. */
export function publicMessage(e: GatehouseError): string {
  return e.code === 'INTERNAL' ? INTERNAL_MESSAGE : e.message;
}

/**
 * Where error codes become JSON-RPC errors. Anything that is not a
 * GatehouseError maps to -32603 (internal) with a fixed message, never to a
 * parse error and never with its own text.
 */
export function toJsonRpcError(e: unknown): { code: number; message: string; data?: { code: string } } {
  if (!(e instanceof GatehouseError)) return { code: JsonRpc.InternalError, message: INTERNAL_MESSAGE };
  return { code: ERROR_TABLE[e.code].jsonRpc, message: publicMessage(e), data: { code: e.code } };
}

/** HTTP status and body text for an error on a plain-HTTP edge (admin API, control socket). */
export function toHttpError(e: unknown): { status: number; code: ErrorCode; message: string } {
  if (!(e instanceof GatehouseError)) return { status: ERROR_TABLE.INTERNAL.http, code: 'INTERNAL', message: INTERNAL_MESSAGE };
  return { status: ERROR_TABLE[e.code].http, code: e.code, message: publicMessage(e) };
}

/** The `gatehouse` command's exit code for an error that ended it. */
export function exitCodeFor(e: unknown): number {
  return e instanceof GatehouseError ? ERROR_TABLE[e.code].exit : Exit.Failed;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
