/**
 * Why a tool name the catalog does not hold may still be known: it is in the
 * namespace of a registered connector that lists no tools right now (a
 * missing secret, a locked keychain, starting, failed, disabled). Such a
 * connector's tools stay out of tools/list, but a call of one is told that
 * the connector is not ready and why, rather than "Unknown tool". Pure.
 */
import { GatehouseError } from '../errors.js';
import type { UpstreamStatus } from '../upstreams/upstream.js';
import { SEPARATOR } from './catalog.js';

export interface ConnectorState {
  connector: string;
  prefix: string;
  /** The upstream's status; `disabled` when the registry has `enabled: false`. */
  status: UpstreamStatus | { state: 'disabled' };
  /** Tools the upstream lists now: when it lists some, a name not among them is simply unknown. */
  listed: number;
}

/** The connector whose namespace `name` is in (the longest prefix wins); none for a prefix-less connector. */
export function namespaceOf(states: readonly ConnectorState[], name: string): ConnectorState | undefined {
  let best: ConnectorState | undefined;
  for (const s of states) {
    if (s.prefix === '' || !name.startsWith(`${s.prefix}${SEPARATOR}`)) continue;
    if (best === undefined || s.prefix.length > best.prefix.length) best = s;
  }
  return best;
}

/** Why the connector in `s` serves no tools, with the fix where there is one (never a secret value: the reasons name secrets, not values). */
function why(s: ConnectorState): string | undefined {
  const st = s.status;
  switch (st.state) {
    case 'ready':
      return undefined;
    case 'not-ready':
      return st.reason.includes(st.fix) ? st.reason : `${st.reason}; fix: ${st.fix}`;
    case 'starting':
      return 'it is starting; try again shortly';
    case 'failed':
      return `it failed (${st.reason}); retrying in ${Math.ceil(st.retryInMs / 1000)} s`;
    case 'stopped':
      return 'it is stopped';
    case 'disabled':
      return 'it is disabled in the registry (enabled: false)';
  }
}

/** The CONNECTOR_NOT_READY error for a call of `name`, when `name` belongs to a connector that lists no tools; else undefined. */
export function notReadyError(states: readonly ConnectorState[], name: string): GatehouseError | undefined {
  const s = namespaceOf(states, name);
  if (s === undefined || s.listed > 0) return undefined;
  const reason = why(s);
  if (reason === undefined) return undefined;
  return new GatehouseError('CONNECTOR_NOT_READY', `connector "${s.connector}" is not ready: ${reason}`, { details: { connector: s.connector } });
}
