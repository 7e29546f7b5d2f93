/**
 * Egress connections waiting for a human: what an approval and a grant for
 * one hold, and how they read. Approvals.requestEgress does the waiting with
 * the same machinery as tool calls; this file only shapes the data.
 *
 * A grant for an egress approval covers the same caller (kind and name), rule,
 * host and port, whatever the method or path, and, when given "for this
 * sandbox session", that session only.
 */
import type { EgressCaller } from './types.js';

/** The connection an egress approval is for, as the proxy saw it. */
export interface EgressAsk {
  caller: EgressCaller;
  /** Lower-case name or IP literal, as checked by the proxy. */
  host: string;
  port: number;
  /** Plain HTTP only. */
  method?: string;
  /** Plain HTTP only: the path without the query (it may hold a token), at most 1 024 characters. */
  path?: string;
  /** The sandbox session it came from, when there is one. */
  sandbox?: string;
}

/** What an egress grant is bound to, beside its agent (the caller's name) and rule. */
export interface EgressGrantScope {
  caller: EgressCaller['kind'];
  host: string;
  port: number;
  /** Set for a grant "for this sandbox session": it covers that session only. */
  sandbox?: string;
}

export const MAX_EGRESS_PATH = 1_024;

/** The host as written in a URL or authority: an IPv6 literal in brackets. */
function authority(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** "CONNECT registry.npmjs.org:443" or "GET http://host:port/path": the request in one line (not yet escaped for a terminal). */
export function egressAction(e: Pick<EgressAsk, 'host' | 'port' | 'method' | 'path'>): string {
  if (e.method === undefined || e.path === undefined) return `CONNECT ${authority(e.host, e.port)}`;
  return `${e.method} http://${authority(e.host, e.port)}${e.path}`;
}

/** "agent coder wants CONNECT registry.npmjs.org:443" (not yet escaped for a terminal). */
export function egressSentence(e: EgressAsk): string {
  return `${e.caller.kind} ${e.caller.name} wants ${egressAction(e)}`;
}

/** What a grant for this connection would be bound to (`sandbox` only when the grant is for the session). */
export function egressScope(e: EgressAsk, forSession: boolean): EgressGrantScope {
  const s: EgressGrantScope = { caller: e.caller.kind, host: e.host, port: e.port };
  if (forSession && e.sandbox !== undefined) s.sandbox = e.sandbox;
  return s;
}

/** Whether a grant bound to `scope` covers this connection (caller name and rule are compared by the caller). */
export function scopeCovers(scope: EgressGrantScope, e: EgressAsk): boolean {
  return scope.caller === e.caller.kind && scope.host === e.host && scope.port === e.port && (scope.sandbox === undefined || scope.sandbox === e.sandbox);
}
