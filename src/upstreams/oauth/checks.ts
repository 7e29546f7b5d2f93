/**
 * Pure checks on what an MCP server and its authorization server tell the
 * gateway: each returns a verdict naming the problem (refused metadata is an
 * attack surface: it decides where the user's browser and the tokens go).
 */

export type Verdict = { ok: true } | { ok: false; reason: string };
const OK: Verdict = { ok: true };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function isLoopback(u: URL): boolean {
  return LOOPBACK.has(u.hostname);
}

/** An endpoint is https, or plain http to this machine only (OAuth 2.1 §1.5; RFC 8252 §7.3 for loopback). */
export function checkTransport(url: string, what: string): Verdict {
  if (!URL.canParse(url)) return { ok: false, reason: `${what} ${JSON.stringify(url.slice(0, 200))} is not a URL` };
  const u = new URL(url);
  if (u.protocol === 'https:') return OK;
  if (u.protocol === 'http:' && isLoopback(u)) return OK;
  return { ok: false, reason: `${what} ${u.origin} is not https (plain http is accepted for 127.0.0.1/localhost only)` };
}

/** `url` is on one of the `origins`. */
export function checkOrigin(url: string, origins: readonly string[], what: string, fix: string): Verdict {
  const o = new URL(url).origin;
  return origins.includes(o) ? OK : { ok: false, reason: `${what} is on ${o}, not on ${origins.join(' or ')}; ${fix}` };
}

/**
 * The resource a protected resource metadata document describes must be the
 * MCP server's (RFC 9728 §3.3, §7.3): the same origin, and the server's path
 * within the resource's. Otherwise the tokens would be asked for another resource.
 */
export function checkResource(resource: unknown, serverUrl: string): Verdict {
  if (typeof resource !== 'string' || !URL.canParse(resource)) return { ok: false, reason: 'its "resource" is missing or not a URL' };
  const r = new URL(resource);
  const s = new URL(serverUrl);
  if (r.origin !== s.origin) return { ok: false, reason: `it describes ${r.origin}, not ${s.origin}` };
  const rp = r.pathname.replace(/\/$/, '');
  const sp = s.pathname.replace(/\/$/, '');
  if (sp !== rp && !sp.startsWith(`${rp}/`)) return { ok: false, reason: `it describes ${r.href}, which does not cover ${s.href}` };
  return OK;
}

/** RFC 8707 §2 / MCP authorization §resource: the server's canonical URI (no fragment, lower-case scheme and host: URL does both). */
export function canonicalResource(url: string): string {
  const u = new URL(url);
  u.hash = '';
  return u.href;
}

/** Issuer identifiers compare as given (RFC 8414 §3.3), a trailing slash aside. */
export function sameIssuer(a: string, b: string): boolean {
  return a.replace(/\/$/, '') === b.replace(/\/$/, '');
}
