import { describe, expect, it } from 'vitest';
import { RateLimiter, rateKey } from '../../src/policy/rate-limit.js';

const perHour = { capacity: 3, perMs: 3_600_000 };

describe('RateLimiter (token bucket per rule and agent)', () => {
  it('allows up to capacity at once, then refuses with when to retry', () => {
    const rl = new RateLimiter();
    const k = rateKey('r', 'a');
    expect(rl.take(k, perHour, 0)).toEqual({ ok: true });
    expect(rl.take(k, perHour, 0)).toEqual({ ok: true });
    expect(rl.take(k, perHour, 0)).toEqual({ ok: true });
    // One token refills every 20 minutes.
    expect(rl.take(k, perHour, 0)).toEqual({ ok: false, retryAfterMs: 1_200_000 });
  });
  it('refills continuously: after retryAfterMs one more call passes', () => {
    const rl = new RateLimiter();
    const k = rateKey('r', 'a');
    for (let i = 0; i < 3; i++) rl.take(k, perHour, 0);
    const r = rl.take(k, perHour, 600_000);
    expect(r).toEqual({ ok: false, retryAfterMs: 600_000 });
    expect(rl.take(k, perHour, 1_200_000)).toEqual({ ok: true });
    expect(rl.take(k, perHour, 1_200_000).ok).toBe(false);
  });
  it('never refills above capacity after a long pause', () => {
    const rl = new RateLimiter();
    const k = rateKey('r', 'a');
    rl.take(k, perHour, 0);
    let passed = 0;
    for (let i = 0; i < 10; i++) if (rl.take(k, perHour, 100 * 3_600_000).ok) passed++;
    expect(passed).toBe(3);
  });
  it('keeps agents apart: one agent using up its bucket does not limit another', () => {
    const rl = new RateLimiter();
    for (let i = 0; i < 3; i++) rl.take(rateKey('r', 'a'), perHour, 0);
    expect(rl.take(rateKey('r', 'a'), perHour, 0).ok).toBe(false);
    expect(rl.take(rateKey('r', 'b'), perHour, 0).ok).toBe(true);
    expect(rl.take(rateKey('other-rule', 'a'), perHour, 0).ok).toBe(true);
  });
  it('bucket keys cannot collide through crafted names', () => {
    expect(rateKey('a', 'bc')).not.toBe(rateKey('ab', 'c'));
  });
  it('a clock going backwards refills nothing', () => {
    const rl = new RateLimiter();
    const k = rateKey('r', 'a');
    for (let i = 0; i < 3; i++) rl.take(k, perHour, 1_000_000);
    expect(rl.take(k, perHour, 0).ok).toBe(false);
  });
  it('a reloaded, smaller limit applies to a bucket at once', () => {
    const rl = new RateLimiter();
    const k = rateKey('r', 'a');
    rl.take(k, { capacity: 100, perMs: 1000 }, 0);
    expect(rl.take(k, { capacity: 1, perMs: 60_000 }, 0).ok).toBe(true);
    expect(rl.take(k, { capacity: 1, perMs: 60_000 }, 0).ok).toBe(false);
  });
  it('memory stays bounded: past maxKeys old buckets are dropped', () => {
    const rl = new RateLimiter({ maxKeys: 100 });
    for (let i = 0; i < 1_000; i++) rl.take(rateKey('r', `agent-${i}`), perHour, i);
    expect(rl.size).toBeLessThanOrEqual(100);
  });
  it('drops refilled buckets before busy ones when full', () => {
    const rl = new RateLimiter({ maxKeys: 3 });
    const lim = { capacity: 1, perMs: 1_000 };
    rl.take('busy', lim, 0); // empty until t=1000
    rl.take('idle', lim, -10_000); // refilled long ago
    rl.take('third', lim, 0);
    rl.take('new', lim, 10); // must drop "idle", not "busy"
    expect(rl.take('busy', lim, 10).ok).toBe(false);
  });
});
