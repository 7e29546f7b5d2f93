/**
 * A token bucket for what an upstream may send: up to `capacity`
 * tokens, refilled continuously at `capacity` per `perMs`. A full bucket lets
 * a short burst through whole; a sustained flood gets `capacity` per `perMs`.
 * One per call or per connector, held by the object it limits (a WeakMap
 * key), so it goes when that does.
 */
export class TokenBucket {
  readonly capacity: number;
  readonly perMs: number;
  private tokens: number;
  private atMs: number;
  private readonly now: () => number;

  constructor(capacity: number, perMs: number, now: () => number = () => performance.now()) {
    this.capacity = capacity;
    this.perMs = perMs;
    this.now = now;
    this.tokens = capacity;
    this.atMs = now();
  }

  private refill(): void {
    const t = this.now();
    // A clock going backwards refills nothing.
    this.tokens = Math.min(this.capacity, this.tokens + (Math.max(0, t - this.atMs) * this.capacity) / this.perMs);
    this.atMs = Math.max(this.atMs, t);
  }

  /** Takes one token if there is one. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is there (0: now). */
  waitMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * this.perMs) / this.capacity);
  }
}
