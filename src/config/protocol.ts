/**
 * The MCP protocol revisions this gateway speaks, on both sides. 2025-11-25
 * (and the earlier ones the SDK v1 negotiates) open with `initialize` and live
 * in a session; 2026-07-28 carries its version and capabilities on every
 * request and has no session (basic/versioning §Terminology: legacy, modern).
 */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';
/** Revisions served with the per-request `_meta` envelope. */
export const MODERN_PROTOCOL_VERSIONS: readonly string[] = [MODERN_PROTOCOL_VERSION];
/** The newest revision of the `initialize` era. */
export const LEGACY_PROTOCOL_VERSION = '2025-11-25';

/** `_meta` keys of the 2026-07-28 request envelope (basic/index §_meta). */
export const META = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  logLevel: 'io.modelcontextprotocol/logLevel',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
} as const;
