/**
 * Refusals are cheap to cause and each one is a durable audit record: one
 * caller looping over refused hosts could fill the audit disk, and a full
 * disk refuses every agent's calls (review F4). Per caller, the first
 * `perWindow` refusals of each window are recorded in full; the rest are
 * counted and written as one `egress` record with `outcome: "suppressed"`,
 * the count and a sample of hosts, when the window ends. Nothing is lost from
 * the record of what happened, only its repetitions are folded.
 */
import { appendOrQueue } from '../audit/append-or-queue.js';
import type { AuditEvent, AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';

interface Window {
  started: number;
  recorded: number;
  suppressed: number;
  hosts: Set<string>;
  /** The caller's identifying fields (agent or connector, sandbox). */
  who: AuditEvent;
}

const SAMPLE_HOSTS = 10;

export class RefusalLog {
  readonly #windows = new Map<string, Window>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly audit: AuditSink,
    private readonly logger: Logger,
    private readonly opts: { windowMs: number; perWindow: number; now: () => number } = { windowMs: 1_000, perWindow: 20, now: Date.now },
  ) {}

  /** Writes `record` (a refusal of `caller`), or counts it when the caller is over its share of this window. */
  async refuse(caller: string, record: AuditEvent): Promise<void> {
    const now = this.opts.now();
    let w = this.#windows.get(caller);
    if (w !== undefined && now - w.started >= this.opts.windowMs) {
      this.#flush(caller, w);
      w = undefined;
    }
    if (w === undefined) {
      const who: AuditEvent = { event: 'egress' };
      for (const k of ['agent', 'connector', 'sandbox']) if (record[k] !== undefined) who[k] = record[k];
      w = { started: now, recorded: 0, suppressed: 0, hosts: new Set(), who };
      this.#windows.set(caller, w);
    }
    if (w.recorded < this.opts.perWindow) {
      w.recorded++;
      await appendOrQueue(this.audit, record, this.logger);
      return;
    }
    w.suppressed++;
    if (w.hosts.size < SAMPLE_HOSTS && typeof record.host === 'string') w.hosts.add(record.host);
    this.#arm();
  }

  #flush(caller: string, w: Window): void {
    this.#windows.delete(caller);
    if (w.suppressed === 0) return;
    void appendOrQueue(
      this.audit,
      { ...w.who, outcome: 'suppressed', count: w.suppressed, windowMs: this.opts.windowMs, hosts: [...w.hosts], reason: `more than ${this.opts.perWindow} refusals in ${this.opts.windowMs} ms; each repetition folded into this count` },
      this.logger,
    );
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flushAll(false);
      if ([...this.#windows.values()].some((w) => w.suppressed > 0)) this.#arm();
    }, this.opts.windowMs);
    this.#timer.unref();
  }

  /** Writes every window that has ended (all of them with `all`, at shutdown). */
  flushAll(all = true): void {
    const now = this.opts.now();
    for (const [caller, w] of [...this.#windows]) if (all || now - w.started >= this.opts.windowMs) this.#flush(caller, w);
    if (all) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}
