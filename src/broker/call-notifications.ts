/**
 * What an upstream may send an agent during one call: progress
 * and log messages, each at most `perSecond` (a token bucket holding one
 * second's worth, so a short burst passes whole). Over it, progress is
 * coalesced: the latest value is kept and sent when a token frees up, and
 * the last one always before the result. Log messages over it are dropped
 * and counted, and the agent is told how many once, before the result.
 * Nothing is queued but that one progress value: an agent that does not
 * read its stream holds at most `perSecond` of each per second of the call.
 */
import { LoggingLevelSchema, type LoggingLevel, type LoggingMessageNotification, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { TokenBucket } from './token-bucket.js';

type LogParams = LoggingMessageNotification['params'];

export interface CallNotificationsOptions {
  /** Sends one progress notification on the call's stream (redacted there: only what is sent costs a redaction). */
  sendProgress: (p: Progress) => Promise<void>;
  /** Sends one log message on the call's stream. */
  sendLog: (params: LogParams) => Promise<void>;
  /** The connector's limits.notificationsPerSecond. */
  perSecond: number;
  now?: () => number;
}

const LEVELS = LoggingLevelSchema.options;

export class CallNotifications {
  private readonly opts: CallNotificationsOptions;
  private readonly progressBucket: TokenBucket;
  private readonly logBucket: TokenBucket;
  /** The newest progress not yet sent; a timer sends it when a token frees up. */
  private pending: Progress | undefined;
  private timer: NodeJS.Timeout | undefined;
  private coalesced = 0;
  private dropped = 0;
  /** The highest level among the dropped messages: the notice about them goes out at least at it. */
  private droppedLevel: LoggingLevel = 'warning';
  private finished = false;
  /** Sends not yet settled, and who waits for them to be. */
  private outstanding = 0;
  private settled: (() => void) | undefined;

  constructor(opts: CallNotificationsOptions) {
    this.opts = opts;
    this.progressBucket = new TokenBucket(opts.perSecond, 1000, opts.now);
    this.logBucket = new TokenBucket(opts.perSecond, 1000, opts.now);
  }

  progress(params: Progress): void {
    if (this.finished) return;
    if (this.pending !== undefined) {
      this.coalesced++;
      this.pending = params;
      return;
    }
    if (this.progressBucket.take()) return this.send(this.opts.sendProgress, params);
    this.pending = params;
    this.timer = setTimeout(() => this.sendPending(), this.progressBucket.waitMs());
  }

  /** `prepare` (redaction, bounds) runs only for a message that is sent. */
  log(params: LogParams, prepare: (p: LogParams) => LogParams = (p) => p): void {
    if (this.finished) return;
    if (this.logBucket.take()) return this.send(this.opts.sendLog, prepare(params));
    this.dropped++;
    if (LEVELS.indexOf(params.level) > LEVELS.indexOf(this.droppedLevel)) this.droppedLevel = params.level;
  }

  /** For the call's audit record: only what happened (a quiet call's record is unchanged). */
  stats(): Record<string, number> {
    return { ...(this.coalesced > 0 ? { progressCoalesced: this.coalesced } : {}), ...(this.dropped > 0 ? { logsDropped: this.dropped } : {}) };
  }

  /**
   * The call is over: sends the pending progress and the notice of dropped
   * messages, and resolves once every send settled (the result must come after
   * them: the client drops progress that arrives after the response).
   */
  async finish(): Promise<void> {
    if (!this.finished) {
      this.finished = true;
      clearTimeout(this.timer);
      const last = this.pending;
      this.pending = undefined;
      if (last !== undefined) this.send(this.opts.sendProgress, last);
      if (this.dropped > 0) {
        const data = `Gatehouse dropped ${this.dropped} log message${this.dropped === 1 ? '' : 's'} from the upstream during this call (over its limit of ${this.opts.perSecond} per second).`;
        this.send(this.opts.sendLog, { level: this.droppedLevel, logger: 'gatehouse', data });
      }
    }
    if (this.outstanding > 0) await new Promise<void>((r) => (this.settled = r));
  }

  private sendPending(): void {
    this.timer = undefined;
    const p = this.pending;
    if (p === undefined || this.finished) return;
    if (!this.progressBucket.take()) {
      this.timer = setTimeout(() => this.sendPending(), this.progressBucket.waitMs());
      return;
    }
    this.pending = undefined;
    this.send(this.opts.sendProgress, p);
  }

  private send<T>(how: (v: T) => Promise<void>, v: T): void {
    this.outstanding++;
    let sent: Promise<void>;
    try {
      sent = how(v);
    } catch (e) {
      sent = Promise.reject(e);
    }
    // A failed send (the agent went away) is not the call's failure.
    void sent
      .catch(() => undefined)
      .finally(() => {
        if (--this.outstanding === 0) this.settled?.();
      });
  }
}
