import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { GatehouseError } from '../errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the single-writer lock: a file holding the writer's pid, created
 * with O_EXCL. A lock left by a dead process (SIGKILL, crash) is taken over.
 * Returns the release function.
 */
export function acquireWriterLock(path: string): () => void {
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let pid = NaN;
      try {
        pid = Number(readFileSync(path, 'utf8').trim());
      } catch {
        // vanished or unreadable: retry
      }
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new GatehouseError('AUDIT_UNAVAILABLE', `the audit log is being written by another process (pid ${pid}, lock ${path})`, { details: { pid, busy: true } });
      }
      try {
        unlinkSync(path);
      } catch {
        // someone else took it over first; the next attempt sees their lock
      }
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return () => {
      try {
        if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
      } catch {
        // already gone
      }
    };
  }
  throw new GatehouseError('AUDIT_UNAVAILABLE', `cannot take the audit writer lock ${path}`);
}
