/**
 * The Jira connector (Cloud, REST v3) and simulator held to Atlassian's Jira
 * Cloud platform REST v3 description (vendored in specs/): every request
 * each tool and the probe send, on their success and error paths, and every
 * answer the simulator gives. Data Center (REST v2) has no description we
 * could obtain: see specs/README.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JIRA_TOOLS } from '../../../src/connectors/jira/tools.js';
import type { Sim } from '../sim/base.js';
import { JIRA_API_TOKEN, JIRA_EMAIL, JIRA_PAT, startJiraSim } from '../sim/jira.js';
import { jiraCloudDescription } from './descriptions.js';
import { drive, violations, type Driven } from './drive.js';
import type { Description } from './openapi.js';

let jira: Description;
let sim: Sim;
let cloud: Driven;
const called = new Set<string>();

beforeAll(async () => {
  jira = jiraCloudDescription();
  sim = await startJiraSim('cloud');
  cloud = await connect({ email: JIRA_EMAIL, apiToken: '${secret:jira-api-token}' });
});
afterAll(async () => {
  await cloud?.close();
  await sim?.close();
});

// deployment: cloud, so that every request is a REST v3 one (the serverInfo ask is v2: not described here).
const connect = (auth: Record<string, string>) =>
  drive({ name: 'jira', kind: 'jira', baseUrl: sim.url, deployment: 'cloud', auth }, { 'jira-api-token': JIRA_API_TOKEN, 'jira-pat': JIRA_PAT });

async function conforms(steps: (c: Driven) => Promise<unknown>, via: Driven = cloud): Promise<void> {
  sim.reset();
  await steps(via);
  expect(sim.requests.length, 'the steps reached the simulator').toBeGreaterThan(0);
  expect(violations([jira], sim.requests).join('\n\n')).toBe('');
}

const call = (c: Driven, tool: string, args: Record<string, unknown>) => {
  called.add(tool);
  return c.call(tool, args);
};

describe('every Jira Cloud request and simulator answer holds to the Jira Cloud REST v3 description', () => {
  it('connector test (the probe)', () => conforms((c) => c.probe()));

  it('search: pages with nextPageToken, and a JQL error (400)', () =>
    conforms(async (c) => {
      await call(c, 'search', { jql: 'project = OPS ORDER BY updated DESC', maxItems: 250 });
      await call(c, 'search', { jql: 'project = OPS syntax error' });
    }));

  it('get_issue: found (ADF description and comments), and missing (404)', () =>
    conforms(async (c) => {
      await call(c, 'get_issue', { issueKey: 'OPS-3' });
      await call(c, 'get_issue', { issueKey: '10004' });
      await call(c, 'get_issue', { issueKey: 'OPS-9999' });
    }));

  it('create_issue: every field (ADF description with paragraphs and line breaks), then a rejected project (400)', () =>
    conforms(async (c) => {
      await call(c, 'create_issue', { projectKey: 'OPS', summary: 'From the agent', issueType: 'Bug', description: 'First line\nsecond line\n\nNew paragraph', labels: ['agent', 'ops'] });
      await call(c, 'create_issue', { projectKey: 'OPS', summary: 'Summary only' });
      await call(c, 'create_issue', { projectKey: 'NOPE', summary: 'Wrong project' });
    }));

  it('add_comment: posted, and on a missing issue (404)', () =>
    conforms(async (c) => {
      await call(c, 'add_comment', { issueKey: 'OPS-3', body: 'Looks good\nto me' });
      await call(c, 'add_comment', { issueKey: 'OPS-9999', body: 'anyone?' });
    }));

  it('list_transitions: listed, and on a missing issue (404)', () =>
    conforms(async (c) => {
      await call(c, 'list_transitions', { issueKey: 'OPS-3' });
      await call(c, 'list_transitions', { issueKey: 'OPS-9999' });
    }));

  it('transition_issue: with and without a comment, and an invalid transition (400)', () =>
    conforms(async (c) => {
      await call(c, 'transition_issue', { issueKey: 'OPS-3', transitionId: '21' });
      await call(c, 'transition_issue', { issueKey: 'OPS-3', transitionId: '31', comment: 'Done\nfor now' });
      await call(c, 'transition_issue', { issueKey: 'OPS-3', transitionId: '99' });
    }));

  it('permission refused (403) and rate limited (429 with Retry-After)', async () => {
    const fresh = await connect({ email: JIRA_EMAIL, apiToken: '${secret:jira-api-token}' });
    try {
      await conforms(async (c) => {
        sim.inject({ status: 403, body: { errorMessages: ['You do not have permission to create issues in this project.'], errors: {} } });
        await call(c, 'create_issue', { projectKey: 'OPS', summary: 'No permission' });
        sim.inject({ status: 429, headers: { 'retry-after': '30' }, body: { errorMessages: ['Rate limit exceeded.'], errors: {} } });
        await call(c, 'get_issue', { issueKey: 'OPS-1' });
      }, fresh);
    } finally {
      await fresh.close();
    }
  });

  it('a credential Jira rejects (401)', async () => {
    const wrong = await connect({ email: JIRA_EMAIL, apiToken: '${secret:jira-pat}' });
    try {
      await conforms(async (c) => {
        await call(c, 'get_issue', { issueKey: 'OPS-1' });
        await c.probe();
      }, wrong);
    } finally {
      await wrong.close();
    }
  });

  it('exercised every tool the connector has', () => {
    expect(JIRA_TOOLS.length).toBeGreaterThan(0);
    expect([...called].sort()).toEqual(JIRA_TOOLS.map((t) => t.name).sort());
  });

  // Data Center (REST v2) requests and answers are not checked here: no official OpenAPI document
  // for Jira Data Center could be obtained (specs/README.md); its requests are held by jira.int.test.ts.
});

describe('the Jira contract catches what it is meant to', () => {
  const post = { method: 'POST', path: '/rest/api/3/issue', query: '', contentType: 'application/json' };
  const created = { status: 201, contentType: 'application/json', body: JSON.stringify({ id: '10999', key: 'OPS-999', self: 'https://acme.atlassian.net/rest/api/3/issue/10999' }) };

  it('a simulator answer the description forbids fails the contract', () => {
    const v = jira.check({ ...post, body: JSON.stringify({ fields: { summary: 'x' } }), response: { ...created, body: JSON.stringify({ id: 10999, key: 'OPS-999' }) } });
    expect(v.join('\n')).toMatch(/createIssue.*201 answer.*\/id must be string; got 10999/s);
  });

  it('a request body of the wrong shape, or an unknown search field, fails the contract', () => {
    expect(jira.check({ ...post, body: JSON.stringify({ fields: 'summary=x' }), response: created }).join('\n')).toMatch(/request body does not match.*\/fields must be object/s);
    expect(jira.check({ method: 'POST', path: '/rest/api/3/search/jql', query: '', contentType: 'application/json', body: JSON.stringify({ jql: 'x', startAt: 50 }), response: { status: 200, contentType: 'application/json', body: '{"issues":[]}' } }).join('\n')).toMatch(/must NOT have additional properties 'startAt'/);
  });
});
