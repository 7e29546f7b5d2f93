import { closeSync, fdatasync, fsyncSync, openSync, write } from 'node:fs';

/**
 * The file operations on the write path, injectable so tests can count
 * fsyncs and make writes fail. Everything else uses node:fs directly.
 */
export interface AuditFs {
  /** Opens for appending (O_APPEND | O_CREAT, 0600). */
  open(path: string): number;
  /** Writes all of `data` at the end of the file. */
  write(fd: number, data: Buffer): Promise<void>;
  fdatasync(fd: number): Promise<void>;
  close(fd: number): void;
}

export const nodeAuditFs: AuditFs = {
  open: (path) => openSync(path, 'a', 0o600),
  async write(fd, data) {
    for (let off = 0; off < data.length; ) {
      off += await new Promise<number>((resolve, reject) => write(fd, data, off, data.length - off, null, (e, n) => (e ? reject(e) : resolve(n))));
    }
  },
  fdatasync: (fd) => new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve()))),
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
