/**
 * Re-reading an upstream's tool list after notifications/tools/list_changed, at
 * most `perMinute` times a minute (limits.relistsPerMinute; 1,000
 * notifications a second for 20 s cost the innocent 2.6 s of latency).
 * Notifications are coalesced: any number of them while a listing runs or
 * waits for its turn asks for one listing, and a notification always leads to
 * a listing that starts after it, so the last change is always read.
 */
export class RelistScheduler {
  private readonly intervalMs: number;
  private readonly list: () => Promise<void>;
  private lastStart = -Infinity;
  private running = false;
  private pending = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(perMinute: number, list: () => Promise<void>) {
    this.intervalMs = 60_000 / perMinute;
    this.list = list;
  }

  /** A listing was made outside the scheduler (at start): the next one waits its interval from now. */
  listed(): void {
    this.lastStart = performance.now();
  }

  /** A list_changed notification arrived. */
  changed(): void {
    if (this.stopped) return;
    this.pending = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.running || this.timer || !this.pending || this.stopped) return;
    const wait = Math.max(0, this.lastStart + this.intervalMs - performance.now());
    this.timer = setTimeout(() => void this.run(), wait);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.timer = undefined;
    if (this.stopped) return;
    this.pending = false;
    this.running = true;
    this.lastStart = performance.now();
    try {
      await this.list();
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
