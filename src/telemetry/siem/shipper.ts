/**
 * Ships the audit log to one sink, at least once: read a batch after the
 * cursor, send it, and only once the sink acknowledged it move the cursor
 * (saved durably). A crash between the two re-sends that one batch after a
 * restart; nothing before it, and nothing is skipped.
 *
 * The shipper reads the files behind the writer and is never in a call's
 * path: a sink that is down or slow only makes the backlog grow. Failed
 * sends are retried with exponential back-off and jitter (a receiver's
 * Retry-After is honoured, up to the maximum); a batch the receiver
 * refuses as such is split until the record it refuses is found, which is
 * then sent cut down (marked as truncated). Records are never dropped: a
 * record the receiver keeps refusing stops the sink, loudly (status, log).
 */
import { setImmediate as yieldNow } from 'node:timers/promises';
import { listAuditFiles } from '../../audit/files.js';
import { scanTail } from '../../audit/tail.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { SinkConfig } from './config.js';
import { readCursor, writeCursor } from './cursor.js';
import { encodeRecord, fit, type Encoded, type Format } from './encode.js';
import { AuditReader, type Position } from './reader.js';
import { SinkError, type Sink } from './sinks/sink.js';

export interface ShipperOptions {
  config: SinkConfig;
  sink: Sink;
  /** `<state>/audit` */
  auditDir: string;
  stateDir: string;
  productVersion: string;
  logger: Logger;
  /** Seq of the last record written (the gateway's writer); else read from the log's tail. */
  head?: () => number;
  random?: () => number;
}

export type ShipperState = 'starting' | 'shipping' | 'idle' | 'retrying' | 'stopped';

export interface ShipperStats {
  sink: string;
  kind: SinkConfig['kind'];
  format: Format;
  state: ShipperState;
  /** Records written to the audit log and not yet acknowledged by the sink. */
  backlog: number;
  /** The last record the sink acknowledged (its cursor); null before the first. */
  lastShippedSeq: number | null;
  lastShippedAt: string | null;
  /** Records acknowledged since the gateway started. */
  shipped: number;
  /** Records sent cut down because the sink refused them whole. */
  truncated: number;
  /** The last failure, until a batch goes through. */
  lastError: string | null;
  lastErrorAt: string | null;
  /** Failed sends in a row (0 when the last one went through). */
  failures: number;
}

/** Exponential back-off with jitter: attempt n waits between half and all of min(max, initial × 2^(n-1)). */
export function backoffMs(attempt: number, initial: number, max: number, random: () => number = Math.random): number {
  const cap = Math.min(max, initial * 2 ** Math.min(Math.max(attempt - 1, 0), 40));
  return Math.floor(cap / 2 + random() * (cap / 2));
}

/** Where the log ends now: the position after its last complete record (undefined for an empty log). */
export function endPosition(auditDir: string): Position | undefined {
  const files = listAuditFiles(auditDir).filter((f) => f.firstSeq !== undefined);
  for (let i = files.length - 1; i >= 0; i--) {
    const f = files[i];
    if (f === undefined) continue;
    const tail = scanTail(f.path);
    if (tail.last !== undefined) return { seq: tail.last.seq, hash: tail.last.hash, file: f.firstSeq as number, offset: tail.validEnd };
  }
  return undefined;
}

class Stopped extends Error {}

export class Shipper {
  readonly #o: ShipperOptions;
  readonly #reader: AuditReader;
  readonly #abort = new AbortController();
  #pos: Position | undefined;
  #stopAt: number | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #headCache = 0;
  /** The notices last logged: a read that finds the same ones again (each names its file and byte) does not log them again. */
  #lastNotices = '';
  #stats: ShipperStats;

  constructor(o: ShipperOptions) {
    this.#o = o;
    this.#reader = new AuditReader(o.auditDir);
    this.#stats = {
      sink: o.config.name,
      kind: o.config.kind,
      format: o.config.format,
      state: 'starting',
      backlog: 0,
      lastShippedSeq: null,
      lastShippedAt: null,
      shipped: 0,
      truncated: 0,
      lastError: null,
      lastErrorAt: null,
      failures: 0,
    };
  }

  get name(): string {
    return this.#o.config.name;
  }

  start(): void {
    this.#loop ??= this.#run().catch((e: unknown) => {
      if (!(e instanceof Stopped)) this.#o.logger.error({ sink: this.name, err: errorMessage(e) }, 'siem: shipper stopped on an unexpected error');
    }).finally(() => {
      this.#stats.state = 'stopped';
    });
  }

  stats(): ShipperStats {
    const head = this.#o.head?.() ?? this.#headCache;
    const shipped = this.#pos?.seq ?? 0;
    return { ...this.#stats, backlog: Math.max(0, head - shipped) };
  }

  /** Stops: ships what is waiting for up to `graceMs`, then abandons the batch in flight (it is sent again next time). */
  async stop(graceMs = 1_000): Promise<void> {
    this.#stopAt ??= Date.now() + graceMs;
    const timer = setTimeout(() => this.#abort.abort(), graceMs);
    this.#wake?.();
    try {
      await this.#loop;
    } finally {
      clearTimeout(timer);
      this.#abort.abort();
      await this.#reader.close();
      await this.#o.sink.close().catch(() => undefined);
    }
  }

  #stopping(): boolean {
    return this.#stopAt !== undefined && (this.#abort.signal.aborted || Date.now() >= this.#stopAt);
  }

  #error(message: string): void {
    this.#stats.lastError = message;
    this.#stats.lastErrorAt = new Date().toISOString();
  }

  async #run(): Promise<void> {
    const { config: c, logger } = this.#o;
    const saved = readCursor(this.#o.stateDir, c.name);
    if (saved.problem !== undefined) {
      logger.error({ sink: c.name, problem: saved.problem }, 'siem: the cursor cannot be used; shipping from the start of the log (records may arrive twice)');
      this.#error(`cursor: ${saved.problem}`);
    }
    this.#pos = saved.pos;
    if (this.#pos === undefined && c.start === 'end' && saved.problem === undefined) {
      this.#pos = endPosition(this.#o.auditDir);
      if (this.#pos !== undefined) await writeCursor(this.#o.stateDir, c.name, this.#pos);
    }
    if (this.#pos !== undefined) this.#stats.lastShippedSeq = this.#pos.seq;
    for (;;) {
      if (this.#abort.signal.aborted) return;
      let read;
      try {
        read = await this.#reader.read(this.#pos, { records: c.batchRecords, bytes: c.batchBytes });
      } catch (e) {
        this.#error(`cannot read the audit log: ${errorMessage(e)}`);
        await this.#sleep(c.poll);
        continue;
      }
      const notices = read.notices.map((n) => `${n.kind}:${n.message}`).join('\n');
      if (notices !== this.#lastNotices) {
        for (const n of read.notices) {
          logger.warn({ sink: c.name, kind: n.kind }, `siem: ${n.message}`);
          if (n.kind !== 'malformed') this.#error(n.message);
        }
      }
      this.#lastNotices = notices;
      if (read.items.length === 0) {
        if (this.#o.head === undefined) this.#headCache = this.#reader.lastSeq();
        if (this.#stopAt !== undefined) return;
        this.#stats.state = 'idle';
        await this.#sleep(c.poll);
        continue;
      }
      this.#stats.state = 'shipping';
      // Encoded a few dozen at a time, the event loop free in between: catching up a backlog never stalls a call.
      const batch: Encoded[] = [];
      for (const [i, it] of read.items.entries()) {
        if (i > 0 && i % 64 === 0) await yieldNow();
        batch.push(encodeRecord(it.record, it.line, c.format, this.#o.productVersion, it.problems));
        // Shipped marked (the SIEM is told what is wrong), and said here at error level.
        if (it.problems !== undefined) logger.error({ sink: c.name, seq: it.record.seq, problems: it.problems }, 'siem: shipping a record marked gatehouse.integrity: the log was changed or has records missing (gatehouse audit verify)');
      }
      if (!(await this.#deliver(batch))) return;
      const last = (read.items.at(-1) as (typeof read.items)[number]).pos;
      this.#pos = last;
      this.#headCache = Math.max(this.#headCache, last.seq);
      try {
        await writeCursor(this.#o.stateDir, c.name, last);
      } catch (e) {
        // Shipping goes on; after a restart the batches since the last saved cursor arrive twice.
        this.#error(`cannot save the cursor: ${errorMessage(e)}`);
        logger.error({ sink: c.name, err: errorMessage(e) }, 'siem: cannot save the cursor');
      }
      this.#stats.lastShippedSeq = last.seq;
      this.#stats.lastShippedAt = new Date().toISOString();
      this.#stats.shipped += batch.length;
      await yieldNow();
    }
  }

  /** Sends `batch` until the sink acknowledges all of it; false when stopped first. */
  async #deliver(batch: Encoded[]): Promise<boolean> {
    const c = this.#o.config;
    const parts: Encoded[][] = [batch];
    while (parts.length > 0) {
      if (this.#stopping()) return false;
      const part = parts[0] as Encoded[];
      try {
        await this.#o.sink.send(part, this.#abort.signal);
        parts.shift();
        if (this.#stats.failures > 0) this.#o.logger.info({ sink: c.name }, 'siem: the sink accepts records again');
        this.#stats.failures = 0;
        this.#stats.lastError = null;
        continue;
      } catch (e) {
        if (this.#abort.signal.aborted) return false;
        const err = e instanceof SinkError ? e : new SinkError('retry', errorMessage(e));
        if (err.kind === 'rejected' && part.length > 1) {
          // Find the record the receiver refuses: halves, then (one record) that record cut down.
          const half = Math.ceil(part.length / 2);
          parts.splice(0, 1, part.slice(0, half), part.slice(half));
          continue;
        }
        if (err.kind === 'rejected' && part.length === 1 && (part[0] as Encoded).truncated === undefined) {
          parts[0] = [fit(part[0] as Encoded, 2048, c.format, true)];
          this.#stats.truncated++;
          this.#o.logger.warn({ sink: c.name, seq: (part[0] as Encoded).seq }, 'siem: the sink refuses this record whole; sending it cut down');
          continue;
        }
        this.#stats.failures++;
        this.#stats.state = 'retrying';
        const wait = Math.min(c.retry.max, Math.max(backoffMs(this.#stats.failures, c.retry.initial, c.retry.max, this.#o.random), err.retryAfterMs ?? 0));
        const message = err.kind === 'auth' ? `${err.message} (the sink refuses the credential: check its secret)` : err.message;
        this.#error(message);
        // Once per run of failures at error level; then every tenth, so a long outage does not flood the log.
        if (this.#stats.failures === 1 || this.#stats.failures % 10 === 0) this.#o.logger.error({ sink: c.name, failures: this.#stats.failures, retryInMs: wait }, `siem: ${message}`);
        await this.#sleep(wait);
      }
    }
    return true;
  }

  /** Waits `ms`, or less when stopped. */
  async #sleep(ms: number): Promise<void> {
    if (this.#abort.signal.aborted) throw new Stopped();
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      const signal = this.#abort.signal;
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      this.#wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
    this.#wake = undefined;
  }
}
