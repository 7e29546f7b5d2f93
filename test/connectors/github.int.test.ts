import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startHarness, textOf, type Harness } from './helpers.js';
import { BIG_FILE, BIG_TEXT, GITHUB_TOKEN, HUGE_FILE, startGithubSim, type GithubSim } from './sim/github.js';

let sim: GithubSim;
let h: Harness;

beforeAll(async () => {
  sim = await startGithubSim();
  h = await startHarness([{ name: 'github', kind: 'github', baseUrl: sim.url, token: '${secret:github-token}' }], { 'github-token': GITHUB_TOKEN });
});
afterAll(async () => {
  await h?.close();
  await sim?.close();
});
beforeEach(() => {
  sim.reset();
  sim.state.remaining = 4999;
  delete sim.state.linkOrigin;
});

describe('github connector through the gateway', () => {
  it('lists its nine tools with schemas and honest annotations', async () => {
    const { tools } = await h.client.listTools();
    const mine = tools.filter((t) => t.name.startsWith('github__'));
    expect(mine.map((t) => t.name).sort()).toEqual(
      ['comment_on_issue', 'create_issue', 'get_file_contents', 'get_issue', 'get_pull_request', 'list_issues', 'list_pull_requests', 'search_code', 'search_issues'].map((n) => `github__${n}`),
    );
    for (const t of mine) {
      expect(t.outputSchema).toBeDefined();
      const write = /create_|comment_/.test(t.name);
      expect(t.annotations).toMatchObject({ readOnlyHint: !write, destructiveHint: false, openWorldHint: true });
    }
  });

  it('get_issue: sends the bearer token and returns the issue', async () => {
    const r = await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 7 });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ number: 7, title: 'Issue 7', state: 'open', author: 'octocat', body: 'Body of issue 7', isPullRequest: false });
    expect(sim.requests[0]).toMatchObject({ method: 'GET', path: '/repos/octo/app/issues/7', authorization: `Bearer ${GITHUB_TOKEN}` });
  });

  it('list_issues: follows Link rel="next" across pages up to maxItems and says it truncated', async () => {
    const r = await h.call('github__list_issues', { owner: 'octo', repo: 'app', state: 'all', maxItems: 300 });
    const out = r.structuredContent as { items: Array<{ number: number }>; truncated: boolean };
    expect(out.items).toHaveLength(250);
    expect(out.truncated).toBe(false);
    expect(sim.requests.map((q) => [q.path, new URLSearchParams(q.query).get('page') ?? '1', new URLSearchParams(q.query).get('per_page')])).toEqual([
      ['/repos/octo/app/issues', '1', '100'],
      ['/repos/octo/app/issues', '2', '100'],
      ['/repos/octo/app/issues', '3', '100'],
    ]);
    sim.reset();
    const capped = (await h.call('github__list_issues', { owner: 'octo', repo: 'app', state: 'open', maxItems: 150 })).structuredContent as typeof out;
    expect(capped.items).toHaveLength(150);
    expect(capped.items[149]?.number).toBe(187);
    expect(capped.truncated).toBe(true);
    expect(sim.requests).toHaveLength(2);
  });

  it('search_issues: small maxItems is one small page', async () => {
    const s = await h.call('github__search_issues', { query: 'repo:octo/app', maxItems: 60 });
    expect((s.structuredContent as { items: unknown[]; truncated: boolean }).items).toHaveLength(60);
    expect((s.structuredContent as { truncated: boolean }).truncated).toBe(true);
    expect(sim.requests.map((q) => new URLSearchParams(q.query).get('per_page'))).toEqual(['60']);
  });

  it('does not follow a Link header that points at another origin (the token stays home)', async () => {
    sim.state.linkOrigin = 'http://127.0.0.2:9';
    const r = await h.call('github__list_pull_requests', { owner: 'octo', repo: 'app', maxItems: 120 });
    const out = r.structuredContent as { items: unknown[]; truncated: boolean };
    expect(out.items).toHaveLength(100);
    expect(out.truncated).toBe(true);
    expect(sim.requests).toHaveLength(1);
  });

  it('search_issues, search_code, list_pull_requests, get_pull_request', async () => {
    const s = (await h.call('github__search_issues', { query: 'is:open', maxItems: 5 })).structuredContent as { items: Array<{ repository: string }>; totalCount: number };
    expect(s.items).toHaveLength(5);
    expect(s.items[0]?.repository).toBe('octo/app');
    expect(s.totalCount).toBe(250);
    expect(new URLSearchParams(sim.requests[0]?.query).get('q')).toBe('is:open');
    const code = (await h.call('github__search_code', { query: 'answer repo:octo/app' })).structuredContent as { items: Array<{ repository: string; path: string }> };
    expect(code.items.map((i) => i.path)).toEqual(['src/a.ts', 'src/b.ts', 'src/c.ts']);
    const prs = (await h.call('github__list_pull_requests', { owner: 'octo', repo: 'app', maxItems: 3 })).structuredContent as { items: Array<{ number: number; draft: boolean; head: string }> };
    expect(prs.items[0]).toMatchObject({ number: 201, draft: true, head: 'hubot:feature-1' });
    const pr = (await h.call('github__get_pull_request', { owner: 'octo', repo: 'app', pull_number: 202 })).structuredContent;
    expect(pr).toMatchObject({ number: 202, merged: false, mergeable: true, additions: 10, changedFiles: 1 });
  });

  it('get_file_contents: decodes text, lists directories, flags binaries, encodes each path segment', async () => {
    const f = (await h.call('github__get_file_contents', { owner: 'octo', repo: 'app', path: 'src/index.ts', ref: 'main' })).structuredContent;
    expect(f).toMatchObject({ type: 'file', path: 'src/index.ts', content: 'export const answer = 42;\n' });
    expect(sim.requests[0]).toMatchObject({ path: '/repos/octo/app/contents/src/index.ts', query: 'ref=main' });
    const dir = (await h.call('github__get_file_contents', { owner: 'octo', repo: 'app' })).structuredContent as { type: string; entries: unknown[] };
    expect(dir.type).toBe('dir');
    expect(dir.entries).toHaveLength(2);
    const bin = (await h.call('github__get_file_contents', { owner: 'octo', repo: 'app', path: 'img/logo.png' })).structuredContent;
    expect(bin).toMatchObject({ binary: true });
    expect(bin).not.toHaveProperty('content');
  });

  it('get_file_contents over 1 MB: fetched raw, cut at the cap on a character boundary, marked truncated', async () => {
    const r = await h.call('github__get_file_contents', { owner: 'octo', repo: 'app', path: BIG_FILE, ref: 'main' });
    expect(r.isError).toBeFalsy();
    const out = r.structuredContent as { content: string; truncated: boolean; note: string; size: number };
    // The 2-byte "é" at bytes 999,999–1,000,000 is not cut in half: no U+FFFD.
    expect(out.content).toBe(BIG_TEXT.slice(0, 999_999));
    expect(out.truncated).toBe(true);
    expect(out.note).toMatch(/^truncated: content holds the first 999999 bytes of 1600001$/);
    expect(out.size).toBe(Buffer.byteLength(BIG_TEXT));
    // First the default media type (403 too_large), then the raw one, with the same ref.
    expect(sim.requests.map((q) => [q.path, q.query, q.response?.status])).toEqual([
      [`/repos/octo/app/contents/${BIG_FILE}`, 'ref=main', 403],
      [`/repos/octo/app/contents/${BIG_FILE}`, 'ref=main', 200],
    ]);
  });

  it("get_file_contents: the truncation note counts the file's bytes kept, not the decoded text's (a Latin-1 file is not inflated by U+FFFD)", async () => {
    // "café " in Latin-1: 0xE9 is not UTF-8, so each decodes to U+FFFD (3 bytes); 200,000 copies fill the 1,000,000-byte cap exactly.
    const latin1 = Buffer.from('caf\xe9 '.repeat(250_000), 'latin1');
    sim.inject({ status: 200, body: { type: 'file', encoding: 'base64', name: 'old.txt', path: 'old.txt', size: latin1.length, sha: 'f6', content: latin1.toString('base64') }, path: /contents\/old\.txt/ });
    const out = (await h.call('github__get_file_contents', { owner: 'octo', repo: 'app', path: 'old.txt' })).structuredContent as { content: string; truncated: boolean; note: string };
    expect(out.truncated).toBe(true);
    expect(out.note).toBe('truncated: content holds the first 1000000 bytes of 1250000');
    expect(out.content).toBe(latin1.subarray(0, 1_000_000).toString('utf8'));
  });

  it('get_file_contents: a large file described without content (encoding "none") is fetched raw', async () => {
    sim.inject({ status: 200, body: { type: 'file', encoding: 'none', content: '', name: 'big.txt', path: BIG_FILE, size: Buffer.byteLength(BIG_TEXT), sha: 'e5' }, path: /contents\/data\/big\.txt/ });
    const out = (await h.call('github__get_file_contents', { owner: 'octo', repo: 'app', path: BIG_FILE })).structuredContent as { content: string; truncated: boolean; sha: string };
    expect(out).toMatchObject({ truncated: true, sha: 'e5' });
    expect(out.content.length).toBe(999_999);
    expect(sim.requests).toHaveLength(2);
  });

  it('get_file_contents over 100 MB: a clear "too large" error, not a missing permission', async () => {
    const r = await h.call('github__get_file_contents', { owner: 'octo', repo: 'app', path: HUGE_FILE });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/GitHub does not serve this file through its API: it is over 100 MB\. Clone the repository/);
    expect(textOf(r)).not.toMatch(/permission/);
    expect(r._meta?.['gatehouse/connector-error']).toMatchObject({ kind: 'too_large', status: 403 });
  });

  it('Enterprise Managed User logins (handle_shortcode) pass as owner and assignee', async () => {
    const c = await h.call('github__create_issue', { owner: 'octo', repo: 'app', title: 'EMU', assignees: ['mona-cat_octo'] });
    expect(c.isError).toBeFalsy();
    expect(JSON.parse(sim.requests[0]?.body ?? '')).toMatchObject({ assignees: ['mona-cat_octo'] });
    const g = await h.call('github__get_issue', { owner: 'octo_acme', repo: 'app', issue_number: 1 });
    expect(textOf(g)).toMatch(/found nothing there/);
    expect(sim.requests[1]?.path).toBe('/repos/octo_acme/app/issues/1');
    const bad = await h.call('github__get_issue', { owner: 'octo_', repo: 'app', issue_number: 1 }).catch((e: unknown) => e);
    if (bad instanceof McpError) expect(bad.message).toMatch(/Invalid arguments/);
    else expect((bad as { isError?: boolean }).isError).toBe(true);
    expect(sim.requests).toHaveLength(2);
  });

  it('create_issue and comment_on_issue send JSON bodies with the JSON content type', async () => {
    const c = await h.call('github__create_issue', { owner: 'octo', repo: 'app', title: 'From the agent', body: 'details', labels: ['bug'] });
    expect(c.structuredContent).toEqual({ number: 76, url: 'https://github.com/octo/app/issues/76', state: 'open' });
    expect(sim.requests[0]).toMatchObject({ method: 'POST', path: '/repos/octo/app/issues', contentType: 'application/json' });
    expect(JSON.parse(sim.requests[0]?.body ?? '')).toEqual({ title: 'From the agent', body: 'details', labels: ['bug'] });
    const m = await h.call('github__comment_on_issue', { owner: 'octo', repo: 'app', issue_number: 3, body: 'looks good' });
    expect(m.structuredContent).toMatchObject({ id: 9001 });
    expect(sim.requests[1]).toMatchObject({ method: 'POST', path: '/repos/octo/app/issues/3/comments' });
  });
});

describe('github errors become clear tool errors', () => {
  const cases: Array<[string, { status: number; headers?: Record<string, string>; body: unknown }, RegExp]> = [
    ['401 bad credentials', { status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } }, /rejected the connector's credential \(401: Bad credentials\).*gatehouse secret set github-token.*gatehouse connector test github/],
    ['403 forbidden', { status: 403, body: { message: 'Resource not accessible by personal access token' } }, /refused this request \(403: Resource not accessible.*grant it to the token/],
    ['404 not found', { status: 404, body: { message: 'Not Found' } }, /found nothing there \(404: Not Found\).*private repository/],
    ['422 validation', { status: 422, body: { message: 'Validation Failed', errors: [{ resource: 'Issue', code: 'missing_field', field: 'title' }] } }, /invalid \(422: Validation Failed; Issue title missing_field\)\. Fix the arguments/],
    ['429 with Retry-After', { status: 429, headers: { 'retry-after': '42' }, body: { message: 'API rate limit exceeded' } }, /rate limit reached.*Retry in 42 s/],
    ['403 secondary rate limit', { status: 403, headers: { 'retry-after': '7' }, body: { message: 'You have exceeded a secondary rate limit' } }, /rate limit reached.*Retry in 7 s/],
    [
      '301 renamed repository: says so, with the new location',
      { status: 301, headers: { location: 'https://api.github.com/repositories/42/issues/1' }, body: { message: 'Moved Permanently', url: 'https://api.github.com/repositories/42/issues/1', documentation_url: 'https://docs.github.com/rest' } },
      /moved permanently \(301: Moved Permanently\)\. New location: https:\/\/api\.github\.com\/repositories\/42\/issues\/1\. The repository was renamed or transferred/,
    ],
    ['410 deleted issue: gone, not an unexpected status', { status: 410, body: { message: 'This issue was deleted', documentation_url: 'https://docs.github.com/rest' } }, /gone \(410: This issue was deleted\)\. The issue was deleted/],
    ['500', { status: 500, body: { message: 'Server Error' } }, /GitHub is unavailable \(500: Server Error\)\. Try again later/],
    ['503 html', { status: 503, body: '<html>unicorn</html>' }, /GitHub is unavailable \(503: <html>unicorn<\/html>\)/],
  ];
  // A guard that the list under test is not empty.
  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(8));
  for (const [what, inj, re] of cases) {
    it(`${what}`, async () => {
      sim.inject({ ...inj, path: /\/issues\/1$/ });
      const r = await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 1 });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(re);
      expect(JSON.stringify(r)).not.toContain(GITHUB_TOKEN);
      // A rate limit blocks that bucket: wait it out for the next case.
      if (/rate limit/.test(textOf(r))) {
        const again = await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 1 });
        expect(textOf(again)).toMatch(/rate limit is exhausted.*The request was not sent/);
        expect(sim.requests).toHaveLength(1);
        h = await restart();
      }
    });
  }

  it('a provider error body that echoes the token is scrubbed', async () => {
    sim.inject({ status: 403, body: { message: `token ${GITHUB_TOKEN} is not allowed` }, path: /issues\/2$/ });
    const r = await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 2 });
    expect(textOf(r)).toMatch(/\[redacted\]/);
    expect(JSON.stringify(r)).not.toContain(GITHUB_TOKEN);
  });

  it('when x-ratelimit-remaining reaches 0 the next call fails fast with the reset time', async () => {
    sim.state.remaining = 0;
    sim.state.resetIn = 120;
    const first = await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 4 });
    expect(first.isError).toBeFalsy();
    const second = await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 5 });
    expect(second.isError).toBe(true);
    expect(textOf(second)).toMatch(/retry in 1[12]\d s/);
    expect(sim.requests).toHaveLength(1);
    // Search has its own bucket at GitHub: still allowed.
    sim.state.remaining = 10;
    const search = await h.call('github__search_issues', { query: 'x', maxItems: 1 });
    expect(search.isError).toBeFalsy();
    h = await restart();
  });

  it('a missing secret makes the connector not ready, with the fix', async () => {
    h.store.values.delete('github-token');
    const r = await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 1 });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/secret "github-token".*gatehouse secret set github-token/);
    expect(sim.requests).toHaveLength(0);
    h.store.values.set('github-token', GITHUB_TOKEN);
  });

  it('a rotated secret takes effect on the next call, without restart', async () => {
    h.store.values.set('github-token', 'ghp_rotatedButWrong000000000000000000');
    const r = await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 1 });
    expect(textOf(r)).toMatch(/401: Bad credentials/);
    h.store.values.set('github-token', GITHUB_TOKEN);
    const ok = await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 1 });
    expect(ok.isError).toBeFalsy();
    expect(sim.requests.map((q) => q.authorization)).toEqual(['Bearer ghp_rotatedButWrong000000000000000000', `Bearer ${GITHUB_TOKEN}`]);
  });
});

describe('github path traversal never reaches another route', () => {
  const attempts: Array<[string, Record<string, unknown>]> = [
    ['owner ../../admin', { owner: '../../admin', repo: 'app', issue_number: 1 }],
    ['owner with %2e%2e', { owner: '%2e%2e', repo: 'app', issue_number: 1 }],
    ['repo with encoded slash', { owner: 'octo', repo: 'app%2f..%2f..%2fadmin', issue_number: 1 }],
    ['repo ..', { owner: 'octo', repo: '..', issue_number: 1 }],
    ['repo with backslash', { owner: 'octo', repo: 'app\\..\\admin', issue_number: 1 }],
    ['owner with a newline', { owner: 'octo\nHost: evil', repo: 'app', issue_number: 1 }],
    ['issue number as a path', { owner: 'octo', repo: 'app', issue_number: '1/../../admin' }],
  ];
  it('has attempts', () => expect(attempts.length).toBeGreaterThan(5));
  for (const [what, args] of attempts) {
    it(`rejects ${what}`, async () => {
      const r = await h.call('github__get_issue', args).catch((e: unknown) => e);
      // Either the gateway's argument check (JSON-RPC InvalidParams) or the connector's own check refuses it.
      if (r instanceof McpError) expect(r.message).toMatch(/Invalid arguments/);
      else expect((r as { isError?: boolean }).isError).toBe(true);
      expect(sim.requests).toHaveLength(0);
    });
  }

  it('file paths: .. segments, encoded dots and slashes, backslashes are refused', async () => {
    for (const path of ['../../admin/x', 'src/../../..', '%2e%2e/admin', 'src%2f..%2fadmin', 'a\\..\\b', 'src/./index.ts', 'x\u0000y']) {
      const r = await h.call('github__get_file_contents', { owner: 'octo', repo: 'app', path });
      expect(r.isError, path).toBe(true);
      expect(textOf(r)).toMatch(/Invalid argument: path/);
    }
    expect(sim.requests).toHaveLength(0);
    expect(sim.paths().some((p) => p.includes('admin'))).toBe(false);
  });
});

describe('the token never reaches the agent', () => {
  it('appears in no tool list or result the agent received, while the simulator saw it', async () => {
    await h.client.listTools();
    await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 1 });
    await h.call('github__list_issues', { owner: 'octo', repo: 'app', maxItems: 5 });
    sim.inject({ status: 401, body: { message: 'Bad credentials' } });
    await h.call('github__get_issue', { owner: 'octo', repo: 'app', issue_number: 1 });
    expect(sim.requests.some((q) => q.authorization === `Bearer ${GITHUB_TOKEN}`)).toBe(true);
    expect(h.received().length).toBeGreaterThan(1000);
    expect(h.received()).not.toContain(GITHUB_TOKEN);
  });
});

async function restart(): Promise<Harness> {
  await h.close();
  sim.reset();
  return startHarness([{ name: 'github', kind: 'github', baseUrl: sim.url, token: '${secret:github-token}' }], { 'github-token': GITHUB_TOKEN });
}
