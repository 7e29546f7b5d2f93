import { open } from 'node:fs/promises';

const CHUNK = 8 << 20;

/** Called per complete line: bytes [start, end) of `buf` (no newline), at file offset `offset`. Return false to stop. */
export type LineVisitor = (buf: Buffer, start: number, end: number, offset: number) => boolean | void;

export interface ScanResult {
  /** asc: offset after the last line visited; desc: offset of the last line visited. */
  position: number;
  stopped: boolean;
  /** Bytes after the last newline (a torn or in-flight line), asc only. */
  partial?: { offset: number; length: number; text: string };
}

/**
 * Visits the complete lines of a file in [from, to) in order, reading in big
 * chunks; lines are never copied unless the visitor does. Between chunks the
 * event loop runs (so a large query does not stall a server).
 */
/** Picks the lines worth visiting in buf [0, end) (all complete lines), as [start, end) pairs in order. */
export type LineSelector = (buf: Buffer, end: number) => number[];

export async function scanLines(
  path: string,
  from: number,
  to: number,
  visit: LineVisitor,
  onChunk?: (done: number) => void | Promise<void>,
  select?: LineSelector,
): Promise<ScanResult> {
  const fh = await open(path, 'r');
  try {
    let pos = from;
    let carry: Buffer = Buffer.alloc(0);
    while (pos < to) {
      const want = Math.min(CHUNK, to - pos);
      const chunk = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(chunk, 0, want, pos);
      if (bytesRead === 0) break;
      const buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      const base = pos - carry.length;
      let start = 0;
      if (select) {
        const last = buf.lastIndexOf(10);
        const ranges = last < 0 ? [] : select(buf, last);
        for (let i = 0; i < ranges.length; i += 2) {
          const ls = ranges[i] as number;
          const le = ranges[i + 1] as number;
          if (visit(buf, ls, le, base + ls) === false) return { position: base + le + 1, stopped: true };
        }
        start = last + 1;
      } else {
        for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
          if (visit(buf, start, nl, base + start) === false) return { position: base + nl + 1, stopped: true };
          start = nl + 1;
        }
      }
      carry = buf.subarray(start);
      pos += bytesRead;
      await onChunk?.(pos);
    }
    const end = pos - carry.length;
    return carry.length ? { position: end, stopped: false, partial: { offset: end, length: carry.length, text: carry.toString('utf8') } } : { position: end, stopped: false };
  } finally {
    await fh.close();
  }
}

/** Visits complete lines in [from, to) from the last to the first. `to` must be a line boundary. */
export async function scanLinesReverse(path: string, from: number, to: number, visit: LineVisitor, select?: LineSelector): Promise<ScanResult> {
  const fh = await open(path, 'r');
  try {
    let pos = to;
    let carry: Buffer = Buffer.alloc(0);
    while (pos > from) {
      const want = Math.min(CHUNK, pos - from);
      const chunk = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(chunk, 0, want, pos - want);
      if (bytesRead < want) throw new Error(`short read in ${path}`);
      pos -= want;
      const buf = carry.length ? Buffer.concat([chunk, carry]) : chunk;
      carry = Buffer.alloc(0);
      if (select) {
        // Complete lines start after the first newline (or at 0 when buf starts the range).
        const lo = pos > from ? buf.indexOf(10) + 1 : 0;
        if (lo >= buf.length) {
          carry = buf;
          continue;
        }
        const sub = buf.subarray(lo, buf.length - 1);
        const ranges = select(sub, sub.length);
        for (let i = ranges.length - 2; i >= 0; i -= 2) {
          const ls = lo + (ranges[i] as number);
          const le = lo + (ranges[i + 1] as number);
          if (visit(buf, ls, le, pos + ls) === false) return { position: pos + ls, stopped: true };
        }
        carry = buf.subarray(0, lo);
        continue;
      }
      // buf ends with a newline; a line is complete once the newline before it is in buf (or buf starts the range).
      let end = buf.length - 1;
      while (end >= 0) {
        const nl = end === 0 ? -1 : buf.lastIndexOf(10, end - 1);
        if (nl < 0 && pos > from) {
          carry = buf.subarray(0, end + 1);
          break;
        }
        if (visit(buf, nl + 1, end, pos + nl + 1) === false) return { position: pos + nl + 1, stopped: true };
        end = nl;
      }
    }
    return { position: from, stopped: false };
  } finally {
    await fh.close();
  }
}

/**
 * Lines of `buf` [0, end) that contain `needle`, as [start, end) pairs in
 * file order: jumps from hit to hit (native search) instead of visiting
 * every line, which is what makes a selective query over a big log fast.
 */
export function linesWith(buf: Buffer, limitEnd: number, needle: Buffer, others: Buffer[]): number[] {
  const out: number[] = [];
  let pos = 0;
  for (;;) {
    const hit = buf.indexOf(needle, pos);
    if (hit < 0 || hit >= limitEnd) break;
    const ls = hit === 0 ? 0 : buf.lastIndexOf(10, hit - 1) + 1;
    let le = buf.indexOf(10, hit);
    if (le < 0 || le > limitEnd) le = limitEnd;
    pos = le + 1;
    if (hit + needle.length > le) continue;
    let all = true;
    if (others.length > 0) {
      const line = buf.subarray(ls, le);
      for (const n of others) if (line.indexOf(n) < 0) { all = false; break; }
    }
    if (all) out.push(ls, le);
  }
  return out;
}
