/**
 * `gatehouse policy explain --egress HOST:PORT`: the decision for one egress
 * connection, the deciding rule, why each egress rule did or did not match,
 * and what the proxy will do about the address. The target is read by the
 * proxy's own parser (egress/target.ts), so the host explained is the host
 * the proxy would decide on (lower case, no trailing dot, canonical IP).
 */
import { relative } from 'node:path';
import { formatDuration } from '../config/duration.js';
import { addressNote } from '../egress/address-note.js';
import { parseAuthority, type EgressTarget } from '../egress/target.js';
import { Exit, GatehouseError } from '../errors.js';
import { explainEgress } from '../policy/explain-egress.js';
import type { EgressCaller, EgressDecision, EgressRequest, Policy } from '../policy/types.js';
import { esc, escapeText, hasUnsafe, jsonText, quoteLine } from '../terminal.js';
import { type Io } from './command.js';
import { explainedRulesTable } from './explained-rules.js';

export interface EgressExplainFlags {
  agent?: string;
  connector?: string;
  egress?: string;
  method?: string;
  path?: string;
  tool?: string;
  upstreamTool?: string;
  args?: string;
  annotations?: string;
  time?: string;
  all?: boolean;
  json?: boolean;
}

export interface EgressQuery {
  caller: EgressCaller;
  target: EgressTarget;
  /** Plain HTTP; absent: a CONNECT tunnel. */
  http?: { method: string; path: string };
}

const EXAMPLE = 'e.g. --egress registry.npmjs.org:443, or [2001:db8::1]:443';
const MAX_PATH = 8_192;

const usage = (message: string): GatehouseError => new GatehouseError('USAGE', message);

function parseTarget(s: string): EgressTarget {
  const shown = quoteLine(s, 80);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    throw usage(`--egress: ${shown} is a URL; give host:port (${EXAMPLE}; for http://host/path add --method GET --path /path)`);
  }
  const t = parseAuthority(s);
  if (t.ok) return t.value;
  const withPort = parseAuthority(s, 443);
  if (withPort.ok) {
    const h = withPort.value.host.includes(':') ? `[${withPort.value.host}]` : withPort.value.host;
    throw usage(`--egress: ${shown} has no port; write ${h}:443 (https) or ${h}:80 (http)`);
  }
  throw usage(`--egress: ${shown} is not host:port (${t.reason}); ${EXAMPLE}`);
}

function parseHttp(method: string | undefined, path: string | undefined): EgressQuery['http'] {
  if (method === undefined && path === undefined) return undefined;
  if (method === undefined || path === undefined) {
    throw usage('--method and --path go together: a plain-HTTP request has both; leave both out for a CONNECT tunnel (https)');
  }
  if (!/^[A-Za-z]{1,20}$/.test(method)) throw usage(`--method: ${quoteLine(method, 30)} is not an HTTP method; e.g. --method GET`);
  const m = method.toUpperCase();
  if (m === 'CONNECT') throw usage('--method CONNECT: leave out --method and --path; without them the connection is a CONNECT tunnel');
  if (!path.startsWith('/') || path.length > MAX_PATH || /\s/.test(path) || hasUnsafe(path) || path.includes('#')) {
    throw usage(`--path: ${quoteLine(path, 80)} is not a request path; it starts with "/", has no spaces, control characters or "#" (e.g. --path /simple/requests/)`);
  }
  // The proxy matches the path without the query (src/egress/target.ts).
  const q = path.indexOf('?');
  return { method: m, path: q === -1 ? path : path.slice(0, q) };
}

const NOT_FOR_EGRESS: readonly [keyof EgressExplainFlags, string][] = [
  ['tool', '--tool'],
  ['upstreamTool', '--upstream-tool'],
  ['args', '--args'],
  ['annotations', '--annotations'],
  ['time', '--time'],
];

/** The connection the flags describe; throws a USAGE error naming the flag and the fix. */
export function egressQuery(o: EgressExplainFlags): EgressQuery {
  if (o.egress === undefined) throw usage('--method and --path describe an egress connection: give --egress HOST:PORT too');
  for (const [key, flag] of NOT_FOR_EGRESS) {
    if (o[key] !== undefined) throw usage(`${flag} is for a tool call, not with --egress (egress rules match the caller, host, port, method and path)`);
  }
  if ((o.agent === undefined) === (o.connector === undefined)) {
    throw usage('--egress needs the caller: --agent NAME or --connector NAME (one of them: a connection comes from an agent or from a connector)');
  }
  const caller: EgressCaller = o.agent !== undefined ? { kind: 'agent', name: o.agent } : { kind: 'connector', name: o.connector ?? '' };
  const target = parseTarget(o.egress);
  const http = parseHttp(o.method, o.path);
  return http === undefined ? { caller, target } : { caller, target, http };
}

function where(d: EgressDecision, policy: Policy, dir: string): string {
  const rule = d.ruleId === null ? undefined : policy.rules.find((r) => r.id === d.ruleId);
  return rule === undefined ? 'the egress default (egress is opt-in)' : `rule "${rule.id}" (${relative(dir, rule.file)}:${rule.line})`;
}

/** Prints the explanation; exit 1 when the connection is denied or its address is one the proxy refuses, else 0 (allow or ask, as for tool calls). */
export function reportEgress(io: Io, policy: Policy, dir: string, q: EgressQuery, o: { all?: boolean; json?: boolean }): number {
  const req: EgressRequest = { caller: q.caller, host: q.target.host, port: q.target.port, ...q.http };
  const ex = explainEgress(policy, req);
  const address = addressNote(q.target, ex.decision);
  const code = ex.decision.effect === 'deny' || address.refused ? Exit.Failed : Exit.Ok;
  const nearby = ex.rules.filter((_r, i) => o.all === true || policy.rules[i]?.on === 'egress');
  if (o.json === true) {
    const connection = { caller: q.caller, host: q.target.host, port: q.target.port, literal: q.target.literal, tunnel: q.http === undefined, ...q.http };
    io.out(`${jsonText({ connection, decision: ex.decision, address, rules: nearby }, 2)}\n`);
    return code;
  }
  const d = ex.decision;
  const hostPort = q.target.host.includes(':') ? `[${q.target.host}]:${q.target.port}` : `${q.target.host}:${q.target.port}`;
  const what = q.http === undefined ? 'a CONNECT tunnel' : `plain HTTP ${q.http.method} ${q.http.path}`;
  const lines = [`Decision: ${d.effect.toUpperCase()} by ${escapeText(where(d, policy, dir))}`, esc`Message:  ${d.message}`];
  if (d.limit !== undefined) lines.push(`Limit:    ${d.limit.capacity} per ${formatDuration(d.limit.perMs)} per ${q.caller.kind}`);
  if (d.ask !== undefined) {
    const g = d.ask.grant;
    lines.push(`Ask:      timeout ${formatDuration(d.ask.timeoutMs)}${g === undefined ? ', no grants' : `, grants up to ${formatDuration(g.ttlMs)} / ${g.maxUses} uses`}`);
  }
  lines.push(esc`Target:   ${q.caller.kind} "${q.caller.name}" → ${hostPort}, ${what}`, esc`Address:  ${address.note}`);
  io.out(`${lines.join('\n')}\n\n`);
  if (nearby.length === 0) io.out('No egress rule in the policy: every connection is denied.\n');
  else {
    io.out(explainedRulesTable(nearby, dir));
  }
  const hidden = ex.rules.length - nearby.length;
  if (hidden > 0) io.out(`(${hidden} rules about tool and model calls not shown; --all shows them)\n`);
  return code;
}
