/**
 * Small state files that must survive a crash: written to a temporary file,
 * fsynced, renamed over the old one and the directory fsynced (POSIX rename is
 * atomic; the directory fsync makes the rename itself durable). Files are 0600
 * in a 0700 directory; nothing here follows a symlink.
 *
 * Our own instead of `write-file-atomic`: that package does not fsync the
 * directory, and we also want O_NOFOLLOW on reads and an owner/mode check.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

const uid = (): number | undefined => process.geteuid?.();

/** Creates `dir` (0700) if needed; refuses a symlink, a non-directory or one owned by someone else. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory (a symlink?)`);
  const me = uid();
  if (me !== undefined && st.uid !== me) throw new Error(`${dir} is owned by uid ${st.uid}, not by this process (uid ${me})`);
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/**
 * Replaces `dir/name` with `data`, durably; rejects on any failure (the old
 * file is then intact). Asynchronous: an fsync can take milliseconds and must
 * not stall the gateway's event loop.
 */
export async function writeFileDurably(dir: string, name: string, data: string): Promise<void> {
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, join(dir, name));
  const dh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Reads a private state file: undefined when it does not exist. Throws when it
 * is a symlink or not a regular file, is not ours, or others may write it.
 */
export function readPrivateFile(path: string, maxBytes = 64 << 20): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new Error('is a symlink');
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('is not a regular file');
    const me = uid();
    if (me !== undefined && st.uid !== me) throw new Error(`is owned by uid ${st.uid}, not by this process (uid ${me})`);
    if ((st.mode & 0o022) !== 0) throw new Error(`may be written by others (mode ${(st.mode & 0o777).toString(8)}); it should be 600`);
    if (st.size > maxBytes) throw new Error(`is larger than ${maxBytes} bytes`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The synchronous twin of `writeFileDurably` (temp file O_EXCL|O_NOFOLLOW
 * 0600, fsync, rename, fsync of the folder), for callers that decide and
 * persist in one step (tool pins on a tools/list refresh, the revocation list).
 */
export function writeFileDurablySync(dir: string, name: string, data: string): void {
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const bytes = Buffer.from(data, 'utf8');
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, join(dir, name));
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
  const dfd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
