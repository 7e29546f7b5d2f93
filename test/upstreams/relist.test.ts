import { describe, expect, it } from 'vitest';
import { RelistScheduler } from '../../src/upstreams/relist.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RelistScheduler: list_changed re-lists at most relistsPerMinute, coalesced, the last change read', () => {
  it('a storm of 500 notifications over 1 s at 600/min (one per 100 ms) costs at most a dozen listings, and the last one starts after the last notification', async () => {
    const starts: number[] = [];
    const s = new RelistScheduler(600, async () => {
      starts.push(performance.now());
      await sleep(5);
    });
    let lastChange = 0;
    for (let i = 0; i < 500; i++) {
      s.changed();
      lastChange = performance.now();
      await sleep(2);
    }
    await sleep(250);
    s.stop();
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(starts.length).toBeLessThanOrEqual(Math.ceil((lastChange - (starts[0] ?? 0)) / 100) + 2);
    for (let i = 1; i < starts.length; i++) expect((starts[i] as number) - (starts[i - 1] as number)).toBeGreaterThanOrEqual(95); // timers may fire a millisecond early
    expect(starts.at(-1)).toBeGreaterThanOrEqual(lastChange);
  });

  it('the first notification after a quiet spell is read at once', async () => {
    const starts: number[] = [];
    const s = new RelistScheduler(1, async () => void starts.push(performance.now()));
    const t0 = performance.now();
    s.changed();
    await sleep(20);
    expect(starts).toHaveLength(1);
    expect((starts[0] as number) - t0).toBeLessThan(15);
    // A second one waits its minute; stop() cancels it.
    s.changed();
    s.stop();
    await sleep(20);
    expect(starts).toHaveLength(1);
  });
});
