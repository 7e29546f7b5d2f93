/**
 * Multi round-trip requests (MCP 2026-07-28, basic/patterns/mrtr) for agents
 * of that revision: an upstream's `elicitation/create` or
 * `sampling/createMessage` during a call reaches the agent as an
 * `InputRequiredResult`, and the agent's retry (`inputResponses` with the
 * echoed `requestState`) answers it.
 *
 * The upstream asked in the middle of a call it is still running (a
 * 2025-11-25 upstream holds its request open; the SDK's MRTR driver does the
 * same for a 2026 one), so the call is parked here, in memory, between the
 * agent's rounds: a round-trip must come back to this gateway process. The
 * `requestState` names the parked call and is bound, by an HMAC under a
 * per-process key, to the agent, the tool, the arguments and the round
 * (§Server Requirements: treat it as attacker-controlled, bind it to the
 * principal and the request). Only the upstream's questions are ever put to
 * the agent; an `ask` policy decision is not one of them (approvals stay with
 * the admins, src/policy/approvals.ts).
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { GatehouseError } from '../errors.js';

/** Calls parked waiting for one agent's input, and for all agents together. */
export const DEFAULT_MAX_PARKED_PER_AGENT = 32;
export const DEFAULT_MAX_PARKED = 1024;
/** Questions one call may have open at once (the upstream's `inputRequests` of one round). */
const MAX_OPEN_QUESTIONS = 16;
/** An input request key passed on as the upstream chose it. */
const KEY = /^[A-Za-z0-9_.-]{1,64}$/;

export type InputMethod = 'elicitation/create' | 'sampling/createMessage';

/** What one round of the agent's request gets back. */
export type RoundOutcome<R> =
  | { kind: 'result'; result: R }
  | { kind: 'error'; error: unknown }
  | { kind: 'input'; inputRequests: Record<string, { method: InputMethod; params: Record<string, unknown> }>; requestState: string };

interface Question {
  method: InputMethod;
  params: Record<string, unknown>;
  resolve: (answer: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

/** What the agent's request now waiting on the call needs (per request: capabilities and log level may differ each round). */
export interface Round<W> {
  /** This round's own view (the HTTP reply, its progress token, its log level). */
  view: W;
  deliver: (outcome: RoundOutcome<unknown>) => void;
}

/** Who may resume a parked call: the agent, the tool, its arguments. */
export interface CallBinding {
  principal: string;
  tool: string;
  args: unknown;
}

/** Keys sorted, nothing cut (arguments are at most 100 levels deep: src/server/json-body.ts), so equal digests mean equal arguments. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function digestOf(args: unknown): string {
  return createHash('sha256').update(stableJson(args)).digest('base64url');
}

/**
 * One agent call of the 2026-07-28 era in flight. Between the agent's
 * requests it waits, parked, for the next one; each question the upstream
 * asks is answered by the agent's next round.
 */
export class AgentCall<W, R> {
  readonly id = randomUUID();
  private readonly bound: CallBinding;
  private digest: string | undefined;
  private readonly controller = new AbortController();
  private readonly questions = new Map<string, Question>();
  private asked = 0;
  private round = 0;
  private current: Round<W> | undefined;
  private flushing = false;
  private settled: RoundOutcome<R> | undefined;
  private parkTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: ParkedCalls,
    binding: CallBinding,
  ) {
    this.bound = binding;
  }

  /** What the call's requestState is bound to; the arguments' digest is made only for a call that parks (most never do). */
  get binding(): { principal: string; tool: string; digest: string } {
    this.digest ??= digestOf(this.bound.args);
    return { principal: this.bound.principal, tool: this.bound.tool, digest: this.digest };
  }

  get principal(): string {
    return this.bound.principal;
  }

  /** Aborted when the agent cancels (closes its request), stops coming back, or the gateway closes. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The request of the agent now waiting on this call, if one is. */
  get view(): W | undefined {
    return this.current?.view;
  }

  /** The call's own run (the pipeline); its end is the last round's answer. */
  attach(run: Promise<R>): void {
    run.then(
      (result) => this.settle({ kind: 'result', result }),
      (error: unknown) => this.settle({ kind: 'error', error }),
    );
  }

  abort(reason: string): void {
    if (!this.controller.signal.aborted) this.controller.abort(new GatehouseError('UPSTREAM_ERROR', reason));
  }

  /**
   * One request of the agent on this call: resolves with the result, an
   * error, or the questions to answer in the next round. `answers` are the
   * request's `inputResponses` (already checked to be objects): those of open
   * questions answer them; any other key is ignored (§Error Handling).
   */
  serve(view: W, answers?: Record<string, Record<string, unknown>>): Promise<RoundOutcome<R>> {
    this.registry.unpark(this);
    clearTimeout(this.parkTimer);
    return new Promise<RoundOutcome<R>>((resolve) => {
      this.current = { view, deliver: resolve as (o: RoundOutcome<unknown>) => void };
      if (this.settled) return this.deliver(this.settled);
      for (const [key, answer] of Object.entries(answers ?? {})) {
        const q = this.questions.get(key);
        if (!q) continue;
        this.questions.delete(key);
        q.resolve(answer);
      }
      // Questions the agent left open are asked again (§Error Handling: re-request, not an error).
      if (this.questions.size > 0) this.scheduleFlush();
    });
  }

  /** The agent's request went away before its answer: the call is cancelled (transports §Cancellation). */
  hangUp(): void {
    if (this.current === undefined) return;
    this.current = undefined;
    this.abort('the agent closed its request before the result (cancelled)');
  }

  /**
   * A question of the upstream for the agent. Answered by the agent's next
   * round; refused when the call has too many open, or it is over.
   */
  ask(method: InputMethod, params: Record<string, unknown>, opts: { signal: AbortSignal; timeout: number; key?: string }): Promise<Record<string, unknown>> {
    if (this.settled || this.controller.signal.aborted) return Promise.reject(new Error('the call is over'));
    if (this.questions.size >= MAX_OPEN_QUESTIONS) return Promise.reject(new Error(`more than ${MAX_OPEN_QUESTIONS} open questions in one call`));
    // The upstream's own key where it has one (a 2026-07-28 upstream's inputRequests), if plain and free; else one of ours.
    let key = opts.key !== undefined && KEY.test(opts.key) && !this.questions.has(opts.key) ? opts.key : `input-${++this.asked}`;
    while (this.questions.has(key)) key = `input-${++this.asked}`;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        opts.signal.removeEventListener('abort', onAbort);
        this.questions.delete(key);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`the agent did not answer within ${opts.timeout} ms`));
      }, opts.timeout);
      timer.unref();
      const onAbort = () => {
        done();
        reject(opts.signal.reason instanceof Error ? opts.signal.reason : new Error('the question was withdrawn'));
      };
      opts.signal.addEventListener('abort', onAbort, { once: true });
      this.questions.set(key, {
        method,
        params,
        resolve: (a) => {
          done();
          resolve(a);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      this.scheduleFlush();
    });
  }

  /** Questions asked in the same turn (the SDK's driver dispatches a round's requests together) go out in one result. */
  private scheduleFlush(): void {
    if (this.flushing || this.current === undefined) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      this.flush();
    });
  }

  private flush(): void {
    const current = this.current;
    if (current === undefined || this.settled || this.questions.size === 0) return;
    const refusal = this.registry.park(this);
    if (refusal !== undefined) {
      for (const q of [...this.questions.values()]) q.reject(new Error(refusal));
      return;
    }
    this.round++;
    this.current = undefined;
    const inputRequests: Record<string, { method: InputMethod; params: Record<string, unknown> }> = {};
    for (const [key, q] of this.questions) inputRequests[key] = { method: q.method, params: q.params };
    // An agent that never comes back: its call is cancelled when its questions would time out anyway.
    this.parkTimer = setTimeout(() => this.abort('the agent did not come back with its input'), this.registry.parkedMs);
    this.parkTimer.unref();
    current.deliver({ kind: 'input', inputRequests, requestState: this.registry.seal(this, this.round) });
  }

  /** Whether `state` is this call's current round's, sealed for this binding. */
  accepts(round: number, binding: CallBinding): boolean {
    const mine = this.binding;
    return round === this.round && binding.principal === mine.principal && binding.tool === mine.tool && digestOf(binding.args) === mine.digest;
  }

  private settle(outcome: RoundOutcome<R>): void {
    this.settled = outcome;
    clearTimeout(this.parkTimer);
    for (const q of [...this.questions.values()]) q.reject(new Error('the call is over'));
    this.registry.unpark(this);
    if (this.current) this.deliver(outcome);
  }

  private deliver(outcome: RoundOutcome<R>): void {
    const current = this.current;
    this.current = undefined;
    current?.deliver(outcome);
  }
}

/** Calls parked between an agent's rounds, and the key their `requestState` is sealed with. */
export class ParkedCalls {
  private readonly key = randomBytes(32);
  private readonly calls = new Map<string, AgentCall<unknown, unknown>>();
  private readonly perPrincipal = new Map<string, number>();
  readonly maxPerAgent: number;
  readonly max: number;
  /** How long a parked call waits for the agent's next round. */
  readonly parkedMs: number;

  constructor(opts: { maxPerAgent?: number; max?: number; parkedMs?: number } = {}) {
    this.maxPerAgent = opts.maxPerAgent ?? DEFAULT_MAX_PARKED_PER_AGENT;
    this.max = opts.max ?? DEFAULT_MAX_PARKED;
    this.parkedMs = opts.parkedMs ?? 10 * 60_000;
  }

  get size(): number {
    return this.calls.size;
  }

  create<W, R>(binding: CallBinding): AgentCall<W, R> {
    return new AgentCall<W, R>(this, binding);
  }

  /** Parks a call (idempotent); a refusal says why when the agent or the gateway is at its limit. */
  park(call: AgentCall<unknown, unknown>): string | undefined {
    if (this.calls.has(call.id)) return undefined;
    const p = call.principal;
    const mine = this.perPrincipal.get(p) ?? 0;
    if (mine >= this.maxPerAgent) return `the agent already has ${mine} calls waiting for its input (the limit)`;
    if (this.calls.size >= this.max) return `the gateway already has ${this.calls.size} calls waiting for input (the limit)`;
    this.calls.set(call.id, call);
    this.perPrincipal.set(p, mine + 1);
    return undefined;
  }

  unpark(call: AgentCall<unknown, unknown>): void {
    if (!this.calls.delete(call.id)) return;
    const p = call.principal;
    const n = (this.perPrincipal.get(p) ?? 1) - 1;
    if (n <= 0) this.perPrincipal.delete(p);
    else this.perPrincipal.set(p, n);
  }

  private mac(id: string, round: number, binding: { principal: string; tool: string; digest: string }): Buffer {
    return createHmac('sha256', this.key).update(JSON.stringify([id, round, binding.principal, binding.tool, binding.digest])).digest();
  }

  seal(call: AgentCall<unknown, unknown>, round: number): string {
    return `${call.id}.${round}.${this.mac(call.id, round, call.binding).toString('base64url')}`;
  }

  /**
   * The parked call a `requestState` resumes, if it is intact, this agent's,
   * for this tool and these arguments, and of the call's current round.
   */
  resume<W, R>(state: string, binding: CallBinding): AgentCall<W, R> | undefined {
    const m = /^([0-9a-f-]{36})\.(\d{1,9})\.([A-Za-z0-9_-]{43})$/.exec(state);
    if (!m) return undefined;
    const [, id = '', roundText = '', macText = ''] = m;
    const call = this.calls.get(id);
    if (!call) return undefined;
    const round = Number(roundText);
    // Compared as text: base64url's last character has spare bits, and decoding would accept altered ones.
    const expected = Buffer.from(this.mac(id, round, { principal: binding.principal, tool: binding.tool, digest: digestOf(binding.args) }).toString('base64url'));
    const given = Buffer.from(macText);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    if (!call.accepts(round, binding)) return undefined;
    return call as unknown as AgentCall<W, R>;
  }

  /** A sandbox session ended: its parked calls are cancelled (nobody can come back for them). */
  closePrincipal(principal: string, reason: string): void {
    for (const c of [...this.calls.values()]) if (c.principal === principal) c.abort(reason);
  }

  /** Gateway shutdown: every parked call is cancelled. */
  closeAll(): void {
    for (const c of [...this.calls.values()]) c.abort('the gateway is shutting down');
  }
}
