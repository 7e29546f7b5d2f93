/**
 * Revoked agent tokens: `<state>/keys/revoked-tokens.json`, checked on every
 * request (cached tokens too). A token is refused when its id (jti) is listed,
 * or when it was issued before its agent's revocation time.
 *
 * The file is read strictly; when it cannot be read or parsed the list is
 * "broken" and every token is refused with the reason (fail closed: a list we
 * cannot read may hold the revocation that matters). Each check compares the
 * file's identity (inode, size, mtime) with the one loaded, so a change made by
 * another process takes effect on the very next request.
 */
import { mkdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileDurablySync } from '../policy/durable-file.js';
import { z } from 'zod';
import { formatZodIssues } from '../config/zod-issues.js';
import { GatehouseError } from '../errors.js';
import { AGENT_NAME, CLOCK_TOLERANCE_S, MAX_TTL_MS } from './tokens.js';

export const REVOCATIONS_FILE = 'revoked-tokens.json';
const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** A token id as minted (a UUID), or any other printable id an admin copied. */
export const TOKEN_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const Iso = z.iso.datetime({ offset: true });
const FileSchema = z.strictObject({
  version: z.literal(1),
  tokens: z.array(z.strictObject({ jti: z.string().regex(TOKEN_ID), revokedAt: Iso })),
  agents: z.array(z.strictObject({ agent: z.string().regex(AGENT_NAME), revokedAt: Iso })),
});
type RevocationFile = z.infer<typeof FileSchema>;

export type Revocation = { jti: string; revokedAt: string } | { agent: string; revokedAt: string };

export interface RevocationCheck {
  agent: string;
  tokenId: string;
  issuedAt: Date;
}

export interface RevocationChange {
  ok: boolean;
  /** Why every token is refused (when not ok). */
  error?: string;
  tokens: number;
  agents: number;
}

type State =
  | { ok: true; jtis: Set<string>; agents: Map<string, number>; file: RevocationFile }
  | { ok: false; reason: string };

const EMPTY: RevocationFile = { version: 1, tokens: [], agents: [] };

export function revocationsPath(stateDir: string): string {
  return join(stateDir, 'keys', REVOCATIONS_FILE);
}

function stamp(st: Stats | undefined): string {
  return st === undefined ? 'absent' : `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** Parses the file's text strictly; throws with a message that names the file and the problem. */
function parse(file: string, text: string): RevocationFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message})`);
  }
  const r = FileSchema.safeParse(raw);
  if (!r.success) throw new Error(`${file}: ${formatZodIssues(r.error.issues)}`);
  return r.data;
}

function toState(file: RevocationFile): State {
  const agents = new Map<string, number>();
  for (const a of file.agents) agents.set(a.agent, Math.max(agents.get(a.agent) ?? 0, Date.parse(a.revokedAt)));
  return { ok: true, jtis: new Set(file.tokens.map((t) => t.jti)), agents, file };
}

/** The list on disk is always a whole one (policy/durable-file.ts). */
function writeDurable(path: string, text: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileDurablySync(dir, basename(path), text);
}

export class RevocationList {
  readonly file: string;
  #state: State = toState(EMPTY);
  #stamp = '';
  readonly #onChange: ((ev: RevocationChange) => void) | undefined;

  constructor(stateDir: string, opts: { onChange?: (ev: RevocationChange) => void } = {}) {
    this.file = revocationsPath(stateDir);
    this.#onChange = opts.onChange;
    this.#refresh(true);
  }

  /** Why this token must be refused, or undefined when it may pass. */
  check(t: RevocationCheck): string | undefined {
    this.#refresh();
    const s = this.#state;
    if (!s.ok) return s.reason;
    if (s.jtis.has(t.tokenId)) return 'token has been revoked; mint a new one with: gatehouse token mint --agent NAME';
    const before = s.agents.get(t.agent);
    if (before !== undefined && t.issuedAt.getTime() < before) {
      return `every token of agent "${t.agent}" issued before ${new Date(before).toISOString()} has been revoked; mint a new one with: gatehouse token mint --agent ${t.agent}`;
    }
    return undefined;
  }

  /**
   * Adds a revocation and writes the list durably. Refuses (the list is left
   * as it is) when the file on disk cannot be read: overwriting it would
   * silently bring back the tokens it revoked.
   */
  revoke(what: { jti: string } | { agent: string }, now = Date.now()): Revocation {
    if ('jti' in what && !TOKEN_ID.test(what.jti)) throw new GatehouseError('USAGE', `invalid token id ${JSON.stringify(what.jti)}: the jti printed by gatehouse token mint (a UUID)`);
    if ('agent' in what && !AGENT_NAME.test(what.agent)) throw new GatehouseError('USAGE', `invalid agent name ${JSON.stringify(what.agent)}: use 1-64 letters, digits, '.', '_', '@' or '-'`);
    const revokedAt = new Date(now).toISOString();
    const entry: Revocation = 'jti' in what ? { jti: what.jti, revokedAt } : { agent: what.agent, revokedAt };
    // Another process may write between our read and our rename: re-read until our entry is there.
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = this.#readForUpdate();
      const keepAfter = now - MAX_TTL_MS - CLOCK_TOLERANCE_S * 1000;
      // Every token issued before keepAfter has expired: its revocation can go.
      const live = <T extends { revokedAt: string }>(xs: T[]) => xs.filter((x) => Date.parse(x.revokedAt) >= keepAfter);
      const next: RevocationFile = { version: 1, tokens: live(current.tokens), agents: live(current.agents) };
      if ('jti' in entry) {
        if (!next.tokens.some((t) => t.jti === entry.jti)) next.tokens.push(entry);
      } else {
        next.agents = next.agents.filter((a) => a.agent !== entry.agent);
        next.agents.push(entry);
      }
      try {
        writeDurable(this.file, JSON.stringify(next, null, 1) + '\n');
      } catch (e) {
        throw new GatehouseError('INTERNAL', `cannot write the token revocation list ${this.file}: ${(e as Error).message}`);
      }
      this.#refresh();
      const s = this.#state;
      if (s.ok && ('jti' in entry ? s.jtis.has(entry.jti) : (s.agents.get(entry.agent) ?? 0) >= now)) return entry;
    }
    throw new GatehouseError('INTERNAL', `the token revocation list ${this.file} keeps changing under us; try again`);
  }

  #readForUpdate(): RevocationFile {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY;
      throw new GatehouseError('CONFIG_INVALID', `cannot read the token revocation list ${this.file}: ${(e as Error).message}`);
    }
    try {
      return parse(this.file, text);
    } catch (e) {
      throw new GatehouseError('CONFIG_INVALID', `the token revocation list is invalid, nothing was revoked: ${(e as Error).message}; repair it (or restore a backup) first`);
    }
  }

  /** Reloads when the file is not the one loaded last (another process wrote it, or it was removed). */
  #refresh(first = false): void {
    let st: Stats | undefined;
    let next: State;
    try {
      st = statSync(this.file, { throwIfNoEntry: false });
    } catch (e) {
      const why = `cannot stat it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
      if (this.#stamp !== `error:${why}`) this.#set(this.#broken(why), `error:${why}`, first);
      return;
    }
    const s = stamp(st);
    if (s === this.#stamp) return;
    if (st === undefined) return this.#set(toState(EMPTY), s, first);
    try {
      if (!st.isFile()) throw new Error(`${this.file} is not a regular file`);
      if (st.size > MAX_FILE_BYTES) throw new Error(`${this.file} is larger than ${MAX_FILE_BYTES} bytes`);
      next = toState(parse(this.file, readFileSync(this.file, 'utf8')));
    } catch (e) {
      next = this.#broken((e as Error).message);
    }
    this.#set(next, s, first);
  }

  #broken(why: string): State {
    return {
      ok: false,
      reason: `the token revocation list cannot be read, so every token is refused: ${why}. Repair ${this.file} (or restore a backup); removing it brings back every token it revoked`,
    };
  }

  #set(next: State, s: string, first: boolean): void {
    const was = this.#state;
    this.#state = next;
    this.#stamp = s;
    if (!this.#onChange) return;
    if (first && next.ok) return;
    if (!first && !was.ok && !next.ok && was.reason === next.reason) return;
    this.#onChange(next.ok ? { ok: true, tokens: next.jtis.size, agents: next.agents.size } : { ok: false, error: next.reason, tokens: 0, agents: 0 });
  }
}
