/**
 * Slack Web API simulator, from the documented shapes
 * (https://docs.slack.dev/reference/methods): bearer bot token, errors as
 * HTTP 200 {"ok":false,"error":...}, cursor pagination in response_metadata.
 */
import type { Context } from 'hono';
import { json, startSim, type Sim } from './base.js';

export const SLACK_TOKEN = 'xoxb-1111-2222-SIMULATEDslackTOKENabcdef';

const channels = Array.from({ length: 250 }, (_, i) => ({
  id: i === 0 ? 'C0GENERAL' : i === 1 ? 'C0NOTMEMBER' : `C${String(i).padStart(8, '0')}`,
  name: i === 0 ? 'general' : `channel-${i}`,
  is_channel: true,
  is_private: false,
  is_archived: false,
  is_member: i !== 1,
  num_members: 3,
  topic: { value: i === 0 ? 'Company-wide' : '' },
  purpose: { value: '' },
}));
const history = Array.from({ length: 120 }, (_, i) => ({
  type: 'message',
  user: 'U0ALICE',
  text: `message ${120 - i}`,
  ts: `1700000${String(120 - i).padStart(3, '0')}.000100`,
  ...(i === 0 ? { thread_ts: '1700000120.000100', reply_count: 4 } : {}),
}));
const thread = Array.from({ length: 5 }, (_, i) => ({ type: 'message', user: i === 0 ? 'U0ALICE' : 'U0BOB', text: `reply ${i}`, ts: `1700000120.00010${i}`, thread_ts: '1700000120.000100' }));

const cursorOf = (n: number) => Buffer.from(`offset:${n}`).toString('base64');
const offsetOf = (cursor: string | undefined) => (cursor ? Number(/^offset:(\d+)$/.exec(Buffer.from(cursor, 'base64').toString())?.[1] ?? 'NaN') : 0);

export async function startSlackSim(): Promise<Sim> {
  return startSim('/api', (app) => {
    const ok = (c: Context, body: object, headers: Record<string, string> = {}) => json(c, 200, { ok: true, ...body }, headers);
    const fail = (c: Context, error: string, extra: object = {}) => json(c, 200, { ok: false, error, ...extra });

    app.use('*', async (c, next) => {
      const h = c.req.header('authorization');
      if (h === undefined) return fail(c, 'not_authed');
      if (h !== `Bearer ${SLACK_TOKEN}`) return fail(c, 'invalid_auth');
      await next();
      return undefined;
    });

    // Each method's documented success fields besides the page (conversations.list has no has_more).
    const pageOf = <T>(c: Context, all: T[], key: string, extra: object = { has_more: false }) => {
      const limit = Math.min(1000, Number(c.req.query('limit') ?? 100));
      const start = offsetOf(c.req.query('cursor'));
      if (Number.isNaN(start)) return fail(c, 'invalid_cursor');
      const items = all.slice(start, start + limit);
      const next = start + limit < all.length ? cursorOf(start + limit) : '';
      return ok(c, { [key]: items, ...extra, ...('has_more' in extra ? { has_more: next !== '' } : {}), response_metadata: { next_cursor: next } });
    };

    app.on(['GET', 'POST'], '/auth.test', (c) => ok(c, { url: 'https://acme.slack.com/', team: 'Acme', user: 'gatehouse-bot', team_id: 'T0ACME', user_id: 'U0BOT', bot_id: 'B0SIMBOT01' }, { 'x-oauth-scopes': 'channels:read,channels:history,chat:write' }));
    app.get('/conversations.list', (c) => pageOf(c, channels, 'channels', {}));
    app.get('/conversations.history', (c) => {
      const ch = c.req.query('channel');
      if (ch === 'C0NOTMEMBER') return fail(c, 'not_in_channel');
      if (ch !== 'C0GENERAL') return fail(c, 'channel_not_found');
      return pageOf(c, history, 'messages', { has_more: false, pin_count: 0, channel_actions_ts: null, channel_actions_count: 0 });
    });
    app.get('/conversations.replies', (c) => {
      if (c.req.query('channel') !== 'C0GENERAL') return fail(c, 'channel_not_found');
      if (c.req.query('ts') !== '1700000120.000100') return fail(c, 'thread_not_found');
      return pageOf(c, thread, 'messages');
    });
    app.post('/chat.postMessage', async (c) => {
      const type = c.req.header('content-type') ?? '';
      if (!type.startsWith('application/json')) return fail(c, 'invalid_arguments');
      const b = (await c.req.json()) as { channel?: string; text?: string; thread_ts?: string };
      if (!b.text) return fail(c, 'no_text');
      if (!channels.some((ch) => ch.id === b.channel)) return fail(c, 'channel_not_found');
      if (b.channel === 'C0NOTMEMBER') return fail(c, 'not_in_channel');
      const warnings = type.includes('charset=utf-8') ? {} : { response_metadata: { warnings: ['missing_charset'] } };
      return ok(c, { channel: b.channel, ts: '1700000999.000100', message: { type: 'message', bot_id: 'B0SIMBOT01', text: b.text, ts: '1700000999.000100', ...(b.thread_ts ? { thread_ts: b.thread_ts } : {}) }, ...warnings });
    });
    app.all('/admin.*', (c) => ok(c, { admin: true }));
  });
}
