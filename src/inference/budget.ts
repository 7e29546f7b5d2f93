/**
 * Budgets per agent and provider: model calls and tokens per period, in fixed
 * windows. A call is refused up front once a window is spent (429 with
 * retry-after = the window's end); tokens are counted from the provider's
 * reported usage once the call ends, so the call that crosses the limit
 * finishes and the next one is refused. Counters survive a restart
 * (`<state>/inference/budgets.json`, written durably at most once a second).
 */
import { join } from 'node:path';
import picomatch from 'picomatch';
import { ensurePrivateDir, readPrivateFile, writeFileDurably } from '../policy/durable-file.js';
import type { InferenceProvider } from '../registry/schema.js';
import type { Logger } from '../log.js';

export interface Rate {
  capacity: number;
  perMs: number;
}

interface Window {
  start: number;
  used: number;
}

interface Entry {
  requests?: Window;
  tokens?: Window;
}

export interface Budget {
  requests?: Rate | undefined;
  tokens?: Rate | undefined;
}

export type BudgetVerdict = { ok: true } | { ok: false; kind: 'requests' | 'tokens'; limit: Rate; used: number; retryAfterMs: number };

const FILE = 'budgets.json';
const MAX_ENTRIES = 100_000;

/** The budget that applies to `agent`: the first `budgets` glob that names it, else `budget`. */
export function budgetFor(p: Pick<InferenceProvider, 'budget' | 'budgets'>, agent: string): Budget {
  for (const [glob, b] of Object.entries(p.budgets)) if (picomatch.isMatch(agent, glob, { dot: true })) return b;
  return p.budget;
}

export class Budgets {
  readonly #entries = new Map<string, Entry>();
  readonly #dir: string | undefined;
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(opts: { stateDir?: string; logger?: Logger } = {}) {
    this.#dir = opts.stateDir === undefined ? undefined : join(opts.stateDir, 'inference');
    this.logger = opts.logger;
    if (this.#dir) this.#load(this.#dir);
  }
  private readonly logger: Logger | undefined;

  static key(provider: string, agent: string): string {
    return `${provider}\u0000${agent}`;
  }

  #load(dir: string): void {
    try {
      const text = readPrivateFile(join(dir, FILE));
      if (text === undefined) return;
      const data = JSON.parse(text) as Record<string, Entry>;
      for (const [k, e] of Object.entries(data)) {
        if (typeof k !== 'string' || !k.includes('\u0000')) continue;
        const ok = (w: unknown): w is Window => typeof w === 'object' && w !== null && Number.isFinite((w as Window).start) && Number.isFinite((w as Window).used) && (w as Window).used >= 0;
        const entry: Entry = {};
        if (ok(e.requests)) entry.requests = { start: e.requests.start, used: e.requests.used };
        if (ok(e.tokens)) entry.tokens = { start: e.tokens.start, used: e.tokens.used };
        this.#entries.set(k, entry);
      }
    } catch (err) {
      // Fail closed would lock every agent out on a corrupt file; the counters restart and the admin is told.
      this.logger?.error({ err: String(err), file: join(dir, FILE) }, 'budget counters unreadable: they restart from zero');
    }
  }

  #window(w: Window | undefined, rate: Rate, now: number): Window {
    return w === undefined || now >= w.start + rate.perMs || now < w.start ? { start: now, used: 0 } : w;
  }

  /**
   * Refuses when a window is spent; else counts one request and holds
   * `reserve` tokens for the call until `settle` (so that calls running at
   * once cannot all pass a nearly spent budget; one call alone always can).
   */
  admit(key: string, budget: Budget, now = Date.now(), reserve = 0): BudgetVerdict {
    const e = this.#entries.get(key) ?? {};
    const tokens = budget.tokens ? this.#window(e.tokens, budget.tokens, now) : undefined;
    if (budget.tokens && tokens && tokens.used >= budget.tokens.capacity) {
      return { ok: false, kind: 'tokens', limit: budget.tokens, used: tokens.used, retryAfterMs: tokens.start + budget.tokens.perMs - now };
    }
    const requests = budget.requests ? this.#window(e.requests, budget.requests, now) : undefined;
    if (budget.requests && requests && requests.used >= budget.requests.capacity) {
      return { ok: false, kind: 'requests', limit: budget.requests, used: requests.used, retryAfterMs: requests.start + budget.requests.perMs - now };
    }
    if (!budget.requests && !budget.tokens) return { ok: true };
    if (requests) requests.used += 1;
    if (tokens) tokens.used += reserve;
    this.#set(key, { ...(requests ? { requests } : {}), ...(tokens ? { tokens } : {}) });
    return { ok: true };
  }

  /** A call ended: its reservation is replaced by what it used. */
  settle(key: string, budget: Budget, reserved: number, tokens: number, now = Date.now()): void {
    if (!budget.tokens) return;
    const e = this.#entries.get(key) ?? {};
    const w = this.#window(e.tokens, budget.tokens, now);
    // A window that started after the reservation does not hold it any more.
    const held = w === e.tokens ? reserved : 0;
    w.used = Math.max(0, w.used - held + tokens);
    this.#set(key, { ...e, tokens: w });
  }

  /** Adds the tokens a finished call used (no reservation). */
  spend(key: string, budget: Budget, tokens: number, now = Date.now()): void {
    this.settle(key, budget, 0, tokens, now);
  }

  /** Every budget with a window still running: what is spent of it (metrics). `budgetOf` gives each key's budget, if it still has one. */
  usage(budgetOf: (provider: string, agent: string) => Budget | undefined, now = Date.now()): Array<{ provider: string; agent: string; kind: 'requests' | 'tokens'; used: number; capacity: number }> {
    const out: Array<{ provider: string; agent: string; kind: 'requests' | 'tokens'; used: number; capacity: number }> = [];
    for (const [key, e] of this.#entries) {
      const [provider = '', agent = ''] = key.split('\u0000');
      const budget = budgetOf(provider, agent);
      if (budget === undefined) continue;
      for (const kind of ['requests', 'tokens'] as const) {
        const rate = budget[kind];
        const w = e[kind];
        if (rate === undefined || w === undefined) continue;
        const running = now >= w.start && now < w.start + rate.perMs;
        out.push({ provider, agent, kind, used: running ? w.used : 0, capacity: rate.capacity });
      }
    }
    return out;
  }

  /** What is spent in the current windows (for status and tests). */
  used(key: string): { requests: number; tokens: number } {
    const e = this.#entries.get(key);
    return { requests: e?.requests?.used ?? 0, tokens: e?.tokens?.used ?? 0 };
  }

  #set(key: string, e: Entry): void {
    this.#entries.delete(key);
    this.#entries.set(key, e);
    if (this.#entries.size > MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#dirty = true;
    if (this.#dir && !this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.flush();
      }, 1000);
      this.#timer.unref();
    }
  }

  /** Writes the counters now (also on close). */
  flush(): Promise<void> {
    const dir = this.#dir;
    if (!dir || !this.#dirty) return this.#writing;
    this.#dirty = false;
    const data = JSON.stringify(Object.fromEntries(this.#entries));
    this.#writing = this.#writing
      .then(async () => {
        ensurePrivateDir(dir);
        await writeFileDurably(dir, FILE, data);
      })
      .catch((err: unknown) => this.logger?.error({ err: String(err) }, 'cannot save the budget counters'));
    return this.#writing;
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
