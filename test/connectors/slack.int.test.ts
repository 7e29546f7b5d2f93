import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startHarness, textOf, type Harness } from './helpers.js';
import { SLACK_TOKEN, startSlackSim } from './sim/slack.js';
import type { Sim } from './sim/base.js';

let sim: Sim;
let h: Harness;
const spec = () => ({ name: 'slack', kind: 'slack', baseUrl: sim.url, token: '${secret:slack-bot-token}' });

beforeAll(async () => {
  sim = await startSlackSim();
  h = await startHarness([spec()], { 'slack-bot-token': SLACK_TOKEN });
});
afterAll(async () => {
  await h?.close();
  await sim?.close();
});
beforeEach(() => sim.reset());

describe('slack connector through the gateway', () => {
  it('lists five tools; reads are read-only, posts are additive', async () => {
    const tools = (await h.client.listTools()).tools.filter((t) => t.name.startsWith('slack__'));
    expect(tools.map((t) => t.name).sort()).toEqual(['slack__list_channels', 'slack__post_message', 'slack__read_channel_history', 'slack__read_thread', 'slack__reply_in_thread']);
    for (const t of tools) expect(t.annotations?.readOnlyHint).toBe(t.name.includes('read_') || t.name.includes('list_'));
    for (const t of tools) expect(t.annotations?.destructiveHint).toBe(false);
  });

  it('list_channels follows response_metadata.next_cursor up to maxItems', async () => {
    const r = await h.call('slack__list_channels', { maxItems: 1000 });
    const out = r.structuredContent as { channels: Array<{ id: string; name: string }>; truncated: boolean };
    expect(out.channels).toHaveLength(250);
    expect(out.truncated).toBe(false);
    expect(out.channels[0]).toMatchObject({ id: 'C0GENERAL', name: 'general', topic: 'Company-wide' });
    expect(sim.requests.map((q) => new URLSearchParams(q.query).has('cursor'))).toEqual([false, true]);
    expect(sim.requests.every((q) => q.authorization === `Bearer ${SLACK_TOKEN}` && q.path === '/api/conversations.list')).toBe(true);
    sim.reset();
    const capped = (await h.call('slack__list_channels', { maxItems: 30 })).structuredContent as typeof out;
    expect(capped.channels).toHaveLength(30);
    expect(capped.truncated).toBe(true);
    expect(new URLSearchParams(sim.requests[0]?.query).get('limit')).toBe('30');
  });

  it('read_channel_history pages and maps messages', async () => {
    const r = await h.call('slack__read_channel_history', { channel: 'C0GENERAL', maxItems: 110 });
    const out = r.structuredContent as { messages: Array<{ ts: string; text: string; replyCount: number }>; truncated: boolean };
    expect(out.messages).toHaveLength(110);
    expect(out.truncated).toBe(true);
    expect(out.messages[0]).toMatchObject({ text: 'message 120', replyCount: 4, threadTs: '1700000120.000100' });
  });

  it('read_thread reads the replies', async () => {
    const r = await h.call('slack__read_thread', { channel: 'C0GENERAL', thread_ts: '1700000120.000100' });
    expect((r.structuredContent as { messages: unknown[] }).messages).toHaveLength(5);
    expect(new URLSearchParams(sim.requests[0]?.query).get('ts')).toBe('1700000120.000100');
  });

  it('post_message and reply_in_thread send JSON with charset=utf-8', async () => {
    const p = await h.call('slack__post_message', { channel: 'C0GENERAL', text: 'hello from the agent' });
    expect(p.structuredContent).toEqual({ channel: 'C0GENERAL', ts: '1700000999.000100' });
    expect(sim.requests[0]).toMatchObject({ method: 'POST', path: '/api/chat.postMessage', contentType: 'application/json; charset=utf-8' });
    expect(JSON.parse(sim.requests[0]?.body ?? '')).toEqual({ channel: 'C0GENERAL', text: 'hello from the agent', unfurl_links: false });
    const t = await h.call('slack__reply_in_thread', { channel: 'C0GENERAL', thread_ts: '1700000120.000100', text: 'a reply' });
    expect(t.isError).toBeFalsy();
    expect(JSON.parse(sim.requests[1]?.body ?? '')).toMatchObject({ thread_ts: '1700000120.000100', reply_broadcast: false });
  });
});

describe('slack errors', () => {
  it('ok:false errors map to what to do', async () => {
    const nm = await h.call('slack__read_channel_history', { channel: 'C0NOTMEMBER' });
    expect(textOf(nm)).toMatch(/bot is not a member.*Invite the app/);
    const nf = await h.call('slack__post_message', { channel: 'C0NOSUCH', text: 'x' });
    expect(textOf(nf)).toMatch(/found nothing there \(channel_not_found\)/);
    const thread = await h.call('slack__read_thread', { channel: 'C0GENERAL', thread_ts: '1.1' });
    expect(textOf(thread)).toMatch(/thread_not_found/);
  });

  const cases: Array<[string, { status: number; headers?: Record<string, string>; body: unknown }, RegExp]> = [
    ['invalid_auth (HTTP 200)', { status: 200, body: { ok: false, error: 'invalid_auth' } }, /rejected the connector's token \(invalid_auth\).*gatehouse secret set slack-bot-token/],
    ['missing_scope', { status: 200, body: { ok: false, error: 'missing_scope', needed: 'channels:read', provided: 'chat:write' } }, /missing_scope; needed scope: channels:read; token has: chat:write\).*Add the missing scope/],
    ['HTTP 403', { status: 403, body: { ok: false, error: 'forbidden' } }, /refused this request \(403/],
    ['HTTP 404', { status: 404, body: '<html>Not Found</html>' }, /found nothing there \(404/],
    ['invalid_arguments', { status: 200, body: { ok: false, error: 'invalid_arguments' } }, /invalid \(invalid_arguments\): the method was called with invalid arguments\. Fix the arguments/],
    [
      'ekm_access_denied: a policy block, not a bad credential',
      { status: 200, body: { ok: false, error: 'ekm_access_denied' } },
      /refused this request \(ekm_access_denied\): administrators have suspended access.*Ask a Slack admin.*The token itself is valid/,
    ],
    ['team_access_not_granted: the app is not added to that workspace', { status: 200, body: { ok: false, error: 'team_access_not_granted' } }, /add the app to that workspace/],
    ['429 ratelimited + Retry-After', { status: 429, headers: { 'retry-after': '30' }, body: { ok: false, error: 'ratelimited' } }, /rate limit reached.*Retry in 30 s/],
    ['500', { status: 500, body: 'oops' }, /Slack is unavailable \(500: oops\)/],
    ['503', { status: 503, body: { ok: false, error: 'service_unavailable' } }, /Slack is unavailable \(503/],
  ];
  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(8));
  for (const [what, inj, re] of cases) {
    it(what, async () => {
      sim.inject(inj);
      // The 429 case blocks its method for 30 s: it uses a method of its own.
      const r = what.startsWith('429') ? await h.call('slack__read_channel_history', { channel: 'C0GENERAL' }) : await h.call('slack__list_channels', { maxItems: 5 });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(re);
      if (!/invalid_auth/.test(what)) expect(textOf(r)).not.toMatch(/store a valid credential/);
      expect(JSON.stringify(r)).not.toContain(SLACK_TOKEN);
    });
  }

  it('after a 429, the same method fails fast; another method still works', async () => {
    // The 429 case above blocked conversations.history for 30 s.
    const again = await h.call('slack__read_channel_history', { channel: 'C0GENERAL' });
    expect(textOf(again)).toMatch(/rate limit is exhausted.*not sent/);
    const other = await h.call('slack__read_thread', { channel: 'C0GENERAL', thread_ts: '1700000120.000100' });
    expect(other.isError).toBeFalsy();
    expect(sim.requests.map((q) => q.path)).toEqual(['/api/conversations.replies']);
  });

  it('a wrong token gets invalid_auth from the simulator (checked as Slack does)', async () => {
    h.store.values.set('slack-bot-token', 'xoxb-wrong-0000');
    const r = await h.call('slack__post_message', { channel: 'C0GENERAL', text: 'x' });
    expect(textOf(r)).toMatch(/invalid_auth/);
    h.store.values.set('slack-bot-token', SLACK_TOKEN);
  });
});

describe('slack ids are validated', () => {
  for (const channel of ['../admin', 'C0GEN%2f..', 'c0general', 'C0GENERAL\n', 'C0GEN/../admin']) {
    it(`rejects channel ${JSON.stringify(channel)}`, async () => {
      const r = await h.call('slack__read_channel_history', { channel }).catch((e: unknown) => e);
      if (r instanceof McpError) expect(r.message).toMatch(/Invalid arguments/);
      else expect((r as { isError?: boolean }).isError).toBe(true);
      expect(sim.requests).toHaveLength(0);
    });
  }
});

describe('the token never reaches the agent', () => {
  it('while the simulator saw it', async () => {
    await h.call('slack__list_channels', { maxItems: 3 });
    sim.inject({ status: 200, body: { ok: false, error: 'invalid_auth' } });
    await h.call('slack__read_thread', { channel: 'C0GENERAL', thread_ts: '1700000120.000100' });
    expect(sim.requests.some((q) => q.authorization === `Bearer ${SLACK_TOKEN}`)).toBe(true);
    expect(h.received()).not.toContain(SLACK_TOKEN);
  });
});
