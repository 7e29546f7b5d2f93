/**
 * Pending asks and grants. A call whose decision is `ask` waits in `request()`
 * until an admin approves or denies it, or its timeout passes (→ denied).
 *
 * A grant, given when approving, lets later calls of the same agent, rule and
 * tool through without asking, until its ttl passes or its uses run out. It is
 * not bound to the exact arguments: a rule that asks per message would make an
 * args-bound grant useless; an admin who wants per-call review gives no grant.
 * The approved call itself does not use up the grant. A grant can be no larger
 * than the rule's `ask.grant` (the rule's numbers are the upper bound); a rule
 * without `ask.grant` allows approvals of the one call only.
 *
 * Everything is in memory (one gateway process). Every state change is
 * reported through `onEvent` so the caller can audit it.
 */
import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import type { CallContext, Decision, GrantLimit } from './types.js';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface PendingApproval {
  id: string;
  agent: string;
  connector: string;
  tool: string;
  upstreamTool: string;
  ruleId: string | null;
  message: string;
  /** The exact, secret-free arguments the approver is shown. */
  args: Record<string, unknown>;
  requestedAt: string;
  expiresAt: string;
  /** The largest grant the rule allows; absent: no grant may be given. */
  grantLimit?: GrantLimit;
}

export interface Grant {
  id: string;
  agent: string;
  ruleId: string | null;
  tool: string;
  by: string;
  /** The approval it was given with. */
  approvalId: string;
  createdAt: string;
  expiresAt: string;
  maxUses: number;
  uses: number;
}

export interface ApprovalOutcome {
  approved: boolean;
  /** The pending approval this call waited on (absent when a grant or a refusal decided at once). */
  approvalId?: string;
  /** True when nobody answered before the rule's timeout. */
  timedOut?: boolean;
  by?: string;
  grantId?: string;
  reason: string;
}

export type ApprovalEvent =
  | { type: 'requested'; approval: PendingApproval }
  | { type: 'approved'; approval: PendingApproval; by: string; grant?: Grant }
  | { type: 'denied'; approval: PendingApproval; by: string; reason: string }
  | { type: 'timed_out'; approval: PendingApproval }
  | { type: 'cancelled'; approval: PendingApproval; reason: string }
  | { type: 'refused'; agent: string; tool: string; ruleId: string | null; reason: string }
  | { type: 'grant_used'; grant: Grant; agent: string; tool: string }
  | { type: 'grant_expired'; grant: Grant; reason: 'ttl' | 'uses' | 'revoked' };

export interface ApprovalsOptions {
  clock?: Clock;
  /** Called synchronously for every event; it should not throw (errors are ignored). */
  onEvent?: (ev: ApprovalEvent) => void;
  /** Pending asks at once, all agents (beyond: refused at once, i.e. denied). */
  maxPending?: number;
  /** Pending asks at once, per agent. */
  maxPendingPerAgent?: number;
}

interface Waiting {
  approval: PendingApproval;
  resolve: (o: ApprovalOutcome) => void;
  timer: unknown;
  onAbort?: () => void;
  signal?: AbortSignal;
}

function newId(prefix: string): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

export class Approvals {
  readonly #clock: Clock;
  readonly #onEvent: (ev: ApprovalEvent) => void;
  readonly #maxPending: number;
  readonly #maxPerAgent: number;
  readonly #pending = new Map<string, Waiting>();
  readonly #grants = new Map<string, Grant>();
  readonly #grantTimers = new Map<string, unknown>();

  constructor(opts: ApprovalsOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
    const cb = opts.onEvent;
    this.#onEvent = (ev) => {
      try {
        cb?.(ev);
      } catch {
        // An audit sink must handle its own failures; a throwing callback cannot change an approval.
      }
    };
    this.#maxPending = opts.maxPending ?? 1_000;
    this.#maxPerAgent = opts.maxPendingPerAgent ?? 20;
  }

  /**
   * Waits for a human on a call whose decision is `ask`. A live grant for the
   * same agent, rule and tool is used first. Resolves (never rejects) with the
   * outcome; timeout, cancellation and refusal resolve as not approved.
   */
  request(ctx: CallContext, decision: Decision, secretFreeArgs: Record<string, unknown>, opts: { signal?: AbortSignal } = {}): Promise<ApprovalOutcome> {
    if (decision.effect !== 'ask' || decision.ask === undefined) {
      return Promise.reject(new GatehouseError('INTERNAL', 'Approvals.request needs an ask decision'));
    }
    const grant = this.#useGrant(ctx.agent, decision.ruleId, ctx.tool);
    if (grant !== undefined) {
      return Promise.resolve({ approved: true, by: grant.by, grantId: grant.id, reason: `grant ${grant.id} by ${grant.by} (${grant.uses}/${grant.maxUses} used)` });
    }
    const refuse = (reason: string): Promise<ApprovalOutcome> => {
      this.#onEvent({ type: 'refused', agent: ctx.agent, tool: ctx.tool, ruleId: decision.ruleId, reason });
      return Promise.resolve({ approved: false, reason });
    };
    if (opts.signal?.aborted === true) return refuse('the call was cancelled before it was asked');
    if (this.#pending.size >= this.#maxPending) return refuse('too many approvals are pending; try again later');
    let mine = 0;
    for (const w of this.#pending.values()) if (w.approval.agent === ctx.agent) mine++;
    if (mine >= this.#maxPerAgent) return refuse(`agent has ${mine} approvals pending already; try again later`);

    const now = this.#clock.now();
    const timeoutMs = decision.ask.timeoutMs;
    const approval: PendingApproval = {
      id: newId('ap_'),
      agent: ctx.agent,
      connector: ctx.connector,
      tool: ctx.tool,
      upstreamTool: ctx.upstreamTool,
      ruleId: decision.ruleId,
      message: decision.message,
      args: structuredClone(secretFreeArgs),
      requestedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + timeoutMs).toISOString(),
    };
    if (decision.ask.grant !== undefined) approval.grantLimit = { ...decision.ask.grant };

    return new Promise<ApprovalOutcome>((resolve) => {
      const w: Waiting = {
        approval,
        resolve,
        timer: this.#clock.setTimeout(() => {
          if (this.#settle(approval.id)) {
            this.#onEvent({ type: 'timed_out', approval });
            resolve({ approved: false, approvalId: approval.id, timedOut: true, reason: `no answer within ${Math.round(timeoutMs / 1000)}s: denied` });
          }
        }, timeoutMs),
      };
      if (opts.signal !== undefined) {
        const signal = opts.signal;
        w.signal = signal;
        w.onAbort = () => {
          if (this.#settle(approval.id)) {
            this.#onEvent({ type: 'cancelled', approval, reason: 'the call was cancelled' });
            resolve({ approved: false, approvalId: approval.id, reason: 'the call was cancelled' });
          }
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#pending.set(approval.id, w);
      this.#onEvent({ type: 'requested', approval });
    });
  }

  /** Pending approvals, oldest first. */
  list(): PendingApproval[] {
    return [...this.#pending.values()].map((w) => w.approval);
  }

  get(id: string): PendingApproval | undefined {
    return this.#pending.get(id)?.approval;
  }

  /** Live grants (expired ones are dropped and reported). */
  grants(): Grant[] {
    const now = this.#clock.now();
    for (const g of [...this.#grants.values()]) this.#expireIfDone(g, now);
    return [...this.#grants.values()];
  }

  /**
   * Approves a pending call; with `grant`, later matching calls pass too
   * (clamped to the rule's `ask.grant`). Throws NOT_FOUND for an unknown or
   * settled id, USAGE when the rule allows no grant.
   */
  approve(id: string, opts: { grant?: GrantLimit; by: string }): { approval: PendingApproval; grant?: Grant } {
    const w = this.#pending.get(id);
    if (w === undefined) throw new GatehouseError('NOT_FOUND', `no pending approval "${id}" (already decided or timed out?)`);
    let grant: Grant | undefined;
    if (opts.grant !== undefined) {
      const limit = w.approval.grantLimit;
      if (limit === undefined) {
        throw new GatehouseError('USAGE', `rule "${w.approval.ruleId ?? '(default)'}" allows no grants: approve without one`);
      }
      if (!(opts.grant.ttlMs > 0) || !(opts.grant.maxUses >= 1)) throw new GatehouseError('USAGE', 'a grant needs ttl > 0 and uses >= 1');
      const now = this.#clock.now();
      const ttlMs = Math.min(opts.grant.ttlMs, limit.ttlMs);
      grant = {
        id: newId('gr_'),
        agent: w.approval.agent,
        ruleId: w.approval.ruleId,
        tool: w.approval.tool,
        by: opts.by,
        approvalId: id,
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + ttlMs).toISOString(),
        maxUses: Math.min(Math.floor(opts.grant.maxUses), limit.maxUses),
        uses: 0,
      };
    }
    this.#settle(id);
    if (grant !== undefined) {
      const g = grant;
      this.#grants.set(g.id, g);
      // Report the expiry when it happens, not only when the grant is next looked at.
      this.#grantTimers.set(g.id, this.#clock.setTimeout(() => this.#expireIfDone(g, this.#clock.now()), Date.parse(g.expiresAt) - this.#clock.now()));
    }
    this.#onEvent(grant === undefined ? { type: 'approved', approval: w.approval, by: opts.by } : { type: 'approved', approval: w.approval, by: opts.by, grant });
    const outcome: ApprovalOutcome = { approved: true, approvalId: id, by: opts.by, reason: `approved by ${opts.by}` };
    if (grant !== undefined) outcome.grantId = grant.id;
    w.resolve(outcome);
    return grant === undefined ? { approval: w.approval } : { approval: w.approval, grant };
  }

  /** Denies a pending call. Throws NOT_FOUND for an unknown or settled id. */
  deny(id: string, opts: { by: string; reason?: string }): PendingApproval {
    const w = this.#pending.get(id);
    if (w === undefined) throw new GatehouseError('NOT_FOUND', `no pending approval "${id}" (already decided or timed out?)`);
    this.#settle(id);
    const reason = opts.reason ?? `denied by ${opts.by}`;
    this.#onEvent({ type: 'denied', approval: w.approval, by: opts.by, reason });
    w.resolve({ approved: false, approvalId: id, by: opts.by, reason });
    return w.approval;
  }

  /** Ends a grant before its time. Throws NOT_FOUND for an unknown id. */
  revokeGrant(id: string): Grant {
    const g = this.#grants.get(id);
    if (g === undefined) throw new GatehouseError('NOT_FOUND', `no grant "${id}"`);
    this.#dropGrant(id);
    this.#onEvent({ type: 'grant_expired', grant: g, reason: 'revoked' });
    return g;
  }

  /** Denies everything pending (the gateway is stopping) and drops grants. */
  close(): void {
    for (const [id, w] of [...this.#pending]) {
      if (this.#settle(id)) {
        this.#onEvent({ type: 'cancelled', approval: w.approval, reason: 'the gateway is shutting down' });
        w.resolve({ approved: false, reason: 'the gateway is shutting down' });
      }
    }
    for (const id of [...this.#grants.keys()]) this.#dropGrant(id);
  }

  #dropGrant(id: string): void {
    this.#grants.delete(id);
    const t = this.#grantTimers.get(id);
    if (t !== undefined) this.#clock.clearTimeout(t);
    this.#grantTimers.delete(id);
  }

  /** Removes a pending entry and its timer/listener; false when it was already settled. */
  #settle(id: string): boolean {
    const w = this.#pending.get(id);
    if (w === undefined) return false;
    this.#pending.delete(id);
    this.#clock.clearTimeout(w.timer);
    if (w.signal !== undefined && w.onAbort !== undefined) w.signal.removeEventListener('abort', w.onAbort);
    return true;
  }

  #expireIfDone(g: Grant, now: number): boolean {
    if (!this.#grants.has(g.id)) return true;
    if (now >= Date.parse(g.expiresAt)) {
      this.#dropGrant(g.id);
      this.#onEvent({ type: 'grant_expired', grant: g, reason: 'ttl' });
      return true;
    }
    if (g.uses >= g.maxUses) {
      this.#dropGrant(g.id);
      this.#onEvent({ type: 'grant_expired', grant: g, reason: 'uses' });
      return true;
    }
    return false;
  }

  #useGrant(agent: string, ruleId: string | null, tool: string): Grant | undefined {
    const now = this.#clock.now();
    for (const g of [...this.#grants.values()]) {
      if (this.#expireIfDone(g, now)) continue;
      if (g.agent !== agent || g.ruleId !== ruleId || g.tool !== tool) continue;
      g.uses++;
      this.#onEvent({ type: 'grant_used', grant: { ...g }, agent, tool });
      if (g.uses >= g.maxUses) this.#expireIfDone(g, now);
      return g;
    }
    return undefined;
  }
}
