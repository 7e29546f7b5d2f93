import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { httpFailure, retryAfterMs, safeLocation, sanitize, type ErrorContext } from '../../src/connectors/errors.js';
import { SLACK_ERROR_CODES, slackFailure } from '../../src/connectors/slack/errors.js';
import { RateGate } from '../../src/connectors/http.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const gh: ErrorContext = { provider: 'GitHub', connector: 'github', secrets: ['github-token'], now: NOW };
const jira: ErrorContext = { provider: 'Jira', connector: 'jira', secrets: ['jira-api-token'], now: NOW };
const res = (status: number, body: unknown, headers: Record<string, string> = {}) => ({ status, body, headers });

describe('provider errors → kind and a message that says what to do', () => {
  const table: Array<[number, unknown, Record<string, string>, string, RegExp]> = [
    [401, { message: 'Bad credentials' }, {}, 'auth', /gatehouse secret set github-token.*gatehouse connector test github/],
    [403, { message: 'Must have admin rights' }, {}, 'forbidden', /permission, scope or access/],
    [403, { message: 'API rate limit exceeded for user' }, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 90) }, 'rate_limited', /Retry in 90 s \(after 2025-06-01T12:01:30.000Z\)/],
    [404, { message: 'Not Found' }, {}, 'not_found', /private repository/],
    [409, { message: 'Git Repository is empty.' }, {}, 'conflict', /conflict \(409: Git Repository is empty\.\)\. The repository is empty.*Check the repository on github\.com/],
    [422, { message: 'Validation Failed', errors: [{ resource: 'Issue', field: 'title', code: 'missing_field' }] }, {}, 'invalid', /Issue title missing_field/],
    [429, {}, { 'retry-after': '12' }, 'rate_limited', /Retry in 12 s/],
    [429, {}, { 'retry-after': 'Sun, 01 Jun 2025 12:00:30 GMT' }, 'rate_limited', /Retry in 30 s/],
    [500, 'boom', {}, 'unavailable', /unavailable \(500: boom\)/],
    [503, {}, { 'retry-after': '3' }, 'unavailable', /in 3 s/],
    [418, '', {}, 'protocol', /unexpected status \(418\)/],
  ];
  it('has rows', () => expect(table.length).toBeGreaterThan(10));
  for (const [status, body, headers, kind, re] of table) {
    it(`${status} ${JSON.stringify(body).slice(0, 40)}`, () => {
      const e = httpFailure(res(status, body, headers), gh);
      expect(e.kind).toBe(kind);
      expect(e.message).toMatch(re);
    });
  }

  it('a renamed repository (301) says so and gives the new location instead of "unexpected status"', () => {
    const repo = { ...gh, path: '/repos/octo/old-name/issues/1' };
    const e = httpFailure(res(301, { message: 'Moved Permanently', url: 'https://api.github.com/repositories/42/issues/1' }, { location: 'https://api.github.com/repositories/42/issues/1' }), repo);
    expect(e.kind).toBe('moved');
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toMatch(/moved permanently \(301: Moved Permanently\)\. New location: https:\/\/api\.github\.com\/repositories\/42\/issues\/1\. The repository was renamed or transferred/);
    expect(e.message).toMatch(/does not follow redirects/);
    expect(e.message).not.toMatch(/unexpected status/);
    for (const status of [302, 307]) expect(httpFailure(res(status, '', { location: '/repositories/42' }), repo).message).toMatch(/redirected this request.*New location: \/repositories\/42\..*temporary redirect/);
  });

  it('a redirect of a request about no repository (the probe, search, an SSO proxy in front of GHES) does not claim a renamed repository', () => {
    for (const path of ['/rate_limit', '/search/issues', undefined]) {
      const e = httpFailure(res(302, '', { location: 'https://sso.acme.example/login' }), { ...gh, ...(path !== undefined ? { path } : {}) });
      expect(e.kind).toBe('moved');
      expect(e.message).not.toMatch(/renamed or transferred/);
      expect(e.message).toMatch(/Check the connector's baseUrl/);
    }
  });

  it('a redirect elsewhere (Jira behind single sign-on) points at the baseUrl', () => {
    const e = httpFailure(res(302, '', { location: 'https://sso.acme.example/login?SAMLRequest=abc' }), { ...gh, provider: 'Jira' });
    expect(e.kind).toBe('moved');
    expect(e.message).toMatch(/New location: https:\/\/sso\.acme\.example\/login\. Check the connector's baseUrl: a proxy or a single sign-on page/);
  });

  it('410 gone: a deleted issue (GitHub) and a removed endpoint (Jira Cloud) are named, not "unexpected status"', () => {
    const g = httpFailure(res(410, { message: 'This issue was deleted' }), { ...gh, path: '/repos/octo/repo/issues/7' });
    expect(g).toMatchObject({ kind: 'gone', code: 'NOT_FOUND', status: 410 });
    expect(g.message).toMatch(/gone \(410: This issue was deleted\)\. The issue was deleted, or issues are disabled/);
    const j = httpFailure(res(410, { errorMessages: ['The requested API has been removed.'] }), { ...gh, provider: 'Jira' });
    expect(j.message).toMatch(/no longer offers that endpoint.*deployment: cloud \| datacenter in github's registry file/);
  });

  it('a 410 on an endpoint that is not an issue does not claim a deleted issue', () => {
    const e = httpFailure(res(410, { message: 'Gone' }), { ...gh, path: '/repos/octo/repo/contents/README.md' });
    expect(e.kind).toBe('gone');
    expect(e.message).not.toMatch(/issue/);
    expect(e.message).toMatch(/no longer offers that endpoint/);
  });

  it('304 Not Modified answers a conditional request the connector never sends: a protocol fault that points at a cache or proxy', () => {
    const e = httpFailure(res(304, ''), gh);
    expect(e).toMatchObject({ kind: 'protocol', status: 304 });
    expect(e.message).toMatch(/answered Not Modified \(304\), which answers only a conditional request, and the connector sends none.*Check the connector's baseUrl and any proxy/);
    expect(e.message).not.toMatch(/unexpected status/);
  });

  it('406 on a GitHub pull request: a diff too large to generate, not "unexpected status"; elsewhere a media type the API refused', () => {
    const e = httpFailure(res(406, { message: 'Sorry, the diff exceeded the maximum number of files (300).', errors: [{ resource: 'PullRequest', field: 'diff', code: 'too_large' }] }), gh);
    expect(e).toMatchObject({ kind: 'too_large', code: 'UPSTREAM_ERROR', status: 406 });
    expect(e.message).toMatch(/406: Sorry, the diff exceeded the maximum number of files \(300\)\.; PullRequest diff too_large\): for a pull request, its diff is too large.*Open it on github\.com/);
    const j = httpFailure(res(406, { errorMessages: ['Not Acceptable'] }), jira);
    expect(j).toMatchObject({ kind: 'protocol', status: 406 });
    expect(j.message).toMatch(/would not answer in the media type the connector asked for \(406: Not Acceptable\)\. Check that the connector's baseUrl points at the Jira API/);
  });

  it('409 on a Jira transition: a conflicting update to read again and retry, not "fix the arguments"', () => {
    const e = httpFailure(res(409, { errorMessages: ['The issue was updated by another user.'] }), jira);
    expect(e).toMatchObject({ kind: 'conflict', code: 'UPSTREAM_ERROR', status: 409 });
    expect(e.message).toMatch(/conflict \(409: The issue was updated by another user\.\)\. .*conflicting update.*Read it again \(get_issue\), then retry/);
    expect(e.message).not.toMatch(/Fix the arguments/);
  });

  it('413 on a Jira comment or transition: the per-issue limit, or text to shorten', () => {
    const e = httpFailure(res(413, { errorMessages: ['Comment limit exceeded'] }), jira);
    expect(e).toMatchObject({ kind: 'too_large', status: 413 });
    expect(e.message).toMatch(/too large \(413: Comment limit exceeded\)\. The issue has reached a per-issue limit \(comments, worklogs, attachments or links\).*Shorten the text/);
    expect(httpFailure(res(413, { message: 'Payload Too Large' }), gh).message).toMatch(/GitHub refused this as too large \(413: Payload Too Large\)\. Shorten the text/);
  });

  it("422 from Jira is a configuration problem to take to an admin; GitHub's 422 stays a validation failure", () => {
    const e = httpFailure(res(422, { errorMessages: ['Field customfield_10010 is required.'] }), jira);
    expect(e).toMatchObject({ kind: 'invalid', status: 422 });
    expect(e.message).toMatch(/Jira's configuration prevents this \(422: Field customfield_10010 is required\.\).*ask a Jira admin/);
    expect(httpFailure(res(422, { message: 'Validation Failed' }), gh).message).toMatch(/rejected the request as invalid.*Fix the arguments/);
  });

  it('provider text in the new mappings passes through sanitize: no credential, no control characters', () => {
    for (const status of [304, 406, 409, 413, 422]) {
      for (const ctx of [gh, jira]) {
        const body = ctx.provider === 'GitHub' ? { message: 'token ghp_0123456789abcdefghij\r\nSet-Cookie: x' } : { errorMessages: ['token ghp_0123456789abcdefghij\r\nSet-Cookie: x'] };
        const m = httpFailure(res(status, body), ctx).message;
        expect(m, `${ctx.provider} ${status}`).not.toMatch(/ghp_0123|[\r\n]/);
      }
    }
  });

  it('a GitHub file over 1 MB (403 too_large) is not reported as a missing permission', () => {
    const e = httpFailure(res(403, { message: 'This API returns blobs up to 1 MB in size.', errors: [{ resource: 'Blob', field: 'data', code: 'too_large' }] }), gh);
    expect(e.kind).toBe('too_large');
    expect(e.message).not.toMatch(/permission/);
    expect(e.message).toMatch(/over 1 MB comes only as raw content, and one over 100 MB not at all/);
  });

  it('Jira bodies: errorMessages and field errors', () => {
    const e = httpFailure(res(400, { errorMessages: ['Bad JQL'], errors: { summary: 'required' } }), { ...gh, provider: 'Jira' });
    expect(e.message).toContain('400: Bad JQL; summary: required');
  });

  it('Slack policy blocks are not reported as a bad credential: each says what to do', () => {
    const ctx: ErrorContext = { provider: 'Slack', connector: 'slack', secrets: ['slack-bot-token'], now: NOW };
    const table: Array<[string, Record<string, unknown>, string, RegExp]> = [
      ['ekm_access_denied', {}, 'forbidden', /Enterprise Key Management.*Ask a Slack admin.*storing another one does not help/],
      ['access_denied', {}, 'forbidden', /Ask a Slack admin or the channel owner/],
      ['team_access_not_granted', {}, 'forbidden', /add the app to that workspace/],
      ['restricted_action', {}, 'forbidden', /workspace preference.*A Slack admin must allow it/],
      ['restricted_action_read_only_channel', {}, 'forbidden', /read-only/],
      ['restricted_action_thread_only_channel', {}, 'forbidden', /Reply in a thread \(reply_in_thread\)/],
      ['not_allowed_token_type', {}, 'auth', /needs a bot token \(xoxb-…\).*gatehouse secret set slack-bot-token/],
      ['missing_scope', { needed: 'channels:history', provided: 'chat:write' }, 'forbidden', /Add the missing scope \(channels:history\) to the Slack app.*reinstall/],
      ['missing_scope', { needed: 'evil\u001b[31m text' }, 'forbidden', /Add the missing scope to the Slack app/],
      ['channel_not_found', {}, 'not_found', /list_channels gives ids.*private channel needs the app invited/],
      ['not_in_channel', {}, 'forbidden', /Invite the app to the channel/],
      ['is_archived', {}, 'forbidden', /archived.*Unarchive/],
      ['invalid_auth', {}, 'auth', /gatehouse secret set slack-bot-token.*IP address/],
      ['account_inactive', {}, 'auth', /deleted user or workspace.*Reinstall the Slack app/],
      ['token_revoked', {}, 'auth', /revoked.*Reinstall the Slack app/],
      ['token_expired', {}, 'auth', /token rotation/],
      ['method_deprecated', {}, 'gone', /retired/],
      ['team_added_to_org', {}, 'unavailable', /migrating/],
    ];
    expect(table.length).toBeGreaterThan(15);
    for (const [code, extra, kind, re] of table) {
      const e = slackFailure(res(200, { ok: false, error: code, ...extra }), ctx);
      expect(e.kind, code).toBe(kind);
      expect(e.message, code).toMatch(re);
      if (kind !== 'auth') expect(e.message, code).not.toMatch(/store a valid credential/);
    }
    // The scope named in the fix is only ever a scope-shaped word.
    expect(slackFailure(res(200, { ok: false, error: 'missing_scope', needed: 'evil\u001b[31m text' }), ctx).message).not.toContain('\u001b');
  });

  it("every Slack code in the table, and every code Slack's description lists, maps to a kind and a fix", () => {
    const ctx: ErrorContext = { provider: 'Slack', connector: 'slack', secrets: ['slack-bot-token'], now: NOW };
    expect(SLACK_ERROR_CODES.length).toBeGreaterThan(40);
    for (const code of SLACK_ERROR_CODES) {
      const e = slackFailure(res(200, { ok: false, error: code }), ctx);
      expect(e.message, code).toMatch(new RegExp(`\\(${code}\\): .+\\. .+`));
    }
    // Held to Slack's description: every error its methods we call may answer has a mapping of its own.
    const spec = JSON.parse(readFileSync(new URL('./contract/specs/slack-web-api.subset.json', import.meta.url), 'utf8')) as { paths: Record<string, Record<string, { responses?: { default?: { schema?: { properties?: { error?: { enum?: string[] } } } } } }>> };
    const described = Object.values(spec.paths).flatMap((item) => Object.values(item).flatMap((op) => op.responses?.default?.schema?.properties?.error?.enum ?? []));
    expect(described.length).toBeGreaterThan(20);
    for (const code of described) if (code !== 'rate_limited') expect(SLACK_ERROR_CODES, code).toContain(code);
    // A code inherited from Object.prototype is not a known code.
    expect(slackFailure(res(200, { ok: false, error: 'constructor' }), ctx).kind).toBe('protocol');
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

describe('a redirect Location is shown only as a safe http(s) origin and path', () => {
  it.each([
    ['https://api.github.com/repositories/42/issues/1', 'https://api.github.com/repositories/42/issues/1'],
    ['/repositories/42', '/repositories/42'],
    ['https://user:pw@evil.example/x?token=ghp_0123456789abcdefghij#frag', 'https://evil.example/x'],
    ['https://raw.example/file?token=ABCDEF0123456789', 'https://raw.example/file'],
    ['https://evil.example/a\r\nSet-Cookie: x', 'https://evil.example/aSet-Cookie:%20x'],
    ['https://evil.example/ghp_0123456789abcdefghij', 'https://evil.example/[redacted]'],
    // What a URL parser (and so any client) makes of it: "/\\host" and "//host" lead to another host, never a local path.
    ['/\\evil.example/x', 'https://evil.example/x'],
    ['//evil.example/x?t=1', 'https://evil.example/x'],
    ['https://relative.invalid/x', undefined],
    ['next/page', undefined],
    ['javascript:alert(1)', undefined],
    ['data:text/html,hi', undefined],
    ['', undefined],
    [undefined, undefined],
  ] as Array<[string | undefined, string | undefined]>)('%j → %j', (input, out) => expect(safeLocation(input)).toBe(out));
  it('scrubs the credential and bounds the length', () => {
    expect(safeLocation('https://x.example/s3cr3t-value/y', ['s3cr3t-value'])).toBe('https://x.example/[redacted]/y');
    expect((safeLocation(`https://x.example/${'a'.repeat(1000)}`) ?? '').length).toBeLessThanOrEqual(301);
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
