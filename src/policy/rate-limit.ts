/**
 * Token buckets for `limit: N/period`, one per (rule, agent). A bucket holds
 * up to `capacity` tokens and refills continuously at capacity/perMs; a call
 * takes one token. Memory is bounded: buckets that have refilled completely
 * carry no state and are dropped first; past `maxKeys` the least recently
 * used buckets are dropped (such a key starts again from a full bucket).
 */
import type { RateLimit } from './types.js';

interface Bucket {
  tokens: number;
  atMs: number;
  capacity: number;
  perMs: number;
}

/** The bucket key for a rule and an agent; unambiguous whatever the names hold. */
export function rateKey(ruleId: string, agent: string): string {
  return `${ruleId.length}:${ruleId}${agent}`;
}

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #maxKeys: number;

  constructor(opts: { maxKeys?: number } = {}) {
    this.#maxKeys = opts.maxKeys ?? 100_000;
  }

  get size(): number {
    return this.#buckets.size;
  }

  take(key: string, limit: RateLimit, nowMs: number): { ok: true } | { ok: false; retryAfterMs: number } {
    const rate = limit.capacity / limit.perMs; // tokens per ms
    let b = this.#buckets.get(key);
    if (b === undefined) {
      this.#makeRoom(nowMs);
      b = { tokens: limit.capacity, atMs: nowMs, capacity: limit.capacity, perMs: limit.perMs };
    } else {
      this.#buckets.delete(key); // re-inserted below: Map order is least recently used first
      const elapsed = Math.max(0, nowMs - b.atMs); // a clock going backwards refills nothing
      b.tokens = Math.min(limit.capacity, b.tokens + elapsed * rate);
      b.atMs = Math.max(b.atMs, nowMs);
      // A reloaded policy may change the limit: keep what was spent, within the new capacity.
      b.capacity = limit.capacity;
      b.perMs = limit.perMs;
    }
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.max(1, Math.ceil((1 - b.tokens) / rate)) };
  }

  /** Forgets every bucket (e.g. for tests). */
  clear(): void {
    this.#buckets.clear();
  }

  #makeRoom(nowMs: number): void {
    if (this.#buckets.size < this.#maxKeys) return;
    for (const [k, b] of this.#buckets) {
      const full = b.tokens + Math.max(0, nowMs - b.atMs) * (b.capacity / b.perMs) >= b.capacity;
      if (full) this.#buckets.delete(k);
    }
    // Make room for a batch, so the sweep above runs once per many new keys, not per key.
    const target = Math.min(this.#maxKeys - 1, Math.floor(this.#maxKeys * 0.99));
    while (this.#buckets.size > target) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done === true) break;
      this.#buckets.delete(oldest.value);
    }
  }
}
