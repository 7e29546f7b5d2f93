/**
 * Pending asks. A call whose decision is `ask` waits in `request()` until an
 * admin approves or denies it, or its timeout passes (→ denied).
 *
 * When approving, an admin may give a grant (grants.ts) for later matching
 * calls; the approved call itself does not use it up. A rule without
 * `ask.grant` allows approvals of the one call only.
 *
 * A waiting call whose caller is gone (its `signal` aborts: the client
 * disconnected, cancelled, or its session closed) is withdrawn: it can no
 * longer be approved, so it never runs for nobody.
 *
 * With a `state` store, pending approvals, grants (with their uses) and
 * recently withdrawn approvals are saved on every change (written in the
 * background, coalesced) and loaded at start: a grant outlives a restart with
 * the same ttl and uses left; a call that was waiting when the gateway stopped
 * cannot be answered (its caller is gone), so it is shown as withdrawn. Nothing
 * that gives a permission takes effect before it is saved: a call waits for the
 * save of its pending approval, of the grant that approved it, or of the grant
 * use that lets it through, and is refused when the save fails. Every state
 * change is reported through `onEvent` so the caller can audit it.
 *
 * Egress connections whose rule asks (`requestEgress`) wait here the same
 * way, with the same timeout, withdrawal and grants; such an approval carries
 * `egress` (the connection) and its `tool` reads like "CONNECT host:port".
 * An egress request its rule matched without judging it (`judged` not true: a
 * tunnel under a method/path rule, a path a glob cannot judge) always waits
 * for a human: no grant covers it, and approving it gives none.
 */
import { summarizeArgs } from '../audit/summarize.js';
import { GatehouseError } from '../errors.js';
import { quoteLine } from '../terminal.js';
import { StateWriter, type ApprovalStateStore, type ApprovalsSnapshot } from './approval-state.js';
import { egressAction, grantCoverage, MAX_EGRESS_PATH, ungrantable, type EgressAsk } from './egress-ask.js';
import { Grants, newId, systemClock, type Clock, type Grant, type GrantEnd, type GrantSubject } from './grants.js';
import type { CallContext, Decision, EgressDecision, GrantLimit } from './types.js';

export { systemClock, type Clock, type Grant } from './grants.js';
export type { EgressAsk } from './egress-ask.js';

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
  /**
   * Present exactly on an egress approval: the connection asked for. Then `agent` is the caller's name (an
   * agent's or a connector's), `connector` the connector's name or "-", `tool` and `upstreamTool` the request
   * in one line ("CONNECT host:port", "GET http://host:port/path"), and `args` empty.
   */
  egress?: EgressAsk;
  /**
   * Egress approvals only: what a grant given on it would cover, for the approver ("CONNECT tunnels to
   * host:443", "GET/HEAD requests to host:80 matching /docs/**", "nothing: …"). Not saved: an approval
   * loaded from the saved state is withdrawn, never approved.
   */
  grantCovers?: string;
}

/** A pending approval whose caller went away (or the gateway restarted) before anyone answered. */
export interface WithdrawnApproval extends PendingApproval {
  withdrawnAt: string;
  reason: string;
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
  | { type: 'withdrawn'; approval: PendingApproval; reason: string }
  | { type: 'refused'; agent: string; tool: string; ruleId: string | null; reason: string }
  | { type: 'grant_used'; grant: Grant; agent: string; tool: string }
  | { type: 'grant_expired'; grant: Grant; reason: GrantEnd }
  /** The saved state could not be trusted at start: no grants were loaded (it was moved to `movedTo`). */
  | { type: 'state_rejected'; file: string; error: string; movedTo?: string }
  /** A change could not be saved. */
  | { type: 'state_error'; file: string; error: string };

export interface ApprovalsOptions {
  clock?: Clock;
  /** Called synchronously for every event; it should not throw (errors are ignored). */
  onEvent?: (ev: ApprovalEvent) => void;
  /** Pending asks at once, all agents (beyond: refused at once, i.e. denied). */
  maxPending?: number;
  /** Pending asks at once, per agent. */
  maxPendingPerAgent?: number;
  /** Where pending approvals and grants survive a restart (absent: memory only). */
  state?: ApprovalStateStore;
  /** How long a withdrawn approval stays listed (default 24 h; at most the newest 100). */
  withdrawnKeepMs?: number;
}

const WITHDRAWN_MAX = 100;
/** Saved and withdrawn approvals keep at most this much of the arguments (they are never approved again, only shown). */
const KEPT_ARGS_BYTES = 4096;
const RESTARTED = 'the gateway restarted while the call waited; its caller is gone';
/** What the agent is told when a save fails (no host path; the state_error event names the file). */
const UNSAVED = 'the gateway cannot save its approval state right now';

function keptArgs(args: Record<string, unknown>): Record<string, unknown> {
  const summary = summarizeArgs(args);
  const bytes = Buffer.byteLength(JSON.stringify(summary) ?? '');
  return bytes <= KEPT_ARGS_BYTES ? (summary as Record<string, unknown>) : { '…': `[arguments not kept: ${bytes} bytes]` };
}

/** Why a waiting call's signal aborted, for the approver and the audit. The reason may come from the client: one quoted, escaped, bounded line (a newline in it must not forge a line of ours). */
function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (typeof r === 'string' && r !== '') return `the caller is gone: ${quoteLine(r, 200)}`;
  return 'the caller is gone (the call was cancelled or its session closed)';
}

interface Waiting {
  approval: PendingApproval;
  /** What is saved and, once withdrawn, listed: the same with bounded arguments. */
  kept: PendingApproval;
  /** Shown (and decidable) only once saved: what an admin sees survives a crash. */
  visible: boolean;
  resolve: (o: ApprovalOutcome) => void;
  /** Why approving this one may give no grant (an egress request its rule could not judge). */
  noGrant?: string;
  timer: unknown;
  onAbort?: () => void;
  signal?: AbortSignal;
}

export class Approvals {
  readonly #clock: Clock;
  readonly #onEvent: (ev: ApprovalEvent) => void;
  readonly #maxPending: number;
  readonly #maxPerAgent: number;
  readonly #pending = new Map<string, Waiting>();
  readonly #grants: Grants;
  /** Newest last. */
  #withdrawn: WithdrawnApproval[] = [];
  readonly #withdrawnKeepMs: number;
  readonly #writer: StateWriter | undefined;

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
    this.#withdrawnKeepMs = opts.withdrawnKeepMs ?? 86_400_000;
    this.#grants = new Grants(this.#clock, {
      ended: (grant, reason) => {
        this.#saveLater();
        this.#onEvent({ type: 'grant_expired', grant, reason });
      },
      used: (grant, agent, tool) => this.#onEvent({ type: 'grant_used', grant, agent, tool }),
    });
    const state = opts.state;
    if (state !== undefined) {
      this.#writer = new StateWriter(state, () => this.#snapshot(), (e) => this.#onEvent({ type: 'state_error', file: state.file, error: e.message }));
      this.#restore(state);
    }
  }

  /** Loads the saved state: grants carry on, calls that were waiting are withdrawn (their callers are gone). */
  #restore(state: ApprovalStateStore): void {
    let snap: ApprovalsSnapshot | undefined;
    try {
      snap = state.load();
    } catch (e) {
      // Fail closed: no grants from a file we cannot trust. Keep it for the admin, out of the way.
      const movedTo = state.quarantine(new Date(this.#clock.now()));
      this.#onEvent({ type: 'state_rejected', file: state.file, error: (e as Error).message, ...(movedTo !== undefined ? { movedTo } : {}) });
    }
    if (snap !== undefined) {
      this.#withdrawn = snap.withdrawn.slice(-WITHDRAWN_MAX);
      this.#grants.load(snap.grants);
      for (const p of snap.pending) this.#recordWithdrawn(p, RESTARTED);
    }
    this.#saveLater();
  }

  /** Resolves when every change made so far is saved (or its save failed). For shutdown and tests. */
  flushed(): Promise<void> {
    return this.#writer?.idle() ?? Promise.resolve();
  }

  /**
   * Waits for a human on a call whose decision is `ask`. A live grant for the
   * same agent, rule and tool is used first. Resolves (never rejects) with the
   * outcome; timeout, withdrawal and refusal resolve as not approved.
   */
  request(ctx: CallContext, decision: Decision, secretFreeArgs: Record<string, unknown>, opts: { signal?: AbortSignal } = {}): Promise<ApprovalOutcome> {
    const base = { agent: ctx.agent, connector: ctx.connector, tool: ctx.tool, upstreamTool: ctx.upstreamTool, args: secretFreeArgs };
    return this.#ask(base, { agent: ctx.agent, ruleId: decision.ruleId, tool: ctx.tool }, decision, opts);
  }

  /**
   * Waits for a human on an egress connection whose rule asks, exactly as
   * `request` does for a call (same timeout, withdrawal on `signal`, limits
   * on pending asks). A live grant for the same caller, rule, host, port and
   * kind of request (and sandbox session, for a session grant) is used first,
   * unless the rule matched without judging the request (`decision.judged`
   * not true): then a human is always asked, and may give no grant.
   */
  requestEgress(conn: EgressAsk, decision: Decision & Pick<EgressDecision, 'judged' | 'http'>, opts: { signal?: AbortSignal } = {}): Promise<ApprovalOutcome> {
    const egress: EgressAsk = { ...conn, caller: { ...conn.caller } };
    if (egress.path !== undefined && egress.path.length > MAX_EGRESS_PATH) egress.path = `${egress.path.slice(0, MAX_EGRESS_PATH - 3)}...`;
    // The saved state holds names of at most 1 000 characters; `egress` keeps the whole (bounded) path.
    const full = egressAction(egress);
    const action = full.length > 1_000 ? `${full.slice(0, 997)}...` : full;
    const noGrant = ungrantable(egress, decision);
    const grantCovers = grantCoverage(egress, decision, decision.ask?.grant !== undefined);
    const base = { agent: egress.caller.name, connector: egress.caller.kind === 'connector' ? egress.caller.name : '-', tool: action, upstreamTool: action, args: {}, egress, grantCovers };
    return this.#ask(base, { agent: egress.caller.name, ruleId: decision.ruleId, tool: action, egress }, decision, opts, noGrant);
  }

  #ask(
    base: Pick<PendingApproval, 'agent' | 'connector' | 'tool' | 'upstreamTool' | 'args' | 'egress' | 'grantCovers'>,
    subject: GrantSubject,
    decision: Decision,
    opts: { signal?: AbortSignal },
    noGrant?: string,
  ): Promise<ApprovalOutcome> {
    if (decision.effect !== 'ask' || decision.ask === undefined) {
      return Promise.reject(new GatehouseError('INTERNAL', 'Approvals.request needs an ask decision'));
    }
    const refused = (reason: string): ApprovalOutcome => {
      this.#onEvent({ type: 'refused', agent: base.agent, tool: base.tool, ruleId: decision.ruleId, reason });
      return { approved: false, reason };
    };
    if (opts.signal?.aborted === true) return Promise.resolve(refused('the call was cancelled before it was asked'));
    const grant = noGrant === undefined ? this.#grants.use(subject) : undefined;
    if (grant !== undefined) {
      const outcome: ApprovalOutcome = { approved: true, by: grant.by, grantId: grant.id, reason: `grant ${grant.id} by ${grant.by} (${grant.uses}/${grant.maxUses} used)` };
      // A restart must not refill uses: the call goes through once its use is on disk (a failed save keeps the use spent).
      return this.#save().then(
        () => outcome,
        () => refused(`a grant covers this call, but its use cannot be recorded (${UNSAVED})`),
      );
    }
    if (this.#pending.size >= this.#maxPending) return Promise.resolve(refused('too many approvals are pending; try again later'));
    let mine = 0;
    for (const w of this.#pending.values()) if (w.approval.agent === base.agent) mine++;
    if (mine >= this.#maxPerAgent) return Promise.resolve(refused(`agent has ${mine} approvals pending already; try again later`));

    const now = this.#clock.now();
    const timeoutMs = decision.ask.timeoutMs;
    const approval: PendingApproval = {
      id: newId('ap_'),
      agent: base.agent,
      connector: base.connector,
      tool: base.tool,
      upstreamTool: base.upstreamTool,
      ruleId: decision.ruleId,
      message: decision.message,
      args: structuredClone(base.args),
      requestedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + timeoutMs).toISOString(),
    };
    if (decision.ask.grant !== undefined && noGrant === undefined) approval.grantLimit = { ...decision.ask.grant };
    if (base.egress !== undefined) approval.egress = base.egress;
    if (base.grantCovers !== undefined) approval.grantCovers = base.grantCovers;
    // The saved form (a strict schema) has no grantCovers: it is for approving, and a loaded approval is withdrawn.
    const { grantCovers: _shown, ...saved } = approval;
    const kept: PendingApproval = { ...saved, args: keptArgs(approval.args) };

    return new Promise<ApprovalOutcome>((resolve) => {
      const w: Waiting = {
        approval,
        kept,
        visible: false,
        resolve,
        ...(noGrant !== undefined ? { noGrant } : {}),
        timer: this.#clock.setTimeout(() => {
          if (this.#settle(approval.id)) {
            this.#saveLater();
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
            const reason = abortReason(signal);
            this.#recordWithdrawn(kept, reason);
            this.#saveLater();
            resolve({ approved: false, approvalId: approval.id, reason: `withdrawn: ${reason}` });
          }
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#pending.set(approval.id, w);
      const show = () => {
        if (!this.#pending.has(approval.id)) return;
        w.visible = true;
        this.#onEvent({ type: 'requested', approval });
      };
      if (this.#writer === undefined) return show();
      // Shown once saved, so that after a crash it is reported withdrawn, not silently lost; unsaved, it is not kept waiting.
      this.#save().then(show, () => {
        if (this.#settle(approval.id)) resolve({ ...refused(`this call needs a human approval, and ${UNSAVED}`), approvalId: approval.id });
      });
    });
  }

  /** Recently withdrawn approvals, newest first (kept for a day, at most 100). */
  withdrawn(): WithdrawnApproval[] {
    this.#trimWithdrawn();
    return [...this.#withdrawn].reverse();
  }

  /** Pending approvals, oldest first. */
  list(): PendingApproval[] {
    return [...this.#pending.values()].filter((w) => w.visible).map((w) => w.approval);
  }

  get(id: string): PendingApproval | undefined {
    const w = this.#pending.get(id);
    return w?.visible === true ? w.approval : undefined;
  }

  /** Live grants (expired ones are dropped and reported). */
  grants(): Grant[] {
    return this.#grants.live();
  }

  /**
   * Approves a pending call; with `grant`, later matching calls pass too
   * (clamped to the rule's `ask.grant`; with `exact`, one beyond it is refused
   * and the call stays pending). With `session` (egress approvals from
   * a sandbox session only) the grant covers that session only, and without
   * `grant` it is as large as the rule allows. Throws NOT_FOUND for an unknown or
   * settled id, USAGE when the rule allows no grant or could not judge the
   * egress request (the approval stays pending). Resolves once saved; when
   * the grant cannot be saved it is not given (the call itself is still
   * approved) and this rejects with STATE_UNAVAILABLE.
   */
  async approve(id: string, opts: { grant?: GrantLimit; session?: boolean; exact?: boolean; by: string }): Promise<{ approval: PendingApproval; grant?: Grant }> {
    const w = this.#pending.get(id);
    if (w === undefined || !w.visible) throw this.#notPending(id);
    const session = opts.session === true;
    if (w.noGrant !== undefined && (opts.grant !== undefined || session)) {
      throw new GatehouseError('USAGE', `no grant may be given on approval "${id}": ${w.noGrant}. Approve it without a grant (it stays pending), or deny it`);
    }
    const wanted = opts.grant ?? (session ? w.approval.grantLimit : undefined);
    if (session && wanted === undefined) throw new GatehouseError('USAGE', `rule "${w.approval.ruleId ?? '(default)'}" allows no grants: approve without one`);
    const grant = wanted === undefined ? undefined : this.#grants.create(w.approval, wanted, opts.by, { forSession: session, exact: opts.exact === true });
    this.#settle(id);
    if (grant !== undefined) this.#grants.add(grant);
    this.#onEvent(grant === undefined ? { type: 'approved', approval: w.approval, by: opts.by } : { type: 'approved', approval: w.approval, by: opts.by, grant });
    const outcome: ApprovalOutcome = { approved: true, approvalId: id, by: opts.by, reason: `approved by ${opts.by}` };
    try {
      await this.#save();
    } catch {
      // The human approved this call, which needs nothing saved; a grant that could not survive a restart is not given.
      w.resolve(outcome);
      if (grant === undefined) return { approval: w.approval };
      this.#grants.drop(grant.id);
      this.#saveLater();
      this.#onEvent({ type: 'grant_expired', grant, reason: 'revoked' });
      throw new GatehouseError('STATE_UNAVAILABLE', `the call was approved, but the grant could not be saved and was not given (see the gateway log); fix the state directory`);
    }
    if (grant !== undefined) outcome.grantId = grant.id;
    w.resolve(outcome);
    return grant === undefined ? { approval: w.approval } : { approval: w.approval, grant };
  }

  /** Denies a pending call. Throws NOT_FOUND for an unknown or settled id. */
  deny(id: string, opts: { by: string; reason?: string }): PendingApproval {
    const w = this.#pending.get(id);
    if (w === undefined || !w.visible) throw this.#notPending(id);
    this.#settle(id);
    this.#saveLater();
    const reason = opts.reason ?? `denied by ${opts.by}`;
    this.#onEvent({ type: 'denied', approval: w.approval, by: opts.by, reason });
    w.resolve({ approved: false, approvalId: id, by: opts.by, reason });
    return w.approval;
  }

  /**
   * Ends a grant before its time (at once, in this process). Throws NOT_FOUND
   * for an unknown id; rejects with STATE_UNAVAILABLE when the revocation
   * cannot be saved (the next change that is saved makes it stick).
   */
  async revokeGrant(id: string): Promise<Grant> {
    const g = this.#grants.get(id);
    if (g === undefined) throw new GatehouseError('NOT_FOUND', `no grant "${id}"`);
    this.#grants.drop(id);
    this.#onEvent({ type: 'grant_expired', grant: g, reason: 'revoked' });
    try {
      await this.#save();
    } catch {
      throw new GatehouseError('STATE_UNAVAILABLE', `grant "${id}" is revoked in the running gateway, but the revocation could not be saved (see the gateway log): it would come back after a restart; fix the state directory`);
    }
    return g;
  }

  /**
   * A sandbox session ended: grants given "for this session" end with it
   * (their ttl would end them later anyway; the session id is never reused).
   */
  sandboxEnded(sandbox: string): void {
    const ended = this.#grants.boundTo(sandbox);
    for (const g of ended) {
      this.#grants.drop(g.id);
      this.#onEvent({ type: 'grant_expired', grant: g, reason: 'session' });
    }
    if (ended.length > 0) this.#saveLater();
  }

  /**
   * The gateway is stopping: everything pending is withdrawn (its callers get
   * "not approved"); grants stay saved for the next start. Resolves once saved.
   */
  async close(): Promise<void> {
    for (const [id, w] of [...this.#pending]) {
      if (this.#settle(id)) {
        this.#recordWithdrawn(w.kept, 'the gateway shut down while the call waited');
        w.resolve({ approved: false, approvalId: id, reason: 'the gateway is shutting down' });
      }
    }
    this.#grants.stop();
    await this.#save().catch(() => undefined);
  }

  #notPending(id: string): GatehouseError {
    const gone = this.#withdrawn.find((a) => a.id === id);
    if (gone !== undefined) return new GatehouseError('NOT_FOUND', `approval "${id}" was withdrawn at ${gone.withdrawnAt} (${gone.reason}); there is nothing to approve or deny`);
    return new GatehouseError('NOT_FOUND', `no pending approval "${id}" (already decided or timed out?)`);
  }

  #recordWithdrawn(approval: PendingApproval, reason: string): void {
    this.#withdrawn.push({ ...approval, withdrawnAt: new Date(this.#clock.now()).toISOString(), reason });
    this.#trimWithdrawn();
    this.#onEvent({ type: 'withdrawn', approval, reason });
  }

  #trimWithdrawn(): void {
    const cutoff = this.#clock.now() - this.#withdrawnKeepMs;
    this.#withdrawn = this.#withdrawn.filter((a) => Date.parse(a.withdrawnAt) >= cutoff).slice(-WITHDRAWN_MAX);
  }

  #snapshot(): ApprovalsSnapshot {
    return { pending: [...this.#pending.values()].map((w) => w.kept), grants: this.#grants.snapshot(), withdrawn: [...this.#withdrawn] };
  }

  /** Resolves once the state as it is now is on disk; rejects when that save failed (reported as state_error). */
  #save(): Promise<void> {
    return this.#writer?.save() ?? Promise.resolve();
  }

  /** A removal: it has taken effect already; the save just follows. */
  #saveLater(): void {
    this.#save().catch(() => undefined);
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
}
