/**
 * Name lookups go through getaddrinfo on libuv's small shared thread pool
 * (4 threads by default), the one the audit writer's file operations use too.
 * A lookup that never answers holds its thread however long the proxy waits
 * (review F7): an agent asking for names that hang could starve the audit and
 * so every call. At most `size` lookups run at once; the rest wait their turn
 * (within the resolve timeout), so some threads always stay for the files.
 */
export class LookupSlots {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(size = 2) {
    this.#free = size;
  }

  /** Resolves with a release function once a slot is free; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    const release = (): void => {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
    const once = (): (() => void) => {
      let done = false;
      return () => {
        if (!done) {
          done = true;
          release();
        }
      };
    };
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(once());
    }
    return new Promise((resolve, reject) => {
      const go = (): void => {
        signal?.removeEventListener('abort', abort);
        resolve(once());
      };
      const abort = (): void => {
        const i = this.#waiting.indexOf(go);
        if (i !== -1) this.#waiting.splice(i, 1);
        reject(Object.assign(new Error('name lookups are busy'), { code: 'ETIMEOUT' }));
      };
      this.#waiting.push(go);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }
}
