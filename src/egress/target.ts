/**
 * Where a proxy request wants to go, parsed strictly (a pure function): the
 * authority of `CONNECT host:port` (RFC 9110 §9.3.6) or of an absolute-form
 * `http://host[:port]/path` (RFC 9112 §3.2.2). Anything ambiguous is refused
 * with a reason rather than guessed at: a policy decided on one reading of a
 * host must not connect to another.
 */
import { canonicalIp } from '../policy/egress.js';

export interface EgressTarget {
  /** Lower case, no trailing dot; or a canonical IP literal (IPv6 without brackets). */
  host: string;
  port: number;
  /** true when `host` is an IP literal (nothing to resolve). */
  literal: boolean;
}

/** Plain HTTP: the target, plus the path (before "?") and the path with query as sent. */
export interface HttpTarget extends EgressTarget {
  path: string;
  pathAndQuery: string;
  /** The Host header to send: the authority as written. */
  authority: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const MAX_AUTHORITY = 300;
const MAX_URL = 8_192;
// RFC 1123 labels, plus "_" (seen in real names); at most 63 characters each.
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

function parseHost(raw: string): Parsed<{ host: string; literal: boolean }> {
  if (raw.startsWith('[')) {
    if (!raw.endsWith(']')) return { ok: false, reason: 'unclosed "[" in an IPv6 address' };
    const inner = raw.slice(1, -1);
    const ip = inner.includes(':') ? canonicalIp(inner) : undefined;
    if (ip === undefined) return { ok: false, reason: 'not an IPv6 address in [ ] (zone ids are not accepted)' };
    return { ok: true, value: { host: ip, literal: true } };
  }
  const ip = canonicalIp(raw);
  if (ip !== undefined) return { ok: true, value: { host: ip, literal: true } };
  const name = (raw.endsWith('.') ? raw.slice(0, -1) : raw).toLowerCase();
  if (name.length === 0 || name.length > 253) return { ok: false, reason: 'host name empty or longer than 253 characters' };
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return { ok: false, reason: 'not a host name (letters, digits, "-", "_" and dots; IDNs in punycode)' };
  // No top-level domain is numeric: "127.1", "2130706433" or "0x7f.1" are addresses in disguise.
  if (/^(?:\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1] as string)) return { ok: false, reason: 'not a canonical IPv4 address (write four decimal parts)' };
  return { ok: true, value: { host: name, literal: false } };
}

/** `host:port`, `[v6]:port`; without a port `defaultPort` is used when given. */
export function parseAuthority(s: string, defaultPort?: number): Parsed<EgressTarget> {
  if (s.length === 0 || s.length > MAX_AUTHORITY) return { ok: false, reason: `authority empty or longer than ${MAX_AUTHORITY} characters` };
  if (s.includes('@')) return { ok: false, reason: 'userinfo ("user@") is not accepted in a proxy target' };
  const m = /^(\[[^\]]*\]|[^:[\]]*)(?::([^:]*))?$/.exec(s);
  if (m === null) return { ok: false, reason: 'not host:port (write an IPv6 address as [addr]:port)' };
  const [, rawHost = '', rawPort] = m;
  let port: number;
  if (rawPort === undefined) {
    if (defaultPort === undefined) return { ok: false, reason: 'CONNECT needs host:port' };
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(rawPort)) return { ok: false, reason: 'port: digits only' };
    port = Number(rawPort);
    if (port < 1 || port > 65_535) return { ok: false, reason: 'port: 1 to 65535' };
  }
  const host = parseHost(rawHost);
  if (!host.ok) return host;
  return { ok: true, value: { ...host.value, port } };
}

/** The request target of a plain-HTTP proxy request: `http://authority[/path][?query]`. */
export function parseHttpUrl(url: string): Parsed<HttpTarget> {
  if (url.length > MAX_URL) return { ok: false, reason: `URL longer than ${MAX_URL} characters` };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (scheme === null) return { ok: false, reason: 'this is a proxy: send an absolute URL (http://host/path), or CONNECT host:port' };
  if ((scheme[1] as string).toLowerCase() !== 'http') return { ok: false, reason: `${scheme[1] ?? ''}: only http:// is forwarded; use CONNECT host:port for https` };
  const rest = url.slice(scheme[0].length);
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  let pathAndQuery = end === -1 ? '/' : rest.slice(end);
  if (pathAndQuery.includes('#')) return { ok: false, reason: 'a fragment ("#") is not sent to a server' };
  if (pathAndQuery.startsWith('?')) pathAndQuery = `/${pathAndQuery}`;
  const target = parseAuthority(authority, 80);
  if (!target.ok) return target;
  const q = pathAndQuery.indexOf('?');
  return { ok: true, value: { ...target.value, authority, pathAndQuery, path: q === -1 ? pathAndQuery : pathAndQuery.slice(0, q) } };
}
