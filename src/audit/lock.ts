import { spawn } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError, errorMessage } from '../errors.js';

/**
 * The single-writer lock is flock(2) on the audit directory itself, held by
 * an open descriptor for as long as the writer lives. flock belongs to the
 * open file description, so the kernel drops it when the writer closes the
 * descriptor or dies (SIGKILL included): there is no stale lock to judge
 * and no pid that could be reused. The directory, not a file in it, is
 * locked because a lock file can be deleted while its holder lives, and the
 * next process would then lock a fresh inode beside a live writer.
 *
 * Node has no flock(2). Rather than a native addon (fs-ext needs node-gyp
 * and a compiler at every install for one syscall), util-linux's `flock`
 * (Essential on Debian) runs once on our descriptor, inherited as its fd 3,
 * and exits; the lock stays with our description. Node opens files
 * close-on-exec, so no child the gateway spawns later inherits it.
 */

/** Who holds the lock, written by the holder after it took the lock. Informational only: the lock is the kernel's. */
export interface LockHolder {
  pid: number;
  since: string;
  /** The last seq on disk when this writer opened the log: later records are its own. */
  fromSeq: number;
}

const HOLDER_FILE = 'writer.lock';
/** flock's exit status when the lock is held by someone else (`--conflict-exit-code`). */
const CONFLICT = 75;
/** A reader's probe holds a shared lock for a moment; a starting writer waits this long for it. */
const WRITER_WAIT_S = '0.5';

function flockBinary(): string {
  for (const p of ['/usr/bin/flock', '/bin/flock']) if (existsSync(p)) return p;
  return 'flock';
}

/** Runs `flock <args> 3` on `fd`; resolves with its exit status. */
function flockFd(fd: number, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(flockBinary(), [...args, '--conflict-exit-code', String(CONFLICT), '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let err = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new Error(`cannot run util-linux flock (${errorMessage(e)}); install util-linux`)));
    child.on('close', (code, signal) => (code === null ? reject(new Error(`flock was killed (${signal})`)) : code > 1 && code !== CONFLICT ? reject(new Error(`flock failed (${code}): ${err.trim()}`)) : resolve(code)));
  });
}

function openDir(dir: string): number {
  return openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
}

export function readHolder(dir: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(join(dir, HOLDER_FILE), 'utf8')) as Partial<LockHolder>;
    if (Number.isSafeInteger(h.pid) && typeof h.since === 'string' && Number.isSafeInteger(h.fromSeq)) return h as LockHolder;
  } catch {
    // missing, or the old format (a bare pid)
  }
  return undefined;
}

export interface WriterLock {
  /** Records who holds the lock (`writer.lock`), for error messages and readers. */
  publish(fromSeq: number): void;
  release(): void;
}

/**
 * Takes the writer lock on `dir` or throws AUDIT_UNAVAILABLE (with
 * `details.busy` when another live process holds it).
 */
export async function acquireWriterLock(dir: string): Promise<WriterLock> {
  let fd: number;
  try {
    fd = openDir(dir);
  } catch (e) {
    throw new GatehouseError('AUDIT_UNAVAILABLE', `cannot open the audit directory ${dir} to lock it: ${errorMessage(e)}`);
  }
  let status: number;
  try {
    status = await flockFd(fd, ['--exclusive', '--wait', WRITER_WAIT_S]);
  } catch (e) {
    closeSync(fd);
    throw new GatehouseError('AUDIT_UNAVAILABLE', `cannot lock the audit log in ${dir}: ${errorMessage(e)}`);
  }
  if (status !== 0) {
    closeSync(fd);
    const h = readHolder(dir);
    const who = h ? `pid ${h.pid}, since ${h.since}` : 'holder unknown';
    throw new GatehouseError(
      'AUDIT_UNAVAILABLE',
      `the audit log in ${dir} is being written by another process (${who}): another gateway uses this state directory; stop it, or give this one its own state directory`,
      { details: { busy: true, ...(h ? { pid: h.pid } : {}) } },
    );
  }
  const since = new Date().toISOString();
  let released = false;
  const lock: WriterLock = {
    publish(fromSeq) {
      try {
        writeFileSync(join(dir, HOLDER_FILE), JSON.stringify({ pid: process.pid, since, fromSeq } satisfies LockHolder) + '\n', { mode: 0o600 });
      } catch {
        // informational only
      }
    },
    release() {
      if (released) return;
      released = true;
      closeSync(fd);
    },
  };
  // Until the log is open, no record is ours.
  lock.publish(Number.MAX_SAFE_INTEGER);
  return lock;
}

/**
 * Whether a live writer holds the lock on `dir`, without disturbing it: a
 * shared lock is tried and dropped at once (a writer starting meanwhile
 * waits for it). Undefined when it cannot be told.
 */
export async function writerAlive(dir: string): Promise<{ alive: boolean; holder: LockHolder | undefined } | undefined> {
  let fd: number;
  try {
    fd = openDir(dir);
  } catch {
    return undefined;
  }
  try {
    const status = await flockFd(fd, ['--shared', '--nonblock']);
    return { alive: status !== 0, holder: status !== 0 ? readHolder(dir) : undefined };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
