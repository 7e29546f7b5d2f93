import { z } from 'zod';
import { secretRefs } from '../secrets/template.js';
import { absolutePath, common, egressHost, plain, templated } from './fields.js';
import { InferenceProviderSchema, type InferenceProviderConfig } from './inference.js';
import { OAuthSchema } from './oauth.js';
import { credentialTemplates, GithubConnectorSchema, JiraConnectorSchema, SlackConnectorSchema, type BuiltinConnectorConfig } from './builtin-kinds.js';

export { CONNECTOR_NAME } from './fields.js';

/** Names of the launcher's own switches (native/src/sandbox.h): never from a registry entry. */
export const LAUNCHER_SWITCH_PREFIX = 'GATEHOUSE_SANDBOX_';

/**
 * Variables the dynamic loader or the C library acts on at exec (glibc's list of
 * what it drops for set-uid programs, TMPDIR aside). A confined server's `env`
 * reaches gatehouse-sandbox's own environment (kept by name for the server, so
 * secrets never sit on a command line): LD_PRELOAD there runs code in the
 * launcher, before anything is confined.
 */
export function isLoaderVariable(name: string): boolean {
  return name.startsWith('LD_') || LOADER_VARIABLES.has(name);
}
const LOADER_VARIABLES = new Set(['GCONV_PATH', 'GETCONF_DIR', 'GLIBC_TUNABLES', 'HOSTALIASES', 'LOCALDOMAIN', 'LOCPATH', 'MALLOC_TRACE', 'NIS_PATH', 'NLSPATH', 'RESOLV_HOST_CONF', 'RES_OPTIONS', 'TZDIR']);

/**
 * The MCP revision spoken to an stdio or http server: `auto` asks it once
 * (`server/discover`) and uses the newest it supports; a date pins that
 * revision (2025-11-25: straight to `initialize`, no probe).
 */
export const protocol = z.enum(['auto', '2025-11-25', '2026-07-28']).default('auto');

export const StdioConnectorSchema = z.strictObject({
  ...common,
  kind: z.literal('stdio'),
  command: plain('command').pipe(z.string().min(1)),
  args: z.array(plain('an argument')).default([]),
  env: z
    .record(
      z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _')
        // The launcher reads its test switches from its own environment, which carries this one: one would weaken the confinement silently.
        .refine((name) => !name.startsWith(LAUNCHER_SWITCH_PREFIX), `${LAUNCHER_SWITCH_PREFIX}* variables are gatehouse-sandbox's test switches (they weaken confinement); a connector cannot set them`),
      templated,
    )
    .default({}),
  cwd: plain('cwd').optional(),
  /** Hosts the server may reach through the gateway's egress proxy ("host:port", host may be a glob); nothing else. */
  egress: z.array(egressHost).default([]),
  /** Confinement under gatehouse-sandbox (the default), with extra paths; `off` runs it with the gateway's rights (loud). */
  sandbox: z.union([z.literal('off'), z.strictObject({ ro: z.array(absolutePath).default([]), rw: z.array(absolutePath).default([]) })]).default({ ro: [], rw: [] }),
  protocol,
}).superRefine((c, ctx) => {
  if (c.sandbox === 'off') return;
  for (const name of Object.keys(c.env)) {
    if (!isLoaderVariable(name)) continue;
    ctx.addIssue({
      code: 'custom',
      path: ['env', name],
      message: `${name} would act on gatehouse-sandbox itself (its loader or C library) before it confines anything, so a confined server cannot get it from env; set it inside the command (command: sh, args: ["-c", "${name}=... exec SERVER"]) or, for a trusted local server, use sandbox: off`,
    });
  }
});

export const HttpConnectorSchema = z.strictObject({
  ...common,
  kind: z.literal('http'),
  url: plain('url')
    .pipe(z.url({ protocol: /^https?$/, error: 'an http(s) URL' })),
  headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a header name (RFC 9110 token)'), templated).default({}),
  /** OAuth 2.1 to the server (src/registry/oauth.ts): the gateway adds the Authorization header from the keychain's login. */
  oauth: OAuthSchema.optional(),
  protocol,
}).superRefine((c, ctx) => {
  if (c.oauth === undefined) return;
  if (Object.keys(c.headers).some((h) => h.toLowerCase() === 'authorization')) {
    ctx.addIssue({ code: 'custom', path: ['headers'], message: 'with oauth the gateway sets Authorization itself: remove the Authorization header' });
  }
  const u = URL.canParse(c.url) ? new URL(c.url) : undefined;
  if (u && u.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
    ctx.addIssue({ code: 'custom', path: ['url'], message: 'with oauth the url must be https (plain http is accepted for 127.0.0.1/localhost only): a token never crosses a network in clear' });
  }
});

export const ConnectorSchema = z.discriminatedUnion('kind', [StdioConnectorSchema, HttpConnectorSchema, GithubConnectorSchema, SlackConnectorSchema, JiraConnectorSchema, InferenceProviderSchema]);

type Source = { /** The file it was loaded from. */ file: string };
export type StdioConnector = z.output<typeof StdioConnectorSchema> & Source;
export type HttpConnector = z.output<typeof HttpConnectorSchema> & Source;
/** A built-in REST connector (kind github, slack or jira; see src/connectors/). */
export type BuiltinConnector = BuiltinConnectorConfig & Source;
/** A model provider (kind inference; see src/inference/). */
export type InferenceProvider = InferenceProviderConfig & Source;
export type Connector = StdioConnector | HttpConnector | BuiltinConnector | InferenceProvider;
/** A connector that serves MCP tools (every kind but inference). */
export type ToolConnector = Exclude<Connector, InferenceProvider>;

export function isProvider(c: Connector): c is InferenceProvider {
  return c.kind === 'inference';
}

/** Every `${secret:NAME}` a connector references. */
export function connectorSecrets(c: Connector): string[] {
  const values =
    c.kind === 'stdio'
      ? Object.values(c.env)
      : c.kind === 'http'
        ? [...Object.values(c.headers), ...(c.oauth?.clientSecret !== undefined ? [c.oauth.clientSecret] : [])]
        : c.kind === 'inference'
          ? Object.values(c.headers)
          : credentialTemplates(c);
  return [...new Set(values.flatMap(secretRefs))].sort();
}
