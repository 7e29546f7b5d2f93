/**
 * Everything that happens before an egress connection is opened, in this
 * order: the policy decision, a human's approval when the rule asks (or a
 * grant from an earlier one), the rate limit, name resolution, the address
 * check, and the durable `egress.intent` record. Only a `go` verdict may be
 * connected, and only to the addresses it carries (checked IPs, never the
 * name again). Each refusal gets its one `egress` record here.
 */
import { randomUUID } from 'node:crypto';
import { appendOrQueue } from '../audit/append-or-queue.js';
import type { AuditEvent, AuditSink } from '../audit/types.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Approvals } from '../policy/approvals.js';
import type { EgressAsk } from '../policy/egress-ask.js';
import { canonicalIp, evaluateEgress } from '../policy/egress.js';
import { rateKey, type RateLimiter } from '../policy/rate-limit.js';
import type { EgressCaller, EgressRequest, Policy, Rule } from '../policy/types.js';
import { addressProblem } from './address.js';
import type { LookupSlots } from './lookup-slots.js';
import type { RefusalLog } from './refusal-log.js';
import { resolveWithin, type Resolver } from './resolve.js';
import type { EgressTarget } from './target.js';

/** Who is asking, as the caller of the proxy (the relay, the launcher) vouches for it. */
export interface EgressIdentity {
  caller: EgressCaller;
  /** The sandbox session, when there is one. */
  sandbox?: string;
  /** A confined connector's registry `egress:` entries (connectorEgressRules): allowed unless a policy rule decides first. */
  rules?: readonly Rule[];
}

/** The part of Approvals the gate uses (the gateway's one Approvals object, shared with tool calls). */
export type EgressApprovals = Pick<Approvals, 'requestEgress'>;

export interface GateDeps {
  policy: () => Policy;
  /** Where `effect: ask` waits for a human; absent: such connections are refused ("no approver"). */
  approvals?: EgressApprovals;
  audit: AuditSink;
  logger: Logger;
  resolve: Resolver;
  resolveTimeoutMs: number;
  rateLimiter?: RateLimiter;
  /** Bounds the lookups running at once (see lookup-slots.ts); without it, unbounded. */
  lookups?: LookupSlots;
  /** Folds a caller's repeated refusals (see refusal-log.ts); without it each is written. */
  refusals?: RefusalLog;
  now: () => number;
}

export interface Go {
  go: true;
  /** Checked addresses, in the resolver's order. */
  addresses: string[];
  /** The fields every record of this connection carries. */
  record: AuditEvent;
}

export interface Refuse {
  go: false;
  status: number;
  message: string;
  headers?: Record<string, string>;
}

/** The audit fields naming the connection: who, where, and for plain HTTP what. Never the query (it may hold a token). */
function baseRecord(who: EgressIdentity, req: EgressRequest): AuditEvent {
  const r: AuditEvent = { event: 'egress', conn: randomUUID() };
  if (who.caller.kind === 'agent') r.agent = who.caller.name;
  else r.connector = who.caller.name;
  if (who.sandbox !== undefined) r.sandbox = who.sandbox;
  r.host = req.host;
  r.port = req.port;
  if (req.method !== undefined) r.method = req.method;
  if (req.path !== undefined) r.path = req.path.length > 1_024 ? `${req.path.slice(0, 1_021)}...` : req.path;
  return r;
}

/**
 * `signal` aborts when the client is gone: a connection waiting for approval is
 * then withdrawn (it can no longer be approved) and refused.
 */
export async function gate(deps: GateDeps, who: EgressIdentity, target: EgressTarget, http?: { method: string; path: string }, signal?: AbortSignal): Promise<Go | Refuse> {
  const started = deps.now();
  const req: EgressRequest = { caller: who.caller, host: target.host, port: target.port, ...http };
  const d = evaluateEgress(deps.policy(), req, who.rules);
  const record: AuditEvent = { ...baseRecord(who, req), decision: d.effect, rule: d.ruleId };
  const refuse = async (status: number, outcome: string, message: string, headers?: Record<string, string>): Promise<Refuse> => {
    const refusal = { ...record, outcome, reason: message, durationMs: deps.now() - started };
    if (deps.refusals !== undefined) await deps.refusals.refuse(`${who.caller.kind}:${who.caller.name}`, refusal);
    else await appendOrQueue(deps.audit, refusal, deps.logger);
    return headers === undefined ? { go: false, status, message } : { go: false, status, message, headers };
  };

  if (d.effect === 'deny') return refuse(403, 'denied', d.message);
  if (d.effect === 'ask') {
    if (deps.approvals === undefined) return refuse(403, 'denied', `${d.message} No approver: human approval is not enabled for egress on this gateway.`);
    const ask: EgressAsk = { caller: who.caller, host: req.host, port: req.port };
    if (req.method !== undefined) ask.method = req.method;
    if (record.path !== undefined) ask.path = record.path as string;
    if (who.sandbox !== undefined) ask.sandbox = who.sandbox;
    const o = await deps.approvals.requestEgress(ask, d, signal === undefined ? {} : { signal });
    if (o.approvalId !== undefined) record.approvalId = o.approvalId;
    if (o.grantId !== undefined) record.grantId = o.grantId;
    if (o.by !== undefined) record.by = o.by;
    // An approval is for a client that is still there: never connect for nobody.
    if (signal?.aborted === true) return refuse(403, 'client-gone', o.approved ? 'not connected: the client went away before the approval arrived' : `not approved: ${o.reason}`);
    if (!o.approved) return refuse(403, o.timedOut === true ? 'timeout' : 'denied', `not approved: ${o.reason}`);
  }
  if (d.limit !== undefined && deps.rateLimiter !== undefined) {
    const t = deps.rateLimiter.take(rateKey(d.limit.ruleId, `${who.caller.kind}:${who.caller.name}`), d.limit, deps.now());
    if (!t.ok) {
      const secs = Math.ceil(t.retryAfterMs / 1_000);
      return refuse(429, 'rate-limited', `Rate limit of rule "${d.limit.ruleId}" reached; retry in ${secs} s.`, { 'retry-after': String(secs) });
    }
  }

  let addresses: string[];
  if (target.literal) {
    addresses = [target.host];
  } else {
    try {
      addresses = await resolveLimited(deps, target.host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return refuse(code === 'ETIMEOUT' ? 504 : 502, 'unresolved', `Cannot resolve ${target.host}: ${code ?? errorMessage(e)}.`);
    }
    if (addresses.length === 0) return refuse(502, 'unresolved', `${target.host} has no address.`);
    // Connect to the one spelling that was checked (an IPv4-mapped IPv6 answer becomes its IPv4).
    const canonical = addresses.map(canonicalIp);
    if (canonical.some((a) => a === undefined)) return refuse(502, 'unresolved', `${target.host} resolved to something that is not an IP address.`);
    addresses = canonical as string[];
  }
  record.addresses = addresses.slice(0, 16);
  // Every answer is checked: one private address among public ones is a rebinding attempt, not a fallback.
  if (!d.hostNamed) {
    for (const a of addresses) {
      const problem = addressProblem(a);
      if (problem !== undefined) {
        return refuse(403, 'address-refused', `${target.host} resolves to ${a}, ${problem}; only a rule naming this host exactly (no glob) may reach it.`);
      }
    }
  }

  try {
    deps.audit.assertWritable();
    await deps.audit.append({ ...record, event: 'egress.intent' });
  } catch (e) {
    deps.logger.error({ err: errorMessage(e), host: target.host }, 'egress: intent record could not be written; connection refused');
    return { go: false, status: 503, message: 'The audit log cannot be written; the connection is refused.' };
  }
  return { go: true, addresses, record };
}

/**
 * `resolve(host)` within the resolve timeout, waiting for a lookup slot as
 * part of it; the slot is held until the lookup itself settles (a timed-out
 * getaddrinfo keeps its thread), not only until the proxy stops waiting.
 */
async function resolveLimited(deps: GateDeps, host: string): Promise<string[]> {
  if (deps.lookups === undefined) return resolveWithin(deps.resolve, host, deps.resolveTimeoutMs);
  const started = Date.now();
  const release = await deps.lookups.acquire(AbortSignal.timeout(deps.resolveTimeoutMs));
  const lookup = deps.resolve(host);
  lookup.then(release, release);
  return resolveWithin(() => lookup, host, Math.max(1, deps.resolveTimeoutMs - (Date.now() - started)));
}
