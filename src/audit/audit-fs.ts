import { closeSync, constants, fsyncSync, openSync, write } from 'node:fs';

/**
 * The file operations on the write path, injectable so tests can count
 * fsyncs and make writes fail. Everything else uses node:fs directly.
 */
export interface AuditFs {
  /** Opens for appending (O_APPEND | O_CREAT, 0600). */
  open(path: string): number;
  /** Writes all of `data` at the end of the file. */
  write(fd: number, data: Buffer): Promise<void>;
  /** Makes what was written durable. */
  fdatasync(fd: number): Promise<void>;
  close(fd: number): void;
}

/**
 * O_DSYNC: each write returns once its data (and the file's new size) is on
 * disk, as a write then fdatasync would, in one trip to the thread pool
 * instead of two (the second waited for the event loop to hand it over, behind
 * whatever the gateway was doing meanwhile). fdatasync has nothing left to do.
 */
const APPEND_DSYNC = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC;

export const nodeAuditFs: AuditFs = {
  open: (path) => openSync(path, APPEND_DSYNC, 0o600),
  async write(fd, data) {
    for (let off = 0; off < data.length; ) {
      off += await new Promise<number>((resolve, reject) => write(fd, data, off, data.length - off, null, (e, n) => (e ? reject(e) : resolve(n))));
    }
  },
  fdatasync: () => Promise.resolve(),
  close: (fd) => closeSync(fd),
};

/** Makes a rename, create or unlink in `dir` durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
