/**
 * The SIEM shipping file (`gatehouse serve --siem FILE`, env GATEHOUSE_SIEM):
 * a list of sinks, each read behind the audit writer and shipped to on its
 * own cursor. Strict: a misspelt key is an error naming the file, line and
 * key, like every other configuration file. Credentials only as
 * `${secret:NAME}` (read from the keychain when sent, redacted everywhere).
 */
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { durationField } from '../../config/duration.js';
import { ConfigError, loadYamlConfig } from '../../config/load-yaml.js';
import { FORMATS } from './encode.js';

// `${secret:NAME}`, as src/secrets/template.ts reads it (telemetry may not import secrets; a test checks both agree).
const SECRET_REF = /\$\{secret:([^}]*)\}/g;
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Names referenced by a value, as written (an invalid name included, for the check to name it). */
export function secretNames(value: string): string[] {
  return [...value.matchAll(SECRET_REF)].map((m) => m[1] ?? '');
}

export const SINK_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** Header names a sink may not set: they would reframe or redirect the request (RFC 9110 §7.2, §7.6.1). */
const ROUTING_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'keep-alive', 'proxy-connection', 'expect', 'content-type']);
/** Header names whose value is a credential: it must come from the keychain. */
const CREDENTIAL_HEADER = /auth|token|key|secret|cookie|password|signature/i;

const secretRefsValid = (v: string, ctx: z.RefinementCtx) => {
  for (const name of secretNames(v)) {
    if (!SECRET_NAME.test(name)) ctx.addIssue({ code: 'custom', message: `invalid secret reference \${secret:${name}}: names use letters, digits, '.', '_' and '-'` });
  }
};

/** A value that is exactly one secret reference. */
const secretOnly = (example: string) =>
  z.string().superRefine((v, ctx) => {
    if (!/^\$\{secret:[^}]*\}$/.test(v)) {
      ctx.addIssue({ code: 'custom', message: `must be a secret reference, e.g. "\${secret:${example}}" (store the value with: gatehouse secret set ${example}); the file never holds a credential` });
      return;
    }
    secretRefsValid(v, ctx);
  });

const headers = z
  .record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a header name (RFC 9110 token)'), z.string().superRefine(secretRefsValid))
  .superRefine((h, ctx) => {
    for (const [name, value] of Object.entries(h)) {
      if (ROUTING_HEADERS.has(name.toLowerCase())) ctx.addIssue({ code: 'custom', path: [name], message: `the gateway sets ${name} itself` });
      else if (CREDENTIAL_HEADER.test(name) && secretNames(value).length === 0) {
        ctx.addIssue({ code: 'custom', path: [name], message: `a credential header must reference a secret, e.g. "Bearer \${secret:siem-token}" (store it with: gatehouse secret set siem-token)` });
      }
    }
  });

/** An http(s) URL; plain http only to loopback (a credential never crosses a network in clear), no user:password. */
const url = z
  .string()
  .superRefine((v, ctx) => {
    if (secretNames(v).length > 0) ctx.addIssue({ code: 'custom', message: 'a URL may not contain a ${secret:...} reference: put credentials in a header' });
  })
  .pipe(z.url({ protocol: /^https?$/, error: 'an http(s) URL' }))
  .refine((v) => {
    const u = new URL(v);
    return u.username === '' && u.password === '';
  }, 'no user:password in the URL: put credentials in a header with ${secret:NAME}')
  .refine((v) => {
    const u = new URL(v);
    return u.protocol === 'https:' || LOOPBACK.has(u.hostname);
  }, 'use https (plain http is accepted for 127.0.0.1/localhost only)');

/** A PEM file given by absolute path, present when the file is loaded. */
const pemFile = z
  .string()
  .refine((p) => isAbsolute(p), 'an absolute path')
  .refine((p) => !isAbsolute(p) || existsSync(p), 'no such file');

/** A size: bytes, or "512K", "1M" (powers of 1024). */
const size = (min: number, max: number) =>
  z
    .union([z.number().int(), z.string().regex(/^[0-9]+[KM]?$/i, 'use a size like 65536, 512K or 1M')])
    .transform((v) => (typeof v === 'number' ? v : Number(/^[0-9]+/.exec(v)?.[0]) * 1024 ** ' KM'.indexOf((/[KM]$/i.exec(v)?.[0] ?? ' ').toUpperCase())))
    .refine((n) => n >= min && n <= max, `between ${min} and ${max} bytes`);

/** What every sink has: where it starts, how it batches, retries and waits. */
const common = {
  name: z.string().regex(SINK_NAME, 'a sink name: lower-case letters, digits, "-" and "_" (it names the cursor file)'),
  /** `ocsf` (default): OCSF 1.6.0 events; `jsonl`: the audit records as stored. */
  format: z.enum(FORMATS).default('ocsf'),
  /** Where a sink without a cursor starts: the log's first record (default) or its end (history is not sent). */
  start: z.enum(['beginning', 'end']).default('beginning'),
  batchRecords: z.number().int().min(1).max(10_000).default(500),
  batchBytes: size(1024, 16 << 20).default(512 * 1024),
  /** One send (connect, write, answer) may take this long; then it is retried. */
  timeout: durationField({ min: 100, max: 10 * 60_000 }).default(30_000),
  /** Back-off between failed sends: exponential from `initial` to `max`, with full jitter. */
  retry: z.strictObject({ initial: durationField({ min: 1, max: 60_000 }).default(1_000), max: durationField({ min: 1, max: 3_600_000 }).default(60_000) }).default({ initial: 1_000, max: 60_000 }),
  /** How often the log is checked for new records when the sink has caught up. */
  poll: durationField({ min: 10, max: 60_000 }).default(1_000),
};

export const SyslogSinkSchema = z.strictObject({
  ...common,
  kind: z.literal('syslog'),
  /** `tcp` (RFC 6587 octet counting) or `tls` (RFC 5425). */
  transport: z.enum(['tcp', 'tls']),
  host: z.string().min(1).max(253),
  port: z.number().int().min(1).max(65535).optional(),
  /** TLS: the CA that signed the receiver's certificate (default: the system's). */
  ca: pemFile.optional(),
  /** TLS client certificate and key (mutual TLS, RFC 5425 §5.1). */
  cert: pemFile.optional(),
  key: pemFile.optional(),
  /** TLS: the name the receiver's certificate must carry (default: host). */
  servername: z.string().min(1).max(253).optional(),
  /** Syslog facility (RFC 5424 §6.2.1); default 13, log audit. */
  facility: z.number().int().min(0).max(23).default(13),
  appName: z.string().regex(/^[\x21-\x7e]{1,48}$/, 'printable ASCII, no spaces, at most 48 characters (RFC 5424 APP-NAME)').default('gatehouse'),
  /** SD-ID of the structured-data element (RFC 5424 §6.3.2: name@<private enterprise number>). */
  sdId: z.string().regex(/^[\x21-\x7e]{1,32}$/).refine((s) => !/[= \]"]/.test(s), 'no "=", space, "]" or \'"\'').default('gatehouse@32473'),
  /** A message over this is cut (and marked); raise the receiver's limit to match (rsyslog: maxMessageSize). */
  maxMessageBytes: size(480, 1 << 20).default(64 * 1024),
}).superRefine((s, ctx) => {
  if (s.transport === 'tcp' && (s.ca ?? s.cert ?? s.key ?? s.servername) !== undefined) ctx.addIssue({ code: 'custom', path: ['transport'], message: 'ca, cert, key and servername are for transport: tls' });
  if ((s.cert === undefined) !== (s.key === undefined)) ctx.addIssue({ code: 'custom', path: [s.cert === undefined ? 'cert' : 'key'], message: 'cert and key go together (mutual TLS)' });
});

export const HecSinkSchema = z.strictObject({
  ...common,
  kind: z.literal('splunk-hec'),
  /** The HEC base URL (scheme, host, port); events go to /services/collector/event. */
  url: url.refine((v) => ['', '/'].includes(new URL(v).pathname) && new URL(v).search === '', 'the HEC base URL, e.g. https://splunk.example.com:8088 (the gateway adds /services/collector/event)'),
  token: secretOnly('splunk-hec-token'),
  index: z.string().min(1).max(80).optional(),
  source: z.string().min(1).max(200).default('gatehouse'),
  /** Default: gatehouse:ocsf or gatehouse:audit (format jsonl). */
  sourcetype: z.string().min(1).max(200).optional(),
  /** Indexer acknowledgment: a batch counts as shipped only once Splunk says it is indexed. */
  ack: z.boolean().default(false),
  /** How long to wait for an acknowledgment before sending the batch again. */
  ackTimeout: durationField({ min: 100, max: 3_600_000 }).default(120_000),
  ca: pemFile.optional(),
});

export const WebhookSinkSchema = z.strictObject({
  ...common,
  kind: z.literal('webhook'),
  url,
  headers: headers.default({}),
  ca: pemFile.optional(),
});

export const OtlpSinkSchema = z.strictObject({
  ...common,
  kind: z.literal('otlp'),
  /** OTLP/HTTP logs endpoint, e.g. http://127.0.0.1:4318/v1/logs (protobuf). */
  url,
  headers: headers.default({}),
});

export const SinkSchema = z.discriminatedUnion('kind', [SyslogSinkSchema, HecSinkSchema, WebhookSinkSchema, OtlpSinkSchema]);
export type SinkConfig = z.output<typeof SinkSchema>;
export type SyslogSinkConfig = z.output<typeof SyslogSinkSchema>;
export type HecSinkConfig = z.output<typeof HecSinkSchema>;
export type WebhookSinkConfig = z.output<typeof WebhookSinkSchema>;
export type OtlpSinkConfig = z.output<typeof OtlpSinkSchema>;

export interface SiemConfig {
  file: string;
  sinks: SinkConfig[];
}

export interface SiemLoadOptions {
  /**
   * The connector a secret name belongs to, if any (the registry's binding
   * rule): a sink may not use a connector's credential, which would send it
   * to the SIEM.
   */
  secretOwner?: (name: string) => string | undefined;
}

/** Every secret a sink references. */
export function sinkSecrets(s: SinkConfig): string[] {
  const values = s.kind === 'splunk-hec' ? [s.token] : s.kind === 'webhook' || s.kind === 'otlp' ? Object.values(s.headers) : [];
  return [...new Set(values.flatMap(secretNames))].sort();
}

/** Reads and checks the SIEM file; ConfigError names file, line and key. */
export function loadSiemConfig(file: string, opts: SiemLoadOptions = {}): SiemConfig {
  const schema = z
    .strictObject({ sinks: z.array(SinkSchema).min(1, 'at least one sink') })
    .superRefine((c, ctx) => {
      const seen = new Set<string>();
      c.sinks.forEach((s, i) => {
        if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: ['sinks', i, 'name'], message: `a second sink named "${s.name}" (names key the cursor files)` });
        seen.add(s.name);
        if (s.retry.initial > s.retry.max) ctx.addIssue({ code: 'custom', path: ['sinks', i, 'retry', 'initial'], message: 'initial is longer than max' });
        if (opts.secretOwner === undefined) return;
        const keys = s.kind === 'splunk-hec' ? [['token', s.token]] : s.kind === 'webhook' || s.kind === 'otlp' ? Object.entries(s.headers).map(([k, v]) => [`headers.${k}`, v]) : [];
        for (const [key, value] of keys as [string, string][]) {
          for (const name of secretNames(value)) {
            const owner = opts.secretOwner(name);
            if (owner !== undefined) {
              ctx.addIssue({
                code: 'custom',
                path: ['sinks', i, ...key.split('.')],
                message: `secret "${name}" belongs to connector "${owner}": a sink would send that connector's credential to the SIEM; store the SIEM's own credential under another name`,
              });
            }
          }
        }
      });
    });
  const c = loadYamlConfig(file, schema);
  return { file, sinks: c.sinks };
}

export { ConfigError };
