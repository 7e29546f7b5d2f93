/**
 * The events waiting for one event stream's writer. A stream that does not
 * keep up (a stalled or throttled tab, a slow link) must not grow the
 * gateway's memory without bound: past `max` waiting events the queue drops
 * them all and the writer sends one `resync` instead, after which the page
 * reloads what it shows.
 */
export const MAX_QUEUED_EVENTS = 500;

export class StreamQueue<T> {
  #items: T[] = [];
  #overflowed = false;
  #wake: (() => void) | undefined;

  constructor(readonly max = MAX_QUEUED_EVENTS) {}

  get size(): number {
    return this.#items.length;
  }

  push(e: T): void {
    // Once over, later events are covered by the resync too (the page reloads after it).
    if (this.#overflowed) return;
    if (this.#items.length >= this.max) {
      this.#items = [];
      this.#overflowed = true;
    } else {
      this.#items.push(e);
    }
    this.wake();
  }

  /** Everything to write now, in order; `resync` when events were dropped. */
  take(): { resync: boolean; events: T[] } {
    const out = { resync: this.#overflowed, events: this.#items };
    this.#items = [];
    this.#overflowed = false;
    return out;
  }

  /** Resolves when an event arrives, `wake()` is called, or after `ms`. */
  wait(ms: number): Promise<void> {
    if (this.#items.length > 0 || this.#overflowed) return Promise.resolve();
    return new Promise<void>((r) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        if (self.#wake === done) self.#wake = undefined;
        r();
      }
      this.#wake = done;
    });
  }

  wake(): void {
    this.#wake?.();
  }
}
