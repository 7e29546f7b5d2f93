import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { applyEdits, modify, parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import { GatehouseError } from '../../errors.js';

/** A client's configuration file as read: its text ('' when it does not exist yet). */
export interface ConfigText {
  text: string;
  existed: boolean;
  /** Identity of what was read, to notice a client rewriting the file meanwhile. */
  stamp: string;
}

/**
 * Reads the file without following a symbolic link at its own name: a link
 * could send a token to wherever it points (another user's file, a synced
 * folder). Links in the folders above are the user's own layout and followed.
 */
export function readConfig(file: string): ConfigText {
  let fd: number;
  try {
    // O_NONBLOCK: a named pipe there would block the open (and the command) until someone writes to it.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { text: '', existed: false, stamp: 'absent' };
    if (code === 'ELOOP') throw new GatehouseError('USAGE', `${file} is a symbolic link; gatehouse does not write a token through a link. Edit the file it points to yourself (see the entry with --print), or replace the link with a file`);
    throw new GatehouseError('USAGE', `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new GatehouseError('USAGE', `${file} is not a regular file; gatehouse leaves it alone (see the entry with --print)`);
    return { text: readFileSync(fd, 'utf8'), existed: true, stamp: `${st.ino}:${st.size}:${st.mtimeMs}` };
  } finally {
    closeSync(fd);
  }
}

function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `${before.length}:${(before.at(-1)?.length ?? 0) + 1}`;
}

function unparsable(file: string, where: string, what: string): GatehouseError {
  return new GatehouseError('CONFIG_INVALID', `${file}:${where}: ${what}; the file was not changed. Fix it (or move it away) and run the command again, or add the entry by hand (see it with --print)`);
}

/** Sets `keyPath` in a JSON (or JSONC: VS Code allows comments) document, keeping every other key, comment and the layout. */
export function mergeJson(file: string, text: string, keyPath: readonly string[], value: unknown): string {
  const source = text.trim() === '' ? '{}' : text;
  const errors: ParseError[] = [];
  const doc: unknown = parseJsonc(source, errors, { allowTrailingComma: true, disallowComments: false });
  const first = errors[0];
  if (first !== undefined) throw unparsable(file, lineCol(source, first.offset), `not valid JSON (${printParseErrorCode(first.error)})`);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw unparsable(file, '1:1', 'the top level is not a JSON object');
  let node: unknown = doc;
  for (const k of keyPath.slice(0, -1)) {
    node = (node as Record<string, unknown>)[k];
    if (node === undefined) break;
    if (typeof node !== 'object' || node === null || Array.isArray(node)) throw unparsable(file, '1:1', `"${k}" is not a JSON object`);
  }
  const edits = modify(source, [...keyPath], value, { formattingOptions: { insertSpaces: true, tabSize: 2, eol: '\n' } });
  const out = applyEdits(source, edits);
  // What we wrote must read back as the old document plus the entry.
  const check = parseJsonc(out, [], { allowTrailingComma: true });
  if (!isDeepStrictEqual(getPath(check, keyPath), value)) throw new GatehouseError('INTERNAL', `could not place the entry in ${file}; the file was not changed`);
  return out.endsWith('\n') ? out : `${out}\n`;
}

/** Whether keyPath is set in the (already validated) text. */
export function hasEntry(format: 'json' | 'toml', text: string, keyPath: readonly string[]): boolean {
  if (text.trim() === '') return false;
  return getPath(format === 'json' ? parseJsonc(text, [], { allowTrailingComma: true }) : parseToml(text), keyPath) !== undefined;
}

function getPath(doc: unknown, keyPath: readonly string[]): unknown {
  let node = doc;
  for (const k of keyPath) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[k] : undefined;
  return node;
}

/**
 * Sets `[table.name]` in a TOML document. A new entry is appended to the text,
 * so comments and layout stay; replacing an existing one re-serializes the
 * document (TOML libraries keep no comments), said in `commentsDropped`.
 */
export function mergeToml(file: string, text: string, keyPath: readonly [string, string], value: Record<string, unknown>): { text: string; commentsDropped: boolean } {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof TomlError) throw unparsable(file, `${e.line}:${e.column}`, `not valid TOML (${e.message.split('\n')[0] ?? ''})`);
    throw e;
  }
  const [table, name] = keyPath;
  const parent = doc[table];
  if (parent !== undefined && (typeof parent !== 'object' || parent === null || Array.isArray(parent))) throw unparsable(file, '1:1', `"${table}" is not a table`);
  const want = { ...doc, [table]: { ...(parent as Record<string, unknown> | undefined), [name]: value } };
  if (parent === undefined || !(name in (parent as Record<string, unknown>))) {
    const appended = `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${text === '' ? '' : '\n'}${stringifyToml({ [table]: { [name]: value } })}\n`;
    try {
      if (isDeepStrictEqual(parseToml(appended), parseToml(stringifyToml(want)))) return { text: appended, commentsDropped: false };
    } catch {
      // E.g. the table is written inline (mcp_servers = { … }): an appended [mcp_servers.x] would redefine it.
    }
  }
  return { text: `${stringifyToml(want)}\n`, commentsDropped: /^\s*#/m.test(text) };
}

/**
 * Replaces the file atomically: a fresh temporary file (O_EXCL, so an
 * attacker's link at that name is not followed) in the same folder, mode 0600
 * because it holds a token, flushed, then renamed over the target.
 */
export function writeConfigAtomic(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
