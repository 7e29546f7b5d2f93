/**
 * DNS-rebinding protection (MCP 2025-11-25, transports §"Security Warning":
 * servers MUST validate the Origin header). Pure functions returning a verdict.
 */
export type GuardVerdict = { ok: true } | { ok: false; status: 403; message: string };

/** A Host value with its port ("name:8931", "[::1]:8931"), as opposed to a bare name. */
const WITH_PORT = /:\d+$/;

/**
 * Host header values accepted for a listener on `port`, plus admin-configured
 * extras (`serve --allowed-host`): `NAME:PORT` as given, a bare `NAME` on the listener's port.
 */
export function allowedHosts(port: number, extra: readonly string[] = []): Set<string> {
  // A client omits the port only when it is the scheme's default (RFC 9110 §7.2).
  const extras = extra.map((h) => h.trim().toLowerCase()).flatMap((h) => (WITH_PORT.test(h) ? [h] : port === 80 ? [`${h}:80`, h] : [`${h}:${port}`]));
  return new Set(['localhost', '127.0.0.1', '[::1]'].map((h) => `${h}:${port}`).concat(extras));
}

export function allowedOrigins(port: number, extra: readonly string[] = []): Set<string> {
  return new Set(['localhost', '127.0.0.1', '[::1]'].map((h) => `http://${h}:${port}`).concat(extra.map((o) => o.toLowerCase())));
}

/** Characters of a host name or address; anything else is not repeated in a hint. */
const HOST_CHARS = /^[a-z0-9.\-[\]:]{1,100}$/i;

export function checkHost(host: string | undefined, allowed: ReadonlySet<string>): GuardVerdict {
  if (host === undefined || host === '') return { ok: false, status: 403, message: 'Forbidden: missing Host header' };
  if (!allowed.has(host.toLowerCase())) {
    const flag = `--allowed-host ${HOST_CHARS.test(host) ? host.toLowerCase() : 'NAME'}`;
    return {
      ok: false,
      status: 403,
      message: `Forbidden: Host ${JSON.stringify(host.slice(0, 100))} is not allowed; allow it with: gatehouse serve ${flag}`,
    };
  }
  return { ok: true };
}

/** A request without Origin is not from a browser and passes; any Origin must be listed (incl. "null"). */
export function checkOrigin(origin: string | undefined, allowed: ReadonlySet<string>): GuardVerdict {
  if (origin === undefined) return { ok: true };
  if (!allowed.has(origin.toLowerCase())) return { ok: false, status: 403, message: `Forbidden: Origin ${JSON.stringify(origin.slice(0, 100))} is not allowed` };
  return { ok: true };
}
