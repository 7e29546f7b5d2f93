import { errorMessage } from '../errors.js';
import { boundedEvent } from './bound.js';
import type { AuditEvent } from './types.js';

/**
 * Records of executed calls kept while the log cannot be written (each within
 * MAX_RECORD_BYTES as JSON, so at most about 64 MiB). Past this, a record is
 * only counted, and the count is written with the `audit.recovered` record.
 */
export const MAX_LATE_RECORDS = 1000;
/** Call ids named with the count of records not kept. */
const MAX_LOST_CALLS = 100;

/**
 * The writer's queue of records of things already done that came while the
 * log could not be written. The AuditLog owns it: it fills it on a failed
 * append and drains it after it recovers.
 */
export class LateQueue {
  #records: Record<string, unknown>[] = [];
  /** Records beyond MAX_LATE_RECORDS: counted (with their call ids, up to 100), not kept. */
  #lost = { records: 0, calls: [] as string[] };

  get size(): number {
    return this.#records.length;
  }

  get lost(): { readonly records: number; readonly calls: readonly string[] } {
    return this.#lost;
  }

  /**
   * Keeps `e`, marked with why it is late and whether the agent had the answer
   * anyway (`delivered`: a lazy record's call was over; otherwise it was refused
   * its result); counts it when the queue is full.
   */
  keep(e: AuditEvent, why: unknown, delivered = false): void {
    if (this.#records.length < MAX_LATE_RECORDS) this.#records.push({ ...boundedEvent(e), delivered, late: { reason: errorMessage(why) } });
    else {
      this.#lost.records++;
      if (typeof e.call === 'string' && this.#lost.calls.length < MAX_LOST_CALLS) this.#lost.calls.push(e.call);
    }
  }

  /** The count is in a durable record now: later losses start a new count. */
  resetLost(): void {
    this.#lost = { records: 0, calls: [] };
  }

  /** Takes up to `n` kept records, oldest first. */
  take(n: number): Record<string, unknown>[] {
    return this.#records.splice(0, n);
  }

  /** Puts back a record the log refused again (kept for the next recovery). */
  putBack(rec: Record<string, unknown>): void {
    this.#records.push(rec);
  }
}
