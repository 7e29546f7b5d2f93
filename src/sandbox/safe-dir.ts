/**
 * Host-side file operations inside a directory the agent can write. The agent
 * may have left a symlink anywhere in it (or swapped a directory for one since
 * we resolved the path), and host-side code runs with the user's rights, root
 * included: a write that follows a link lands anywhere on the host
 * (`.mcp.json -> /etc/ld.so.preload`).
 *
 * So every operation goes through a directory fd reached one component at a
 * time without following links (each step O_PATH|O_NOFOLLOW|O_DIRECTORY: a
 * symlink is not a directory), and names inside it are opened with
 * O_CREAT|O_EXCL|O_NOFOLLOW. Node has no openat(2): `/proc/self/fd/N/name`
 * resolves `name` inside the directory the fd holds, which is the same lookup.
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { sep } from 'node:path';
import { GatehouseError } from '../errors.js';

/** O_PATH (Linux, every architecture Node supports): a handle for lookups only, no read permission needed. */
const O_PATH = 0o10000000;
const { O_NOFOLLOW, O_DIRECTORY, O_CREAT, O_EXCL, O_WRONLY } = constants;
const O_CLOEXEC = 0o2000000;

function fdPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

function checkName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new GatehouseError('INTERNAL', `not a plain file name: ${JSON.stringify(name)}`);
  }
}

/** A directory held open by fd, reached from `/` without following any link. */
export class SafeDir {
  private constructor(
    readonly path: string,
    private fd: number,
  ) {}

  /**
   * Opens an absolute, already canonical path. Fails (SANDBOX_FAILED) when any
   * component is a symlink or not a directory: it was canonical a moment ago,
   * so someone changed it.
   */
  static open(path: string): SafeDir {
    if (!path.startsWith(sep)) throw new GatehouseError('INTERNAL', `not an absolute path: ${path}`);
    let fd = openSync('/', O_PATH | O_DIRECTORY | O_CLOEXEC);
    try {
      for (const part of path.split(sep).filter((p) => p !== '')) {
        let next: number;
        try {
          next = openSync(fdPath(fd, part), O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          const why = code === 'ENOTDIR' || code === 'ELOOP' ? 'is a symlink or not a directory' : `cannot be opened (${code ?? 'error'})`;
          throw new GatehouseError('SANDBOX_FAILED', `${path}: the component "${part}" ${why}; refusing to follow it`);
        }
        closeSync(fd);
        fd = next;
      }
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return new SafeDir(path, fd);
  }

  /** lstat of a name inside (never follows it); undefined when there is nothing there. */
  lstat(name: string): Stats | undefined {
    checkName(name);
    try {
      return lstatSync(fdPath(this.fd, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Creates `name` with `content` only if nothing (not even a dangling link)
   * is there. Returns the new file's identity, or undefined when the name was taken.
   */
  createExclusive(name: string, content: string, mode = 0o644): Stats | undefined {
    checkName(name);
    let fd: number;
    try {
      fd = openSync(fdPath(this.fd, name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
      throw e;
    }
    try {
      const buf = Buffer.from(content);
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
      return fstatSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Removes `name` only if it is still the very file `ours` describes (same
   * device and inode, a regular file). Anything the agent put there instead
   * stays. unlink(2) never follows the last component.
   */
  removeIfSame(name: string, ours: Stats): boolean {
    const now = this.lstat(name);
    if (!now || !now.isFile() || now.dev !== ours.dev || now.ino !== ours.ino) return false;
    unlinkSync(fdPath(this.fd, name));
    return true;
  }

  /**
   * The directory `name` inside, created (0700) when absent. Fails
   * (SANDBOX_FAILED) when something else is there, a symlink included:
   * mkdir(2) never follows the last component, and the open refuses a link.
   */
  child(name: string): SafeDir {
    checkName(name);
    try {
      mkdirSync(fdPath(this.fd, name), { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    try {
      return new SafeDir(`${this.path}${sep}${name}`, openSync(fdPath(this.fd, name), O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new GatehouseError('SANDBOX_FAILED', `${this.path}${sep}${name} ${code === 'ENOTDIR' || code === 'ELOOP' ? 'is a symlink or not a directory' : `cannot be opened (${code ?? 'error'})`}; refusing to follow it`);
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
