/**
 * One call's progress and log messages to the agent (src/broker/call-notifications.ts,
 * issue #24 "progress/log flood to an agent that doesn't read its stream"): at most
 * the connector's rate each, progress coalesced to its latest value, logs over the
 * rate dropped and counted, nothing queued without limit.
 */
import type { LoggingMessageNotification, Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CallNotifications } from '../../src/broker/call-notifications.js';
import { TokenBucket } from '../../src/broker/token-bucket.js';

type Log = LoggingMessageNotification['params'];

let clock = 0;
beforeEach(() => {
  clock = 0;
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function advance(ms: number): void {
  clock += ms;
  vi.advanceTimersByTime(ms);
}

function harness(perSecond: number) {
  const progress: Progress[] = [];
  const logs: Log[] = [];
  const notes = new CallNotifications({
    perSecond,
    now: () => clock,
    sendProgress: async (p) => void progress.push(p),
    sendLog: async (l) => void logs.push(l),
  });
  return { notes, progress, logs };
}

describe('CallNotifications', () => {
  it('progress flood of 200,000 in one second: at most the rate is sent, the latest value is kept and sent last, the rest counted', async () => {
    const { notes, progress } = harness(50);
    for (let i = 1; i <= 200_000; i++) notes.progress({ progress: i, total: 200_000 });
    // The burst: one second's worth at once; the rest waits as one value.
    expect(progress).toHaveLength(50);
    await notes.finish();
    expect(progress).toHaveLength(51);
    expect(progress.at(-1)).toEqual({ progress: 200_000, total: 200_000 });
    expect(notes.stats()).toEqual({ progressCoalesced: 200_000 - 51 });
  });

  it('progress over the rate is sent when a token frees up, newest first, without waiting for the call to end', async () => {
    const { notes, progress } = harness(10);
    for (let i = 1; i <= 10; i++) notes.progress({ progress: i });
    notes.progress({ progress: 11 });
    notes.progress({ progress: 12 });
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    advance(100); // one token per 100 ms at 10/s
    await Promise.resolve();
    expect(progress.map((p) => p.progress).slice(10)).toEqual([12]);
    expect(notes.stats()).toEqual({ progressCoalesced: 1 });
    await notes.finish();
    expect(progress).toHaveLength(11);
  });

  it('a well-behaved call (under the rate) is forwarded whole and its record gets no counters', async () => {
    const { notes, progress, logs } = harness(50);
    for (let i = 1; i <= 4; i++) {
      notes.progress({ progress: i, total: 4 });
      notes.log({ level: 'info', data: `step ${i}` });
      advance(100);
    }
    await notes.finish();
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3, 4]);
    expect(logs.map((l) => l.data)).toEqual(['step 1', 'step 2', 'step 3', 'step 4']);
    expect(notes.stats()).toEqual({});
  });

  it('log flood: over the rate dropped and counted; one notice at the end, at the highest dropped level', async () => {
    const { notes, logs } = harness(50);
    for (let i = 0; i < 10_000; i++) notes.log({ level: i === 9_999 ? 'error' : 'debug', data: `line ${i}` });
    expect(logs).toHaveLength(50);
    advance(1000);
    for (let i = 0; i < 100; i++) notes.log({ level: 'info', data: `later ${i}` });
    expect(logs).toHaveLength(100);
    await notes.finish();
    const dropped = 10_000 - 50 + 100 - 50;
    expect(notes.stats()).toEqual({ logsDropped: dropped });
    expect(logs).toHaveLength(101);
    expect(logs.at(-1)).toEqual({
      level: 'error',
      logger: 'gatehouse',
      data: `Gatehouse dropped ${dropped} log messages from the upstream during this call (over its limit of 50 per second).`,
    });
  });

  it('nothing is sent once the call finished (a late message on a finished call reaches no one)', async () => {
    const { notes, progress, logs } = harness(50);
    await notes.finish();
    notes.progress({ progress: 1 });
    notes.log({ level: 'info', data: 'late' });
    advance(5_000);
    expect(progress).toEqual([]);
    expect(logs).toEqual([]);
  });

  it('finish waits for every send to settle, and a failing send (the agent went away) does not fail the call', async () => {
    const order: string[] = [];
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const notes = new CallNotifications({
      perSecond: 5,
      now: () => clock,
      sendProgress: async (p) => {
        await slow;
        order.push(`progress ${p.progress}`);
      },
      sendLog: async () => {
        throw new Error('stream closed');
      },
    });
    notes.progress({ progress: 1 });
    notes.log({ level: 'info', data: 'x' });
    const done = notes.finish().then(() => order.push('finished'));
    await Promise.resolve();
    expect(order).toEqual([]);
    release();
    await done;
    expect(order).toEqual(['progress 1', 'finished']);
  });
});

describe('TokenBucket', () => {
  it('holds capacity, refills continuously, says how long until the next token', () => {
    let t = 0;
    const b = new TokenBucket(3, 60_000, () => t);
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([true, true, true, false]);
    expect(b.waitMs()).toBe(20_000);
    t += 20_000;
    expect(b.take()).toBe(true);
    expect(b.take()).toBe(false);
    // A clock going backwards refills nothing.
    t -= 50_000;
    expect(b.take()).toBe(false);
    t += 10_000_000;
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([true, true, true, false]);
  });
});
