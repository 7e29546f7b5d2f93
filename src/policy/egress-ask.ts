/**
 * Egress connections waiting for a human: what an approval and a grant for
 * one hold, and how they read. Approvals.requestEgress does the waiting with
 * the same machinery as tool calls; this file only shapes the data.
 *
 * A grant for an egress approval covers the same caller (kind and name), rule,
 * host and port, the same kind of request (a CONNECT tunnel, or plain HTTP:
 * then only what the rule's method and path judge), and, when given "for this
 * sandbox session", that session only. A request the rule matched without
 * judging it (see egress.ts: a tunnel under a method/path rule, a path a glob
 * cannot judge) is never covered by a grant and never creates one.
 */
import type { EgressCaller, EgressDecision } from './types.js';

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
  /**
   * true: given on a CONNECT approval, covers tunnels only; false: given on a plain-HTTP approval, covers
   * plain HTTP only. Absent on grants saved before this field existed: such a grant covers nothing (its
   * approval's kind was not kept, and an HTTP approval must not open a raw tunnel); it still lists and expires.
   */
  tunnel?: boolean;
  /** Set for a grant "for this sandbox session": it covers that session only. */
  sandbox?: string;
}

export const MAX_EGRESS_PATH = 1_024;

/** The host as written in a URL or authority: an IPv6 literal in brackets. */
function authority(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** A CONNECT tunnel shows no method or path. */
export function isTunnel(e: Pick<EgressAsk, 'method' | 'path'>): boolean {
  return e.method === undefined || e.path === undefined;
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

/**
 * Why no grant may be given on (or used for) this request, or undefined when one may: the rule matched
 * it only because it cannot judge it (fail closed: a human sees every such request).
 */
export function ungrantable(e: EgressAsk, d: Pick<EgressDecision, 'ruleId' | 'judged'>): string | undefined {
  if (d.judged === true) return undefined;
  const rule = `rule "${d.ruleId ?? '(default)'}"`;
  return isTunnel(e)
    ? `${rule} names a method or path, which a tunnel (CONNECT) does not show: it asks for every tunnel, and no grant may cover one`
    : `${rule} cannot judge this path (a "."/".." segment, a ";" or an encoded character a server may read as part of a traversal): it asks for every such request, and no grant may cover one`;
}

/**
 * What a grant given on this approval would cover, for the approver: "CONNECT tunnels to h:p",
 * "GET/HEAD requests to h:p matching /docs/**", or "nothing: …" (not yet escaped for a terminal).
 */
export function grantCoverage(e: EgressAsk, d: Pick<EgressDecision, 'ruleId' | 'judged' | 'http'>, grantAllowed: boolean): string {
  const no = ungrantable(e, d);
  if (no !== undefined) return `nothing: ${no}`;
  if (!grantAllowed) return `nothing: rule "${d.ruleId ?? '(default)'}" allows no grants`;
  const to = authority(e.host, e.port);
  if (isTunnel(e)) return `CONNECT tunnels to ${to}`;
  const methods = d.http?.methods;
  const path = d.http?.path;
  const what = methods === undefined ? 'plain-HTTP requests (any method)' : `${methods.join('/')} requests`;
  return `${what} to ${to} ${path === undefined ? '(any path)' : `matching ${path}`}`;
}

/** What a grant for this connection would be bound to (`sandbox` only when the grant is for the session). */
export function egressScope(e: EgressAsk, forSession: boolean): EgressGrantScope {
  const s: EgressGrantScope = { caller: e.caller.kind, host: e.host, port: e.port, tunnel: isTunnel(e) };
  if (forSession && e.sandbox !== undefined) s.sandbox = e.sandbox;
  return s;
}

/**
 * Whether a grant bound to `scope` covers this connection (caller name and rule are compared by the caller,
 * and an unjudged request never reaches here). A tunnel grant never covers plain HTTP, nor the reverse; a
 * scope without `tunnel` (saved by an older gateway) covers nothing.
 */
export function scopeCovers(scope: EgressGrantScope, e: EgressAsk): boolean {
  if (scope.tunnel === undefined || scope.tunnel !== isTunnel(e)) return false;
  return scope.caller === e.caller.kind && scope.host === e.host && scope.port === e.port && (scope.sandbox === undefined || scope.sandbox === e.sandbox);
}
