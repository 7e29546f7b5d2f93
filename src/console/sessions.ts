/**
 * Console logins: one-time login secrets (made for an admin over the admin
 * API, exchanged once by the page for a session) and the sessions they open.
 * A session is two secrets that only open it together: an HttpOnly cookie and
 * a token the page keeps in sessionStorage and sends as a header. Cookies do
 * not respect ports, so any page on another loopback port may see (or set) the
 * cookie; it never sees the token, which only the login answer carries.
 * Secrets and cookies are random 256-bit values; only their SHA-256 is kept,
 * and a presented value is looked up by its hash; the token is compared in
 * constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { systemClock, type Clock } from '../policy/grants.js';

export interface ConsoleSession {
  /** Stable and not secret: what audit records name ("console:cs_…"). Never the cookie. */
  id: string;
  /** The session token: sent by the page in a header with every request; only the login answer ever carries it. */
  csrf: string;
  createdAt: number;
  /** The session ends at this time whatever it does (absolute lifetime). */
  expiresAt: number;
  lastSeen: number;
}

export interface SessionLimits {
  /** How long a login URL can be used (default 2 min). */
  loginTtlMs: number;
  /** A session ends this long after login (default 12 h). */
  sessionTtlMs: number;
  /** …or after this long without a request (default 1 h). */
  idleMs: number;
  /** Login URLs waiting at once; the oldest is dropped beyond it. */
  maxLogins: number;
  /** Sessions at once; the least recently used is ended beyond it. */
  maxSessions: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { loginTtlMs: 120_000, sessionTtlMs: 12 * 3_600_000, idleMs: 3_600_000, maxLogins: 16, maxSessions: 32 };

const token = (): string => randomBytes(32).toString('base64url');
const digest = (s: string): string => createHash('sha256').update(s).digest('base64url');
/** What a presented secret must look like before it is even hashed (43 base64url characters). */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export type LoginVerdict = { ok: true; cookie: string; session: ConsoleSession } | { ok: false; reason: string };

export class ConsoleSessions {
  readonly #clock: Clock;
  readonly #l: SessionLimits;
  /** Login secret hash → when it stops working. Insertion order is age order. */
  readonly #logins = new Map<string, number>();
  /** Cookie hash → session. Map order is least recently used first. */
  readonly #sessions = new Map<string, ConsoleSession>();

  constructor(opts: { clock?: Clock; limits?: Partial<SessionLimits> } = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#l = { ...DEFAULT_SESSION_LIMITS, ...opts.limits };
  }

  get limits(): Readonly<SessionLimits> {
    return this.#l;
  }

  /** A new one-time login secret (goes into the URL fragment, never to the server in a request line). */
  issueLogin(): { secret: string; expiresAt: number } {
    this.#prune();
    const secret = token();
    const expiresAt = this.#clock.now() + this.#l.loginTtlMs;
    this.#logins.set(digest(secret), expiresAt);
    while (this.#logins.size > this.#l.maxLogins) this.#logins.delete(this.#logins.keys().next().value as string);
    return { secret, expiresAt };
  }

  /** Exchanges a login secret for a session: once, before it expires. A used, expired or unknown secret gets one and the same answer. */
  login(secret: unknown): LoginVerdict {
    const refused: LoginVerdict = { ok: false, reason: 'this login link is not valid: it was used already, has expired, or was never issued; run gatehouse console for a new one' };
    if (typeof secret !== 'string' || !TOKEN_SHAPE.test(secret)) return refused;
    const key = digest(secret);
    const until = this.#logins.get(key);
    // Single use: gone on the first attempt, whatever follows.
    this.#logins.delete(key);
    const now = this.#clock.now();
    if (until === undefined || now >= until) return refused;
    const cookie = token();
    const session: ConsoleSession = { id: `cs_${randomBytes(6).toString('hex')}`, csrf: token(), createdAt: now, expiresAt: now + this.#l.sessionTtlMs, lastSeen: now };
    this.#sessions.set(digest(cookie), session);
    while (this.#sessions.size > this.#l.maxSessions) this.#sessions.delete(this.#sessions.keys().next().value as string);
    return { ok: true, cookie, session };
  }

  /**
   * The live session that one of `cookies` opens together with `token` (counts as activity), or undefined.
   * Every cookie of the name is tried: another port's page can set one of its own that the browser sends first.
   */
  authenticate(cookies: readonly string[], token: string | undefined): ConsoleSession | undefined {
    if (token === undefined) return undefined;
    const now = this.#clock.now();
    for (const cookie of cookies) {
      if (!TOKEN_SHAPE.test(cookie)) continue;
      const key = digest(cookie);
      const s = this.#sessions.get(key);
      if (s === undefined) continue;
      if (now >= s.expiresAt || now - s.lastSeen >= this.#l.idleMs) {
        this.#sessions.delete(key);
        continue;
      }
      if (!csrfMatches(s, token)) continue;
      s.lastSeen = now;
      this.#sessions.delete(key);
      this.#sessions.set(key, s);
      return s;
    }
    return undefined;
  }

  /** Whether `s` is still open (for long-lived streams, without counting as activity). */
  alive(s: ConsoleSession): boolean {
    const now = this.#clock.now();
    return now < s.expiresAt && now - s.lastSeen < this.#l.idleMs && [...this.#sessions.values()].includes(s);
  }

  /** Ends `s` (log out). */
  end(s: ConsoleSession): void {
    for (const [k, v] of this.#sessions) if (v === s) this.#sessions.delete(k);
  }

  /** Ends every session (the gateway stops). */
  clear(): void {
    this.#logins.clear();
    this.#sessions.clear();
  }

  #prune(): void {
    const now = this.#clock.now();
    for (const [k, until] of this.#logins) if (now >= until) this.#logins.delete(k);
  }
}

/** Constant-time comparison of a presented session token with the session's. */
export function csrfMatches(session: ConsoleSession, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}
