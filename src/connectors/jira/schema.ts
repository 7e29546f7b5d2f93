import { z } from 'zod';
import { common, credential, serviceUrl, templated } from '../../registry/common.js';

/**
 * `kind: jira`: Jira Cloud (REST v3, Basic with email + API token) or Jira
 * Data Center / Server (REST v2, Bearer personal access token).
 */
export const JiraConnectorSchema = z.strictObject({
  ...common,
  kind: z.literal('jira'),
  /** https://acme.atlassian.net (Cloud) or https://jira.example.com[/context] (Data Center). */
  baseUrl: serviceUrl('baseUrl'),
  auth: z.union(
    [
      z.strictObject({ email: templated.pipe(z.string().min(3)), apiToken: credential('jira-api-token') }),
      z.strictObject({ pat: credential('jira-pat') }),
    ],
    { error: 'auth: give { email, apiToken } (Jira Cloud) or { pat } (Data Center)' },
  ),
});

export type JiraConnectorConfig = z.output<typeof JiraConnectorSchema>;

export function isCloud(c: JiraConnectorConfig): boolean {
  return 'apiToken' in c.auth;
}
