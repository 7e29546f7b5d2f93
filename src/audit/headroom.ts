import { GatehouseError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { freeBytes, mib, mountPointOf, reserveAfterEnd } from './reserve.js';

export interface HeadroomOptions {
  dir: string;
  /** Disk kept for the audit (0: off): preallocated past the end of the current file, and the low-space watermark. */
  headroomBytes: number;
  /** Free space is looked up at most this often. */
  spaceCheckMs: number;
  logger: Logger;
  now: () => Date;
  /** The current file: its descriptor (-1: none) and size. */
  file: () => { fd: number; bytes: number };
  /** Writes an `audit.headroom` record (low, ok) into the log. */
  record: (e: Record<string, unknown>) => void;
}

/**
 * The audit's disk headroom: while the filesystem has less than
 * `headroomBytes` free outside the current file's reserve, new calls are
 * refused; records of calls already forwarded still land, in the reserve
 * preallocated past the end of the current file.
 */
export class Headroom {
  readonly #o: HeadroomOptions;
  /** File offset up to which blocks are preallocated. */
  #reservedTo = 0;
  #reserving: Promise<void> | undefined;
  #reserveError: string | undefined;
  #free = Number.POSITIVE_INFINITY;
  #spaceAt = Number.NEGATIVE_INFINITY;
  #low: { since: string; refusals: number } | undefined;
  #mount = '';

  constructor(o: HeadroomOptions) {
    this.#o = o;
  }

  get enabled(): boolean {
    return this.#o.headroomBytes > 0;
  }

  get low(): boolean {
    return this.#low !== undefined;
  }

  /** Finds the filesystem the log is on (for messages); looks up free space and reserves. */
  async start(): Promise<void> {
    this.#mount = mountPointOf(this.#o.dir);
    if (!this.enabled) return;
    this.check();
    await this.#reserving;
  }

  /** The current file was (re)opened: nothing is known reserved in it, free space is looked up at the next check. */
  reopened(): void {
    this.#reservedTo = 0;
    this.#spaceAt = Number.NEGATIVE_INFINITY;
  }

  /** A rotation started a new, empty current file: its reserve first (the old one's is given back by the caller). */
  async rotated(): Promise<void> {
    this.#reservedTo = 0;
    if (!this.enabled) return;
    this.#topUp(this.#o.headroomBytes);
    await this.#reserving;
  }

  /** Resolves when no preallocation is under way. */
  settled(): Promise<void> {
    return this.#reserving ?? Promise.resolve();
  }

  /** The refusal of a new call while space is low (counted), else undefined. */
  refusal(): GatehouseError | undefined {
    if (this.#low === undefined) return undefined;
    this.#low.refusals++;
    const { headroomBytes } = this.#o;
    return new GatehouseError(
      'AUDIT_UNAVAILABLE',
      `audit disk headroom below ${mib(headroomBytes)} MiB on ${this.#mount}; free space ${mib(this.#free)} MiB: new calls are refused until space is freed there (records of calls already forwarded are still written)`,
      { details: { code: 'AUDIT_HEADROOM', freeBytes: this.#free, headroomBytes, filesystem: this.#mount } },
    );
  }

  status(): { low: boolean; freeBytes: number; headroomBytes: number; reservedBytes: number; reserveError: string | undefined } {
    return { low: this.#low !== undefined, freeBytes: this.#free, headroomBytes: this.#o.headroomBytes, reservedBytes: Math.max(0, this.#reservedTo - this.#o.file().bytes), reserveError: this.#reserveError };
  }

  /**
   * Looks up free space (at most every `spaceCheckMs`), enters or leaves the
   * low-space state, and tops the reserve up. Leaving needs room for the
   * missing reserve too, so topping it up does not flip the state back.
   */
  check(): void {
    const headroom = this.#o.headroomBytes;
    if (headroom <= 0) return;
    const now = Date.now();
    if (now - this.#spaceAt < this.#o.spaceCheckMs) return;
    this.#spaceAt = now;
    try {
      this.#free = freeBytes(this.#o.dir);
    } catch (e) {
      this.#o.logger.warn({ err: errorMessage(e) }, 'audit: cannot look up free space');
      return;
    }
    const missing = headroom - Math.max(0, this.#reservedTo - this.#o.file().bytes);
    if (this.#low === undefined && this.#free < headroom) {
      this.#low = { since: this.#o.now().toISOString(), refusals: 0 };
      this.#o.logger.error({ freeBytes: this.#free, headroomBytes: headroom, filesystem: this.#mount }, 'audit: disk headroom low; refusing new calls');
      this.#o.record({ event: 'audit.headroom', state: 'low', freeBytes: this.#free, headroomBytes: headroom, filesystem: this.#mount });
    } else if (this.#low !== undefined && this.#free >= headroom + missing) {
      const low = this.#low;
      this.#low = undefined;
      this.#o.logger.warn({ freeBytes: this.#free, since: low.since }, 'audit: disk headroom back; accepting calls');
      this.#o.record({ event: 'audit.headroom', state: 'ok', freeBytes: this.#free, headroomBytes: headroom, filesystem: this.#mount, lowSince: low.since, refusals: low.refusals });
    }
    if (missing > headroom / 2) this.#topUp(missing);
  }

  /** Preallocates the missing part of the reserve, from space above the watermark only (never the last free bytes). */
  #topUp(missing: number): void {
    const { fd, bytes } = this.#o.file();
    if (this.#reserving || this.#reserveError !== undefined || fd < 0) return;
    // Reserved again up to headroom bytes past the end of the file.
    const from = Math.max(this.#reservedTo, bytes);
    const length = Math.min(missing, Math.floor((this.#free - this.#o.headroomBytes) / 4096) * 4096);
    if (length <= 0) return;
    this.#reserving = reserveAfterEnd(fd, from, length)
      .then(
        () => {
          if (fd === this.#o.file().fd) this.#reservedTo = Math.max(this.#reservedTo, from + length);
        },
        (e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOSPC') return;
          this.#reserveError = errorMessage(e);
          this.#o.logger.warn({ err: this.#reserveError }, 'audit: cannot preallocate the disk headroom here; new calls are still refused below the watermark');
        },
      )
      .finally(() => (this.#reserving = undefined));
  }
}
