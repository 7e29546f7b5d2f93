import { closeSync, existsSync, ftruncateSync, fsyncSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fsyncDir } from './audit-fs.js';
import { listAuditFiles, type AuditFile } from './files.js';
import { ZERO_HASH } from './record.js';
import { scanTail } from './tail.js';

/** A torn tail that was moved aside (named in an `audit.recovered` record). */
export interface Torn {
  file: string;
  offset: number;
  length: number;
  movedTo: string;
}

/** Where the chain on disk ends: the last valid record's seq and hash, and the torn tail moved aside, if any. */
export interface ChainEnd {
  seq: number;
  prev: string;
  torn: Torn | undefined;
}

/**
 * Finds the end of the chain (last valid record of the newest non-empty
 * file) and moves any torn tail of that file aside. The log's writer lock
 * must be held.
 */
export function repairChainEnd(dir: string): ChainEnd {
  const files = listAuditFiles(dir);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: an empty newest file falls through to the file before (below), the same end (equivalent.md)
  const newest: AuditFile | undefined = [...files].reverse().find((f) => f.size > 0);
  const end: ChainEnd = { seq: 0, prev: ZERO_HASH, torn: undefined };
  if (!newest) return end;
  const scan = scanTail(newest.path);
  if (scan.last) {
    end.seq = scan.last.seq;
    end.prev = scan.last.hash;
  } else {
    // Nothing valid in the newest file: continue from the file before, if any.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: rotated files are never empty (equivalent.md)
    const before = files.filter((f) => f !== newest && f.size > 0).pop();
    const s = before ? scanTail(before.path) : undefined;
    if (s?.last) {
      end.seq = s.last.seq;
      end.prev = s.last.hash;
    }
  }
  if (scan.validEnd < scan.size) end.torn = moveAside(newest.path, scan.validEnd, scan.size - scan.validEnd, end.seq + 1);
  return end;
}

/** Saves bytes [offset, offset+length) of `path` to `<path>.torn-<nextSeq>`, then cuts them off. */
function moveAside(path: string, offset: number, length: number, nextSeq: number): Torn {
  let movedTo = `${path}.torn-${nextSeq}`;
  for (let i = 2; existsSync(movedTo); i++) movedTo = `${path}.torn-${nextSeq}-${i}`;
  const bytes = readFileSync(path).subarray(offset, offset + length);
  writeFileSync(movedTo, bytes, { mode: 0o600, flush: true });
  fsyncDir(dirname(path));
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { file: basename(path), offset, length, movedTo: basename(movedTo) };
}
