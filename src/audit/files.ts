import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The file being written. Rotated files are named by the seq of their first record. */
export const CURRENT_FILE = 'audit.jsonl';
const ROTATED_RE = /^audit\.(\d{12})\.jsonl$/;

export function rotatedName(firstSeq: number): string {
  return `audit.${String(firstSeq).padStart(12, '0')}.jsonl`;
}

export interface AuditFile {
  path: string;
  name: string;
  /** Seq of the first record; undefined for an empty (or unreadable) current file. */
  firstSeq: number | undefined;
  current: boolean;
  size: number;
}

/** The log's files in chain order: rotated ones by first seq, then the current one. */
export function listAuditFiles(dir: string): AuditFile[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: AuditFile[] = [];
  for (const name of names) {
    const m = ROTATED_RE.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    out.push({ path, name, firstSeq: Number(m[1]), current: false, size: statSync(path).size });
  }
  out.sort((a, b) => (a.firstSeq ?? 0) - (b.firstSeq ?? 0));
  if (names.includes(CURRENT_FILE)) {
    const path = join(dir, CURRENT_FILE);
    const size = statSync(path).size;
    out.push({ path, name: CURRENT_FILE, firstSeq: size > 0 ? firstSeqOf(path) : undefined, current: true, size });
  }
  return out;
}

/** Reads the first line of a file (up to `max` bytes), or undefined. */
export function readFirstLine(path: string, max = 1 << 20): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(max, Math.max(fstatSync(fd).size, 1)));
    const n = readSync(fd, buf, 0, buf.length, 0);
    const nl = buf.subarray(0, n).indexOf(10);
    return nl < 0 ? undefined : buf.toString('utf8', 0, nl);
  } finally {
    closeSync(fd);
  }
}

function firstSeqOf(path: string): number | undefined {
  const line = readFirstLine(path);
  const m = line === undefined ? null : /"seq":(\d+)/.exec(line);
  if (!line || !m) return undefined;
  try {
    const seq = (JSON.parse(line) as { seq?: unknown }).seq;
    return typeof seq === 'number' ? seq : undefined;
  } catch {
    return undefined;
  }
}
