/**
 * Grants: given when an admin approves an `ask`, they let later calls of the
 * same agent, rule and tool through without asking, until their ttl passes or
 * their uses run out. Not bound to the exact arguments: a rule that asks per
 * message would make an args-bound grant useless; an admin who wants per-call
 * review gives no grant. A grant is no larger than the rule's `ask.grant`.
 * Saving them is the caller's (Approvals): this holds them, times them out
 * and spends their uses. An egress grant (egress-ask.ts) is bound to the
 * caller, rule, host, port and kind of request (tunnel or plain HTTP) instead
 * of a tool, and may be bound to one sandbox session; a tool grant never
 * covers a connection, nor the reverse. An egress grant saved without its
 * kind (by an older gateway) covers nothing. Approvals never asks for a grant
 * on, or uses one for, a request its rule could not judge.
 */
import { randomBytes } from 'node:crypto';
import { formatDuration } from '../config/duration.js';
import { GatehouseError } from '../errors.js';
import { egressScope, scopeCovers, type EgressAsk, type EgressGrantScope } from './egress-ask.js';
import type { GrantLimit } from './types.js';

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

export function newId(prefix: string): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
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
  /** Egress grants only: what it opens (`agent` is then the caller's name, `tool` reads "host:port"). */
  egress?: EgressGrantScope;
}

/** What asks for a grant's use: a tool call, or an egress connection (`tool` is then ignored). */
export interface GrantSubject {
  agent: string;
  ruleId: string | null;
  tool: string;
  egress?: EgressAsk;
}

/** Why a grant ended: its ttl, its uses, an admin (or a failed save), or the end of the sandbox session it was bound to. */
export type GrantEnd = 'ttl' | 'uses' | 'revoked' | 'session';

export interface GrantHooks {
  /** A grant's ttl passed or its uses ran out: it is gone already. */
  ended(g: Grant, reason: 'ttl' | 'uses'): void;
  /** A use was spent (a copy of the grant as it is after the use). */
  used(g: Grant, agent: string, tool: string): void;
}

export class Grants {
  readonly #clock: Clock;
  readonly #hooks: GrantHooks;
  readonly #grants = new Map<string, Grant>();
  readonly #timers = new Map<string, unknown>();

  constructor(clock: Clock, hooks: GrantHooks) {
    this.#clock = clock;
    this.#hooks = hooks;
  }

  /** Grants from the saved state carry on; those already over end at once. */
  load(grants: readonly Grant[]): void {
    const now = this.#clock.now();
    for (const g of grants) {
      this.#grants.set(g.id, g);
      if (!this.#expireIfDone(g, now)) this.#arm(g);
    }
  }

  /** Live grants (expired ones are dropped and reported). */
  live(): Grant[] {
    const now = this.#clock.now();
    for (const g of [...this.#grants.values()]) this.#expireIfDone(g, now);
    return [...this.#grants.values()];
  }

  /** Copies, for the saved state. */
  snapshot(): Grant[] {
    return [...this.#grants.values()].map((g) => ({ ...g }));
  }

  get(id: string): Grant | undefined {
    return this.#grants.get(id);
  }

  /**
   * A new grant for an approval, clamped to the rule's `limit` (not yet in
   * force: `add` it); with `exact`, a grant beyond it is refused instead.
   * Throws USAGE when the rule allows none or the ask is empty.
   */
  create(approval: { id: string; agent: string; ruleId: string | null; tool: string; grantLimit?: GrantLimit; egress?: EgressAsk }, wanted: GrantLimit, by: string, opts: { forSession?: boolean; exact?: boolean } = {}): Grant {
    const limit = approval.grantLimit;
    if (limit === undefined) throw new GatehouseError('USAGE', `rule "${approval.ruleId ?? '(default)'}" allows no grants: approve without one`);
    if (opts.forSession === true && approval.egress?.sandbox === undefined) throw new GatehouseError('USAGE', 'a grant for the sandbox session needs an egress approval that came from a sandbox session');
    if (!(wanted.ttlMs > 0) || !(wanted.maxUses >= 1)) throw new GatehouseError('USAGE', 'a grant needs ttl > 0 and uses >= 1');
    if (opts.exact === true) {
      // Refused, not cut down: the admin who typed the numbers learns the rule's bound instead of believing they gave more.
      const rule = `rule "${approval.ruleId ?? '(default)'}"`;
      if (wanted.ttlMs > limit.ttlMs) throw new GatehouseError('USAGE', `a grant of ${formatDuration(wanted.ttlMs)} is longer than ${rule} allows (${formatDuration(limit.ttlMs)})`);
      if (wanted.maxUses > limit.maxUses) throw new GatehouseError('USAGE', `a grant of ${wanted.maxUses} uses is more than ${rule} allows (${limit.maxUses})`);
    }
    const now = this.#clock.now();
    const ttlMs = Math.min(wanted.ttlMs, limit.ttlMs);
    const e = approval.egress;
    const g: Grant = {
      id: newId('gr_'),
      agent: approval.agent,
      ruleId: approval.ruleId,
      tool: e === undefined ? approval.tool : `${e.host}:${e.port}`,
      by,
      approvalId: approval.id,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttlMs).toISOString(),
      maxUses: Math.min(Math.floor(wanted.maxUses), limit.maxUses),
      uses: 0,
    };
    if (e !== undefined) g.egress = egressScope(e, opts.forSession === true);
    return g;
  }

  add(g: Grant): void {
    this.#grants.set(g.id, g);
    this.#arm(g);
  }

  /** Ends a grant at once (revoked, or not given after all); its hooks are not called. */
  drop(id: string): void {
    this.#grants.delete(id);
    const t = this.#timers.get(id);
    if (t !== undefined) this.#clock.clearTimeout(t);
    this.#timers.delete(id);
  }

  /** Grants bound to a sandbox session (egress grants "for this session"). */
  boundTo(sandbox: string): Grant[] {
    return [...this.#grants.values()].filter((g) => g.egress?.sandbox === sandbox);
  }

  /** Spends one use of a live grant for this call (in memory, at once: two calls cannot share the last use). */
  use(s: GrantSubject): Grant | undefined {
    const now = this.#clock.now();
    for (const g of [...this.#grants.values()]) {
      if (this.#expireIfDone(g, now)) continue;
      if (!covers(g, s)) continue;
      g.uses++;
      const used = { ...g };
      this.#hooks.used(used, s.agent, g.tool);
      if (g.uses >= g.maxUses) this.#expireIfDone(g, now);
      return used;
    }
    return undefined;
  }

  /** Stops every timer (the gateway is stopping; the grants stay saved). */
  stop(): void {
    for (const t of this.#timers.values()) this.#clock.clearTimeout(t);
    this.#timers.clear();
  }

  #arm(g: Grant): void {
    // Report the expiry when it happens, not only when the grant is next looked at. A timer may fire a
    // millisecond before the wall clock reaches the expiry: then it is armed again, not forgotten.
    const fire = () => {
      if (!this.#expireIfDone(g, this.#clock.now())) this.#arm(g);
    };
    this.#timers.set(g.id, this.#clock.setTimeout(fire, Math.max(1, Date.parse(g.expiresAt) - this.#clock.now())));
  }

  /** Drops a grant whose ttl passed or whose uses ran out; true when it is gone. */
  #expireIfDone(g: Grant, now: number): boolean {
    if (!this.#grants.has(g.id)) return true;
    const reason = now >= Date.parse(g.expiresAt) ? 'ttl' : g.uses >= g.maxUses ? 'uses' : undefined;
    if (reason === undefined) return false;
    this.drop(g.id);
    this.#hooks.ended(g, reason);
    return true;
  }
}

function covers(g: Grant, s: GrantSubject): boolean {
  if (g.agent !== s.agent || g.ruleId !== s.ruleId) return false;
  if (g.egress === undefined || s.egress === undefined) return g.egress === undefined && s.egress === undefined && g.tool === s.tool;
  return scopeCovers(g.egress, s.egress);
}
