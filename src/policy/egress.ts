/**
 * Egress rules: which connections out of a sandbox the egress proxy may open.
 * A pure function of (policy, request), like `evaluate` for tool calls, with
 * the same precedence (deny, then ask, then allow with a limit, then allow;
 * first in load order) but its own default: no matching egress rule means deny,
 * whatever the policy's `default:` says for tool calls (egress is opt-in).
 *
 * A CONNECT tunnel shows only host and port. A rule with `method` or `path`
 * cannot judge it: such an allow rule does not match a tunnel, such a deny
 * or ask rule does (fail closed, as for tool-call arguments), as a path with
 * "." / ".." segments or an encoded "/", "." or "\" does for `path`.
 *
 * An ask rule hands the connection to a human (Approvals.requestEgress); once
 * approved it is checked like an allowed one, and may reach a private address
 * only when the ask rule itself names the host exactly. An ask that matched
 * only by failing closed (`judged: false`) is never covered by a grant.
 */
import { createRequire } from 'node:module';
import { compileArgGlob } from './arg-glob.js';
import { compileName } from './matchers.js';
import type { EgressMatchSpec } from './schema.js';
import type { EgressDecision, EgressMatcher, EgressRequest, Policy, Rule } from './types.js';

// ipaddr.js is CommonJS whose names Node's ESM loader cannot see; its types describe the require() value.
const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof import('ipaddr.js');

/**
 * The one spelling of an IP literal: dotted-quad IPv4 (an IPv4-mapped IPv6
 * address becomes its IPv4 address), RFC 5952 IPv6. undefined when `s` is
 * not a literal in one of those forms (`127.1`, `0x7f.0.0.1` are not).
 */
export function canonicalIp(s: string): string | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) return ipaddr.IPv4.parse(s).toString();
  if (!s.includes(':') || s.includes('%') || !ipaddr.IPv6.isValid(s)) return undefined;
  const a = ipaddr.IPv6.parse(s);
  return a.isIPv4MappedAddress() ? a.toIPv4Address().toString() : a.toRFC5952String();
}

export function compileEgressMatcher(spec: EgressMatchSpec): EgressMatcher {
  const host = spec.host.toLowerCase();
  const m: EgressMatcher = {
    host: compileName(canonicalIp(host) ?? host),
    ports: typeof spec.port === 'number' ? [spec.port] : [...spec.port],
  };
  if (spec.method !== undefined) m.methods = typeof spec.method === 'string' ? [spec.method] : [...spec.method];
  if (spec.path !== undefined) m.path = { pattern: spec.path, test: compileArgGlob(spec.path) };
  return m;
}

// Besides "."/".." segments and encoded "/", "." or "\": spellings some servers read as a traversal — a segment
// starting with ".." ("..;" for Tomcat/Spring/Jetty), ";" path parameters, NUL, a double-encoded "%25", IIS "%u".
const UNJUDGEABLE_PATH = /(?:^|\/)\.{1,2}(?:\/|$)|(?:^|\/)\.\.|;|%00|%25|%u|%2[ef]|%3b|%5c|\\/i;

/** `note` is set exactly when the rule matched without judging the request (fail closed): evaluateEgress then reports `judged: false`. */
type Match = { ok: true; note?: string } | { ok: false; reason: string };

function matchCaller(rule: Rule, req: EgressRequest): Match {
  const { kind, name } = req.caller;
  if (rule.agent !== null && (kind !== 'agent' || !rule.agent.test(name))) return { ok: false, reason: `not from an agent matching "${rule.agent.pattern}"` };
  if (rule.connector !== null && (kind !== 'connector' || !rule.connector.test(name))) {
    return { ok: false, reason: `not from a connector matching "${rule.connector.pattern}"` };
  }
  return { ok: true };
}

/** Whether an egress rule matches the request, and why (not). */
export function matchEgress(rule: Rule, req: EgressRequest): Match {
  const e = rule.egress;
  if (rule.on !== 'egress' || e === undefined) return { ok: false, reason: 'not an egress rule' };
  const who = matchCaller(rule, req);
  if (!who.ok) return who;
  if (!e.host.test(req.host)) return { ok: false, reason: `host ${JSON.stringify(req.host.slice(0, 80))} does not match "${e.host.pattern}"` };
  if (!e.ports.includes(req.port)) return { ok: false, reason: `port ${req.port} is not ${e.ports.join(', ')}` };
  if (e.methods === undefined && e.path === undefined) return { ok: true };
  if (req.method === undefined || req.path === undefined) {
    return rule.effect === 'allow'
      ? { ok: false, reason: 'a tunnel (CONNECT) shows no method or path; an allow rule on them does not match it' }
      : { ok: true, note: `a tunnel (CONNECT) shows no method or path; a ${rule.effect} rule on them counts as matching` };
  }
  if (e.methods !== undefined && !e.methods.includes(req.method)) return { ok: false, reason: `method ${req.method.slice(0, 20)} is not ${e.methods.join(', ')}` };
  if (e.path !== undefined) {
    if (UNJUDGEABLE_PATH.test(req.path)) {
      return rule.effect === 'allow'
        ? { ok: false, reason: 'the path has a "."/".." segment or an encoded "/", "." or "\\", which path globs do not judge' }
        : { ok: true, note: `the path cannot be judged by a glob; a ${rule.effect} rule counts as matching` };
    }
    if (!e.path.test(req.path)) return { ok: false, reason: `path does not match "${e.path.pattern}"` };
  }
  return { ok: true };
}

const rank = (r: Rule): number => (r.effect === 'deny' ? 0 : r.effect === 'ask' ? 1 : r.limit !== undefined ? 2 : 3);

/** The policy's egress rules in decision order; a cache of a pure function of the immutable policy. */
const ordered = new WeakMap<Policy, readonly Rule[]>();
function egressRules(policy: Policy): readonly Rule[] {
  let rules = ordered.get(policy);
  if (rules === undefined) {
    rules = policy.rules
      .map((r, i) => ({ r, i }))
      .filter((x) => x.r.on === 'egress')
      .sort((a, b) => rank(a.r) - rank(b.r) || a.i - b.i)
      .map((x) => x.r);
    ordered.set(policy, rules);
  }
  return rules;
}

/** The decision for one egress connection. Pure; never throws. */
export function evaluateEgress(policy: Policy, req: EgressRequest, extra: readonly Rule[] = []): EgressDecision {
  // A connector's registry `egress:` entries (connectorEgressRules) come last: any policy rule, a deny above all, decides first.
  const rules = extra.length === 0 ? egressRules(policy) : [...egressRules(policy), ...extra];
  for (const [i, rule] of rules.entries()) {
    const m = matchEgress(rule, req);
    if (!m.ok) continue;
    // For an allow, the host counts as named when any matching allow rule names it exactly, whichever rule decides
    // (e.g. a limited glob rule). For an ask, only the asking rule itself: an approval of a glob never lifts the address check.
    const named = (r: Rule): boolean => r.effect === 'allow' && r.egress?.host.exact === true;
    const hostNamed =
      rule.effect === 'ask' ? rule.egress?.host.exact === true : named(rule) || (rule.effect === 'allow' && rules.slice(i + 1).some((r) => named(r) && matchEgress(r, req).ok));
    const d: EgressDecision = { effect: rule.effect, ruleId: rule.id, message: rule.message, hostNamed, judged: m.note === undefined };
    const e = rule.egress;
    if (e?.methods !== undefined || e?.path !== undefined) {
      d.http = {};
      if (e.methods !== undefined) d.http.methods = [...e.methods];
      if (e.path !== undefined) d.http.path = e.path.pattern;
    }
    if (rule.limit !== undefined) d.limit = { ruleId: rule.id, capacity: rule.limit.capacity, perMs: rule.limit.perMs };
    if (rule.ask !== undefined) d.ask = rule.ask;
    return d;
  }
  return { effect: 'deny', ruleId: null, message: 'No egress rule matches this connection; egress is denied by default.', hostNamed: false };
}

/** Whether some egress rule could let `agent` out (allow or ask, matching it by agent): `gatehouse run` then opens the proxy to it. */
export function egressOffered(policy: Policy, agent: string): boolean {
  return egressRules(policy).some((r) => r.effect !== 'deny' && r.connector === null && (r.agent === null || r.agent.test(agent)));
}

/**
 * A confined connector's registry `egress: ["host:port", …]` as allow rules
 * for that connector alone (id "registry:NAME", the registry file as source).
 * An entry naming its host exactly may reach a private or loopback address,
 * as a policy rule naming it exactly may.
 */
export function connectorEgressRules(connector: string, entries: readonly { host: string; port: number }[], file: string): Rule[] {
  return entries.map((e) => ({
    id: `registry:${connector}`,
    file,
    line: 0,
    effect: 'allow',
    message: `Allowed by the registry entry of connector "${connector}" (egress: ${e.host}:${e.port}).`,
    agent: null,
    connector: compileName(connector),
    tool: null,
    on: 'egress',
    egress: compileEgressMatcher({ host: e.host, port: e.port }),
    args: [],
    annotations: [],
    when: null,
  }));
}
