import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startHarness, textOf, type Harness } from './helpers.js';
import { JIRA_API_TOKEN, JIRA_EMAIL, JIRA_PAT, startJiraSim } from './sim/jira.js';
import type { Sim } from './sim/base.js';

/** A Jira Cloud site. */
let sim: Sim;
/** A Jira Data Center site. */
let dc: Sim;
let h: Harness;
const BASIC = `Basic ${Buffer.from(`${JIRA_EMAIL}:${JIRA_API_TOKEN}`).toString('base64')}`;
// A secret goes to one connector only: each has its own.
const basicAuth = (name: string) => ({ email: JIRA_EMAIL, apiToken: `\${secret:${name}-token}` });
const bearerAuth = (name: string) => ({ pat: `\${secret:${name}-pat}` });
const SECRETS = {
  'jira-api-token': JIRA_API_TOKEN,
  'jiradc-pat': JIRA_PAT,
  'cloudbearer-pat': JIRA_PAT,
  'dcbasic-token': JIRA_API_TOKEN,
  'misconfigured-token': JIRA_API_TOKEN,
  'fresh-token': JIRA_API_TOKEN,
};

beforeAll(async () => {
  [sim, dc] = await Promise.all([startJiraSim('cloud'), startJiraSim('datacenter')]);
  h = await startHarness(
    [
      { name: 'jira', kind: 'jira', baseUrl: sim.url, deployment: 'cloud', auth: { email: JIRA_EMAIL, apiToken: '${secret:jira-api-token}' } },
      { name: 'jiradc', kind: 'jira', baseUrl: dc.url, deployment: 'datacenter', auth: { pat: '${secret:jiradc-pat}' } },
      // No deployment given, and the host is not *.atlassian.net: the site says which it is.
      { name: 'cloudbearer', kind: 'jira', baseUrl: sim.url, auth: bearerAuth('cloudbearer') },
      { name: 'dcbasic', kind: 'jira', baseUrl: dc.url, auth: basicAuth('dcbasic') },
      // Told the wrong deployment: obeyed, and Cloud's answer says what to check.
      { name: 'misconfigured', kind: 'jira', baseUrl: sim.url, deployment: 'datacenter', auth: basicAuth('misconfigured') },
    ],
    SECRETS,
  );
});
afterAll(async () => {
  await h?.close();
  await Promise.all([sim?.close(), dc?.close()]);
});
beforeEach(() => {
  sim.reset();
  dc.reset();
});

describe('jira cloud (REST v3, Basic email:token)', () => {
  it('lists six tools; transition_issue is marked as changing state', async () => {
    const tools = (await h.client.listTools()).tools.filter((t) => t.name.startsWith('jira__'));
    expect(tools.map((t) => t.name).sort()).toEqual(['jira__add_comment', 'jira__create_issue', 'jira__get_issue', 'jira__list_transitions', 'jira__search', 'jira__transition_issue']);
    expect(tools.find((t) => t.name === 'jira__transition_issue')?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(tools.find((t) => t.name === 'jira__search')?.annotations).toMatchObject({ readOnlyHint: true });
  });

  it('search pages with nextPageToken up to maxItems', async () => {
    const r = await h.call('jira__search', { jql: 'project = OPS', maxItems: 250 });
    const out = r.structuredContent as { issues: Array<{ key: string; url: string }>; truncated: boolean };
    expect(out.issues).toHaveLength(130);
    expect(out.truncated).toBe(false);
    expect(out.issues[0]).toMatchObject({ key: 'OPS-1', summary: 'Ticket 1', status: 'To Do', url: `${sim.url}/browse/OPS-1` });
    expect(sim.requests.map((q) => [q.method, q.path, q.authorization, q.contentType])).toEqual([
      ['POST', '/rest/api/3/search/jql', BASIC, 'application/json'],
      ['POST', '/rest/api/3/search/jql', BASIC, 'application/json'],
    ]);
    expect(JSON.parse(sim.requests[1]?.body ?? '{}')).toHaveProperty('nextPageToken');
    sim.reset();
    const capped = (await h.call('jira__search', { jql: 'project = OPS', maxItems: 20 })).structuredContent as typeof out;
    expect(capped.issues).toHaveLength(20);
    expect(capped.truncated).toBe(true);
  });

  it('get_issue turns ADF into text', async () => {
    const r = await h.call('jira__get_issue', { issueKey: 'OPS-7' });
    expect(r.structuredContent).toMatchObject({ key: 'OPS-7', description: 'Description 7', comments: [{ author: 'Ada', body: 'first!' }], labels: ['ops'] });
    expect(sim.requests[0]?.path).toBe('/rest/api/3/issue/OPS-7');
  });

  it('create_issue and add_comment send ADF documents', async () => {
    const c = await h.call('jira__create_issue', { projectKey: 'OPS', summary: 'New', description: 'Line one' });
    expect(c.structuredContent).toEqual({ key: 'OPS-999', id: '10999', url: `${sim.url}/browse/OPS-999` });
    expect(JSON.parse(sim.requests[0]?.body ?? '')).toMatchObject({ fields: { project: { key: 'OPS' }, issuetype: { name: 'Task' }, description: { type: 'doc', version: 1 } } });
    const m = await h.call('jira__add_comment', { issueKey: 'OPS-3', body: 'noted' });
    expect(m.structuredContent).toMatchObject({ id: '20001', issueKey: 'OPS-3' });
  });

  it('list_transitions and transition_issue (204)', async () => {
    const l = await h.call('jira__list_transitions', { issueKey: 'OPS-3' });
    expect((l.structuredContent as { transitions: Array<{ id: string }> }).transitions.map((t) => t.id)).toEqual(['11', '21', '31']);
    const t = await h.call('jira__transition_issue', { issueKey: 'OPS-3', transitionId: '31', comment: 'done' });
    expect(t.structuredContent).toEqual({ issueKey: 'OPS-3', transitionId: '31', done: true });
    expect(JSON.parse(sim.requests[1]?.body ?? '')).toMatchObject({ transition: { id: '31' }, update: { comment: [{ add: { body: { type: 'doc' } } }] } });
  });
});

describe('jira data center (REST v2, Bearer PAT)', () => {
  it('search pages with startAt and uses plain-text bodies', async () => {
    const r = await h.call('jiradc__search', { jql: 'project = OPS', maxItems: 150 });
    const out = r.structuredContent as { issues: unknown[]; total: number; truncated: boolean };
    expect(out.issues).toHaveLength(130);
    expect(out.total).toBe(130);
    expect(dc.requests.map((q) => [q.path, JSON.parse(q.body).startAt, q.authorization])).toEqual([
      ['/rest/api/2/search', 0, `Bearer ${JIRA_PAT}`],
      ['/rest/api/2/search', 100, `Bearer ${JIRA_PAT}`],
    ]);
    dc.reset();
    await h.call('jiradc__add_comment', { issueKey: 'OPS-2', body: 'plain\nsecond line' });
    expect(dc.requests[0]).toMatchObject({ path: '/rest/api/2/issue/OPS-2/comment' });
    expect(JSON.parse(dc.requests[0]?.body ?? '')).toEqual({ body: 'plain\nsecond line' });
    const g = await h.call('jiradc__get_issue', { issueKey: 'OPS-2' });
    expect(g.structuredContent).toMatchObject({ description: 'Description OPS-2' });
  });
});

describe('Cloud or Data Center is decided by the site, not by the credential', () => {
  it('a Cloud site with a bearer token speaks REST v3 and searches /rest/api/3/search/jql (not the removed v2 search); serverInfo is asked once', async () => {
    const r = await h.call('cloudbearer__search', { jql: 'project = OPS', maxItems: 5 });
    expect(r.isError).toBeFalsy();
    expect((r.structuredContent as { issues: unknown[] }).issues).toHaveLength(5);
    const g = await h.call('cloudbearer__add_comment', { issueKey: 'OPS-3', body: 'noted' });
    expect(g.isError).toBeFalsy();
    expect(sim.requests.map((q) => [q.method, q.path, q.authorization])).toEqual([
      ['GET', '/rest/api/2/serverInfo', `Bearer ${JIRA_PAT}`],
      ['POST', '/rest/api/3/search/jql', `Bearer ${JIRA_PAT}`],
      ['POST', '/rest/api/3/issue/OPS-3/comment', `Bearer ${JIRA_PAT}`],
    ]);
    expect(JSON.parse(sim.requests[2]?.body ?? '')).toMatchObject({ body: { type: 'doc', version: 1 } });
  });

  it('a Data Center site with Basic auth speaks REST v2 (Data Center has no v3)', async () => {
    const r = await h.call('dcbasic__search', { jql: 'project = OPS', maxItems: 5 });
    expect(r.isError).toBeFalsy();
    expect((r.structuredContent as { total: number }).total).toBe(130);
    const c = await h.call('dcbasic__create_issue', { projectKey: 'OPS', summary: 'x', description: 'plain text' });
    expect(c.isError).toBeFalsy();
    expect(dc.requests.map((q) => [q.method, q.path, q.authorization])).toEqual([
      ['GET', '/rest/api/2/serverInfo', BASIC],
      ['POST', '/rest/api/2/search', BASIC],
      ['POST', '/rest/api/2/issue', BASIC],
    ]);
    expect(JSON.parse(dc.requests[2]?.body ?? '')).toMatchObject({ fields: { description: 'plain text' } });
  });

  it('a given deployment is obeyed without asking; a wrong one gets a 410 that names deployment as the thing to check', async () => {
    const r = await h.call('misconfigured__search', { jql: 'project = OPS' });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/Jira says this is gone \(410: The requested API has been removed\..*deployment: cloud \| datacenter in misconfigured's registry file/);
    expect(sim.requests.map((q) => q.path)).toEqual(['/rest/api/2/search']);
  });

  it('a failed serverInfo is not remembered: the next call asks again', async () => {
    const fresh = await startHarness([{ name: 'fresh', kind: 'jira', baseUrl: dc.url, auth: basicAuth('fresh') }], SECRETS);
    try {
      dc.inject({ status: 503, body: 'Service Unavailable', path: /serverInfo/ });
      const failed = await fresh.call('fresh__list_transitions', { issueKey: 'OPS-1' });
      expect(failed.isError).toBe(true);
      expect(textOf(failed)).toMatch(/Jira is unavailable \(503: Service Unavailable\).*serverInfo, which tells Jira Cloud from Data Center; set deployment: cloud or datacenter/);
      const ok = await fresh.call('fresh__list_transitions', { issueKey: 'OPS-1' });
      expect(ok.isError).toBeFalsy();
      expect(dc.requests.map((q) => q.path)).toEqual(['/rest/api/2/serverInfo', '/rest/api/2/serverInfo', '/rest/api/2/issue/OPS-1/transitions']);
    } finally {
      await fresh.close();
    }
  });

  it('a deployment that is neither cloud nor datacenter is refused when the registry loads', async () => {
    const { JiraConnectorSchema } = await import('../../src/registry/builtin-kinds.js');
    const r = JiraConnectorSchema.safeParse({ name: 'x', kind: 'jira', baseUrl: 'https://jira.example.com', deployment: 'server', auth: basicAuth('x') });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/deployment: cloud or datacenter/);
  });
});

describe('jira Cloud rich text (ADF)', () => {
  it('single newlines become hardBreak nodes; blank lines still separate paragraphs', async () => {
    const c = await h.call('jira__create_issue', { projectKey: 'OPS', summary: 'New', description: 'Line one\nLine two\r\n\nNext paragraph' });
    expect(c.isError).toBeFalsy();
    expect(JSON.parse(sim.requests[0]?.body ?? '').fields.description).toEqual({
      type: 'doc',
      version: 1,
      content: [
        { type: 'paragraph', content: [{ type: 'text', text: 'Line one' }, { type: 'hardBreak' }, { type: 'text', text: 'Line two' }] },
        { type: 'paragraph', content: [{ type: 'text', text: 'Next paragraph' }] },
      ],
    });
  });

  it('reading keeps the text of mentions, emoji, inline cards, dates and status lozenges', async () => {
    const p = (...content: object[]) => ({ type: 'paragraph', content });
    const t = (text: string) => ({ type: 'text', text });
    const description = {
      type: 'doc',
      version: 1,
      content: [
        p(t('Ask '), { type: 'mention', attrs: { id: '5b10a', text: '@Ada Lovelace' } }, t(' '), { type: 'emoji', attrs: { shortName: ':thumbsup:', text: '👍' } }, t(' '), { type: 'emoji', attrs: { shortName: ':gatehouse:' } }),
        p(t('See '), { type: 'inlineCard', attrs: { url: 'https://acme.atlassian.net/browse/OPS-1' } }, t(' by '), { type: 'date', attrs: { timestamp: '1735689600000' } }, { type: 'hardBreak' }, t('State: '), { type: 'status', attrs: { text: 'IN REVIEW', color: 'blue' } }),
      ],
    };
    const comment = { type: 'doc', version: 1, content: [p({ type: 'mention', attrs: { id: '5b10a', text: '@Ada' } }, t(' done'))] };
    sim.inject({
      status: 200,
      path: /\/issue\/OPS-42/,
      body: { id: '10042', key: 'OPS-42', fields: { summary: 'Rich', description, labels: [], comment: { comments: [{ id: '9', author: { displayName: 'Grace' }, created: '2025-01-01T00:00:00.000+0000', body: comment }] } } },
    });
    const r = await h.call('jira__get_issue', { issueKey: 'OPS-42' });
    expect(r.structuredContent).toMatchObject({
      description: 'Ask @Ada Lovelace 👍 :gatehouse:\nSee https://acme.atlassian.net/browse/OPS-1 by 2025-01-01\nState: IN REVIEW',
      comments: [{ body: '@Ada done' }],
    });
  });
});

describe('jira errors', () => {
  it('404 and 400 come back with Jira\'s own explanation', async () => {
    const nf = await h.call('jira__get_issue', { issueKey: 'OPS-5000' });
    expect(textOf(nf)).toMatch(/found nothing there \(404: Issue does not exist or you do not have permission to see it\.\)/);
    const bad = await h.call('jira__create_issue', { projectKey: 'NOPE', summary: 'x' });
    expect(textOf(bad)).toMatch(/invalid \(400: project: valid project is required\)/);
    const jql = await h.call('jira__search', { jql: 'syntax error' });
    expect(textOf(jql)).toMatch(/Error in the JQL Query/);
    const tr = await h.call('jira__transition_issue', { issueKey: 'OPS-1', transitionId: '99' });
    expect(textOf(tr)).toMatch(/Transition id '99' is not valid/);
  });

  const cases: Array<[string, { status: number; headers?: Record<string, string>; body: unknown }, RegExp]> = [
    ['401', { status: 401, body: 'Client must be authenticated to access this resource.' }, /rejected the connector's credential \(401: Client must be authenticated.*gatehouse secret set jira-api-token/],
    ['403', { status: 403, body: { errorMessages: ['You do not have permission to create issues in this project.'], errors: {} } }, /refused this request \(403: You do not have permission/],
    ['404', { status: 404, body: { errorMessages: ['Issue does not exist or you do not have permission to see it.'], errors: {} } }, /found nothing there/],
    ['400', { status: 400, body: { errorMessages: [], errors: { summary: 'You must specify a summary of the issue.' } } }, /invalid \(400: summary: You must specify/],
    ['429 + Retry-After', { status: 429, headers: { 'retry-after': '5' }, body: { errorMessages: ['Rate limit exceeded.'] } }, /rate limit reached.*Retry in 5 s/],
    ['500', { status: 500, body: { errorMessages: ['Internal server error'] } }, /Jira is unavailable \(500: Internal server error\)/],
    ['503', { status: 503, body: 'Service Unavailable' }, /Jira is unavailable \(503: Service Unavailable\)/],
  ];
  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(7));
  for (const [what, inj, re] of cases) {
    it(what, async () => {
      (what.startsWith('429') ? dc : sim).inject(inj);
      // Data Center connector for the 429 case, so its 5 s block does not affect the Cloud tests.
      const r = await h.call(what.startsWith('429') ? 'jiradc__list_transitions' : 'jira__list_transitions', { issueKey: 'OPS-1' });
      expect(r.isError).toBe(true);
      expect(textOf(r).replace('jiradc-pat', 'jira-api-token')).toMatch(re);
      const leaked = JSON.stringify(r);
      expect(leaked).not.toContain(JIRA_API_TOKEN);
      expect(leaked).not.toContain(Buffer.from(`${JIRA_EMAIL}:${JIRA_API_TOKEN}`).toString('base64'));
    });
  }
});

describe('jira issue keys are validated', () => {
  for (const issueKey of ['OPS-1/../../admin', '../admin', 'OPS-1%2f..', 'OPS-1\\..', 'ops-1', 'OPS-1?x=1', '%2e%2e']) {
    it(`rejects ${JSON.stringify(issueKey)}`, async () => {
      const r = await h.call('jira__get_issue', { issueKey }).catch((e: unknown) => e);
      if (r instanceof McpError) expect(r.message).toMatch(/Invalid arguments/);
      else expect((r as { isError?: boolean }).isError).toBe(true);
      expect(sim.requests).toHaveLength(0);
    });
  }
});

describe('the credential never reaches the agent', () => {
  it('while the simulator saw it', async () => {
    // (The Data Center connector's PAT was seen by its simulator in the startAt test above.)
    await h.call('jira__get_issue', { issueKey: 'OPS-1' });
    expect(sim.requests.map((q) => q.authorization)).toEqual([BASIC]);
    const seen = h.received();
    expect(seen).not.toContain(JIRA_API_TOKEN);
    expect(seen).not.toContain(JIRA_PAT);
    expect(seen).not.toContain(BASIC.slice(6));
  });
});
