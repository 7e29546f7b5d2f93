/**
 * DNS-rebinding protection (MCP 2025-11-25, transports §"Security Warning":
 * servers MUST validate the Origin header). Pure functions returning a verdict.
 */
export type GuardVerdict = { ok: true } | { ok: false; status: 403; message: string };

/** Host header values accepted for a listener on `port`, plus admin-configured extras. */
export function allowedHosts(port: number, extra: readonly string[] = []): Set<string> {
  return new Set(['localhost', '127.0.0.1', '[::1]'].map((h) => `${h}:${port}`).concat(extra.map((h) => h.toLowerCase())));
}

export function allowedOrigins(port: number, extra: readonly string[] = []): Set<string> {
  return new Set(['localhost', '127.0.0.1', '[::1]'].map((h) => `http://${h}:${port}`).concat(extra.map((o) => o.toLowerCase())));
}

export function checkHost(host: string | undefined, allowed: ReadonlySet<string>): GuardVerdict {
  if (host === undefined || host === '') return { ok: false, status: 403, message: 'Forbidden: missing Host header' };
  if (!allowed.has(host.toLowerCase())) return { ok: false, status: 403, message: `Forbidden: Host ${JSON.stringify(host.slice(0, 100))} is not allowed` };
  return { ok: true };
}

/** A request without Origin is not from a browser and passes; any Origin must be listed (incl. "null"). */
export function checkOrigin(origin: string | undefined, allowed: ReadonlySet<string>): GuardVerdict {
  if (origin === undefined) return { ok: true };
  if (!allowed.has(origin.toLowerCase())) return { ok: false, status: 403, message: `Forbidden: Origin ${JSON.stringify(origin.slice(0, 100))} is not allowed` };
  return { ok: true };
}
