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
export async function scanLines(path: string, from: number, to: number, visit: LineVisitor, onChunk?: (done: number) => void | Promise<void>): Promise<ScanResult> {
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
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
        if (visit(buf, start, nl, base + start) === false) return { position: base + nl + 1, stopped: true };
        start = nl + 1;
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
export async function scanLinesReverse(path: string, from: number, to: number, visit: LineVisitor): Promise<ScanResult> {
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
