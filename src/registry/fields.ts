/**
 * The fields every connector kind is built from (stdio, http, inference and
 * the built-in REST kinds of builtin-kinds.ts): names, secret-aware strings,
 * service URLs, durations, sizes, limits, and the fields all kinds share.
 */
import { z } from 'zod';
import { durationField } from '../config/duration.js';
import { globString } from '../config/glob.js';
import { SECRET_NAME, secretRefs } from '../secrets/template.js';

export const CONNECTOR_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** A value that may hold `${secret:NAME}` references, each with a valid name. */
export const templated = z.string().superRefine((v, ctx) => {
  for (const name of secretRefs(v)) {
    if (!SECRET_NAME.test(name)) ctx.addIssue({ code: 'custom', message: `invalid secret reference \${secret:${name}}: names use letters, digits, '.', '_' and '-'` });
  }
});

/** A credential: must come from the secret store, so the registry never holds its value. */
export const credential = (example: string) =>
  templated.refine((v) => secretRefs(v).length > 0, `must reference a secret, e.g. "\${secret:${example}}" (store it with: gatehouse secret set ${example})`);

export const plain = (what: string) =>
  z.string().refine((v) => secretRefs(v).length === 0, `${what} may not contain a \${secret:...} reference`);

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** A service base URL: https, or http only to a loopback host (a credential never crosses a network in clear). */
export const serviceUrl = (what: string) =>
  plain(what)
    .pipe(z.url({ protocol: /^https?$/, error: `${what}: an http(s) URL` }))
    .refine((v) => {
      const u = new URL(v);
      return u.protocol === 'https:' || LOOPBACK.has(u.hostname);
    }, `${what}: use https (plain http is accepted for 127.0.0.1/localhost only)`)
    .refine((v) => {
      const u = new URL(v);
      return u.username === '' && u.password === '' && u.search === '' && u.hash === '';
    }, `${what}: no user:password, query or fragment`);

/** Timeouts and other durations: "30s", "1h30m" (src/config/duration.ts); a bare number is refused. */
export const duration = durationField();

/** A size: bytes, or a string like "16M" (K, M, G: powers of 1024, as on the command line). */
export const size = z
  .union([z.number().int().positive(), z.string().regex(/^[0-9]+[KMG]?$/i, 'use a size like 65536, 512K or 16M')])
  .transform((v) => (typeof v === 'number' ? v : Number(/^[0-9]+/.exec(v)?.[0]) * 1024 ** ' KMG'.indexOf((/[KMG]$/i.exec(v)?.[0] ?? ' ').toUpperCase())));

/**
 * What one upstream may spend of the gateway. Every field is
 * optional; the defaults live in src/upstreams/limits.ts (README, "Limits").
 */
export const limits = z
  .strictObject({
    /** Bytes of one tool result (HTTP body or stdio line); over it the call is a tool error. */
    resultBytes: size.optional(),
    /** Per tool (upstream name globs), a smaller cap on its result than resultBytes: over it, a tool error naming the size. */
    toolResultBytes: z.record(globString, size).optional(),
    /** Tools in the upstream's list, over every page. */
    tools: z.number().int().positive().optional(),
    /** Bytes of the whole tool list. */
    toolListBytes: size.optional(),
    /** Progress and log notifications forwarded per call per second (the rest coalesced or dropped, counted). */
    notificationsPerSecond: z.number().int().positive().optional(),
    /** sampling/elicitation requests per minute (per call and per connector). */
    requestsPerMinute: z.number().int().positive().optional(),
    /** stderr bytes per second written to the gateway's log (stdio). */
    stderrBytesPerSecond: size.optional(),
    /** Tool list re-reads per minute after notifications/tools/list_changed. */
    relistsPerMinute: z.number().int().positive().optional(),
  })
  .default({});

/** The fields every tool connector kind has (stdio, http and the built-ins). */
export const common = {
  name: z.string().regex(CONNECTOR_NAME, 'lowercase letters, digits and "-", at most 32 characters, starting with a letter or digit'),
  description: z.string().max(500).optional(),
  /** Exposed tool names are `<prefix>__<tool>`; `""` exposes upstream names as they are. */
  prefix: z.string().regex(/^[a-zA-Z0-9_-]{0,32}$/).optional(),
  enabled: z.boolean().default(true),
  tools: z
    .strictObject({
      allow: z.array(globString).default(['*']),
      deny: z.array(globString).default([]),
    })
    .default({ allow: ['*'], deny: [] }),
  timeouts: z
    .strictObject({
      connect: duration.optional(),
      call: duration.optional(),
      /** The most a call may last when progress keeps resetting `call` (default: twice `call`). */
      callMax: duration.optional(),
    })
    .default({}),
  limits,
  sampling: z.enum(['allow', 'deny']).default('deny'),
  elicitation: z.enum(['allow', 'deny']).default('deny'),
  /** Tool pinning (src/tools/pins.ts): strict quarantines a changed or new tool until approved; warn serves it, audited and flagged; off. */
  pin: z.enum(['strict', 'warn', 'off']).default('strict'),
  /** What screening a tool's text finds (src/tools/screen.ts): warn shows and audits it; block also holds the tool back until approved. */
  screen: z.enum(['warn', 'block']).default('warn'),
  /** Text results screened like tool text (src/broker/result-screen.ts): flag audits findings; strip also removes invisible characters; off. */
  results: z.strictObject({ invisible: z.enum(['flag', 'strip', 'off']).default('flag') }).default({ invisible: 'flag' }),
};

/** An absolute path, plain (no `.`/`..` segments): an extra path a confined connector sees. */
export const absolutePath = plain('a path').refine((p) => p.startsWith('/') && !p.split('/').some((seg) => seg === '.' || seg === '..'), 'an absolute path without "." or ".." segments');

/** `host:port` of a connector's egress entry: a host name (globs allowed), IPv4, or [IPv6]; a port 1-65535. */
export const egressHost = plain('an egress host').superRefine((v, ctx) => {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:/@[\]]+):([0-9]{1,5})$/.exec(v);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `egress ${JSON.stringify(v.slice(0, 80))}: write host:port, e.g. "api.github.com:443" (IPv6 as "[::1]:8080")` });
    return;
  }
  const globbed = globString.safeParse(hostOf(v));
  if (!globbed.success) ctx.addIssue({ code: 'custom', message: `egress ${JSON.stringify(v.slice(0, 80))}: ${globbed.error.issues[0]?.message ?? 'invalid host'}` });
});

/** The host and port of an entry egressHost accepted (IPv6 without brackets). */
export function hostOf(entry: string): string {
  const host = entry.slice(0, entry.lastIndexOf(':'));
  return host.startsWith('[') ? host.slice(1, -1) : host;
}
export function portOf(entry: string): number {
  return Number(entry.slice(entry.lastIndexOf(':') + 1));
}
