/**
 * The Slack connector and simulator held to Slack's published Web API
 * description (slackapi/slack-api-specs, vendored in specs/): every request
 * each tool and the probe send, on their success and error paths, and every
 * answer the simulator gives.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SLACK_TOOLS } from '../../../src/connectors/slack/tools.js';
import type { Sim } from '../sim/base.js';
import { SLACK_TOKEN, startSlackSim } from '../sim/slack.js';
import { drive, violations, type Driven } from './drive.js';
import { Description, type Waiver } from './openapi.js';

// What Slack documents today (docs.slack.dev) that the archived 2020 description lacks; each must stay in use.
const METHODS = 'https://docs.slack.dev/reference/methods';
const WAIVERS: Waiver[] = [
  { operation: 'auth_test', at: 'method', value: 'POST', why: `${METHODS}/auth.test: the Web API takes POST for every method (the 2020 description lists only GET)` },
  { operation: 'conversations_history', status: '200', at: '', value: 'response_metadata', why: `${METHODS}/conversations.history pages with response_metadata.next_cursor` },
  { operation: 'conversations_replies', status: '200', at: '', value: 'response_metadata', why: `${METHODS}/conversations.replies pages with response_metadata.next_cursor` },
  { operation: 'conversations_history', status: '200', at: '/error', value: 'not_in_channel', why: `${METHODS}/conversations.history lists not_in_channel` },
  { operation: 'conversations_history', status: '200', at: '/error', value: 'ekm_access_denied', why: `${METHODS}/conversations.history lists ekm_access_denied ("Administrators have suspended the ability to post a message")` },
  { operation: 'conversations_history', status: '429', at: '/error', value: 'ratelimited', why: 'https://docs.slack.dev/apis/web-api/rate-limits: HTTP 429 with Retry-After, error "ratelimited"' },
];

let slack: Description;
let sim: Sim;
let sl: Driven;
const called = new Set<string>();

beforeAll(async () => {
  slack = Description.load(join(import.meta.dirname, 'specs', 'slack-web-api.subset.json'), {
    name: 'Slack Web API',
    basePath: '/api',
    waivers: WAIVERS,
    // Slack answers a failure with HTTP 200 and ok: false (https://docs.slack.dev/apis/web-api/#responses); the description documents those bodies as "default".
    responseKey: (_status, body) => ((body as { ok?: unknown } | undefined)?.ok === false ? 'default' : undefined),
  });
  sim = await startSlackSim();
  sl = await connect(SLACK_TOKEN);
});
afterAll(async () => {
  await sl?.close();
  await sim?.close();
});

const connect = (token: string) => drive({ name: 'slack', kind: 'slack', baseUrl: sim.url, token: '${secret:slack-bot-token}' }, { 'slack-bot-token': token });

async function conforms(steps: (c: Driven) => Promise<unknown>, via: Driven = sl): Promise<void> {
  sim.reset();
  await steps(via);
  expect(sim.requests.length, 'the steps reached the simulator').toBeGreaterThan(0);
  expect(violations([slack], sim.requests).join('\n\n')).toBe('');
}

const call = (c: Driven, tool: string, args: Record<string, unknown>) => {
  called.add(tool);
  return c.call(tool, args);
};
const GENERAL = 'C0GENERAL';
const THREAD = '1700000120.000100';

describe('every Slack request and simulator answer holds to the Slack Web API description', () => {
  it('connector test (the probe)', () => conforms((c) => c.probe()));

  it('list_channels: every type, archived included, across cursor pages', () =>
    conforms((c) => call(c, 'list_channels', { types: ['public_channel', 'private_channel', 'mpim', 'im'], excludeArchived: false, maxItems: 1000 })));

  it('read_channel_history: pages, an unknown channel, a channel the bot is not in', () =>
    conforms(async (c) => {
      await call(c, 'read_channel_history', { channel: GENERAL, maxItems: 120 });
      await call(c, 'read_channel_history', { channel: 'C0MISSING' });
      await call(c, 'read_channel_history', { channel: 'C0NOTMEMBER' });
    }));

  it('read_thread: a thread, an unknown thread', () =>
    conforms(async (c) => {
      await call(c, 'read_thread', { channel: GENERAL, thread_ts: THREAD });
      await call(c, 'read_thread', { channel: GENERAL, thread_ts: '1600000000.000001' });
    }));

  it('post_message: posted, unknown channel, not a member', () =>
    conforms(async (c) => {
      await call(c, 'post_message', { channel: GENERAL, text: 'hello', unfurlLinks: true });
      await call(c, 'post_message', { channel: 'C0MISSING', text: 'hello' });
      await call(c, 'post_message', { channel: 'C0NOTMEMBER', text: 'hello' });
    }));

  it('reply_in_thread: with and without broadcast', () =>
    conforms(async (c) => {
      await call(c, 'reply_in_thread', { channel: GENERAL, thread_ts: THREAD, text: 'reply', broadcast: true });
      await call(c, 'reply_in_thread', { channel: GENERAL, thread_ts: THREAD, text: 'reply' });
    }));

  it('policy blocks and rate limits: ekm_access_denied, 429 ratelimited', async () => {
    const fresh = await connect(SLACK_TOKEN);
    try {
      await conforms(async (c) => {
        sim.inject({ status: 200, body: { ok: false, error: 'ekm_access_denied' } });
        await call(c, 'read_channel_history', { channel: GENERAL });
        sim.inject({ status: 429, headers: { 'retry-after': '30' }, body: { ok: false, error: 'ratelimited' } });
        await call(c, 'read_channel_history', { channel: GENERAL });
      }, fresh);
    } finally {
      await fresh.close();
    }
  });

  it('a token Slack rejects (invalid_auth)', async () => {
    const wrong = await connect('xoxb-0000-0000-wrongTOKEN');
    try {
      await conforms(async (c) => {
        await call(c, 'list_channels', {});
        await c.probe();
      }, wrong);
    } finally {
      await wrong.close();
    }
  });

  it('exercised every tool the connector has', () => {
    expect(SLACK_TOOLS.length).toBeGreaterThan(0);
    expect([...called].sort()).toEqual(SLACK_TOOLS.map((t) => t.name).sort());
  });

  it('every waiver is still needed', () => {
    expect(WAIVERS.filter((w) => !slack.waived.has(w)).map((w) => `${w.operation} ${w.at} ${String(w.value)}`)).toEqual([]);
  });
});

describe('the Slack contract catches what it is meant to', () => {
  const post = { method: 'POST', path: '/api/chat.postMessage', query: '', contentType: 'application/json; charset=utf-8' };
  const answer = (body: object) => ({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });

  it('a simulator answer the description forbids fails the contract', () => {
    const v = slack.check({ ...post, body: JSON.stringify({ channel: GENERAL, text: 'x' }), response: answer({ ok: true, channel: GENERAL, ts: '1.2' }) });
    expect(v.join('\n')).toMatch(/chat_postMessage.*must have required property 'message'/s);
    expect(slack.check({ ...post, body: JSON.stringify({ channel: GENERAL, text: 'x' }), response: answer({ ok: false, error: 'no_such_code' }) }).join('\n')).toMatch(/\/error must be equal to one of the allowed values.*"no_such_code"/s);
  });

  it('a waiver excuses only the one value it names, on its own method', () => {
    const history = { method: 'GET', path: '/api/conversations.history', query: 'channel=C0GENERAL', contentType: undefined, body: '' };
    expect(slack.check({ ...history, response: answer({ ok: false, error: 'not_in_channel' }) })).toEqual([]);
    expect(slack.check({ ...history, response: answer({ ok: false, error: 'not_in_chanel' }) }).join('\n')).toMatch(/\/error must be equal to one of the allowed values/);
    expect(slack.check({ ...history, path: '/api/conversations.list', query: '', response: answer({ ok: false, error: 'not_in_channel' }) }).join('\n')).toMatch(/\/error must be equal to one of the allowed values/);
  });

  it('an argument the method does not take, or of the wrong type, fails the contract', () => {
    const ok = answer({ ok: false, error: 'channel_not_found' });
    expect(slack.check({ ...post, body: JSON.stringify({ channel: GENERAL, text: 'x', unfurl: true }), response: ok }).join('\n')).toMatch(/must NOT have additional properties 'unfurl'/);
    expect(slack.check({ ...post, body: JSON.stringify({ channel: GENERAL, text: 'x', reply_broadcast: 'yes' }), response: ok }).join('\n')).toMatch(/\/reply_broadcast must be boolean/);
    expect(slack.check({ ...post, body: JSON.stringify({ text: 'x' }), response: ok }).join('\n')).toMatch(/required property 'channel'/);
    expect(slack.check({ method: 'GET', path: '/api/conversations.list', query: 'limt=5', contentType: undefined, body: '', response: ok }).join('\n')).toMatch(/query parameter limt is not in the description/);
  });
});
