import { z } from 'zod';
import { common, credential, serviceUrl } from '../../registry/common.js';

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
