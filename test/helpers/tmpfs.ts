/**
 * A real, tiny filesystem (root only): ENOSPC comes from the kernel, not from
 * a mock. Call `unmountTmpfs()` from afterAll.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

const mounts: string[] = [];

export function tinyTmpfs(kib: number): string {
  const m = tempDir('gh-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0700`, 'tmpfs', m]);
  mounts.push(m);
  return m;
}

export function unmountTmpfs(): void {
  for (const m of mounts.splice(0)) {
    execFileSync('umount', ['-l', m]);
    rmSync(m, { recursive: true, force: true });
  }
}

/** Fills the filesystem; returns the filler's path (delete it to free the space). */
export function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4096, 120);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return path;
}
