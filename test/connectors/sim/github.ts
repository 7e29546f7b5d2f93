/**
 * GitHub REST v3 simulator, from the documented shapes
 * (https://docs.github.com/en/rest): auth as GitHub checks it, Link-header
 * pagination, rate-limit headers, documented error bodies.
 */
import type { Context } from 'hono';
import { json, startSim, type Sim, type SimEnv } from './base.js';
// GitHub's documented response examples (see test/connectors/contract/specs/extract-github-examples.mjs):
// each answer is one of them with the simulator's own values laid over, so it keeps every documented field.
import EX from './github-examples.json' with { type: 'json' };

export const GITHUB_TOKEN = 'ghp_SIMULATEDgithubTOKEN0123456789abcd';
/** A GitHub App installation token: GET /user is not enabled for apps, so GitHub answers it 403. */
export const GITHUB_APP_TOKEN = 'ghs_SIMULATEDinstallationTOKEN012345678';
/** A file over 1 MB: the default media type refuses it (403 too_large); the raw one serves it. A 2-byte "é" straddles byte 1,000,000. */
export const BIG_FILE = 'data/big.txt';
export const BIG_TEXT = `${'a'.repeat(999_999)}é${'b'.repeat(600_000)}`;
/** Stands for a file over 100 MB, which the API serves in no media type. */
export const HUGE_FILE = 'video/huge.mp4';
const TOO_LARGE = {
  message: 'This API returns blobs up to 1 MB in size. The requested blob is too large to fetch via the API, but you can use the Git Data API to request blobs up to 100 MB in size.',
  errors: [{ resource: 'Blob', field: 'data', code: 'too_large' }],
  documentation_url: 'https://docs.github.com/rest/repos/contents#get-repository-content',
  status: '403',
};
const DOCS = 'https://docs.github.com/rest';

export interface GithubState {
  /** x-ratelimit-remaining on every response. */
  remaining: number;
  /** Seconds until the reset given in x-ratelimit-reset. */
  resetIn: number;
  /** Origin used in Link headers (default: the simulator's own). */
  linkOrigin?: string;
}

export type GithubSim = Sim & { state: GithubState };

const { pull_request: examplePr, ...issueExample } = EX.issue;
const userOf = (login: string, id: number) => ({ ...EX.issue.user, login, id });

const issues = Array.from({ length: 250 }, (_, i) => i + 1).map((n) => ({
  ...issueExample,
  id: 1000 + n,
  number: n,
  title: `Issue ${n}`,
  state: n % 5 === 0 ? 'closed' : 'open',
  user: userOf('octocat', 1),
  labels: n % 3 === 0 ? [{ id: 1, name: 'bug' }] : [],
  assignees: [],
  comments: n % 4,
  body: `Body of issue ${n}`,
  html_url: `https://github.com/octo/app/issues/${n}`,
  repository_url: 'https://api.github.com/repos/octo/app',
  created_at: '2025-01-01T00:00:00Z',
  updated_at: '2025-01-02T00:00:00Z',
  closed_at: n % 5 === 0 ? '2025-01-03T00:00:00Z' : null,
  ...(n % 10 === 0 ? { pull_request: { ...examplePr, url: `https://api.github.com/repos/octo/app/pulls/${n}` } } : {}),
}));

const pulls = Array.from({ length: 150 }, (_, i) => i + 1).map((n) => ({
  ...EX.pullRequest,
  requested_teams: [],
  id: 5000 + n,
  number: 200 + n,
  title: `PR ${n}`,
  state: 'open',
  draft: n === 1,
  user: userOf('hubot', 2),
  head: { ...EX.pullRequest.head, label: `hubot:feature-${n}`, ref: `feature-${n}` },
  base: { ...EX.pullRequest.base, label: 'octo:main', ref: 'main' },
  body: `PR body ${n}`,
  html_url: `https://github.com/octo/app/pull/${200 + n}`,
  created_at: '2025-02-01T00:00:00Z',
  updated_at: '2025-02-02T00:00:00Z',
  merged: false,
  mergeable: true,
  additions: 10,
  deletions: 2,
  changed_files: 1,
}));

const files: Record<string, string | Buffer> = {
  'README.md': '# app\nHello from the simulator.\n',
  'src/index.ts': 'export const answer = 42;\n',
  'img/logo.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01]),
  [BIG_FILE]: BIG_TEXT,
};

export async function startGithubSim(basePath = ''): Promise<GithubSim> {
  const state: GithubState = { remaining: 4999, resetIn: 3600 };
  const sim = await startSim(basePath, (app, self) => {
    const rl = (resource: string): Record<string, string> => ({
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': String(state.remaining),
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + state.resetIn),
      'x-ratelimit-used': String(5000 - state.remaining),
      'x-ratelimit-resource': resource,
    });
    const notFound = (c: Context) => json(c, 404, { message: 'Not Found', documentation_url: DOCS, status: '404' }, rl('core'));
    const page = <T>(c: Context, all: T[], resource: string, wrap?: (items: T[]) => unknown) => {
      const per = Math.min(100, Number(c.req.query('per_page') ?? 30));
      const p = Math.max(1, Number(c.req.query('page') ?? 1));
      const items = all.slice((p - 1) * per, p * per);
      const last = Math.max(1, Math.ceil(all.length / per));
      const u = new URL(c.req.url);
      const link = (n: number, rel: string) => {
        u.searchParams.set('page', String(n));
        u.searchParams.set('per_page', String(per));
        return `<${state.linkOrigin ?? self().origin}${u.pathname}${u.search}>; rel="${rel}"`;
      };
      const links = [...(p < last ? [link(p + 1, 'next'), link(last, 'last')] : []), ...(p > 1 ? [link(1, 'first'), link(p - 1, 'prev')] : [])];
      return json(c, 200, wrap ? wrap(items) : items, { ...rl(resource), ...(links.length > 0 ? { link: links.join(', ') } : {}) });
    };

    // GitHub accepts "Bearer" and "token" (https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api).
    app.use('*', async (c, next) => {
      const h = c.req.header('authorization');
      if (h === undefined) return json(c, 401, { message: 'Requires authentication', documentation_url: DOCS, status: '401' });
      const m = /^(?:Bearer|token) (.+)$/.exec(h);
      if (!m || (m[1] !== GITHUB_TOKEN && m[1] !== GITHUB_APP_TOKEN)) return json(c, 401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });
      await next();
      return undefined;
    });

    const isRepo = (c: Context) => c.req.param('owner') === 'octo' && c.req.param('repo') === 'app';

    const isApp = (c: Context) => c.req.header('authorization') === `Bearer ${GITHUB_APP_TOKEN}`;
    app.get('/user', (c) =>
      isApp(c)
        ? json(c, 403, { message: 'Resource not accessible by integration', documentation_url: 'https://docs.github.com/rest/users/users#get-the-authenticated-user', status: '403' }, rl('core'))
        : json(c, 200, { ...EX.user, login: 'octocat', id: 1, type: 'User' }, { ...rl('core'), 'x-oauth-scopes': 'repo, read:org', 'x-accepted-oauth-scopes': '' }),
    );
    // Only an installation token may list the installation's repositories (apps/list-repos-accessible-to-installation).
    app.get('/installation/repositories', (c) =>
      isApp(c)
        ? json(c, 200, { total_count: 0, repositories: [], repository_selection: 'selected' }, rl('core'))
        : json(c, 403, { message: 'This endpoint requires you to authenticate with an installation access token.', documentation_url: 'https://docs.github.com/rest/apps/installations#list-repositories-accessible-to-the-app-installation', status: '403' }, rl('core')),
    );
    // Enabled for apps, free of rate-limit cost; a classic token's answers carry X-OAuth-Scopes (and its expiry).
    app.get('/rate_limit', (c) => {
      const reset = Math.floor(Date.now() / 1000) + state.resetIn;
      const core = { limit: 5000, remaining: state.remaining, reset, used: 5000 - state.remaining };
      const search = { limit: 30, remaining: 30, reset, used: 0 };
      const classic = isApp(c) ? {} : { 'x-oauth-scopes': 'repo, read:org', 'github-authentication-token-expiration': '2031-01-01 00:00:00 UTC' };
      return json(c, 200, { resources: { core, search, code_search: { limit: 10, remaining: 10, reset, used: 0 } }, rate: core }, { ...rl('core'), ...classic });
    });
    app.get('/repos/:owner/:repo/issues', (c) => {
      if (!isRepo(c)) return notFound(c);
      const st = c.req.query('state') ?? 'open';
      return page(c, issues.filter((i) => st === 'all' || i.state === st), 'core');
    });
    app.get('/repos/:owner/:repo/issues/:n', (c) => {
      const i = issues.find((x) => String(x.number) === c.req.param('n'));
      return isRepo(c) && i ? json(c, 200, i, rl('core')) : notFound(c);
    });
    app.post('/repos/:owner/:repo/issues', async (c) => {
      if (!isRepo(c)) return notFound(c);
      if (!(c.req.header('content-type') ?? '').startsWith('application/json')) return json(c, 415, { message: 'Unsupported Media Type', documentation_url: DOCS });
      let body: { title?: unknown; body?: unknown; labels?: unknown };
      try {
        body = (await c.req.json()) as typeof body;
      } catch {
        return json(c, 400, { message: 'Problems parsing JSON', documentation_url: DOCS, status: '400' });
      }
      if (typeof body.title !== 'string' || body.title === '') {
        return json(c, 422, { message: 'Validation Failed', errors: [{ resource: 'Issue', code: 'missing_field', field: 'title' }], documentation_url: DOCS, status: '422' }, rl('core'));
      }
      return json(c, 201, { ...issues[0], number: 76, title: body.title, body: body.body ?? null, state: 'open', html_url: 'https://github.com/octo/app/issues/76' }, rl('core'));
    });
    app.post('/repos/:owner/:repo/issues/:n/comments', async (c) => {
      if (!isRepo(c) || !issues.some((x) => String(x.number) === c.req.param('n'))) return notFound(c);
      const body = (await c.req.json()) as { body?: string };
      return json(c, 201, { ...EX.issueComment, id: 9001, body: body.body, html_url: `https://github.com/octo/app/issues/${c.req.param('n')}#issuecomment-9001`, user: userOf('octocat', 1) }, rl('core'));
    });
    app.get('/repos/:owner/:repo/pulls', (c) => (isRepo(c) ? page(c, pulls, 'core') : notFound(c)));
    app.get('/repos/:owner/:repo/pulls/:n', (c) => {
      const p = pulls.find((x) => String(x.number) === c.req.param('n'));
      return isRepo(c) && p ? json(c, 200, p, rl('core')) : notFound(c);
    });
    const contents = (c: Context) => {
      if (!isRepo(c)) return notFound(c);
      const raw = c.env.incoming.url ?? '';
      const prefix = `${basePath}/repos/octo/app/contents`;
      const rest = decodeURIComponent((raw.split('?')[0] ?? '').slice(prefix.length).replace(/^\//, ''));
      if (rest === '') {
        return json(c, 200, [
          { ...EX.contentDirectoryEntry, type: 'file', name: 'README.md', path: 'README.md', size: 30, sha: 'a1' },
          { ...EX.contentDirectoryEntry, type: 'dir', name: 'src', path: 'src', size: 0, sha: 'b2' },
        ], rl('core'));
      }
      if (rest === HUGE_FILE) return json(c, 403, TOO_LARGE, rl('core'));
      const f = files[rest];
      if (f === undefined) return notFound(c);
      const buf = typeof f === 'string' ? Buffer.from(f) : f;
      // Files of 1–100 MB come only with the raw or object media type (GET /repos/{owner}/{repo}/contents/{path}).
      const wantsRaw = c.req.header('accept') === 'application/vnd.github.raw+json';
      if (buf.length > 1_000_000 && !wantsRaw) return json(c, 403, TOO_LARGE, rl('core'));
      if (wantsRaw) return new Response(new Uint8Array(buf), { status: 200, headers: { 'content-type': 'application/vnd.github.raw+json; charset=utf-8', ...rl('core') } });
      return json(c, 200, { ...EX.contentFile, type: 'file', encoding: 'base64', name: rest.split('/').pop(), path: rest, size: buf.length, sha: 'c3', content: buf.toString('base64').replace(/(.{60})/g, '$1\n') }, rl('core'));
    };
    app.get('/repos/:owner/:repo/contents', contents);
    app.get('/repos/:owner/:repo/contents/*', contents);
    app.get('/search/issues', (c) => {
      const q = c.req.query('q') ?? '';
      if (q === '') return json(c, 422, { message: 'Validation Failed', errors: [{ resource: 'Search', field: 'q', code: 'missing' }], documentation_url: DOCS, status: '422' });
      return page(c, issues, 'search', (items) => ({ total_count: issues.length, incomplete_results: false, search_type: 'lexical', items: items.map((i) => ({ ...i, score: 1 })) }));
    });
    app.get('/search/code', (c) =>
      page(
        c,
        ['a.ts', 'b.ts', 'c.ts'].map((n) => ({ ...EX.codeSearchItem, name: n, path: `src/${n}`, sha: 'd4', html_url: `https://github.com/octo/app/blob/main/src/${n}`, repository: { ...EX.codeSearchItem.repository, full_name: 'octo/app' } })),
        'code_search',
        (items) => ({ total_count: 3, incomplete_results: false, items }),
      ),
    );
    // A route no tool may ever reach: traversal tests assert it stays untouched.
    app.all('/admin/*', (c) => json(c, 200, { admin: true }));
  });
  return Object.assign(sim, { state });
}

export type { SimEnv };
