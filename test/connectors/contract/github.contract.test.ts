/**
 * The GitHub connector and simulator held to GitHub's own REST description
 * (npm @octokit/openapi: api.github.com, and the oldest and newest GitHub
 * Enterprise Server it ships): every request each tool and the probe send,
 * on their success and error paths, and every answer the simulator gives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GITHUB_TOOLS } from '../../../src/connectors/github/tools.js';
import { BIG_FILE, GITHUB_APP_TOKEN, GITHUB_TOKEN, HUGE_FILE, startGithubSim, type GithubSim } from '../sim/github.js';
import EX from '../sim/github-examples.json' with { type: 'json' };
import { GITHUB_WAIVERS as WAIVERS, githubDescriptions } from './descriptions.js';
import { drive, violations, type Driven } from './drive.js';
import type { Description } from './openapi.js';

let descriptions: Description[];
let sim: GithubSim;
let gh: Driven;
const called = new Set<string>();

beforeAll(async () => {
  descriptions = githubDescriptions();
  sim = await startGithubSim();
  gh = await connect(GITHUB_TOKEN);
});
afterAll(async () => {
  await gh?.close();
  await sim?.close();
});

const connect = (token: string) => drive({ name: 'github', kind: 'github', baseUrl: sim.url, token: '${secret:github-token}' }, { 'github-token': token });

/** Runs `steps` with a clean record, then asserts every exchange it caused conforms to every description. */
async function conforms(steps: (c: Driven) => Promise<unknown>, via: Driven = gh): Promise<void> {
  sim.reset();
  sim.state.remaining = 4999;
  await steps(via);
  expect(sim.requests.length, 'the steps reached the simulator').toBeGreaterThan(0);
  expect(violations(descriptions, sim.requests).join('\n\n')).toBe('');
}

const call = (c: Driven, tool: string, args: Record<string, unknown>) => {
  called.add(tool);
  return c.call(tool, args);
};
const repo = { owner: 'octo', repo: 'app' };
const DOCS = 'https://docs.github.com/rest';

describe('every GitHub request and simulator answer holds to the GitHub REST description', () => {
  it('connector test (the probe), with a personal token and with an app installation token', async () => {
    await conforms((c) => c.probe());
    const app = await connect(GITHUB_APP_TOKEN);
    try {
      await conforms((c) => c.probe(), app);
    } finally {
      await app.close();
    }
  });

  it('search_issues: pages, sort and order', () =>
    conforms(async (c) => {
      await call(c, 'search_issues', { query: 'repo:octo/app is:open', sort: 'updated', order: 'asc', maxItems: 150 });
      await call(c, 'search_issues', { query: 'is:issue', maxItems: 5 });
    }));

  it('search_issues: 422 for a query GitHub cannot parse', () =>
    conforms(async (c) => {
      sim.inject({ status: 422, body: { message: 'Validation Failed', errors: [{ resource: 'Search', field: 'q', code: 'invalid' }], documentation_url: DOCS, status: '422' } });
      await call(c, 'search_issues', { query: 'is:issue (' });
    }));

  it('get_issue: found, missing (404), gone (410), moved (301)', () =>
    conforms(async (c) => {
      await call(c, 'get_issue', { ...repo, issue_number: 7 });
      await call(c, 'get_issue', { ...repo, issue_number: 9999 });
      sim.inject({ status: 410, body: { message: 'This issue was deleted', documentation_url: DOCS, status: '410' } });
      await call(c, 'get_issue', { ...repo, issue_number: 8 });
      sim.inject({ status: 301, headers: { location: `${sim.url}/repositories/42/issues/9` }, body: { message: 'Moved Permanently', url: `${sim.url}/repositories/42/issues/9`, documentation_url: DOCS } });
      await call(c, 'get_issue', { ...repo, issue_number: 9 });
    }));

  it('list_issues: every filter, pages, and an unknown repository', () =>
    conforms(async (c) => {
      await call(c, 'list_issues', { ...repo, state: 'all', labels: 'bug,ui', since: '2025-01-01T00:00:00Z', maxItems: 250 });
      await call(c, 'list_issues', { owner: 'octo', repo: 'nope' });
    }));

  it('create_issue: every field, then the 403 and 422 GitHub documents', () =>
    conforms(async (c) => {
      await call(c, 'create_issue', { ...repo, title: 'From the agent', body: 'details', labels: ['bug'], assignees: ['octocat'] });
      await call(c, 'create_issue', { ...repo, title: 'Title only' });
      sim.inject({ status: 403, body: { message: 'Resource not accessible by personal access token', documentation_url: DOCS, status: '403' } });
      await call(c, 'create_issue', { ...repo, title: 'No permission' });
      sim.inject({ status: 422, body: { message: 'Validation Failed', errors: [{ resource: 'Issue', code: 'invalid', field: 'assignees' }], documentation_url: DOCS, status: '422' } });
      await call(c, 'create_issue', { ...repo, title: 'Bad assignee', assignees: ['ghost'] });
    }));

  it('comment_on_issue: posted, and on a missing issue (404)', () =>
    conforms(async (c) => {
      await call(c, 'comment_on_issue', { ...repo, issue_number: 3, body: 'looks good' });
      await call(c, 'comment_on_issue', { ...repo, issue_number: 9999, body: 'anyone?' });
    }));

  it('list_pull_requests: filters and pages', () =>
    conforms(async (c) => {
      await call(c, 'list_pull_requests', { ...repo, state: 'open', base: 'main', head: 'hubot:feature-1', maxItems: 120 });
      await call(c, 'list_pull_requests', { ...repo, state: 'closed', maxItems: 3 });
    }));

  it('get_pull_request: found and missing (404)', () =>
    conforms(async (c) => {
      await call(c, 'get_pull_request', { ...repo, pull_number: 202 });
      await call(c, 'get_pull_request', { ...repo, pull_number: 9999 });
    }));

  it('get_file_contents: text at a ref, root and directory listings, binary, missing, over 1 MB, over 100 MB', () =>
    conforms(async (c) => {
      await call(c, 'get_file_contents', { ...repo, path: 'src/index.ts', ref: 'main' });
      await call(c, 'get_file_contents', { ...repo });
      await call(c, 'get_file_contents', { ...repo, path: 'img/logo.png' });
      await call(c, 'get_file_contents', { ...repo, path: 'no/such file.md' });
      await call(c, 'get_file_contents', { ...repo, path: BIG_FILE });
      await call(c, 'get_file_contents', { ...repo, path: HUGE_FILE });
    }));

  it('search_code', () => conforms((c) => call(c, 'search_code', { query: 'answer repo:octo/app', maxItems: 3 })));

  it('rate limits: 403 with remaining 0, and 429 with Retry-After', async () => {
    for (const [status, headers] of [
      [403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 60) }],
      [429, { 'retry-after': '30' }],
    ] as const) {
      const fresh = await connect(GITHUB_TOKEN);
      try {
        await conforms(async (c) => {
          sim.inject({ status, headers, body: { message: 'API rate limit exceeded for installation ID 1.', documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api', status: String(status) } });
          await call(c, 'get_issue', { ...repo, issue_number: 1 });
        }, fresh);
      } finally {
        await fresh.close();
      }
    }
  });

  it('a credential GitHub rejects (401)', async () => {
    const wrong = await connect('ghp_wrongTOKEN0000000000000000000000000');
    try {
      await conforms(async (c) => {
        await call(c, 'get_issue', { ...repo, issue_number: 1 });
        await c.probe();
      }, wrong);
    } finally {
      await wrong.close();
    }
  });

  it('exercised every tool the connector has', () => {
    expect(GITHUB_TOOLS.length).toBeGreaterThan(0);
    expect([...called].sort()).toEqual(GITHUB_TOOLS.map((t) => t.name).sort());
  });

  it('every waiver is still needed by every description', () => {
    for (const d of descriptions) expect(WAIVERS.filter((w) => !d.waived.has(w)).map((w) => `${d.name}: ${w.operation} ${w.at} ${String(w.value)}`)).toEqual([]);
  });
});

describe('the GitHub contract catches what it is meant to', () => {
  const dotcom = () => descriptions[0] as Description;
  const ok = { method: 'GET', path: '/repos/octo/app/issues/7', query: '', contentType: undefined, body: '' };
  const issue = (over: Record<string, unknown>) => ({ status: 200, contentType: 'application/json', body: JSON.stringify({ ...over }) });

  it('a simulator answer the description forbids fails the contract', () => {
    const v = dotcom().check({ ...ok, response: issue({ number: 'seven', title: 'x' }) });
    expect(v.join('\n')).toMatch(/issues\/get.*200 answer.*must have required property 'assignee'/s);
    expect(v.join('\n')).toMatch(/\/number must be integer; got "seven"/);
  });

  it('a status the operation does not document fails the contract', () => {
    expect(dotcom().check({ ...ok, response: { status: 418, contentType: 'application/json', body: '{}' } }).join('\n')).toMatch(/answered 418, which the operation does not document/);
  });

  it('a path no operation has, a parameter of the wrong type, an unknown query parameter fail the contract', () => {
    expect(dotcom().check({ ...ok, path: '/repos/octo/app/issue/7' }).join('\n')).toMatch(/has no operation for this method and path/);
    expect(dotcom().check({ ...ok, path: '/repos/octo/app/issues/seven', response: issue({}) }).join('\n')).toMatch(/path parameter issue_number does not match.*must be integer/s);
    expect(dotcom().check({ ...ok, path: '/repos/octo/app/issues', query: 'state=open&per_pag=5', response: { status: 200, contentType: 'application/json', body: '[]' } }).join('\n')).toMatch(/query parameter per_pag is not in the description/);
    expect(dotcom().check({ ...ok, path: '/repos/octo/app/issues', query: 'state=opened', response: { status: 200, contentType: 'application/json', body: '[]' } }).join('\n')).toMatch(/query parameter state does not match.*must be equal to one of the allowed values/s);
  });

  it('a request body without a required field, or with an unknown one, fails the contract', () => {
    const post = { method: 'POST', path: '/repos/octo/app/issues', query: '', contentType: 'application/json', response: { status: 201, contentType: 'application/json', body: JSON.stringify(EX.issue) } };
    expect(dotcom().check({ ...post, body: JSON.stringify({ body: 'no title' }) }).join('\n')).toMatch(/request body does not match.*required property 'title'/s);
    expect(dotcom().check({ ...post, body: JSON.stringify({ title: 't', labels: 'bug' }) }).join('\n')).toMatch(/request body does not match.*\/labels must be array/s);
  });
});
