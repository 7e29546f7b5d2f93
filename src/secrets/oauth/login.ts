/**
 * An upstream OAuth login as it is kept in the OS keychain: one entry per
 * connector (`NAME.oauth`) or per connector and agent
 * (`NAME.oauth.agent.AGENT`, `oauth: { per: agent }`), holding the client it
 * was made with and its tokens. A name that starts with the connector's is
 * bound to that connector (bindings.ts, rule 1). Pure: parsing, naming,
 * redaction and the state line of `connector list`; no I/O.
 */
import { z } from 'zod';
import { formatDuration } from '../../config/duration.js';
import type { Redactor } from '../redact.js';
import { checkHeaderValue } from '../safety.js';

const LOGIN_SUFFIX = '.oauth';
const AGENT_PART = '.agent.';

/** The keychain entry of a connector's login (or one agent's). */
export function loginEntry(connector: string, agent?: string): string {
  return agent === undefined ? `${connector}${LOGIN_SUFFIX}` : `${connector}${LOGIN_SUFFIX}${AGENT_PART}${agent}`;
}

/** The agent whose login `name` is, for `connector` (undefined: not a per-agent login of it). */
export function agentOfEntry(connector: string, name: string): string | undefined {
  const prefix = `${connector}${LOGIN_SUFFIX}${AGENT_PART}`;
  return name.startsWith(prefix) && name.length > prefix.length ? name.slice(prefix.length) : undefined;
}

/** Whether `name` is a login entry of `connector` (its own or one of its agents'). */
export function isLoginEntryOf(connector: string, name: string): boolean {
  return name === loginEntry(connector) || agentOfEntry(connector, name) !== undefined;
}

/** Whether `name` looks like a login entry of some connector. */
export function isLoginEntry(name: string): boolean {
  return /^[a-z0-9][a-z0-9-]{0,31}\.oauth(\.agent\..+)?$/.test(name);
}

/** A token as it goes into `Authorization: Bearer …`: visible ASCII only (a CR/LF would start a new header). */
const headerSafe = z.string().min(1).max(16_384).refine((v) => checkHeaderValue(v).ok && !/\s/.test(v), 'not usable in an HTTP header (control characters or spaces)');

export const OAuthLoginSchema = z.strictObject({
  v: z.literal(1),
  /** The authorization server (its issuer identifier, RFC 8414 §2). */
  issuer: z.url(),
  /** The resource the tokens are for (RFC 8707): the MCP server's canonical URI. */
  resource: z.url(),
  /** Where it is refreshed (from the server's metadata, checked at login). */
  tokenEndpoint: z.url(),
  clientId: z.string().min(1).max(2048),
  /** A dynamically registered client's secret (RFC 7591 §3.2.1); a pre-registered client's stays a ${secret:} of the registry. */
  clientSecret: z.string().min(1).max(4096).optional(),
  /** How the client authenticates at the token endpoint. */
  clientAuth: z.enum(['none', 'client_secret_basic', 'client_secret_post']),
  accessToken: headerSafe,
  refreshToken: z.string().min(1).max(16_384).optional(),
  /** When the access token expires (ms since the epoch); absent: the server did not say. */
  expiresAt: z.number().int().positive().optional(),
  /** When it was issued (ms since the epoch). */
  obtainedAt: z.number().int().positive(),
  scope: z.string().max(4096).optional(),
});

export type OAuthLogin = z.output<typeof OAuthLoginSchema>;

/** The stored text of a login, or undefined when it is not one (a corrupt or foreign entry). */
export function parseLogin(text: string): OAuthLogin | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const r = OAuthLoginSchema.safeParse(raw);
  return r.success ? r.data : undefined;
}

export function serializeLogin(login: OAuthLogin): string {
  return JSON.stringify(OAuthLoginSchema.parse(login));
}

/** Teaches the redactor a login's secrets (tokens, client secret), each under the entry's name; an unparsable entry is learned whole. */
export function learnLogin(redactor: Redactor, name: string, text: string): void {
  const login = parseLogin(text);
  if (login === undefined) return redactor.learn(name, text);
  for (const v of [login.accessToken, login.refreshToken, login.clientSecret]) if (v !== undefined) redactor.learn(name, v);
}

/**
 * When to refresh: ahead of expiry by a margin (two minutes, or half the
 * token's life when that is shorter), so a call never carries a token that
 * expires on the way.
 */
export function refreshDueAt(login: OAuthLogin): number | undefined {
  if (login.expiresAt === undefined) return undefined;
  const life = Math.max(0, login.expiresAt - login.obtainedAt);
  return login.expiresAt - Math.min(120_000, life / 2);
}

/** The `connector list` note: "oauth: expires in 58 min, refreshes itself". */
export function loginNote(login: OAuthLogin, now: number): string {
  const refreshes = login.refreshToken !== undefined;
  if (login.expiresAt === undefined) return `oauth: no expiry given${refreshes ? ', refreshes itself' : ''}`;
  const left = login.expiresAt - now;
  const when = left <= 0 ? 'expired' : `expires in ${left >= 60_000 ? `${Math.floor(left / 60_000)} min` : formatDuration(left)}`;
  return `oauth: ${when}, ${refreshes ? 'refreshes itself' : 'no refresh token: log in again when it expires'}`;
}
