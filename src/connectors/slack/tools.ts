import { z } from 'zod';
import { ProviderApi } from '../api.js';
import { ProviderError } from '../errors.js';
import { slackFailure } from './errors.js';
import { RestClient, type Query } from '../http.js';
import { segment } from '../paths.js';
import type { BuiltinRuntime } from '../builtin-runtime.js';
import { USER_AGENT } from '../builtin-runtime.js';
import { ADD, READ, defineTool, maxItems, type CallInfo, type ToolSpec } from '../tool.js';
import type { SlackConnectorConfig } from '../../registry/builtin-kinds.js';
import { secretRefs } from '../../secrets/template.js';

export interface SlackApi {
  base: ProviderApi;
}

// https://docs.slack.dev/apis/web-api/ : token in "Authorization: Bearer", errors as 200 {"ok":false,"error":...}
export function slackApi(c: SlackConnectorConfig, rt: BuiltinRuntime): SlackApi {
  const client = new RestClient({ baseUrl: c.baseUrl, connectTimeoutMs: rt.connectTimeoutMs, requestTimeoutMs: rt.callTimeoutMs, jsonContentType: 'application/json; charset=utf-8' });
  const base = new ProviderApi({
    provider: 'Slack',
    connector: c.name,
    secrets: secretRefs(c.token),
    client,
    headers: { accept: 'application/json', 'user-agent': USER_AGENT },
    credential: async () => {
      const token = await rt.render(c.token, { connector: c.name, where: 'token' });
      return { headers: { authorization: `Bearer ${token}` }, scrub: [token] };
    },
    check: (res, ctx) => {
      const b = res.body as { ok?: unknown } | null;
      if (b === null || typeof b !== 'object') return new ProviderError('protocol', 'Slack answered with something that is not JSON');
      return b.ok === true ? undefined : slackFailure(res, ctx);
    },
  });
  return { base };
}

type J = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const asList = (v: unknown): J[] => (Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as J[]) : []);
const nextCursor = (b: J): string => str((b.response_metadata as J | undefined)?.next_cursor);

const PAGE = 200; // Slack: "we recommend no more than 200 results at a time"

/** Follows `response_metadata.next_cursor` up to `max` items. */
async function collect(api: SlackApi, method: string, query: Query, max: number, key: string, call: CallInfo) {
  const items: J[] = [];
  let cursor = '';
  for (let page = 0; page < Math.ceil(max / PAGE) + 1; page++) {
    const res = await api.base.request({ method: 'GET', path: `/${method}`, query: { ...query, limit: Math.min(PAGE, max - items.length), ...(cursor !== '' ? { cursor } : {}) }, bucket: method, signal: call.signal });
    const b = res.body as J;
    items.push(...asList(b[key]));
    cursor = nextCursor(b);
    if (cursor === '' || items.length >= max) break;
  }
  return { items: items.slice(0, max), truncated: cursor !== '' };
}

const Channel = z.string().regex(/^[CGD][A-Z0-9]{2,30}$/).describe('Conversation id, e.g. C0123ABCD (list_channels gives ids)');
const Ts = z.string().regex(/^[0-9]{1,12}\.[0-9]{1,8}$/);
const Text = z.string().min(1).max(40_000).describe('Message text (Slack mrkdwn)');

const Message = z.object({ ts: z.string(), user: z.string().nullable(), botId: z.string().nullable(), text: z.string(), threadTs: z.string().nullable(), replyCount: z.number() });
const message = (m: J) => ({
  ts: str(m.ts),
  user: typeof m.user === 'string' ? m.user : null,
  botId: typeof m.bot_id === 'string' ? m.bot_id : null,
  text: str(m.text),
  threadTs: typeof m.thread_ts === 'string' ? m.thread_ts : null,
  replyCount: typeof m.reply_count === 'number' ? m.reply_count : 0,
});
const Messages = z.object({ messages: z.array(Message), truncated: z.boolean() });

export const listChannels = defineTool({
  name: 'list_channels',
  title: 'List Slack channels',
  description: 'Lists conversations the bot can see (conversations.list), with their ids.',
  input: z.strictObject({
    types: z.array(z.enum(['public_channel', 'private_channel', 'mpim', 'im'])).min(1).default(['public_channel']),
    excludeArchived: z.boolean().default(true),
    maxItems: maxItems(100, 1000),
  }),
  output: z.object({
    channels: z.array(z.object({ id: z.string(), name: z.string(), isPrivate: z.boolean(), isArchived: z.boolean(), isMember: z.boolean(), members: z.number(), topic: z.string(), purpose: z.string() })),
    truncated: z.boolean(),
  }),
  annotations: READ,
  async run(api: SlackApi, a, call) {
    const r = await collect(api, 'conversations.list', { types: a.types.join(','), exclude_archived: a.excludeArchived }, a.maxItems, 'channels', call);
    return {
      channels: r.items.map((c) => ({
        id: str(c.id),
        name: str(c.name),
        isPrivate: c.is_private === true,
        isArchived: c.is_archived === true,
        isMember: c.is_member === true,
        members: typeof c.num_members === 'number' ? c.num_members : 0,
        topic: str((c.topic as J | undefined)?.value),
        purpose: str((c.purpose as J | undefined)?.value),
      })),
      truncated: r.truncated,
    };
  },
});

export const readChannelHistory = defineTool({
  name: 'read_channel_history',
  title: 'Read a Slack channel\'s history',
  description: 'Reads recent messages of a channel, newest first (conversations.history). The bot must be a member.',
  input: z.strictObject({
    channel: Channel,
    oldest: Ts.optional().describe('Only messages after this timestamp'),
    latest: Ts.optional().describe('Only messages before this timestamp'),
    maxItems: maxItems(50, 500),
  }),
  output: Messages,
  annotations: READ,
  async run(api: SlackApi, a, call) {
    segment('channel', a.channel, 'slackChannel');
    const r = await collect(api, 'conversations.history', { channel: a.channel, oldest: a.oldest, latest: a.latest }, a.maxItems, 'messages', call);
    return { messages: r.items.map(message), truncated: r.truncated };
  },
});

export const readThread = defineTool({
  name: 'read_thread',
  title: 'Read a Slack thread',
  description: 'Reads a thread: its parent message and replies (conversations.replies).',
  input: z.strictObject({ channel: Channel, thread_ts: Ts.describe('Timestamp of the thread\'s parent message'), maxItems: maxItems(100, 1000) }),
  output: Messages,
  annotations: READ,
  async run(api: SlackApi, a, call) {
    segment('channel', a.channel, 'slackChannel');
    segment('thread_ts', a.thread_ts, 'slackTs');
    const r = await collect(api, 'conversations.replies', { channel: a.channel, ts: a.thread_ts }, a.maxItems, 'messages', call);
    return { messages: r.items.map(message), truncated: r.truncated };
  },
});

const Posted = z.object({ channel: z.string(), ts: z.string() });

async function post(api: SlackApi, body: J, call: CallInfo) {
  // Sent as JSON with "application/json; charset=utf-8" (https://docs.slack.dev/apis/web-api/#posting_json).
  const res = await api.base.request({ method: 'POST', path: '/chat.postMessage', json: body, bucket: 'chat.postMessage', signal: call.signal });
  const b = res.body as J;
  return { channel: str(b.channel), ts: str(b.ts) };
}

export const postMessage = defineTool({
  name: 'post_message',
  title: 'Post a Slack message',
  description: 'Posts a message to a channel as the bot (chat.postMessage).',
  input: z.strictObject({ channel: Channel, text: Text, unfurlLinks: z.boolean().default(false) }),
  output: Posted,
  annotations: ADD,
  async run(api: SlackApi, a, call) {
    segment('channel', a.channel, 'slackChannel');
    return post(api, { channel: a.channel, text: a.text, unfurl_links: a.unfurlLinks }, call);
  },
});

export const replyInThread = defineTool({
  name: 'reply_in_thread',
  title: 'Reply in a Slack thread',
  description: 'Posts a reply in a thread (chat.postMessage with thread_ts); optionally also to the channel.',
  input: z.strictObject({ channel: Channel, thread_ts: Ts.describe('Timestamp of the thread\'s parent message'), text: Text, broadcast: z.boolean().default(false) }),
  output: Posted,
  annotations: ADD,
  async run(api: SlackApi, a, call) {
    segment('channel', a.channel, 'slackChannel');
    segment('thread_ts', a.thread_ts, 'slackTs');
    return post(api, { channel: a.channel, thread_ts: a.thread_ts, text: a.text, reply_broadcast: a.broadcast }, call);
  },
});

export const SLACK_TOOLS: readonly ToolSpec<SlackApi>[] = [listChannels, readChannelHistory, readThread, postMessage, replyInThread];

/** `connector test`: auth.test, and the token's scopes from the x-oauth-scopes header. */
export async function probeSlack(api: SlackApi, signal: AbortSignal): Promise<string> {
  const res = await api.base.request({ method: 'POST', path: '/auth.test', bucket: 'auth.test', signal });
  const b = res.body as J;
  const scopes = res.headers['x-oauth-scopes'];
  return `authenticated as ${str(b.user) || str(b.user_id)} (bot ${str(b.bot_id) || 'n/a'}) in ${str(b.team) || str(b.team_id)}${scopes !== undefined ? `; scopes: ${String(scopes)}` : ''}`;
}
