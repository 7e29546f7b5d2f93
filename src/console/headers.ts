/**
 * The headers every console response carries. The page loads only its own
 * files (no inline script or style, nothing from elsewhere), cannot be framed,
 * and leaks no URL (the login secret is in a fragment, which no Referer carries
 * anyway: RFC 9110 §10.1.3).
 */
import type { MiddlewareHandler } from 'hono';

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
  // Admin data: never kept by the browser or a proxy.
  'cache-control': 'no-store',
};

/** Sets the security headers on every answer, errors and 404s included. */
export const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
};
