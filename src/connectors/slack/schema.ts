import { z } from 'zod';
import { common, credential, serviceUrl } from '../../registry/common.js';

/** `kind: slack`: the Slack Web API with a bot token (xoxb-...). */
export const SlackConnectorSchema = z.strictObject({
  ...common,
  kind: z.literal('slack'),
  baseUrl: serviceUrl('baseUrl').default('https://slack.com/api'),
  token: credential('slack-bot-token'),
});

export type SlackConnectorConfig = z.output<typeof SlackConnectorSchema>;
