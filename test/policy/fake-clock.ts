import type { Clock } from '../../src/policy/approvals.js';

/** A manual clock: time moves only when the test says so. */
export class FakeClock implements Clock {
  t = 1_700_000_000_000;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#timers.delete(h as number);
  }
  advance(ms: number): void {
    this.t += ms;
    for (const [id, tm] of [...this.#timers].sort((a, b) => a[1].at - b[1].at)) {
      if (tm.at <= this.t && this.#timers.has(id)) {
        this.#timers.delete(id);
        tm.fn();
      }
    }
  }
  get pendingTimers(): number {
    return this.#timers.size;
  }
}
