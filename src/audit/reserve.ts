import { spawn } from 'node:child_process';
import { existsSync, fstatSync, ftruncateSync, statSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage } from '../errors.js';

/**
 * The audit's disk headroom. The reserve is preallocated at the end of the
 * file being written (fallocate with KEEP_SIZE: blocks past the end of the
 * file, not counted in its size), so appends consume it and nothing else on
 * the filesystem can take it. A separate reserve file released on ENOSPC
 * would hand its blocks to whoever writes next, which is the agent filling
 * the disk. Node has no fallocate(2): util-linux's `fallocate` runs on our
 * descriptor (inherited as fd 3, reopened through /proc/self/fd/3, so a
 * rename during rotation cannot redirect it).
 */

function fallocateBinary(): string {
  for (const p of ['/usr/bin/fallocate', '/bin/fallocate']) if (existsSync(p)) return p;
  return 'fallocate';
}

/** Allocates [offset, offset+length) of the open file `fd` without changing its size. */
export function reserveAfterEnd(fd: number, offset: number, length: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(fallocateBinary(), ['--keep-size', '--offset', String(offset), '--length', String(length), '/proc/self/fd/3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let err = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(Object.assign(new Error(`cannot run util-linux fallocate: ${errorMessage(e)}`), { code: 'ENOENT' })));
    child.on('close', (code) => {
      if (code === 0) return resolve();
      const msg = err.trim();
      const code2 = /No space left/i.test(msg) ? 'ENOSPC' : /not supported/i.test(msg) ? 'EOPNOTSUPP' : 'EIO';
      reject(Object.assign(new Error(`fallocate failed: ${msg || `exit ${code}`}`), { code: code2 }));
    });
  });
}

/** Frees the blocks reserved past the end of `fd` (truncating to its own size keeps every byte written). */
export function releaseReserve(fd: number): void {
  try {
    ftruncateSync(fd, fstatSync(fd).size);
  } catch {
    // the descriptor is going away anyway
  }
}

/** Bytes an unprivileged writer may still allocate on the filesystem of `path`. */
export function freeBytes(path: string): number {
  const s = statfsSync(path);
  return s.bavail * s.bsize;
}

/** The mount point holding `path` (for messages: "on /var"). */
export function mountPointOf(path: string): string {
  try {
    const dev = statSync(path).dev;
    let p = path;
    for (let up = dirname(p); up !== p && statSync(up).dev === dev; up = dirname(up)) p = up;
    return p;
  } catch {
    return path;
  }
}

export const MiB = 1024 * 1024;

export function mib(bytes: number): string {
  const v = bytes / MiB;
  return v >= 10 ? String(Math.round(v)) : v >= 1 ? v.toFixed(1) : v.toFixed(2);
}
