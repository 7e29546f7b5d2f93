/**
 * What `/console/events` streams: approval changes (as they happen), new
 * audit records (followed from the log, as `gatehouse logs -f` does) and the
 * gateway's state when it changes. Nothing is polled while no page listens.
 */
import { endCursor, queryAudit } from '../audit/query.js';
import type { AuditRecord } from '../audit/types.js';
import type { ApprovalEvent } from '../policy/approvals.js';

export type ConsoleEvent =
  | { event: 'approval'; data: { type: ApprovalEvent['type']; id?: string } }
  | { event: 'audit'; data: AuditSummary }
  | { event: 'state'; data: unknown };

/** The fields of a record the live pages need; the full record is one audit query away. */
export type AuditSummary = Pick<AuditRecord, 'seq' | 'time' | 'event'> & Partial<Record<'agent' | 'tool' | 'decision' | 'outcome' | 'rule', unknown>>;

export interface ConsoleEventsOptions {
  auditDir: string;
  /** The live state as the Live page shows it; compared as JSON, sent when it changed. */
  state: () => Promise<unknown>;
  pollMs?: number;
  stateMs?: number;
  /** Streams open at once (each is one browser tab). */
  maxSubscribers?: number;
}

export class ConsoleEvents {
  readonly #subs = new Set<(e: ConsoleEvent) => void>();
  readonly #o: Required<ConsoleEventsOptions>;
  #timers: NodeJS.Timeout[] = [];
  #cursor: Promise<string> | undefined;
  #lastState = '';
  #busy = false;

  constructor(opts: ConsoleEventsOptions) {
    this.#o = { pollMs: 500, stateMs: 2_000, maxSubscribers: 16, ...opts };
  }

  /** Adds a listener; undefined when the stream limit is reached. Returns how to leave. */
  subscribe(fn: (e: ConsoleEvent) => void): (() => void) | undefined {
    if (this.#subs.size >= this.#o.maxSubscribers) return undefined;
    this.#subs.add(fn);
    if (this.#subs.size === 1) this.#start();
    return () => {
      this.#subs.delete(fn);
      if (this.#subs.size === 0) this.#stop();
    };
  }

  /** An approval changed (wired from the Approvals' event callback). Only its id travels: the page asks for the list. */
  approval(ev: ApprovalEvent): void {
    if (ev.type === 'state_error' || ev.type === 'state_rejected') return;
    this.#publish({ event: 'approval', data: { type: ev.type, ...('approval' in ev ? { id: ev.approval.id } : {}) } });
  }

  /** Something the state shows changed now (a catalog rebuild): checked at once, not at the next tick. */
  poke(): void {
    if (this.#subs.size > 0) void this.#checkState();
  }

  close(): void {
    this.#subs.clear();
    this.#stop();
  }

  #publish(e: ConsoleEvent): void {
    for (const fn of [...this.#subs]) {
      try {
        fn(e);
      } catch {
        // One tab's broken stream must not stop the others.
      }
    }
  }

  #start(): void {
    this.#cursor = endCursor(this.#o.auditDir).catch(() => '');
    this.#lastState = '';
    const audit = setInterval(() => void this.#follow(), this.#o.pollMs);
    const state = setInterval(() => void this.#checkState(), this.#o.stateMs);
    audit.unref();
    state.unref();
    this.#timers = [audit, state];
    void this.#checkState();
  }

  #stop(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#cursor = undefined;
  }

  async #follow(): Promise<void> {
    if (this.#busy || this.#cursor === undefined) return;
    this.#busy = true;
    try {
      let cursor = await this.#cursor;
      if (cursor === '') cursor = await endCursor(this.#o.auditDir);
      const page = await queryAudit(this.#o.auditDir, {}, { cursor, order: 'asc', limit: 1_000 });
      if (page.nextCursor !== null) this.#cursor = Promise.resolve(page.nextCursor);
      for (const r of page.records) this.#publish({ event: 'audit', data: summary(r) });
    } catch {
      // The log is unreadable for now; the Audit page says so when asked.
    } finally {
      this.#busy = false;
    }
  }

  async #checkState(): Promise<void> {
    try {
      const s = await this.#o.state();
      const text = JSON.stringify(s);
      if (text === this.#lastState) return;
      this.#lastState = text;
      this.#publish({ event: 'state', data: s });
    } catch {
      // The next tick tries again.
    }
  }
}

function summary(r: AuditRecord): AuditSummary {
  const out: AuditSummary = { seq: r.seq, time: r.time, event: r.event };
  for (const k of ['agent', 'tool', 'decision', 'outcome', 'rule'] as const) if (r[k] !== undefined) out[k] = r[k];
  return out;
}
