import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { checkLine } from './record.js';
import type { AuditRecord } from './types.js';

export interface TailScan {
  size: number;
  /** The last record that parses and matches its hash. */
  last: AuditRecord | undefined;
  /** Byte offset just after the last valid record's newline. */
  validEnd: number;
}

const MAX_SCAN = 64 << 20;

/**
 * Finds where the chain ends in a file: the last complete line that is a
 * valid record. Bytes after it (a line cut by a crash, garbage) are the torn
 * tail: `size - validEnd` bytes at `validEnd`.
 */
export function scanTail(path: string): TailScan {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return { size, last: undefined, validEnd: 0 };
    for (let window = Math.min(size, 1 << 20); ; window = Math.min(size, window * 4)) {
      const start = size - window;
      const buf = Buffer.alloc(window);
      const n = readSync(fd, buf, 0, window, start);
      let end = buf.lastIndexOf(10, n - 1);
      while (end >= 0) {
        const prevNl = end === 0 ? -1 : buf.lastIndexOf(10, end - 1);
        // The window's first line may be cut off unless the window starts the file.
        if (prevNl < 0 && start > 0) break;
        const c = checkLine(buf.toString('utf8', prevNl + 1, end));
        if (c.ok) return { size, last: c.record, validEnd: start + end + 1 };
        end = prevNl;
      }
      if (start === 0) return { size, last: undefined, validEnd: 0 };
      if (window >= MAX_SCAN) throw new Error(`no valid audit record in the last ${window} bytes of ${path}`);
    }
  } finally {
    closeSync(fd);
  }
}
