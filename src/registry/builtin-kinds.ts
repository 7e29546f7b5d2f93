/**
 * The built-in REST connector kinds (github, slack, jira; their code is in
 * src/connectors/): registry schemas, and what the registry needs to know
 * about them without loading that code.
 */
import { z } from 'zod';
import { common, credential, serviceUrl, templated } from './fields.js';

/**
 * `kind: github`: GitHub REST v3 at api.github.com, or GitHub Enterprise
 * Server at https://HOST/api/v3.
 */
export const GithubConnectorSchema = z.strictObject({
  ...common,
  kind: z.literal('github'),
  baseUrl: serviceUrl('baseUrl').default('https://api.github.com'),
  /** A classic or fine-grained personal access token, or an app installation token. */
  token: credential('github-token'),
});

export type GithubConnectorConfig = z.output<typeof GithubConnectorSchema>;

/** `kind: slack`: the Slack Web API with a bot token (xoxb-...). */
export const SlackConnectorSchema = z.strictObject({
  ...common,
  kind: z.literal('slack'),
  baseUrl: serviceUrl('baseUrl').default('https://slack.com/api'),
  token: credential('slack-bot-token'),
});

export type SlackConnectorConfig = z.output<typeof SlackConnectorSchema>;

/**
 * `kind: jira`: Jira Cloud (REST v3) or Jira Data Center / Server (REST v2).
 * Which one is the site's, not the credential's: `deployment`, or else
 * *.atlassian.net (and api.atlassian.com) is Cloud, and any other site is
 * asked once (/rest/api/2/serverInfo `deploymentType`). Either credential
 * goes with either: Basic (Cloud: email + API token; Data Center: username +
 * password) or Bearer (Data Center: personal access token; Cloud: an OAuth
 * 2.0 or service-account token).
 */
export const JiraConnectorSchema = z.strictObject({
  ...common,
  kind: z.literal('jira'),
  /** https://acme.atlassian.net (Cloud) or https://jira.example.com[/context] (Data Center). */
  baseUrl: serviceUrl('baseUrl'),
  deployment: z.enum(['cloud', 'datacenter'], { error: 'deployment: cloud or datacenter' }).optional(),
  auth: z.union(
    [
      z.strictObject({ email: templated.pipe(z.string().min(3)), apiToken: credential('jira-api-token') }),
      z.strictObject({ pat: credential('jira-pat') }),
    ],
    { error: 'auth: give { email, apiToken } (Basic: Cloud email + API token, or Data Center username + password) or { pat } (Bearer token)' },
  ),
});

export type JiraConnectorConfig = z.output<typeof JiraConnectorSchema>;
export type JiraDeployment = NonNullable<JiraConnectorConfig['deployment']>;

export type BuiltinConnectorConfig = GithubConnectorConfig | SlackConnectorConfig | JiraConnectorConfig;
export type BuiltinKind = BuiltinConnectorConfig['kind'];
export const BUILTIN_KINDS: readonly BuiltinKind[] = ['github', 'slack', 'jira'];

export function isBuiltinKind(kind: string): kind is BuiltinKind {
  return (BUILTIN_KINDS as readonly string[]).includes(kind);
}

/** The templated values that hold a built-in's credential (each may reference secrets). */
export function credentialTemplates(c: BuiltinConnectorConfig): string[] {
  switch (c.kind) {
    case 'github':
    case 'slack':
      return [c.token];
    case 'jira':
      return 'pat' in c.auth ? [c.auth.pat] : [c.auth.email, c.auth.apiToken];
  }
}
