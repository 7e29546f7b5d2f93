import { z } from 'zod';
import { SECRET_NAME, secretRefs } from '../secrets/template.js';

export const CONNECTOR_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** A value that may hold `${secret:NAME}` references, each with a valid name. */
const templated = z.string().superRefine((v, ctx) => {
  for (const name of secretRefs(v)) {
    if (!SECRET_NAME.test(name)) ctx.addIssue({ code: 'custom', message: `invalid secret reference \${secret:${name}}: names use letters, digits, '.', '_' and '-'` });
  }
});

const plain = (what: string) =>
  z.string().refine((v) => secretRefs(v).length === 0, `${what} may not contain a \${secret:...} reference`);

const duration = z
  .union([z.number().int().positive(), z.string().regex(/^\d+(ms|s|m|h)$/, 'use a duration like 500ms, 30s, 5m')])
  .transform((v) => (typeof v === 'number' ? v : parseDurationMs(v)));

export function parseDurationMs(v: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(v);
  if (!m) throw new Error(`invalid duration ${v}`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return n * unit;
}

const common = {
  name: z.string().regex(CONNECTOR_NAME, 'lowercase letters, digits and "-", at most 32 characters, starting with a letter or digit'),
  description: z.string().max(500).optional(),
  /** Exposed tool names are `<prefix>__<tool>`; `""` exposes upstream names as they are. */
  prefix: z.string().regex(/^[a-zA-Z0-9_-]{0,32}$/).optional(),
  enabled: z.boolean().default(true),
  tools: z
    .strictObject({
      allow: z.array(z.string().min(1)).default(['*']),
      deny: z.array(z.string().min(1)).default([]),
    })
    .default({ allow: ['*'], deny: [] }),
  timeouts: z
    .strictObject({
      connect: duration.optional(),
      call: duration.optional(),
    })
    .default({}),
  sampling: z.enum(['allow', 'deny']).default('deny'),
  elicitation: z.enum(['allow', 'deny']).default('deny'),
};

export const StdioConnectorSchema = z.strictObject({
  ...common,
  kind: z.literal('stdio'),
  command: plain('command').pipe(z.string().min(1)),
  args: z.array(plain('an argument')).default([]),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _'), templated).default({}),
  cwd: plain('cwd').optional(),
});

export const HttpConnectorSchema = z.strictObject({
  ...common,
  kind: z.literal('http'),
  url: plain('url')
    .pipe(z.url({ protocol: /^https?$/, error: 'an http(s) URL' })),
  headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a header name (RFC 9110 token)'), templated).default({}),
});

export const ConnectorSchema = z.discriminatedUnion('kind', [StdioConnectorSchema, HttpConnectorSchema]);

type Source = { /** The file it was loaded from. */ file: string };
export type StdioConnector = z.output<typeof StdioConnectorSchema> & Source;
export type HttpConnector = z.output<typeof HttpConnectorSchema> & Source;
export type Connector = StdioConnector | HttpConnector;

/** Every `${secret:NAME}` a connector references. */
export function connectorSecrets(c: Connector): string[] {
  const values = c.kind === 'stdio' ? Object.values(c.env) : Object.values(c.headers);
  return [...new Set(values.flatMap(secretRefs))].sort();
}
