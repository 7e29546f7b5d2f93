import { describe, expect, it } from 'vitest';
import { httpFailure, retryAfterMs, sanitize, slackFailure, type ErrorContext } from '../../src/connectors/errors.js';
import { RateGate } from '../../src/connectors/http.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const gh: ErrorContext = { provider: 'GitHub', connector: 'github', secrets: ['github-token'], now: NOW };
const res = (status: number, body: unknown, headers: Record<string, string> = {}) => ({ status, body, headers });

describe('provider errors → kind and a message that says what to do', () => {
  const table: Array<[number, unknown, Record<string, string>, string, RegExp]> = [
    [401, { message: 'Bad credentials' }, {}, 'auth', /gatehouse secret set github-token.*gatehouse connector test github/],
    [403, { message: 'Must have admin rights' }, {}, 'forbidden', /permission, scope or access/],
    [403, { message: 'API rate limit exceeded for user' }, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 90) }, 'rate_limited', /Retry in 90 s \(after 2025-06-01T12:01:30.000Z\)/],
    [404, { message: 'Not Found' }, {}, 'not_found', /private repository/],
    [409, { message: 'Git Repository is empty.' }, {}, 'invalid', /Fix the arguments/],
    [422, { message: 'Validation Failed', errors: [{ resource: 'Issue', field: 'title', code: 'missing_field' }] }, {}, 'invalid', /Issue title missing_field/],
    [429, {}, { 'retry-after': '12' }, 'rate_limited', /Retry in 12 s/],
    [429, {}, { 'retry-after': 'Sun, 01 Jun 2025 12:00:30 GMT' }, 'rate_limited', /Retry in 30 s/],
    [500, 'boom', {}, 'unavailable', /unavailable \(500: boom\)/],
    [503, {}, { 'retry-after': '3' }, 'unavailable', /in 3 s/],
    [302, '', {}, 'protocol', /unexpected status \(302\)/],
  ];
  it('has rows', () => expect(table.length).toBeGreaterThan(10));
  for (const [status, body, headers, kind, re] of table) {
    it(`${status} ${JSON.stringify(body).slice(0, 40)}`, () => {
      const e = httpFailure(res(status, body, headers), gh);
      expect(e.kind).toBe(kind);
      expect(e.message).toMatch(re);
    });
  }

  it('Jira bodies: errorMessages and field errors', () => {
    const e = httpFailure(res(400, { errorMessages: ['Bad JQL'], errors: { summary: 'required' } }), { ...gh, provider: 'Jira' });
    expect(e.message).toContain('400: Bad JQL; summary: required');
  });

  it('Slack ok:false codes', () => {
    const ctx: ErrorContext = { provider: 'Slack', connector: 'slack', secrets: ['slack-bot-token'], now: NOW };
    expect(slackFailure(res(200, { ok: false, error: 'invalid_auth' }), ctx).kind).toBe('auth');
    expect(slackFailure(res(200, { ok: false, error: 'token_revoked' }), ctx).kind).toBe('auth');
    expect(slackFailure(res(200, { ok: false, error: 'missing_scope', needed: 'chat:write' }), ctx).message).toMatch(/needed scope: chat:write/);
    expect(slackFailure(res(200, { ok: false, error: 'channel_not_found' }), ctx).kind).toBe('not_found');
    expect(slackFailure(res(200, { ok: false, error: 'ratelimited' }, { 'retry-after': '9' }), ctx)).toMatchObject({ kind: 'rate_limited', retryAfterMs: 9000 });
    expect(slackFailure(res(200, { ok: false, error: 'fatal_error' }), ctx).kind).toBe('unavailable');
    expect(slackFailure(res(200, { ok: false, error: 'something_new' }), ctx).kind).toBe('protocol');
  });
});

describe('sanitize: provider text never carries a credential', () => {
  it.each([
    ['Bearer abcdefghijklmnop', '[redacted]'],
    ['bad token ghp_0123456789abcdefghij', 'bad [redacted]'],
    ['github_pat_11AAAAAAA0123456789_abcdef', '[redacted]'],
    ['xoxb-1111-2222-abcdefg invalid', '[redacted] invalid'],
    ['Basic Ym90QGFjbWU6dG9rZW4=', '[redacted]'],
  ])('%s', (input, out) => expect(sanitize(input)).toBe(out));
  it('scrubs the exact credential, strips control characters, bounds length', () => {
    expect(sanitize('x s3cr3t-value y', ['s3cr3t-value'])).toBe('x [redacted] y');
    expect(sanitize('a\r\nSet-Cookie: x')).toBe('a Set-Cookie: x');
    expect(sanitize('z'.repeat(1000)).length).toBeLessThanOrEqual(301);
  });
  it('never echoes a header: only the body is read', () => {
    const e = httpFailure(res(401, { message: 'Bad credentials' }, { 'www-authenticate': 'Bearer realm=x', 'set-cookie': 'sid=secret' }), gh);
    expect(e.message).not.toMatch(/realm|sid=/);
  });
});

describe('retry timing', () => {
  it('reads Retry-After seconds, dates and x-ratelimit-reset', () => {
    expect(retryAfterMs({ 'retry-after': '5' }, NOW)).toBe(5000);
    expect(retryAfterMs({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 60) }, NOW)).toBe(60_000);
    expect(retryAfterMs({ 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': String(NOW / 1000 + 60) }, NOW)).toBeUndefined();
  });
  it('RateGate blocks a bucket until the reset, other buckets stay open', () => {
    let now = NOW;
    const gate = new RateGate(() => now);
    gate.observe('core', res(200, {}, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 30) }));
    expect(() => gate.check('core', gh)).toThrow(/retry in 30 s.*not sent/);
    expect(() => gate.check('search', gh)).not.toThrow();
    now += 31_000;
    expect(() => gate.check('core', gh)).not.toThrow();
  });
});
