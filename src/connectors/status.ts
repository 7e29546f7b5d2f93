/**
 * `gatehouse connector list`: each connector's readiness, computed offline
 * (registry + secret presence; no provider is called, no MCP server started).
 */
import { isExposed } from '../registry/exposure.js';
import { GatehouseError, errorMessage } from '../errors.js';
import type { Connector } from '../registry/schema.js';
import { connectorSecrets, isProvider } from '../registry/schema.js';
import { missingSecrets, notSetReason } from '../secrets/presence.js';
import type { SecretStore } from '../secrets/store.js';
import { builtinTools, isBuiltinKind } from './index.js';

export interface ConnectorStatus {
  name: string;
  kind: Connector['kind'];
  file: string;
  ready: boolean;
  /** Why not ready, and the fix. */
  reason?: string;
  fix?: string;
  secrets: string[];
  /** The secret store could not be asked (the full reason). */
  storeError?: string;
  /** Tools exposed (after tools.allow/deny); null for MCP upstreams: known once served. */
  tools: string[] | null;
}

export async function connectorStatus(c: Connector, store: SecretStore): Promise<ConnectorStatus> {
  const secrets = connectorSecrets(c);
  const tools = isBuiltinKind(c.kind) && !isProvider(c) ? builtinTools(c.kind).map((t) => t.name).filter((n) => isExposed(c.tools, n)) : null;
  const base = { name: c.name, kind: c.kind, file: c.file, secrets, tools };
  if (!c.enabled) return { ...base, ready: false, reason: 'disabled (enabled: false)', fix: `set enabled: true in ${c.file}` };
  let missing: string[];
  try {
    missing = await missingSecrets(store, secrets);
  } catch (e) {
    const why = e instanceof GatehouseError ? e.message : errorMessage(e);
    return { ...base, ready: false, reason: 'cannot check secrets: the secret store is unavailable', fix: 'gatehouse doctor', storeError: why };
  }
  if (missing.length > 0) {
    return { ...base, ready: false, ...notSetReason(missing) };
  }
  if (tools !== null && tools.length === 0) return { ...base, ready: false, reason: 'tools.allow/deny expose no tool', fix: `widen tools.allow in ${c.file}` };
  return { ...base, ready: true };
}
