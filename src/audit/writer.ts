import { mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GatehouseError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { fsyncDir, nodeAuditFs, type AuditFs } from './audit-fs.js';
import { checkpointKeyPath, loadCheckpointKey, signCheckpoint, type CheckpointKey, type CheckpointPayload } from './checkpoint.js';
import { CURRENT_FILE, listAuditFiles, rotatedName } from './files.js';
import { boundedLine } from './bound.js';
import { indexRotated } from './indexed-scan.js';
import { ScanPool } from './pool.js';
import { LateQueue } from './late-queue.js';
import { acquireWriterLock, type WriterLock } from './lock.js';
import { RecordWriter, ZERO_HASH } from './record.js';
import { repairChainEnd, type Torn } from './repair.js';
import { Headroom } from './headroom.js';
import { MiB, releaseReserve } from './reserve.js';
import { deleteRotated, retentionPlan } from './retention.js';
import { serveAppendSocket, socketPath, type SocketServer } from './socket.js';
import type { AuditEvent, AuditSink, KeptRecord } from './types.js';

export { nodeAuditFs, type AuditFs } from './audit-fs.js';
export { MAX_LATE_RECORDS } from './late-queue.js';

export interface AuditLogOptions {
  /** Directory of the log files: `<state>/audit`. */
  dir: string;
  /** Private JWK for checkpoints (default `<dir>/../keys/audit-checkpoint.jwk`). */
  keyFile?: string;
  /** A signed checkpoint after this many records (default 1000). */
  checkpointEvery?: number;
  /** ... or after this long with unsealed records (default 60 s). */
  checkpointIntervalMs?: number;
  /** Rotate when the current file would grow past this (default 64 MiB). */
  maxFileBytes?: number;
  /** Keep at most this many rotated files (default: all). */
  retainFiles?: number;
  /** Delete rotated files whose last record is older than this many days (default: never). */
  retainDays?: number;
  /** While writes fail, try again this often (default 5 s). */
  retryMs?: number;
  /**
   * Disk headroom kept for the audit (default 32 MiB; 0 turns it off): that
   * much is preallocated past the end of the current file, and while the
   * filesystem has less than this free outside it, new calls are refused
   * (records of calls already forwarded still land, in the reserve).
   */
  headroomBytes?: number;
  /** Free space is looked up at most this often (default 1 s). */
  spaceCheckMs?: number;
  /** Serve `<dir>/writer.sock` so other local processes can append (the gateway does). */
  listen?: boolean;
  logger?: Logger;
  fs?: AuditFs;
  now?: () => Date;
  /** Told of each record appended and each batch made durable (metrics, src/telemetry/metrics.ts); it must not throw. */
  observe?: AuditObserver;
}

/** Watches the log without touching it: what it is told is already decided. */
export interface AuditObserver {
  /** A record, as it is appended (before it is durable). */
  record(e: Readonly<Record<string, unknown>>): void;
  /** A batch made durable: its records, bytes, and the ms its write and fdatasync took. */
  batch(records: number, bytes: number, ms: number): void;
}

export const AUDIT_DEFAULTS = {
  checkpointEvery: 1000,
  checkpointIntervalMs: 60_000,
  maxFileBytes: 64 * 1024 * 1024,
  retryMs: 5_000,
  headroomBytes: 32 * MiB,
  spaceCheckMs: 1_000,
} as const;

/** Kept records appended per batch after a recovery; other work runs while each batch is synced. */
export const LATE_DRAIN_CHUNK = 32;
/**
 * How long a lazy record (the record of something already over, which no
 * answer waits for) may wait in the batch for a write that another record
 * starts. Back-to-back calls then make one write, not two in a row: the next
 * call's intent does not queue behind the last call's outcome.
 */
export const LAZY_WRITE_MS = 5;

/** Events only the writer itself may write. */
const RESERVED_EVENT = /^audit\./;

interface Waiter {
  resolve: (r: { seq: number; hash: string }) => void;
  reject: (e: unknown) => void;
  seq: number;
  hash: string;
}

interface Batch {
  text: string;
  waiters: Waiter[];
  /** A record that something waits for is in it: written at once (otherwise within LAZY_WRITE_MS). */
  urgent: boolean;
}

const emptyBatch = (): Batch => ({ text: '', waiters: [], urgent: false });

/**
 * The durable, hash-chained audit log (see README-audit "Audit log").
 *
 * Every append gets the next seq and chains to the previous hash at once (so
 * file order is seq order); lines wait in a batch while a write is under way,
 * and one write + fdatasync commits the whole batch (group commit). An
 * append resolves only after its batch is on disk.
 */
export class AuditLog implements AuditSink {
  readonly dir: string;
  readonly file: string;
  readonly #fs: AuditFs;
  readonly #logger: Logger;
  readonly #now: () => Date;
  readonly #records = new RecordWriter();
  readonly #opts: Required<Pick<AuditLogOptions, 'checkpointEvery' | 'checkpointIntervalMs' | 'maxFileBytes' | 'retryMs' | 'headroomBytes' | 'spaceCheckMs'>> & AuditLogOptions;

  #key!: CheckpointKey;
  #lock: WriterLock | undefined;
  #socket: SocketServer | undefined;
  #fd = -1;
  #seq = 0;
  #prev = ZERO_HASH;
  #fileBytes = 0;
  #fileFirstSeq = 1;
  #batch: Batch = emptyBatch();
  #flushing = false;
  #idle: Promise<void> = Promise.resolve();
  #lazyTimer: NodeJS.Timeout | undefined;
  #markIdle: () => void = () => undefined;
  #failed: { code: string; message: string; since: string; fromSeq: number } | undefined;
  #epoch = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #checkpointTimer: NodeJS.Timeout | undefined;
  #sinceCheckpoint = 0;
  #sealedSeq = 0;
  #checkpointing: Promise<void> | undefined;
  #retention: Promise<void> | undefined;
  #indexing: Promise<void> = Promise.resolve();
  #indexPool: ScanPool | undefined;
  #closed = false;
  /** Records of things already done that came while the log could not be written (see appendOrQueue). */
  readonly #late = new LateQueue();
  #draining: Promise<void> | undefined;
  readonly #headroom: Headroom;
  /** Observability for tests and `gatehouse audit status`. */
  readonly stats = { appends: 0, batches: 0, fsyncs: 0, checkpoints: 0, rotations: 0 };

  private constructor(opts: AuditLogOptions) {
    this.#opts = { ...AUDIT_DEFAULTS, ...opts };
    this.dir = opts.dir;
    this.file = join(opts.dir, CURRENT_FILE);
    this.#fs = opts.fs ?? nodeAuditFs;
    this.#logger = opts.logger ?? silentLogger;
    this.#now = opts.now ?? (() => new Date());
    this.#headroom = new Headroom({
      dir: this.dir,
      headroomBytes: this.#opts.headroomBytes,
      spaceCheckMs: this.#opts.spaceCheckMs,
      logger: this.#logger,
      now: this.#now,
      file: () => ({ fd: this.#fd, bytes: this.#fileBytes }),
      record: (e) => void this.#enqueue(e).catch(() => undefined),
    });
  }

  /**
   * Opens the log: takes the writer lock, finds the end of the chain, moves a
   * torn last line aside (recorded in an `audit.recovered` record) and loads
   * or creates the checkpoint key.
   */
  static async open(opts: AuditLogOptions): Promise<AuditLog> {
    const log = new AuditLog(opts);
    mkdirSync(log.dir, { recursive: true, mode: 0o700 });
    log.#key = await loadCheckpointKey(opts.keyFile ?? checkpointKeyPath(dirname(log.dir)));
    log.#lock = await acquireWriterLock(log.dir);
    try {
      const torn = log.#openCurrent();
      log.#lock.publish(log.#seq);
      log.#sealedSeq = log.#seq;
      await log.#headroom.start();
      if (torn) {
        log.#logger.warn({ ...torn }, 'audit: torn last line moved aside');
        void log.#enqueue({ event: 'audit.recovered', reason: 'torn-last-line', torn }).catch(() => undefined);
      }
      if (opts.listen) log.#socket = await serveAppendSocket(socketPath(log.dir), (e) => log.appendRecord(e), log.#logger);
    } catch (e) {
      log.#lock.release();
      if (log.#fd >= 0) log.#fs.close(log.#fd);
      throw e instanceof GatehouseError ? e : new GatehouseError('AUDIT_UNAVAILABLE', `cannot open the audit log in ${log.dir}: ${errorMessage(e)}`, { cause: e });
    }
    log.#checkpointTimer = setInterval(() => {
      if (log.#seq > log.#sealedSeq) void log.checkpoint();
    }, log.#opts.checkpointIntervalMs);
    log.#checkpointTimer.unref();
    void log.#applyRetention();
    return log;
  }

  /** Seq of the last record appended (durable or in flight). */
  get seq(): number {
    return this.#seq;
  }

  get failed(): string | undefined {
    return this.#failed?.message;
  }

  /** Public key (JWK) that verifies this log's checkpoints. */
  get publicJwk(): CheckpointKey['publicJwk'] {
    return this.#key.publicJwk;
  }

  /** Throws when a new call must not start: the log cannot be written, or its disk is below the headroom. */
  assertWritable(): void {
    this.#assertOpen();
    this.#checkSpace();
    const refusal = this.#headroom.refusal();
    if (refusal) throw refusal;
  }

  /** Headroom state, for status and tests. */
  get headroom(): { low: boolean; freeBytes: number; headroomBytes: number; reservedBytes: number; reserveError: string | undefined } {
    return this.#headroom.status();
  }

  /** Records of executed calls waiting for the log to be writable again. */
  get lateRecords(): number {
    return this.#late.size;
  }

  /** Records of executed calls that came while the late queue was full (written as a count on recovery). */
  get lateLost(): number {
    return this.#late.lost.records;
  }

  #assertOpen(): void {
    if (this.#closed) throw new GatehouseError('AUDIT_UNAVAILABLE', 'the audit log is closed; calls are refused');
    if (this.#failed !== undefined) {
      throw new GatehouseError(
        'AUDIT_UNAVAILABLE',
        `the audit log cannot be written (${this.#failed.message}); calls are refused until it can (retrying every ${Math.round(this.#opts.retryMs / 1000)} s)`,
        { details: { code: this.#failed.code, since: this.#failed.since } },
      );
    }
  }

  async append(e: AuditEvent): Promise<void> {
    await this.appendRecord(e);
  }

  /** Like `append`, and tells the record's seq and hash. */
  appendRecord(e: AuditEvent): Promise<{ seq: number; hash: string }> {
    if (typeof e.event !== 'string' || e.event === '') return Promise.reject(new GatehouseError('AUDIT_UNAVAILABLE', 'an audit event needs an "event" name'));
    if (RESERVED_EVENT.test(e.event)) return Promise.reject(new GatehouseError('AUDIT_UNAVAILABLE', `"${e.event}" records are written by the audit log itself`));
    try {
      this.#assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(e);
  }

  /**
   * The record of something that already happened (an upstream acted). Not
   * refused for headroom (it lands in the reserve). If the log cannot take it
   * now, it is kept here and written right after the log recovers, marked
   * `delivered: false` (the caller gets this rejection and must not hand the
   * result back), so nothing executed goes unaudited. Bounded by the calls in
   * flight when the log failed (new calls are refused before forwarding) and
   * by MAX_LATE_RECORDS: past that, records are counted, not kept.
   */
  async appendOutcome(e: AuditEvent): Promise<void> {
    const r = await this.appendOrQueue(e);
    if (r.state !== 'written') throw r.error;
  }

  /**
   * appendOutcome's rule without the rejection: written, queued (kept in the
   * late queue, or counted past MAX_LATE_RECORDS, for the recovery) or lost
   * (a closed log, a record that is not an ordinary event), with why.
   * `lazy`: nothing waits for this record (the deed is over and answered),
   * so it rides with the next write, started within LAZY_WRITE_MS.
   */
  async appendOrQueue(e: AuditEvent, opts: { lazy?: boolean } = {}): Promise<KeptRecord> {
    if (typeof e.event !== 'string' || e.event === '' || RESERVED_EVENT.test(e.event)) return { state: 'lost', error: new GatehouseError('AUDIT_UNAVAILABLE', 'an outcome record needs an ordinary "event" name') };
    try {
      this.#assertOpen();
      await this.#enqueue(e, opts.lazy === true);
      return { state: 'written' };
    } catch (err) {
      // Only a failed log keeps it: a closed log or an unserializable record would never take it.
      if (this.#failed === undefined || this.#closed) return { state: 'lost', error: err };
      // A lazy record's deed was answered already: it is late, not withheld.
      this.#late.keep(e, err, opts.lazy === true);
      this.#scheduleRetry();
      return { state: 'queued', error: err };
    }
  }

  /**
   * Appends the kept records of executed calls (after a recovery, and at
   * close), LATE_DRAIN_CHUNK at a time: each chunk waits for its fdatasync,
   * so other work runs in between. #enqueue refuses a record only when the
   * log failed again (one it cannot format is replaced by a minimal record):
   * that one is kept for the next recovery, and the drain stops (records
   * enqueued while failed would never be written).
   */
  #drainLate(): Promise<void> {
    this.#draining ??= (async () => {
      while (this.#late.size > 0 && this.#failed === undefined) {
        const chunk = this.#late.take(LATE_DRAIN_CHUNK);
        await Promise.all(chunk.map((rec) => this.#enqueue(rec).catch(() => this.#late.putBack(rec))));
      }
    })().finally(() => (this.#draining = undefined));
    return this.#draining;
  }

  /** Headroom (headroom.ts) is looked at only while the log is open and writable. */
  #checkSpace(): void {
    if (this.#closed || this.#failed !== undefined) return;
    this.#headroom.check();
  }

  #enqueue(e: Record<string, unknown>, lazy = false): Promise<{ seq: number; hash: string }> {
    const seq = this.#seq + 1;
    let formatted: { line: string; hash: string };
    try {
      formatted = boundedLine(e, { seq, time: this.#now().toISOString(), prev: this.#prev }, (f) => this.#records.format(f));
      // Stryker disable all: unreachable since the size bound (a minimal record holds only cut strings); kept as a guard
    } catch (err) {
      return Promise.reject(new GatehouseError('AUDIT_UNAVAILABLE', `the audit record could not be serialized: ${errorMessage(err)}`));
    }
    // Stryker restore all
    this.#seq = seq;
    this.#prev = formatted.hash;
    this.stats.appends++;
    this.#observe(e);
    const p = new Promise<{ seq: number; hash: string }>((resolve, reject) => {
      this.#batch.text += formatted.line;
      this.#batch.waiters.push({ resolve, reject, seq, hash: formatted.hash });
    });
    if (!lazy) this.#batch.urgent = true;
    if (e.event !== 'audit.checkpoint' && ++this.#sinceCheckpoint >= this.#opts.checkpointEvery) void this.checkpoint();
    this.#kick();
    return p;
  }

  /** Telemetry must never fail an append. */
  #observe(e: Record<string, unknown>): void {
    try {
      this.#opts.observe?.record(e);
    } catch {
      // not the log's concern
    }
  }

  #observeBatch(records: number, bytes: number, ms: number): void {
    try {
      this.#opts.observe?.batch(records, bytes, ms);
    } catch {
      // not the log's concern
    }
  }

  #kick(): void {
    // Stryker disable next-line ConditionalExpression: the loop's own condition ends it at once (perf only, equivalent.md)
    if (this.#flushing || this.#failed !== undefined || this.#batch.waiters.length === 0) return;
    if (!this.#batch.urgent) {
      this.#lazyTimer ??= setTimeout(() => {
        this.#lazyTimer = undefined;
        this.#batch.urgent = true;
        this.#kick();
      }, LAZY_WRITE_MS);
      return;
    }
    clearTimeout(this.#lazyTimer);
    this.#lazyTimer = undefined;
    this.#flushing = true;
    this.#idle = new Promise((r) => (this.#markIdle = r));
    void this.#flushLoop();
  }

  async #flushLoop(): Promise<void> {
    try {
      // Stryker disable next-line ConditionalExpression: #failed is set only by #fail, followed by break (equivalent.md)
      while (this.#batch.waiters.length > 0 && this.#batch.urgent && this.#failed === undefined) {
        const batch = this.#batch;
        this.#batch = emptyBatch();
        const data = Buffer.from(batch.text);
        const firstSeq = (batch.waiters[0] as Waiter).seq;
        try {
          // While space is low the file grows past its size limit: a new file would start without a reserve.
          if (this.#fileBytes > 0 && this.#fileBytes + data.length > this.#opts.maxFileBytes && !this.#headroom.low) await this.#rotate(firstSeq);
          // Stryker disable next-line all: #openCurrent and #rotate already set it for an empty file (equivalent.md)
          if (this.#fileBytes === 0) this.#fileFirstSeq = firstSeq;
          const writeStart = performance.now();
          await this.#fs.write(this.#fd, data);
          this.#fileBytes += data.length;
          await this.#fs.fdatasync(this.#fd);
          this.stats.fsyncs++;
          this.stats.batches++;
          this.#observeBatch(batch.waiters.length, data.length, performance.now() - writeStart);
          this.#checkSpace();
        } catch (err) {
          this.#fail(err, batch);
          break;
        }
        for (const w of batch.waiters) w.resolve({ seq: w.seq, hash: w.hash });
      }
    } finally {
      this.#flushing = false;
      this.#markIdle();
      // Lazy records left: written within LAZY_WRITE_MS, or with the next record that cannot wait.
      this.#kick();
    }
  }

  /** Closes the current file under its first seq's name and starts a new one. */
  async #rotate(nextSeq: number): Promise<void> {
    await this.#headroom.settled();
    const old = this.#fd;
    const rotated = rotatedName(this.#fileFirstSeq);
    try {
      renameSync(this.file, join(this.dir, rotated));
      this.#fd = this.#fs.open(this.file);
    } catch (e) {
      this.#fd = old;
      throw e;
    }
    fsyncDir(this.dir);
    this.#fileBytes = 0;
    this.#fileFirstSeq = nextSeq;
    // The new file's reserve first, then the old one's is given back.
    await this.#headroom.rotated();
    releaseReserve(old);
    this.#fs.close(old);
    this.#logger.info({ file: rotated }, 'audit: rotated');
    this.stats.rotations++;
    queueMicrotask(() => void this.#applyRetention());
    this.#indexRotated(join(this.dir, rotated));
  }

  /**
   * Writes the block index (sidecar) of a file just rotated, one at a time,
   * off the write path (a worker for a big file). Not while disk space is
   * low: the headroom is for records. A failure only means the first query
   * to reach the file builds it.
   */
  #indexRotated(path: string): void {
    if (this.#headroom.low) return;
    this.#indexing = this.#indexing
      .then(async () => {
        if (this.#closed) return;
        try {
          await indexRotated(this.dir, path, () => (this.#indexPool = new ScanPool(1)));
        } finally {
          const pool = this.#indexPool;
          this.#indexPool = undefined;
          await pool?.close();
        }
      })
      .catch((e: unknown) => {
        if (!this.#closed) this.#logger.warn({ err: errorMessage(e), file: path }, 'audit: could not index a rotated file; the first query that reads it will');
      });
  }

  #fail(err: unknown, batch: Batch): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    const fromSeq = (batch.waiters[0] as Waiter).seq;
    this.#failed = { code, message: `${code}: ${errorMessage(err)}`, since: this.#now().toISOString(), fromSeq };
    // Stryker disable next-line UpdateOperator: only compared for equality
    this.#epoch++;
    this.#logger.error({ code, err: errorMessage(err), file: this.file }, 'audit: write failed; refusing calls until the log can be written');
    let refusal: unknown;
    try {
      this.assertWritable();
    } catch (e) {
      refusal = e;
    }
    const pending = [...batch.waiters, ...this.#batch.waiters];
    this.#batch = emptyBatch();
    for (const w of pending) w.reject(refusal);
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#recover();
    }, this.#opts.retryMs);
    this.#retryTimer.unref();
  }

  /**
   * After a failed write: reopen, find the end of the chain on disk again
   * (records of the failed batch may or may not have landed; a cut line is
   * moved aside), and write an `audit.recovered` record. Until that record is
   * durable the log stays failed.
   */
  async #recover(): Promise<void> {
    const failed = this.#failed;
    if (failed === undefined || this.#closed) return;
    let torn: Torn | undefined;
    try {
      if (this.#fd >= 0) this.#fs.close(this.#fd);
      this.#fd = -1;
      torn = this.#openCurrent();
    } catch (e) {
      this.#logger.warn({ err: errorMessage(e) }, 'audit: still cannot open the log; will retry');
      this.#scheduleRetry();
      return;
    }
    this.#failed = undefined;
    const lost = this.#late.lost;
    try {
      const r = await this.#enqueue({
        event: 'audit.recovered',
        reason: 'write-failed',
        error: { code: failed.code, message: failed.message },
        failedAt: failed.since,
        /** Appends from this seq on were refused (their callers got AUDIT_UNAVAILABLE); some may still have reached the file. */
        refusedFromSeq: failed.fromSeq,
        ...(torn ? { torn } : {}),
        /** Records of executed calls that came while MAX_LATE_RECORDS were kept: only counted. */
        ...(lost.records > 0 ? { lateLost: { records: lost.records, calls: lost.calls } } : {}),
      });
      // Counted in a durable record: later losses start a new count.
      this.#late.resetLost();
      this.#logger.warn({ seq: r.seq, downSince: failed.since, lateRecords: this.#late.size, lateLost: lost.records }, 'audit: log writable again; calls are accepted');
      void this.#drainLate();
    } catch {
      // #fail ran again and scheduled the next retry.
    }
  }

  /** Finds the end of the chain and moves a torn tail aside (repair.ts), opens the current file for appending. */
  #openCurrent(): Torn | undefined {
    const end = repairChainEnd(this.dir);
    this.#seq = end.seq;
    this.#prev = end.prev;
    this.#fd = this.#fs.open(this.file);
    fsyncDir(this.dir);
    this.#fileBytes = statSync(this.file).size;
    this.#headroom.reopened();
    // Stryker disable next-line all: the current file is always listed, and an empty one's first seq is set by its first batch (equivalent.md)
    this.#fileFirstSeq = this.#fileBytes > 0 ? (listAuditFiles(this.dir).find((f) => f.current)?.firstSeq ?? this.#seq + 1) : this.#seq + 1;
    return end.torn;
  }

  /**
   * Appends a signed checkpoint over the last record appended so far. The
   * JWS is made off the hot path (appends go on meanwhile), so the checkpoint
   * names the seq it covers, which is at or before its own.
   */
  checkpoint(): Promise<void> {
    if (this.#checkpointing) return this.#checkpointing;
    if (this.#seq <= this.#sealedSeq || this.#failed !== undefined) return Promise.resolve();
    const payload: CheckpointPayload = { seq: this.#seq, hash: this.#prev, time: this.#now().toISOString() };
    const epoch = this.#epoch;
    this.#sinceCheckpoint = 0;
    this.#checkpointing = (async () => {
      const jws = await signCheckpoint(this.#key, payload);
      // A failed write rewinds the chain; a checkpoint over a record that never landed must not be written.
      if (epoch !== this.#epoch || this.#failed !== undefined) return;
      const r = await this.#enqueue({ event: 'audit.checkpoint', checkpoint: payload, kid: this.#key.kid, jws });
      this.#sealedSeq = Math.max(this.#sealedSeq, r.seq);
      this.stats.checkpoints++;
    })()
      .catch((e: unknown) => this.#logger.error({ err: errorMessage(e) }, 'audit: checkpoint failed'))
      .finally(() => (this.#checkpointing = undefined));
    return this.#checkpointing;
  }

  /**
   * Deletes the oldest rotated files beyond `retainFiles` / older than
   * `retainDays`, after an `audit.retention` record names where the kept
   * chain starts (seq and prev), so verify knows the start is legitimate.
   */
  #applyRetention(): Promise<void> {
    const { retainFiles, retainDays } = this.#opts;
    if ((retainFiles === undefined && retainDays === undefined) || this.#retention || this.#closed) return this.#retention ?? Promise.resolve();
    this.#retention = (async () => {
      const plan = retentionPlan(this.dir, { retainFiles, retainDays }, this.#now());
      if (plan === undefined) return;
      await this.#enqueue(plan.record);
      deleteRotated(this.dir, plan.drop);
      this.#logger.info({ deleted: plan.drop.map((f) => f.name), keptFromSeq: plan.record.keptFromSeq }, 'audit: retention applied');
    })()
      .catch((e: unknown) => this.#logger.error({ err: errorMessage(e) }, 'audit: retention failed'))
      .finally(() => (this.#retention = undefined));
    return this.#retention;
  }

  /** Waits until every record appended so far is durable (or refused), kept records of executed calls being drained included. */
  async flush(): Promise<void> {
    await this.#draining;
    for (;;) {
      if (this.#batch.waiters.length > 0 && this.#failed === undefined) {
        // Lazy records too: a flush waits for nothing.
        this.#batch.urgent = true;
        this.#kick();
      }
      if (!this.#flushing) return;
      await this.#idle;
    }
  }

  /** Flushes, seals the log with a final checkpoint, releases the lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#checkpointTimer);
    await this.#retention;
    await this.#checkpointing;
    await this.#drainLate();
    await this.checkpoint();
    await this.flush();
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    // A record appended in the microtasks between that flush and #closed (nothing can be after it), a lazy
    // one included, is written too: none is left waiting forever, and no write is in flight when the file closes.
    await this.flush();
    clearTimeout(this.#lazyTimer);
    const unwritten = this.#late.size + this.#late.lost.records;
    if (unwritten > 0) this.#logger.error({ records: unwritten, reason: this.#failed?.message }, 'audit: records of executed calls could not be written before close');
    // An index being built is a cache: stopped, not waited for.
    await this.#indexPool?.close();
    await this.#indexing;
    await this.#socket?.close();
    await this.#headroom.settled();
    if (this.#fd >= 0) {
      releaseReserve(this.#fd);
      this.#fs.close(this.#fd);
    }
    this.#fd = -1;
    // Stryker disable next-line OptionalChaining: open sets the lock before anything can fail
    this.#lock?.release();
  }
}
