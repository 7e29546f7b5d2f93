import { readFileSync } from 'node:fs';

/** "ext4 /tmp"-style name of the filesystem holding `dir` (from /proc/self/mounts, longest prefix). */
export function fsName(dir: string): string {
  let best = { mount: '', type: '?' };
  try {
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [, mount, type] = line.split(' ');
      if (mount && type && (dir === mount || dir.startsWith(mount === '/' ? '/' : `${mount}/`)) && mount.length > best.mount.length) best = { mount, type };
    }
  } catch {
    // not Linux
  }
  return `${best.type} ${dir.split('/').slice(0, 2).join('/') || '/'}`;
}
