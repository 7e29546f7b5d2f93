/**
 * A sink's cursor: the last record it acknowledged, in `<state>/siem/<sink>.cursor`.
 * Written to a temporary file, fsynced, renamed over the old one and the
 * directory fsynced (POSIX rename is atomic; the directory fsync makes the
 * rename durable), so after a crash it is the old cursor or the new one,
 * never a mix. Read without following a symlink, and only if it is ours.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Position } from './reader.js';

export function siemDir(stateDir: string): string {
  return join(stateDir, 'siem');
}

export function cursorPath(stateDir: string, sink: string): string {
  return join(siemDir(stateDir), `${sink}.cursor`);
}

/** Creates the 0700 directory; refuses a symlink or another owner's directory. */
export function ensureSiemDir(stateDir: string): string {
  const dir = siemDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory (a symlink?)`);
  const me = process.geteuid?.();
  if (me !== undefined && st.uid !== me) throw new Error(`${dir} is owned by uid ${st.uid}, not by this process (uid ${me})`);
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  // Temporary files of a cursor write cut short by a crash (this gateway is the state's only writer: none is live).
  for (const name of readdirSync(dir)) if (/^\.[a-z0-9_-]+\.cursor\.\d+\.[0-9a-f]{8}\.tmp$/.test(name)) rmSync(join(dir, name), { force: true });
  return dir;
}

interface CursorFile extends Position {
  v: 1;
  sink: string;
  /** When it was written (for people reading the file). */
  at: string;
}

/**
 * The saved position, undefined when there is none. A cursor that cannot be
 * used (unreadable, not ours, malformed) is reported through `problem` and
 * treated as none: the sink then ships from the start again (duplicates,
 * never a loss).
 */
export function readCursor(stateDir: string, sink: string): { pos: Position | undefined; problem?: string } {
  const path = cursorPath(stateDir, sink);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { pos: undefined };
    return { pos: undefined, problem: `${path}: ${code === 'ELOOP' ? 'is a symlink' : String(code)}` };
  }
  try {
    const st = fstatSync(fd);
    const me = process.geteuid?.();
    if (!st.isFile() || st.size > 4096) return { pos: undefined, problem: `${path}: not a cursor file` };
    if (me !== undefined && st.uid !== me) return { pos: undefined, problem: `${path}: owned by uid ${st.uid}, not by this process` };
    const c = JSON.parse(readFileSync(fd, 'utf8')) as Partial<CursorFile>;
    const ok =
      c.v === 1 && Number.isSafeInteger(c.seq) && (c.seq as number) >= 0 && typeof c.hash === 'string' && /^[0-9a-f]{64}$/.test(c.hash) && Number.isSafeInteger(c.file) && Number.isSafeInteger(c.offset) && (c.offset as number) >= 0;
    if (!ok) return { pos: undefined, problem: `${path}: malformed` };
    return { pos: { seq: c.seq as number, hash: c.hash as string, file: c.file as number, offset: c.offset as number } };
  } catch (e) {
    return { pos: undefined, problem: `${path}: ${(e as Error).message}` };
  } finally {
    closeSync(fd);
  }
}

/** Saves `pos` durably (see the file comment); rejects on failure, the old cursor intact. */
export async function writeCursor(stateDir: string, sink: string, pos: Position): Promise<void> {
  const dir = siemDir(stateDir);
  const name = `${sink}.cursor`;
  const data: CursorFile = { v: 1, sink, seq: pos.seq, hash: pos.hash, file: pos.file, offset: pos.offset, at: new Date().toISOString() };
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(data)}\n`, 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, join(dir, name));
  const dh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
